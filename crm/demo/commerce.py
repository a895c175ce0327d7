"""Marketing spend and orders: won deals become orders, and later purchases follow product affinities."""
from dataclasses import dataclass

import numpy as np

from crm.demo import catalog
from crm.demo.arrays import draw, draw_rows, lookup, nullable, spans
from crm.demo.context import DAY, Ctx, as_date, month_starts
from crm.demo.directory import Companies, Contacts
from crm.demo.pipeline import WON, Deals
from crm.demo.writer import Frame, stamp

AFFINITY_MIX = 0.85  # the rest of a next purchase follows overall popularity
STATUSES = ("completed", "refunded", "cancelled")


@dataclass
class Purchases:
    """What the orders tell later steps: who bought, when first and last, how much, and offers seen before."""
    first: np.ndarray  # epoch seconds per contact, -1 for never
    last: np.ndarray
    spent: np.ndarray
    offer_views: dict[str, np.ndarray]


def plan_spend(ctx: Ctx) -> tuple[np.ndarray, np.ndarray]:
    """Spend per channel (rows, as catalog.SOURCES) and month (columns): growing, seasonal, noisy."""
    months = month_starts(ctx.start, ctx.anchor)
    scale = ctx.size.contacts / 2000
    growth = np.linspace(0.7, 1.3, len(months))
    month_of_year = months.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64) % 12
    season = 1 + 0.15 * np.cos(2 * np.pi * (month_of_year - 9) / 12)  # autumn is busiest
    elapsed = np.clip((ctx.anchor - months) / (30.4 * DAY), 0, 1)  # the current month is only partly spent
    noise = ctx.rng.lognormal(0, 0.15, (len(catalog.SOURCES), len(months)))
    spend = np.array(catalog.SPEND_PER_MONTH)[:, None] * scale * growth * season * elapsed * noise
    return np.round(spend, 2), months


def spend_frame(ctx: Ctx, spend: np.ndarray, months: np.ndarray) -> Frame:
    channel, month = np.meshgrid(np.arange(spend.shape[0]), np.arange(spend.shape[1]), indexing="ij")
    channel, month = channel.ravel(), month.ravel()
    booked = np.minimum(months[month] + 35 * DAY, ctx.anchor - 3600)
    return stamp({"id": np.arange(1, len(channel) + 1), "channel": lookup(catalog.SOURCES, channel),
                  "month": as_date(months[month]), "amount": spend.ravel()}, booked)


def _next_products(ctx: Ctx, previous: np.ndarray, interests: np.ndarray) -> np.ndarray:
    """A product per row: mostly what buyers of the previous product buy next, nudged by stated interests."""
    popularity = catalog.AFFINITY.sum(axis=0) / catalog.AFFINITY.sum()
    weights = AFFINITY_MIX * catalog.AFFINITY[previous] / catalog.AFFINITY[previous].sum(axis=1, keepdims=True)
    weights += (1 - AFFINITY_MIX) * popularity
    for bit, name in enumerate(catalog.INTERESTS):
        if name in catalog.INTEREST_PRODUCT:
            weights[(interests >> bit) & 1 == 1, catalog.INTEREST_PRODUCT[name]] *= 2.0
    return draw_rows(ctx.rng, weights)


def _deal_orders(ctx: Ctx, deals: Deals, lines: Frame) -> dict[str, np.ndarray]:
    """Every won deal is invoiced within ten days of closing, with the deal's own line items."""
    won = np.flatnonzero((deals.status == WON) & (deals.ended < ctx.anchor - DAY))
    when = np.minimum(deals.ended[won] + ctx.rng.integers(0, 10 * DAY, len(won)), ctx.anchor - 3600)
    line_deal = lines["deal_id"] - 1
    order_of_deal = np.full(len(deals.created), -1)
    order_of_deal[won] = np.arange(len(won))
    on_order = order_of_deal[line_deal] >= 0
    price = lines["unit_price"] * (1 - lines["discount"])
    return {"contact": deals.contact[won], "deal": won, "time": when, "product": deals.product[won],
            "line_order": order_of_deal[line_deal][on_order], "line_product": lines["product_id"][on_order] - 1,
            "line_quantity": lines["quantity"][on_order], "line_price": price[on_order]}


