"""How long closed deals spent in each stage, kept in stage_stat: the stuck flag's threshold, and the KPIs' stage
durations.

A percentile over every won deal's stage history reads hundreds of thousands of rows at the large demo size (about
a second on SQLite), and one more win barely moves it. So the figures are stored, and recomputed when they are a
day old or the number of closed deals has moved by more than 1 % since (tests and small databases: any new close).
`python -m crm forecast snapshot`, meant for a nightly cron, refreshes them too.
"""
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import delete, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from crm.clock import as_utc, utcnow
from crm.db import read_scope, write_scope_beside
from crm.models import Deal, DealStageHistory, DealStatus, StageStat
from crm.sqlfuncs import days_between

MAX_AGE = timedelta(days=1)
DRIFT = 0.01  # recompute once the number of closed deals has moved by more than this share
MIN_DEALS = 5  # fewer stage visits than this, and nobody can say what is "usually" long
OUTCOMES = (DealStatus.WON, DealStatus.LOST)


def _closed_counts(session: Session) -> dict[str, int]:
    rows = session.exec(select(Deal.status, func.count()).where(Deal.status.in_(list(OUTCOMES)))
                        .group_by(Deal.status)).all()
    return {str(status): n for status, n in rows}


def refresh_stage_stats(*, session: Session, now: datetime | None = None) -> list[StageStat]:
    """Recompute every stage's median and 75th-percentile days for won and for lost deals; returns the rows."""
    now = now or utcnow()
    counts = _closed_counts(session)
    session.exec(delete(StageStat))
    written = []
    for outcome in OUTCOMES:
        days = session.exec(select(DealStageHistory.stage_id,
                                   days_between(DealStageHistory.entered_at, DealStageHistory.exited_at))
                            .join(Deal, Deal.id == DealStageHistory.deal_id)
                            .where(Deal.status == outcome, DealStageHistory.exited_at.is_not(None))).all()
        if not days:
            continue
        stages, values = np.array([d[0] for d in days]), np.array([d[1] for d in days], dtype=float)
        for stage_id in np.unique(stages):
            sample = values[stages == stage_id]
            if len(sample) < MIN_DEALS:
                continue
            median, p75 = np.quantile(sample, [0.5, 0.75])
            written.append(StageStat(stage_id=int(stage_id), outcome=str(outcome), deals=len(sample),
                                     median_days=float(median), p75_days=float(p75),
                                     closed_deals=counts.get(str(outcome), 0), computed_at=now))
    session.add_all(written)
    session.flush()
    return written


def is_stale(session: Session, now: datetime | None = None) -> bool:
    """True when the stored figures are missing, a day old, or the closed deals have moved by more than 1 %."""
    now = now or utcnow()
    stored = session.exec(select(StageStat.outcome, func.max(StageStat.closed_deals), func.min(StageStat.computed_at))
                          .group_by(StageStat.outcome)).all()
    counts = _closed_counts(session)
    if not stored:
        return any(counts.values())
    if now - as_utc(min(at for _, _, at in stored)) > MAX_AGE:
        return True
    basis = {outcome: n for outcome, n, _ in stored}
    return any(abs(counts.get(str(o), 0) - basis.get(str(o), 0)) > DRIFT * basis.get(str(o), 0) for o in OUTCOMES)


def stage_stats(session: Session) -> list[StageStat]:
    """The stored figures, refreshed first (in a transaction of its own) if they are stale.

    Two requests may find them stale together; the one that loses the race (a unique-key clash on PostgreSQL)
    reads what the winner stored."""
    if not is_stale(session):
        return list(session.exec(select(StageStat)).all())
    try:
        with write_scope_beside(session) as writer:
            return refresh_stage_stats(session=writer)
    except IntegrityError:
        with read_scope(session.get_bind()) as fresh:
            return list(fresh.exec(select(StageStat)).all())


def stuck_thresholds(session: Session) -> dict[int, float]:
    """Per stage: the 75th percentile of days that won deals spent in it. A deal longer than that is stuck."""
    return {s.stage_id: s.p75_days for s in stage_stats(session) if s.outcome == DealStatus.WON}
