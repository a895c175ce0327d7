"""Stale contacts: who has not engaged for N days, listed with counts, archived in bulk, and brought back by
reverting the archive job.

A live contact is stale for N days when it was created before the cutoff (now minus N days) and nothing of the
following happened at or after the cutoff (an engagement exactly N days ago still counts):
- a logged call, email, meeting or note (`activity.occurred_at`), or `contact.last_engaged_at`;
- a tracked behaviour event (web visit, email open or click, form submission, offer viewed);
- an order (`ordered_at`), a survey answer, a list subscribe or unsubscribe;
- a ticket opened or resolved, a deal of theirs (`deal.contact_id` or a `deal_contact` link) closed;
and there is no open work on it, whatever its dates: an open deal, an unresolved ticket, a task not done.
Editing a contact's fields is maintenance, not engagement. Deleted activities, orders, tickets and deals do not count.

Archiving is a soft delete (`deleted_at`, audited as `archive`), so archived contacts leave lists, search,
segments, counts and KPIs exactly as deleted ones do, and the contacts list's "deleted" filter shows them. Every
query here is one statement over the whole table (anti-joins on indexed columns), so it scales to a million
contacts without a round trip per contact.
"""
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import ColumnElement, DateTime, Integer, String, and_, exists, func, insert, literal, null, or_, \
    select, update
from sqlmodel import Session

from crm.audit import bump_data_version
from crm.clock import utcnow
from crm.errors import ValidationFailed
from crm.frames import result_frame
from crm.hygiene.jobs import (
    SHOWN, RevertResult, Skipped, changed_since, context_of, editable, refuse_or_skip, require_hygiene, start_job,
)
from crm.models import (
    Activity, ActivityKind, AuditLog, BehaviorEvent, Contact, Deal, DealContact, DealStatus, HygieneChange,
    HygieneJob, ListSubscriptionEvent, Order, SurveyResponse, Ticket, TicketStatus, User,
)
from crm.permissions import Actor

MAX_DAYS = 36_500
MAX_CHOSEN = 10_000  # ids travel as bound parameters


@dataclass
class StaleReport:
    """How many contacts are stale, by owner and by lifecycle stage, and one page of them (oldest first)."""
    days: int
    cutoff: datetime
    total: int
    by_owner: dict[str, int] = field(default_factory=dict)  # owner name ("(no owner)") -> count
    by_stage: dict[str, int] = field(default_factory=dict)
    rows: pd.DataFrame = field(default_factory=pd.DataFrame)  # id, name, email, owner, stage, created, last engaged


@dataclass
class ArchiveResult:
    job_id: int
    archived: int
    skipped: int  # asked-for contacts that were not (or no longer) stale, or not the actor's to edit


def cutoff_for(days: int, *, now: datetime | None = None) -> datetime:
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValidationFailed("days", f"must be a whole number of days from 1 to {MAX_DAYS}")
    return (now or utcnow()) - timedelta(days=days)


def _engaged_since(cutoff: datetime) -> list[ColumnElement]:
    """One EXISTS per kind of engagement or open work, each correlated to the contact on an indexed column."""
    c = Contact.id
    deal_counts = and_(Deal.deleted_at.is_(None), or_(Deal.status == DealStatus.OPEN, Deal.closed_at >= cutoff))
    # Most contacts that are not stale are caught by the first tests (measured on the large demo); a stale one
    # runs all nine, each an index probe on the contact's id.
    return [
        exists().where(DealContact.contact_id == c, Deal.id == DealContact.deal_id, deal_counts),
        exists().where(Order.contact_id == c, Order.ordered_at >= cutoff, Order.deleted_at.is_(None)),
        exists().where(ListSubscriptionEvent.contact_id == c, ListSubscriptionEvent.occurred_at >= cutoff),
        exists().where(Ticket.contact_id == c, Ticket.deleted_at.is_(None), or_(
            Ticket.status != TicketStatus.RESOLVED, Ticket.opened_at >= cutoff, Ticket.resolved_at >= cutoff)),
        exists().where(SurveyResponse.contact_id == c, SurveyResponse.answered_at >= cutoff),
        exists().where(Deal.contact_id == c, deal_counts),
        exists().where(Activity.contact_id == c, Activity.kind == ActivityKind.TASK, Activity.done_at.is_(None),
                       Activity.deleted_at.is_(None)),
        exists().where(Activity.contact_id == c, Activity.occurred_at >= cutoff, Activity.deleted_at.is_(None)),
        exists().where(BehaviorEvent.contact_id == c, BehaviorEvent.occurred_at >= cutoff),
    ]


