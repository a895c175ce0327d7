"""The segment compiler: every operator and field kind against a hand-made data set whose answers are written
below, on SQLite and PostgreSQL; random condition trees; injection strings; errors that name the part."""
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, text
from sqlmodel import select

from crm.db import read_scope, session_scope
from crm.errors import ValidationFailed
from crm.models import (
    Activity, BehaviorEvent, Company, Contact, ContactTag, CustomFieldDef, CustomFieldValue, Deal, Order, OrderLine,
    PredictionScore, Product, SurveyResponse, Tag,
)
from crm.segments.compiler import compile_definition
from crm.segments.definition import OPS_BY_KIND
from crm.segments.fields import FIXED
from tests.factories import actor, make_user, stage_named

NOW = datetime.now(UTC)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


@pytest.fixture
def world(engine):
    """Five contacts; Eve is deleted and never matches. Owners: Ann and Bob → rep East, Cara → rep West, Dan none."""
    east = make_user(engine, "rep", team="East", name="Rep East")
    west = make_user(engine, "rep", team="West", name="Rep West")
    marketer = make_user(engine, "marketer", name="Mia Marketer")
    with session_scope(engine) as s:
        acme = Company(name="Acme", industry="Retail", employees=120, country="US")
        beta = Company(name="Beta", industry="Software", employees=10, country="DE")
        core, analytics = Product(name="Core"), Product(name="Analytics")
        vip, churn = Tag(name="VIP"), Tag(name="Churn risk")
        plan = CustomFieldDef(entity="contact", key="plan", label="Plan", field_type="text",
                              view_roles=["admin", "manager", "rep", "marketer"], edit_roles=["admin"])
        renewal = CustomFieldDef(entity="company", key="renewal", label="Renewal", field_type="date",
                                 view_roles=["admin", "manager", "rep", "marketer"], edit_roles=["admin"])
        s.add_all([acme, beta, core, analytics, vip, churn, plan, renewal])
        s.flush()
        people = {
            "Ann": Contact(first_name="Ann", last_name="Archer", email="ann@acme.com", lifecycle_stage="customer",
                           country="US", city="Boston", email_opt_in=True, lead_score=80, company_id=acme.id,
                           owner_id=east, created_at=ago(100), source="web"),
            "Bob": Contact(first_name="Bob", last_name="Baker", email="bob@beta.de", lifecycle_stage="lead",
                           country="DE", city="Berlin", do_not_contact=True, lead_score=20, company_id=beta.id,
                           owner_id=east, created_at=ago(10), source="Referral"),
            "Cara": Contact(first_name="Cara", last_name="Cole", email=None, lifecycle_stage="customer",
                            country="US", email_opt_in=True, owner_id=west, created_at=ago(400), job_title="CEO"),
            "Dan": Contact(first_name="Dan", last_name="Dunn", email="dan@acme.com", lifecycle_stage="mql",
                           country="GB", lead_score=55, company_id=acme.id, created_at=ago(5)),
            "Eve": Contact(first_name="Eve", last_name="Evans", lifecycle_stage="customer", country="US",
                           deleted_at=ago(1), created_at=ago(50)),
        }
        s.add_all(people.values())
        s.flush()
        c = {k: v.id for k, v in people.items()}
        s.add_all([ContactTag(contact_id=c["Ann"], tag_id=vip.id), ContactTag(contact_id=c["Cara"], tag_id=vip.id),
                   ContactTag(contact_id=c["Cara"], tag_id=churn.id), ContactTag(contact_id=c["Eve"], tag_id=vip.id)])
        s.add_all([CustomFieldValue(field_id=plan.id, record_id=c["Ann"], value_text="Gold"),
                   CustomFieldValue(field_id=plan.id, record_id=c["Bob"], value_text="silver"),
                   CustomFieldValue(field_id=renewal.id, record_id=acme.id, value_date=(NOW + timedelta(days=20)).date())])
        events = [("Ann", "web_visit", 2), ("Ann", "web_visit", 9), ("Ann", "web_visit", 40), ("Ann", "email_click", 5),
                  ("Bob", "web_visit", 100), ("Dan", "web_visit", 1), ("Dan", "web_visit", 2), ("Dan", "web_visit", 3),
                  ("Dan", "web_visit", 29), ("Eve", "web_visit", 1)]
        s.add_all(BehaviorEvent(contact_id=c[n], kind=k, occurred_at=ago(d)) for n, k, d in events)
        s.add(BehaviorEvent(contact_id=c["Dan"], kind="offer_viewed", offer="Spring promo", occurred_at=ago(10)))
        s.add(Activity(kind="call", subject="Intro", contact_id=c["Dan"], occurred_at=ago(3)))
        orders = [("Ann", 20, 100.0, "completed", core), ("Ann", 200, 50.0, "completed", core),
                  ("Cara", 400, 300.0, "completed", analytics), ("Cara", 3, 999.0, "cancelled", core),
                  ("Eve", 1, 10.0, "completed", core)]
        for name, days, total, status, product in orders:
            order = Order(contact_id=c[name], ordered_at=ago(days), total=total, status=status)
            s.add(order)
            s.flush()
            s.add(OrderLine(order_id=order.id, product_id=product.id, quantity=1, unit_price=total))
        qualification, proposal = stage_named(s, "Qualification"), stage_named(s, "Proposal")
        won = stage_named(s, "Closed won")
        s.add_all([Deal(title="Ann's deal", pipeline_id=qualification.pipeline_id, stage_id=qualification.id,
                        contact_id=c["Ann"], status="open", amount=100),
                   Deal(title="Dan's deal", pipeline_id=proposal.pipeline_id, stage_id=proposal.id,
                        contact_id=c["Dan"], status="open", amount=100),
                   Deal(title="Bob's win", pipeline_id=won.pipeline_id, stage_id=won.id, contact_id=c["Bob"],
                        status="won", amount=100, closed_at=ago(30))])
        answers = [("Ann", "nps", 10, 30), ("Bob", "nps", 6, 60), ("Bob", "nps", 8, 5), ("Cara", "nps", 9, 10),
                   ("Ann", "csat", 4, 3), ("Dan", "csat", 2, 3)]
        s.add_all(SurveyResponse(contact_id=c[n], kind=k, score=v, answered_at=ago(d)) for n, k, v, d in answers)
        s.add_all([PredictionScore(model="cross-sell", model_version="v1", entity="contact", record_id=c["Ann"],
                                   product_id=analytics.id, probability=0.7),
                   PredictionScore(model="cross-sell", model_version="v1", entity="contact", record_id=c["Dan"],
                                   product_id=analytics.id, probability=0.2)])
        ids = {"contacts": c, "core": core.id, "analytics": analytics.id, "vip": vip.id, "churn": churn.id,
               "east": east, "west": west, "qualification": qualification.id, "proposal": proposal.id,
               "pipeline": qualification.pipeline_id}
    return engine, actor(engine, marketer), ids


