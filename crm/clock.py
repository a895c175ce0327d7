"""One notion of 'now' for the whole domain: timezone-aware UTC (SQLModel stores it as timestamptz)."""
from datetime import UTC, date, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    return utcnow().date()


def as_utc(moment: datetime | None) -> datetime | None:
    """The same instant as an aware UTC datetime. Databases hand back naive UTC; people may type naive local."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
