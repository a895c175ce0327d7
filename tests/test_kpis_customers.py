"""Customer KPIs (crm.kpis.customers) on a small hand-made data set: every expected number is worked out by hand in
the comments next to the data. The period is March 2025: since 2025-03-01 00:00 UTC, until 2025-04-01 00:00 UTC."""
import json
from datetime import UTC, date, datetime

import pytest

from crm.db import read_scope, session_scope
from crm.kpis.base import KpiFilter
from crm.kpis.customers import (
    METRICS, cac_by_channel, cac_records, churn_rate, churn_records, customer_acquisition_cost, email_list_growth,
    email_list_growth_by_list, email_list_growth_records, mean_time_to_resolve, mean_time_to_resolve_records,
    month_shares, net_promoter_score, nps_records, nps_trend,
)
from crm.models import Contact, ListSubscriptionEvent, MarketingSpend, Order, SurveyResponse, Ticket, User
from crm.segments.service import create_segment
from tests.factories import actor, make_user

pytestmark = pytest.mark.usefixtures("kpi_source")  # every test on the KPI cube and on the base tables

MARCH = KpiFilter(date(2025, 3, 1), date(2025, 3, 31))
JANUARY = KpiFilter(date(2025, 1, 1), date(2025, 1, 31))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# Contacts: (owner, source). Rita is a rep without a team, so she reads only her own contacts (Ann, Hal, Ned).
# Gus is deleted: nothing of his ever counts. The segment "Ads" is the contacts whose source is ads: Ann, Ben, Jo.
PEOPLE = {"Ann": ("rita", "ads"), "Ben": ("admin", "ads"), "Cat": ("admin", "web"), "Dan": ("admin", "web"),
          "Eve": ("admin", None), "Gus": ("admin", "ads"), "Hal": ("rita", "web"), "Ivy": ("admin", "partner"),
          "Jo": ("admin", "ads"), "Kim": ("admin", "web"), "Lu": ("admin", "web"), "Mo": ("admin", "web"),
          "Ned": ("rita", "web"), "Ole": ("admin", "web")}


@pytest.fixture
def world(engine, admin):
    rita = make_user(engine, "rep", name="Rita")
    sam = make_user(engine, "rep", team="Support", name="Sam")
    owners = {"admin": admin.id, "rita": rita}
    with session_scope(engine) as s:
        c = {}
        for name, (owner, source) in PEOPLE.items():
            contact = Contact(first_name=name, last_name="Test", owner_id=owners[owner], source=source,
                              deleted_at=at("2025-01-02 00:00") if name == "Gus" else None)
            s.add(contact)
            s.flush()
            c[name] = contact.id
        s.add_all(_orders(c) + _spend() + _subscriptions(c) + _answers(c) + _tickets(c, owners, sam))
        segment = create_segment(session=s, actor=admin, name="Ads", definition={
            "groups": [{"conditions": [{"field": "source", "op": "equals", "value": "ads"}]}]})
    return {"contacts": c, "admin": admin, "rita": actor(engine, rita), "sam": sam, "segment": segment.id}


def _orders(c):
    def order(who, when, status="completed", deleted=False):
        return Order(contact_id=c[who], ordered_at=at(when) if when else None, status=status, total=100.0,
                     deleted_at=at("2025-03-15 00:00") if deleted else None)

    return [
        # CAC, March. New = first counted order in the period: Ann (ads), Dan (web), Hal (web) → 3.
        order("Ann", "2025-03-01 00:00"),  # exactly at since: new
        order("Ben", "2024-06-01 00:00"), order("Ben", "2025-03-10 00:00"),  # ordered before: not new
        order("Cat", "2025-04-01 00:00"),  # exactly at until: not new in March
        order("Dan", "2025-01-05 00:00", status="cancelled"), order("Dan", "2025-03-20 00:00"),  # cancelled ignored: new
        order("Eve", None), order("Eve", "2025-03-05 00:00"),  # an undated order counts as earlier: not new
        order("Gus", "2025-03-03 00:00"), order("Gus", "2024-05-01 00:00"),  # deleted contact
        order("Hal", "2025-03-31 23:59:59"),  # last second of the period: new
        order("Ivy", "2025-03-12 00:00", deleted=True),  # deleted order: Ivy is not new
        # Churn, March: a customer at t has an order in [t − 365 d, t). At since, the window is
        # [2024-03-01, 2025-03-01): Ben, Jo, Lu, Mo, Ned → 5. At until it is [2024-04-01, 2025-04-01): Jo and Lu
        # have no order there → lost 2. Churn 2/5 = 0.4.
        order("Jo", "2024-03-01 00:00"),  # exactly at the start window's first moment: customer; lost
        order("Kim", "2024-02-29 23:59:59"),  # a second too early: not a customer
        order("Lu", "2024-03-31 12:00"),  # customer; lost (the end window starts 2024-04-01)
        order("Mo", "2024-04-01 00:00"),  # customer; exactly at the end window's start: not lost
        order("Ned", "2024-12-15 00:00"),  # customer; not lost
        order("Ole", "2025-02-28 23:00", deleted=True),  # deleted order: not a customer
    ]


