"""The quota that applies to a forecast's scope and period.

A quota row counts in proportion to the days it shares with the period, so monthly quotas add up to a quarter
and a quarterly quota gives a month its share. A team's own quota replaces the sum of its members' quotas.
"""
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlmodel import Session, select

from crm.forecast.scope import Scope
from crm.models import Quota, User


@dataclass(frozen=True)
class ScopeQuota:
    total: float | None  # None when no quota row applies
    by_user: dict[int, float]  # the users' own quotas, for the per-rep table


def scope_quota(session: Session, scope: Scope, start: date, end: date) -> ScopeQuota:
    """Quota for the scope: a user's own; a team's row, else its members'; for everyone, per team the same rule."""
    users, teams, team_of = _quota_shares(session, start, end)
    if scope.owner_ids is not None:
        users = {u: amount for u, amount in users.items() if u in set(scope.owner_ids)}
    if scope.team_id is not None and scope.team_id in teams:
        return ScopeQuota(teams[scope.team_id], users)
    if scope.owner_ids is not None:
        return ScopeQuota(sum(users.values()) if users else None, users)
    not_covered = [amount for u, amount in users.items() if team_of.get(u) not in teams]
    total = sum(teams.values()) + sum(not_covered)
    return ScopeQuota(total if users or teams else None, users)


def _quota_shares(session: Session, start: date, end: date) -> tuple[dict[int, float], dict[int, float], dict]:
    """Each user's and each team's quota share of [start, end], and the team of every user with a quota."""
    rows = session.exec(select(Quota.user_id, Quota.team_id, User.team_id, Quota.period_start, Quota.period_end,
                               Quota.amount)
                        .join(User, User.id == Quota.user_id, isouter=True)
                        .where(Quota.period_end >= start, Quota.period_start <= end)).all()
    users: dict[int, float] = defaultdict(float)
    teams: dict[int, float] = defaultdict(float)
    team_of = {}
    for user_id, team_id, users_team, q_start, q_end, amount in rows:
        shared = (min(end, q_end) - max(start, q_start)).days + 1
        share = amount * shared / ((q_end - q_start).days + 1)
        if user_id is not None:
            users[user_id] += share
            team_of[user_id] = users_team
        else:
            teams[team_id] += share
    return dict(users), dict(teams), team_of
