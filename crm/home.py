"""What each role sees first: read from the database, aggregated in SQL."""
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

import pandas as pd
from sqlalchemy import case, func
from sqlmodel import Session, select

from crm.clock import utcnow
from crm.frames import result_frame
from crm.models import (
    Activity, AuditLog, Company, Contact, Deal, DealStatus, Lifecycle, Pipeline, Segment, Stage, User,
)
from crm.permissions import Actor, readable_owner_ids
from crm.tasks import bucket_conditions, contact_name, effective_due

_WEIGHT = func.coalesce(Deal.rep_probability, Deal.model_probability, Stage.probability)


@dataclass
class RepHome:
    """The lists hold at most `limit` rows each; the *_count fields are the true totals."""
    open_deals: pd.DataFrame
    overdue: pd.DataFrame
    due_today: pd.DataFrame
    upcoming: pd.DataFrame
    open_amount: float = 0.0
    weighted_amount: float = 0.0
    open_deal_count: int = 0
    overdue_count: int = 0
    due_today_count: int = 0
    upcoming_count: int = 0


def _frame(session: Session, stmt) -> pd.DataFrame:
    return result_frame(session.exec(stmt))


def _count(session: Session, stmt) -> int:
    return session.exec(select(func.count()).select_from(stmt.order_by(None).limit(None).subquery())).one()


def rep_home(*, session: Session, actor: Actor, now: datetime | None = None, limit: int = 50) -> RepHome:
    """A rep's open deals and their open tasks: overdue, due today, and the next seven days."""
    now = now or utcnow()
    mine = (Deal.owner_id == actor.id, Deal.status == DealStatus.OPEN, Deal.deleted_at.is_(None))
    deals = (select(Deal.id, Deal.title, Company.name.label("company"), Stage.name.label("stage"), Deal.amount,
                    Deal.currency, Deal.expected_close, _WEIGHT.label("probability"))
             .join(Stage, Stage.id == Deal.stage_id).join(Company, Company.id == Deal.company_id, isouter=True)
             .where(*mine).order_by(Deal.expected_close.is_(None), Deal.expected_close))
    count, amount, weighted = session.exec(
        select(func.count(), func.coalesce(func.sum(Deal.amount), 0), func.coalesce(func.sum(Deal.amount * _WEIGHT), 0))
        .join(Stage, Stage.id == Deal.stage_id).where(*mine)).one()
    buckets = bucket_conditions(actor.id, now)
    tasks = {name: _tasks(buckets[name]) for name in ("overdue", "due_today", "upcoming")}
    return RepHome(open_deals=_frame(session, deals.limit(limit)), open_amount=float(amount),
                   weighted_amount=float(weighted), open_deal_count=count,
                   **{name: _frame(session, stmt.limit(limit)) for name, stmt in tasks.items()},
                   **{f"{name}_count": _count(session, stmt) for name, stmt in tasks.items()})


def _tasks(bucket):
    """The open tasks of one bucket of the inbox (crm.tasks: snoozed ones wait), soonest first."""
    return (select(Activity.id, Activity.subject, Activity.due_at, contact_name().label("contact"))
            .join(Contact, Contact.id == Activity.contact_id, isouter=True)
            .where(bucket).order_by(effective_due(), Activity.id))


def team_pipeline(*, session: Session, actor: Actor) -> pd.DataFrame:
    """Open pipeline the actor may read (a manager's team, everyone's for admins) by pipeline and stage."""
    stmt = (select(Pipeline.name.label("pipeline"), Stage.name.label("stage"), Stage.position,
                   func.count(Deal.id).label("deals"), func.sum(Deal.amount).label("amount"),
                   func.sum(Deal.amount * _WEIGHT).label("weighted"))
            .join(Stage, Stage.id == Deal.stage_id).join(Pipeline, Pipeline.id == Deal.pipeline_id)
            .join(User, User.id == Deal.owner_id)
            .where(Deal.status == DealStatus.OPEN, Deal.deleted_at.is_(None))
            .group_by(Pipeline.name, Pipeline.position, Stage.name, Stage.position)
            .order_by(Pipeline.position, Stage.position))
    return _frame(session, _visible_deals(session, actor, stmt)).drop(columns="position")


