"""Quotas: revenue targets per user or team and period. Admin use cases; every change is versioned and audited."""
import math
from calendar import monthrange
from datetime import MAXYEAR, MINYEAR, date
from typing import Literal

from sqlalchemy import func
from sqlmodel import Session, SQLModel, select

from crm.audit import apply_changes, audit, check_version, created_fields, load_for_update
from crm.errors import ValidationFailed
from crm.models import Quota, Team, User
from crm.permissions import Actor, require

PeriodKind = Literal["month", "quarter"]
PERIOD_KINDS: tuple[str, ...] = ("month", "quarter")
# What a deleted quota's audit rows keep, so the log still says what was removed.
_KEPT_ON_DELETE = ("user_id", "team_id", "period_start", "period_end", "amount")


class QuotaView(SQLModel):
    id: int
    user_id: int | None
    team_id: int | None
    owner_kind: Literal["user", "team"]
    owner_name: str
    period_start: date
    period_end: date
    amount: float
    version: int


class QuotaYear(SQLModel):
    """What set_quotas_for_year did: rows created, rows whose amount it replaced, rows it left alone."""
    created: int = 0
    updated: int = 0
    skipped: int = 0
    quotas: list[QuotaView] = []


def _view(quota: Quota, owner_name: str) -> QuotaView:
    return QuotaView(id=quota.id, user_id=quota.user_id, team_id=quota.team_id,
                     owner_kind="user" if quota.user_id is not None else "team", owner_name=owner_name,
                     period_start=quota.period_start, period_end=quota.period_end, amount=quota.amount,
                     version=quota.version)


def list_quotas(*, session: Session, period_from: date | None = None, period_to: date | None = None,
                user_id: int | None = None, team_id: int | None = None) -> list[QuotaView]:
    """Quotas whose period overlaps [period_from, period_to] (either end open), by owner name, then period."""
    owner_name = func.coalesce(User.full_name, Team.name)
    stmt = (select(Quota, User.full_name, Team.name)
            .join(User, User.id == Quota.user_id, isouter=True)
            .join(Team, Team.id == Quota.team_id, isouter=True)
            .order_by(owner_name, Quota.period_start, Quota.period_end, Quota.id))
    if period_from is not None:
        stmt = stmt.where(Quota.period_end >= period_from)
    if period_to is not None:
        stmt = stmt.where(Quota.period_start <= period_to)
    if user_id is not None:
        stmt = stmt.where(Quota.user_id == user_id)
    if team_id is not None:
        stmt = stmt.where(Quota.team_id == team_id)
    return [_view(q, u if q.user_id is not None else t) for q, u, t in session.exec(stmt).all()]


def quota_periods(kind: str, year: int) -> list[tuple[date, date]]:
    """The (first day, last day) of each month or quarter of a calendar year."""
    if kind not in PERIOD_KINDS:
        raise ValidationFailed("kind", f"choose {' or '.join(PERIOD_KINDS)}, not {kind!r}")
    if isinstance(year, bool) or not isinstance(year, int) or not MINYEAR <= year <= MAXYEAR:
        raise ValidationFailed("year", f"{year!r} is not a year")
    step = 1 if kind == "month" else 3
    return [(date(year, m, 1), date(year, m + step - 1, monthrange(year, m + step - 1)[1]))
            for m in range(1, 13, step)]


