"""RFM (recency, frequency, monetary) scores and named customer groups, as of a time.

Only completed, non-deleted orders dated on or before `as_of` count; aggregate queries read them per customer.
Recency is whole days since the last such order, frequency their number, monetary the sum of their totals (rounded
to cents, so equal totals tie whatever order a database adds them in).

Each dimension is scored 1–5 by where a customer stands among everyone scored with them (higher is better, so
recency is ranked fewest days first). With `below` customers strictly worse, `tied` customers equal (itself
included) and `n` in all, the mid-rank percentile is p = (below + tied / 2) / n and the score is floor(5 p) + 1:
- equal values always share a score, and a tie that straddles a quintile boundary takes the higher score (p lies
  exactly on the boundary k/5, which belongs to the quintile above);
- n distinct values that are a multiple of 5 split into exact fifths;
- a lone customer, or everyone tied, scores 3 (the middle), and 2 or 3 customers spread as 2 4 and 1 3 5.
Groups come from R and F alone (`GROUP_GRID`, the common R/F segment map); M is shown beside them.
"""
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import and_, case, func, select
from sqlmodel import Session

from crm.clock import as_utc, utcnow
from crm.errors import ValidationFailed
from crm.sqlfuncs import epoch
from crm.models import Company, Contact, Order
from crm.permissions import Actor, readable_owner_ids, require
from crm.sqlfuncs import unindexed
from crm.targets import TargetList, save_static_segment

LEVELS = ("contact", "company")
COMPLETED = "completed"
NOT_SCORED = "not scored"
MICROS_PER_DAY = 86_400 * 1_000_000

# Row R (1..5), column F (1..5). Adapted from the widely used R/F map, whose bottom-left block is "hibernating":
# here R1 of it is "lost" (the longest gone) and R2 stays "hibernating".
GROUP_GRID = (
    ("lost", "lost", "at risk", "at risk", "can't lose them"),  # R1
    ("hibernating", "hibernating", "at risk", "at risk", "can't lose them"),  # R2
    ("about to sleep", "about to sleep", "need attention", "loyal customers", "loyal customers"),  # R3
    ("promising", "potential loyalists", "potential loyalists", "loyal customers", "loyal customers"),  # R4
    ("new customers", "potential loyalists", "potential loyalists", "champions", "champions"),  # R5
)
GROUPS = ("champions", "loyal customers", "potential loyalists", "new customers", "promising", "need attention",
          "about to sleep", "at risk", "can't lose them", "hibernating", "lost")


@dataclass(frozen=True)
class RFMResult:
    """scores: id, recency_days, frequency, monetary, r, f, m, group (one row per scored customer, by id).
    summary: group, count, share, mean_recency_days, mean_frequency, mean_monetary; every group in GROUPS order,
    then NOT_SCORED (customers with completed orders but none dated by `as_of`). Shares are of all these customers."""
    level: str
    as_of: datetime
    scores: pd.DataFrame
    summary: pd.DataFrame
    unscored: int


def quintile_scores(values) -> np.ndarray:
    """1–5 by mid-rank percentile (see the module docstring); higher values score higher."""
    values = np.asarray(values)
    ordered = np.sort(values)
    below = np.searchsorted(ordered, values, side="left")
    tied = np.searchsorted(ordered, values, side="right") - below
    # floor(5 * (below + tied / 2) / n) in integers, so boundaries are exact.
    return (5 * (2 * below + tied)) // max(2 * len(values), 1) + 1


def rfm_groups(r, f) -> np.ndarray:
    """The group name of each (R, F) pair of scores."""
    grid = np.array(GROUP_GRID, dtype=object)
    return grid[np.asarray(r, dtype=int) - 1, np.asarray(f, dtype=int) - 1]


def compute_rfm(*, session: Session, actor: Actor, level: str = "contact", now: datetime | None = None) -> RFMResult:
    """RFM of the customers (contacts, or companies) the actor may read, as of `now` (default: the current time)."""
    if level not in LEVELS:
        raise ValidationFailed("level", f"unknown level {level!r}; use contact or company")
    as_of = as_utc(now) if now is not None else utcnow()
    totals = _customer_totals(session, actor, level, as_of)
    dated = totals[totals["frequency"] > 0]
    scores = _scores(dated, as_of)
    unscored = len(totals) - len(dated)
    return RFMResult(level=level, as_of=as_of, scores=scores, summary=_summary(scores, unscored), unscored=unscored)