def _self_serve(ctx: Ctx, contacts: Contacts, taken: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Individuals and web leads who buy online without a deal: contact, time, product."""
    rng, n = ctx.rng, len(contacts.created)
    likely = ((contacts.company < 0) | (contacts.source == 0) | (contacts.source == 5)) & ~taken
    buyer = np.flatnonzero(likely & (rng.random(n) < 0.25))
    when = contacts.created[buyer] + rng.exponential(20 * DAY, len(buyer)).astype(np.int64)
    buyer, when = buyer[when < ctx.anchor - 3600], when[when < ctx.anchor - 3600]
    first = draw(rng, catalog.SELF_SERVE_FIRST, len(buyer))
    return buyer, when, first


def _repeat_orders(ctx: Ctx, contacts: Contacts, buyers: np.ndarray, since: np.ndarray, first_product: np.ndarray,
                   count: int) -> dict[str, np.ndarray]:
    """Later orders of earlier buyers; each one's product follows the affinity of the one before."""
    rng = ctx.rng
    weights = (ctx.anchor - since) / DAY * contacts.propensity[buyers]
    pick = np.sort(draw(rng, weights, max(count, 0)))
    time = ctx.between(since[pick], ctx.anchor - 3600)
    order = np.lexsort((time, pick))
    pick, time = pick[order], time[order]
    _, position = spans(np.bincount(pick, minlength=len(buyers)))
    product = np.zeros(len(pick), dtype=np.int64)
    for step in range(int(position.max(initial=-1)) + 1):
        rows = np.flatnonzero(position == step)
        previous = first_product[pick[rows]] if step == 0 else product[rows - 1]
        product[rows] = _next_products(ctx, previous, contacts.interests[buyers[pick[rows]]])
    return {"contact": buyers[pick], "time": time, "product": product}


def _lines_for(ctx: Ctx, contact: np.ndarray, product: np.ndarray, seats: np.ndarray, first_order: int) -> dict:
    """One line for the main product and, for a quarter of orders, one for a product often bought with it."""
    rng, n = ctx.rng, len(contact)
    second = _next_products(ctx, product, np.zeros(n, dtype=np.int64))
    has_second = (rng.random(n) < 0.25) & (second != product)
    order = np.r_[np.arange(n), np.flatnonzero(has_second)] + first_order
    item = np.r_[product, second[has_second]]
    units = np.r_[seats, seats[has_second]] * rng.uniform(0.1, 0.5, len(item))
    quantity = np.where(catalog.PER_SEAT[item], np.maximum(np.round(units), 1), 1.0)
    price = catalog.LIST_PRICE[item] * (1 - np.array([0.0, 0.05, 0.1])[draw(rng, (6, 3, 1), len(item))])
    return {"line_order": order, "line_product": item, "line_quantity": quantity, "line_price": price}


def _seats(ctx: Ctx, contacts: Contacts, companies: Companies, contact: np.ndarray) -> np.ndarray:
    company = contacts.company[contact]
    staffed = np.clip(companies.employees[np.maximum(company, 0)] * 0.1, 1, 500)
    return np.where(company >= 0, staffed, ctx.rng.integers(1, 6, len(contact)))


def _first_purchases(ctx: Ctx, contacts: Contacts, won: dict) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Each buyer's first purchase time and product: their earliest won deal, or a self-serve order."""
    n = len(contacts.created)
    first = np.full(n, -1, dtype=np.int64)
    product = np.zeros(n, dtype=np.int64)
    order = np.lexsort((won["time"], won["contact"]))
    _, earliest = np.unique(won["contact"][order], return_index=True)
    picked = order[earliest]
    first[won["contact"][picked]], product[won["contact"][picked]] = won["time"][picked], won["product"][picked]
    self_serve = _self_serve(ctx, contacts, first >= 0)
    first[self_serve[0]], product[self_serve[0]] = self_serve[1], self_serve[2]
    return first, product, self_serve


def orders(ctx: Ctx, contacts: Contacts, companies: Companies, deals: Deals,
           lines: Frame) -> tuple[Frame, Frame, Purchases]:
    """Deal orders, self-serve first orders and repeat orders, numbered in time order, with their lines."""
    won = _deal_orders(ctx, deals, lines)
    first, first_product, (serve_contact, serve_time, serve_product) = _first_purchases(ctx, contacts, won)
    buyers = np.flatnonzero(first >= 0)
    repeat_count = ctx.size.orders - len(won["time"]) - len(serve_contact)
    repeat = _repeat_orders(ctx, contacts, buyers, first[buyers], first_product[buyers], repeat_count)
    contact = np.r_[won["contact"], serve_contact, repeat["contact"]]
    product = np.r_[serve_product, repeat["product"]]
    online = _lines_for(ctx, contact[len(won["time"]):], product,
                        _seats(ctx, contacts, companies, contact[len(won["time"]):]), len(won["time"]))
    line = {key: np.r_[won[key], online[key]] for key in online}
    time = np.r_[won["time"], serve_time, repeat["time"]]
    deal = np.r_[won["deal"], np.full(len(contact) - len(won["time"]), -1)]
    frames = _order_frames(ctx, contacts, contact, deal, time, line)
    views = _offer_views(ctx, contacts, repeat)
    return frames[0], frames[1], _purchases(contacts, frames[0], contact, time, views)


def _order_frames(ctx: Ctx, contacts: Contacts, contact: np.ndarray, deal: np.ndarray, time: np.ndarray,
                  line: dict) -> tuple[Frame, Frame]:
    rng, n = ctx.rng, len(contact)
    order = np.argsort(time, kind="stable")
    new_id = np.empty(n, dtype=np.int64)
    new_id[order] = np.arange(1, n + 1)
    line_order = new_id[line["line_order"]]
    by_order = np.argsort(line_order, kind="stable")
    price = np.round(line["line_price"], 2)
    total = np.round(np.bincount(line_order, weights=line["line_quantity"] * price, minlength=n + 1)[1:], 2)
    status = np.where(deal[order] >= 0, 0, draw(rng, (94, 3, 3), n))
    company = contacts.company[contact[order]]
    order_frame = stamp({
        "id": np.arange(1, n + 1), "contact_id": contact[order] + 1, "company_id": nullable(company + 1, company < 0),
        "deal_id": nullable(deal[order] + 1, deal[order] < 0), "ordered_at": time[order].astype("datetime64[s]"),
        "status": lookup(STATUSES, status), "total": total, "currency": "USD",
        "external_id": [f"SO-{i:08d}" for i in range(1, n + 1)]}, time[order])
    line_frame = stamp({
        "id": np.arange(1, len(line_order) + 1), "order_id": line_order[by_order],
        "product_id": line["line_product"][by_order] + 1, "quantity": line["line_quantity"][by_order],
        "unit_price": price[by_order]}, time[order][line_order[by_order] - 1])
    return order_frame, line_frame


def _offer_views(ctx: Ctx, contacts: Contacts, repeat: dict) -> dict[str, np.ndarray]:
    """A third of repeat purchases are preceded by a look at that product's offer."""
    seen = np.flatnonzero(ctx.rng.random(len(repeat["time"])) < 0.3)
    contact = repeat["contact"][seen]
    when = np.maximum(repeat["time"][seen] - ctx.rng.integers(3600, 10 * DAY, len(seen)), contacts.created[contact])
    return {"contact": contact, "time": when, "product": repeat["product"][seen]}


def _purchases(contacts: Contacts, order_frame: Frame, contact: np.ndarray, time: np.ndarray,
               views: dict) -> Purchases:
    n = len(contacts.created)
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, -1, dtype=np.int64)
    np.minimum.at(first, contact, time)
    np.maximum.at(last, contact, time)
    buyer = order_frame["contact_id"] - 1
    spent = np.bincount(buyer, weights=np.where(order_frame["status"] == "completed", order_frame["total"], 0.0),
                        minlength=n)
    return Purchases(np.where(last >= 0, first, -1), last, spent, views)