def _spend():
    # March has 31 days. For the whole of March: ads 3100, web 620; February and April are outside.
    return [MarketingSpend(channel="ads", month=date(2025, 2, 1), amount=1000.0),
            MarketingSpend(channel="ads", month=date(2025, 3, 1), amount=3100.0),
            MarketingSpend(channel="web", month=date(2025, 3, 1), amount=620.0),
            MarketingSpend(channel="ads", month=date(2025, 4, 1), amount=999.0)]


def _subscriptions(c):
    def event(who, action, when, list_name="Newsletter"):
        return ListSubscriptionEvent(contact_id=c[who], list_name=list_name, action=action, occurred_at=at(when))

    return [
        # Newsletter at since: Ann, Cat → size 2. In March: subscribed Dan, Ben → 2; unsubscribed Cat → 1.
        event("Ann", "subscribe", "2025-01-10 00:00"),
        event("Ben", "subscribe", "2025-01-11 00:00"), event("Ben", "unsubscribe", "2025-02-01 00:00"),
        event("Cat", "subscribe", "2025-02-01 00:00"), event("Cat", "subscribe", "2025-02-15 00:00"),  # repeat
        event("Dan", "subscribe", "2025-03-01 00:00"),  # exactly at since: counts
        event("Eve", "subscribe", "2025-04-01 00:00"),  # exactly at until: does not
        event("Cat", "unsubscribe", "2025-03-10 00:00"),
        event("Ann", "subscribe", "2025-03-12 00:00"),  # already subscribed: no change
        event("Ben", "subscribe", "2025-03-15 00:00"),  # back again: a new subscriber
        event("Hal", "unsubscribe", "2025-03-20 00:00"),  # never subscribed: no change
        event("Gus", "subscribe", "2025-01-05 00:00"), event("Gus", "unsubscribe", "2025-03-05 00:00"),  # deleted
        # Product: Jo at since → size 1; Ned subscribes in March → 1.
        event("Jo", "subscribe", "2025-02-20 00:00", "Product"),
        event("Ned", "subscribe", "2025-03-25 00:00", "Product"),
    ]


def _answers(c):
    def answer(who, score, when, kind="nps"):
        return SurveyResponse(contact_id=c[who], kind=kind, score=score, answered_at=at(when))

    return [
        # March, each contact's latest: Ann 10, Ben 9 (promoters), Cat 7, Hal 8 (passives), Dan 6 (detractor).
        answer("Ann", 10, "2025-03-01 00:00"),  # exactly at since
        answer("Ben", 10, "2025-02-10 00:00"), answer("Ben", 3, "2025-03-02 00:00"), answer("Ben", 9, "2025-03-20 00:00"),
        answer("Cat", 7, "2025-03-05 00:00"), answer("Cat", 0, "2025-04-01 00:00"),  # exactly at until: out
        answer("Dan", 6, "2025-03-31 23:59:59"), answer("Dan", 1, "2025-03-10 00:00", kind="csat"),  # CSAT ignored
        answer("Eve", 2, "2025-02-28 23:59:59"),  # February
        answer("Gus", 0, "2025-03-10 00:00"),  # deleted contact
        answer("Hal", 8, "2025-03-15 00:00"),
    ]


