"""Deal KPIs on a hand-made data set; every number below is worked out by hand in the comments.

The period is October 2026: since = 2026-10-01 00:00 UTC, until = 2026-11-01 00:00 UTC. Team East: reps A and B and
manager M; team West: rep C. Stage positions (New business): Qualification 0, Discovery 1, Proposal 2,
Negotiation 3, Closed won 4, Closed lost 5.

  deal  owner  pipeline  status          created           closed            amount  source    notes
  d1    A      NB        won             09-01 00:00       10-01 00:00       1000    web       closed at the first moment: counts
  d2    A      NB        won             10-05 12:00       10-15 12:00        500    referral
  d3    B      NB        lost (Price)    10-02 00:00       10-20 00:00        300    web
  d4    A      NB        won             10-10 00:00       11-01 00:00        800    web       closed at `until`: November
  d5    B      NB        lost            09-01 00:00       09-30 23:59        200    web       September
  d6    A      NB        open (reopened) 10-03 00:00       —                  400    web       was won; reopening cleared closed_at
  d7    C      NB        won             08-02 00:00       10-10 00:00        700    web
  d8    A      NB        won, deleted    10-01 00:00       10-12 00:00       9999    web       never counts
  d9    C      NB        lost (No budget)10-01 00:00       10-25 00:00        100    —         created at the first moment
  d10   C      Renewals  won             10-14 00:00       10-15 00:00         50    partner
"""
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
from sqlmodel import select

from crm.db import read_scope, session_scope
from crm.errors import PermissionDenied
from crm.kpis import deals as kpis
from crm.kpis.base import KpiFilter
from crm.models import Deal, DealLineItem, DealStageHistory, LostReason, Pipeline, Product
from tests.factories import actor, make_team, make_user, stage_named

OCT = KpiFilter(date(2026, 10, 1), date(2026, 10, 31))
DEC = KpiFilter(date(2026, 12, 1), date(2026, 12, 31))  # nothing closed or created: every ratio is None


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def add(s, owner, status, created, closed, amount, source="web", *, stage=None, pipeline="New business",
        reason=None, deleted=False, history=()) -> int:
    stage = stage or {"won": "Closed won", "lost": "Closed lost", "open": "Proposal"}[status]
    st = stage_named(s, stage, pipeline)
    reason_id = s.exec(select(LostReason.id).where(LostReason.name == reason)).one() if reason else None
    deal = Deal(title=f"{status} {amount}", pipeline_id=st.pipeline_id, stage_id=st.id, owner_id=owner,
                status=status, amount=amount, source=source, created_at=at(created),
                closed_at=at(closed) if closed else None, lost_reason_id=reason_id,
                deleted_at=at("2026-10-30T00:00") if deleted else None)
    s.add(deal)
    s.flush()
    # history: (stage name, entered, exited or None)
    for name, entered, exited in history:
        s.add(DealStageHistory(deal_id=deal.id, stage_id=stage_named(s, name, pipeline).id, entered_at=at(entered),
                               exited_at=at(exited) if exited else None))
    return deal.id


