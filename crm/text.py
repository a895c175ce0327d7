"""Unicode normalisation for search and duplicate matching, across Latin, Thai, Persian and Chinese."""
import unicodedata

# Arabic-script letters that Persian writes differently; unify so either spelling finds the other.
_PERSIAN = str.maketrans({"ي": "ی", "ى": "ی", "ك": "ک", "ة": "ه", "ۀ": "ه", "\u200c": " "})


def _is_latin_base(char: str) -> bool:
    return char.isascii() or "\u00c0" <= char <= "\u024f" or "\u1e00" <= char <= "\u1eff"


def normalize_name(text: str | None) -> str:
    """NFKC, case-folded, accents removed from Latin letters only, spaces collapsed.

    Only Latin accents are stripped: in Thai and other scripts the combining marks are vowels and tones,
    and dropping them would make different names equal.
    """
    if not text:
        return ""
    folded = unicodedata.normalize("NFKC", text).translate(_PERSIAN).casefold()
    out: list[str] = []
    base = ""
    for char in unicodedata.normalize("NFD", folded):
        if unicodedata.combining(char):
            if _is_latin_base(base):
                continue
        else:
            base = char
        out.append(char)
    return " ".join(unicodedata.normalize("NFC", "".join(out)).split())


def contact_name_key(first_name: str | None, last_name: str | None) -> str:
    return normalize_name(f"{first_name or ''} {last_name or ''}")
