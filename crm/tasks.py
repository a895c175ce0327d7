"""A rep's tasks inbox (overdue, due today, upcoming, snoozed, and their notifications) and what they do with a
task: mark it done, snooze it, reopen it.

Buckets, by the UTC day of `now` as on the home page (crm.home reads the same conditions):
- a task snoozed until a moment still ahead is hidden from the three lists (shown apart, as snoozed) and comes
  back by itself when the snooze ends;
- a visible task is due at its due time, or at the end of its snooze when that is later (snoozing an overdue task
  until tomorrow makes it tomorrow's task); it is then overdue (due before today), due today, or upcoming (in the
  seven days after today).
Tasks are created by `crm.activities.log_activity` (and by automation rules through it).
"""
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, case, func, or_
from sqlmodel import Session, select

from crm.audit import apply_changes, audit, check_version, load_for_update
from crm.clock import as_utc, utcnow
from crm.errors import NotFound, ValidationFailed
from crm.models import Activity, ActivityKind, Contact, Deal
from crm.notifications import NotificationView, list_notifications, unread_count
from crm.permissions import Actor, require_edit

UPCOMING_DAYS = 7
MAX_SNOOZE = timedelta(days=365)
MORNING = time(9, 0)  # when "tomorrow morning", "next week" and a chosen date end a snooze (UTC, as the days)
SNOOZE_CHOICES = {"hour": "1 hour", "tomorrow": "Tomorrow morning", "next_week": "Next week", "date": "On a date"}


class TaskItem(BaseModel):
    id: int
    subject: str
    due_at: datetime | None
    snoozed_until: datetime | None
    done_at: datetime | None
    contact_id: int | None
    contact: str | None  # the contact's name
    deal_id: int | None
    deal: str | None  # the deal's title
    version: int


@dataclass
class TaskInbox:
    """Each list holds at most `limit` tasks; `counts` has every bucket's true size."""
    overdue: list[TaskItem]
    due_today: list[TaskItem]
    upcoming: list[TaskItem]
    snoozed: list[TaskItem]
    counts: dict[str, int]
    notifications: list[NotificationView] = field(default_factory=list)  # newest first, read ones too
    unread_notifications: int = 0


def effective_due() -> ColumnElement:
    """When a visible task counts as due: its due time, or the end of its snooze if that is later."""
    return case((Activity.snoozed_until > Activity.due_at, Activity.snoozed_until), else_=Activity.due_at)


def bucket_conditions(assignee_id: int, now: datetime) -> dict[str, ColumnElement]:
    """The SQL condition of each bucket for the open tasks assigned to one user."""
    start = datetime.combine(now.date(), time.min, tzinfo=now.tzinfo)
    end = start + timedelta(days=1)
    due = effective_due()
    mine = and_(Activity.assignee_id == assignee_id, Activity.kind == ActivityKind.TASK, Activity.done_at.is_(None),
                Activity.deleted_at.is_(None))
    awake = or_(Activity.snoozed_until.is_(None), Activity.snoozed_until <= now)
    return {"overdue": and_(mine, awake, due < start),
            "due_today": and_(mine, awake, due >= start, due < end),
            "upcoming": and_(mine, awake, due >= end, due < end + timedelta(days=UPCOMING_DAYS)),
            "snoozed": and_(mine, Activity.snoozed_until > now)}


def contact_name() -> ColumnElement:
    """A task's contact as the lists name them (joined by the caller)."""
    return func.trim(func.coalesce(Contact.first_name, "") + " " + func.coalesce(Contact.last_name, ""))


def _items(session: Session, condition: ColumnElement, limit: int | None = None) -> list[TaskItem]:
    stmt = (select(Activity.id, Activity.subject, Activity.due_at, Activity.snoozed_until, Activity.done_at,
                   Activity.contact_id, contact_name().label("contact"), Activity.deal_id, Deal.title.label("deal"),
                   Activity.version)
            .join(Contact, Contact.id == Activity.contact_id, isouter=True)
            .join(Deal, Deal.id == Activity.deal_id, isouter=True)
            .where(condition).order_by(effective_due(), Activity.id).limit(limit))
    return [TaskItem(**row._mapping) for row in session.exec(stmt).all()]