@pytest.fixture
def world(engine):
    ids = {"A": make_user(engine, "rep", team="East", name="Ann Rep"),
           "B": make_user(engine, "rep", team="East", name="Bob Rep"),
           "C": make_user(engine, "rep", team="West", name="Cy Rep"),
           "M": make_user(engine, "manager", team="East"), "admin": make_user(engine, "admin")}
    a, b, c = ids["A"], ids["B"], ids["C"]
    with session_scope(engine) as s:
        ids["d1"] = add(s, a, "won", "2026-09-01T00:00", "2026-10-01T00:00", 1000, history=[
            ("Qualification", "2026-09-01T00:00", "2026-09-11T00:00"),  # 10 days
            ("Proposal", "2026-09-11T00:00", "2026-10-01T00:00"),  # 20 days (skips Discovery, Negotiation)
            ("Closed won", "2026-10-01T00:00", None)])
        ids["d2"] = add(s, a, "won", "2026-10-05T12:00", "2026-10-15T12:00", 500, "referral", history=[
            ("Qualification", "2026-10-05T12:00", "2026-10-07T12:00"),  # 2 days
            ("Discovery", "2026-10-07T12:00", "2026-10-08T12:00"),  # 1 day
            ("Qualification", "2026-10-08T12:00", "2026-10-09T12:00"),  # back again: 1 more day, 3 in all
            ("Proposal", "2026-10-09T12:00", "2026-10-15T12:00"),  # 6 days
            ("Closed won", "2026-10-15T12:00", None)])
        ids["d3"] = add(s, b, "lost", "2026-10-02T00:00", "2026-10-20T00:00", 300, reason="Price", history=[
            ("Qualification", "2026-10-02T00:00", "2026-10-04T00:00"),  # 2 days
            ("Discovery", "2026-10-04T00:00", "2026-10-20T00:00"),  # 16 days; lost here
            ("Closed lost", "2026-10-20T00:00", None)])
        ids["d4"] = add(s, a, "won", "2026-10-10T00:00", "2026-11-01T00:00", 800, history=[
            ("Qualification", "2026-10-10T00:00", "2026-11-01T00:00")])  # November's: not in October's figures
        ids["d5"] = add(s, b, "lost", "2026-09-01T00:00", "2026-09-30T23:59", 200)
        ids["d6"] = add(s, a, "open", "2026-10-03T00:00", None, 400, history=[
            ("Proposal", "2026-10-03T00:00", "2026-10-10T00:00"), ("Closed won", "2026-10-10T00:00",
                                                                    "2026-10-11T00:00"),
            ("Proposal", "2026-10-11T00:00", None)])
        ids["d7"] = add(s, c, "won", "2026-08-02T00:00", "2026-10-10T00:00", 700, history=[
            ("Qualification", "2026-08-02T00:00", "2026-08-22T00:00"),  # 20 days
            ("Proposal", "2026-08-22T00:00", "2026-10-10T00:00"),  # 49 days
            ("Closed won", "2026-10-10T00:00", None)])
        ids["d8"] = add(s, a, "won", "2026-10-01T00:00", "2026-10-12T00:00", 9999, deleted=True, history=[
            ("Qualification", "2026-09-01T00:00", "2026-10-12T00:00")])
        ids["d9"] = add(s, c, "lost", "2026-10-01T00:00", "2026-10-25T00:00", 100, None, reason="No budget", history=[
            ("Qualification", "2026-10-01T00:00", "2026-10-25T00:00"),  # 24 days; lost here
            ("Closed lost", "2026-10-25T00:00", None)])
        ids["d10"] = add(s, c, "won", "2026-10-14T00:00", "2026-10-15T00:00", 50, "partner", pipeline="Renewals & upsell")
        x, y = Product(name="Lantern"), Product(name="Yurt")
        s.add_all([x, y])
        s.flush()
        ids["X"], ids["Y"] = x.id, y.id
        # d1 has two lines of X (counts once) and one of Y; d3: X; d7: Y; d2, d9, d10: no product.
        s.add_all([DealLineItem(deal_id=ids[d], product_id=p.id) for d, p in
                   [("d1", x), ("d1", x), ("d1", y), ("d3", x), ("d7", y), ("d8", x)]])
        ids["NB"] = s.exec(select(Pipeline.id).where(Pipeline.name == "New business")).one()
    ids["East"], ids["West"] = make_team(engine, "East"), make_team(engine, "West")
    return engine, ids


def run(engine, who, fn, flt=OCT, *args):
    with read_scope(engine) as s:
        return fn(s, actor(engine, who), flt, *args)


def test_close_rate_counts_the_period_edges_and_skips_reopened_and_deleted(world):
    engine, ids = world
    # Closed in October: won d1 (first moment), d2, d7, d10; lost d3, d9. Not d4 (at until), d5 (September),
    # d6 (reopened), d8 (deleted). 4 / 6.
    m = run(engine, ids["admin"], kpis.close_rate)
    assert (m.numerator, m.denominator) == (4, 6) and m.value == pytest.approx(4 / 6) and m.unit == "ratio"
    assert m.detail == {"won_amount": 1000 + 500 + 700 + 50, "lost_amount": 300 + 100}
    assert set(run(engine, ids["admin"], kpis.close_rate_records).id) == {ids[d] for d in
                                                                          ("d1", "d2", "d3", "d7", "d9", "d10")}
    # New business only: d10 leaves: 3 / 5.
    nb = KpiFilter(OCT.start, OCT.end, pipeline_id=ids["NB"])
    assert run(engine, ids["admin"], kpis.close_rate, nb).value == pytest.approx(3 / 5)
    assert run(engine, ids["admin"], kpis.close_rate, DEC).value is None


def test_cohort_close_rate(world):
    engine, ids = world
    # Created in October: d2 won, d3 lost, d4 won (in November, still this cohort's), d6 open, d9 (created at the
    # first moment) lost, d10 won; d8 deleted. 3 won of 6, 1 open.
    m = run(engine, ids["admin"], kpis.cohort_close_rate)
    assert (m.numerator, m.denominator, m.value, m.detail) == (3, 6, 0.5, {"open": 1})
    assert len(run(engine, ids["admin"], kpis.cohort_close_rate_records)) == 6
    assert run(engine, ids["admin"], kpis.cohort_close_rate, DEC).value is None


