"""One notion of 'now' for the whole domain: timezone-aware UTC (SQLModel stores it as timestamptz)."""
from datetime import UTC, date, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    return utcnow().date()
