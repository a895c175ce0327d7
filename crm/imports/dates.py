"""Dates in the formats spreadsheets write: ISO, D/M/Y, M/D/Y and month names; the order is chosen or detected per file.

A file whose dates are all ambiguous (01/02/2024 could be either) keeps them ambiguous: such a cell is rejected
with a reason asking for the order, never guessed. Times without a zone are read as UTC.
"""
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum


class DateOrder(StrEnum):
    AUTO = "auto"  # detect per file
    ISO = "ymd"  # 2024-03-05; also the only order accepted when nothing else is detected
    DMY = "dmy"  # 05/03/2024
    MDY = "mdy"  # 03/05/2024


class DateError(ValueError):
    """Why a cell is not a date, in words for the error file."""


_MONTHS = {m: i for i, names in enumerate((
    ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",), ("jun", "june"),
    ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
    ("dec", "december")), start=1) for m in names}
_TIME = r"(?:[ T](?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d{1,6}))?)?\s*(?P<ampm>[ap]\.?m\.?)?" \
        r"\s*(?P<tz>Z|UTC|[+-]\d{2}:?\d{2})?)?"
_YMD = re.compile(r"^(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})" + _TIME + "$", re.IGNORECASE)
_COMPACT = re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$")
_NUMERIC = re.compile(r"^(?P<a>\d{1,2})(?P<sep>[-/.])(?P<b>\d{1,2})(?P=sep)(?P<y>\d{4}|\d{2})" + _TIME + "$",
                      re.IGNORECASE)
_DAY_MONTH = re.compile(r"^(?P<d>\d{1,2})(?:st|nd|rd|th)?[ \-/.]+(?P<mon>[a-z]+)\.?,?[ \-/.]+(?P<y>\d{4}|\d{2})"
                        + _TIME + "$", re.IGNORECASE)
_MONTH_DAY = re.compile(r"^(?P<mon>[a-z]+)\.?[ \-/.]+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?[ \-/.]+(?P<y>\d{4})"
                        + _TIME + "$", re.IGNORECASE)


def _year(text: str) -> int:
    """Two-digit years follow POSIX strptime: 69-99 are 1969-1999, 00-68 are 2000-2068."""
    y = int(text)
    if len(text) == 2:
        return 1900 + y if y >= 69 else 2000 + y
    return y


def _order_evidence(value: str) -> DateOrder | None:
    """What one cell says about the file's order: DMY or MDY when a part is above 12, ISO for ISO cells."""
    text = value.strip()
    if _YMD.match(text) or _COMPACT.match(text):
        return DateOrder.ISO
    m = _NUMERIC.match(text)
    if not m:
        return None
    a, b = int(m["a"]), int(m["b"])
    if a > 12 >= b:
        return DateOrder.DMY
    if b > 12 >= a:
        return DateOrder.MDY
    return None


def detect_date_order(values: Iterable[str]) -> DateOrder | None:
    """DMY or MDY if the file's numeric dates show it (some part above 12) and do not contradict each other;
    ISO when only ISO dates were seen; None when numeric dates are all ambiguous or contradictory."""
    seen = {_order_evidence(v) for v in values if v and v.strip()}
    numeric = seen & {DateOrder.DMY, DateOrder.MDY}
    if len(numeric) == 1:
        return numeric.pop()
    if not numeric and seen <= {DateOrder.ISO}:
        return DateOrder.ISO
    return None


def combine_orders(orders: Iterable[DateOrder | None]) -> DateOrder | None:
    """The order of a file from the orders detected in its date columns (as detect_date_order decides)."""
    orders = list(orders)
    if any(o is None for o in orders):
        return None
    numeric = set(orders) - {DateOrder.ISO}
    return numeric.pop() if len(numeric) == 1 else (DateOrder.ISO if not numeric else None)


def parse_datetime(value: str, order: DateOrder | None) -> datetime:
    """A timezone-aware UTC datetime. `order` None means the file's order is unknown: only unambiguous cells pass."""
    text = value.strip()
    parts = _match(text, order)
    try:
        day = date(parts["y"], parts["m"], parts["d"])
    except ValueError as exc:
        raise DateError(f"{value!r} is not a real date ({exc})") from None
    return _with_time(day, parts["match"], value)


def parse_date(value: str, order: DateOrder | None) -> date:
    return parse_datetime(value, order).date()


def _match(text: str, order: DateOrder | None) -> dict:
    if m := (_YMD.match(text) or _COMPACT.match(text)):
        return {"y": int(m["y"]), "m": int(m["m"]), "d": int(m["d"]), "match": m}
    if m := _NUMERIC.match(text):
        a, b = int(m["a"]), int(m["b"])
        if order in (None, DateOrder.AUTO, DateOrder.ISO) and a <= 12 and b <= 12 and a != b:
            raise DateError(f"{text!r} is ambiguous (day/month or month/day); set the date order (D/M/Y or M/D/Y)")
        dmy = order == DateOrder.DMY or (order not in (DateOrder.MDY,) and a > 12)
        day, month = (a, b) if dmy else (b, a)
        return {"y": _year(m["y"]), "m": month, "d": day, "match": m}
    for pattern in (_DAY_MONTH, _MONTH_DAY):
        if (m := pattern.match(text)) and m["mon"].lower() in _MONTHS:
            return {"y": _year(m["y"]), "m": _MONTHS[m["mon"].lower()], "d": int(m["d"]), "match": m}
    raise DateError(f"{text!r} is not a date (use e.g. 2024-03-05, 05/03/2024, 03/05/2024 or 5 Mar 2024)")


def _with_time(day: date, m: re.Match, original: str) -> datetime:
    groups = m.groupdict()
    if groups.get("h") is None:
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    hour, minute, second = int(m["h"]), int(m["mi"]), int(m["s"] or 0)
    micro = int((m["f"] or "0").ljust(6, "0"))
    if ampm := (m["ampm"] or "").replace(".", "").lower():
        if not 1 <= hour <= 12:
            raise DateError(f"{original!r} has an hour {hour} that does not go with {ampm.upper()}")
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    try:
        moment = datetime(day.year, day.month, day.day, hour, minute, second, micro)
    except ValueError as exc:
        raise DateError(f"{original!r} is not a real time ({exc})") from None
    return moment.replace(tzinfo=_zone(m["tz"])).astimezone(UTC)


def _zone(text: str | None) -> timezone:
    if not text or text.upper() in ("Z", "UTC"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