def matching(engine, who, definition) -> set[str]:
    with read_scope(engine) as s:
        condition = compile_definition(s, who, definition, now=NOW)
        return set(s.exec(select(Contact.first_name).where(condition)).all())


def one(field, op, value=None, **extra) -> dict:
    return {"groups": [{"conditions": [{"field": field, "op": op, "value": value, **extra}]}]}


# (field, op, value, extra, expected first names) — worked out by hand from the fixture above.
CASES = [
    # text: case-insensitive; negatives include empty values (Cara has no email)
    ("email", "equals", "ANN@acme.com", {}, {"Ann"}),
    ("email", "not_equals", "ann@acme.com", {}, {"Bob", "Cara", "Dan"}),
    ("email", "contains", "@ACME", {}, {"Ann", "Dan"}),
    ("email", "starts_with", "b", {}, {"Bob"}),
    ("email", "is_empty", None, {}, {"Cara"}),
    ("email", "is_not_empty", None, {}, {"Ann", "Bob", "Dan"}),
    ("source", "in", ["WEB", "referral"], {}, {"Ann", "Bob"}),
    ("source", "not_in", ["web"], {}, {"Bob", "Cara", "Dan"}),
    ("job_title", "contains", "%", {}, set()),  # LIKE wildcards are escaped, so "%" matches only a real "%"
    # choice
    ("lifecycle_stage", "equals", "customer", {}, {"Ann", "Cara"}),
    ("lifecycle_stage", "in", ["lead", "mql"], {}, {"Bob", "Dan"}),
    ("lifecycle_stage", "not_in", ["customer"], {}, {"Bob", "Dan"}),
    ("country", "equals", "us", {}, {"Ann", "Cara"}),
    ("country", "not_equals", "US", {}, {"Bob", "Dan"}),
    # consent
    ("email_opt_in", "is", True, {}, {"Ann", "Cara"}),
    ("do_not_contact", "is", False, {}, {"Ann", "Cara", "Dan"}),
    # numbers: Cara has no lead score
    ("lead_score", "gte", 55, {}, {"Ann", "Dan"}),
    ("lead_score", "lt", 55, {}, {"Bob"}),
    ("lead_score", "between", 20, {"upper": 55}, {"Bob", "Dan"}),
    ("lead_score", "equals", 80, {}, {"Ann"}),
    ("lead_score", "is_empty", None, {}, {"Cara"}),
    # dates: created 100, 10, 400 and 5 days ago
    ("created_at", "in_last", None, {"days": 30}, {"Bob", "Dan"}),
    ("created_at", "more_than_days_ago", None, {"days": 90}, {"Ann", "Cara"}),
    ("created_at", "before", (NOW - timedelta(days=200)).date().isoformat(), {}, {"Cara"}),
    ("created_at", "after", (NOW - timedelta(days=20)).date().isoformat(), {}, {"Bob", "Dan"}),
    ("created_at", "between", (NOW - timedelta(days=150)).date().isoformat(),
     {"upper": (NOW - timedelta(days=50)).date().isoformat()}, {"Ann"}),
    # the contact's company
    ("company.industry", "equals", "retail", {}, {"Ann", "Dan"}),
    ("company.industry", "not_equals", "Retail", {}, {"Bob", "Cara"}),
    ("company.employees", "gt", 50, {}, {"Ann", "Dan"}),
    ("company.country", "in", ["DE"], {}, {"Bob"}),
    # owner and team
    ("team", "equals", "East", {}, {"Ann", "Bob"}),
    ("team", "not_equals", "East", {}, {"Cara", "Dan"}),
    ("owner", "is_empty", None, {}, {"Dan"}),
    # tags
    ("tags", "has_any", ["vip"], {}, {"Ann", "Cara"}),
    ("tags", "has_all", ["VIP", "Churn risk"], {}, {"Cara"}),
    ("tags", "has_none", ["VIP"], {}, {"Bob", "Dan"}),
    # behaviour: days since the last web visit Ann 2, Bob 100, Dan 1, Cara never
    ("days_since_web_visit", "lt", 7, {}, {"Ann", "Dan"}),
    ("days_since_web_visit", "gte", 30, {}, {"Bob", "Cara"}),
    ("days_since_web_visit", "between", 50, {"upper": 150}, {"Bob"}),
    ("days_since_web_visit", "is_empty", None, {}, {"Cara"}),
    ("days_since_email_click", "lte", 5, {}, {"Ann"}),
    ("days_since_activity", "lt", 7, {}, {"Dan"}),
    ("web_visits", "gte", 3, {"days": 30}, {"Dan"}),  # Ann 2, Dan 4 in the last 30 days
    ("web_visits", "lt", 1, {"days": 30}, {"Bob", "Cara"}),  # zero visits counts, without rows
    ("offer_viewed", "has_any", ["Spring promo"], {}, {"Dan"}),
    ("offer_viewed", "has_any", ["Spring promo"], {"days": 7}, set()),
    # commerce: Ann 2 orders (150), Cara 1 completed (300; the cancelled one does not count), Bob and Dan none
    ("owns_product", "has_any", ["Core"], {}, {"Ann"}),
    ("owns_product", "has_none", ["Core"], {}, {"Bob", "Cara", "Dan"}),
    ("order_count", "gte", 2, {}, {"Ann"}),
    ("order_count", "equals", 0, {}, {"Bob", "Dan"}),
    ("order_total", "gt", 200, {}, {"Cara"}),
    ("order_total", "lte", 150, {}, {"Ann", "Bob", "Dan"}),
    ("last_order_date", "in_last", None, {"days": 30}, {"Ann"}),
    ("last_order_date", "is_empty", None, {}, {"Bob", "Dan"}),
    # deals
    ("open_deal_stage", "has_any", ["Proposal"], {}, {"Dan"}),
    ("won_deals", "gte", 1, {}, {"Bob"}),
    # surveys: latest NPS Ann 10, Bob 8 (earlier 6), Cara 9; CSAT Ann 4, Dan 2
    ("nps_category", "equals", "promoter", {}, {"Ann", "Cara"}),
    ("nps_category", "equals", "detractor", {}, set()),
    ("nps_category", "in", ["passive", "detractor"], {}, {"Bob"}),
    ("nps_category", "is_empty", None, {}, {"Dan"}),
    ("csat", "lte", 3, {}, {"Dan"}),
    # model scores
    ("cross_sell", "gte", 0.5, {"param": "Analytics"}, {"Ann"}),
    ("cross_sell", "is_not_empty", None, {"param": "Analytics"}, {"Ann", "Dan"}),
    # custom fields: the contact's own and its company's
    ("cf.contact.plan", "equals", "GOLD", {}, {"Ann"}),
    ("cf.contact.plan", "is_empty", None, {}, {"Cara", "Dan"}),
    ("cf.company.renewal", "in_next", None, {"days": 30}, {"Ann", "Dan"}),
    # the remaining operators of each kind
    ("owner", "is_not_empty", None, {}, {"Ann", "Bob", "Cara"}),
    ("order_count", "between", 1, {"upper": 1}, {"Cara"}),
    ("last_order_date", "in_next", None, {"days": 30}, set()),  # orders are in the past
    ("last_order_date", "is_not_empty", None, {}, {"Ann", "Cara"}),
    ("days_since_web_visit", "gt", 1.5, {}, {"Ann", "Bob", "Cara"}),  # Dan's last visit was a day ago
    ("days_since_web_visit", "is_not_empty", None, {}, {"Ann", "Bob", "Dan"}),
]


