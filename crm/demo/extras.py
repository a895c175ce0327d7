"""Reference rows the demo adds (products, tags, custom fields) and the rows that label records with them."""
import numpy as np

from crm.demo import catalog
from crm.demo.arrays import lookup, nullable
from crm.demo.commerce import Purchases
from crm.demo.context import DAY, Ctx, as_date
from crm.demo.directory import Companies, Contacts
from crm.demo.pipeline import LOST, WON, Deals
from crm.demo.pools import LOCALES
from crm.demo.writer import Frame, stamp

LANGUAGES = list(dict.fromkeys(loc.language for loc in LOCALES))


def _setup_time(ctx: Ctx, n: int) -> np.ndarray:
    return np.full(n, ctx.start - 30 * DAY)


def products(ctx: Ctx) -> Frame:
    rows = catalog.PRODUCTS
    return stamp({"id": np.arange(1, len(rows) + 1), "name": [p[0] for p in rows], "sku": [p[1] for p in rows],
                  "series": [p[2] for p in rows], "list_price": catalog.LIST_PRICE, "active": True},
                 _setup_time(ctx, len(rows)))


def tags(ctx: Ctx) -> Frame:
    return stamp({"id": np.arange(1, len(catalog.TAGS) + 1), "name": [t[0] for t in catalog.TAGS],
                  "color": [t[1] for t in catalog.TAGS]}, _setup_time(ctx, len(catalog.TAGS)))


def contact_tags(ctx: Ctx, contacts: Contacts, companies: Companies, purchases: Purchases, left: np.ndarray,
                 opted_in: np.ndarray) -> Frame:
    """Tags that mostly follow from the data (VIP = big spenders, Churn risk = gone quiet) and a few at random."""
    rng, n = ctx.rng, len(contacts.created)
    customer = purchases.first >= 0
    spent = purchases.spent
    vip_line = np.quantile(spent[spent > 0], 0.97) if (spent > 0).any() else np.inf
    big_company = (contacts.company >= 0) & (companies.employees[np.maximum(contacts.company, 0)] >= 5000)
    rules = {
        "VIP": spent >= vip_line, "Newsletter": opted_in, "Partner": contacts.source == 4,
        "Trade show": contacts.source == 2, "Webinar attendee": rng.random(n) < 0.06,
        "Decision maker": contacts.seniority >= 2, "Champion": customer & (rng.random(n) < 0.1),
        "Churn risk": customer & ~left & (purchases.last < ctx.anchor - 180 * DAY),
        "Reference customer": customer & ~left & (rng.random(n) < 0.08), "Beta tester": rng.random(n) < 0.02,
        "Key account": big_company, "Trial": (contacts.source == 0) & ~customer & (rng.random(n) < 0.15),
    }
    names = [t[0] for t in catalog.TAGS]
    contact = np.concatenate([np.flatnonzero(mask) for mask in rules.values()])
    tag = np.concatenate([np.full(int(mask.sum()), names.index(name)) for name, mask in rules.items()])
    order = np.lexsort((tag, contact))
    when = np.minimum(contacts.created[contact[order]] + rng.integers(0, 30 * DAY, len(order)), ctx.anchor - 60)
    return stamp({"id": np.arange(1, len(order) + 1), "contact_id": contact[order] + 1, "tag_id": tag[order] + 1},
                 when)


def company_tags(ctx: Ctx, companies: Companies) -> Frame:
    names = [t[0] for t in catalog.TAGS]
    key = np.flatnonzero(companies.employees >= 5000)
    partner = np.flatnonzero(ctx.rng.random(len(companies.employees)) < 0.03)
    company = np.r_[key, partner]
    tag = np.r_[np.full(len(key), names.index("Key account")), np.full(len(partner), names.index("Partner"))]
    order = np.lexsort((tag, company))
    return stamp({"id": np.arange(1, len(order) + 1), "company_id": company[order] + 1, "tag_id": tag[order] + 1},
                 companies.created[company[order]] + DAY)


