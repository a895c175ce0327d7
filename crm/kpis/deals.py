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
from sqlalchemy import case, func
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from crm.frames import select_frame
from crm.kpis.base import KpiFilter, Metric, deal_scope, ratio
from crm.models import Deal, DealLineItem, DealStageHistory, DealStatus, LostReason, Pipeline, Product, Stage, User
from crm.permissions import Actor
from crm.sqlfuncs import days_between, unindexed

CLOSED = (str(DealStatus.WON), str(DealStatus.LOST))
WinRateBy = Literal["source", "product", "rep"]



def _in_period(session: Session, actor: Actor, flt: KpiFilter, column, statuses=None) -> list:
    """WHERE conditions: live deals in scope whose `column` (closed_at or created_at) is in [since, until), with
    one of `statuses` when given.

    Shaped for SQLite, which has no statistics and picks indexes by rule, so that the query reads one covering index
    and never the deal rows: for everyone, the period's slice of ix_deal_closed_cover or ix_deal_created_cover (status
    and pipeline unindexed, or SQLite would read every won deal, or every deal of the pipeline, ever); for a team or
    a rep, ix_deal_owner_closed by owner and status (pipeline unindexed). PostgreSQL gets the plain columns."""
    scope = deal_scope(session, actor, flt)
    everyone = scope.owner_ids is None
    conditions = [Deal.deleted_at.is_(None), column >= flt.since, column < flt.until]
    if not everyone:
        conditions.append(Deal.owner_id.in_(scope.owner_ids))
    if scope.pipeline_id is not None:
        conditions.append(unindexed(Deal.pipeline_id) == scope.pipeline_id)
    if statuses is not None:
        conditions.append((unindexed(Deal.status) if everyone else Deal.status).in_(list(statuses)))
    return conditions


def _closed_in(session: Session, actor: Actor, flt: KpiFilter, statuses=CLOSED) -> list:
    """WHERE conditions: live deals in scope, with one of `statuses`, closed in [since, until)."""
    return _in_period(session, actor, flt, Deal.closed_at, statuses)


def _created_in(session: Session, actor: Actor, flt: KpiFilter) -> list:
    """WHERE conditions: live deals in scope created in [since, until), whatever their status."""
    return _in_period(session, actor, flt, Deal.created_at)


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

def _pipeline_stages(session: Session) -> pd.DataFrame:
    """Every open stage (neither won nor lost), deleted ones too: the history in them still counts.
    Columns: stage_id, pipeline_id, stage, position."""
    return select_frame(session, select(
        Stage.id.label("stage_id"), Stage.pipeline_id, Stage.name.label("stage"), Stage.position,
    ).where(Stage.is_won.is_(False), Stage.is_lost.is_(False)))


def stage_durations(session: Session, actor: Actor, flt: KpiFilter) -> pd.DataFrame:
    """Days deals closed in the period spent in each open stage, for won and for lost: the median and 75th
    percentile, and the rest of a box plot (25th percentile, and Tukey's whiskers: the lowest and highest days within
    1.5 interquartile ranges of the box).

    A deal's time in a stage is the sum of its completed visits (exited_at − entered_at, in days), so a deal that
    went back counts once with its total. Closed stages (is_won, is_lost) are not pipeline stages and are left out.
    Columns: pipeline_id, stage_id, stage, position, outcome, deals, median_days, p75_days, p25_days,
    whisker_low_days, whisker_high_days; no rows without data."""
    stages = _pipeline_stages(session)
    h = DealStageHistory
    # The visits come straight from the index (no GROUP BY in SQL: its sort costs more than pandas' sum). The stage
    # is unindexed so that SQLite starts from the period's deals, not from every visit ever made to these stages.
    visits = select_frame(session, select(
        h.deal_id, h.stage_id, Deal.status.label("outcome"), days_between(h.entered_at, h.exited_at).label("days"),
    ).select_from(Deal).join(h, h.deal_id == Deal.id).where(
        *_closed_in(session, actor, flt), h.exited_at.is_not(None),
        unindexed(h.stage_id).in_(stages.stage_id.tolist())))
    columns = ["pipeline_id", "stage_id", "stage", "position", "outcome", "deals", "median_days", "p75_days",
               "p25_days", "whisker_low_days", "whisker_high_days"]
    if visits.empty:
        return pd.DataFrame(columns=columns)
    per_deal = visits.groupby(["deal_id", "stage_id", "outcome"], as_index=False, sort=False)["days"].sum()
    boxes = [{"stage_id": stage_id, "outcome": outcome, **box_of(days.to_numpy())}
             for (stage_id, outcome), days in per_deal.groupby(["stage_id", "outcome"])["days"]]
    out = pd.DataFrame(boxes).merge(stages, on="stage_id")  # labels on the few result rows, not on every visit
    return out.sort_values(["pipeline_id", "position", "outcome"], ignore_index=True)[columns]


