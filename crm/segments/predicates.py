"""SQL building blocks of segment conditions: comparisons on a column, membership in a subquery, aggregates.

Every function returns a SQLAlchemy expression with the values bound as parameters. Negative operators are the
negation of the positive one *including records without a value* ("is not Retail" keeps the ones with no industry),
so each is written as NOT of the positive test, with NULLs counted as not matching it.
"""
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, not_, or_, true

NEGATIVE = {"not_equals": "equals", "not_in": "in", "is_empty": "is_not_empty", "has_none": "has_any"}


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def negate(positive: ColumnElement) -> ColumnElement:
    """NOT positive, where a NULL (unknown) outcome of `positive` counts as not matching it, so its negation holds."""
    return not_(func.coalesce(positive, false()))


def compare(column, op: str, value: Any = None, upper: Any = None, *, text: bool = False,
            by_day: bool = False) -> ColumnElement:
    """`column` against a checked value. Text compares case-insensitively; `by_day` compares a timestamp column
    with whole days (before = earlier than that day, after = later than it, between = from the first day through
    the last)."""
    if op in NEGATIVE:
        return negate(compare(column, NEGATIVE[op], value, upper, text=text, by_day=by_day))
    lowered = func.lower(column) if text else column
    if op == "equals":
        return lowered == (value.lower() if text else value)
    if op == "in":
        return lowered.in_([v.lower() for v in value] if text else list(value))
    if op == "contains":
        return func.lower(column).contains(value.lower(), autoescape=True)
    if op == "starts_with":
        return func.lower(column).startswith(value.lower(), autoescape=True)
    if op == "is_not_empty":
        return and_(column.is_not(None), column != "") if text else column.is_not(None)
    if op == "is":
        return column.is_(true()) if value else or_(column.is_(None), column.is_(false()))
    if op in ("before", "after", "between") and by_day:
        start = day_start(value)
        if op == "before":
            return column < start
        if op == "after":
            return column >= start + timedelta(days=1)
        return and_(column >= start, column < day_start(upper) + timedelta(days=1))
    if op in ("lt", "before"):
        return column < value
    if op == "lte":
        return column <= value
    if op in ("gt", "after"):
        return column > value
    if op == "gte":
        return column >= value
    if op == "between":
        return and_(column >= value, column <= upper)
    raise AssertionError(f"operator {op} reached the compiler unchecked")  # the catalogue checks operators first


def relative(column, op: str, days: int, now: datetime, *, dates: bool = False) -> ColumnElement:
    """in_last / in_next / more_than_days_ago, counted from `now` (from today for a date column)."""
    anchor: date | datetime = now.date() if dates else now
    span = timedelta(days=days)
    if op == "in_last":
        return and_(column >= anchor - span, column <= anchor)
    if op == "in_next":
        return and_(column >= anchor, column <= anchor + span)
    return column < anchor - span  # more_than_days_ago


def holds_at_zero(op: str, value: float | None, upper: float | None) -> bool:
    """Whether a count or total of 0 passes the test: records with no rows at all must then match too."""
    return {"equals": lambda: value == 0, "lt": lambda: 0 < value, "lte": lambda: 0 <= value,
            "gt": lambda: 0 > value, "gte": lambda: 0 >= value,
            "between": lambda: value <= 0 <= upper}[op]()


def member(key, keys_query, *, negative: bool = False) -> ColumnElement:
    """`key` is (not) among the keys the subquery selects; a NULL key is never a member."""
    if negative:
        return or_(key.is_(None), key.not_in(keys_query))
    return key.in_(keys_query)


def aggregate(key, grouped, amount, op: str, value: float, upper: float | None) -> ColumnElement:
    """A per-record count or total compared with a number, records with no rows counting as 0. `grouped` selects
    the source's key grouped by it; the test runs in HAVING, and when 0 passes it, the records whose total fails it
    are excluded instead (so records without rows are kept without reading them)."""
    test = compare(amount, op, value, upper)
    if holds_at_zero(op, value, upper):
        return member(key, grouped.having(negate(test)), negative=True)
    return member(key, grouped.having(test))