def test_a_rep_sees_their_team_and_no_further(world):
    engine, ids = world
    # Rep A (East: A, B): closed d1, d2 won, d3 lost: 2 / 3. Cohort: d2, d3, d4, d6: 2 won of 4.
    assert run(engine, ids["A"], kpis.close_rate).value == pytest.approx(2 / 3)
    assert run(engine, ids["A"], kpis.cohort_close_rate).value == 0.5
    assert run(engine, ids["M"], kpis.close_rate, KpiFilter(OCT.start, OCT.end, owner_id=ids["B"])).value == 0.0
    with pytest.raises(PermissionDenied):
        run(engine, ids["A"], kpis.close_rate, KpiFilter(OCT.start, OCT.end, team_id=ids["West"]))
    # Rep C's own team (West) by name: d7, d10 won, d9 lost.
    assert run(engine, ids["C"], kpis.close_rate, KpiFilter(OCT.start, OCT.end, team_id=ids["West"])).value == \
        pytest.approx(2 / 3)


def test_sales_cycle(world):
    engine, ids = world
    # Won in October, created → closed: d10 1, d2 10, d1 30, d7 69 days. Median (10 + 30) / 2 = 20;
    # mean 110 / 4 = 27.5; p75 at rank 2.25 (linear): 30 + 0.25 × 39 = 39.75.
    m = run(engine, ids["admin"], kpis.sales_cycle)
    assert (m.value, m.unit, m.denominator) == (pytest.approx(20), "days", 4)
    assert m.detail == {"mean_days": pytest.approx(27.5), "p75_days": pytest.approx(39.75)}
    # East: d1 30, d2 10: median 20.
    assert run(engine, ids["A"], kpis.sales_cycle).value == pytest.approx(20)
    records = run(engine, ids["admin"], kpis.sales_cycle_records)
    assert sorted(round(d, 6) for d in records.cycle_days) == [1, 10, 30, 69]
    assert run(engine, ids["admin"], kpis.sales_cycle, DEC).value is None


def test_stage_durations(world):
    engine, ids = world
    frame = run(engine, ids["admin"], kpis.stage_durations)
    got = {(r.stage, r.outcome): (r.deals, round(r.median_days, 6), round(r.p75_days, 6)) for r in frame.itertuples()}
    assert got == {
        ("Qualification", "won"): (3, 10, 15),  # d2 3, d1 10, d7 20: p75 = 10 + 0.5 × 10
        ("Discovery", "won"): (1, 1, 1),  # d2
        ("Proposal", "won"): (3, 20, 34.5),  # d2 6, d1 20, d7 49: p75 = 20 + 0.5 × 29
        ("Qualification", "lost"): (2, 13, 18.5),  # d3 2, d9 24: p75 = 2 + 0.75 × 22
        ("Discovery", "lost"): (1, 16, 16),  # d3
    }  # closed stages, d4 (November), d6 (open) and d8 (deleted) are not there
    boxes = {(r.stage, r.outcome): (round(r.p25_days, 6), r.whisker_low_days, r.whisker_high_days)
             for r in frame.itertuples()}
    assert boxes[("Qualification", "won")] == (6.5, 3, 20)  # 3 + 0.5 × 7; no day beyond 1.5 IQR (8.5) of the box
    assert boxes[("Proposal", "won")] == (13, 6, 49)  # 6 + 0.5 × 14
    assert run(engine, ids["admin"], kpis.stage_durations, DEC).empty


def test_a_box_whisker_stops_at_the_last_day_within_one_and_a_half_boxes():
    from crm.kpis.deals import box_of
    box = box_of(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))  # p25 2, p75 4: whiskers reach [2 − 3, 4 + 3] = [−1, 7]
    assert box == {"deals": 5, "median_days": 3.0, "p75_days": 4.0, "p25_days": 2.0, "whisker_low_days": 1.0,
                   "whisker_high_days": 4.0}  # 100 is an outlier: the whisker ends at 4


def test_funnel_and_losses(world):
    engine, ids = world
    nb = KpiFilter(OCT.start, OCT.end, pipeline_id=ids["NB"])
    funnel = run(engine, ids["admin"], kpis.conversion_funnel, nb).set_index("stage")
    # Closed in October in New business: won d1, d2, d7 (reach every stage); lost d3 (furthest Discovery), d9
    # (Qualification). Reached: Q 5, D 3 + 1 = 4, P 3, N 3; advanced = next stage's reached, then won (3).
    assert list(funnel.index) == ["Qualification", "Discovery", "Proposal", "Negotiation"]
    assert list(funnel.reached) == [5, 4, 3, 3] and list(funnel.advanced) == [4, 3, 3, 3]
    assert list(funnel.conversion) == [pytest.approx(0.8), pytest.approx(0.75), 1.0, 1.0]
    assert list(funnel.lost_here) == [1, 1, 0, 0] and list(funnel.lost_amount) == [100, 300, 0, 0]
    lost = run(engine, ids["admin"], kpis.losses)
    assert [tuple(r) for r in lost[["reason", "stage", "deals", "amount", "share"]].itertuples(index=False)] == [
        ("Price", "Discovery", 1, 300, 0.5), ("No budget", "Qualification", 1, 100, 0.5)]
    empty = run(engine, ids["admin"], kpis.conversion_funnel, KpiFilter(DEC.start, DEC.end, pipeline_id=ids["NB"]))
    assert list(empty.reached) == [0, 0, 0, 0] and list(empty.conversion) == [None] * 4
    assert run(engine, ids["admin"], kpis.losses, DEC).empty
    # The page reads both from one pass over the lost deals: the same frames.
    pd.testing.assert_frame_equal(run(engine, ids["admin"], kpis.funnel_and_losses, nb)[0].set_index("stage"), funnel)
    pd.testing.assert_frame_equal(run(engine, ids["admin"], kpis.funnel_and_losses)[1], lost)