def box_of(days: np.ndarray) -> dict:
    """A box plot's numbers for one group of durations (linear-interpolated quantiles, as numpy's default)."""
    p25, median, p75 = (float(q) for q in np.quantile(days, [0.25, 0.5, 0.75]))
    reach = 1.5 * (p75 - p25)
    return {"deals": len(days), "median_days": median, "p75_days": p75, "p25_days": p25,
            "whisker_low_days": float(days[days >= p25 - reach].min()),
            "whisker_high_days": float(days[days <= p75 + reach].max())}


# --- 5. sales-cycle length ----------------------------------------------------------------------------------------

def _cycle_days(session: Session, actor: Actor, flt: KpiFilter) -> pd.Series:
    won = _closed_in(session, actor, flt, statuses=(str(DealStatus.WON),))
    days = select_frame(session, select(days_between(Deal.created_at, Deal.closed_at).label("days")).where(*won))
    return days["days"].astype(float)


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
    """Per deal lost in the period: id, pipeline_id, amount, lost_reason_id and furthest, the highest position among
    the open stages of its pipeline it entered (NULL: none). Won deals need none: they reached every stage.

    furthest is a correlated subquery, one index probe per deal. OFFSET 0 keeps SQLite from merging this query into
    the grouping one around it, which would run the subquery twice per deal (PostgreSQL ignores the fence)."""
    h = DealStageHistory
    furthest = (select(func.max(Stage.position)).select_from(h).join(Stage, Stage.id == h.stage_id)
                .where(h.deal_id == Deal.id, Stage.pipeline_id == Deal.pipeline_id, Stage.is_won.is_(False),
                       Stage.is_lost.is_(False))
                .correlate(Deal).scalar_subquery())
    return (select(Deal.id, Deal.pipeline_id, Deal.amount, Deal.lost_reason_id, furthest.label("furthest"))
            .where(*_closed_in(session, actor, flt, statuses=(str(DealStatus.LOST),))).offset(0).subquery())


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


def _lost_at(stages: pd.DataFrame, lost) -> list:
    """The open stage each lost-deal group, a (pipeline_id, furthest) pair, stopped at: the last stage at or before
    its furthest position (no history: the pipeline's first stage). Plain Python: a few dozen groups at most."""
    order: dict[int, list[tuple[int, int]]] = {}
    for stage in stages.itertuples():
        order.setdefault(stage.pipeline_id, []).append((stage.position, int(stage.stage_id)))

    def at(pipeline_id, furthest):
        mine = order.get(pipeline_id)
        if not mine:
            return None
        reached = [stage_id for position, stage_id in mine if pd.notna(furthest) and position <= furthest]
        return reached[-1] if reached else mine[0][1]
    return [at(pipeline_id, furthest) for pipeline_id, furthest in lost]


