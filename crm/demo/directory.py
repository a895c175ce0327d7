"""Companies and contacts: who they are, where, since when, and whose accounts they are."""
from dataclasses import dataclass, fields

import numpy as np

from crm.demo import catalog
from crm.demo.arrays import draw, lookup, nullable, occurrence_rank, pick_member
from crm.demo.context import DAY, Ctx, as_datetime
from crm.demo.people import Staff
from crm.demo.pools import LOCALE_REGION, LOCALE_WEIGHTS, LOCALES, LocalePool
from crm.demo.writer import Frame
from crm.text import normalize_name

EMPLOYED_SHARE = 0.85  # contacts who work at one of the companies; the rest are individuals


@dataclass
class Companies:
    locale: np.ndarray
    industry: np.ndarray  # index into catalog.INDUSTRIES
    employees: np.ndarray
    fit: np.ndarray  # latent: how good a customer this company tends to be
    owner: np.ndarray  # rep user id
    created: np.ndarray  # epoch seconds, set once its contacts are known


@dataclass
class Contacts:
    locale: np.ndarray
    company: np.ndarray  # company index, -1 for none
    source: np.ndarray  # index into catalog.SOURCES
    created: np.ndarray
    owner: np.ndarray
    title: np.ndarray  # index into catalog.TITLES, -1 for a title from the locale's Faker pool
    seniority: np.ndarray
    interests: np.ndarray  # bit mask over catalog.INTERESTS
    propensity: np.ndarray  # latent appetite for engagement
    subscribed: np.ndarray  # joined the newsletter when created
    unsubscribed: np.ndarray  # ... and left it later
    do_not_contact: np.ndarray


def reorder(obj, order: np.ndarray) -> None:
    """Apply one permutation to every array field of a dataclass, in place."""
    for f in fields(obj):
        setattr(obj, f.name, getattr(obj, f.name)[order])


def plan_companies(ctx: Ctx, staff: Staff) -> Companies:
    n, rng = ctx.size.companies, ctx.rng
    locale = draw(rng, LOCALE_WEIGHTS, n)
    industry = draw(rng, np.ones(len(catalog.INDUSTRIES)), n)
    employees = np.clip(np.round(rng.lognormal(np.log(90), 1.5, n)), 2, 250_000).astype(np.int64)
    fit = np.array(list(catalog.INDUSTRIES.values()))[industry] + 0.3 * (np.log10(employees) - 2)
    owner = staff.rep_in_region(rng, LOCALE_REGION[locale])
    return Companies(locale, industry, employees, fit, owner, np.zeros(n, dtype=np.int64))


def plan_contacts(ctx: Ctx, staff: Staff, companies: Companies, spend: np.ndarray, months: np.ndarray) -> Contacts:
    """Contacts in creation order; each company gets at least one, bigger companies more."""
    n, rng = ctx.size.contacts, ctx.rng
    employed = int(n * EMPLOYED_SHARE)
    first = np.arange(min(len(companies.locale), employed))
    rest = draw(rng, np.sqrt(companies.employees), employed - len(first))
    company = rng.permutation(np.r_[first, rest, np.full(n - employed, -1)])
    locale = np.where(company >= 0, companies.locale[company], draw(rng, LOCALE_WEIGHTS, n))
    source = draw(rng, catalog.SOURCE_WEIGHTS, n)
    created = _created_by_spend(ctx, source, spend, months)
    owner = np.where((company >= 0) & (rng.random(n) < 0.9), companies.owner[company],
                     staff.rep_in_region(rng, LOCALE_REGION[locale]))
    title = np.where(rng.random(n) < 0.25, -1, draw(rng, catalog.TITLE_WEIGHTS, n))
    seniority = np.where(title >= 0, np.array([t[1] for t in catalog.TITLES])[title], 0)
    interests = (rng.random((n, len(catalog.INTERESTS))) < 0.18) @ (1 << np.arange(len(catalog.INTERESTS)))
    subscribed = rng.random(n) < np.array([0.75, 0.55, 0.7, 0.35, 0.5, 0.7])[source]
    do_not_contact = rng.random(n) < 0.03
    unsubscribed = subscribed & ((rng.random(n) < 0.12) | do_not_contact)
    contacts = Contacts(locale, company, source, created, owner, title, seniority, interests,
                        rng.lognormal(0, 0.6, n), subscribed, unsubscribed, do_not_contact)
    reorder(contacts, np.argsort(created, kind="stable"))  # ids follow creation time, as in a real CRM
    return contacts


