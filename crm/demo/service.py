"""Support tickets and survey answers: slow resolutions and churn show up as unhappy scores."""
import numpy as np

from crm.demo import catalog
from crm.demo.arrays import draw, lookup, nullable
from crm.demo.commerce import Purchases
from crm.demo.context import DAY, Ctx, as_datetime
from crm.demo.directory import Contacts
from crm.demo.writer import Frame, stamp

CHANNELS = ("email", "phone", "chat", "web")
PRIORITIES = ("low", "normal", "high", "urgent")
CHURN_AFTER = 300 * DAY  # customers silent this long mostly have churned


def churned(ctx: Ctx, purchases: Purchases) -> np.ndarray:
    """Customers whose last order is long ago; three in four of them have left."""
    quiet = (purchases.last >= 0) & (purchases.last < ctx.anchor - CHURN_AFTER)
    return quiet & (ctx.rng.random(len(quiet)) < 0.75)


def _requesters(ctx: Ctx, contacts: Contacts, purchases: Purchases, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Mostly customers (after their first purchase), sometimes prospects; returns contacts and earliest times."""
    buyers = np.flatnonzero(purchases.first >= 0)
    who = ctx.rng.integers(0, len(contacts.created), count)
    if len(buyers):
        customer = buyers[ctx.rng.integers(0, len(buyers), count)]
        who = np.where(ctx.rng.random(count) < 0.85, customer, who)
    return who, np.where(purchases.first[who] >= 0, purchases.first[who], contacts.created[who])


def tickets(ctx: Ctx, contacts: Contacts, purchases: Purchases) -> tuple[Frame, dict[str, np.ndarray]]:
    """Tickets with a channel, priority and resolution time; recent ones are still open or pending."""
    rng, n = ctx.rng, ctx.size.tickets
    contact, since = _requesters(ctx, contacts, purchases, n)
    opened = ctx.between(since, ctx.anchor - 3600)
    order = np.argsort(opened, kind="stable")
    contact, opened = contact[order], opened[order]
    priority = draw(rng, (20, 55, 20, 5), n)
    hours = rng.lognormal(np.log(20), 1.2, n) / np.array([1.0, 1.0, 1.6, 3.0])[priority]
    resolved = opened + (hours * 3600).astype(np.int64)
    stuck = rng.random(n) < 0.02
    done = (resolved < ctx.anchor) & ~stuck
    status = np.where(done, 2, np.where(rng.random(n) < 0.6, 0, 1))
    company = contacts.company[contact]
    frame = stamp({
        "id": np.arange(1, n + 1), "contact_id": contact + 1, "company_id": nullable(company + 1, company < 0),
        "owner_id": contacts.owner[contact],
        "subject": lookup(catalog.TICKET_SUBJECTS, rng.integers(0, len(catalog.TICKET_SUBJECTS), n)),
        "channel": lookup(CHANNELS, draw(rng, (45, 20, 25, 10), n)),
        "status": lookup(("open", "pending", "resolved"), status), "priority": lookup(PRIORITIES, priority),
        "opened_at": as_datetime(opened), "resolved_at": as_datetime(resolved, ~done)}, opened,
        np.where(done, resolved, opened))
    return frame, {"contact": contact, "resolved": np.where(done, resolved, -1), "hours": hours}


def surveys(ctx: Ctx, contacts: Contacts, purchases: Purchases, left: np.ndarray, solved: dict) -> Frame:
    """NPS from customers (lower after many tickets or before leaving) and CSAT after resolved tickets."""
    rng = ctx.rng
    nps_count = int(ctx.size.surveys * 0.6)
    contact, since = _requesters(ctx, contacts, purchases, nps_count)
    answered = ctx.between(since, ctx.anchor - 3600)
    complaints = np.bincount(solved["contact"], minlength=len(contacts.created))[contact]
    nps = np.clip(np.round(rng.normal(8.2, 1.6, nps_count) - 0.8 * complaints - 2.5 * left[contact]), 0, 10)
    closed = np.flatnonzero(solved["resolved"] >= 0)
    rated = closed[rng.random(len(closed)) < min(1.0, (ctx.size.surveys - nps_count) / max(len(closed), 1))]
    csat_time = np.minimum(solved["resolved"][rated] + rng.integers(3600, 3 * DAY, len(rated)), ctx.anchor - 60)
    csat = np.clip(np.round(4.6 - 0.45 * np.log(solved["hours"][rated] / 4 + 1) + rng.normal(0, 0.8, len(rated))), 1, 5)
    kind = np.r_[np.zeros(nps_count, dtype=np.int64), np.ones(len(rated), dtype=np.int64)]
    score = np.r_[nps, csat].astype(np.int64)
    when = np.r_[answered, csat_time]
    who = np.r_[contact, solved["contact"][rated]]
    order = np.argsort(when, kind="stable")
    return stamp({"id": np.arange(1, len(order) + 1), "contact_id": who[order] + 1,
                  "kind": lookup(("nps", "csat"), kind[order]), "score": score[order],
                  "comment": _comments(rng, kind[order], score[order]), "answered_at": as_datetime(when[order])},
                 when[order])


def _comments(rng: np.random.Generator, kind: np.ndarray, score: np.ndarray) -> np.ma.MaskedArray:
    """A quarter of answers carry a comment that fits the score."""
    top = np.where(kind == 0, 10, 5)
    band = np.select([score <= 0.6 * top, score <= 0.8 * top], [0, 1], 2)
    texts = [catalog.SURVEY_COMMENTS[b] for b in ("low", "mid", "high")]
    flat = [t for group in texts for t in group]
    pick = band * 3 + rng.integers(0, 3, len(score))
    return nullable(lookup(flat, pick), rng.random(len(score)) > 0.25)
