"""Customer revenue KPIs: upsell and cross-sell rate, net new revenue, customer lifetime value (historical and
predicted), and the revenue trend (docs/kpis_deals_revenue.md).

Shared rules. Revenue is the `total` of live (deleted_at IS NULL), completed orders, summed as stored (one
currency), dated by ordered_at; undated orders are left out. A customer is a live contact with such an order;
orders without a contact are left out. flt.segment_id narrows customers to the segment's current members that the
actor may read (a company segment: contacts of its companies). Owner, team and pipeline filters do not apply: an
order has no owner. An order at the period's first moment counts in it; one at `until` belongs to the next period.
"""
from datetime import UTC, datetime, timedelta
from typing import Literal

import pandas as pd
from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from crm.kpis import cube
from crm.kpis.base import KpiFilter, Metric, cube_owners, month_span, ratio
from crm.kpis.cube_facts import PERIOD_MONTHS
from crm.models import Company, Contact, Order, OrderLine
from crm.permissions import Actor, readable_owner_ids
from crm.segments.service import get_segment, members_condition
from crm.sqlfuncs import unindexed

COMPLETED = "completed"
DAY = timedelta(days=1)
MOVEMENTS = ("new", "reactivated", "expansion", "contraction", "churned")  # net new revenue's parts, in order
YEAR = timedelta(days=365)
DISCOUNT_RATE = 0.10  # a year, for the predicted lifetime value
Grain = Literal["day", "week", "month"]



def _customers(session: Session, actor: Actor, flt: KpiFilter) -> ColumnElement:
    """A condition on Contact: live, readable by the actor (a rep counts their team's customers), and a member of
    flt's segment if one is set."""
    condition = Contact.deleted_at.is_(None)
    readable = readable_owner_ids(session, actor, "contacts")
    if readable is not None:
        condition = and_(condition, Contact.owner_id.in_(readable))
    if flt.segment_id is None:
        return condition
    segment = get_segment(session=session, actor=actor, segment=flt.segment_id)
    members = members_condition(session=session, actor=actor, segment=segment)
    if segment.entity == "company":
        members = Contact.company_id.in_(sa_select(Company.id).where(members))
    return and_(condition, members)


def _revenue(order=Order) -> list:
    """WHERE conditions for the orders that are revenue."""
    return [order.deleted_at.is_(None), order.status == COMPLETED, order.ordered_at.is_not(None),
            order.contact_id.is_not(None)]


def _orders(session: Session, actor: Actor, flt: KpiFilter, since: datetime | None, until: datetime):
    """select(...) over revenue orders in [since, until) of the filter's customers; columns are added by callers."""
    window = [Order.ordered_at < until] + ([Order.ordered_at >= since] if since is not None else [])
    return lambda *columns: (select(*columns).select_from(Order).join(Contact, Contact.id == Order.contact_id)
                             .where(*_revenue(), *window, _customers(session, actor, flt)))


def _sum_if(condition, value=Order.total):
    return func.coalesce(func.sum(case((condition, value), else_=0.0)), 0.0)


