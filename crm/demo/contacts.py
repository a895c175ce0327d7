"""Contact rows: names in their own script, unique ASCII emails, valid local phones, and a lifecycle stage
that follows from what each contact did (deals won, orders, engagement)."""
import numpy as np

from crm.demo import catalog
from crm.demo.arrays import lookup, nullable, occurrence_rank
from crm.demo.commerce import Purchases
from crm.demo.context import Ctx, as_datetime
from crm.demo.directory import Contacts, draw_index, take
from crm.demo.pipeline import OPEN, WON, Deals
from crm.demo.pools import LOCALES, PERSONAL_MAIL, LocalePool
from crm.demo.writer import Frame, stamp
from crm.models import Lifecycle

STAGES = [s.value for s in Lifecycle]


def _emails(ctx: Ctx, contacts: Contacts, first: np.ndarray, last: np.ndarray, domains: list[str]) -> list:
    """first.last@company (or a personal mailbox); repeats get a number, as mail servers hand them out."""
    n = len(contacts.created)
    personal = ctx.rng.integers(0, len(PERSONAL_MAIL), n)
    domain = np.where(contacts.company >= 0, lookup(domains, np.maximum(contacts.company, 0)),
                      lookup(PERSONAL_MAIL, personal))
    local = first + "." + last
    base = (local + "@" + domain).astype(str)
    _, key = np.unique(base, return_inverse=True)
    rank = occurrence_rank(key).tolist()
    emails = [f"{lo}{'' if r == 0 else r + 1}@{d}" for lo, d, r in zip(local.tolist(), domain.tolist(), rank)]
    for i in np.flatnonzero(ctx.rng.random(n) < 0.03).tolist():  # some leads only left a phone number
        emails[i] = None
    return emails


def _phones(ctx: Ctx, contacts: Contacts, pools: list[LocalePool]) -> np.ma.MaskedArray:
    """A number from the contact's own country; numbers repeat only once a country has more contacts than its pool."""
    phones = np.empty(len(contacts.created), dtype=object)
    for code, pool in enumerate(pools):
        rows = np.flatnonzero(contacts.locale == code)
        order = ctx.rng.permutation(len(pool.phones))
        phones[rows] = pool.phones[order[np.arange(len(rows)) % len(order)]]
    return nullable(phones, ctx.rng.random(len(phones)) > 0.88)


def _profiles(ctx: Ctx, first: np.ndarray, last: np.ndarray) -> list[dict]:
    roll = ctx.rng.random(len(first))
    tag = ctx.rng.integers(0, 16**4, len(first)).tolist()
    profiles = []
    for f, la, r, t in zip(first.tolist(), last.tolist(), roll.tolist(), tag):
        profile = {"linkedin": f"https://www.linkedin.com/in/{f}-{la}-{t:04x}"} if r < 0.55 else {}
        if r > 0.85:
            profile["x"] = f"https://x.com/{f}{la[:3]}{t % 1000}"
        profiles.append(profile)
    return profiles


def _titles(ctx: Ctx, contacts: Contacts, pools: list[LocalePool]) -> np.ndarray:
    local = take(contacts.locale, pools, "jobs", draw_index(ctx.rng, contacts.locale, pools, "jobs"))
    return np.where(contacts.title >= 0, lookup([t[0] for t in catalog.TITLES], np.maximum(contacts.title, 0)), local)


def _interests() -> list[list[str]]:
    """Every subset of the interest vocabulary, sorted as the app stores it, indexed by bit mask."""
    return [[name for bit, name in enumerate(catalog.INTERESTS) if mask >> bit & 1]
            for mask in range(1 << len(catalog.INTERESTS))]