def _tickets(c, owners, sam):
    def ticket(who, owner, opened, resolved, status="resolved", deleted=False):
        return Ticket(contact_id=c[who] if who else None, owner_id=owner, subject=f"Help {who}", status=status,
                      opened_at=at(opened), resolved_at=at(resolved) if resolved else None,
                      deleted_at=at("2025-03-25 00:00") if deleted else None)

    admin, rita = owners["admin"], owners["rita"]
    return [
        # Resolved in March: 24 h (Ann), 12 h (Ben), 30 h (no contact), 3 h (Hal) → mean 69 / 4 = 17.25 h.
        ticket("Ann", rita, "2025-02-28 00:00", "2025-03-01 00:00"),  # resolved exactly at since: 24 h
        ticket("Ben", sam, "2025-03-10 00:00", "2025-03-10 12:00"),  # 12 h, owned by Sam of team Support
        ticket("Cat", admin, "2025-03-30 00:00", "2025-04-01 00:00"),  # resolved exactly at until: out
        ticket("Dan", admin, "2025-03-01 00:00", "2025-03-05 00:00", status="open"),  # reopened: out
        ticket(None, admin, "2025-03-20 00:00", "2025-03-21 06:00"),  # 30 h, no contact: only unrestricted views
        ticket("Ben", admin, "2025-03-01 00:00", "2025-03-02 00:00", deleted=True),  # deleted ticket
        ticket("Gus", admin, "2025-03-01 00:00", "2025-03-02 00:00"),  # deleted contact
        ticket("Hal", admin, "2025-03-01 00:00", "2025-03-01 03:00"),  # 3 h
        ticket("Eve", admin, "2025-03-15 00:00", None, status="pending"),  # unresolved
    ]


def run(engine, function, who, flt=MARCH, **kwargs):
    with read_scope(engine) as s:
        return function(s, who, flt, **kwargs)


def with_segment(world, flt=MARCH) -> KpiFilter:
    return KpiFilter(flt.start, flt.end, segment_id=world["segment"])


# --- 7 CAC ----------------------------------------------------------------------------------------------------------

def test_cac_divides_spend_by_customers_whose_first_order_is_in_the_period(engine, world):
    m = run(engine, customer_acquisition_cost, world["admin"])
    assert (m.numerator, m.denominator, m.value, m.unit) == (3720.0, 3, 1240.0, "money")
    assert m.detail["by_channel"]["ads"] == {"spend": 3100.0, "new_customers": 1, "cac": 3100.0}
    assert m.detail["by_channel"]["web"] == {"spend": 620.0, "new_customers": 2, "cac": 310.0}
    assert "note" not in m.detail
    new = run(engine, cac_records, world["admin"])
    assert list(new["name"]) == ["Ann Test", "Dan Test", "Hal Test"]


def test_cac_for_a_reader_of_some_contacts_and_a_segment_says_spend_is_company_wide(engine, world):
    rita = run(engine, customer_acquisition_cost, world["rita"])  # Ann (ads) and Hal (web): 3720 / 2
    assert (rita.denominator, rita.value) == (2, 1860.0) and "company-wide" in rita.detail["note"]
    ads = run(engine, cac_by_channel, world["admin"], with_segment(world))  # Ann only; web had spend, no customer
    assert list(ads["channel"]) == ["ads", "web"] and list(ads["new_customers"]) == [1, 0]
    assert ads["cac"].iloc[0] == 3100.0 and ads["cac"].isna().iloc[1]


def test_cac_prorates_partial_months_and_is_none_without_new_customers(engine, world):
    assert month_shares(KpiFilter(date(2025, 2, 15), date(2025, 3, 15))) == {date(2025, 2, 1): 14 / 28,
                                                                            date(2025, 3, 1): 15 / 31}
    late_march = run(engine, cac_by_channel, world["admin"], KpiFilter(date(2025, 3, 16), date(2025, 3, 31)))
    # 16 of March's 31 days: ads 3100 × 16/31 = 1600, web 620 × 16/31 = 320; new: Dan and Hal (web).
    assert late_march.set_index("channel")["spend"].to_dict() == pytest.approx({"ads": 1600.0, "web": 320.0})
    m = run(engine, customer_acquisition_cost, world["admin"], JANUARY)  # no spend, no new customers
    assert (m.value, m.denominator) == (None, 0)


