"""Backtest: for past periods, the forecast made at each period's start against what actually closed.

A period's forecast comes from the first snapshot taken in its first days when there is one; otherwise it is
rebuilt from stage history (crm.forecast.reconstruct), which can do the stage method but not the rep's or the
model's, whose past values were never recorded. The history method (each stage's conversion in the periods before)
is always rebuilt.
"""
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
from sqlalchemy import case, func
from sqlmodel import Session, select

from crm.clock import today as utc_today
from crm.errors import ValidationFailed
from crm.forecast.periods import PeriodKind, previous_periods
from crm.forecast.reconstruct import HISTORY_PERIODS, history_forecast, pipeline_at, stage_forecast
from crm.forecast.scope import WEIGHTINGS, Scope, day_after, resolve_scope, scope_conditions, utc_midnight, won_between
from crm.forecast.snapshots import snapshot_days, snapshot_totals
from crm.models import Deal
from crm.permissions import Actor, require

METHODS = (*WEIGHTINGS, "history")  # history: each stage's conversion in earlier periods, from stage history
SNAPSHOT_GRACE = timedelta(days=3)  # a snapshot taken up to three days into the period still counts as its start
SNAPSHOT = "snapshot"
RECONSTRUCTED = "reconstructed from stage history"
NEEDS_SNAPSHOTS = "needs snapshots"
COLUMNS = ["period_start", "period_end", "method", "source", "forecast", "actual", "error", "abs_pct_error",
           "actual_from_open_at_start", "note"]


@dataclass
class Backtest:
    """rows: one per period and method; summary: one per method. Errors are forecast - actual."""
    kind: str
    rows: pd.DataFrame
    summary: pd.DataFrame  # method, periods (with a forecast), mean_error, mean_abs_pct_error, sources
    reconstructed_periods: int  # periods without a snapshot at their start, so rebuilt from stage history


def backtest(*, session: Session, actor: Actor, kind: PeriodKind, periods: int = 6, pipeline_id: int | None = None,
             team_id: int | None = None, owner_id: int | None = None, today: date | None = None) -> Backtest:
    """Each of the last `periods` complete periods, each method: forecast at the start, actual closed-won, error."""
    require(actor, "forecast.view", "see forecasts")
    if not 1 <= periods <= 36:
        raise ValidationFailed("periods", "between 1 and 36")
    scope = resolve_scope(session, actor, pipeline_id=pipeline_id, team_id=team_id, owner_id=owner_id)
    every = previous_periods(kind, today or utc_today(), periods + HISTORY_PERIODS)
    pipelines = [pipeline_at(session, scope, start, end) for start, end in every]  # the first few only teach
    actuals = _actuals(session, scope, every[HISTORY_PERIODS:])
    rows = []
    for i, (start, end) in enumerate(every[HISTORY_PERIODS:], start=HISTORY_PERIODS):
        taken = [d for d in snapshot_days(session, start, end) if d <= start + SNAPSHOT_GRACE]
        forecasts = (_from_snapshot(session, scope, start, end, taken[0]) if taken
                     else _rebuilt_stage(session, pipelines[i], start, end))
        history = history_forecast(pipelines[i], pipelines[i - HISTORY_PERIODS:i])
        forecasts["history"] = (history.forecast, RECONSTRUCTED, history.note)
        actual = {"actual": actuals[i - HISTORY_PERIODS], "actual_from_open_at_start": float(pipelines[i]["won"].sum())}
        rows += [_row(start, end, method, *forecasts[method], **actual) for method in METHODS]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    no_snapshot = ((frame["method"] == "stage") & (frame["source"] == RECONSTRUCTED)).sum()
    return Backtest(kind=kind, rows=frame, summary=_summary(frame), reconstructed_periods=int(no_snapshot))


def _actuals(session: Session, scope: Scope, bounds: list[tuple[date, date]]) -> list[float]:
    """Closed-won in each period, in one query."""
    sums = [func.coalesce(func.sum(case(((Deal.closed_at >= utc_midnight(s)) & (Deal.closed_at < day_after(e)),
                                          Deal.amount), else_=0)), 0) for s, e in bounds]
    stmt = select(*sums).where(*scope_conditions(scope), *won_between(scope, bounds[0][0], bounds[-1][1]))
    return [float(v) for v in session.execute(stmt).one()]  # a row even with one period (exec gives a scalar)


def _from_snapshot(session: Session, scope: Scope, start: date, end: date, taken_on: date) -> dict[str, tuple]:
    """(forecast, source, note) per weighting method: won so far + weighted pipeline on the snapshot's day."""
    sums = snapshot_totals(session, scope, start, end, taken_on=taken_on).iloc[0]
    return {m: (sums["won"] + sums[f"weighted_{m}"], SNAPSHOT, _fallback_note(sums, m)) for m in WEIGHTINGS}


def _rebuilt_stage(session: Session, pipeline: pd.DataFrame, start: date, end: date) -> dict[str, tuple]:
    stage = stage_forecast(session, pipeline, start, end)
    unknown = {m: (None, NEEDS_SNAPSHOTS, f"{m} probabilities of the past were not recorded") for m in ("rep", "model")}
    return {"stage": (stage.forecast, RECONSTRUCTED, stage.note), **unknown}


def _fallback_note(sums: pd.Series, method: str) -> str:
    """Rep and model weights fall back to the stage's for deals without one: say for how many."""
    given, open_deals = int(sums.get(f"{method}_deals", 0)), int(sums["open_deals"])
    if method == "stage" or given == open_deals:
        return ""
    return f"{given} of {open_deals} open deals had a {method} probability; the others used the stage's"


def _row(start: date, end: date, method: str, forecast: float | None, source: str, note: str, *, actual: float,
         actual_from_open_at_start: float) -> dict:
    error = None if forecast is None else float(forecast) - actual
    pct = None if error is None or actual == 0 else abs(error) / actual
    return {"period_start": start, "period_end": end, "method": method, "source": source,
            "forecast": None if forecast is None else float(forecast), "actual": actual, "error": error,
            "abs_pct_error": pct, "actual_from_open_at_start": actual_from_open_at_start, "note": note}


def _summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per method: how many periods it forecast, its mean error (bias) and mean absolute percentage error."""
    out = []
    for method in METHODS:
        mine = rows[(rows["method"] == method) & rows["forecast"].notna()]
        out.append({"method": method, "periods": len(mine),
                    "mean_error": mine["error"].mean() if len(mine) else None,
                    "mean_abs_pct_error": mine["abs_pct_error"].dropna().mean() if len(mine) else None,
                    "sources": ", ".join(f"{n} {s}" for s, n in mine["source"].value_counts().items())})
    return pd.DataFrame(out)
