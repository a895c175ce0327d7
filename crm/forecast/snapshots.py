"""Forecast snapshots: the forecast as it stood on a day, kept so that later it can be checked against the outcome.

`take_snapshot` stores, for the current month and quarter, one row per (pipeline, owner) with the period's numbers
by every weighting method. Rerunning it the same day replaces that day's rows, so cron may call it freely.
"""
from datetime import date

import pandas as pd
from sqlalchemy import delete
from sqlmodel import Session, select

from crm.audit import bump_data_version
from crm.clock import today as utc_today
from crm.forecast.periods import PERIOD_KINDS, period_bounds
from crm.forecast.scope import ForecastFilter, Scope, resolve_scope
from crm.forecast.totals import AMOUNTS, COUNTS, period_totals
from crm.models import ForecastSnapshot, User
from crm.permissions import Actor, require

FIELDS = AMOUNTS + COUNTS  # what each row's data holds: won, categories, weighted_<method>, deal counts


def take_snapshot(*, session: Session, actor: Actor | None = None, today: date | None = None) -> int:
    """Store the forecast as of now for the current month and quarter under `today`; returns the rows written.

    actor None is the operator (CLI, cron). Bumping the data version first also makes two runs on PostgreSQL
    queue on its row, so they cannot both delete and then both insert.
    """
    if actor is not None:
        require(actor, "forecast.view", "take forecast snapshots")
        require(actor, "deals.read_all", "snapshot every team's forecast")
    today = today or utc_today()
    bump_data_version(session)
    teams = dict(session.exec(select(User.id, User.team_id)).all())
    written = 0
    for kind in PERIOD_KINDS:
        start, end = period_bounds(kind, today)
        session.execute(delete(ForecastSnapshot).where(ForecastSnapshot.taken_on == today,
                                                       ForecastSnapshot.period_start == start,
                                                       ForecastSnapshot.period_end == end))
        totals = period_totals(session, Scope(None), start, end, by_pipeline=True)
        session.add_all(ForecastSnapshot(
            taken_on=today, period_start=start, period_end=end, pipeline_id=_id(row["pipeline_id"]),
            user_id=_id(row["owner_id"]), team_id=teams.get(_id(row["owner_id"])),
            data=_data(row)) for row in totals.to_dict("records"))
        written += len(totals)
    session.flush()
    return written


def _id(value) -> int | None:
    return None if pd.isna(value) else int(value)


def _data(row: dict) -> dict:
    return {**{name: float(row[name]) for name in AMOUNTS}, **{name: int(row[name]) for name in COUNTS}}


def list_snapshots(*, session: Session, actor: Actor, filter: ForecastFilter) -> pd.DataFrame:
    """The filter's period as forecast on each day a snapshot was taken, summed over the filter's scope."""
    require(actor, "forecast.view", "see forecasts")
    scope = resolve_scope(session, actor, pipeline_id=filter.pipeline_id, team_id=filter.team_id,
                          owner_id=filter.owner_id)
    return snapshot_totals(session, scope, filter.period_start, filter.period_end)


def snapshot_totals(session: Session, scope: Scope, start: date, end: date,
                    taken_on: date | None = None) -> pd.DataFrame:
    """One row per day taken (only `taken_on` if given): the scope's sums of every snapshot field."""
    stmt = select(ForecastSnapshot.taken_on, ForecastSnapshot.data).where(
        ForecastSnapshot.period_start == start, ForecastSnapshot.period_end == end)
    if taken_on is not None:
        stmt = stmt.where(ForecastSnapshot.taken_on == taken_on)
    if scope.owner_ids is not None:
        stmt = stmt.where(ForecastSnapshot.user_id.in_(scope.owner_ids))
    if scope.pipeline_id is not None:
        stmt = stmt.where(ForecastSnapshot.pipeline_id == scope.pipeline_id)
    rows = session.exec(stmt).all()
    frame = pd.DataFrame([{"taken_on": day, **{f: data.get(f, 0) for f in FIELDS}} for day, data in rows],
                         columns=["taken_on", *FIELDS])
    days = snapshot_days(session, start, end) if taken_on is None else [taken_on]
    # A day whose snapshot has no row in the scope forecast zero for it: the snapshot covers every owner.
    return frame.groupby("taken_on").sum().reindex(days, fill_value=0).rename_axis("taken_on").reset_index()


def snapshot_days(session: Session, start: date, end: date) -> list[date]:
    """The days a snapshot of this period was taken, in order."""
    return list(session.exec(select(ForecastSnapshot.taken_on).distinct().where(
        ForecastSnapshot.period_start == start, ForecastSnapshot.period_end == end)
        .order_by(ForecastSnapshot.taken_on)).all())