# --- 8 email-list growth --------------------------------------------------------------------------------------------

def test_list_growth_counts_only_changes_of_subscription(engine, world):
    m = run(engine, email_list_growth, world["admin"])
    # Newsletter: (2 − 1) / 2; Product: (1 − 0) / 1; all: (3 − 1) / 3.
    assert (m.numerator, m.denominator, m.value, m.unit) == (2, 3, pytest.approx(2 / 3), "ratio")
    assert m.detail["by_list"]["Newsletter"] == {"size_at_start": 2, "subscribed": 2, "unsubscribed": 1,
                                                 "growth": 0.5}
    assert run(engine, email_list_growth, world["admin"], list_name="Product").value == 1.0
    records = run(engine, email_list_growth_records, world["admin"], list_name="Newsletter")
    assert [(r.contact_id, r.action) for r in records.itertuples()] == [
        (world["contacts"]["Dan"], "subscribe"), (world["contacts"]["Cat"], "unsubscribe"),
        (world["contacts"]["Ben"], "subscribe")]


def test_list_growth_scope_segment_and_empty_list(engine, world):
    rita = run(engine, email_list_growth_by_list, world["rita"]).set_index("list_name")
    # Rita: Newsletter has Ann at the start and no change (Hal's unsubscribe changes nothing) → 0; Product starts
    # empty with Ned joining → growth undefined.
    assert rita.loc["Newsletter", "growth"] == 0.0 and pd_isna(rita.loc["Product", "growth"])
    assert run(engine, email_list_growth, world["rita"]).value == 1.0  # (1 − 0) / 1
    ads = run(engine, email_list_growth, world["admin"], with_segment(world))  # Ann, Jo at start; Ben joins
    assert (ads.numerator, ads.denominator, ads.value) == (1, 2, 0.5)
    empty = run(engine, email_list_growth, world["admin"], JANUARY)  # nobody subscribed on 1 January
    assert (empty.value, empty.numerator, empty.denominator) == (None, 2, 0)  # Ann and Ben joined; Gus is deleted


def pd_isna(value) -> bool:
    return value != value or value is None


# --- 9 NPS ----------------------------------------------------------------------------------------------------------

def test_nps_takes_each_contacts_latest_answer_in_the_period(engine, world):
    m = run(engine, net_promoter_score, world["admin"])
    assert (m.value, m.numerator, m.denominator, m.unit) == (20.0, 1, 5, "score")  # 100 × (2 − 1) / 5
    assert m.detail == {"promoters": 2, "passives": 2, "detractors": 1}
    records = run(engine, nps_records, world["admin"])
    assert dict(zip(records["name"], records["score"])) == {"Ann Test": 10, "Cat Test": 7, "Hal Test": 8,
                                                            "Ben Test": 9, "Dan Test": 6}
    assert run(engine, net_promoter_score, world["rita"]).value == 50.0  # Ann 10, Hal 8
    assert run(engine, net_promoter_score, world["admin"], with_segment(world)).value == 100.0  # Ann 10, Ben 9
    assert run(engine, net_promoter_score, world["admin"], JANUARY).value is None


def test_nps_trend_has_a_row_per_month(engine, world):
    trend = run(engine, nps_trend, world["admin"], KpiFilter(date(2025, 1, 20), date(2025, 3, 31)))
    assert list(trend["month"]) == [date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)]
    assert list(trend["responses"]) == [0, 2, 5]  # February: Ben 10, Eve 2 → (1 − 1) / 2 = 0
    assert pd_isna(trend["nps"].iloc[0]) and list(trend["nps"].iloc[1:]) == [0.0, 20.0]


# --- 10 churn -------------------------------------------------------------------------------------------------------

