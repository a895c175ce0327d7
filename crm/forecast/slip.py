"""How long deals take to close after entering each stage, learned from stage history.

For every entry of a won deal into an open stage, the whole days from that entry to the deal's close: the
close-timing (slip) distribution of the stage.
"""
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import func
from sqlmodel import Session, select

from crm.sqlfuncs import unindexed, whole_days
from crm.models import Deal, DealStageHistory, DealStatus, Stage

MIN_EXAMPLES = 20  # fewer examples than this and a stage's close timing (or conversion) is not trusted
LOOKBACK = timedelta(days=365)
SAMPLE_DEALS = 5_000  # the most recent won deals learned from


@dataclass(frozen=True)
class StageTiming:
    """Per stage id: won[d] = entries into the stage whose deal was won d whole days later."""
    won: dict[int, np.ndarray]

    def examples(self, stage_id: int) -> int:
        return int(self.won[stage_id].sum()) if stage_id in self.won else 0

    def learned(self, stage_id: int) -> bool:
        return self.examples(stage_id) >= MIN_EXAMPLES

    def p_closed_within(self, stage_id: int, elapsed: np.ndarray, days: np.ndarray) -> np.ndarray:
        """P(r <= days | r >= elapsed), r being the days from entering the stage to a won close.

        A deal already in the stage longer than every example is taken to close from now on (probability 1).
        """
        cum = np.r_[0, np.cumsum(self.won[stage_id])]  # cum[k] = examples that took fewer than k days
        left = cum[-1] - _below(cum, elapsed)
        done = _below(cum, np.asarray(days) + 1) - _below(cum, elapsed)
        p = np.where(left > 0, done / np.maximum(left, 1), 1.0)
        return np.where(np.asarray(days) >= elapsed, p, 0.0)


def _below(cum: np.ndarray, k) -> np.ndarray:
    return cum[np.clip(k, 0, len(cum) - 1)]


def learn_timing(session: Session, *, until: datetime, stage_ids: list[int]) -> StageTiming:
    """From the latest deals won in the year before `until`, so a forecast as of a past day never sees its future.

    At most SAMPLE_DEALS deals are read (the most recent), so the cost stays flat however large the history.
    """
    pipelines = select(Stage.pipeline_id).where(Stage.id.in_(stage_ids))
    # With status and pipeline unindexed, SQLite walks ix_deal_closed_at back from `until` and stops at the limit,
    # instead of reading every won deal and sorting them.
    recent = (select(Deal.id, Deal.closed_at)
              .where(unindexed(Deal.status) == DealStatus.WON, unindexed(Deal.pipeline_id).in_(pipelines),
                     Deal.deleted_at.is_(None), Deal.closed_at >= until - LOOKBACK, Deal.closed_at < until)
              .order_by(Deal.closed_at.desc(), Deal.id.desc()).limit(SAMPLE_DEALS).subquery())
    days = whole_days(recent.c.closed_at, DealStageHistory.entered_at).label("days")
    rows = session.exec(
        select(DealStageHistory.stage_id, days, func.count())
        .join(recent, recent.c.id == DealStageHistory.deal_id)
        .where(unindexed(DealStageHistory.stage_id).in_(stage_ids))  # by deal, not through ix on stage_id
        .group_by(DealStageHistory.stage_id, "days")).all()
    frame = pd.DataFrame(rows, columns=["stage_id", "days", "entries"])
    frame["days"] = frame["days"].clip(lower=0)  # a close stamped before the entry is bad data: same day
    return StageTiming({int(stage_id): np.bincount(group["days"].astype(int), weights=group["entries"]).astype(int)
                        for stage_id, group in frame.groupby("stage_id")})