def team_reps(*, session: Session, actor: Actor) -> pd.DataFrame:
    """Per rep: open deals, open amount, weighted amount and won amount this quarter."""
    now = utcnow()
    quarter_start = datetime(now.year, 3 * ((now.month - 1) // 3) + 1, 1, tzinfo=now.tzinfo)
    is_open = Deal.status == DealStatus.OPEN
    won_now = (Deal.status == DealStatus.WON) & (Deal.closed_at >= quarter_start)
    stmt = (select(User.full_name.label("rep"),
                   func.sum(case((is_open, 1), else_=0)).label("open_deals"),
                   func.sum(case((is_open, Deal.amount), else_=0)).label("open_amount"),
                   func.sum(case((is_open, Deal.amount * _WEIGHT), else_=0)).label("weighted"),
                   func.sum(case((won_now, Deal.amount), else_=0)).label("won_this_quarter"))
            .join(Deal, (Deal.owner_id == User.id) & Deal.deleted_at.is_(None)).join(Stage, Stage.id == Deal.stage_id)
            .where(User.active).group_by(User.id, User.full_name).order_by(User.full_name))
    return _frame(session, _visible_deals(session, actor, stmt))


def _visible_deals(session: Session, actor: Actor, stmt):
    """Limit to deals the actor may read, by owner id, so SQLite starts from ix_deal_owner_status."""
    owners = readable_owner_ids(session, actor, "deals")
    return stmt if owners is None else stmt.where(Deal.owner_id.in_(owners))


@dataclass
class MarketerHome:
    by_stage: pd.DataFrame
    total: int = 0
    opted_in: int = 0
    do_not_contact: int = 0
    new_last_30_days: int = 0
    segments: dict[str, int] = field(default_factory=dict)


def marketer_home(*, session: Session, actor: Actor) -> MarketerHome:
    live = Contact.deleted_at.is_(None)
    by_stage = _frame(session, select(Contact.lifecycle_stage.label("stage"), func.count().label("contacts"))
                      .where(live).group_by(Contact.lifecycle_stage))
    order = {s.value: i for i, s in enumerate(Lifecycle)}
    by_stage = by_stage.sort_values("stage", key=lambda s: s.map(order)).reset_index(drop=True)
    today_start = datetime.combine(utcnow().date(), time.min, tzinfo=UTC)
    since = today_start - timedelta(days=30)  # whole days, so the figure holds all day (pages cache per day)
    total, opted, dnc, new = session.exec(select(
        func.count(), func.sum(case((Contact.email_opt_in, 1), else_=0)),
        func.sum(case((Contact.do_not_contact, 1), else_=0)), func.sum(case((Contact.created_at >= since, 1), else_=0)),
    ).where(live)).one()
    kinds = session.exec(select(Segment.kind, func.count()).where(Segment.deleted_at.is_(None)).group_by(Segment.kind)).all()
    return MarketerHome(by_stage=by_stage, total=total or 0, opted_in=opted or 0, do_not_contact=dnc or 0,
                        new_last_30_days=new or 0, segments={k: n for k, n in kinds})


@dataclass
class AdminHome:
    counts: dict[str, int]
    recent_changes: pd.DataFrame


def admin_home(*, session: Session, actor: Actor, limit: int = 20) -> AdminHome:
    counts = {
        "active users": session.exec(select(func.count()).select_from(User).where(User.active)).one(),
        "contacts": session.exec(select(func.count()).select_from(Contact).where(Contact.deleted_at.is_(None))).one(),
        "companies": session.exec(select(func.count()).select_from(Company).where(Company.deleted_at.is_(None))).one(),
        "open deals": session.exec(select(func.count()).select_from(Deal).where(Deal.status == DealStatus.OPEN,
                                                                                 Deal.deleted_at.is_(None))).one(),
    }
    recent = _frame(session, select(AuditLog.at, User.full_name.label("who"), AuditLog.entity, AuditLog.record_id,
                                    AuditLog.action, AuditLog.field)
                    .join(User, User.id == AuditLog.actor_id, isouter=True).order_by(AuditLog.id.desc()).limit(limit))
    return AdminHome(counts=counts, recent_changes=recent)