def _lost_groups(session: Session, actor: Actor, flt: KpiFilter) -> pd.DataFrame:
    """Deals lost in the period by pipeline, furthest position (NaN: no history) and lost reason ("(no reason)"):
    columns pipeline_id, furthest, reason, deals, amount. The funnel and the losses both read it."""
    f = _furthest(session, actor, flt)
    reason = func.coalesce(LostReason.name, "(no reason)").label("reason")
    return select_frame(session, select(f.c.pipeline_id, f.c.furthest, reason, func.count().label("deals"),
                                        func.coalesce(func.sum(f.c.amount), 0).label("amount"))
                        .select_from(f).join(LostReason, LostReason.id == f.c.lost_reason_id, isouter=True)
                        .group_by(f.c.pipeline_id, f.c.furthest, LostReason.name))


def conversion_funnel(session: Session, actor: Actor, flt: KpiFilter) -> pd.DataFrame:
    """Stage-to-stage conversion of the deals closed in the period, per pipeline, and where the lost ones stopped.

    Stages are ordered by position. A deal *reached* a stage if it entered it or a later open stage (skipping is
    allowed), and every won deal reached every stage; a deal with no stage history counts at the first stage.
    advanced = reached of the next stage (for the last open stage: won); conversion = advanced ÷ reached (None on 0).
    lost_here / lost_amount: lost deals whose furthest stage is this one.
    Columns: pipeline_id, pipeline, stage_id, stage, position, reached, advanced, conversion, lost_here, lost_amount.
    """
    return _funnel(session, actor, flt, _open_stages(session, flt), _lost_groups(session, actor, flt))


def losses(session: Session, actor: Actor, flt: KpiFilter) -> pd.DataFrame:
    """Deals lost in the period by lost reason and the stage they were lost at (as in the funnel), most first.

    Columns: reason ("(no reason)" when none was given), stage, deals, amount, share (of all lost deals)."""
    return _losses(_open_stages(session, flt), _lost_groups(session, actor, flt))


def funnel_and_losses(session: Session, actor: Actor, flt: KpiFilter) -> tuple[pd.DataFrame, pd.DataFrame]:
    """conversion_funnel and losses together, from one read of the lost deals (what the KPI page shows)."""
    stages, lost = _open_stages(session, flt), _lost_groups(session, actor, flt)
    return _funnel(session, actor, flt, stages, lost), _losses(stages, lost)


def _funnel(session: Session, actor: Actor, flt: KpiFilter, stages: pd.DataFrame, lost: pd.DataFrame) -> pd.DataFrame:
    won_by_pipeline = dict(session.exec(
        select(Deal.pipeline_id, func.count()).where(*_closed_in(session, actor, flt, statuses=(str(DealStatus.WON),)))
        .group_by(Deal.pipeline_id)).all())
    groups = lost.groupby(["pipeline_id", "furthest"], dropna=False, as_index=False)[["deals", "amount"]].sum()
    rows = []
    for pipeline_id, mine in stages.groupby("pipeline_id", sort=False):
        won = won_by_pipeline.get(pipeline_id, 0)
        here_lost = [g for g in groups.itertuples() if g.pipeline_id == pipeline_id]
        first = mine.position.min()
        others = [(first if pd.isna(g.furthest) else g.furthest, g.deals) for g in here_lost]  # closed, not won: lost
        stops = _lost_at(mine, [(g.pipeline_id, g.furthest) for g in here_lost])
        funnel = []
        for stage in mine.itertuples():
            here = [g for g, stop in zip(here_lost, stops) if stop == stage.stage_id]
            funnel.append({"pipeline_id": pipeline_id, "pipeline": stage.pipeline, "stage_id": stage.stage_id,
                           "stage": stage.stage, "position": stage.position,
                           "reached": won + sum(int(n) for furthest, n in others if furthest >= stage.position),
                           "lost_here": sum(int(g.deals) for g in here),
                           "lost_amount": float(sum(g.amount for g in here))})
        for row, after in zip(funnel, [*funnel[1:], None]):
            row["advanced"] = after["reached"] if after else won
            row["conversion"] = ratio(row["advanced"], row["reached"])
        rows += funnel
    columns = ["pipeline_id", "pipeline", "stage_id", "stage", "position", "reached", "advanced", "conversion",
               "lost_here", "lost_amount"]
    return pd.DataFrame(rows, columns=columns)


