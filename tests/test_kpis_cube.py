"""The KPI cube (crm/kpis/cube.py) against the definitions computed from the base tables.

Random customers, orders, order lines and list events are written through every path a write can take (the ORM,
UPDATE and DELETE statements, the importer's bulk insert), then every cube-backed KPI is computed both ways for
months and quarters, for an admin and for a team manager. The cube kept up to date write by write must also equal
the cube rebuilt from scratch."""
import math
import random
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import delete, select, update

from crm.db import read_scope, session_scope
from crm.imports.writing import bulk_insert
from crm.kpis import cube, customers, revenue
from crm.kpis.base import KpiFilter
from crm.models import Contact, ListSubscriptionEvent, Order, OrderLine, Product
from crm.models.kpi import KpiCube
from tests.factories import actor, make_team, make_user

MONTHS = [KpiFilter(date(2025, m, 1), (date(2025, m + 1, 1) if m < 12 else date(2026, 1, 1)) - timedelta(days=1))
          for m in range(1, 13)]
QUARTERS = [KpiFilter(date(2025, m, 1), (date(2025, m + 3, 1) if m < 10 else date(2026, 1, 1)) - timedelta(days=1))
            for m in (1, 4, 7, 10)]
METRICS = [revenue.upsell_rate, revenue.net_new_revenue, revenue.lifetime_value, revenue.predicted_lifetime_value,
           customers.churn_rate, customers.email_list_growth]


def moment(rng: random.Random) -> datetime:
    """Anywhere in 2023–2025, often exactly at midnight (the edge of a day, month or quarter)."""
    day = datetime(2023, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(3 * 365))
    return day if rng.random() < 0.3 else day + timedelta(seconds=rng.randrange(86_400))


def write_world(engine, rng: random.Random, owners: list[int]) -> None:
    with session_scope(engine) as s:
        products = [Product(name=f"P{i}") for i in range(4)]
        s.add_all(products)
        s.flush()
        contacts = [Contact(first_name=f"C{i}", last_name="X", owner_id=rng.choice(owners + [None]),
                            source=rng.choice(["web", "event", None])) for i in range(40)]
        s.add_all(contacts)
        s.flush()
        for c in contacts:
            for _ in range(rng.randrange(7)):
                order = Order(contact_id=c.id, ordered_at=moment(rng) if rng.random() > 0.05 else None,
                              total=rng.choice([10, 25.5, 40, 100]), status=rng.choice(["completed"] * 5 + ["cancelled"]))
                s.add(order)
                s.flush()
                for product in rng.sample(products, rng.randrange(1, 3)):
                    s.add(OrderLine(order_id=order.id, product_id=product.id, unit_price=1))
            for _ in range(rng.randrange(5)):
                s.add(ListSubscriptionEvent(contact_id=c.id, list_name=rng.choice(["news", "offers"]),
                                            action=rng.choice(["subscribe", "unsubscribe"]), occurred_at=moment(rng)))
    ids = [c.id for c in contacts]
    with session_scope(engine) as s:  # statements, not objects
        s.execute(update(Contact).where(Contact.id.in_(rng.sample(ids, 8))).values(owner_id=rng.choice(owners)))
        s.execute(update(Contact).where(Contact.id.in_(rng.sample(ids, 3))).values(deleted_at=datetime.now(UTC)))
        moved = s.execute(select(Order.id).where(Order.contact_id == ids[0])).scalars().all()
        s.execute(update(Order).where(Order.id.in_(moved)).values(contact_id=ids[1]))
        s.execute(update(Order).where(Order.contact_id == ids[2]).values(deleted_at=datetime.now(UTC)))
        s.execute(delete(ListSubscriptionEvent).where(ListSubscriptionEvent.contact_id == ids[3]))
    with session_scope(engine) as s:  # the importer's bulk insert
        made = bulk_insert(s, Order.__table__, [
            {"contact_id": rng.choice(ids), "ordered_at": moment(rng), "total": 33.0, "status": "completed",
             "currency": "EUR", "version": 1, "created_at": datetime.now(UTC), "updated_at": datetime.now(UTC)}
            for _ in range(15)], returning=True)
        bulk_insert(s, OrderLine.__table__, [{"order_id": i, "product_id": products[3].id, "quantity": 1,
                                              "unit_price": 33.0, "version": 1, "created_at": datetime.now(UTC),
                                              "updated_at": datetime.now(UTC)} for i in made])
    with session_scope(engine) as s:  # a rolled-back write leaves the cube alone
        try:
            with s.begin_nested():
                s.add(Order(contact_id=ids[5], ordered_at=datetime(2025, 5, 5, tzinfo=UTC), total=10**6,
                            status="completed"))
                s.flush()
                raise RuntimeError("changed my mind")
        except RuntimeError:
            pass


def cube_rows(engine) -> dict:
    with read_scope(engine) as s:
        rows = s.execute(select(KpiCube.measure, KpiCube.owner_id, KpiCube.day, KpiCube.key, KpiCube.value)).all()
    return {(m, o, d, k): round(v, 6) for m, o, d, k, v in rows if abs(v) > 1e-9}