def test_churn_is_customers_lost_over_customers_at_the_start(engine, world):
    m = run(engine, churn_rate, world["admin"])
    assert (m.numerator, m.denominator, m.value, m.unit) == (2, 5, 0.4, "ratio")
    records = run(engine, churn_records, world["admin"])
    c = world["contacts"]
    assert dict(zip(records["contact_id"], records["lost"])) == {c["Ben"]: False, c["Jo"]: True, c["Lu"]: True,
                                                                 c["Mo"]: False, c["Ned"]: False}
    assert run(engine, churn_rate, world["rita"]).value == 0.0  # Ned, not lost
    assert run(engine, churn_rate, world["admin"], with_segment(world)).value == 0.5  # Ben stays, Jo lost
    assert run(engine, churn_rate, world["admin"], KpiFilter(date(2023, 1, 1), date(2023, 1, 31))).value is None


# --- 11 MTTR --------------------------------------------------------------------------------------------------------

def test_mttr_averages_tickets_resolved_in_the_period(engine, world):
    m = run(engine, mean_time_to_resolve, world["admin"])
    assert (m.value, m.denominator, m.unit) == (pytest.approx(17.25), 4, "hours")
    hours = run(engine, mean_time_to_resolve_records, world["admin"])["hours"]
    assert list(hours) == pytest.approx([24.0, 3.0, 12.0, 30.0])  # by resolved_at
    assert run(engine, mean_time_to_resolve, world["rita"]).value == pytest.approx(13.5)  # Ann 24, Hal 3
    assert run(engine, mean_time_to_resolve, world["admin"], with_segment(world)).value == pytest.approx(18.0)
    assert run(engine, mean_time_to_resolve, world["admin"], JANUARY).value is None


def test_a_deleted_contact_of_a_narrowed_reader_never_counts(engine, world):
    """Rita's facts are checked against her live contacts in one go: a deleted contact of hers adds nothing."""
    with session_scope(engine) as s:
        pam = Contact(first_name="Pam", last_name="Test", owner_id=world["rita"].id, source="web",
                      deleted_at=at("2025-01-02 00:00"))
        s.add(pam)
        s.flush()
        s.add_all([SurveyResponse(contact_id=pam.id, kind="nps", score=0, answered_at=at("2025-03-10 00:00")),
                   Ticket(contact_id=pam.id, owner_id=world["rita"].id, subject="Help Pam", status="resolved",
                          opened_at=at("2025-03-01 00:00"), resolved_at=at("2025-03-11 00:00"))])
    # As without Pam: NPS Ann 10, Hal 8 → 50; MTTR Ann 24 h, Hal 3 h → 13.5. Counting Pam's 0 and 240 h would
    # give NPS (1 − 1) / 3 = 0 and MTTR 267 / 3 = 89.
    assert run(engine, net_promoter_score, world["rita"]).value == 50.0
    assert run(engine, mean_time_to_resolve, world["rita"]).value == pytest.approx(13.5)
    assert run(engine, net_promoter_score, world["admin"]).value == 20.0  # nor for the admin


def test_mttr_team_and_owner_filters_apply_to_the_ticket_owner(engine, world):
    rita_id = world["rita"].id
    assert run(engine, mean_time_to_resolve, world["admin"], KpiFilter(MARCH.start, MARCH.end, owner_id=rita_id)
               ).value == pytest.approx(24.0)
    with read_scope(engine) as s:
        team = s.get(User, world["sam"]).team_id
    assert run(engine, mean_time_to_resolve, world["admin"], KpiFilter(MARCH.start, MARCH.end, team_id=team)
               ).value == pytest.approx(12.0)


def test_every_headline_metric_is_registered(engine, world):
    assert set(METRICS) == {"cac", "email_list_growth", "nps", "churn_rate", "mttr"}
    for key, function in METRICS.items():
        metric = run(engine, function, world["admin"])
        assert metric.key == key
        json.dumps(metric.detail)  # plain values only: pages may cache and show it


def test_nps_trend_of_a_single_month(engine, world):
    """A one-month period has no month boundary inside it (the CASE that buckets answers has no WHEN)."""
    trend = run(engine, nps_trend, world["admin"], KpiFilter(date(2025, 3, 1), date(2025, 3, 31)))
    assert list(trend["month"]) == [date(2025, 3, 1)] and list(trend["responses"]) == [5]
