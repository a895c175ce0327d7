"""RFM: scores worked out by hand on ten customers, the orders that do not count, groups saved as segments, scope."""
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from crm.db import read_scope, session_scope
from crm.errors import PermissionDenied, ValidationFailed
from crm.models import Company, Contact, Order, Segment, SegmentMember
from crm.segments.rfm import GROUPS, NOT_SCORED, compute_rfm, quintile_scores, rfm_groups, save_rfm_group
from tests.factories import actor, make_user

NOW = datetime(2030, 6, 30, 12, 0, tzinfo=UTC)

# name -> (days before NOW, total) of each completed order that counts.
#
# Ten scored customers (n = 10), so a score is floor((below + tied / 2) / 2) + 1: positions 0..9 score 1 1 2 2 3 3
# 4 4 5 5, and a tie straddling two positions takes the higher score when its mid-rank falls on a boundary.
#
# Recency (fewest days best; worst first): B 400, J 300, C 200, F 100, H 59, G 30, D/E 10 (tied at positions 6-7),
# I 5, A 0  ->  B 1, J 1, C 2, F 2, H 3, G 3, D and E (6 + 1) / 2 = 3.5 -> 4, I 5, A 5.
# Frequency: A B C 1 (positions 0-2: 1.5 / 2 -> 1), D E 2 (positions 3-4: (3 + 1) / 2 = 2, exactly the 2/5
# boundary -> 3, where alone they would score 2 and 3), F G 3 (positions 5-6: (5 + 1) / 2 = 3, the 3/5 boundary
# -> 4), H 4 (7.5 / 2 -> 4), I 6 (5), J 10 (5).
# Monetary: C 30.30 and F 10.10 x 3 = 30.299999... tie once rounded to cents (positions 0-1: 1 / 2 -> 1), A 50 (2),
# H 100 (2), D 100.1 + 99.9 and E 150 + 50 = 200 (positions 4-5: 5 / 2 -> 3), G 300 (4), B 500 (4), J 1000 (5),
# I 1200 (5).
ORDERS = {
    "A": [(0, 50.0)],  # exactly at NOW: the `now` boundary counts, so recency 0
    "B": [(400, 500.0)],
    "C": [(200, 30.3)],
    "D": [(10, 100.1), (11, 99.9)],
    "E": [(10, 150.0), (12, 50.0)],
    "F": [(100, 10.1), (101, 10.1), (102, 10.1)],
    "G": [(30, 100.0), (31, 100.0), (32, 100.0)],  # exactly 30 days: recency 30
    "H": [(60 - 1 / 24, 25.0), (61, 25.0), (62, 25.0), (63, 25.0)],  # 59 days 23 hours: recency 59 (whole days)
    "I": [(5 + i, 200.0) for i in range(6)],
    "J": [(300 + i, 100.0) for i in range(10)],
}
EXPECTED = {  # name: (recency_days, frequency, monetary, r, f, m, group), groups by GROUP_GRID[R][F]
    "A": (0, 1, 50.0, 5, 1, 2, "new customers"),
    "B": (400, 1, 500.0, 1, 1, 4, "lost"),
    "C": (200, 1, 30.3, 2, 1, 1, "hibernating"),
    "D": (10, 2, 200.0, 4, 3, 3, "potential loyalists"),
    "E": (10, 2, 200.0, 4, 3, 3, "potential loyalists"),
    "F": (100, 3, 30.3, 2, 4, 1, "at risk"),
    "G": (30, 3, 300.0, 3, 4, 4, "loyal customers"),
    "H": (59, 4, 100.0, 3, 4, 2, "loyal customers"),
    "I": (5, 6, 1200.0, 5, 5, 5, "champions"),
    "J": (300, 10, 1000.0, 1, 5, 5, "can't lose them"),
}
EAST = "ABCDEK"  # owned by the East rep; the rest by the West rep


def _shop(engine) -> dict[str, int]:
    """The customers above plus ones that must not be scored, and orders that must not count."""
    east, west = make_user(engine, "rep", team="East"), make_user(engine, "rep", team="West")
    with session_scope(engine) as s:
        people = {n: Contact(first_name=n, owner_id=east if n in EAST else west) for n in "ABCDEFGHIJKLM"}
        people["M"].deleted_at = NOW  # a deleted contact is never scored, whatever it bought
        s.add_all(people.values())
        s.flush()
        ids = {n: c.id for n, c in people.items()}
        s.add_all(Order(contact_id=ids[n], ordered_at=at(d), total=t)
                  for n, orders in ORDERS.items() for d, t in orders)
        s.add_all([
            Order(contact_id=ids["D"], ordered_at=NOW, total=9999.0, deleted_at=NOW),  # deleted: ignored
            Order(contact_id=ids["G"], ordered_at=NOW, total=9999.0, status="cancelled"),  # not completed: ignored
            Order(contact_id=ids["G"], ordered_at=at(1), total=9999.0, status="refunded"),
            Order(contact_id=ids["G"], ordered_at=at(1), total=9999.0, status="pending"),
            Order(contact_id=ids["I"], ordered_at=at(0, -1), total=9999.0),  # one second after NOW: not yet
            Order(contact_id=ids["K"], ordered_at=None, total=80.0),  # K has only undated orders: not scored
            Order(contact_id=ids["K"], ordered_at=None, total=20.0),
            Order(contact_id=ids["L"], ordered_at=at(3), total=70.0, status="cancelled"),  # L never bought
            Order(contact_id=ids["M"], ordered_at=at(3), total=70.0),
        ])
    return ids