def custom_field_defs(ctx: Ctx) -> Frame:
    fields = catalog.CUSTOM_FIELDS
    return stamp({
        "id": np.arange(1, len(fields) + 1), "entity": [f[1].value for f in fields], "key": [f[0] for f in fields],
        "label": [f[2] for f in fields], "field_type": [f[3].value for f in fields], "required": False,
        "options": [LANGUAGES if f[0] == "preferred_language" else [] for f in fields],
        "view_roles": [catalog.ALL_ROLES] * len(fields), "edit_roles": [catalog.EDITORS] * len(fields),
        "position": np.arange(len(fields))}, _setup_time(ctx, len(fields)))


def custom_field_values(ctx: Ctx, contacts: Contacts, deals: Deals, lost_to_rival: np.ndarray) -> Frame:
    """Preferred language for some contacts, contract end for customer companies, the rival on some deals."""
    rng = ctx.rng
    speaks = np.flatnonzero(rng.random(len(contacts.created)) < 0.45)
    language = lookup([LANGUAGES.index(loc.language) for loc in LOCALES], contacts.locale[speaks])
    won = deals.status == WON
    contract = np.full(int(deals.company.max(initial=-1)) + 1, -1, dtype=np.int64)
    np.maximum.at(contract, deals.company[won], deals.ended[won])
    customer = np.flatnonzero(contract >= 0)
    rival = np.flatnonzero(lost_to_rival | ((deals.status != LOST) & (rng.random(len(deals.status)) < 0.3)))
    field = np.r_[np.full(len(speaks), 1), np.full(len(customer), 2), np.full(len(rival), 3)]
    record = np.r_[speaks, customer, rival] + 1
    text = np.r_[lookup(LANGUAGES, language.astype(np.int64)),
                 np.full(len(customer), None, dtype=object),
                 lookup(catalog.COMPETITORS, rng.integers(0, len(catalog.COMPETITORS), len(rival)))]
    dates = np.r_[np.zeros(len(speaks), dtype=np.int64), contract[customer] + 365 * DAY,
                  np.zeros(len(rival), dtype=np.int64)]
    created = np.r_[contacts.created[speaks], contract[customer], deals.created[rival]]
    return stamp({"id": np.arange(1, len(field) + 1), "field_id": field, "record_id": record,
                  "value_text": nullable(text, field == 2), "value_date": as_date(dates, field != 2)},
                 np.minimum(created, ctx.anchor - 60))


def subscriptions(ctx: Ctx, contacts: Contacts) -> Frame:
    """Newsletter sign-ups (and later unsubscribes), product-update sign-ups, and event-list sign-ups."""
    rng, n = ctx.rng, len(contacts.created)
    joined = np.minimum(contacts.created + rng.integers(0, 2 * DAY, n), ctx.anchor - 60)
    subscribed = np.flatnonzero(contacts.subscribed)
    left = np.flatnonzero(contacts.unsubscribed)
    updates = subscribed[rng.random(len(subscribed)) < 0.3]
    events = np.flatnonzero(contacts.source == 2)
    contact = np.r_[subscribed, left, updates, events]
    list_index = np.r_[np.zeros(len(subscribed) + len(left)), np.ones(len(updates)), np.full(len(events), 2)]
    action = np.r_[np.zeros(len(subscribed)), np.ones(len(left)), np.zeros(len(updates) + len(events))]
    when = np.r_[joined[subscribed], ctx.between(joined[left] + 60, ctx.anchor - 60),
                 np.minimum(joined[updates] + rng.integers(0, 60 * DAY, len(updates)), ctx.anchor - 60),
                 contacts.created[events]]
    order = np.argsort(when, kind="stable")
    return stamp({"id": np.arange(1, len(order) + 1), "contact_id": contact[order] + 1,
                  "list_name": lookup(catalog.LISTS, list_index[order].astype(np.int64)),
                  "action": lookup(("subscribe", "unsubscribe"), action[order].astype(np.int64)),
                  "occurred_at": when[order].astype("datetime64[s]")}, when[order])
