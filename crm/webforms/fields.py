"""What a web form's fields may fill on a contact, and the submitted values as the input of a manual entry.

A mapping is {form field name: target}; a target is a contact field below or `cf.<key>` for a contact custom
field. Submitted values arrive as JSON (any shape) or as form-encoded text; `read_submission` turns them into
plain text, yes/no and lists, or refuses them naming the form field. The contact rules themselves (names, email,
phone, country, custom-field types) are the manual entry's: crm.contacts.clean_contact and crm.customfields.
"""
import math
from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, select

from crm.errors import ValidationFailed
from crm.imports.values import parse_bool, parse_list
from crm.models import CustomFieldDef, Entity, Role

# Contact fields a form may fill: what a visitor can say about themselves. Owner, company, lifecycle stage,
# lead score and do-not-contact are the CRM's own judgement and stay out of reach of a public page.
TEXT_TARGETS = frozenset({"first_name", "last_name", "email", "phone", "job_title", "address", "city", "country",
                          "source"})
FLAG_TARGETS = frozenset({"email_opt_in"})
LIST_TARGETS = frozenset({"interests"})
CUSTOM_PREFIX = "cf."
TOKEN_FIELD = "form_token"  # the token's field in a plain HTML form (a hidden input), never mapped
FORM_ROLE = Role.ADMIN  # custom fields a form fills must be editable by this role (see crm.webforms.intake)
MAX_FIELD_NAME = 100
MAX_INTERESTS, MAX_INTEREST_LENGTH = 20, 60
MAX_INTEGER = 2 ** 53  # beyond this a number is not a person's input, and would not survive a float


def check_mapping(session: Session, mapping: Any) -> dict[str, str]:
    """The mapping, checked: every target known and used once, and one field mapped to the email."""
    if not isinstance(mapping, Mapping) or not mapping:
        raise ValidationFailed("mapping", "map at least the form's email field")
    custom = _custom_fields(session)
    seen: dict[str, str] = {}
    for name, target in mapping.items():
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_FIELD_NAME or name == TOKEN_FIELD:
            raise ValidationFailed("mapping", f"{name!r} cannot be a form field's name (1 to {MAX_FIELD_NAME} "
                                              f"characters, and not {TOKEN_FIELD!r}, which carries the token)")
        _check_target(name, target, custom)
        if target in seen:
            raise ValidationFailed("mapping", f"{seen[target]!r} and {name!r} both fill {target}")
        seen[target] = name
    if "email" not in seen:
        raise ValidationFailed("mapping", "one field must fill the email: submissions are matched to contacts by it")
    return dict(mapping)


def _check_target(name: str, target: Any, custom: dict[str, CustomFieldDef]) -> None:
    known = TEXT_TARGETS | FLAG_TARGETS | LIST_TARGETS
    if isinstance(target, str) and target in known:
        return
    if not isinstance(target, str) or not target.startswith(CUSTOM_PREFIX):
        raise ValidationFailed("mapping", f"{name!r} fills {target!r}, which is not one of "
                                          f"{', '.join(sorted(known))} or cf.<custom field key>")
    key = target.removeprefix(CUSTOM_PREFIX)
    if key not in custom:
        raise ValidationFailed("mapping", f"{name!r} fills {target!r}, but contacts have no custom field {key!r}")
    if FORM_ROLE not in custom[key].edit_roles:
        raise ValidationFailed("mapping", f"{name!r} fills {target!r}, which admins may not edit, "
                                          "so neither may a form")


def _custom_fields(session: Session) -> dict[str, CustomFieldDef]:
    rows = session.exec(select(CustomFieldDef).where(CustomFieldDef.entity == Entity.CONTACT,
                                                     CustomFieldDef.deleted_at.is_(None))).all()
    return {f.key: f for f in rows}


def read_submission(mapping: Mapping[str, str], fields: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """({contact field: value}, {custom key: value}) from the mapped fields that carry a value. Fields the mapping
    does not name (a submit button, a honeypot) are ignored; an empty field is no value, never a blank to store."""
    contact, custom = {}, {}
    for name, target in mapping.items():
        value = _value(name, target, fields.get(name))
        if value is None:
            continue
        if target.startswith(CUSTOM_PREFIX):
            custom[target.removeprefix(CUSTOM_PREFIX)] = value
        else:
            contact[target] = value
    return contact, custom


def _value(name: str, target: str, raw: Any) -> Any:
    if target in LIST_TARGETS:
        return _list(name, raw)
    if isinstance(raw, list) and len(raw) == 1:  # a form-encoded field sent once is a one-item list to some clients
        raw = raw[0]
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, (list, dict)):
        raise ValidationFailed(name, "expects a single value")
    if isinstance(raw, str):
        raw = _text(name, raw)
    else:
        _check_number(name, raw)
    if target in FLAG_TARGETS:
        return _flag(name, raw)
    if target in TEXT_TARGETS and not isinstance(raw, str):
        if isinstance(raw, bool):
            raise ValidationFailed(name, "expects text, not yes/no")
        return str(raw)
    return raw  # text, or a custom field's number or yes/no, typed by crm.customfields.parse_value


def _flag(name: str, raw: Any) -> bool:
    try:
        return raw if isinstance(raw, bool) else parse_bool(str(raw))
    except ValueError as exc:
        raise ValidationFailed(name, str(exc)) from None


def _list(name: str, raw: Any) -> list[str] | None:
    """Interests: a list (repeated form fields, checkboxes) or one text with semicolons between the items."""
    items = raw if isinstance(raw, list) else [] if raw is None else [raw]
    if not all(isinstance(i, str) for i in items):
        raise ValidationFailed(name, "expects text items")
    found = list(dict.fromkeys(p for i in items for p in parse_list(_text(name, i))))
    if len(found) > MAX_INTERESTS or any(len(i) > MAX_INTEREST_LENGTH for i in found):
        raise ValidationFailed(name, f"at most {MAX_INTERESTS} items of at most {MAX_INTEREST_LENGTH} characters")
    return found or None


def _check_number(name: str, raw: Any) -> None:
    if isinstance(raw, float) and not math.isfinite(raw):
        raise ValidationFailed(name, "must be a finite number")
    if isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) > MAX_INTEGER:
        raise ValidationFailed(name, "is too large a number")
    if not isinstance(raw, (bool, int, float)):
        raise ValidationFailed(name, "is not a value a form field can hold")


def _text(name: str, raw: str) -> str:
    """Text any database stores: no NUL characters (PostgreSQL refuses them), no unpaired surrogates (not UTF-8)."""
    if "\x00" in raw:
        raise ValidationFailed(name, "contains a NUL character")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationFailed(name, "is not valid Unicode text") from None
    return raw
