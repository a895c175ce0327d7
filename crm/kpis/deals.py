"""Deal KPIs: close rate (by period and by cohort), stage lengths, sales-cycle length, the conversion funnel, where
deals are lost, and win rates by source, product and rep (docs/kpis_deals_revenue.md).

Shared rules. A deal *closed in the period* has status won or lost now and closed_at in [flt.since, flt.until): a deal
closed at the period's first moment counts, one closed at `until` belongs to the next period. A deal that was closed
and then reopened is open now (reopening clears closed_at), so it counts nowhere as closed until it closes again.
Deleted deals never count. Only deals of the owners in deal_scope(...) and of flt.pipeline_id (if set) count; asking
beyond the actor's read rights raises PermissionDenied. Amounts are summed as stored (one currency).

Medians and 75th percentiles are taken in pandas (numpy's linear interpolation, the same as PostgreSQL's
percentile_cont) over one column of durations that SQL has already narrowed and summed: SQLite has no percentile.
"""
from typing import Literal

import numpy as np
import pandas as pd
from sqlalchemy import and_, case, distinct, func
from sqlmodel import Session, select

from crm.forecast.scope import Scope, scope_conditions
from crm.kpis.base import KpiFilter, Metric, deal_scope, ratio
from crm.models import Deal, DealLineItem, DealStageHistory, DealStatus, LostReason, Pipeline, Product, Stage, User
from crm.permissions import Actor
from crm.sqlfuncs import days_between, unindexed

CLOSED = (str(DealStatus.WON), str(DealStatus.LOST))
WinRateBy = Literal["source", "product", "rep"]



def _status(scope: Scope):
    """Deal.status; for everyone unindexed, so SQLite reads the period from ix_deal_closed_at (as won_between)."""
    return Deal.status if scope.owner_ids is not None else unindexed(Deal.status)


def _closed_in(session: Session, actor: Actor, flt: KpiFilter, statuses=CLOSED) -> list:
    """WHERE conditions: live deals in scope, with one of `statuses`, closed in [since, until)."""
    scope = deal_scope(session, actor, flt)
    return [*scope_conditions(scope), _status(scope).in_(list(statuses)),
            Deal.closed_at >= flt.since, Deal.closed_at < flt.until]


def _created_in(session: Session, actor: Actor, flt: KpiFilter) -> list:
    scope = deal_scope(session, actor, flt)
    return [*scope_conditions(scope), Deal.created_at >= flt.since, Deal.created_at < flt.until]


def _deal_rows(session: Session, conditions: list, *extra) -> pd.DataFrame:
    """The drill-down: one row per deal matching `conditions`, newest close first."""
    stmt = (select(Deal.id, Deal.title, User.full_name.label("owner"), Deal.status, Deal.amount, Deal.source,
                   Deal.created_at, Deal.closed_at, LostReason.name.label("lost_reason"), *extra)
            .join(User, User.id == Deal.owner_id, isouter=True)
            .join(LostReason, LostReason.id == Deal.lost_reason_id, isouter=True)
            .where(*conditions).order_by(Deal.closed_at.desc().nulls_last(), Deal.id.desc()))
    result = session.exec(stmt)
    return pd.DataFrame(result.all(), columns=list(result.keys()))


# --- 1. close rate ------------------------------------------------------------------------------------------------

def close_rate(session: Session, actor: Actor, flt: KpiFilter) -> Metric:
    """Close rate: won ÷ closed, over deals closed in the period.

    Formula: count(status = won) / count(status in (won, lost)), closed_at in [since, until). Reopened deals are open
    and not counted; no deal closed in the period gives None. detail: won and lost amounts."""
    won = Deal.status == DealStatus.WON
    row = session.exec(select(func.count(), func.coalesce(func.sum(case((won, 1), else_=0)), 0),
                              func.coalesce(func.sum(case((won, Deal.amount), else_=0.0)), 0.0),
                              func.coalesce(func.sum(case((won, 0.0), else_=Deal.amount)), 0.0))
                       .where(*_closed_in(session, actor, flt))).one()
    closed, n_won, won_amount, lost_amount = row
    return Metric("close_rate", "Close rate", ratio(n_won, closed), "ratio", n_won, closed,
                  {"won_amount": float(won_amount), "lost_amount": float(lost_amount)})


def close_rate_records(session: Session, actor: Actor, flt: KpiFilter) -> pd.DataFrame:
    """The deals behind close_rate: every deal won or lost in the period."""
    return _deal_rows(session, _closed_in(session, actor, flt))


