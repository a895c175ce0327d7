"""Teams and users: one admin, a manager and reps per team, two marketers; four of them are the demo logins."""
from dataclasses import dataclass

import numpy as np

from crm.demo.arrays import draw, occurrence_rank, pick_member
from crm.demo.context import DAY, Ctx
from crm.demo.pools import LOCALE_REGION, LOCALE_WEIGHTS, LOCALES, REGIONS, LocalePool
from crm.demo.writer import Frame, stamp
from crm.models import Role

DEMO_PASSWORD = "demo-password-2026"
DEMO_LOGINS: dict[str, str] = {
    "admin": "admin@demo.example", "manager": "manager@demo.example",
    "rep": "rep@demo.example", "marketer": "marketer@demo.example",
}
STAFF_DOMAIN = "demo.example"


@dataclass
class Staff:
    """Who sells where. A rep's skill is latent: it shapes win rates and is never stored."""
    team_region: np.ndarray  # region index per team (team id = index + 1)
    rep_ids: np.ndarray
    rep_team: np.ndarray  # team index per rep
    skill_of_user: np.ndarray  # indexed by user id; 0 for non-reps
    team_of_user: np.ndarray  # team index by user id; -1 for no team
    demo_rep: int
    teams: Frame
    users: Frame

    def rep_in_region(self, rng: np.random.Generator, regions: np.ndarray) -> np.ndarray:
        """A random rep id from a team covering each given region."""
        return self.rep_ids[pick_member(rng, self.team_region[self.rep_team], regions)]

    def teammate(self, rng: np.random.Generator, user_ids: np.ndarray) -> np.ndarray:
        """A random rep id from the same team as each given rep."""
        return self.rep_ids[pick_member(rng, self.rep_team, self.team_of_user[user_ids])]


def _team_names(count: int) -> list[str]:
    if count <= len(REGIONS):
        return list(REGIONS[:count])
    return [f"{REGIONS[i % len(REGIONS)]} {i // len(REGIONS) + 1}" for i in range(count)]


def _roster(ctx: Ctx) -> tuple[list[str], list[int]]:
    """Role and team index of every user in id order: admin, then each team's manager and reps, then marketers."""
    roles, teams = [Role.ADMIN.value], [-1]
    for team in range(ctx.size.teams):
        roles += [Role.MANAGER.value] + [Role.REP.value] * ctx.size.reps_per_team
        teams += [team] * (ctx.size.reps_per_team + 1)
    return roles + [Role.MARKETER.value] * 2, teams + [-1, -1]


def _staff_names(ctx: Ctx, pools: list[LocalePool], regions: np.ndarray) -> tuple[list[str], list[str]]:
    """Full names in each user's team region, and ASCII email local parts."""
    names, handles = [], []
    for region in regions.tolist():
        candidates = [i for i, loc in enumerate(LOCALES) if LOCALE_REGION[i] == region]
        locale = candidates[int(draw(ctx.rng, LOCALE_WEIGHTS[candidates], 1)[0])]
        pool = pools[locale]
        f, la = int(ctx.rng.integers(len(pool.first))), int(ctx.rng.integers(len(pool.last)))
        eastern = LOCALES[locale].code in ("zh_CN", "ja_JP")  # family name first, no space
        names.append(f"{pool.last[la]}{pool.first[f]}" if eastern else f"{pool.first[f]} {pool.last[la]}")
        handles.append(f"{pool.first_ascii[f]}.{pool.last_ascii[la]}")
    return names, handles


def _emails(roles: list[str], handles: list[str]) -> list[str]:
    """first.last@demo.example (numbered when repeated); the four demo logins get their fixed addresses."""
    rank = occurrence_rank(np.array(handles, dtype=object))
    emails = [f"{h}{'' if r == 0 else r + 1}@{STAFF_DOMAIN}" for h, r in zip(handles, rank.tolist())]
    demo = {"admin": roles.index(Role.ADMIN.value), "manager": roles.index(Role.MANAGER.value),
            "rep": roles.index(Role.REP.value), "marketer": roles.index(Role.MARKETER.value)}
    for role, at in demo.items():  # team 1's manager and first rep, since roster order puts team 1 first
        emails[at] = DEMO_LOGINS[role]
    return emails


def build_staff(ctx: Ctx, pools: list[LocalePool], password_hash: str) -> Staff:
    """Teams and users; only the four demo logins can sign in."""
    roles, teams = _roster(ctx)
    team_region = np.arange(ctx.size.teams) % len(REGIONS)
    team_idx = np.array(teams)
    user_region = np.where(team_idx >= 0, team_region[np.maximum(team_idx, 0)], 0)
    names, handles = _staff_names(ctx, pools, user_region)
    emails = _emails(roles, handles)
    n = len(roles)
    users = stamp({
        "id": np.arange(1, n + 1), "email": emails, "full_name": names, "role": roles,
        "team_id": np.ma.masked_array(team_idx + 1, mask=team_idx < 0), "active": True,
        "password_hash": [password_hash if e in DEMO_LOGINS.values() else None for e in emails], "failed_logins": 0,
    }, np.full(n, ctx.start - 45 * DAY))
    team_frame = stamp({"id": np.arange(1, ctx.size.teams + 1), "name": _team_names(ctx.size.teams)},
                       np.full(ctx.size.teams, ctx.start - 60 * DAY))
    return _staff(ctx, roles, team_idx, team_region, emails, users, team_frame)


def _staff(ctx: Ctx, roles: list[str], team_idx: np.ndarray, team_region: np.ndarray, emails: list[str],
           users: Frame, teams: Frame) -> Staff:
    rep_ids = np.flatnonzero(np.array(roles) == Role.REP.value) + 1
    skill_of_user = np.zeros(len(roles) + 1)
    skill_of_user[rep_ids] = ctx.rng.normal(0.0, 0.45, len(rep_ids))
    return Staff(team_region=team_region, rep_ids=rep_ids, rep_team=team_idx[rep_ids - 1],
                 skill_of_user=skill_of_user, team_of_user=np.r_[-1, team_idx],
                 demo_rep=emails.index(DEMO_LOGINS["rep"]) + 1, teams=teams, users=users)
