"""Customer revenue KPIs on a hand-made data set; every number below is worked out by hand in the comments.

The period is October 2026 (since 2026-10-01 00:00, until 2026-11-01 00:00 UTC); the previous period is September.
Completed, live, dated orders of live contacts are revenue. P, Q and S live in Germany: the "DE" segment.

  contact  orders (date: total [products])
  P (DE)   2026-03-10: 100 [X]   09-15: 200 [X]   10-10: 300 [X]   10-12: 5000 [Y] deleted   undated: 888
  Q (DE)   2026-02-01: 50 [X]    09-20: 400 [X]   10-05: 100 [Y]   10-03: 700 [Y] cancelled
  R        2026-01-15: 80 [Y]    09-01 00:00: 150 [X]  (September's first moment)
  S (DE)   2026-10-01 00:00: 250 [Y]  (first order ever, at October's first moment)
  T        2025-12-01: 60 [X]    10-20: 90 [X]  (nothing in September)
  U        2026-05-01: 70 [X]    11-01 00:00: 999 [Y]  (at until: November)
  V        deleted contact, 10-07: 1234;   and an order with no contact, 10-08: 777
"""
from datetime import UTC, date, datetime

import pytest

from crm.db import read_scope, session_scope
from crm.kpis import revenue as kpis
from crm.kpis.base import KpiFilter
from crm.models import Contact, Order, OrderLine, Product
from crm.segments.service import create_segment
from tests.factories import actor, make_user

pytestmark = pytest.mark.usefixtures("kpi_source")  # every test on the KPI cube and on the base tables

OCT = KpiFilter(date(2026, 10, 1), date(2026, 10, 31))
DEC = KpiFilter(date(2026, 12, 1), date(2026, 12, 31))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def customer(s, name, orders, *, country=None, deleted=False) -> int:
    """orders: (ISO date or None, total, product or None, status, deleted)."""
    contact = Contact(first_name=name, last_name="Buyer", country=country,
                      deleted_at=at("2026-10-30T00:00") if deleted else None)
    s.add(contact)
    s.flush()
    for when, total, product, status, gone in orders:
        order = Order(contact_id=contact.id, ordered_at=at(when) if when else None, total=total, status=status,
                      deleted_at=at("2026-10-30T00:00") if gone else None)
        s.add(order)
        s.flush()
        if product is not None:
            s.add(OrderLine(order_id=order.id, product_id=product, unit_price=total))
    return contact.id


def o(when, total, product=None, status="completed", deleted=False):
    return when, total, product, status, deleted


@pytest.fixture
def world(engine):
    admin = make_user(engine, "admin")
    with session_scope(engine) as s:
        x, y = Product(name="Lantern"), Product(name="Yurt")
        s.add_all([x, y])
        s.flush()
        x, y = x.id, y.id
        ids = {"P": customer(s, "P", [o("2026-03-10T09:00", 100, x), o("2026-09-15T09:00", 200, x),
                                      o("2026-10-10T09:00", 300, x), o("2026-10-12T09:00", 5000, y, deleted=True),
                                      o(None, 888)], country="DE"),
               "Q": customer(s, "Q", [o("2026-02-01T09:00", 50, x), o("2026-09-20T09:00", 400, x),
                                      o("2026-10-05T09:00", 100, y), o("2026-10-03T09:00", 700, y, "cancelled")],
                             country="DE"),
               "R": customer(s, "R", [o("2026-01-15T09:00", 80, y), o("2026-09-01T00:00", 150, x)]),
               "S": customer(s, "S", [o("2026-10-01T00:00", 250, y)], country="DE"),
               "T": customer(s, "T", [o("2025-12-01T09:00", 60, x), o("2026-10-20T09:00", 90, x)]),
               "U": customer(s, "U", [o("2026-05-01T09:00", 70, x), o("2026-11-01T00:00", 999, y)]),
               "V": customer(s, "V", [o("2026-10-07T09:00", 1234, x)], deleted=True)}
        s.add(Order(contact_id=None, ordered_at=at("2026-10-08T09:00"), total=777))
        segment = create_segment(session=s, actor=actor(engine, admin), name="Germany", definition={
            "groups": [{"conditions": [{"field": "country", "op": "equals", "value": "DE"}]}]})
    de = KpiFilter(OCT.start, OCT.end, segment_id=segment.id)
    return engine, admin, ids, de


def run(engine, who, fn, flt=OCT, *args):
    with read_scope(engine) as s:
        return fn(s, actor(engine, who), flt, *args)


def test_net_new_revenue(world):
    engine, admin, ids, de = world
    # new S 250 (its first order, at October's first moment) + reactivated T 90 + expansion P 300 − 200 = 100
    # − contraction Q 400 − 100 = 300 − churned R 150 (its order at September's first moment) = −10;
    # that is October's 740 (300 + 100 + 250 + 90) − September's 750 (200 + 400 + 150).
    m = run(engine, admin, kpis.net_new_revenue)
    assert (m.value, m.unit) == (pytest.approx(-10), "money")
    assert m.detail == {"new": 250, "reactivated": 90, "expansion": 100, "contraction": 300, "churned": 150,
                        "previous_revenue": 750, "revenue": 740}
    records = run(engine, admin, kpis.net_new_revenue_records).set_index("name")
    assert records.movement.to_dict() == {"P Buyer": "expansion", "Q Buyer": "contraction", "R Buyer": "churned",
                                          "S Buyer": "new", "T Buyer": "reactivated"}
    assert records.change.sum() == pytest.approx(-10)
    # Germany (P, Q, S): 250 + 100 − 300 = 50.
    assert run(engine, admin, kpis.net_new_revenue, de).value == pytest.approx(50)
    # December: U's November order (at November's first moment) churns: −999. March 2027: nothing moves: 0.
    assert run(engine, admin, kpis.net_new_revenue, DEC).value == -999
    assert run(engine, admin, kpis.net_new_revenue, KpiFilter(date(2027, 3, 1), date(2027, 3, 31))).value == 0