def _losses(stages: pd.DataFrame, lost: pd.DataFrame) -> pd.DataFrame:
    columns = ["reason", "stage", "deals", "amount", "share"]
    if lost.empty:
        return pd.DataFrame(columns=columns)
    lost = lost.assign(stage_id=_lost_at(stages, zip(lost.pipeline_id, lost.furthest)))
    lost = lost.merge(stages[["stage_id", "stage"]], on="stage_id", how="left")
    out = lost.groupby(["reason", "stage"], dropna=False)[["deals", "amount"]].sum().reset_index()
    out["share"] = out.deals / out.deals.sum()
    return out.sort_values(["deals", "amount", "reason"], ascending=[False, False, True], ignore_index=True)[columns]


# --- win rates ----------------------------------------------------------------------------------------------------

def _win_rate_rows(session: Session, actor: Actor, flt: KpiFilter, by: WinRateBy):
    """One row per deal closed in the period and key (its source, its owner, or each distinct product on its line
    items, NULL without any): key, status, amount."""
    closed = _closed_in(session, actor, flt)
    if by == "product":
        # A line counts unless an earlier line of its deal names the same product: a probe in the deal's lines,
        # cheaper than a DISTINCT over every line.
        line, earlier = DealLineItem, aliased(DealLineItem, name="earlier")
        repeated = select(earlier.id).where(earlier.deal_id == line.deal_id, earlier.product_id == line.product_id,
                                            earlier.id < line.id)
        return (select(Deal.status, Deal.amount, line.product_id.label("key")).select_from(Deal)
                .join(line, line.deal_id == Deal.id, isouter=True).where(*closed, ~repeated.exists()).subquery())
    key = Deal.source if by == "source" else Deal.owner_id
    return select(Deal.status, Deal.amount, key.label("key")).where(*closed).subquery()


def win_rates(session: Session, actor: Actor, flt: KpiFilter, by: WinRateBy) -> pd.DataFrame:
    """Close rate (won ÷ closed) of the deals closed in the period, per source, product or rep.

    product: a deal counts once for each product on its line items, so the rows can add up to more than all deals;
    deals with no line item are "(no product)". Missing source: "(unknown)"; no owner: "(unassigned)".
    Columns: key, label, won, closed, win_rate, won_amount; most closed first."""
    # by: (table naming the key, its name column, the label of a missing key)
    names = {"source": (None, None, "(unknown)"), "rep": (User, User.full_name, "(unassigned)"),
             "product": (Product, Product.name, "(no product)")}
    if by not in names:
        raise ValueError(f"win rates by source, product or rep, not {by!r}")
    rows = _win_rate_rows(session, actor, flt, by)
    won = rows.c.status == DealStatus.WON
    # Counted per key from the deals' index alone; the few keys are named afterwards.
    counts = (select(rows.c.key, func.coalesce(func.sum(case((won, 1), else_=0)), 0).label("won"),
                     func.count().label("closed"),
                     func.coalesce(func.sum(case((won, rows.c.amount), else_=0.0)), 0.0).label("won_amount"))
              .group_by(rows.c.key).subquery())
    table, name, missing = names[by]
    label = func.coalesce(counts.c.key if table is None else name, missing)
    stmt = select(counts.c.key, label.label("label"), counts.c.won, counts.c.closed, counts.c.won_amount)
    if table is not None:
        stmt = stmt.select_from(counts).join(table, table.id == counts.c.key, isouter=True)
    frame = select_frame(session, stmt)
    frame["win_rate"] = [ratio(w, c) for w, c in zip(frame.won, frame.closed)]
    frame = frame.sort_values(["closed", "label"], ascending=[False, True], ignore_index=True)
    return frame[["key", "label", "won", "closed", "win_rate", "won_amount"]]


METRICS = {
    "close_rate": close_rate,
    "cohort_close_rate": cohort_close_rate,
    "sales_cycle": sales_cycle,
}
