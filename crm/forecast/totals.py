"""The forecast of one period: closed-won, open amounts by forecast category, weighted pipeline, quota."""
from dataclasses import dataclass
from datetime import date

import pandas as pd
from sqlalchemy import case, func
from sqlmodel import Session, select

from crm.forecast.quota import ScopeQuota, scope_quota
from crm.forecast.scope import (
    WEIGHTINGS, ForecastFilter, Scope, Weighting, check_weighting, expected_close, resolve_scope, scope_conditions,
    weight, won_between,
)
from crm.frames import result_frame
from crm.models import Deal, DealStatus, ForecastCategory, Stage, User
from crm.permissions import Actor, require

OPEN_CATEGORIES = (ForecastCategory.PIPELINE, ForecastCategory.BEST_CASE, ForecastCategory.COMMIT,
                   ForecastCategory.OMITTED)
AMOUNTS = ["won", *map(str, OPEN_CATEGORIES), *(f"weighted_{w}" for w in WEIGHTINGS)]
COUNTS = ["won_deals", "open_deals", "rep_deals", "model_deals"]


@dataclass
class ForecastSummary:
    """Money is in the deals' currency (the CRM keeps USD); open amounts are open deals expected in the period."""
    kind: str
    period_start: date
    period_end: date
    weighting: str
    closed_won: float
    won_deals: int
    pipeline: float
    best_case: float
    commit: float
    omitted: float
    commit_forecast: float  # closed-won + commit
    best_case_forecast: float  # closed-won + commit + best case
    weighted_pipeline: float  # open, not omitted, amount x probability
    weighted_forecast: float  # closed-won + weighted pipeline
    open_deals: int
    weights_from_rep: int  # open deals in the period with the rep's own probability; the others use the stage's
    weights_from_model: int  # the same for a model's probability (none until a deal model is trained)
    undated_open_deals: int  # open deals without an expected close date: in no period
    quota: float | None
    attainment: float | None  # closed-won / quota
    by_rep: pd.DataFrame


def forecast_summary(*, session: Session, actor: Actor, filter: ForecastFilter,
                     weighting: Weighting = "stage") -> ForecastSummary:
    """Closed-won, commit, best case, pipeline, weighted pipeline, quota and attainment, in total and per rep."""
    require(actor, "forecast.view", "see forecasts")
    check_weighting(weighting)
    scope = resolve_scope(session, actor, pipeline_id=filter.pipeline_id, team_id=filter.team_id,
                          owner_id=filter.owner_id)
    start, end = filter.period_start, filter.period_end
    totals = period_totals(session, scope, start, end)
    quota = scope_quota(session, scope, start, end)
    sums = totals[AMOUNTS + COUNTS].sum()
    won, commit, best = float(sums["won"]), float(sums["commit"]), float(sums["best_case"])
    weighted = float(sums[f"weighted_{weighting}"])
    return ForecastSummary(
        kind=filter.kind, period_start=start, period_end=end, weighting=weighting, closed_won=won,
        won_deals=int(sums["won_deals"]), pipeline=float(sums["pipeline"]), best_case=best, commit=commit,
        omitted=float(sums["omitted"]), commit_forecast=won + commit, best_case_forecast=won + commit + best,
        weighted_pipeline=weighted, weighted_forecast=won + weighted, open_deals=int(sums["open_deals"]),
        weights_from_rep=int(sums["rep_deals"]), weights_from_model=int(sums["model_deals"]),
        undated_open_deals=_undated(session, scope), quota=quota.total, attainment=_ratio(won, quota.total),
        by_rep=_by_rep(session, totals, quota, weighting))


def period_totals(session: Session, scope: Scope, start: date, end: date, *, by_pipeline: bool = False) -> pd.DataFrame:
    """One row per owner (and pipeline): won in the period, and open deals expected in it, aggregated in SQL."""
    keys = [Deal.owner_id, Deal.pipeline_id] if by_pipeline else [Deal.owner_id]
    key_names = [k.key for k in keys]
    won = (select(*keys, func.sum(Deal.amount).label("won"), func.count().label("won_deals"))
           .where(*scope_conditions(scope), *won_between(scope, start, end)).group_by(*keys))
    counted = Deal.forecast_category != ForecastCategory.OMITTED
    open_ = (select(*keys,
                    *(func.sum(case((Deal.forecast_category == c, Deal.amount), else_=0)).label(str(c))
                      for c in OPEN_CATEGORIES),
                    *(func.sum(case((counted, Deal.amount * weight(w)), else_=0)).label(f"weighted_{w}")
                      for w in WEIGHTINGS),
                    func.count().label("open_deals"), func.count(Deal.rep_probability).label("rep_deals"),
                    func.count(Deal.model_probability).label("model_deals"))
             .join(Stage, Stage.id == Deal.stage_id)
             .where(*scope_conditions(scope), Deal.status == DealStatus.OPEN,
                    expected_close(scope) >= start, expected_close(scope) <= end).group_by(*keys))
    frames = [_frame(session, stmt) for stmt in (won, open_)]
    merged = frames[0].merge(frames[1], on=key_names, how="outer").astype({k: "Int64" for k in key_names})
    for column in AMOUNTS + COUNTS:
        merged[column] = merged[column].fillna(0).astype(int if column in COUNTS else float)
    return merged


def _frame(session: Session, stmt) -> pd.DataFrame:
    return result_frame(session.exec(stmt))


def _undated(session: Session, scope: Scope) -> int:
    return session.exec(select(func.count()).select_from(Deal).where(
        *scope_conditions(scope), Deal.status == DealStatus.OPEN, Deal.expected_close.is_(None))).one()


def _ratio(part: float, whole: float | None) -> float | None:
    return part / whole if whole else None


def _by_rep(session: Session, totals: pd.DataFrame, quota: ScopeQuota, weighting: str) -> pd.DataFrame:
    """Per owner with deals or a quota in the period: the same numbers as the summary, by name."""
    owners = pd.Index(totals["owner_id"]).union(pd.Index(list(quota.by_user), dtype="Int64"))
    frame = totals.set_index("owner_id").reindex(owners).fillna(0).astype({c: int for c in COUNTS})
    frame = frame.rename(columns={"won": "closed_won", f"weighted_{weighting}": "weighted"})
    ids = [int(o) for o in owners if pd.notna(o)]
    names = dict(session.exec(select(User.id, User.full_name).where(User.id.in_(ids))).all())
    frame.insert(0, "rep", [names.get(o, "Unassigned") for o in owners])
    frame["quota"] = [quota.by_user.get(o) for o in owners]
    frame["attainment"] = [_ratio(w, q) for w, q in zip(frame["closed_won"], frame["quota"])]
    columns = ["rep", "closed_won", "commit", "best_case", "pipeline", "omitted", "weighted", "open_deals", "quota",
               "attainment"]
    return frame[columns].rename_axis("owner_id").reset_index().sort_values("rep", ignore_index=True)
