"""Deals with real structure: engagement, company fit and rep skill raise the odds of winning.

The latent drivers (a deal's interest, a company's fit, a rep's skill) stay in memory; the database only sees
their effects: how many activities and events precede a close, which industries win, which reps win.
"""
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, select

from crm.demo import catalog
from crm.demo.arrays import draw, draw_rows, sigmoid
from crm.demo.context import DAY, Ctx
from crm.demo.directory import Companies, Contacts, reorder
from crm.demo.people import Staff
from crm.errors import CRMError
from crm.models import LostReason, Pipeline, Stage

OPEN, WON, LOST = 0, 1, 2
NEW_BUSINESS, RENEWAL = 0, 1
RENEWAL_SHARE = 0.22
ACTIVITIES_ON_DEALS = 0.6  # share of all activities that belong to a deal


@dataclass(frozen=True)
class PipelineRef:
    id: int
    open_stages: np.ndarray  # stage ids in position order
    probability: np.ndarray  # default probability of each open stage
    won: int
    lost: int


def load_pipelines(conn: Connection) -> tuple[list[PipelineRef], list[tuple[int, str]]]:
    """The first two pipelines (new business, then renewals) and the lost reason ids, read from the database."""
    pipelines = conn.execute(select(Pipeline.id, Pipeline.name).where(Pipeline.deleted_at.is_(None))
                             .order_by(Pipeline.is_default.desc(), Pipeline.position, Pipeline.id)).all()
    if not pipelines:
        raise CRMError("the database has no pipelines; run `python -m crm init` first")
    refs = [_pipeline_ref(conn, pid, name) for pid, name in pipelines[:2]]
    reasons = conn.execute(select(LostReason.id, LostReason.name).where(LostReason.deleted_at.is_(None))
                           .order_by(LostReason.position, LostReason.id)).all()
    return refs, [(r.id, r.name) for r in reasons]


def _pipeline_ref(conn: Connection, pipeline_id: int, name: str) -> PipelineRef:
    stages = conn.execute(select(Stage.id, Stage.probability, Stage.is_won, Stage.is_lost)
                          .where(Stage.pipeline_id == pipeline_id, Stage.deleted_at.is_(None))
                          .order_by(Stage.position, Stage.id)).all()
    open_stages = [s for s in stages if not s.is_won and not s.is_lost]
    won = [s.id for s in stages if s.is_won]
    lost = [s.id for s in stages if s.is_lost]
    if not open_stages or not won or not lost:
        raise CRMError(f"pipeline {name!r} needs open stages, a won stage and a lost stage for demo deals")
    return PipelineRef(pipeline_id, np.array([s.id for s in open_stages]),
                       np.array([s.probability for s in open_stages]), won[0], lost[0])


@dataclass
class Deals:
    pipeline: np.ndarray  # NEW_BUSINESS or RENEWAL
    contact: np.ndarray  # contact index
    company: np.ndarray  # company index
    owner: np.ndarray  # rep user id
    created: np.ndarray
    duration: np.ndarray  # planned length of the sales cycle, seconds
    ended: np.ndarray  # closed_at for closed deals, the anchor for open ones
    status: np.ndarray  # OPEN, WON or LOST
    reached: np.ndarray  # index of the last open stage the deal entered
    activities: np.ndarray  # how many activities the deal gets (its visible engagement)
    events: np.ndarray  # how many behaviour events its contact produces meanwhile
    product: np.ndarray  # main product
    seats: np.ndarray


def _tier(rng: np.random.Generator, employees: np.ndarray) -> np.ndarray:
    """Starter for small companies, Professional for mid-sized, Enterprise for large; one tier of noise."""
    tier = np.digitize(employees, [50, 1000]) + rng.choice([-1, 0, 0, 0, 1], len(employees))
    return np.array([catalog.STARTER, catalog.PROFESSIONAL, catalog.ENTERPRISE])[np.clip(tier, 0, 2)]


def plan_new_business(ctx: Ctx, staff: Staff, companies: Companies, contacts: Contacts, n: int) -> Deals:
    """New-business deals on employed contacts, opened some time after the contact arrived."""
    rng = ctx.rng
    employed = np.flatnonzero(contacts.company >= 0)
    contact = employed[draw(rng, 1.0 + contacts.seniority[employed], n)]
    created = contacts.created[contact] + ((ctx.anchor - 3 * 3600 - contacts.created[contact])
                                           * rng.random(n) ** 1.6).astype(np.int64)
    company = contacts.company[contact]
    owner = np.where(rng.random(n) < 0.9, contacts.owner[contact], staff.teammate(rng, contacts.owner[contact]))
    seats = np.clip(np.round(companies.employees[company] * rng.uniform(0.03, 0.3, n)), 3, 5000).astype(np.int64)
    duration = np.maximum(rng.lognormal(np.log(45 * DAY), 0.6, n), 2 * DAY).astype(np.int64)
    deals = Deals(np.full(n, NEW_BUSINESS), contact, company, owner, created, duration, created + duration,
                  np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64),
                  np.zeros(n, dtype=np.int64), _tier(rng, companies.employees[company]), seats)
    return deals


