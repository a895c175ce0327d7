"""The pipeline as reps and managers work it: the kanban board, the deals table, and the stuck flag."""
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd
from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import Session, select

from crm.clock import as_utc, utcnow
from crm.deals import shown_probability
from crm.errors import NotFound, PermissionDenied
from crm.models import Company, Deal, DealStatus, Pipeline, Stage, User
from crm.permissions import Actor, readable_owner_ids
from crm.sqlfuncs import unindexed
from crm.stage_stats import stuck_thresholds

@dataclass(frozen=True)
class BoardFilter:
    """Which deals of a pipeline to show. owner_id narrows to one person, team_id to one team."""
    pipeline_id: int
    owner_id: int | None = None
    team_id: int | None = None
    close_from: date | None = None
    close_to: date | None = None
    min_amount: float | None = None
    max_amount: float | None = None


class Card(BaseModel):
    id: int
    title: str
    company: str | None
    amount: float
    currency: str
    expected_close: date | None
    owner: str | None
    probability: float
    days_in_stage: float | None
    stuck: bool
    version: int


class Column(BaseModel):
    stage_id: int
    name: str
    probability: float
    count: int  # every deal in the stage that the filter matches, not only the cards shown
    amount: float
    cards: list[Card]


class Board(BaseModel):
    pipeline_id: int
    columns: list[Column]
    closing: list[tuple[int, str, bool]]  # (stage id, name, is_won): where a card can be closed


def _open_deals(session: Session, actor: Actor, flt: BoardFilter) -> tuple[list, bool]:
    """The statement's WHERE part: open, live deals of the pipeline, within what the actor may read; and whether
    it names the owners (then the owner index is the selective one)."""
    conditions = [Deal.pipeline_id == flt.pipeline_id, Deal.status == DealStatus.OPEN, Deal.deleted_at.is_(None)]
    readable = readable_owner_ids(session, actor, "deals")
    if flt.owner_id is not None:
        if readable is not None and flt.owner_id not in readable:
            raise PermissionDenied("You may not see that person's deals.")
        conditions.append(Deal.owner_id == flt.owner_id)
    elif flt.team_id is not None:
        members = [m for m in session.exec(select(User.id).where(User.team_id == flt.team_id)).all()
                   if readable is None or m in readable]
        conditions.append(Deal.owner_id.in_(members))
    elif readable is not None:
        conditions.append(Deal.owner_id.in_(readable))
    if flt.close_from is not None:
        conditions.append(Deal.expected_close >= flt.close_from)
    if flt.close_to is not None:
        conditions.append(Deal.expected_close <= flt.close_to)
    if flt.min_amount is not None:
        conditions.append(Deal.amount >= flt.min_amount)
    if flt.max_amount is not None:
        conditions.append(Deal.amount <= flt.max_amount)
    return conditions, flt.owner_id is not None or flt.team_id is not None or readable is not None


def _stages(session: Session, pipeline_id: int) -> list[Stage]:
    pipeline = session.get(Pipeline, pipeline_id)
    if pipeline is None or pipeline.deleted_at is not None:
        raise NotFound(f"Pipeline {pipeline_id} does not exist")
    return list(session.exec(select(Stage).where(Stage.pipeline_id == pipeline_id, Stage.deleted_at.is_(None))
                             .order_by(Stage.position)).all())


def pipeline_board(*, session: Session, actor: Actor, flt: BoardFilter, per_column: int = 25,
                   now: datetime | None = None) -> Board:
    """One column per open stage with its count and total amount, and its first `per_column` cards (soonest
    expected close first, undated last)."""
    now = now or utcnow()
    stages = _stages(session, flt.pipeline_id)
    where, by_owner = _open_deals(session, actor, flt)
    # Grouped by owner too: that lets SQLite walk the owner index instead of the whole pipeline's.
    totals: dict[int, tuple[int, float]] = {}
    for stage_id, n, amount in session.exec(select(Deal.stage_id, func.count(), func.sum(Deal.amount)).where(*where)
                                            .group_by(Deal.owner_id, Deal.stage_id)).all():
        count, total = totals.get(stage_id, (0, 0.0))
        totals[stage_id] = (count + n, total + (amount or 0.0))
    p75 = stuck_thresholds(session)
    columns = []
    for stage in stages:
        if stage.is_won or stage.is_lost:
            continue
        rows = _soonest_first(session, _card_query(where).where(Deal.stage_id == stage.id), by_owner, per_column)
        count, amount = totals.get(stage.id, (0, 0.0))
        columns.append(Column(stage_id=stage.id, name=stage.name, probability=stage.probability, count=count,
                              amount=amount, cards=[_card(row, stage, p75, now) for row in rows]))
    closing = [(s.id, s.name, s.is_won) for s in stages if s.is_won or s.is_lost]
    return Board(pipeline_id=flt.pipeline_id, columns=columns, closing=closing)