def task_inbox(*, session: Session, actor: Actor, now: datetime | None = None, limit: int = 50) -> TaskInbox:
    """The actor's own open tasks by bucket, and their latest notifications."""
    conditions = bucket_conditions(actor.id, now or utcnow())
    counts = {name: session.exec(select(func.count()).select_from(Activity).where(condition)).one()
              for name, condition in conditions.items()}
    return TaskInbox(**{name: _items(session, condition, limit) for name, condition in conditions.items()},
                     counts=counts, notifications=list_notifications(session=session, actor=actor, limit=limit),
                     unread_notifications=unread_count(session=session, actor=actor))


def _task_for_update(session: Session, actor: Actor, task_id: int, seen_version: int) -> Activity:
    """The task, locked; its assignee counts as its owner for the rights (a manager may act on their team's)."""
    task = load_for_update(session, Activity, task_id, label="Task")
    if task.kind != ActivityKind.TASK:
        raise NotFound(f"Task {task_id} does not exist (activity {task_id} is a {task.kind})")
    require_edit(session, actor, "contacts", task.assignee_id, "this task")
    check_version(session, entity="activity", record=task, seen_version=seen_version)
    return task


def _save(session: Session, actor: Actor, task: Activity, values: dict) -> TaskItem:
    if diff := apply_changes(task, values):
        audit(session, actor_id=actor.id, entity="activity", record_id=task.id, action="update", changes=diff,
              record_version=task.version)
    return _items(session, Activity.id == task.id)[0]


def complete_task(*, session: Session, actor: Actor, task_id: int, seen_version: int) -> TaskItem:
    """Mark a task done now (a snooze ends with it)."""
    task = _task_for_update(session, actor, task_id, seen_version)
    if task.done_at is not None:
        raise ValidationFailed("done_at", "this task is done already")
    return _save(session, actor, task, {"done_at": utcnow(), "snoozed_until": None})


def reopen_task(*, session: Session, actor: Actor, task_id: int, seen_version: int) -> TaskItem:
    """Undo "done": the task is open again, in the bucket its due time puts it in."""
    task = _task_for_update(session, actor, task_id, seen_version)
    if task.done_at is None:
        raise ValidationFailed("done_at", "this task is not done")
    return _save(session, actor, task, {"done_at": None})


def snooze_moment(choice: str, now: datetime, on: date | None = None) -> datetime:
    """When a snooze choice ends: an hour from now, tomorrow morning, next Monday morning, or the morning of `on`."""
    morning = datetime.combine(now.date(), MORNING, tzinfo=now.tzinfo)
    if choice == "hour":
        return now + timedelta(hours=1)
    if choice == "tomorrow":
        return morning + timedelta(days=1)
    if choice == "next_week":
        return morning + timedelta(days=7 - now.weekday())
    if choice == "date":
        if on is None:
            raise ValidationFailed("snoozed_until", "choose a date")
        return datetime.combine(on, MORNING, tzinfo=now.tzinfo)
    raise ValidationFailed("snoozed_until", f"{choice!r} is not a snooze choice; choose one of {', '.join(SNOOZE_CHOICES)}")


def snooze_task(*, session: Session, actor: Actor, task_id: int, until: datetime, seen_version: int) -> TaskItem:
    """Hide an open task until `until` (at most a year ahead); snoozing again moves the moment."""
    task = _task_for_update(session, actor, task_id, seen_version)
    if task.done_at is not None:
        raise ValidationFailed("snoozed_until", "a done task cannot be snoozed")
    until, now = as_utc(until), utcnow()
    if until is None or until <= now:
        raise ValidationFailed("snoozed_until", "choose a moment in the future")
    if until > now + MAX_SNOOZE:
        raise ValidationFailed("snoozed_until", "snooze for a year at most")
    return _save(session, actor, task, {"snoozed_until": until})
