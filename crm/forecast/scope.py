"""What a forecast is about: a period, and the deals of the owners and pipeline the reader may see."""
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from sqlalchemy import func
from sqlmodel import Session, select

from crm.errors import PermissionDenied, ValidationFailed
from crm.forecast.periods import PeriodKind, period_bounds
from crm.sqlfuncs import unindexed
from crm.models import Deal, DealStatus, Stage, User
from crm.permissions import Actor, readable_owner_ids

Weighting = Literal["stage", "rep", "model"]
WEIGHTINGS: tuple[str, ...] = ("stage", "rep", "model")


@dataclass(frozen=True)
class ForecastFilter:
    """Hashable, so pages can cache on it. period_start may be any day of the period; it is kept as the first."""
    kind: PeriodKind
    period_start: date
    pipeline_id: int | None = None
    team_id: int | None = None
    owner_id: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "period_start", period_bounds(self.kind, self.period_start)[0])

    @property
    def period_end(self) -> date:
        return period_bounds(self.kind, self.period_start)[1]


@dataclass(frozen=True)
class Scope:
    """The deals a forecast counts. owner_ids None means every owner; team_id is set when the scope is one team."""
    owner_ids: tuple[int, ...] | None
    team_id: int | None = None
    pipeline_id: int | None = None


def resolve_scope(session: Session, actor: Actor, *, pipeline_id: int | None = None, team_id: int | None = None,
                  owner_id: int | None = None) -> Scope:
    """The filter's owners, refused when they reach beyond the deals the actor may read."""
    readable = readable_owner_ids(session, actor, "deals")
    if owner_id is not None:
        _require_readable(readable, [owner_id], "this rep's forecast")
        return Scope((owner_id,), None, pipeline_id)
    if team_id is not None:
        members = list(session.exec(select(User.id).where(User.team_id == team_id).order_by(User.id)).all())
        _require_readable(readable, members, "this team's forecast")
        return Scope(tuple(members), team_id, pipeline_id)
    if readable is None:
        return Scope(None, None, pipeline_id)
    team = actor.team_id if actor.can("deals.read_team") else None
    return Scope(tuple(sorted(readable)), team, pipeline_id)


def _require_readable(readable: list[int] | None, owners: list[int], what: str) -> None:
    if readable is not None and not set(owners) <= set(readable):
        raise PermissionDenied(f"You may not see {what}.")


def scope_conditions(scope: Scope) -> list:
    """WHERE conditions on Deal for the scope; live deals only."""
    conditions = [Deal.deleted_at.is_(None)]
    if scope.owner_ids is not None:
        conditions.append(Deal.owner_id.in_(scope.owner_ids))
    if scope.pipeline_id is not None:
        conditions.append(Deal.pipeline_id == scope.pipeline_id)
    return conditions


def won_between(scope: Scope, start: date, end: date) -> list:
    """WHERE conditions for deals won from `start` to `end` inclusive. For everyone, status is unindexed, so that
    SQLite reads those days from ix_deal_closed_at instead of every won deal ever; for a team, the owners' index."""
    status = Deal.status if scope.owner_ids is not None else unindexed(Deal.status)
    return [status == DealStatus.WON, Deal.closed_at >= utc_midnight(start), Deal.closed_at < day_after(end)]


def expected_close(scope: Scope):
    """Deal.expected_close to filter on; for a team or a rep, unindexed, so that SQLite starts from the owners' open
    deals (ix_deal_owner_status) instead of every team's deals expected in the period."""
    return Deal.expected_close if scope.owner_ids is None else unindexed(Deal.expected_close)


def check_weighting(weighting: str) -> None:
    if weighting not in WEIGHTINGS:
        raise ValidationFailed("weighting", f"choose {', '.join(WEIGHTINGS)}, not {weighting!r}")


def weight(weighting: Weighting):
    """A deal's win probability under a weighting method; the rep's or model's, else the stage's (join Stage)."""
    check_weighting(weighting)
    override = {"stage": None, "rep": Deal.rep_probability, "model": Deal.model_probability}[weighting]
    return Stage.probability if override is None else func.coalesce(override, Stage.probability)


def utc_midnight(day: date) -> datetime:
    """Periods are whole UTC days: a deal closed at 23:30 UTC on the 31st counts in that month."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def day_after(day: date) -> datetime:
    return utc_midnight(day + timedelta(days=1))
