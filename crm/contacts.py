"""Contact use cases: create, read and edit with validation, rights, version checks and audit."""
from typing import Any

from sqlmodel import Session, select

from crm.audit import apply_changes, audit, check_version, load_for_update
from crm.customfields import get_values
from crm.errors import NotFound, ValidationFailed
from crm.models import Company, Contact, ContactInput, ContactView, Entity, Lifecycle, User
from crm.permissions import Actor, require_edit, require_read
from crm.rows import insert_record, save_record, set_deleted
from crm.text import contact_name_key
from crm.validation import normalize_country, normalize_email, normalize_phone, require_text

_TEXT_LIMITS = {"job_title": 150, "address": 300, "city": 120, "source": 60, "external_id": 100}


def _view(contact: Contact) -> ContactView:
    return ContactView.model_validate(contact, from_attributes=True)


def clean_contact(session: Session, data: ContactInput, *, row: int | None = None, phones=None) -> dict[str, Any]:
    """Validate every field and return the column values to store. Raises ValidationFailed naming the field.

    `phones` may hold normalize_phone's answers checked ahead (crm.imports.phones): (raw, country) -> result."""
    first = require_text(data.first_name, field="first_name", max_length=100, required=False, row=row) or ""
    last = require_text(data.last_name, field="last_name", max_length=100, required=False, row=row) or ""
    if not first and not last:
        raise ValidationFailed("first_name", "a contact needs a first or a last name", row=row)
    country = normalize_country(data.country, row=row)
    values: dict[str, Any] = {
        "first_name": first, "last_name": last, "name_key": contact_name_key(first, last),
        "email": normalize_email(data.email, row=row),
        "phone": _phone(data.phone, country, row, phones),
        "country": country, "lifecycle_stage": Lifecycle(data.lifecycle_stage).value,
        "company_id": data.company_id, "owner_id": data.owner_id, "lead_score": data.lead_score,
        "social_profiles": dict(data.social_profiles), "interests": sorted({i.strip() for i in data.interests if i.strip()}),
        "email_opt_in": data.email_opt_in, "do_not_contact": data.do_not_contact,
    }
    for field, limit in _TEXT_LIMITS.items():
        values[field] = require_text(getattr(data, field), field=field, max_length=limit, required=False, row=row)
    if data.lead_score is not None and not 0 <= data.lead_score <= 100:
        raise ValidationFailed("lead_score", "must be between 0 and 100", row=row)
    if data.company_id is not None and session.get(Company, data.company_id) is None:
        raise ValidationFailed("company_id", f"company {data.company_id} does not exist", row=row)
    owner = session.get(User, data.owner_id) if data.owner_id is not None else None
    if data.owner_id is not None and (owner is None or not owner.active):
        raise ValidationFailed("owner_id", f"user {data.owner_id} is not an active user", row=row)
    return values


def _phone(raw: str | None, country: str | None, row: int | None, phones) -> str | None:
    """normalize_phone, or its answer checked ahead when `phones` has it."""
    try:
        result = phones.get((raw, country)) if phones is not None and raw else None
    except KeyError:
        result = None
    if result is None:
        return normalize_phone(raw, country=country, row=row)
    if isinstance(result, tuple):
        raise ValidationFailed("phone", result[0], row=row)
    return result


def create_contact(*, session: Session, actor: Actor, data: ContactInput,
                   custom: dict[str, Any] | None = None) -> ContactView:
    """Create a contact; a rep's new contacts are theirs unless they may assign them to others."""
    if data.owner_id is None:
        data = data.model_copy(update={"owner_id": actor.id})
    require_edit(session, actor, "contacts", data.owner_id, "a contact owned by that user")
    contact = insert_record(session, actor, Contact(**clean_contact(session, data)), entity=Entity.CONTACT,
                            custom=custom)
    from crm.automations.engine import handle_event  # here: the automations import this module

    handle_event(session=session, event="contact_created", entity="contact", record_id=contact.id)
    return _view(contact)


def get_contact(*, session: Session, actor: Actor, contact_id: int, include_deleted: bool = False) -> ContactView:
    contact = session.get(Contact, contact_id)
    if contact is None or (contact.deleted_at is not None and not include_deleted):
        raise NotFound(f"Contact {contact_id} does not exist (or was deleted)")
    require_read(session, actor, "contacts", contact.owner_id, "this contact")
    return _view(contact)


def update_contact(*, session: Session, actor: Actor, contact_id: int, data: ContactInput, seen_version: int,
                   custom: dict[str, Any] | None = None) -> ContactView:
    """Save the fields set in `data`, edited on version `seen_version`; a newer stored version raises EditConflict."""
    contact = load_for_update(session, Contact, contact_id, label="Contact")
    require_edit(session, actor, "contacts", contact.owner_id, "this contact")
    check_version(session, entity="contact", record=contact, seen_version=seen_version)
    # Only the fields the caller set change; everything else keeps its stored value.
    current = {name: getattr(contact, name) for name in ContactInput.model_fields}
    values = clean_contact(session, ContactInput(**{**current, **data.model_dump(exclude_unset=True)}))
    if values["owner_id"] != contact.owner_id:
        require_edit(session, actor, "contacts", values["owner_id"], "a contact owned by that user")
    save_record(session, actor, contact, values, entity=Entity.CONTACT, custom=custom,
                searched={"first_name", "last_name", "email", "phone"})
    return _view(contact)


def delete_contact(*, session: Session, actor: Actor, contact_id: int, seen_version: int) -> ContactView:
    """Soft delete: the contact leaves lists, segments and counts; restore brings it back exactly as it was."""
    return _view(set_deleted(session, actor, Contact, contact_id, deleted=True, seen_version=seen_version,
                             entity="contact"))


def restore_contact(*, session: Session, actor: Actor, contact_id: int, seen_version: int) -> ContactView:
    return _view(set_deleted(session, actor, Contact, contact_id, deleted=False, seen_version=seen_version,
                             entity="contact"))


def assign_owner(*, session: Session, actor: Actor, contact_ids: list[int], owner_id: int) -> int:
    """Give these contacts to another owner, all or none: the actor must be able to edit each one, and to hand
    contacts to that owner. Returns how many changed hands."""
    owner = session.get(User, owner_id)
    if owner is None or not owner.active:
        raise ValidationFailed("owner_id", f"user {owner_id} is not an active user")
    require_edit(session, actor, "contacts", owner_id, f"contacts owned by {owner.full_name}")
    changed = 0
    for contact_id in sorted(set(contact_ids)):
        contact = load_for_update(session, Contact, contact_id, label="Contact")
        require_edit(session, actor, "contacts", contact.owner_id, f"contact {contact.id}")
        diff = apply_changes(contact, {"owner_id": owner_id})
        if diff:
            audit(session, actor_id=actor.id, entity="contact", record_id=contact.id, action="update", changes=diff,
                  record_version=contact.version, context="bulk_assign")
            changed += 1
    return changed


def contact_custom_values(*, session: Session, actor: Actor, contact_id: int) -> dict[str, Any]:
    get_contact(session=session, actor=actor, contact_id=contact_id)
    return get_values(session=session, actor=actor, entity=Entity.CONTACT, record_id=contact_id)


def contacts_owned_by(session: Session, owner_id: int, limit: int = 50) -> list[ContactView]:
    rows = session.exec(select(Contact).where(Contact.owner_id == owner_id, Contact.deleted_at.is_(None))
                        .order_by(Contact.updated_at.desc()).limit(limit)).all()
    return [_view(c) for c in rows]
