"""Data-subject requests for one contact: export everything we hold as JSON, or erase the personal data.

Both need the right `privacy.erase` (admins by default): whoever may erase a person's data is who handles their
requests, and a full export shows fields that other roles may not see. Erasure anonymises rather than deletes
rows, so deal amounts, order totals, activity counts and event counts stay correct; see docs/decisions.md.
"""
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, SQLModel, select

from crm import search
from crm.audit import apply_changes, audit, check_version, load_for_update
from crm.clock import utcnow
from crm.errors import NotFound
from crm.models import (
    Activity, AuditLog, BehaviorEvent, Company, Contact, ContactTag, CustomFieldDef, CustomFieldValue, Deal,
    DealContact, Entity, HygieneChange, ImportChange, ListSubscriptionEvent, MergeLog, Notification, Order,
    OrderLine, PredictionScore, Product, Segment, SegmentMember, SegmentSnapshot, SegmentSnapshotMember, Stage,
    SurveyResponse, Tag, Ticket,
)
from crm.permissions import Actor, require
from crm.text import contact_name_key

ERASED = "[erased]"
RIGHT = "privacy.erase"
_SKIP = {"contact_id"}  # every related row below belongs to the contact; repeating its id adds nothing


def _plain(value: Any) -> Any:
    """JSON-ready: dates as ISO strings, enums as their values, containers recursively."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _row(record: SQLModel, *, drop: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    data = {k: v for k, v in record.model_dump().items() if k not in _SKIP and k not in drop}
    return _plain({**data, **extra})


def _contact(session: Session, contact_id: int, *, lock: bool) -> Contact:
    if lock:
        return load_for_update(session, Contact, contact_id, label="Contact", include_deleted=True)
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"Contact {contact_id} does not exist")
    return contact


def _custom_values(session: Session, contact_id: int) -> list[dict[str, Any]]:
    rows = session.exec(select(CustomFieldValue, CustomFieldDef).join(CustomFieldDef)
                        .where(CustomFieldDef.entity == Entity.CONTACT, CustomFieldValue.record_id == contact_id)
                        .order_by(CustomFieldDef.position, CustomFieldDef.id)).all()
    return [_plain({"key": d.key, "label": d.label, "type": d.field_type, "archived": d.deleted_at is not None,
                    "value": next((v for v in (row.value_text, row.value_number, row.value_bool, row.value_date)
                                   if v is not None), None)}) for row, d in rows]


def _deals(session: Session, contact_id: int) -> list[dict[str, Any]]:
    roles = dict(session.exec(select(DealContact.deal_id, DealContact.role)
                              .where(DealContact.contact_id == contact_id)).all())
    rows = session.exec(select(Deal, Stage.name).join(Stage, Stage.id == Deal.stage_id)
                        .where(or_(Deal.contact_id == contact_id, Deal.id.in_(list(roles) or [-1])))
                        .order_by(Deal.id)).all()
    keep = ("id", "title", "status", "amount", "currency", "expected_close", "closed_at", "created_at", "deleted_at")
    return [_plain({**{k: getattr(d, k) for k in keep}, "stage": stage, "role": roles.get(d.id),
                    "primary_contact": d.contact_id == contact_id}) for d, stage in rows]


def _orders(session: Session, contact_id: int) -> list[dict[str, Any]]:
    orders = session.exec(select(Order).where(Order.contact_id == contact_id).order_by(Order.id)).all()
    lines = session.exec(select(OrderLine, Product.name).join(Product)
                         .where(OrderLine.order_id.in_([o.id for o in orders] or [-1])).order_by(OrderLine.id)).all()
    return [_row(o, lines=[{"product": name, "quantity": line.quantity, "unit_price": line.unit_price}
                           for line, name in lines if line.order_id == o.id]) for o in orders]


def _segments(session: Session, contact_id: int) -> dict[str, list[dict[str, Any]]]:
    static = session.exec(select(Segment.name, SegmentMember.created_at).join(Segment)
                          .where(Segment.entity == "contact", SegmentMember.record_id == contact_id)).all()
    snapshots = session.exec(
        select(Segment.name, SegmentSnapshot.purpose, SegmentSnapshot.taken_at)
        .join(SegmentSnapshot, SegmentSnapshot.segment_id == Segment.id)
        .join(SegmentSnapshotMember, SegmentSnapshotMember.snapshot_id == SegmentSnapshot.id)
        .where(Segment.entity == "contact", SegmentSnapshotMember.record_id == contact_id)
        .order_by(SegmentSnapshot.taken_at)).all()
    return _plain({"static": [{"segment": n, "since": at} for n, at in static],
                   "snapshots": [{"segment": n, "purpose": p, "taken_at": at} for n, p, at in snapshots]})


def _related(session: Session, model: type[SQLModel], contact_id: int, order) -> list[dict[str, Any]]:
    return [_row(r) for r in session.exec(select(model).where(model.contact_id == contact_id).order_by(order)).all()]


def export_contact_data(*, session: Session, actor: Actor, contact_id: int,
                        context: str | None = None) -> dict[str, Any]:
    """Everything held about one contact, JSON-serialisable; every custom field whatever its view roles, because
    the person is entitled to all of it. Audited as `privacy_export`."""
    require(actor, RIGHT, "export a contact's personal data")
    contact = _contact(session, contact_id, lock=False)
    company = session.get(Company, contact.company_id) if contact.company_id else None
    tags = session.exec(select(Tag.name).join(ContactTag).where(ContactTag.contact_id == contact_id)
                        .order_by(Tag.name)).all()
    audit_rows = session.exec(select(AuditLog).where(AuditLog.entity == "contact", AuditLog.record_id == contact_id)
                              .order_by(AuditLog.id)).all()
    scores = session.exec(select(PredictionScore).where(PredictionScore.entity == "contact",
                                                        PredictionScore.record_id == contact_id)).all()
    data = {
        "exported_at": utcnow().isoformat(),
        "contact": _row(contact),
        "custom_fields": _custom_values(session, contact_id),
        "tags": list(tags),
        "company": {"name": company.name} if company else None,
        "deals": _deals(session, contact_id),
        "activities": _related(session, Activity, contact_id, Activity.id),
        "behavior_events": _related(session, BehaviorEvent, contact_id, BehaviorEvent.occurred_at),
        "orders": _orders(session, contact_id),
        "tickets": _related(session, Ticket, contact_id, Ticket.opened_at),
        "survey_responses": _related(session, SurveyResponse, contact_id, SurveyResponse.answered_at),
        "list_subscriptions": _related(session, ListSubscriptionEvent, contact_id, ListSubscriptionEvent.occurred_at),
        "segments": _segments(session, contact_id),
        "scores": [_row(s, drop=("entity", "record_id")) for s in scores],
        "audit_history": [_row(r, drop=("entity", "record_id")) for r in audit_rows],
    }
    audit(session, actor_id=actor.id, entity="contact", record_id=contact_id, action="privacy_export",
          context=context)
    return data


class ErasureReport(SQLModel):
    """What an erasure changed; already_erased when an earlier erasure had left nothing to do."""
    contact_id: int
    already_erased: bool
    contact_version: int
    custom_values_deleted: int = 0
    rows_anonymised: dict[str, int] = {}
    audit_values_erased: int = 0


def erased_name(contact_id: int) -> tuple[str, str]:
    """The first and last name an erased contact carries, which is also how the UI recognises one."""
    return "Erased", f"contact #{contact_id}"


def is_erased(contact: Contact | Any) -> bool:
    """True for a contact (or ContactView) whose personal data was erased."""
    return (contact.first_name, contact.last_name) == erased_name(contact.id) and contact.deleted_at is not None


def _anonymised_contact(contact: Contact) -> dict[str, Any]:
    """Personal fields emptied; country, lifecycle stage, source, owner, company and scores stay for the KPIs."""
    first, last = erased_name(contact.id)
    blank = dict.fromkeys(("email", "phone", "address", "city", "job_title", "external_id"))
    return {"first_name": first, "last_name": last, "name_key": contact_name_key(first, last), **blank,
            "social_profiles": {}, "interests": [], "do_not_contact": True, "email_opt_in": False,
            "deleted_at": contact.deleted_at or utcnow()}


# Free text on rows that belong to the contact: (model, audit entity, values to set).
_RELATED_TEXT = (
    (Activity, "activity", {"subject": ERASED, "body": None}),
    (BehaviorEvent, "behavior_event", {"url": None, "campaign": None, "properties": {}}),
    (SurveyResponse, "survey_response", {"comment": None}),
    (Ticket, "ticket", {"subject": ERASED}),
)


def _anonymise_related(session: Session, contact_id: int) -> tuple[dict[str, int], list[tuple]]:
    """Blank the free text of the contact's activities, events, surveys and tickets; keep kinds, times, scores."""
    counts, audited = {}, []
    for model, entity, values in _RELATED_TEXT:
        rows = session.exec(select(model).where(model.contact_id == contact_id)).all()
        counts[entity] = sum(1 for row in rows if apply_changes(row, values))
        audited.append((entity, [row.id for row in rows], list(values)))
    return counts, audited


