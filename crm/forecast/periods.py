"""Calendar months and quarters: the periods a forecast is made for."""
from datetime import date, timedelta
from typing import Literal

from crm.errors import ValidationFailed

PeriodKind = Literal["month", "quarter"]
PERIOD_KINDS: tuple[str, ...] = ("month", "quarter")


def period_bounds(kind: PeriodKind, day: date) -> tuple[date, date]:
    """The first and last day (inclusive) of the month or quarter that contains `day`."""
    if kind not in PERIOD_KINDS:
        raise ValidationFailed("kind", f"choose {' or '.join(PERIOD_KINDS)}, not {kind!r}")
    months = 1 if kind == "month" else 3
    first_month = day.month - (day.month - 1) % months
    start = date(day.year, first_month, 1)
    return start, add_months(start, months) - timedelta(days=1)


def previous_periods(kind: PeriodKind, day: date, n: int) -> list[tuple[date, date]]:
    """The n complete periods before the one containing `day`, oldest first."""
    periods = []
    start, _ = period_bounds(kind, day)
    for _ in range(n):
        start, end = period_bounds(kind, start - timedelta(days=1))
        periods.append((start, end))
    return periods[::-1]


def add_months(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