def identity(ctx: Ctx, contacts: Contacts, pools: list[LocalePool], domains: list[str],
             company_cities: np.ndarray) -> Frame:
    """Who each contact is: names, email, phone, job, address, profiles, interests."""
    rng, loc = ctx.rng, contacts.locale
    fi, li = draw_index(rng, loc, pools, "first"), draw_index(rng, loc, pools, "last")
    first, last = take(loc, pools, "first", fi), take(loc, pools, "last", li)
    first_ascii, last_ascii = take(loc, pools, "first_ascii", fi), take(loc, pools, "last_ascii", li)
    # normalize_name works character by character, so the key of "first last" is the keys joined by a space.
    keys = [f"{a} {b}".strip() for a, b in zip(take(loc, pools, "first_key", fi).tolist(),
                                                take(loc, pools, "last_key", li).tolist())]
    city = take(loc, pools, "cities", draw_index(rng, loc, pools, "cities"))
    at_office = (contacts.company >= 0) & (rng.random(len(loc)) < 0.7)
    return {
        "first_name": first, "last_name": last, "name_key": keys,
        "email": _emails(ctx, contacts, first_ascii, last_ascii, domains), "phone": _phones(ctx, contacts, pools),
        "job_title": _titles(ctx, contacts, pools), "company_id": nullable(contacts.company + 1, contacts.company < 0),
        "address": take(loc, pools, "streets", draw_index(rng, loc, pools, "streets")),
        "city": np.where(at_office, company_cities[np.maximum(contacts.company, 0)], city),
        "country": lookup([x.country for x in LOCALES], loc), "source": lookup(catalog.SOURCES, contacts.source),
        "owner_id": contacts.owner, "social_profiles": _profiles(ctx, first_ascii, last_ascii),
        "interests": lookup(_interests(), contacts.interests),
    }


def lifecycle(ctx: Ctx, contacts: Contacts, deals: Deals, purchases: Purchases, left: np.ndarray,
              score: np.ndarray) -> np.ndarray:
    """Customers bought, churned customers left, opportunities have an open deal; the rest by lead score."""
    n = len(contacts.created)
    won = np.bincount(deals.contact[deals.status == WON], minlength=n) > 0
    open_deal = np.bincount(deals.contact[deals.status == OPEN], minlength=n) > 0
    any_deal = np.bincount(deals.contact, minlength=n) > 0
    customer = won | (purchases.first >= 0)
    by_score = np.digitize(score, np.quantile(score, [0.2, 0.6, 0.85]))  # subscriber, lead, mql, sql
    by_score = np.where((by_score == 0) & ~contacts.subscribed, 1, by_score)  # subscribers are on the list
    recycled = np.where(ctx.rng.random(n) < 0.5, STAGES.index("sql"), STAGES.index("lead"))
    stage = np.select([customer & left, customer, open_deal, any_deal],
                      [STAGES.index("churned"), STAGES.index("customer"), STAGES.index("opportunity"), recycled],
                      STAGES.index("subscriber") + by_score)
    return stage


def lead_score(ctx: Ctx, contacts: Contacts, touches: np.ndarray, fit: np.ndarray,
               last_touch: np.ndarray) -> np.ndarray:
    """0-100: fit, seniority, how much and how recently the contact engaged, plus noise."""
    days_quiet = np.where(last_touch >= 0, (ctx.anchor - last_touch) / 86_400, 365)
    raw = (18 * fit + 6 * contacts.seniority + 14 * np.log1p(touches) - 0.04 * days_quiet
           + ctx.rng.normal(0, 6, len(touches)))
    return np.round(np.clip(30 + raw, 0, 100), 1)


def contact_frame(ctx: Ctx, contacts: Contacts, who: Frame, stage: np.ndarray, score: np.ndarray,
                  last_touch: np.ndarray) -> Frame:
    n = len(contacts.created)
    touched = last_touch >= 0
    frame = {
        "id": np.arange(1, n + 1), **who, "lifecycle_stage": lookup(STAGES, stage), "lead_score": score,
        "email_opt_in": contacts.subscribed & ~contacts.unsubscribed & ~contacts.do_not_contact,
        "do_not_contact": contacts.do_not_contact, "last_engaged_at": as_datetime(last_touch, ~touched),
        "external_id": nullable(np.array([f"HUB-{i:07d}" for i in range(1, n + 1)], dtype=object),
                                ctx.rng.random(n) > 0.3),
    }
    return stamp(frame, contacts.created, np.where(touched, np.maximum(last_touch, contacts.created), contacts.created))
