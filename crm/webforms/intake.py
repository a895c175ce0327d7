"""A web-form submission: validated like a manual entry, matched by email, then one transaction that creates or
fills the contact, records a form-submission event, audits, and fires the automations.

What a form may change on a contact it finds: it fills what is missing (an empty text field, a custom field
without a value, email opt-in that is off, interests not listed yet) and never changes or clears a stored value,
since anyone who can load the page holding the form can post to it. Every submitted value stays in the event, so
a person can see what was sent and decide. A submission is judged on its own, as a new contact's entry would
be, whether or not the email is known: the answer never tells a caller which emails the CRM holds.

The writer is a system actor (no user: audit rows show "system"), with the rights to create and fill any
contact and to write the custom fields its mapping names, as an admin could (crm.webforms.fields.FORM_ROLE).
Every audit row a submission writes has the context "web form <key>", including one row with the action
"submitted" on the contact, so a submission that changed nothing is on its record too.
"""
import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, select

from crm.audit import audit, audit_context, load_for_update
from crm.automations.engine import handle_event
from crm.clock import utcnow
from crm.contacts import clean_contact, create_contact, update_contact
from crm.customfields import get_values, list_field_defs, parse_value
from crm.db import is_sqlite
from crm.errors import ValidationFailed
from crm.models import BehaviorEvent, Contact, ContactInput, Entity, EventKind, WebForm
from crm.permissions import Actor
from crm.webforms.fields import CUSTOM_PREFIX, FLAG_TARGETS, FORM_ROLE, LIST_TARGETS, read_submission
from crm.webforms.forms import authenticate_form

FORM_ACTOR = Actor(id=None, email="", full_name="Web form", role=FORM_ROLE, team_id=None,  # type: ignore[arg-type]
                   rights=frozenset({"contacts.read_all", "contacts.edit_all"}))
MAX_URL = 500  # behavior_event.url


@dataclass(frozen=True)
class Submission:
    contact_id: int
    created: bool
    event_id: int
    filled: tuple[str, ...]  # the fields this submission wrote (all it carried, for a new contact)
    firings: tuple[int, ...]  # automation firings it set off


def submit_form(*, session: Session, form_key: str, token: Any, fields: Mapping[str, Any],
                page_url: str | None = None) -> Submission:
    """Take one submission of the form `form_key`. Raises NotFound (no such active form), AuthenticationFailed
    (wrong token) or ValidationFailed naming the form's own field; the caller's transaction then writes nothing."""
    form = authenticate_form(session=session, form_key=form_key, token=token)
    with audit_context(session, f"web form {form.key}"):  # on every audit row the submission writes
        contact_id, created, filled = _create_or_fill(session, form, fields)
        event = _record(session, form.key, contact_id, created=created, fields=fields, mapping=form.mapping,
                        page_url=page_url)
        firings = handle_event(session=session, event="form_submitted", entity="contact", record_id=contact_id,
                               context={"form_key": form.key, "event_id": event.id})
    return Submission(contact_id=contact_id, created=created, event_id=event.id, filled=tuple(sorted(filled)),
                      firings=tuple(firings))


def _create_or_fill(session: Session, form: WebForm, fields: Mapping[str, Any]) -> tuple[int, bool, list[str]]:
    """(contact id, created?, fields written): a new contact for a new email, else the oldest live one filled."""
    with _named_by_form(form.mapping):
        values, custom = _validated(session, form.mapping, fields)
        _lock_email(session, values["email"])
        found = session.exec(select(Contact.id).where(Contact.email == values["email"], Contact.deleted_at.is_(None))
                             .order_by(Contact.id).limit(1)).first()
        if found is not None:
            return found, False, _fill(session, found, values, custom)
        data = ContactInput(**{"source": f"form:{form.key}", **values})
        contact_id = create_contact(session=session, actor=FORM_ACTOR, data=data, custom=custom).id
        return contact_id, True, [*values, *(CUSTOM_PREFIX + k for k in custom)]


