"""Per-locale pools of names, places, companies and phone numbers, drawn from Faker once; rows sample from them."""
import re
from dataclasses import dataclass

import numpy as np
import phonenumbers
from faker import Faker
from faker.decode import unidecode
from phonenumbers import PhoneNumber, PhoneNumberFormat, PhoneNumberType

from crm.text import normalize_name


@dataclass(frozen=True)
class Locale:
    code: str  # Faker locale
    country: str  # ISO 3166-1 alpha-2
    region: str  # sales territory
    weight: float  # share of companies and contacts
    language: str  # as the contact's preferred-language custom field shows it


LOCALES: tuple[Locale, ...] = (
    Locale("en_US", "US", "Americas", 0.26, "English"),
    Locale("en_GB", "GB", "EMEA", 0.10, "English"),
    Locale("de_DE", "DE", "EMEA", 0.10, "Deutsch"),
    Locale("fr_FR", "FR", "EMEA", 0.08, "Français"),
    Locale("it_IT", "IT", "EMEA", 0.09, "Italiano"),
    Locale("es_ES", "ES", "EMEA", 0.07, "Español"),
    Locale("fa_IR", "IR", "EMEA", 0.07, "فارسی"),
    Locale("ja_JP", "JP", "APAC", 0.07, "日本語"),
    Locale("zh_CN", "CN", "APAC", 0.09, "中文"),
    Locale("th_TH", "TH", "APAC", 0.07, "ไทย"),
)
REGIONS = ("Americas", "EMEA", "APAC")
LOCALE_REGION = np.array([REGIONS.index(loc.region) for loc in LOCALES])
LOCALE_WEIGHTS = np.array([loc.weight for loc in LOCALES])
# Addresses under the reserved .example domain (RFC 2606) look real but can never reach anyone.
PERSONAL_MAIL = ("mail.example", "inbox.example", "post.example", "webmail.example")


@dataclass(frozen=True)
class LocalePool:
    """Distinct values for one locale, as object arrays, plus their ASCII and normalised forms."""
    first: np.ndarray
    last: np.ndarray
    first_ascii: np.ndarray  # for email local parts and profile handles
    last_ascii: np.ndarray
    first_key: np.ndarray  # crm.text.normalize_name of each name
    last_key: np.ndarray
    cities: np.ndarray
    streets: np.ndarray
    companies: np.ndarray
    company_slugs: np.ndarray  # for web domains
    jobs: np.ndarray
    phones: np.ndarray  # valid mobile numbers of the locale's country, E.164


def _objects(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _distinct(make, n: int) -> list:
    """Up to n distinct values from a Faker method; stops early once a short list (some locales) runs dry."""
    seen: dict = {}
    misses = 0
    while len(seen) < n and misses < 200:
        value = make()
        misses = misses + 1 if value in seen else 0
        seen.setdefault(value, None)
    return list(seen)


def _cities(fake: Faker, n: int, rng: np.random.Generator) -> list[str]:
    """Distinct city names. Where the provider lists them, sample that list sorted: Faker's it_IT builds it from
    a set, so its order, and with it Faker's picks, change from one Python process to the next."""
    listed = next((p.cities for p in fake.providers if isinstance(getattr(p, "cities", None), (list, tuple))), None)
    if listed is None:
        return _distinct(fake.city, n)
    names = sorted(set(listed))
    return [names[i] for i in np.sort(rng.choice(len(names), size=min(n, len(names)), replace=False))]


def ascii_token(text: str) -> str:
    """Lower-case ASCII letters and digits only (transliterated), for email addresses and handles."""
    return re.sub(r"[^a-z0-9]", "", unidecode(text).lower()) or "x"


def _slug(company: str) -> str:
    words = re.findall(r"[a-z0-9]+", unidecode(company).lower())
    return "-".join(words[:3])[:40].strip("-") or "company"


def _names(fake: Faker, locale: Locale, n: int) -> tuple[list, list, list, list]:
    """First and last names with their ASCII forms; Japanese ones carry Faker's romanisation."""
    if locale.code == "ja_JP":
        firsts = _distinct(fake.first_name_pair, n)
        lasts = _distinct(fake.last_name_pair, n)
        return ([f[0] for f in firsts], [x[0] for x in lasts],
                [ascii_token(f[2]) for f in firsts], [ascii_token(x[2]) for x in lasts])
    firsts, lasts = _distinct(fake.first_name, n), _distinct(fake.last_name, n)
    return firsts, lasts, [ascii_token(f) for f in firsts], [ascii_token(x) for x in lasts]


def build_pool(locale: Locale, *, seed: int, n: int, phones: int) -> LocalePool:
    """Draw every pool of one locale from a Faker seeded for it."""
    fake = Faker(locale.code)
    fake.seed_instance(seed)
    rng = np.random.default_rng(seed)
    first, last, first_ascii, last_ascii = _names(fake, locale, n)
    companies = _distinct(fake.company, n)
    streets = [" ".join(s.split()) for s in _distinct(fake.street_address, n)]  # en_GB puts newlines in some
    return LocalePool(
        first=_objects(first), last=_objects(last), first_ascii=_objects(first_ascii), last_ascii=_objects(last_ascii),
        first_key=_objects([normalize_name(f) for f in first]), last_key=_objects([normalize_name(x) for x in last]),
        cities=_objects(_cities(fake, max(n // 5, 20), rng)), streets=_objects(streets),
        companies=_objects(companies), company_slugs=_objects([_slug(c) for c in companies]),
        jobs=_objects(_distinct(fake.job, max(n // 5, 20))),
        phones=_objects(phone_pool(locale.country, phones, rng)))


def phone_pool(region: str, n: int, rng: np.random.Generator) -> list[str]:
    """Distinct mobile numbers valid for the region: the example number with its last digits randomised."""
    example = phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
    national = str(example.national_number)
    free = min(6, len(national) - 3)
    head = int(national[:-free]) * 10**free
    found: dict[str, None] = {}
    for candidate in (head + rng.choice(10**free, size=min(n * 2, 10**free), replace=False)).tolist():
        number = PhoneNumber(country_code=example.country_code, national_number=candidate,
                             italian_leading_zero=example.italian_leading_zero)
        if phonenumbers.is_valid_number(number):
            found[phonenumbers.format_number(number, PhoneNumberFormat.E164)] = None
            if len(found) >= n:
                break
    return list(found)
