"""The formatting rules, as pure functions: what a contact's name, email, phone and country should look like.
crm.hygiene.formatting previews and applies them; both call `propose`, so they always agree (docs/hygiene.md)."""
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers.geodata.locale import LOCALE_DATA

from crm.errors import ValidationFailed
from crm.text import normalize_name
from crm.validation import normalize_email, normalize_phone

FIELDS = ("first_name", "last_name", "email", "phone", "country")
_PARTICLES = {"van", "von", "der", "den", "ter", "ten", "zu", "de", "del", "da", "das", "do", "dos", "y"}
_ROMAN = {"ii", "iii", "iv"}
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


def name_case(name: str | None, *, last_name: bool = False) -> str | None:
    """A name in capitals or small letters, written as names are; any other name as it was (spaces collapsed)."""
    if name is None:
        return None
    text = " ".join(name.split())
    letters = [ch for ch in text if ch.isalpha()]
    if not letters or not all(unicodedata.name(ch, "").startswith("LATIN") for ch in letters):
        return text
    if any(ch.isupper() for ch in letters) and any(ch.islower() for ch in letters):
        return text  # mixed case was typed on purpose: McDonald, DeVito, van Gogh
    if len(letters) <= 2 and text.isupper():
        return text  # "AJ", "TJ": as likely initials as a short name
    words = text.lower().split(" ")
    # A particle stays small before the rest of a surname ("van der Berg"), not as the first word of a first name.
    return " ".join(word if word in _PARTICLES and i < len(words) - 1 and (last_name or i > 0) else _cased(word)
                    for i, word in enumerate(words))


def _cased(word: str) -> str:
    """One lower-cased word: hyphenated and dotted parts each capitalised, O'/D' prefixes, Mc, roman numerals."""
    if word in _ROMAN:
        return word.upper()
    parts = re.split(r"([-.'’])", word)
    out = []
    for i, part in enumerate(parts):
        after_apostrophe = i >= 2 and parts[i - 1] in "'’"
        if after_apostrophe and len(parts[i - 2]) > 1:
            out.append(part)  # a possessive or contraction, not an O' or D' prefix
        elif part.startswith("mc") and len(part) > 2:
            out.append("Mc" + part[2:].capitalize())
        else:
            out.append(part[:1].upper() + part[1:])
    return "".join(out)


def _country_key(text: str) -> str:
    return re.sub(r"[\W_]+", "", normalize_name(text))


_ALIASES = {"uk": "GB", "england": "GB", "scotland": "GB", "wales": "GB", "greatbritain": "GB", "usa": "US",
            "unitedstatesofamerica": "US", "america": "US", "uae": "AE", "holland": "NL", "czechia": "CZ",
            "southkorea": "KR", "korea": "KR", "northmacedonia": "MK", "ivorycoast": "CI", "turkiye": "TR"}


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    """Country names in the languages phonenumbers ships (English, French, Chinese, Thai, ...) -> ISO code."""
    found: dict[str, set[str]] = defaultdict(set)
    for code in phonenumbers.SUPPORTED_REGIONS:
        for name in LOCALE_DATA.get(code, {}).values():
            if not name.startswith("*"):  # "*aa" points to another language's name
                found[_country_key(name)].add(code)
    names = {key: codes.pop() for key, codes in found.items() if len(codes) == 1 and key}
    return {**names, **_ALIASES}


def country_code(raw: str | None) -> str | None:
    """The ISO 3166-1 alpha-2 code of a country written as a code or a name; ValueError if it is not one."""
    if raw is None or not raw.strip():
        return None
    code = raw.strip().upper()
    if code in phonenumbers.SUPPORTED_REGIONS:
        return code
    found = _country_names().get(_country_key(raw))
    if found is None:
        raise ValueError(f"{raw!r} is not a country we know; write its ISO code, such as 'US' or 'TH'")
    return found


@dataclass(frozen=True)
class Proposal:
    """One field of one contact: the value now, the formatted value, and the contact's version when previewed."""
    contact_id: int
    version: int
    field: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class Problem:
    contact_id: int
    field: str
    value: str
    reason: str


def propose(contact_id: int, version: int, values: dict[str, str | None],
            fields: tuple[str, ...] = FIELDS) -> tuple[list[Proposal], list[Problem]]:
    """The fixes of these fields of one contact's current values (pure: the preview and the apply both call it)."""
    proposals, problems = [], []

    def check(name: str, fix) -> None:
        if name not in fields:
            return
        try:
            after = fix(values[name])
        except (ValidationFailed, ValueError) as exc:
            problems.append(Problem(contact_id, name, values[name], getattr(exc, "reason", str(exc))))
            return
        if after != values[name]:
            proposals.append(Proposal(contact_id, version, name, values[name], after))

    check("first_name", name_case)
    check("last_name", lambda v: name_case(v, last_name=True))
    check("country", country_code)
    check("email", normalize_email)
    if "phone" in fields:
        try:  # a phone is read with the contact's country as fixed here, whether or not that fix is chosen
            country = country_code(values["country"])
        except ValueError:
            country = None
        check("phone", lambda v: _phone(v, country))
    return proposals, problems


def _phone(raw: str | None, country: str | None) -> str | None:
    """E.164, leaving a number already written so alone."""
    if raw is None or _E164.fullmatch(raw):
        return raw
    return normalize_phone(raw, country=country)