def stale_condition(session: Session, actor: Actor, cutoff: datetime) -> ColumnElement:
    """SQL: a live contact the actor may edit, older than the cutoff, with no engagement or open work since."""
    return and_(Contact.deleted_at.is_(None), editable(session, actor, Contact.owner_id), Contact.created_at < cutoff,
                or_(Contact.last_engaged_at.is_(None), Contact.last_engaged_at < cutoff),
                *[~e for e in _engaged_since(cutoff)])


def stale_contacts(*, session: Session, actor: Actor, days: int, page: int = 1, page_size: int = 50) -> StaleReport:
    """The contacts with no engagement for `days` days that the actor may archive: counts and one page."""
    require_hygiene(actor, "look for stale contacts")
    cutoff = cutoff_for(days)
    condition = stale_condition(session, actor, cutoff)
    groups = session.execute(select(func.coalesce(User.full_name, "(no owner)"), Contact.lifecycle_stage, func.count())
                             .select_from(Contact).join(User, User.id == Contact.owner_id, isouter=True)
                             .where(condition).group_by(User.full_name, Contact.lifecycle_stage)).all()
    by_owner, by_stage = Counter(), Counter()
    for owner, stage, n in groups:
        by_owner[owner] += n
        by_stage[stage] += n
    page, page_size = max(1, page), min(max(1, page_size), 500)
    rows = _page(session, condition, page, page_size)
    return StaleReport(days=days, cutoff=cutoff, total=sum(by_owner.values()), by_owner=dict(by_owner.most_common()),
                       by_stage=dict(by_stage.most_common()), rows=rows)


def _page(session: Session, condition: ColumnElement, page: int, page_size: int) -> pd.DataFrame:
    ids = select(Contact.id).where(condition).order_by(Contact.id).offset((page - 1) * page_size).limit(page_size)
    stmt = (select(Contact.id, (Contact.first_name + " " + Contact.last_name).label("name"), Contact.email,
                   User.full_name.label("owner"), Contact.lifecycle_stage, Contact.created_at, Contact.version)
            .join(User, User.id == Contact.owner_id, isouter=True).where(Contact.id.in_(ids)).order_by(Contact.id))
    frame = result_frame(session.execute(stmt))
    frame["name"] = frame["name"].str.strip()
    last = last_engagement(session, frame["id"].tolist())
    frame.insert(len(frame.columns) - 1, "last_engaged_at", [last.get(i) for i in frame["id"]])
    return frame


def last_engagement(session: Session, contact_ids: list[int]) -> dict[int, datetime]:
    """The latest engagement of each of a few contacts, ever (for the page's rows), from every source above."""
    if not contact_ids:
        return {}
    sources = [(Contact.id, Contact.last_engaged_at), (Activity.contact_id, Activity.occurred_at),
               (BehaviorEvent.contact_id, BehaviorEvent.occurred_at), (Order.contact_id, Order.ordered_at),
               (Ticket.contact_id, func.coalesce(Ticket.resolved_at, Ticket.opened_at)),
               (SurveyResponse.contact_id, SurveyResponse.answered_at),
               (ListSubscriptionEvent.contact_id, ListSubscriptionEvent.occurred_at),
               (Deal.contact_id, Deal.closed_at)]
    latest: dict[int, datetime] = {}
    for key, moment in sources:
        stmt = select(key, func.max(moment)).where(key.in_(contact_ids), moment.is_not(None)).group_by(key)
        deleted = getattr(key.class_, "deleted_at", None)
        if deleted is not None and key.class_ is not Contact:
            stmt = stmt.where(deleted.is_(None))
        for contact_id, at in session.execute(stmt):
            if contact_id not in latest or at > latest[contact_id]:
                latest[contact_id] = at
    return latest


