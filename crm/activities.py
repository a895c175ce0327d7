"""Calls, emails, meetings and notes logged on a contact, company or deal, and tasks for someone to do."""
from datetime import datetime

from pydantic import BaseModel
from sqlmodel import Session

from crm.audit import audit, created_fields
from crm.clock import as_utc, utcnow
from crm.errors import NotFound, ValidationFailed
from crm.models import Activity, ActivityKind, Company, Contact, Deal, User
from crm.permissions import Actor, require_read
from crm.validation import require_text


class ActivityInput(BaseModel):
    kind: ActivityKind
    subject: str = ""
    body: str | None = None
    contact_id: int | None = None
    company_id: int | None = None
    deal_id: int | None = None
    occurred_at: datetime | None = None  # defaults to now for calls, emails, meetings and notes
    due_at: datetime | None = None  # required for tasks
    assignee_id: int | None = None  # tasks: defaults to the person creating it


class ActivityView(BaseModel):
    id: int
    kind: ActivityKind
    subject: str
    body: str | None
    contact_id: int | None
    company_id: int | None
    deal_id: int | None
    owner_id: int | None
    assignee_id: int | None
    occurred_at: datetime | None
    due_at: datetime | None
    done_at: datetime | None
    version: int


def _linked(session: Session, actor: Actor, data: ActivityInput) -> tuple[Contact | None, int | None]:
    """Check every linked record exists and is readable by the actor; returns the contact and the company id."""
    contact = session.get(Contact, data.contact_id) if data.contact_id is not None else None
    if data.contact_id is not None:
        if contact is None or contact.deleted_at is not None:
            raise ValidationFailed("contact_id", f"contact {data.contact_id} does not exist")
        require_read(session, actor, "contacts", contact.owner_id, "this contact")
    company_id = data.company_id if data.company_id is not None else (contact.company_id if contact else None)
    if data.company_id is not None and session.get(Company, data.company_id) is None:
        raise ValidationFailed("company_id", f"company {data.company_id} does not exist")
    if data.deal_id is not None:
        deal = session.get(Deal, data.deal_id)
        if deal is None or deal.deleted_at is not None:
            raise ValidationFailed("deal_id", f"deal {data.deal_id} does not exist")
        require_read(session, actor, "deals", deal.owner_id, "this deal")
    if data.contact_id is None and data.company_id is None and data.deal_id is None:
        raise ValidationFailed("contact_id", "an activity belongs to a contact, a company or a deal")
    return contact, company_id


def log_activity(*, session: Session, actor: Actor, data: ActivityInput) -> ActivityView:
    """Record a call, email, meeting or note (it happened), or create a task (it is due). Anyone who may see the
    contact or deal may log on it; the activity is theirs."""
    subject = require_text(data.subject, field="subject", max_length=200)
    body = require_text(data.body, field="body", max_length=10_000, required=False)
    contact, company_id = _linked(session, actor, data)
    now = utcnow()
    values = dict(kind=str(data.kind), subject=subject, body=body, contact_id=data.contact_id, company_id=company_id,
                  deal_id=data.deal_id, owner_id=actor.id)
    if data.kind is ActivityKind.TASK:
        if data.due_at is None:
            raise ValidationFailed("due_at", "a task needs a due date")
        assignee = session.get(User, data.assignee_id or actor.id)
        if assignee is None or not assignee.active:
            raise ValidationFailed("assignee_id", f"user {data.assignee_id} is not an active user")
        values.update(due_at=as_utc(data.due_at), assignee_id=assignee.id)
    else:
        occurred = as_utc(data.occurred_at) or now
        if occurred > now:
            raise ValidationFailed("occurred_at", "a logged call, email, meeting or note cannot be in the future; "
                                                  "create a task instead")
        values.update(occurred_at=occurred, done_at=occurred)
    activity = Activity(**values)
    session.add(activity)
    session.flush()
    audit(session, actor_id=actor.id, entity="activity", record_id=activity.id, action="create",
          changes=created_fields(activity), record_version=activity.version)
    if contact is not None and data.kind is not ActivityKind.TASK and (
            contact.last_engaged_at is None or as_utc(contact.last_engaged_at) < values["occurred_at"]):
        contact.last_engaged_at = values["occurred_at"]  # derived, so no version bump
    return ActivityView.model_validate(activity, from_attributes=True)


def get_activity(*, session: Session, actor: Actor, activity_id: int) -> ActivityView:
    activity = session.get(Activity, activity_id)
    if activity is None or activity.deleted_at is not None:
        raise NotFound(f"Activity {activity_id} does not exist (or was deleted)")
    if activity.contact_id is not None:
        contact = session.get(Contact, activity.contact_id)
        require_read(session, actor, "contacts", contact.owner_id if contact else None, "this activity")
    return ActivityView.model_validate(activity, from_attributes=True)