def test_win_rates_by_source_product_and_rep(world):
    engine, ids = world

    def table(by):
        frame = run(engine, ids["admin"], kpis.win_rates, OCT, by)
        return {r.label: (r.won, r.closed, r.won_amount) for r in frame.itertuples()}

    # web: d1, d7 won, d3 lost; referral d2; partner d10; d9 has no source.
    assert table("source") == {"web": (2, 3, 1700), "referral": (1, 1, 500), "partner": (1, 1, 50),
                               "(unknown)": (0, 1, 0)}
    # Lantern: d1 won (two lines, once), d3 lost; Yurt: d1, d7 won; none: d2, d10 won, d9 lost. d8 is deleted.
    assert table("product") == {"Lantern": (1, 2, 1000), "Yurt": (2, 2, 1700), "(no product)": (2, 3, 550)}
    assert table("rep") == {"Ann Rep": (2, 2, 1500), "Bob Rep": (0, 1, 0), "Cy Rep": (2, 3, 750)}
    rates = run(engine, ids["admin"], kpis.win_rates, OCT, "rep").set_index("label").win_rate
    assert rates["Bob Rep"] == 0.0 and rates["Cy Rep"] == pytest.approx(2 / 3)
    assert run(engine, ids["admin"], kpis.win_rates, DEC, "rep").empty
    assert set(kpis.METRICS) == {"close_rate", "cohort_close_rate", "sales_cycle"}


def test_a_deal_moved_between_pipelines_and_a_deleted_stage(world):
    """The funnel and losses read only the open stages of the deal's own pipeline; stage durations keep the time
    spent in a stage deleted since (that history is still the deal's)."""
    engine, ids = world
    with session_scope(engine) as s:
        # d11 spent 5 days in New business's Negotiation (position 3), was moved to Renewals, spent 6 days in
        # Identified (0) and 9 in Quoted (1), and was lost on 10 December; Quoted is deleted afterwards.
        d11 = add(s, ids["C"], "lost", "2026-11-20T00:00", "2026-12-10T00:00", 80, pipeline="Renewals & upsell",
                  reason="Price", history=[("Identified", "2026-11-25T00:00", "2026-12-01T00:00"),
                                           ("Quoted", "2026-12-01T00:00", "2026-12-10T00:00"),
                                           ("Closed lost", "2026-12-10T00:00", None)])
        s.add(DealStageHistory(deal_id=d11, stage_id=stage_named(s, "Negotiation").id,
                               entered_at=at("2026-11-20T00:00"), exited_at=at("2026-11-25T00:00")))
        stage_named(s, "Quoted", "Renewals & upsell").deleted_at = at("2026-12-20T00:00")
        renewals = s.exec(select(Pipeline.id).where(Pipeline.name == "Renewals & upsell")).one()
    # Furthest in its pipeline: Quoted (1), not Negotiation (3, another pipeline's). Quoted is gone, so the deal
    # stopped at the last live stage at or before it: Identified.
    lost = run(engine, ids["admin"], kpis.losses, DEC)
    assert [tuple(r) for r in lost[["reason", "stage", "deals", "amount"]].itertuples(index=False)] == [
        ("Price", "Identified", 1, 80)]
    # Renewals' live open stages: Identified (reached: furthest 1 ≥ 0) and Verbal yes (1 < 2: not reached).
    funnel = run(engine, ids["admin"], kpis.conversion_funnel, KpiFilter(DEC.start, DEC.end, pipeline_id=renewals))
    assert list(funnel.stage) == ["Identified", "Verbal yes"]
    assert list(funnel.reached) == [1, 0] and list(funnel.lost_here) == [1, 0]
    durations = run(engine, ids["admin"], kpis.stage_durations, DEC)
    got = {(r.stage, r.outcome): (r.deals, round(r.median_days, 6)) for r in durations.itertuples()}
    assert got == {("Negotiation", "lost"): (1, 5), ("Identified", "lost"): (1, 6), ("Quoted", "lost"): (1, 9)}