def same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) or isinstance(b, float):
        return (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b, abs_tol=1e-6))
    return a == b


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_cube_gives_the_same_numbers_as_the_base_tables(engine, seed, monkeypatch):
    rng = random.Random(seed)
    team = make_team(engine, "North")
    manager = make_user(engine, "manager", team="North")
    owners = [make_user(engine, "rep", team="North"), make_user(engine, "rep", team="North"),
              make_user(engine, "rep")]
    admin = make_user(engine, "admin")
    assert team
    write_world(engine, rng, owners)
    compared = 0
    for who in (actor(engine, admin), actor(engine, manager)):
        for flt in MONTHS + QUARTERS:
            for metric in METRICS:
                with read_scope(engine) as s:
                    monkeypatch.setattr(cube, "ENABLED", True)
                    fast = metric(s, who, flt)
                    monkeypatch.setattr(cube, "ENABLED", False)
                    slow = metric(s, who, flt)
                assert same(fast.value, slow.value), (metric.__name__, flt, who.role, fast, slow)
                assert same(fast.numerator, slow.numerator) and same(fast.denominator, slow.denominator)
                assert same(fast.detail, slow.detail), (metric.__name__, flt, fast.detail, slow.detail)
                compared += 1
            with read_scope(engine) as s:
                monkeypatch.setattr(cube, "ENABLED", True)
                fast = revenue.revenue_trend(s, who, flt)
                monkeypatch.setattr(cube, "ENABLED", False)
                assert fast.equals(revenue.revenue_trend(s, who, flt))
    assert compared == 2 * 16 * len(METRICS)
    kept = cube_rows(engine)
    with session_scope(engine) as s:
        cube.rebuild(s)
    assert kept == cube_rows(engine) and len(kept) > 100


def test_the_cube_is_read_for_whole_months_and_not_for_other_periods(engine, admin, monkeypatch):
    with session_scope(engine) as s:
        c = Contact(first_name="A", last_name="B")
        s.add(c)
        s.flush()
        s.add_all([Order(contact_id=c.id, ordered_at=datetime(2025, 1, 5, tzinfo=UTC), total=10, status="completed"),
                   Order(contact_id=c.id, ordered_at=datetime(2025, 2, 5, tzinfo=UTC), total=30, status="completed")])

    def no_tables(*args, **kwargs):
        raise AssertionError("read the base tables")

    monkeypatch.setattr(revenue, "_per_customer", no_tables)
    with read_scope(engine) as s:
        february = revenue.net_new_revenue(s, admin, KpiFilter(date(2025, 2, 1), date(2025, 2, 28)))
        assert february.value == 20 and february.detail["expansion"] == 20  # from the cube
        with pytest.raises(AssertionError, match="base tables"):  # 1–27 February is not whole months
            revenue.net_new_revenue(s, admin, KpiFilter(date(2025, 2, 1), date(2025, 2, 27)))


def test_the_use_cases_keep_the_cube_equal_to_a_rebuild(engine, admin, tmp_path):
    """Imports (create, update, revert), bulk owner changes, deleting and restoring a contact: after each, the cube
    kept write by write equals the cube rebuilt from scratch."""
    from crm.contacts import assign_owner, delete_contact, get_contact, restore_contact
    from crm.imports.revert import revert_import
    from tests.test_imports import csv, run

    rep = make_user(engine, "rep", name="Rita Rep")

    def check(step: str) -> None:
        kept = cube_rows(engine)
        with session_scope(engine) as s:
            cube.rebuild(s)
        assert cube_rows(engine) == kept, step

    run(engine, "products", csv("Name,Price", "Lamp,10", "Desk,250"), who=admin, tmp=tmp_path)
    run(engine, "contacts", csv("Email,First name,Owner", "ann@example.com,Ann,Rita Rep", "bob@example.com,Bob,"),
        who=admin, tmp=tmp_path)
    orders = run(engine, "orders", csv("Order ID,Customer email,Product,Qty,Order date",
                                       "O1,ann@example.com,Lamp,2,2025-01-05", "O2,ann@example.com,Desk,1,2025-02-05",
                                       "O3,bob@example.com,Lamp,1,2025-02-06"), who=admin, tmp=tmp_path)
    assert orders.created == 3 and len(cube_rows(engine)) > 10
    check("orders imported")
    moved = run(engine, "orders", csv("Order ID,Customer email,Product,Qty,Order date",
                                      "O3,ann@example.com,Lamp,1,2025-03-06"), who=admin, tmp=tmp_path)
    assert moved.updated == 1
    check("an order moved to another contact and month by a re-import")
    with session_scope(engine) as s:
        revert_import(session=s, actor=admin, job_id=moved.job_id)
    check("the re-import reverted")
    with read_scope(engine) as s:
        ann = s.execute(select(Contact.id).where(Contact.email == "ann@example.com")).scalar_one()
        bob = s.execute(select(Contact.id).where(Contact.email == "bob@example.com")).scalar_one()
    with session_scope(engine) as s:
        assign_owner(session=s, actor=admin, contact_ids=[bob], owner_id=rep)
    check("bulk owner change")
    with session_scope(engine) as s:
        delete_contact(session=s, actor=admin, contact_id=ann,
                       seen_version=get_contact(session=s, actor=admin, contact_id=ann).version)
    with read_scope(engine) as s:
        assert cube.total(s, "revenue", None) == 10  # only Bob's lamp is left
    check("contact deleted")
    with session_scope(engine) as s:
        restore_contact(session=s, actor=admin, contact_id=ann,
                        seen_version=get_contact(session=s, actor=admin, contact_id=ann, include_deleted=True).version)
    with read_scope(engine) as s:
        assert cube.total(s, "revenue", None) == 2 * 10 + 250 + 10
        assert cube.total(s, "revenue", [rep]) == 2 * 10 + 250 + 10  # Ann from the import, Bob since the change
    check("contact restored")