def at(days: float, seconds: int = 0) -> datetime:
    return NOW - timedelta(days=days, seconds=seconds)


def _by_name(result, ids: dict[str, int]) -> dict[str, tuple]:
    names = {v: k for k, v in ids.items()}
    columns = ["recency_days", "frequency", "monetary", "r", "f", "m", "group"]
    return {names[row.id]: tuple(getattr(row, c) for c in columns) for row in result.scores.itertuples()}


def test_scores_and_groups_match_the_hand_worked_example(engine):
    ids = _shop(engine)
    marketer = actor(engine, make_user(engine, "marketer"))
    with read_scope(engine) as s:
        result = compute_rfm(session=s, actor=marketer, now=NOW)
    assert _by_name(result, ids) == EXPECTED
    assert list(result.scores.columns) == ["id", "recency_days", "frequency", "monetary", "r", "f", "m", "group"]
    assert result.scores["id"].tolist() == sorted(result.scores["id"])
    assert result.unscored == 1  # K; L (only cancelled orders) is no customer, M is deleted


def test_summary_counts_every_group_and_the_customers_not_scored(engine):
    _shop(engine)
    marketer = actor(engine, make_user(engine, "marketer"))
    with read_scope(engine) as s:
        summary = compute_rfm(session=s, actor=marketer, now=NOW).summary.set_index("group")
    assert list(summary.index) == [*GROUPS, NOT_SCORED]
    assert summary["count"].to_dict() == {
        "champions": 1, "loyal customers": 2, "potential loyalists": 2, "new customers": 1, "promising": 0,
        "need attention": 0, "about to sleep": 0, "at risk": 1, "can't lose them": 1, "hibernating": 1, "lost": 1,
        NOT_SCORED: 1}
    assert summary.loc["loyal customers", "share"] == pytest.approx(2 / 11)  # of all 11 customers
    assert summary["share"].sum() == pytest.approx(1.0)
    loyal = summary.loc["loyal customers"]  # G and H
    assert (loyal["mean_recency_days"], loyal["mean_frequency"], loyal["mean_monetary"]) == (44.5, 3.5, 200.0)
    assert summary.loc[[NOT_SCORED, "promising"], "mean_frequency"].isna().all()


def test_an_order_at_now_counts_and_one_just_after_does_not(engine):
    ids = _shop(engine)
    marketer = actor(engine, make_user(engine, "marketer"))
    with read_scope(engine) as s:
        later = compute_rfm(session=s, actor=marketer, now=NOW + timedelta(seconds=1))
        earlier = compute_rfm(session=s, actor=marketer, now=NOW - timedelta(seconds=1))
    assert _by_name(later, ids)["I"][1] == 7  # the order one second after NOW now counts
    assert "A" not in _by_name(earlier, ids)  # A's only order is not yet placed: not scored, but still a customer
    assert earlier.unscored == 2


def test_a_rep_scores_only_the_contacts_they_may_read(engine):
    ids = _shop(engine)
    rep = actor(engine, make_user(engine, "rep", team="East"))
    with read_scope(engine) as s:
        result = compute_rfm(session=s, actor=rep, now=NOW)
    mine = _by_name(result, ids)
    assert sorted(mine) == list("ABCDE") and result.unscored == 1  # K is East's too
    # Ranked among these five only: frequencies 1 1 1 2 2 -> (5 * (2 * 0 + 3)) // 10 + 1 = 2 and
    # (5 * (2 * 3 + 2)) // 10 + 1 = 5.
    assert {n: row[4] for n, row in mine.items()} == {"A": 2, "B": 2, "C": 2, "D": 5, "E": 5}


def test_a_group_saved_as_a_segment_has_exactly_its_customers(engine):
    ids = _shop(engine)
    marketer = actor(engine, make_user(engine, "marketer"))
    with read_scope(engine) as s:
        result = compute_rfm(session=s, actor=marketer, now=NOW)
    with session_scope(engine) as s:
        made = save_rfm_group(session=s, actor=marketer, result=result, group="loyal customers", name="Loyal")
    assert (made.members, made.skipped) == (2, 0)
    with read_scope(engine) as s:
        segment = s.get(Segment, made.segment_id)
        members = s.exec(select(SegmentMember.record_id).where(SegmentMember.segment_id == made.segment_id)).all()
    assert sorted(members) == sorted([ids["G"], ids["H"]])
    assert (segment.kind, segment.entity) == ("static", "contact")
    assert segment.definition == {"analytic": "rfm", "group": "loyal customers", "as_of": NOW.isoformat()}