@pytest.mark.parametrize("field, op, value, extra, expected", CASES,
                         ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_each_operator_and_field_kind(world, field, op, value, extra, expected):
    engine, who, _ = world
    assert matching(engine, who, one(field, op, value, **extra)) == expected


def test_every_operator_of_every_kind_is_checked_above():
    checked = {(FIXED[f].kind if f in FIXED else "custom", op) for f, op, *_ in CASES}
    missing = {(kind, op) for kind, ops in OPS_BY_KIND.items() for op in ops} - checked
    assert missing == set(), missing


def test_groups_and_within_or_across(world):
    engine, who, _ = world
    definition = {"groups": [
        {"conditions": [{"field": "lifecycle_stage", "op": "equals", "value": "customer"},
                        {"field": "country", "op": "equals", "value": "US"},
                        {"field": "tags", "op": "has_any", "value": ["Churn risk"]}]},
        {"conditions": [{"field": "do_not_contact", "op": "is", "value": True}]}]}
    assert matching(engine, who, definition) == {"Cara", "Bob"}
    assert matching(engine, who, {"groups": []}) == {"Ann", "Bob", "Cara", "Dan"}  # everyone live


def test_a_rep_counts_only_the_contacts_they_may_read(world):
    engine, _, ids = world
    with read_scope(engine) as s:
        from crm.permissions import load_actor
        rep = load_actor(s, ids["west"])
    # reps read their team's contacts: Rep West's team owns only Cara
    assert matching(engine, rep, {"groups": []}) == {"Cara"}


@pytest.mark.parametrize("definition, part, words", [
    (one("nope", "equals", "x"), "groups[0].conditions[0].field", "not a field"),
    (one("lead_score", "contains", "x"), "groups[0].conditions[0].op", "not one of"),
    (one("lead_score", "gte", "lots"), "groups[0].conditions[0].value", "not a number"),
    (one("country", "equals", "Germany"), "groups[0].conditions[0].value", "two-letter"),
    (one("lifecycle_stage", "in", ["vip"]), "groups[0].conditions[0].value", "not one of"),
    (one("tags", "has_any", ["No such tag"]), "groups[0].conditions[0].value", "no tag named"),
    (one("created_at", "in_last", None, days=0), "groups[0].conditions[0].days", "whole number"),
    (one("lead_score", "between", 50, upper=10), "groups[0].conditions[0].upper", "below"),
    (one("cross_sell", "gte", 0.5), "groups[0].conditions[0].param", "choose the product"),
    (one("web_visits", "gte", 2), "groups[0].conditions[0].days", "whole number"),
    ({"groups": [{"conditions": [{"field": "email", "op": "equals", "value": "x", "sql": "1=1"}]}]},
     "groups.0.conditions.0.sql", "Extra inputs"),
])
def test_bad_conditions_name_the_part_and_the_reason(world, definition, part, words):
    engine, who, _ = world
    with pytest.raises(ValidationFailed) as caught, read_scope(engine) as s:
        compile_definition(s, who, definition)
    assert caught.value.field == part and words in caught.value.reason


INJECTIONS = ["'; DROP TABLE contact; --", "\" OR 1=1 --", "%' OR '1'='1", "Robert'); DELETE FROM contact;--",
              "\\x00", "∅ 名前 نام", "_%", "' UNION SELECT password_hash FROM app_user --"]


def test_injection_strings_stay_values(world):
    engine, who, _ = world
    for evil in INJECTIONS:
        for field, op in (("email", "equals"), ("email", "contains"), ("first_name", "starts_with"),
                          ("source", "in"), ("offer_viewed", "has_any"), ("cf.contact.plan", "not_equals")):
            value = [evil] if op in ("in", "has_any") else evil
            found = matching(engine, who, one(field, op, value))
            assert found <= {"Ann", "Bob", "Cara", "Dan"}
            if op == "not_equals":
                assert found == {"Ann", "Bob", "Cara", "Dan"}
            elif op != "not_equals":
                assert found == set()
    with read_scope(engine) as s:
        assert s.exec(select(func.count()).select_from(Contact)).one() == 5  # nothing dropped or deleted
        assert s.exec(text("SELECT count(*) FROM app_user")).one()[0] >= 3


# --- random condition trees ------------------------------------------------------------------------------------

SAMPLE_VALUES = {"text": st.sampled_from(["a", "Ann", "x'y", "%", "_", "名前", "'; DROP TABLE contact; --"]),
                 "number": st.one_of(st.integers(-5, 200), st.floats(0, 1, allow_nan=False)),
                 "count": st.integers(0, 5), "days_since": st.integers(0, 500),
                 "date": st.dates(date(2000, 1, 1), date(2040, 1, 1)).map(date.isoformat),
                 "bool": st.booleans()}


@st.composite
def conditions(draw, names: dict):
    key = draw(st.sampled_from(sorted(k for k, f in FIXED.items() if "contact" in f.entities)))
    field = FIXED[key]
    op = draw(st.sampled_from(OPS_BY_KIND[field.kind]))
    cond = {"field": key, "op": op}
    if field.param:
        cond["param"] = names["products"][0]
    if field.needs_days or op in ("in_last", "in_next", "more_than_days_ago"):
        cond["days"] = draw(st.integers(1, 3650))
    if op in ("is_empty", "is_not_empty", "in_last", "in_next", "more_than_days_ago"):
        return cond
    if field.kind == "set":
        cond["value"] = draw(st.lists(st.sampled_from(names[field.values]), min_size=1, max_size=3))
    elif field.kind == "choice":
        pool = field.choices or {"countries": ("US", "de", "GB"), "users": names["users"],
                                 "teams": names["teams"]}[field.values]
        choice = st.sampled_from(list(pool))
        cond["value"] = draw(st.lists(choice, min_size=1, max_size=3)) if op in ("in", "not_in") else draw(choice)
    else:
        value = SAMPLE_VALUES[field.kind]
        cond["value"] = draw(st.lists(value, min_size=1, max_size=3)) if op in ("in", "not_in") else draw(value)
        if op == "between":
            low, high = sorted([cond["value"], draw(value)], key=str if field.kind == "date" else float)
            cond["value"], cond["upper"] = low, high
    return cond


def test_a_thousand_random_condition_trees_compile_and_run(world):
    engine, who, ids = world
    names = {"products": ["Core", "Analytics"], "tags": ["VIP", "Churn risk"], "offers": ["Spring promo", "x'y"],
             "pipelines": [ids["pipeline"]], "stages": [ids["qualification"], ids["proposal"]],
             "users": [ids["east"], ids["west"]], "teams": ["East", "West"]}
    everyone = {"Ann", "Bob", "Cara", "Dan"}
    runs = []

    @settings(max_examples=1000, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.lists(st.lists(conditions(names), min_size=1, max_size=4), min_size=1, max_size=3))
    def run(tree):
        definition = {"groups": [{"conditions": group} for group in tree]}
        found = matching(engine, who, definition)
        assert found <= everyone
        # OR across groups: the whole matches exactly the union of its groups
        assert found == set().union(*(matching(engine, who, {"groups": [g]}) for g in definition["groups"]))
        runs.append(1)

    run()
    assert len(runs) >= 1000


COMPANY_CASES = [
    ("industry", "equals", "RETAIL", {}, {"Acme"}),
    ("industry", "not_in", ["Retail"], {}, {"Beta"}),
    ("employees", "lt", 50, {}, {"Beta"}),
    ("country", "in", ["DE"], {}, {"Beta"}),
    ("domain", "is_empty", None, {}, {"Acme", "Beta"}),
    ("tags", "has_none", ["VIP"], {}, {"Acme", "Beta"}),
    ("cf.company.renewal", "in_next", None, {"days": 30}, {"Acme"}),
    ("order_count", "equals", 0, {}, {"Acme", "Beta"}),  # the fixture's orders name contacts, not companies
]


@pytest.mark.parametrize("field, op, value, extra, expected", COMPANY_CASES,
                         ids=[f"company-{c[0]}-{c[1]}" for c in COMPANY_CASES])
def test_company_segments(world, field, op, value, extra, expected):
    engine, who, _ = world
    definition = {"entity": "company", **one(field, op, value, **extra)}
    with read_scope(engine) as s:
        condition = compile_definition(s, who, definition, now=NOW)
        assert set(s.exec(select(Company.name).where(condition)).all()) == expected