def _erase_bookkeeping(session: Session, contact_id: int) -> int:
    """Merge snapshots, import before-states, hygiene job values and notifications that hold the contact's values."""
    changed = 0
    for merge in session.exec(select(MergeLog).where(MergeLog.entity == "contact", or_(
            MergeLog.survivor_id == contact_id, MergeLog.merged_id == contact_id))).all():
        changed += bool(apply_changes(merge, {"snapshot": {"erased": True}}))
    for change in session.exec(select(ImportChange).where(ImportChange.entity == "contact",
                                                          ImportChange.record_id == contact_id)).all():
        if change.before:
            change.before, changed = {}, changed + 1  # a revert restores nothing personal
    for change in session.exec(select(HygieneChange).where(HygieneChange.entity == "contact",
                                                           HygieneChange.record_id == contact_id)).all():
        if change.before or change.after:  # formatting jobs hold old and new names, emails and phones
            change.before, change.after, changed = {}, {}, changed + 1
    for note in session.exec(select(Notification).where(Notification.entity == "contact",
                                                        Notification.record_id == contact_id)).all():
        changed += bool(apply_changes(note, {"message": ERASED}))
    return changed


def _erase_audit_values(session: Session, entity: str, record_ids: list[int], fields: list[str] | None) -> int:
    """Replace old and new values by ERASED, keeping who, when, which field and the action."""
    if not record_ids:
        return 0
    total = 0
    for column in (AuditLog.old_value, AuditLog.new_value):
        stmt = update(AuditLog).where(AuditLog.entity == entity, AuditLog.record_id.in_(record_ids),
                                      column.is_not(None), column != ERASED)
        if fields is not None:
            stmt = stmt.where(AuditLog.field.in_(fields))
        total += session.execute(stmt.values({column.key: ERASED}),
                                 execution_options={"synchronize_session": False}).rowcount
    return total