def archive_stale_contacts(*, session: Session, actor: Actor, days: int,
                           contact_ids: list[int] | None = None) -> ArchiveResult:
    """Archive (soft-delete) every contact stale for `days` days that the actor may edit, or only those of
    `contact_ids` that still are, as one job that `crm.hygiene.jobs.revert_job` undoes. Three set-based statements:
    record the job's changes, archive, audit; one audit row per contact."""
    require_hygiene(actor, "archive stale contacts")
    cutoff_for(days)  # validates before anything is written
    if contact_ids is not None and len(set(contact_ids)) > MAX_CHOSEN:
        raise ValidationFailed("contact_ids", f"choose at most {MAX_CHOSEN:,} contacts, or archive every stale one")
    job = start_job(session, actor, "archive", {"days": days, "selected": None if contact_ids is None
                                                else len(set(contact_ids))})
    now = job.created_at  # the archived contacts' deleted_at, which the revert's audit rows quote
    cutoff = cutoff_for(days, now=now)
    job.params = {**job.params, "cutoff": cutoff.isoformat()}
    condition = stale_condition(session, actor, cutoff)
    if contact_ids is not None:
        condition = and_(condition, Contact.id.in_(sorted(set(contact_ids))))
    # FOR UPDATE (PostgreSQL) locks the chosen rows, so an edit cannot slip in between choosing and archiving.
    chosen = select(literal(job.id), literal("contact"), Contact.id, Contact.version + 1).where(condition)
    session.execute(insert(HygieneChange).from_select(["job_id", "entity", "record_id", "version_after"],
                                                      chosen.with_for_update(of=Contact)))
    mine = select(HygieneChange.record_id).where(HygieneChange.job_id == job.id)
    session.execute(update(Contact).where(Contact.id.in_(mine))
                    .values(deleted_at=now, version=Contact.version + 1, updated_at=now))
    _audit_changes(session, actor, job.id, now, action="archive", old=None, new=now.isoformat(),
                   version=HygieneChange.version_after, context=context_of(job.id))
    job.record_count = session.execute(select(func.count()).select_from(mine.subquery())).scalar_one()
    bump_data_version(session)
    wanted = len(set(contact_ids)) if contact_ids is not None else job.record_count
    return ArchiveResult(job_id=job.id, archived=job.record_count, skipped=wanted - job.record_count)


def _audit_changes(session: Session, actor: Actor, job_id: int, now: datetime, *, action: str, old: str | None,
                   new: str | None, version, context: str, where: ColumnElement | None = None) -> None:
    """One audit row (field deleted_at) per contact of the job's changes meeting `where`, in one INSERT … SELECT."""
    rows = (select(literal(now, DateTime(timezone=True)), literal(actor.id, Integer), literal("contact"),
                   HygieneChange.record_id, literal(action), literal("deleted_at"),
                   literal(old, String) if old is not None else null(), literal(new, String) if new else null(),
                   version, literal(context))
            .where(HygieneChange.job_id == job_id))
    if where is not None:
        rows = rows.join(Contact, Contact.id == HygieneChange.record_id).where(where)
    session.execute(insert(AuditLog).from_select(
        ["at", "actor_id", "entity", "record_id", "action", "field", "old_value", "new_value", "record_version",
         "context"], rows))


def revert_archive(*, session: Session, actor: Actor, job: HygieneJob, skip_edited: bool) -> RevertResult:
    """Bring back the job's contacts that nobody touched since (same version): deleted_at cleared, audited as
    `unarchive`. A contact restored, edited or erased since is skipped and named."""
    untouched = Contact.version == HygieneChange.version_after
    moved = (select(HygieneChange.record_id, HygieneChange.version_after)
             .join(Contact, Contact.id == HygieneChange.record_id, isouter=True)
             .where(HygieneChange.job_id == job.id, or_(Contact.id.is_(None), ~untouched)))
    total = session.execute(select(func.count()).select_from(moved.subquery())).scalar_one()
    skipped = [Skipped("contact", rid, changed_since(session, "contact", rid, after))
               for rid, after in session.execute(moved.order_by(HygieneChange.record_id).limit(SHOWN))]
    refuse_or_skip(job, skipped, total, skip_edited=skip_edited)
    now = utcnow()
    _audit_changes(session, actor, job.id, now, action="unarchive", old=job.created_at.isoformat(), new=None,
                   version=HygieneChange.version_after + 1, context=context_of(job.id, revert=True), where=untouched)
    version_left = (select(HygieneChange.version_after)
                    .where(HygieneChange.job_id == job.id, HygieneChange.record_id == Contact.id).scalar_subquery())
    session.execute(update(Contact).where(
        Contact.id.in_(select(HygieneChange.record_id).where(HygieneChange.job_id == job.id)),
        Contact.version == version_left).values(deleted_at=None, version=Contact.version + 1, updated_at=now))
    restored = job.record_count - total
    return RevertResult(job_id=job.id, kind=job.kind, restored=restored, skipped_count=total, skipped=skipped)