def _validated(session: Session, mapping: Mapping[str, str], fields: Mapping[str, Any]) -> tuple[dict, dict]:
    """The submitted contact values, cleaned as a manual entry of a new contact would be, and the custom values."""
    values, custom = read_submission(mapping, fields)
    cleaned = clean_contact(session, ContactInput(**values))
    if cleaned["email"] is None:
        raise ValidationFailed("email", "is required: submissions are matched to contacts by their email")
    fillable = {f.key: f for f in list_field_defs(session=session, actor=FORM_ACTOR, entity=Entity.CONTACT,
                                                    editable_only=True)}
    if lost := sorted(custom.keys() - fillable.keys()):  # archived, or made admin-proof, since the form was set up
        raise ValidationFailed(lost[0], "this form may no longer fill this custom field; ask an admin to fix the form")
    for field in fillable.values():
        if field.required or field.key in custom:
            parse_value(field, custom.get(field.key))  # raises naming the field, as the create would
    return {k: cleaned[k] for k in values}, custom


def _fill(session: Session, contact_id: int, values: dict[str, Any], custom: dict[str, Any]) -> list[str]:
    """Write only what the stored contact lacks; returns the fields written."""
    contact = load_for_update(session, Contact, contact_id, label="Contact")
    patch = {}
    for field, value in values.items():
        stored = getattr(contact, field)
        if field in FLAG_TARGETS:
            changed = value and not stored
        elif field in LIST_TARGETS:
            changed = not set(value) <= set(stored)
            value = sorted({*stored, *value})
        else:
            changed = stored in (None, "")
        if changed:
            patch[field] = value
    stored_custom = get_values(session=session, actor=FORM_ACTOR, entity=Entity.CONTACT, record_id=contact_id)
    custom_patch = {k: v for k, v in custom.items() if stored_custom.get(k) is None}
    if patch or custom_patch:
        update_contact(session=session, actor=FORM_ACTOR, contact_id=contact_id, data=ContactInput(**patch),
                       seen_version=contact.version, custom=custom_patch or None)
    return [*patch, *(CUSTOM_PREFIX + k for k in custom_patch)]


def _record(session: Session, form_key: str, contact_id: int, *, created: bool, fields: Mapping[str, Any],
            mapping: Mapping[str, str], page_url: str | None) -> BehaviorEvent:
    """The form-submission event with every mapped value as sent, the contact's engagement, and the audit row."""
    now = utcnow()
    sent = {name: fields[name] for name in mapping if fields.get(name) not in (None, "", [])}
    url = page_url if page_url and len(page_url) <= MAX_URL else None
    event = BehaviorEvent(contact_id=contact_id, kind=EventKind.FORM_SUBMISSION, occurred_at=now, url=url,
                          properties={"form": form_key, "created": created, "values": sent})
    session.add(event)
    contact = session.get(Contact, contact_id)
    contact.last_engaged_at = now  # derived, so no version bump (as logged activities do)
    session.flush()
    audit(session, actor_id=None, entity="contact", record_id=contact_id, action="submitted",
          record_version=contact.version)
    return event


def _lock_email(session: Session, email: str) -> None:
    """Two submissions with one new email must not both create a contact. SQLite's write transaction already
    runs them one after the other; on PostgreSQL a transaction-scoped advisory lock on the email does."""
    if is_sqlite(session):
        return
    key = int.from_bytes(hashlib.sha256(f"web_form:{email}".encode()).digest()[:8], "big", signed=True)
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


@contextmanager
def _named_by_form(mapping: Mapping[str, str]) -> Iterator[None]:
    """Re-raise a ValidationFailed about a contact or custom field under the form field that carried it."""
    by_target = {target: name for name, target in mapping.items()}
    try:
        yield
    except ValidationFailed as exc:
        name = by_target.get(exc.field) or by_target.get(CUSTOM_PREFIX + exc.field)
        if name is None or name == exc.field:
            raise
        raise ValidationFailed(name, exc.reason) from None