def cohort_close_rate(session: Session, actor: Actor, flt: KpiFilter) -> Metric:
    """Cohort close rate: of the deals created in the period, the share won by now.

    Formula: count(status = won) / count(*), created_at in [since, until), whenever they closed (so a recent cohort's
    rate still rises as its open deals close). Open, lost and reopened deals are in the denominator. No deal
    created in the period gives None. detail: how many are still open."""
    won = Deal.status == DealStatus.WON
    created, n_won, n_open = session.exec(
        select(func.count(), func.coalesce(func.sum(case((won, 1), else_=0)), 0),
               func.coalesce(func.sum(case((Deal.status == DealStatus.OPEN, 1), else_=0)), 0))
        .where(*_created_in(session, actor, flt))).one()
    return Metric("cohort_close_rate", "Close rate of deals created", ratio(n_won, created), "ratio", n_won,
                  created, {"open": int(n_open)})


def cohort_close_rate_records(session: Session, actor: Actor, flt: KpiFilter) -> pd.DataFrame:
    """The deals behind cohort_close_rate: every deal created in the period, whatever its status."""
    return _deal_rows(session, _created_in(session, actor, flt))


# --- 4. length of each pipeline stage -----------------------------------------------------------------------------

def stage_durations(session: Session, actor: Actor, flt: KpiFilter) -> pd.DataFrame:
    """Days deals closed in the period spent in each open stage: median and 75th percentile, for won and for lost.

    A deal's time in a stage is the sum of its completed visits (exited_at − entered_at, in days), so a deal that
    went back counts once with its total. Closed stages (is_won, is_lost) are not pipeline stages and are left out.
    Columns: pipeline_id, stage_id, stage, position, outcome, deals, median_days, p75_days; no rows without data."""
    spent = func.sum(days_between(DealStageHistory.entered_at, DealStageHistory.exited_at))
    result = session.exec(
        select(Stage.pipeline_id, Stage.id.label("stage_id"), Stage.name.label("stage"), Stage.position,
               Deal.status.label("outcome"), spent.label("days"))
        .select_from(Deal).join(DealStageHistory, DealStageHistory.deal_id == Deal.id)
        .join(Stage, Stage.id == DealStageHistory.stage_id)
        .where(*_closed_in(session, actor, flt), DealStageHistory.exited_at.is_not(None),
               Stage.is_won.is_(False), Stage.is_lost.is_(False))
        .group_by(Stage.pipeline_id, Stage.id, Stage.name, Stage.position, Deal.status, Deal.id))
    frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    columns = ["pipeline_id", "stage_id", "stage", "position", "outcome", "deals", "median_days", "p75_days"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    grouped = frame.groupby(["pipeline_id", "stage_id", "stage", "position", "outcome"])["days"]
    out = grouped.agg(deals="count", median_days="median",
                      p75_days=lambda d: float(np.quantile(d, 0.75))).reset_index()
    return out.sort_values(["pipeline_id", "position", "outcome"], ignore_index=True)[columns]


# --- 5. sales-cycle length ----------------------------------------------------------------------------------------

def _cycle_days(session: Session, actor: Actor, flt: KpiFilter) -> pd.Series:
    won = _closed_in(session, actor, flt, statuses=(str(DealStatus.WON),))
    days = session.exec(select(days_between(Deal.created_at, Deal.closed_at)).where(*won)).all()
    return pd.Series(days, dtype=float)


def sales_cycle(session: Session, actor: Actor, flt: KpiFilter) -> Metric:
    """Sales-cycle length: the median days from creation to close of the deals won in the period.

    Formula: median(closed_at − created_at) in days over deals won with closed_at in [since, until); detail gives
    the mean and the 75th percentile. created_at is when the deal was recorded (for imported deals, what the import
    set). No deal won in the period gives None."""
    days = _cycle_days(session, actor, flt)
    if days.empty:
        return Metric("sales_cycle", "Sales cycle (median)", None, "days", denominator=0)
    return Metric("sales_cycle", "Sales cycle (median)", float(days.median()), "days", denominator=len(days),
                  detail={"mean_days": float(days.mean()), "p75_days": float(np.quantile(days, 0.75))})


def sales_cycle_records(session: Session, actor: Actor, flt: KpiFilter) -> pd.DataFrame:
    """The deals behind sales_cycle, with their cycle_days."""
    won = _closed_in(session, actor, flt, statuses=(str(DealStatus.WON),))
    return _deal_rows(session, won, days_between(Deal.created_at, Deal.closed_at).label("cycle_days"))


# --- the conversion funnel and where deals are lost ---------------------------------------------------------------

def _furthest(session: Session, actor: Actor, flt: KpiFilter):
    """Per deal closed in the period: the highest position among the open stages it entered (NULL: no history)."""
    open_stage = and_(Stage.id == DealStageHistory.stage_id, Stage.pipeline_id == Deal.pipeline_id,
                      Stage.is_won.is_(False), Stage.is_lost.is_(False))
    return (select(Deal.id, Deal.pipeline_id, Deal.status, Deal.amount, Deal.lost_reason_id,
                   func.max(Stage.position).label("furthest"))
            .select_from(Deal).join(DealStageHistory, DealStageHistory.deal_id == Deal.id, isouter=True)
            .join(Stage, open_stage, isouter=True)
            .where(*_closed_in(session, actor, flt))
            .group_by(Deal.id, Deal.pipeline_id, Deal.status, Deal.amount, Deal.lost_reason_id)).subquery()


def _open_stages(session: Session, flt: KpiFilter) -> pd.DataFrame:
    stmt = (select(Pipeline.id.label("pipeline_id"), Pipeline.name.label("pipeline"), Stage.id.label("stage_id"),
                   Stage.name.label("stage"), Stage.position)
            .join(Pipeline, Pipeline.id == Stage.pipeline_id)
            .where(Stage.deleted_at.is_(None), Stage.is_won.is_(False), Stage.is_lost.is_(False))
            .order_by(Pipeline.position, Pipeline.id, Stage.position, Stage.id))
    if flt.pipeline_id is not None:
        stmt = stmt.where(Pipeline.id == flt.pipeline_id)
    result = session.exec(stmt)
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def _lost_at(stages: pd.DataFrame, lost: pd.DataFrame) -> list:
    """The open stage each lost-deal group stopped at: the last stage at or before its furthest position (no
    history: the pipeline's first stage)."""
    def at(row):
        mine = stages[stages.pipeline_id == row.pipeline_id]
        if mine.empty:
            return None
        reached = mine[mine.position <= row.furthest] if pd.notna(row.furthest) else mine.iloc[:0]
        return int(reached.stage_id.iloc[-1]) if not reached.empty else int(mine.stage_id.iloc[0])
    return [at(row) for row in lost.itertuples()]


def conversion_funnel(session: Session, actor: Actor, flt: KpiFilter) -> pd.DataFrame:
    """Stage-to-stage conversion of the deals closed in the period, per pipeline, and where the lost ones stopped.

    Stages are ordered by position. A deal *reached* a stage if it entered it or a later open stage (skipping is
    allowed), and every won deal reached every stage; a deal with no stage history counts at the first stage.
    advanced = reached of the next stage (for the last open stage: won); conversion = advanced ÷ reached (None on 0).
    lost_here / lost_amount: lost deals whose furthest stage is this one.
    Columns: pipeline_id, pipeline, stage_id, stage, position, reached, advanced, conversion, lost_here, lost_amount.
    """
    f = _furthest(session, actor, flt)
    result = session.exec(select(f.c.pipeline_id, f.c.status, f.c.furthest, func.count().label("deals"),
                                 func.sum(f.c.amount).label("amount"))
                          .group_by(f.c.pipeline_id, f.c.status, f.c.furthest))
    groups = pd.DataFrame(result.all(), columns=list(result.keys()))
    stages = _open_stages(session, flt)
    rows = []
    for pipeline_id, mine in stages.groupby("pipeline_id", sort=False):
        deals = groups[groups.pipeline_id == pipeline_id]
        won = int(deals[deals.status == DealStatus.WON].deals.sum())
        others = deals[deals.status != DealStatus.WON].copy()
        others["furthest"] = others.furthest.fillna(mine.position.min())
        lost = deals[deals.status == DealStatus.LOST].copy()
        lost["stage_id"] = _lost_at(mine, lost)
        for stage in mine.itertuples():
            reached = won + int(others[others.furthest >= stage.position].deals.sum())
            here = lost[lost.stage_id == stage.stage_id]
            rows.append({"pipeline_id": pipeline_id, "pipeline": stage.pipeline, "stage_id": stage.stage_id,
                         "stage": stage.stage, "position": stage.position, "reached": reached,
                         "lost_here": int(here.deals.sum()), "lost_amount": float(here.amount.sum())})
        for i, row in enumerate(rows[-len(mine):]):
            row["advanced"] = rows[-len(mine) + i + 1]["reached"] if i + 1 < len(mine) else won
            row["conversion"] = ratio(row["advanced"], row["reached"])
    columns = ["pipeline_id", "pipeline", "stage_id", "stage", "position", "reached", "advanced", "conversion",
               "lost_here", "lost_amount"]
    return pd.DataFrame(rows, columns=columns)


def losses(session: Session, actor: Actor, flt: KpiFilter) -> pd.DataFrame:
    """Deals lost in the period by lost reason and the stage they were lost at (as in the funnel), most first.

    Columns: reason ("(no reason)" when none was given), stage, deals, amount, share (of all lost deals)."""
    f = _furthest(session, actor, flt)
    result = session.exec(select(f.c.pipeline_id, f.c.furthest, func.coalesce(LostReason.name, "(no reason)")
                                 .label("reason"), func.count().label("deals"), func.sum(f.c.amount).label("amount"))
                          .select_from(f).join(LostReason, LostReason.id == f.c.lost_reason_id, isouter=True)
                          .where(f.c.status == DealStatus.LOST)
                          .group_by(f.c.pipeline_id, f.c.furthest, LostReason.name))
    lost = pd.DataFrame(result.all(), columns=list(result.keys()))
    columns = ["reason", "stage", "deals", "amount", "share"]
    if lost.empty:
        return pd.DataFrame(columns=columns)
    stages = _open_stages(session, flt)
    lost["stage_id"] = _lost_at(stages, lost)
    lost = lost.merge(stages[["stage_id", "stage"]], on="stage_id", how="left")
    out = lost.groupby(["reason", "stage"], dropna=False)[["deals", "amount"]].sum().reset_index()
    out["share"] = out.deals / out.deals.sum()
    return out.sort_values(["deals", "amount", "reason"], ascending=[False, False, True], ignore_index=True)[columns]


# --- win rates ----------------------------------------------------------------------------------------------------

def win_rates(session: Session, actor: Actor, flt: KpiFilter, by: WinRateBy) -> pd.DataFrame:
    """Close rate (won ÷ closed) of the deals closed in the period, per source, product or rep.

    product: a deal counts once for each product on its line items, so the rows can add up to more than all deals;
    deals with no line item are "(no product)". Missing source: "(unknown)"; no owner: "(unassigned)".
    Columns: key, label, won, closed, win_rate, won_amount; most closed first."""
    won = Deal.status == DealStatus.WON
    # Grouped by the plain columns, labelled by an expression on them (PostgreSQL accepts that).
    keys = {"source": (Deal.source, Deal.source, "(unknown)"), "rep": (Deal.owner_id, User.full_name, "(unassigned)"),
            "product": (Product.id, Product.name, "(no product)")}
    if by not in keys:
        raise ValueError(f"win rates by source, product or rep, not {by!r}")
    key, name, missing = keys[by]
    label = func.coalesce(name, missing)
    stmt = select(key.label("key"), label.label("label"), func.count(distinct(case((won, Deal.id)))).label("won"),
                  func.count(distinct(Deal.id)).label("closed"),
                  func.coalesce(func.sum(case((won, Deal.amount), else_=0.0)), 0.0).label("won_amount"))
    if by == "rep":
        stmt = stmt.select_from(Deal).join(User, User.id == Deal.owner_id, isouter=True)
    elif by == "product":
        # won_amount per product is each won deal's amount once, however many lines name the product.
        lines = select(DealLineItem.deal_id, DealLineItem.product_id).distinct().subquery()
        stmt = (stmt.select_from(Deal).join(lines, lines.c.deal_id == Deal.id, isouter=True)
                .join(Product, Product.id == lines.c.product_id, isouter=True))
    result = session.exec(stmt.where(*_closed_in(session, actor, flt)).group_by(key, name))
    frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    frame["win_rate"] = [ratio(w, c) for w, c in zip(frame.won, frame.closed)]
    frame = frame.sort_values(["closed", "label"], ascending=[False, True], ignore_index=True)
    return frame[["key", "label", "won", "closed", "win_rate", "won_amount"]]


METRICS = {
    "close_rate": close_rate,
    "cohort_close_rate": cohort_close_rate,
    "sales_cycle": sales_cycle,
}