def _count_if(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _ordered_before(moment: datetime) -> ColumnElement:
    """EXISTS: the current row's contact has a revenue order before `moment`."""
    earlier = aliased(Order)
    return (exists().where(earlier.contact_id == Order.contact_id, earlier.ordered_at < moment, *_revenue(earlier))
            .correlate_except(earlier))


def _per_customer(session: Session, actor: Actor, flt: KpiFilter):
    """Per customer with an order in the previous period or this one: previous and current revenue and orders,
    whether they ordered before the previous period, and (cross-sell) whether this period brought a product they
    had not ordered before it. A subquery."""
    prev = flt.previous()
    in_now = Order.ordered_at >= flt.since
    line, earlier, earlier_line = aliased(OrderLine), aliased(Order), aliased(OrderLine)
    # Correlated explicitly: left to itself SQLAlchemy gives the inner EXISTS a sales_order of its own. The product
    # is unindexed so that SQLite goes from the customer's earlier orders, not through every line of the product.
    owned_before = (exists().where(earlier_line.order_id == earlier.id, unindexed(earlier_line.product_id) == line.product_id,
                                   earlier.contact_id == Order.contact_id, earlier.ordered_at < flt.since,
                                   *_revenue(earlier)).correlate_except(earlier, earlier_line))
    new_product = exists().where(line.order_id == Order.id, ~owned_before).correlate_except(line)
    query = _orders(session, actor, flt, prev.since, flt.until)
    return (query(Order.contact_id, _sum_if(~in_now).label("previous"), _sum_if(in_now).label("current"),
                  _count_if(~in_now).label("previous_orders"), _count_if(in_now).label("current_orders"),
                  func.max(case((_ordered_before(prev.since), 1), else_=0)).label("earlier"),
                  func.max(case((and_(in_now, new_product), 1), else_=0)).label("new_product"))
            .group_by(Order.contact_id)).subquery()


# --- 2. upsell and cross-sell rate --------------------------------------------------------------------------------

def _existing(session: Session, actor: Actor, flt: KpiFilter) -> int:
    query = _orders(session, actor, flt, None, flt.since)
    return session.exec(query(func.count(func.distinct(Order.contact_id)))).one()


def upsell_rate(session: Session, actor: Actor, flt: KpiFilter) -> Metric:
    """Upsell and cross-sell rate: the share of existing customers who bought more, or another product, in the period.

    Existing customers: those with an order before the period. Upsell: an existing customer whose revenue in the
    period exceeds their revenue in the previous period (flt.previous(): the previous month or quarter; a customer
    back after a pause counts). Cross-sell: an existing customer who ordered in the period a product they had never ordered
    before it. Formula: |upsold ∪ cross-sold| / |existing|; no existing customer gives None.
    detail: upsell and cross_sell counts and rates."""
    usable, owners = cube_owners(session, actor, flt)
    n = month_span(flt)
    if usable and n in PERIOD_MONTHS:
        counts = cube.totals(session, [f"upsold_{n}", f"cross_sold_{n}", f"upsold_or_cross_sold_{n}"], owners,
                             since=flt.start, until=flt.start + DAY).iloc[0]
        n_up, n_cross, n_any = (int(round(v)) for v in counts)
        base = int(round(cube.total(session, "customers", owners, until=flt.start)))
    else:
        c = _per_customer(session, actor, flt).c
        existing_now = or_(c.earlier == 1, c.previous_orders > 0)
        upsold, crossed = and_(existing_now, c.current > c.previous), and_(existing_now, c.new_product == 1)
        n_up, n_cross, n_any = session.exec(select(_count_if(upsold), _count_if(crossed),
                                                   _count_if(or_(upsold, crossed)))).one()
        base = _existing(session, actor, flt)
    return Metric("upsell_rate", "Upsell and cross-sell rate", ratio(n_any, base), "ratio", n_any, base,
                  {"upsell": int(n_up), "cross_sell": int(n_cross), "upsell_rate": ratio(n_up, base),
                   "cross_sell_rate": ratio(n_cross, base)})


def upsell_rate_records(session: Session, actor: Actor, flt: KpiFilter) -> pd.DataFrame:
    """Existing customers who ordered in the period, with previous and current revenue and whether they were upsold
    or cross-sold."""
    frame = _customer_rows(session, actor, flt)
    frame = frame[((frame.earlier == 1) | (frame.previous_orders > 0)) & (frame.current_orders > 0)].copy()
    frame["upsell"] = frame.current > frame.previous
    frame["cross_sell"] = frame.new_product == 1
    return frame[["contact_id", "name", "previous", "current", "upsell", "cross_sell"]].reset_index(drop=True)


# --- 3. net new revenue -------------------------------------------------------------------------------------------

def _movement(c) -> dict[str, ColumnElement]:
    """How each customer's revenue moved from the previous period to this one, as amounts (all ≥ 0 but signs)."""
    both = and_(c.previous_orders > 0, c.current_orders > 0)
    return {"new": _sum_if(and_(c.previous_orders == 0, c.earlier == 0), c.current),
            "reactivated": _sum_if(and_(c.previous_orders == 0, c.earlier == 1), c.current),
            "expansion": _sum_if(and_(both, c.current > c.previous), c.current - c.previous),
            "contraction": _sum_if(and_(both, c.current < c.previous), c.previous - c.current),
            "churned": _sum_if(c.current_orders == 0, c.previous)}


def net_new_revenue(session: Session, actor: Actor, flt: KpiFilter) -> Metric:
    """Net new revenue: new + reactivated + expansion − contraction − churned, against the previous period.

    Per customer, previous = revenue in flt.previous(), current = revenue in the period. new: first order ever in the
    period (current). reactivated: ordered before the previous period, not in it, and in this one (current).
    expansion / contraction: ordered in both, current − previous when positive / previous − current when positive.
    churned: ordered in the previous period but not in this one (previous). "Churned revenue" in the issue's
    new + expansion − churned is contraction + churned here. The sum equals current − previous revenue of the
    customers, so nothing is left unexplained. detail: the five parts and both periods' revenue."""
    usable, owners = cube_owners(session, actor, flt)
    n = month_span(flt)
    if usable and n in PERIOD_MONTHS:
        moves = cube.totals(session, [f"rev_{name}_{n}" for name in MOVEMENTS], owners, since=flt.start,
                            until=flt.start + DAY).iloc[0]
        detail = {name: float(v) for name, v in zip(MOVEMENTS, moves)}
        detail["previous_revenue"] = cube.total(session, "revenue", owners, since=flt.previous().start,
                                                until=flt.start)
        detail["revenue"] = cube.total(session, "revenue", owners, since=flt.start, until=flt.until.date())
    else:
        c = _per_customer(session, actor, flt).c
        parts = _movement(c)
        values = session.exec(select(*parts.values(), func.coalesce(func.sum(c.previous), 0.0),
                                      func.coalesce(func.sum(c.current), 0.0))).one()
        detail = {name: float(v) for name, v in zip([*parts, "previous_revenue", "revenue"], values)}
    value = (detail["new"] + detail["reactivated"] + detail["expansion"] - detail["contraction"]
             - detail["churned"])
    return Metric("net_new_revenue", "Net new revenue", value, "money", detail=detail)


def _customer_rows(session: Session, actor: Actor, flt: KpiFilter) -> pd.DataFrame:
    """The per-customer movement rows, with the contact's name."""
    c = _per_customer(session, actor, flt).c
    result = session.exec(select(c.contact_id, (Contact.first_name + " " + Contact.last_name).label("name"),
                                 c.previous, c.current, c.previous_orders, c.current_orders, c.earlier,
                                 c.new_product).join(Contact, Contact.id == c.contact_id).order_by(c.contact_id))
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def net_new_revenue_records(session: Session, actor: Actor, flt: KpiFilter) -> pd.DataFrame:
    """Customers who ordered in the previous period or this one: previous, current, change and movement."""
    frame = _customer_rows(session, actor, flt)
    both = (frame.previous_orders > 0) & (frame.current_orders > 0)
    frame["movement"] = "flat"
    frame.loc[(frame.previous_orders == 0) & (frame.earlier == 0), "movement"] = "new"
    frame.loc[(frame.previous_orders == 0) & (frame.earlier == 1), "movement"] = "reactivated"
    frame.loc[both & (frame.current > frame.previous), "movement"] = "expansion"
    frame.loc[both & (frame.current < frame.previous), "movement"] = "contraction"
    frame.loc[frame.current_orders == 0, "movement"] = "churned"
    frame["change"] = frame.current - frame.previous
    return frame[["contact_id", "name", "previous", "current", "change", "movement"]]


# --- 6. customer lifetime value -----------------------------------------------------------------------------------

def lifetime_value(session: Session, actor: Actor, flt: KpiFilter) -> Metric:
    """Historical customer lifetime value: the average revenue per customer to the end of the period.

    Formula: sum(order totals before until) / count(customers with an order before until). Revenue, not margin (no
    costs are recorded). No customer gives None. detail: orders and average order value."""
    usable, owners = cube_owners(session, actor, flt)
    if usable:
        sums = cube.totals(session, ["revenue", "customers", "orders"], owners, until=flt.until.date()).iloc[0]
        revenue, customers, orders = float(sums["revenue"]), int(round(sums["customers"])), int(round(sums["orders"]))
    else:
        query = _orders(session, actor, flt, None, flt.until)
        revenue, customers, orders = session.exec(query(func.coalesce(func.sum(Order.total), 0.0),
                                                        func.count(func.distinct(Order.contact_id)),
                                                        func.count())).one()
    return Metric("lifetime_value", "Customer lifetime value (to date)", ratio(float(revenue), customers), "money",
                  float(revenue), customers, {"orders": int(orders), "average_order": ratio(float(revenue), orders)})


def lifetime_value_records(session: Session, actor: Actor, flt: KpiFilter, limit: int | None = 1000) -> pd.DataFrame:
    """Customers by revenue to the end of the period, highest first (the first `limit`)."""
    query = _orders(session, actor, flt, None, flt.until)
    stmt = (query(Order.contact_id, (Contact.first_name + " " + Contact.last_name).label("name"),
                  func.sum(Order.total).label("revenue"), func.count().label("orders"),
                  func.min(Order.ordered_at).label("first_order"), func.max(Order.ordered_at).label("last_order"))
            .group_by(Order.contact_id, Contact.first_name, Contact.last_name)
            .order_by(func.sum(Order.total).desc(), Order.contact_id))
    result = session.exec(stmt.limit(limit) if limit else stmt)
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def predicted_lifetime_value(session: Session, actor: Actor, flt: KpiFilter) -> Metric:
    """Predicted lifetime value of a customer active now, by the retention formula (Gupta and Lehmann):

    CLV = m × (1 + d) / (1 + d − r), the value of m this year and m × r^t / (1 + d)^t in each later year t, where
    m = revenue in the year before `until` ÷ customers who ordered in that year, r = the share of the customers of
    the year before that who ordered again in the last year (retention), and d = DISCOUNT_RATE (10 %). Years are 365
    days. Needs two full years of order history (an order at least 730 days before until) and a customer in each
    year, else None. Revenue, not margin. detail: m, r, d and the customer counts."""
    year, before = flt.until - YEAR, flt.until - 2 * YEAR
    first = session.exec(select(func.min(Order.ordered_at)).where(*_revenue())).one()
    usable, owners = cube_owners(session, actor, flt)
    if usable:  # active at until = ordered in the last year; at year = ordered in the year before; retained = both
        recent = cube.active(session, owners, flt.until.date())
        prior = cube.active(session, owners, year.date())
        kept = cube.active(session, owners, flt.until.date(), "retained")
        revenue = cube.total(session, "revenue", owners, since=year.date(), until=flt.until.date())
    else:
        in_year = Order.ordered_at >= year
        query = _orders(session, actor, flt, before, flt.until)
        per = (query(Order.contact_id, func.max(case((in_year, 1), else_=0)).label("recent"),
                     func.max(case((in_year, 0), else_=1)).label("prior"), _sum_if(in_year).label("revenue"))
               .group_by(Order.contact_id)).subquery()
        recent, prior, kept, revenue = session.exec(select(
            _count_if(per.c.recent == 1), _count_if(per.c.prior == 1),
            _count_if(and_(per.c.prior == 1, per.c.recent == 1)), func.coalesce(func.sum(per.c.revenue), 0.0))).one()
    label = "Customer lifetime value (predicted)"
    if first is None or _naive(first) > _naive(before) or not recent or not prior:
        return Metric("predicted_lifetime_value", label, None, "money",
                      detail={"reason": "needs two full years of order history"})
    m, r = float(revenue) / recent, kept / prior
    value = m * (1 + DISCOUNT_RATE) / (1 + DISCOUNT_RATE - r)
    return Metric("predicted_lifetime_value", label, value, "money",
                  detail={"annual_revenue_per_customer": m, "retention": r, "discount_rate": DISCOUNT_RATE,
                          "customers_last_year": int(recent), "customers_year_before": int(prior)})


def _naive(moment: datetime) -> datetime:
    """SQLite returns naive UTC datetimes, PostgreSQL aware ones: compare them as naive UTC."""
    return moment.replace(tzinfo=None) if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


# --- revenue trend ------------------------------------------------------------------------------------------------

def _buckets(flt: KpiFilter, grain: Grain) -> list[datetime]:
    """The starts of the days, weeks (from flt.start) or calendar months that cover the period, then until."""
    starts, moment = [], flt.since
    while moment < flt.until:
        starts.append(moment)
        if grain == "month":
            moment = (moment.replace(day=1) + timedelta(days=32)).replace(day=1)
        else:
            moment += timedelta(days=1 if grain == "day" else 7)
    return starts + [flt.until]


def revenue_trend(session: Session, actor: Actor, flt: KpiFilter, grain: Grain = "month") -> pd.DataFrame:
    """Revenue per day, week (from flt.start) or calendar month of the period; the last bucket ends with the period.

    Columns: period_start (date), revenue, orders, customers (distinct); a row for every bucket, zero when empty."""
    if grain not in ("day", "week", "month"):
        raise ValueError(f"grain is day, week or month, not {grain!r}")
    bounds = _buckets(flt, grain)
    usable, owners = cube_owners(session, actor, flt)
    if usable and grain == "month" and month_span(flt):  # the cube counts buyers per whole calendar month
        days = cube.totals(session, ["revenue", "orders", "buyers"], owners, since=flt.start, until=flt.until.date(),
                           by="day")
        days["period_start"] = [d.replace(day=1) for d in days["day"]]
        per = days.groupby("period_start")[["revenue", "orders", "buyers"]].sum()
        out = pd.DataFrame({"period_start": [b.date() for b in bounds[:-1]]}).join(per, on="period_start").fillna(0)
        return out.rename(columns={"buyers": "customers"}).astype({"revenue": float, "orders": int, "customers": int})
    # A CASE over the bucket bounds reads the same on both databases. It is grouped in an outer query: PostgreSQL
    # does not match a GROUP BY expression whose parameters are bound apart from the SELECT's.
    bucket = case(*[(Order.ordered_at < end, i) for i, end in enumerate(bounds[1:])], else_=-1).label("bucket")
    rows = _orders(session, actor, flt, flt.since, flt.until)(bucket, Order.contact_id, Order.total).subquery()
    result = session.exec(select(rows.c.bucket, func.sum(rows.c.total), func.count(),
                                 func.count(func.distinct(rows.c.contact_id))).group_by(rows.c.bucket))
    totals = {int(b): (float(revenue), int(n), int(c)) for b, revenue, n, c in result.all()}
    return pd.DataFrame([(start.date(), *totals.get(i, (0.0, 0, 0))) for i, start in enumerate(bounds[:-1])],
                        columns=["period_start", "revenue", "orders", "customers"])


METRICS = {
    "upsell_rate": upsell_rate,
    "net_new_revenue": net_new_revenue,
    "lifetime_value": lifetime_value,
    "predicted_lifetime_value": predicted_lifetime_value,
}
