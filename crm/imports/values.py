"""Turning one cell's text into a typed value. Each parser raises ValueError with a reason for the error file."""
import re
from collections.abc import Iterable
from functools import lru_cache

from rapidfuzz import fuzz, process

_TRUE = {"true", "yes", "y", "1", "on", "x", "t", "ja", "oui", "si", "sí"}
_FALSE = {"false", "no", "n", "0", "off", "f", "nein", "non"}
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_PLAIN = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_CURRENCY = "$€£¥₹฿"
SUGGEST_SCORE = 80  # rapidfuzz WRatio at or above which a known value is offered as "did you mean"


def fold(text: str | None) -> str:
    """The form names are compared in: case-folded, runs of spaces collapsed. Deliberately nothing fuzzier."""
    return " ".join((text or "").split()).casefold()


def parse_number(text: str) -> float:
    raw = text.strip().strip(_CURRENCY).strip().replace(" ", "").replace("\u00a0", "")
    if _THOUSANDS.match(raw):
        raw = raw.replace(",", "")
    if not _PLAIN.match(raw):
        if re.match(r"^[+-]?\d+,\d+$", raw):
            raise ValueError(f"{text!r} uses a decimal comma; write numbers with a decimal point (1234.5)")
        raise ValueError(f"{text!r} is not a number")
    value = float(raw)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def parse_bool(text: str) -> bool:
    folded = text.strip().casefold()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise ValueError(f"{text!r} is not yes/no (use yes, no, true, false, 1 or 0)")


def parse_list(text: str) -> list[str]:
    """Several values in one cell, separated by semicolons (commas are common inside the values themselves)."""
    return list(dict.fromkeys(p.strip() for p in text.split(";") if p.strip()))


def suggestion(value: str, known: Iterable[str]) -> str:
    """' (did you mean 'X'?)' when a known value is close to this one, else ''. Only ever a hint, never applied."""
    best = closest(value, known if isinstance(known, tuple) else tuple(sorted(set(known))))
    return f" (did you mean {' or '.join(repr(b) for b in best)}?)" if best else ""


@lru_cache(maxsize=4096)
def closest(value: str, known: tuple[str, ...]) -> tuple[str, ...]:
    """The known values nearest to `value` (several only when they tie), or () when none is close."""
    if not known:
        return ()
    found = process.extract(value, known, scorer=fuzz.WRatio, processor=fold, score_cutoff=SUGGEST_SCORE, limit=3)
    return tuple(name for name, score, _ in found if score == found[0][1]) if found else ()


def unknown(what: str, value: str, known: Iterable[str]) -> ValueError:
    return ValueError(f"unknown {what} {value!r}{suggestion(value, known)}")


# Country names: phonenumbers carries the English name of every region it knows, which is our country vocabulary.
_ALIASES = {"usa": "US", "u.s.": "US", "u.s.a.": "US", "united states of america": "US", "america": "US",
            "uk": "GB", "u.k.": "GB", "great britain": "GB", "britain": "GB", "england": "GB",
            "holland": "NL", "the netherlands": "NL", "russia": "RU", "south korea": "KR", "republic of korea": "KR",
            "north korea": "KP", "iran": "IR", "vietnam": "VN", "czech republic": "CZ", "uae": "AE",
            "ivory coast": "CI", "turkey": "TR"}


def country_names() -> dict[str, str]:
    """Folded English name (or common alias) → ISO 3166-1 alpha-2 code."""
    return {**{fold(n): c for n, c in _official_names().items()}, **_ALIASES}


@lru_cache(maxsize=1)
def _official_names() -> dict[str, str]:
    """phonenumbers' English name of every region → its code."""
    import phonenumbers
    from phonenumbers.geodata.locale import LOCALE_DATA

    names = {}
    for code in phonenumbers.SUPPORTED_REGIONS:
        name = LOCALE_DATA.get(code, {}).get("en")
        if name and name.startswith("*"):  # a reference to another language's identical name
            name = LOCALE_DATA[code].get(name[1:])
        if name:
            names[name] = code
    return names


def parse_country(text: str) -> str:
    """An ISO code ('th') or an English country name ('Thailand'); a near miss gets a suggestion, not a guess."""
    import phonenumbers

    raw = text.strip()
    if len(raw) == 2 and raw.upper() in phonenumbers.SUPPORTED_REGIONS:
        return raw.upper()
    code = _country_lookup().get(fold(raw))
    if code:
        return code
    raise unknown("country", raw, _official_names())


@lru_cache(maxsize=1)
def _country_lookup() -> dict[str, str]:
    return country_names()


# Emails: crm.validation.normalize_email, with the domain's check cached. email-validator spends most of its
# time on the domain, and an import meets the same few domains thousands of times. A plain ASCII dot-atom local
# part needs no more than the pattern below; anything else goes through normalize_email whole.
_DOT_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


@lru_cache(maxsize=65536)
def _email_domain(domain: str) -> str | None:
    from crm.errors import ValidationFailed
    from crm.validation import normalize_email

    try:
        return normalize_email(f"a@{domain}").split("@", 1)[1]
    except ValidationFailed:
        return None


def normalize_email_cached(raw: str | None, *, row: int | None = None) -> str | None:
    """Exactly crm.validation.normalize_email (a property test holds them equal), faster on repeated domains."""
    from crm.validation import normalize_email

    text = (raw or "").strip()
    local, at, domain = text.rpartition("@")
    if at and len(local) <= 64 and len(text) <= 254 and domain.isascii() and _DOT_ATOM.match(local):
        normalized = _email_domain(domain)
        if normalized is not None:
            return f"{local}@{normalized}".lower()
    return normalize_email(raw, row=row)
