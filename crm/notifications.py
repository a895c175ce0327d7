"""In-app notifications: a line for one user, shown on their home page until they mark it read.

Automations write them (`notify`, on behalf of no signed-in user); each user reads and marks only their own.
"""
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import Session, select

from crm.audit import apply_changes, audit, created_fields
from crm.clock import utcnow
from crm.errors import NotFound
from crm.models import Notification
from crm.permissions import Actor


class NotificationView(BaseModel):
    id: int
    message: str
    entity: str | None
    record_id: int | None
    created_at: datetime
    read_at: datetime | None


def notify(session: Session, *, user_id: int, message: str, entity: str | None = None,
           record_id: int | None = None) -> int:
    """Leave a notification for a user and audit whom it is for and what about; returns its id. The message is
    left out of the audit row: it may name a contact, and an erasure blanks it in one place (crm.privacy)."""
    note = Notification(user_id=user_id, message=message[:500], entity=entity, record_id=record_id)
    session.add(note)
    session.flush()
    audit(session, actor_id=None, entity="notification", record_id=note.id, action="create",
          changes={k: v for k, v in created_fields(note).items() if k != "message"}, record_version=note.version)
    return note.id


def list_notifications(*, session: Session, actor: Actor, unread_only: bool = False,
                       limit: int = 20) -> list[NotificationView]:
    """The actor's own notifications, newest first."""
    stmt = select(Notification).where(Notification.user_id == actor.id)
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    rows = session.exec(stmt.order_by(Notification.id.desc()).limit(limit)).all()
    return [NotificationView.model_validate(n, from_attributes=True) for n in rows]


def unread_count(*, session: Session, actor: Actor) -> int:
    return session.exec(select(func.count()).select_from(Notification).where(
        Notification.user_id == actor.id, Notification.read_at.is_(None))).one()


def mark_read(*, session: Session, actor: Actor, notification_ids: list[int] | None = None) -> int:
    """Mark these of the actor's notifications read (all unread ones when no ids are given); returns how many
    changed. Marking is idempotent, so it needs no version: nobody else edits a user's notifications."""
    stmt = select(Notification).where(Notification.user_id == actor.id, Notification.read_at.is_(None))
    if notification_ids is not None:
        wanted = set(notification_ids)
        owned = set(session.exec(select(Notification.id).where(Notification.id.in_(wanted or {-1}),
                                                               Notification.user_id == actor.id)).all())
        if missing := sorted(wanted - owned):
            raise NotFound(f"Notification {missing[0]} does not exist (or is someone else's)")
        stmt = stmt.where(Notification.id.in_(wanted or {-1}))
    now = utcnow()
    notes = session.exec(stmt.order_by(Notification.id)).all()
    for note in notes:
        diff = apply_changes(note, {"read_at": now})
        audit(session, actor_id=actor.id, entity="notification", record_id=note.id, action="read", changes=diff,
              record_version=note.version)
    return len(notes)