def _soonest_first(session: Session, stmt, by_owner: bool, limit: int) -> list:
    """The first `limit` rows by expected close, undated deals last. Two queries, so that each can walk a
    close-date index in order (a NULLS LAST sort cannot, and would sort every open deal of the pipeline). For one
    person's or one team's deals the owner index is the selective one, and the close date is hidden from SQLite's
    index choice so that it does not walk every open deal in date order instead."""
    close = unindexed(Deal.expected_close) if by_owner else Deal.expected_close
    dated = session.exec(stmt.where(close.is_not(None)).order_by(close, Deal.id).limit(limit)).all()
    if len(dated) == limit:
        return list(dated)
    undated = session.exec(stmt.where(Deal.expected_close.is_(None)).order_by(Deal.id).limit(limit - len(dated)))
    return [*dated, *undated.all()]


def _card_query(where):
    return (select(Deal.id, Deal.title, Company.name, Deal.amount, Deal.currency, Deal.expected_close, User.full_name,
                   Deal.rep_probability, Deal.model_probability, Deal.stage_entered_at, Deal.version)
            .join(Company, Company.id == Deal.company_id, isouter=True)
            .join(User, User.id == Deal.owner_id, isouter=True).where(*where))


def _card(row, stage: Stage, p75: dict[int, float], now: datetime) -> Card:
    deal_id, title, company, amount, currency, close, owner, rep_p, model_p, entered, version = row
    days = _days(entered, now)
    return Card(id=deal_id, title=title, company=company, amount=amount, currency=currency, expected_close=close,
                owner=owner, probability=shown_probability(rep_p, model_p, stage.probability), days_in_stage=days,
                stuck=is_stuck(days, p75.get(stage.id)), version=version)


def _days(entered: datetime | None, now: datetime) -> float | None:
    return None if entered is None else round((now - as_utc(entered)).total_seconds() / 86_400, 1)


def is_stuck(days_in_stage: float | None, threshold: float | None) -> bool:
    """Stuck: longer in the stage than three in four won deals spent there."""
    return days_in_stage is not None and threshold is not None and days_in_stage > threshold


TABLE_COLUMNS = ["id", "title", "company", "owner", "stage", "amount", "expected_close", "probability",
                 "rep_probability", "model_probability", "forecast_category", "next_step", "days_in_stage", "stuck",
                 "version"]


def deal_table(*, session: Session, actor: Actor, flt: BoardFilter, limit: int = 200,
               now: datetime | None = None) -> tuple[pd.DataFrame, int]:
    """The open deals of the board as rows for inline editing (soonest close first), and how many match."""
    now = now or utcnow()
    stages = {s.id: s for s in _stages(session, flt.pipeline_id)}
    where, by_owner = _open_deals(session, actor, flt)
    total = session.exec(select(func.count()).select_from(Deal).where(*where)).one()
    rows = _soonest_first(session, select(
        Deal.id, Deal.title, Company.name, User.full_name, Deal.stage_id, Deal.amount, Deal.expected_close,
        Deal.rep_probability, Deal.model_probability, Deal.forecast_category, Deal.next_step, Deal.stage_entered_at,
        Deal.version).join(Company, Company.id == Deal.company_id, isouter=True)
        .join(User, User.id == Deal.owner_id, isouter=True).where(*where), by_owner, limit)
    p75 = stuck_thresholds(session)
    out = []
    for (deal_id, title, company, owner, stage_id, amount, close, rep_p, model_p, category, next_step, entered,
         version) in rows:
        stage = stages[stage_id]
        days = _days(entered, now)
        out.append({"id": deal_id, "title": title, "company": company, "owner": owner, "stage": stage.name,
                    "amount": amount, "expected_close": close,
                    "probability": shown_probability(rep_p, model_p, stage.probability),
                    "rep_probability": rep_p, "model_probability": model_p, "forecast_category": category,
                    "next_step": next_step, "days_in_stage": days, "stuck": is_stuck(days, p75.get(stage_id)),
                    "version": version})
    return pd.DataFrame(out, columns=TABLE_COLUMNS), total