def test_upsell_and_cross_sell_rate(world):
    engine, admin, ids, de = world
    # Existing customers (an order before October 1): P, Q, R, T, U = 5; S's first order is at October's first
    # moment. Upsell: P (300 > 200), T (90 > 0, back after a pause). Cross-sell: Q (Yurt, never bought by Q before;
    # R's earlier Yurt is someone else's, P's Yurt order is deleted and Q's other is cancelled). 3 of 5.
    m = run(engine, admin, kpis.upsell_rate)
    assert (m.numerator, m.denominator, m.value) == (3, 5, pytest.approx(0.6))
    assert m.detail == {"upsell": 2, "cross_sell": 1, "upsell_rate": pytest.approx(0.4),
                        "cross_sell_rate": pytest.approx(0.2)}
    records = run(engine, admin, kpis.upsell_rate_records).set_index("name")
    assert records[["upsell", "cross_sell"]].to_dict("index") == {
        "P Buyer": {"upsell": True, "cross_sell": False}, "Q Buyer": {"upsell": False, "cross_sell": True},
        "T Buyer": {"upsell": True, "cross_sell": False}}
    # Germany: existing P and Q, both expanded: 2 of 2.
    assert run(engine, admin, kpis.upsell_rate, de).value == 1.0
    # Before any order: no existing customer, so no rate.
    assert run(engine, admin, kpis.upsell_rate, KpiFilter(date(2025, 1, 1), date(2025, 1, 31))).value is None


def test_lifetime_value(world):
    engine, admin, ids, de = world
    # To November 1: P 600, Q 550, R 230, S 250, T 150, U 70 (its November order is at until) = 1850 over 6
    # customers and 12 orders.
    m = run(engine, admin, kpis.lifetime_value)
    assert (m.value, m.numerator, m.denominator) == (pytest.approx(1850 / 6), 1850, 6)
    assert m.detail == {"orders": 12, "average_order": pytest.approx(1850 / 12)}
    top = run(engine, admin, kpis.lifetime_value_records)
    assert list(top.name[:2]) == ["P Buyer", "Q Buyer"] and list(top.revenue[:2]) == [600, 550]
    # Germany: (600 + 550 + 250) / 3.
    assert run(engine, admin, kpis.lifetime_value, de).value == pytest.approx(1400 / 3)
    assert run(engine, admin, kpis.lifetime_value, KpiFilter(date(2020, 1, 1), date(2020, 1, 31))).value is None
    # The first order is 2025-12-01, less than two years before November 1: no prediction.
    assert run(engine, admin, kpis.predicted_lifetime_value).value is None


def test_predicted_lifetime_value(engine):
    admin = make_user(engine, "admin")
    with session_scope(engine) as s:
        customer(s, "A1", [o("2024-10-15T09:00", 50), o("2025-03-01T09:00", 100), o("2026-03-01T09:00", 200)])
        customer(s, "A2", [o("2025-06-01T09:00", 100)])
        customer(s, "A3", [o("2026-06-01T09:00", 400)])
    # Last year [2025-11-01, 2026-11-01): A1 200, A3 400: m = 600 / 2 = 300. The year before [2024-11-01,
    # 2025-11-01): A1, A2; A1 came back: r = 1 / 2. History starts 2024-10-15, before 2024-11-01.
    # CLV = 300 × 1.1 / (1.1 − 0.5) = 550.
    m = run(engine, admin, kpis.predicted_lifetime_value)
    assert m.value == pytest.approx(550)
    assert m.detail == {"annual_revenue_per_customer": 300, "retention": 0.5, "discount_rate": 0.1,
                        "customers_last_year": 2, "customers_year_before": 2}
    # Historical: (350 + 100 + 400) / 3.
    assert run(engine, admin, kpis.lifetime_value).value == pytest.approx(850 / 3)


def test_revenue_trend(world):
    engine, admin, ids, de = world
    months = run(engine, admin, kpis.revenue_trend, KpiFilter(date(2026, 9, 1), date(2026, 10, 31)))
    assert [tuple(r) for r in months.itertuples(index=False)] == [
        (date(2026, 9, 1), 750, 3, 3), (date(2026, 10, 1), 740, 4, 4)]
    # Weeks from October 1: S 250 + Q 100; P 300; T 90; nothing; a three-day stub, nothing.
    weeks = run(engine, admin, kpis.revenue_trend, OCT, "week")
    assert list(weeks.period_start) == [date(2026, 10, d) for d in (1, 8, 15, 22, 29)]
    assert list(weeks.revenue) == [350, 300, 90, 0, 0] and list(weeks.orders) == [2, 1, 1, 0, 0]
    assert list(run(engine, admin, kpis.revenue_trend, de, "month").revenue) == [650]  # 300 + 100 + 250
    assert set(kpis.METRICS) == {"upsell_rate", "net_new_revenue", "lifetime_value", "predicted_lifetime_value"}


def test_a_rep_counts_only_the_customers_they_may_read(world):
    engine, admin, ids, _ = world
    rep = make_user(engine, "rep", team="North")
    with session_scope(engine) as s:  # the rep's team owns P and Q only
        for name in ("P", "Q"):
            s.get(Contact, ids[name]).owner_id = rep
    # P 600 + Q 550 over 2 customers, as in test_lifetime_value but for these two
    assert run(engine, rep, kpis.lifetime_value).value == pytest.approx(1150 / 2)
    assert run(engine, admin, kpis.lifetime_value).value == pytest.approx(1850 / 6)