def erase_contact(*, session: Session, actor: Actor, contact_id: int, seen_version: int | None = None,
                  context: str | None = None) -> ErasureReport:
    """Anonymise one contact's personal data everywhere we hold it, keep every aggregate, and soft-delete the
    contact so it leaves lists, search and segments. Safe to repeat."""
    require(actor, RIGHT, "erase a contact's personal data")
    contact = _contact(session, contact_id, lock=True)
    if seen_version is not None:
        check_version(session, entity="contact", record=contact, seen_version=seen_version)
    already = is_erased(contact)
    changed = bool(apply_changes(contact, _anonymised_contact(contact)))
    values = session.exec(select(CustomFieldValue).join(CustomFieldDef).where(
        CustomFieldDef.entity == Entity.CONTACT, CustomFieldValue.record_id == contact_id)).all()
    for value in values:  # every type: a number (income) or a date (birthday) can be as personal as text
        session.delete(value)
    counts, audited = _anonymise_related(session, contact_id)
    counts["bookkeeping"] = _erase_bookkeeping(session, contact_id)
    session.flush()
    erased_values = _erase_audit_values(session, "contact", [contact_id], None)
    erased_values += sum(_erase_audit_values(session, e, ids, fields) for e, ids, fields in audited)
    if changed or values or any(counts.values()) or erased_values:
        if not changed:
            contact.version += 1
        audit(session, actor_id=actor.id, entity="contact", record_id=contact_id, action="erase",
              record_version=contact.version, context=context)
        already = False
    session.flush()
    search.reindex(session, "contact", [contact_id])  # drops the tokens of the old name, email and phone
    return ErasureReport(contact_id=contact_id, already_erased=already, contact_version=contact.version,
                         custom_values_deleted=len(values), rows_anonymised=counts, audit_values_erased=erased_values)