def test_saving_needs_segments_manage_a_known_group_with_members_and_contacts(engine):
    _shop(engine)
    marketer = actor(engine, make_user(engine, "marketer"))
    with read_scope(engine) as s:
        result = compute_rfm(session=s, actor=marketer, now=NOW)
        companies = compute_rfm(session=s, actor=marketer, now=NOW, level="company")
    for role in ("rep", "manager"):
        with session_scope(engine) as s, pytest.raises(PermissionDenied):
            save_rfm_group(session=s, actor=actor(engine, make_user(engine, role, team="East")), result=result,
                           group="champions", name=f"Mine {role}")
    for group, where in (("whales", "group"), ("promising", "group")):  # unknown, and empty
        with session_scope(engine) as s, pytest.raises(ValidationFailed, match=where):
            save_rfm_group(session=s, actor=marketer, result=result, group=group, name="x")
    with session_scope(engine) as s, pytest.raises(ValidationFailed, match="level"):
        save_rfm_group(session=s, actor=marketer, result=companies, group="champions", name="x")
    with read_scope(engine) as s:
        assert s.exec(select(Segment)).all() == []


def test_companies_are_scored_from_their_own_orders_and_their_contacts(engine):
    owner = make_user(engine, "rep", team="East")
    with session_scope(engine) as s:
        acme, gone = Company(name="Acme", owner_id=owner), Company(name="Gone", owner_id=owner, deleted_at=NOW)
        s.add_all([acme, gone])
        s.flush()
        ann, bob = Contact(first_name="Ann", company_id=acme.id), Contact(first_name="Bob")
        s.add_all([ann, bob])
        s.flush()
        s.add_all([
            Order(company_id=acme.id, ordered_at=NOW - timedelta(days=3), total=100.0),  # the company's own
            Order(contact_id=ann.id, ordered_at=NOW - timedelta(days=8), total=40.0),  # through Ann's company
            Order(contact_id=bob.id, company_id=acme.id, ordered_at=NOW - timedelta(days=20), total=10.0),
            Order(contact_id=bob.id, ordered_at=NOW - timedelta(days=1), total=5.0),  # Bob has no company
            Order(company_id=gone.id, ordered_at=NOW, total=1.0),  # a deleted company is not scored
        ])
        acme_id = acme.id
    with read_scope(engine) as s:
        result = compute_rfm(session=s, actor=actor(engine, make_user(engine, "admin")), now=NOW, level="company")
    row = result.scores.set_index("id").loc[acme_id]
    assert result.scores["id"].tolist() == [acme_id]
    assert (row["recency_days"], row["frequency"], row["monetary"]) == (3, 3, 150.0)
    assert (row["r"], row["f"], row["m"], row["group"]) == (3, 3, 3, "need attention")  # a lone customer is middling
    with read_scope(engine) as s, pytest.raises(ValidationFailed, match="level"):
        compute_rfm(session=s, actor=actor(engine, owner), level="household")


def test_no_orders_give_an_empty_result(engine):
    with read_scope(engine) as s:
        result = compute_rfm(session=s, actor=actor(engine, make_user(engine, "admin")), now=NOW)
    assert result.scores.empty and result.unscored == 0
    assert result.summary["count"].sum() == 0 and (result.summary["share"] == 0).all()


@given(st.lists(st.integers(0, 6), min_size=1, max_size=40))
def test_quintile_scores_are_monotone_tie_safe_and_in_range(values):
    scores = quintile_scores(values)
    assert set(scores) <= {1, 2, 3, 4, 5}
    for a, sa in zip(values, scores):
        for b, sb in zip(values, scores):
            assert (a == b) <= (sa == sb) and (a < b) <= (sa <= sb)


@given(st.integers(1, 8))
def test_distinct_values_split_into_exact_fifths(per_score):
    scores = quintile_scores(list(range(5 * per_score)))
    assert [list(scores).count(s) for s in range(1, 6)] == [per_score] * 5


def test_small_sets_spread_around_the_middle():
    assert quintile_scores([7]).tolist() == [3]
    assert quintile_scores([4, 4, 4]).tolist() == [3, 3, 3]
    assert quintile_scores([1, 2]).tolist() == [2, 4]
    assert quintile_scores([1, 2, 3]).tolist() == [1, 3, 5]


def test_every_r_and_f_pair_has_a_group_and_every_group_is_reachable():
    pairs = [(r, f) for r in range(1, 6) for f in range(1, 6)]
    groups = rfm_groups([r for r, _ in pairs], [f for _, f in pairs])
    assert set(groups) == set(GROUPS)
    assert dict(zip(pairs, groups))[(5, 5)] == "champions" and dict(zip(pairs, groups))[(1, 1)] == "lost"