def _check_amount(amount, *, field: str = "amount") -> float:
    try:
        value = float(amount)
    except (TypeError, ValueError):
        raise ValidationFailed(field, f"{amount!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ValidationFailed(field, "must be zero or more")
    return value


def _check_period(period_start: date | None, period_end: date | None) -> None:
    if period_start is None:
        raise ValidationFailed("period_start", "give the first day of the period")
    if period_end is None:
        raise ValidationFailed("period_end", "give the last day of the period")
    if period_end < period_start:
        raise ValidationFailed("period_end", f"ends ({period_end}) before it starts ({period_start})")


def _lock_owner(session: Session, user_id: int | None, team_id: int | None, *, keep: int | None = None) -> str:
    """Check the owner and lock its row, so quota writes for one owner queue (the unique constraint cannot
    catch duplicates: NULLs differ, and one of user_id/team_id is always NULL). Returns the owner's name.
    `keep` is a user who may stay the owner of an edited quota although they were deactivated since."""
    if (user_id is None) == (team_id is None):
        raise ValidationFailed("owner", "a quota belongs to one user or one team: choose exactly one")
    if user_id is not None:
        user = session.exec(select(User).where(User.id == user_id).with_for_update()).first()
        if user is None:
            raise ValidationFailed("user_id", f"user {user_id} does not exist")
        if not user.active and user.id != keep:
            raise ValidationFailed("user_id", f"{user.full_name} is not active")
        return user.full_name
    team = session.exec(select(Team).where(Team.id == team_id).with_for_update()).first()
    if team is None:
        raise ValidationFailed("team_id", f"team {team_id} does not exist")
    return team.name


def _owned(user_id: int | None, team_id: int | None):
    return Quota.user_id == user_id if user_id is not None else Quota.team_id == team_id


def save_quota(*, session: Session, actor: Actor, user_id: int | None = None, team_id: int | None = None,
               period_start: date, period_end: date, amount: float, quota_id: int | None = None,
               seen_version: int | None = None) -> QuotaView:
    """Create a quota (quota_id None) or edit one; one quota per owner and period."""
    require(actor, "admin.configure", "set quotas")
    amount = _check_amount(amount)
    _check_period(period_start, period_end)
    quota = None
    if quota_id is not None:  # lock order everywhere: the owner, then its quota rows
        quota = session.get(Quota, quota_id)
    keep = quota.user_id if quota is not None else None
    name = _lock_owner(session, user_id, team_id, keep=keep)
    if quota_id is not None:
        quota = load_for_update(session, Quota, quota_id, label="Quota")
        check_version(session, entity="quota", record=quota, seen_version=seen_version)
    # Periods of one owner never overlap: a monthly and a quarterly quota for the same weeks would make
    # attainment ambiguous (and a forecast would count the target twice).
    clash = session.exec(select(Quota).where(_owned(user_id, team_id), Quota.period_start <= period_end,
                                             Quota.period_end >= period_start, Quota.id != (quota_id or 0))).first()
    if clash is not None:
        same = (clash.period_start, clash.period_end) == (period_start, period_end)
        raise ValidationFailed("period_start", f"{name} already has a quota from {clash.period_start} to "
                                               f"{clash.period_end}" + ("" if same else ", which overlaps this one"))
    values = {"user_id": user_id, "team_id": team_id, "period_start": period_start, "period_end": period_end,
              "amount": amount}
    if quota is None:
        quota = Quota(**values)
        session.add(quota)
        session.flush()
        audit(session, actor_id=actor.id, entity="quota", record_id=quota.id, action="create",
              changes=created_fields(quota), record_version=quota.version)
    else:
        diff = apply_changes(quota, values)
        if diff:
            audit(session, actor_id=actor.id, entity="quota", record_id=quota.id, action="update", changes=diff,
                  record_version=quota.version)
    return _view(quota, name)


def delete_quota(*, session: Session, actor: Actor, quota_id: int, seen_version: int) -> None:
    """Remove a quota for good (quotas have no archive); the audit rows keep what it was."""
    require(actor, "admin.configure", "delete quotas")
    quota = load_for_update(session, Quota, quota_id, label="Quota")
    check_version(session, entity="quota", record=quota, seen_version=seen_version)
    kept = {f: (getattr(quota, f), None) for f in _KEPT_ON_DELETE if getattr(quota, f) is not None}
    audit(session, actor_id=actor.id, entity="quota", record_id=quota.id, action="delete", changes=kept,
          record_version=quota.version)
    session.delete(quota)
    session.flush()


def set_quotas_for_year(*, session: Session, actor: Actor, user_id: int | None = None, team_id: int | None = None,
                        kind: PeriodKind, year: int, amount_per_period: float, overwrite: bool = False) -> QuotaYear:
    """One quota per month or quarter of `year` for one owner. Periods that already have a quota keep it,
    unless `overwrite`, which sets their amount too (a deliberate bulk change: no version check per row); periods
    that overlap a quota of another grain are skipped."""
    require(actor, "admin.configure", "set quotas")
    periods = quota_periods(kind, year)
    amount = _check_amount(amount_per_period, field="amount_per_period")
    name = _lock_owner(session, user_id, team_id)
    stored = session.exec(select(Quota).where(_owned(user_id, team_id), Quota.period_start <= periods[-1][1],
                                              Quota.period_end >= periods[0][0]).with_for_update()).all()
    existing = {(q.period_start, q.period_end): q for q in stored}
    result, context = QuotaYear(), f"quota_year:{year}:{kind}"
    for start, end in periods:
        quota = existing.get((start, end))
        if quota is None and any(q.period_start <= end and q.period_end >= start for q in stored):
            result.skipped += 1  # another grain's quota covers part of this period: left as it is
            continue
        if quota is None:
            quota = Quota(user_id=user_id, team_id=team_id, period_start=start, period_end=end, amount=amount)
            session.add(quota)
            session.flush()
            audit(session, actor_id=actor.id, entity="quota", record_id=quota.id, action="create",
                  changes=created_fields(quota), record_version=quota.version, context=context)
            result.created += 1
        elif overwrite and (diff := apply_changes(quota, {"amount": amount})):
            audit(session, actor_id=actor.id, entity="quota", record_id=quota.id, action="update", changes=diff,
                  record_version=quota.version, context=context)
            result.updated += 1
        else:
            result.skipped += 1
        result.quotas.append(_view(quota, name))
    return result
