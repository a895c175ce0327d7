"""What every KPI shares: the filter it is computed for, and the shape of its result.

A metric is one function `(session, actor, KpiFilter) -> Metric`, computed in SQL, registered in
`crm.kpis.METRICS` under its key. Its docstring and docs/kpis.md give the definition, the formula and the edge
cases; `records(...)` returns the rows behind the number (the drill-down). A ratio with a zero denominator is
`value=None`, which pages show as "—", never as 0 %.
"""
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel import Session

from crm.forecast.periods import add_months
from crm.forecast.scope import Scope, resolve_scope
from crm.kpis import cube
from crm.permissions import Actor, readable_owner_ids


@dataclass(frozen=True)
class KpiFilter:
    """The period is [start, end] in whole days (UTC), both inclusive. Hashable, so pages can cache on it.
    pipeline, team and owner narrow deal-based metrics; segment (a saved contact segment's id) narrows the
    customer-based ones to its members."""
    start: date
    end: date
    pipeline_id: int | None = None
    team_id: int | None = None
    owner_id: int | None = None
    segment_id: int | None = None

    @property
    def since(self) -> datetime:
        """The period's first moment."""
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def until(self) -> datetime:
        """The first moment after the period (exclusive bound)."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)

    def previous(self) -> "KpiFilter":
        """The period just before, what "change" compares with: the previous calendar month or quarter (as many
        whole months) when the period is whole months, else as many days."""
        months = _whole_months(self.start, self.end)
        if months:
            start = add_months(self.start, -months)
            return replace(self, start=start, end=self.start - timedelta(days=1))
        days = (self.end - self.start).days + 1
        return replace(self, start=self.start - timedelta(days=days), end=self.start - timedelta(days=1))


def _whole_months(start: date, end: date) -> int:
    """How many calendar months [start, end] spans exactly, or 0 if it does not start and end on month edges."""
    after = end + timedelta(days=1)
    if start.day != 1 or after.day != 1:
        return 0
    return (after.year * 12 + after.month) - (start.year * 12 + start.month)


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    value: float | None  # None: not defined for this period (a zero denominator, no data)
    unit: str  # "ratio" (0..1, shown as %), "money", "days", "hours", "count", "score"
    numerator: float | None = None  # the parts of a ratio, for the drill-down's "n of m"
    denominator: float | None = None
    detail: dict = field(default_factory=dict)  # e.g. per channel, per stage; plain JSON-able values


def month_span(flt: KpiFilter) -> int:
    """How many whole calendar months the period is (0 if it does not start and end on month edges)."""
    return _whole_months(flt.start, flt.end)


def cube_owners(session: Session, actor: Actor, flt: KpiFilter) -> tuple[bool, set[int] | None]:
    """Whether the KPI cube (crm/kpis/cube.py) can answer for this filter, and the contact owners to sum it over
    (None: everyone). It cannot for a segment (members are not in the cube), or before the cube is built."""
    if flt.segment_id is not None or not cube.enabled(session):
        return False, None
    return True, readable_owner_ids(session, actor, "contacts")


def ratio(numerator: float, denominator: float) -> float | None:
    """A share, or None when the denominator is zero (shown as "—", never 0 %)."""
    return numerator / denominator if denominator else None


def deal_scope(session: Session, actor: Actor, flt: KpiFilter) -> Scope:
    """The deal owners the metric may count, refused beyond what the actor may read (the forecast's rule)."""
    return resolve_scope(session, actor, pipeline_id=flt.pipeline_id, team_id=flt.team_id, owner_id=flt.owner_id)