def _created_by_spend(ctx: Ctx, source: np.ndarray, spend: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Creation times: a source brings in leads in proportion to what was spent on it that month."""
    month = np.empty(len(source), dtype=np.int64)
    for channel in range(len(catalog.SOURCES)):
        mask = source == channel
        month[mask] = draw(ctx.rng, spend[channel], int(mask.sum()))
    lo = np.maximum(months[month], ctx.start)
    hi = np.minimum(np.r_[months[1:], ctx.anchor][month], ctx.anchor - 3600)
    return ctx.between(lo, np.maximum(hi, lo + 1))


def settle_companies(ctx: Ctx, companies: Companies, contacts: Contacts) -> np.ndarray:
    """Date each company just before its first contact and renumber companies by that date; returns old->new."""
    first_seen = np.full(len(companies.locale), ctx.anchor - DAY, dtype=np.int64)
    employed = contacts.company >= 0
    np.minimum.at(first_seen, contacts.company[employed], contacts.created[employed])
    companies.created = np.maximum(first_seen - ctx.rng.integers(DAY, 30 * DAY, len(first_seen)), ctx.start - 60 * DAY)
    order = np.argsort(companies.created, kind="stable")
    reorder(companies, order)
    new_index = np.empty_like(order)
    new_index[order] = np.arange(len(order))
    contacts.company = np.where(employed, new_index[np.maximum(contacts.company, 0)], -1)
    return new_index


def draw_index(rng: np.random.Generator, locale: np.ndarray, pools: list[LocalePool], attribute: str) -> np.ndarray:
    """A random index into each row's own locale pool."""
    index = np.zeros(len(locale), dtype=np.int64)
    for code, pool in enumerate(pools):
        mask = locale == code
        index[mask] = rng.integers(0, len(getattr(pool, attribute)), int(mask.sum()))
    return index


def take(locale: np.ndarray, pools: list[LocalePool], attribute: str, index: np.ndarray) -> np.ndarray:
    """The pool values at the given per-locale indexes, as an object array."""
    values = np.empty(len(locale), dtype=object)
    for code, pool in enumerate(pools):
        mask = locale == code
        values[mask] = getattr(pool, attribute)[index[mask]]
    return values


def company_frame(ctx: Ctx, companies: Companies, pools: list[LocalePool]) -> tuple[Frame, list[str]]:
    """The company rows; names that repeat in a locale get their city added, as branch offices do."""
    rng, n = ctx.rng, len(companies.locale)
    name_idx = draw_index(rng, companies.locale, pools, "companies")
    names = take(companies.locale, pools, "companies", name_idx)
    cities = take(companies.locale, pools, "cities", draw_index(rng, companies.locale, pools, "cities"))
    rank = occurrence_rank(companies.locale * 1_000_000 + name_idx)
    names = np.where(rank > 0, names + " " + cities, names)
    slugs = take(companies.locale, pools, "company_slugs", name_idx)
    slug_rank = occurrence_rank(slugs.astype(str))
    domains = [f"{s}{'' if r == 0 else r + 1}.example" for s, r in zip(slugs.tolist(), slug_rank.tolist())]
    parent = _parents(rng, companies)
    created = as_datetime(companies.created)
    frame = {
        "id": np.arange(1, n + 1), "created_at": created, "updated_at": created, "version": 1,
        "name": names, "name_key": [normalize_name(x) for x in names.tolist()], "domain": domains,
        "industry": lookup(list(catalog.INDUSTRIES), companies.industry), "employees": companies.employees,
        "annual_revenue": np.round(companies.employees * rng.lognormal(np.log(150_000), 0.5, n), -3),
        "country": lookup([loc.country for loc in LOCALES], companies.locale), "city": cities,
        "parent_id": nullable(parent + 1, parent < 0), "owner_id": companies.owner,
        "external_id": nullable(np.array([f"ERP-{i:07d}" for i in range(1, n + 1)], dtype=object),
                                rng.random(n) > 0.3),
    }
    return frame, domains


def _parents(rng: np.random.Generator, companies: Companies) -> np.ndarray:
    """About 3% are subsidiaries of a large company in the same country that was in the CRM before them."""
    n = len(companies.locale)
    large = np.flatnonzero(companies.employees >= 1000)
    parent = np.full(n, -1)
    if len(large):
        picked = pick_member(rng, companies.locale[large], companies.locale)
        candidate = np.where(picked >= 0, large[picked], -1)
        keep = (rng.random(n) < 0.03) & (candidate >= 0) & (candidate < np.arange(n))
        parent[keep] = candidate[keep]
    return parent
