"""Field validators shared by forms, imports and web forms. Each raises ValidationFailed naming the field."""
import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from crm.errors import ValidationFailed


def normalize_email(raw: str | None, *, field: str = "email", row: int | None = None) -> str | None:
    """Syntax-check an email (no DNS lookups) and return it normalised, with the domain lower-cased."""
    if raw is None or not raw.strip():
        return None
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed(field, str(exc), row=row) from None
    return result.normalized.lower()


def normalize_phone(raw: str | None, *, country: str | None = None, field: str = "phone",
                    row: int | None = None) -> str | None:
    """Parse a phone in any digit script, using the contact's country as default region; return E.164."""
    if raw is None or not str(raw).strip():
        return None
    region = country.upper() if country else None
    try:
        number = phonenumbers.parse(str(raw), region)
    except phonenumbers.NumberParseException as exc:
        hint = "" if region else " (no country given: write it with a leading +country code)"
        raise ValidationFailed(field, f"not a phone number: {exc}{hint}", row=row) from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationFailed(field, f"{raw!r} is not a valid number for {region or 'its country code'}", row=row)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_COUNTRY = re.compile(r"^[A-Z]{2}$")


def normalize_country(raw: str | None, *, field: str = "country", row: int | None = None) -> str | None:
    """An ISO 3166-1 alpha-2 code, upper-cased; phonenumbers' region list is the vocabulary."""
    if raw is None or not raw.strip():
        return None
    code = raw.strip().upper()
    if not _COUNTRY.match(code) or code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationFailed(field, f"{raw!r} is not an ISO country code such as 'US' or 'TH'", row=row)
    return code


def require_text(value: str | None, *, field: str, max_length: int, required: bool = True,
                 row: int | None = None) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise ValidationFailed(field, "is required", row=row)
        return None
    if len(text) > max_length:
        raise ValidationFailed(field, f"is longer than {max_length} characters", row=row)
    return text


def normalize_domain(raw: str | None, *, field: str = "domain", row: int | None = None) -> str | None:
    """A company's web domain, from "https://www.Acme.com/about" or "acme.com" alike: lower-case host, no "www."."""
    if raw is None or not raw.strip():
        return None
    host = re.sub(r"^[a-z][a-z0-9+.-]*://", "", raw.strip(), flags=re.IGNORECASE).split("/")[0].split("?")[0]
    host = host.split("@")[-1].split(":")[0].strip(".")
    host = host[4:] if host.lower().startswith("www.") else host
    try:  # email-validator's domain rules (IDNA, label lengths, a dot), without DNS
        domain = validate_email(f"x@{host}", check_deliverability=False).domain
    except EmailNotValidError:
        raise ValidationFailed(field, f"{raw!r} is not a web domain such as 'example.com'", row=row) from None
    return domain.lower()


def normalize_phones(pairs: list[tuple[str, str | None]]) -> dict[tuple[str, str | None], str | None | tuple[str]]:
    """normalize_phone for many (raw, country) pairs at once: each E.164 result, or (reason,) if it was refused.

    Pure, and its results pickle, so a bulk import can run it in another process (see crm.imports.phones)."""
    out: dict[tuple[str, str | None], str | None | tuple[str]] = {}
    for raw, country in pairs:
        try:
            out[(raw, country)] = normalize_phone(raw, country=country)
        except ValidationFailed as exc:
            out[(raw, country)] = (exc.reason,)
    return out