def save_rfm_group(*, session: Session, actor: Actor, result: RFMResult, group: str, name: str,
                   description: str | None = None) -> TargetList:
    """A static segment of the contacts in one group of `result` (the ones the actor may read). Needs
    segments.manage; the definition records the group and the time the scores are as of."""
    require(actor, "segments.manage", "create segments")
    if result.level != "contact":
        raise ValidationFailed("level", "only contact groups can be saved: a segment holds contacts")
    if group not in GROUPS:
        raise ValidationFailed("group", f"unknown RFM group {group!r}")
    ids = result.scores.loc[result.scores["group"] == group, "id"].astype(int).tolist()
    if not ids:
        raise ValidationFailed("group", f"no customer is in {group!r} as of {result.as_of:%Y-%m-%d %H:%M}")
    definition = {"analytic": "rfm", "group": group, "as_of": result.as_of.isoformat()}
    return save_static_segment(session=session, actor=actor, name=name, contact_ids=ids, definition=definition,
                               description=description)


def order_totals(conn, as_of: datetime, level: str) -> pd.DataFrame:
    """id, last (epoch seconds of the last dated order, NaN if none), frequency, monetary: one row per customer
    (by id) with a completed, non-deleted order, whether or not the actor may read it. Dated by `as_of` only;
    customers whose orders are all undated (or later) come back with frequency 0."""
    o, c = Order.__table__.c, Contact.__table__.c
    if level == "contact":
        parts = [_aggregate(conn, as_of, o.contact_id)]
    else:  # an order counts for its own company, else for its contact's (as in cross-sell)
        parts = [_aggregate(conn, as_of, o.company_id),
                 _aggregate(conn, as_of, c.company_id, o.company_id.is_(None),
                            source=Order.__table__.join(Contact.__table__, c.id == o.contact_id))]
    totals = pd.concat(parts).groupby("id", as_index=False).agg(
        last=("last", "max"), frequency=("frequency", "sum"), monetary=("monetary", "sum"))
    return totals.astype({"id": "int64", "last": "float64", "frequency": "int64", "monetary": "float64"})


def _aggregate(conn, as_of: datetime, column, *conditions, source=Order.__table__) -> pd.DataFrame:
    o = Order.__table__.c
    # Unindexed: one pass over the orders is several times faster on SQLite than walking the customer index and
    # jumping to each order's row.
    key = unindexed(column)
    dated = and_(o.ordered_at.is_not(None), o.ordered_at <= as_of)
    stmt = (select(key, epoch(func.max(case((dated, o.ordered_at)))), func.sum(case((dated, 1), else_=0)),
                   func.sum(case((dated, o.total), else_=0.0)))
            .select_from(source).where(o.deleted_at.is_(None), o.status == COMPLETED, key.is_not(None), *conditions)
            .group_by(key))
    return pd.DataFrame([tuple(r) for r in conn.execute(stmt)], columns=["id", "last", "frequency", "monetary"])


def _customer_totals(session: Session, actor: Actor, level: str, as_of: datetime) -> pd.DataFrame:
    """order_totals of the live customers the actor may read (companies by their owner, like contacts)."""
    model = Contact if level == "contact" else Company
    stmt = select(model.id).where(model.deleted_at.is_(None))
    readable = readable_owner_ids(session, actor, "contacts")
    if readable is not None:
        stmt = stmt.where(model.owner_id.in_(readable))
    conn = session.connection()
    ids = np.fromiter(conn.execute(stmt).scalars(), dtype=np.int64)
    totals = order_totals(conn, as_of, level)
    return totals[totals["id"].isin(ids)]


def _scores(dated: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    # Whole microseconds make "exactly 30 days before" 30, where float seconds could land a hair short.
    last = np.round(dated["last"].to_numpy() * 1e6).astype("int64")
    now = round(as_of.timestamp() * 1e6)
    out = pd.DataFrame({"id": dated["id"].to_numpy(), "recency_days": (now - last) // MICROS_PER_DAY,
                        "frequency": dated["frequency"].to_numpy(),
                        "monetary": dated["monetary"].round(2).to_numpy()})
    out["r"] = quintile_scores(-out["recency_days"].to_numpy())
    out["f"] = quintile_scores(out["frequency"].to_numpy())
    out["m"] = quintile_scores(out["monetary"].to_numpy())
    out["group"] = rfm_groups(out["r"], out["f"])
    return out.sort_values("id", ignore_index=True)


def _summary(scores: pd.DataFrame, unscored: int) -> pd.DataFrame:
    means = scores.groupby("group")[["recency_days", "frequency", "monetary"]].mean().add_prefix("mean_")
    counts = scores["group"].value_counts()
    summary = pd.DataFrame({"group": [*GROUPS, NOT_SCORED]})
    summary["count"] = summary["group"].map(counts).fillna(0).astype(int)
    summary.loc[summary["group"] == NOT_SCORED, "count"] = unscored
    total = summary["count"].sum()
    summary["share"] = summary["count"] / total if total else 0.0
    return summary.join(means, on="group")