def plan_renewals(ctx: Ctx, new_business: Deals, n: int) -> Deals:
    """Renewal and upsell deals opened four to thirteen months after a won new-business deal."""
    rng = ctx.rng
    source = np.flatnonzero((new_business.status == WON) & (new_business.ended < ctx.anchor - 150 * DAY))
    if len(source) == 0 or n == 0:
        return _take(new_business, np.zeros(0, dtype=np.int64))
    deals = _take(new_business, source[rng.integers(0, len(source), n)])
    room = np.minimum(400 * DAY, ctx.anchor - deals.ended - DAY)
    deals.created = deals.ended + (120 * DAY + rng.random(n) * (room - 120 * DAY)).astype(np.int64)
    deals.pipeline[:] = RENEWAL
    deals.duration = np.maximum(rng.lognormal(np.log(30 * DAY), 0.5, n), DAY).astype(np.int64)
    affinity = catalog.AFFINITY[deals.product]
    affinity[np.arange(n), deals.product] *= 0.3  # an upsell, mostly of something else
    deals.product = draw_rows(rng, affinity)
    return deals


def _take(deals: Deals, index: np.ndarray) -> Deals:
    return Deals(**{name: getattr(deals, name)[index].copy() for name in Deals.__dataclass_fields__})


def decide_outcomes(ctx: Ctx, staff: Staff, companies: Companies, contacts: Contacts, deals: Deals,
                    mean_activities: float) -> None:
    """Engagement first, then the outcome it makes likely; closed deals are those whose cycle ended before today."""
    rng, n = ctx.rng, len(deals.created)
    interest = rng.normal(0.0, 1.0, n)
    rate = mean_activities * np.exp(0.75 * interest - 0.28)
    so_far = np.clip((ctx.anchor - deals.created) / deals.duration, 0.0, 1.0)
    deals.activities = rng.poisson(rate * so_far)
    deals.events = rng.poisson(0.3 * rate * so_far)
    engagement = np.log1p(deals.activities + deals.events) - np.log1p(1.3 * mean_activities)
    base = np.where(deals.pipeline == RENEWAL, 0.9, -0.75)
    logit = (base + 1.1 * engagement + companies.fit[deals.company] + staff.skill_of_user[deals.owner]
             + 0.15 * contacts.seniority[deals.contact] + rng.normal(0.0, 0.6, n))
    won = rng.random(n) < sigmoid(logit)
    stale = rng.random(n) < 0.03  # stuck deals nobody closed
    closed = (deals.created + deals.duration < ctx.anchor) & ~stale
    deals.status = np.where(closed, np.where(won, WON, LOST), OPEN)
    deals.ended = np.where(closed, deals.created + deals.duration, ctx.anchor)


def choose_stages(ctx: Ctx, deals: Deals, refs: list[PipelineRef]) -> None:
    """The last open stage each deal entered: all of them if won, an early one if lost, by elapsed time if open."""
    rng, n = ctx.rng, len(deals.created)
    stages = np.array([len(refs[min(p, len(refs) - 1)].open_stages) for p in (NEW_BUSINESS, RENEWAL)])[deals.pipeline]
    lost_at = np.floor(rng.random(n) ** 1.6 * stages).astype(np.int64)  # most losses happen early
    elapsed = (ctx.anchor - deals.created) / deals.duration
    open_at = np.floor(elapsed * stages + rng.normal(0, 0.5, n)).astype(np.int64)
    open_at = np.where(elapsed > 1, rng.integers(0, stages), open_at)  # stale deals stopped anywhere
    deals.reached = np.clip(np.select([deals.status == WON, deals.status == LOST], [stages - 1, lost_at], open_at),
                            0, stages - 1)


def sort_deals(deals: Deals) -> None:
    reorder(deals, np.argsort(deals.created, kind="stable"))


def plan_deals(ctx: Ctx, staff: Staff, companies: Companies, contacts: Contacts, refs: list[PipelineRef]) -> Deals:
    """All deals, in creation order, with outcomes and stages decided."""
    mean_activities = ACTIVITIES_ON_DEALS * ctx.size.activities / ctx.size.deals
    renewals = int(ctx.size.deals * RENEWAL_SHARE) if len(refs) > 1 else 0
    first = plan_new_business(ctx, staff, companies, contacts, ctx.size.deals - renewals)
    decide_outcomes(ctx, staff, companies, contacts, first, mean_activities)
    second = plan_renewals(ctx, first, renewals)
    if len(second.created) < renewals:  # too little history for renewals: more new business instead
        second = _concat(second, plan_new_business(ctx, staff, companies, contacts, renewals - len(second.created)))
    decide_outcomes(ctx, staff, companies, contacts, second, mean_activities)
    deals = _concat(first, second)
    choose_stages(ctx, deals, refs)
    sort_deals(deals)
    return deals


def _concat(a: Deals, b: Deals) -> Deals:
    return Deals(**{name: np.concatenate([getattr(a, name), getattr(b, name)]) for name in Deals.__dataclass_fields__})


def give_demo_rep_deals(staff: Staff, deals: Deals, count: int = 8) -> None:
    """The demo rep's home page must show open deals: hand them their team's most recent ones."""
    team = staff.team_of_user[staff.demo_rep]
    mine = np.flatnonzero((deals.status == OPEN) & (staff.team_of_user[deals.owner] == team))
    deals.owner[mine[-count:]] = staff.demo_rep
    if len(mine) < count:  # a tiny history: take open deals from anywhere
        others = np.flatnonzero((deals.status == OPEN) & (deals.owner != staff.demo_rep))
        deals.owner[others[: count - len(mine)]] = staff.demo_rep
