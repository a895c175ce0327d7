"""Past forecasts rebuilt from stage history, for periods no snapshot covers.

As of t0, a period's first day at 00:00 UTC, the pipeline is the deals open then, in the stage they were in then.
Two methods can be rebuilt from it without looking past t0:
- stage: amount x the stage table's probability x P(closes within the period | stage, days already in it), the
  close timing learned from deals won before t0 (crm.forecast.slip);
- history: amount x the stage's conversion over the previous periods: of the amount open in that stage at the start
  of each of the HISTORY_PERIODS periods before, the share won within that period.
Expected close dates, forecast categories, rep and model probabilities were never recorded over time, so the other
methods cannot be rebuilt.
"""
from dataclasses import dataclass
from datetime import date

import pandas as pd
from sqlalchemy import DateTime, case, func, literal, or_
from sqlmodel import Session, select

from crm.forecast.scope import Scope, day_after, scope_conditions, utc_midnight
from crm.forecast.slip import MIN_EXAMPLES, learn_timing
from crm.frames import result_frame
from crm.sqlfuncs import whole_days
from crm.models import Deal, DealStageHistory, DealStatus, Stage

HISTORY_PERIODS = 4


@dataclass(frozen=True)
class Reconstruction:
    forecast: float | None  # None when no deal could be weighted
    note: str


def pipeline_at(session: Session, scope: Scope, start: date, end: date) -> pd.DataFrame:
    """Deals open at the start of `start`, by the stage they were in and whole days spent in it, with the amount
    of them won by the end of `end` (aggregated in SQL)."""
    t0 = utc_midnight(start)
    entered = DealStageHistory.entered_at
    won = (Deal.status == DealStatus.WON) & (Deal.closed_at < day_after(end))
    stmt = (select(DealStageHistory.stage_id, Stage.probability,
                   whole_days(literal(t0, DateTime(timezone=True)), entered).label("elapsed"),
                   func.count().label("deals"), func.sum(Deal.amount).label("amount"),
                   func.sum(case((won, Deal.amount), else_=0)).label("won"))
            .join(Deal, Deal.id == DealStageHistory.deal_id).join(Stage, Stage.id == DealStageHistory.stage_id)
            .where(*scope_conditions(scope), Deal.created_at <= t0, or_(Deal.closed_at.is_(None), Deal.closed_at >= t0),
                   entered <= t0, or_(DealStageHistory.exited_at.is_(None), DealStageHistory.exited_at > t0),
                   ~Stage.is_won, ~Stage.is_lost)
            .group_by(DealStageHistory.stage_id, Stage.probability, "elapsed"))
    frame = result_frame(session.exec(stmt))
    return frame.astype({"stage_id": int, "probability": float, "elapsed": int, "deals": int, "amount": float,
                         "won": float})


def stage_forecast(session: Session, pipeline: pd.DataFrame, start: date, end: date) -> Reconstruction:
    """Σ amount x stage probability x P(closes within the period | stage, days in it), as of `start`."""
    timing = learn_timing(session, until=utc_midnight(start), stage_ids=sorted(set(pipeline["stage_id"])))
    weight = pd.Series(float("nan"), index=pipeline.index)
    for stage_id, rows in pipeline.groupby("stage_id"):
        if timing.learned(stage_id):
            elapsed = rows["elapsed"].clip(lower=0).to_numpy()
            in_period = timing.p_closed_within(stage_id, elapsed, elapsed + (end - start).days)
            weight[rows.index] = rows["probability"].to_numpy() * in_period
    return _weighted(pipeline, weight, "won examples of close timing in the year before")


def history_forecast(pipeline: pd.DataFrame, earlier: list[pd.DataFrame]) -> Reconstruction:
    """Σ amount x the stage's share of open amount won within the period, over the earlier periods' pipelines."""
    seen = pd.concat(earlier).groupby("stage_id")[["deals", "amount", "won"]].sum()
    rate = (seen["won"] / seen["amount"]).where((seen["deals"] >= MIN_EXAMPLES) & (seen["amount"] > 0))
    weight = pipeline["stage_id"].map(rate)
    return _weighted(pipeline, weight, f"deals open at the start of the {HISTORY_PERIODS} periods before")


def _weighted(pipeline: pd.DataFrame, weight: pd.Series, examples: str) -> Reconstruction:
    """Σ amount x weight; deals without a weight (too few examples) are left out, and the note says so."""
    left_out = int(pipeline.loc[weight.isna(), "deals"].sum())
    note = (f"{left_out} of {int(pipeline['deals'].sum())} open deals left out: their stage had fewer than "
            f"{MIN_EXAMPLES} {examples}" if left_out else "")
    if left_out and weight.isna().all():
        return Reconstruction(None, note)
    return Reconstruction(float((pipeline["amount"] * weight).sum()), note)
