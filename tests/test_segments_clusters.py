"""Clusters: planted groups are found and described, the seed fixes the result, features respect `now`, saving."""
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from sqlmodel import select

from crm.db import read_scope, session_scope
from crm.errors import PermissionDenied, ValidationFailed
from crm.models import Activity, BehaviorEvent, Company, Contact, Order, Segment, SegmentMember, Team, User
from crm.segments.clusters import cluster_contacts, contact_features, describe, save_cluster_segment
from tests.factories import actor, make_user

NOW = datetime(2030, 6, 30, 12, 0, tzinfo=UTC)
PER_GROUP = 30
KS = range(2, 7)


def _planted(engine) -> dict[str, list[int]]:
    """Three groups of 30 contacts, each standing out on one side of the features, with a little noise:
    - browsers: 12-20 web visits in the last 90 days, nothing else;
    - buyers: 4-7 completed orders of 1,000-3,000 in the last two months, nothing else;
    - enterprise: at companies of 5,000-9,000 people in Energy; browsers and buyers work at 10-40-people shops."""
    rng = np.random.default_rng(7)
    east, west = make_user(engine, "rep", team="East"), make_user(engine, "rep", team="West")
    with session_scope(engine) as s:
        small = [Company(name=f"Shop {i}", employees=int(rng.integers(10, 40)),
                         annual_revenue=float(rng.integers(1, 3)) * 1e6, industry="Retail") for i in range(6)]
        big = [Company(name=f"Power {i}", employees=int(rng.integers(5000, 9000)), annual_revenue=5e8,
                       industry="Energy") for i in range(3)]
        s.add_all(small + big)
        s.flush()
        groups: dict[str, list[Contact]] = {}
        for name, companies in (("browsers", small), ("buyers", small), ("enterprise", big)):
            groups[name] = [Contact(first_name=f"{name} {i}", owner_id=east if i % 2 else west,
                                    company_id=companies[i % len(companies)].id) for i in range(PER_GROUP)]
            s.add_all(groups[name])
        s.flush()
        for c in groups["browsers"]:
            s.add_all(BehaviorEvent(contact_id=c.id, kind="web_visit", occurred_at=NOW - timedelta(days=int(d)))
                      for d in rng.integers(1, 80, size=rng.integers(12, 21)))
        for c in groups["buyers"]:
            days = rng.integers(1, 60, size=rng.integers(4, 8))
            s.add_all(Order(contact_id=c.id, ordered_at=NOW - timedelta(days=int(d)),
                            total=float(rng.integers(1000, 3000))) for d in days)
        return {name: [c.id for c in members] for name, members in groups.items()}


def _cluster(engine, who, seed: int = 3):
    with read_scope(engine) as s:
        return cluster_contacts(session=s, actor=who, seed=seed, k_range=KS, now=NOW)


def _cluster_of(result, ids: list[int]) -> int:
    found = result.labels.set_index("id").loc[ids, "cluster"]
    assert found.nunique() == 1
    return int(found.iloc[0])


def test_planted_groups_are_recovered_with_the_planted_k_and_described_by_what_sets_them_apart(engine):
    groups = _planted(engine)
    result = _cluster(engine, actor(engine, make_user(engine, "marketer")))
    planted = {cid: name for name, ids in groups.items() for cid in ids}
    labels = result.labels.set_index("id")["cluster"]
    assert adjusted_rand_score([planted[i] for i in labels.index], labels.to_numpy()) > 0.95
    assert result.k == 3 and result.choice["k"].tolist() == list(KS)
    assert result.choice.set_index("k")["silhouette"].idxmax() == 3
    assert result.choice["inertia"].is_monotonic_decreasing  # the elbow the page can draw
    words = result.clusters.set_index("cluster")["description"]
    assert "many web visits in the last 90 days" in words[_cluster_of(result, groups["browsers"])]
    assert "many orders" in words[_cluster_of(result, groups["buyers"])] \
        or "high order total" in words[_cluster_of(result, groups["buyers"])]
    enterprise = words[_cluster_of(result, groups["enterprise"])]
    assert "large companies" in enterprise or "mostly in Energy" in enterprise
    assert result.clusters["size"].tolist() == [PER_GROUP] * 3 and result.clusters["share"].sum() == pytest.approx(1)
    assert result.profile.loc[_cluster_of(result, groups["buyers"]), "orders"] >= 4  # in orders, not std units


def test_the_same_seed_gives_the_same_k_and_labels(engine):
    _planted(engine)
    marketer = actor(engine, make_user(engine, "marketer"))
    first, again = _cluster(engine, marketer, seed=11), _cluster(engine, marketer, seed=11)
    assert first.k == again.k
    assert first.labels.equals(again.labels)
    assert first.choice.equals(again.choice)


def test_sampling_fits_on_a_subset_and_still_assigns_everyone(engine):
    groups = _planted(engine)
    with read_scope(engine) as s:
        result = cluster_contacts(session=s, actor=actor(engine, make_user(engine, "marketer")), seed=5, k_range=KS,
                                  now=NOW, sample_size=45)
    assert len(result.labels) == 3 * PER_GROUP and result.k == 3
    planted = {cid: name for name, ids in groups.items() for cid in ids}
    assert adjusted_rand_score([planted[i] for i in result.labels["id"]], result.labels["cluster"]) > 0.95


def test_features_count_only_what_happened_by_now(engine):
    with session_scope(engine) as s:
        ann = Contact(first_name="Ann")
        s.add(ann)
        s.flush()
        s.add_all([
            BehaviorEvent(contact_id=ann.id, kind="email_open", occurred_at=NOW - timedelta(days=89)),
            BehaviorEvent(contact_id=ann.id, kind="email_open", occurred_at=NOW - timedelta(days=91)),  # too old
            BehaviorEvent(contact_id=ann.id, kind="email_open", occurred_at=NOW + timedelta(hours=1)),  # not yet
            Activity(kind="call", subject="Hi", contact_id=ann.id, occurred_at=NOW - timedelta(days=4)),
            Activity(kind="task", subject="Chase", contact_id=ann.id, done_at=NOW - timedelta(days=2)),
            Activity(kind="call", subject="Later", contact_id=ann.id, occurred_at=NOW + timedelta(days=1)),
            Order(contact_id=ann.id, ordered_at=NOW - timedelta(days=10), total=30.0),
            Order(contact_id=ann.id, ordered_at=NOW - timedelta(days=500), total=20.0, status="cancelled"),
            Order(contact_id=ann.id, ordered_at=NOW + timedelta(days=1), total=999.0),
        ])
        ann_id = ann.id
    with read_scope(engine) as s:
        row = contact_features(s, actor(engine, make_user(engine, "admin")), NOW).loc[ann_id]
    assert row["email_open_90d"] == 1 and row["web_visit_90d"] == 0
    assert row["days_since_event"] == pytest.approx(89)
    assert row["days_since_activity"] == pytest.approx(2)  # the task done two days ago
    assert (row["orders"], row["order_total"], row["days_since_order"]) == (1, 30.0, pytest.approx(10))


def test_a_cluster_saved_as_a_segment_has_exactly_its_contacts_and_records_how_it_was_made(engine):
    groups = _planted(engine)
    marketer = actor(engine, make_user(engine, "marketer"))
    result = _cluster(engine, marketer)
    buyers = _cluster_of(result, groups["buyers"])
    with session_scope(engine) as s:
        made = save_cluster_segment(session=s, actor=marketer, clustering=result, cluster=buyers, name="Buyers")
    with read_scope(engine) as s:
        segment = s.get(Segment, made.segment_id)
        members = s.exec(select(SegmentMember.record_id).where(SegmentMember.segment_id == made.segment_id)).all()
    assert sorted(members) == sorted(groups["buyers"]) and made.members == PER_GROUP
    assert segment.definition == {"analytic": "clusters", "seed": 3, "k": 3, "cluster": buyers,
                                  "features": result.features, "as_of": NOW.isoformat()}
    assert segment.description == result.clusters.set_index("cluster").loc[buyers, "description"]


def test_reps_cluster_only_what_they_read_and_cannot_save(engine):
    groups = _planted(engine)
    east_rep = actor(engine, make_user(engine, "rep", team="East"))
    result = _cluster(engine, east_rep)
    with read_scope(engine) as s:
        readable = set(s.exec(select(Contact.id).join(User, User.id == Contact.owner_id).join(Team)
                              .where(Team.name == "East")).all())
    assert set(result.labels["id"]) == readable and len(readable) == 3 * PER_GROUP // 2  # odd-numbered of each group
    assert readable & set(groups["buyers"])
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        save_cluster_segment(session=s, actor=east_rep, clustering=result, cluster=1, name="Mine")
    with session_scope(engine) as s, pytest.raises(ValidationFailed, match="cluster"):
        save_cluster_segment(session=s, actor=actor(engine, make_user(engine, "marketer")), clustering=result,
                             cluster=result.k + 1, name="Nothing")


def test_too_few_or_too_alike_contacts_are_refused(engine):
    admin = actor(engine, make_user(engine, "admin"))
    with read_scope(engine) as s, pytest.raises(ValidationFailed, match="contacts"):
        cluster_contacts(session=s, actor=admin, now=NOW)  # nobody to cluster
    with session_scope(engine) as s:
        s.add_all(Contact(first_name=f"Twin {i}") for i in range(5))
    with read_scope(engine) as s, pytest.raises(ValidationFailed, match="contacts"):
        cluster_contacts(session=s, actor=admin, now=NOW)  # five identical rows: no two clusters to find


def test_descriptions_name_the_largest_differences_in_words():
    contrast = pd.Series({"orders": -0.6, "order_total": 2.0, "employees": 0.1, "industry: Retail": -3.0,
                          "industry: Energy": 1.2, "days_since_order": -0.9})
    # Retail's absence is the largest difference, but "seldom in Retail" says little: industries are named only
    # where the cluster has more of them. Below 0.5 standard deviations nothing is worth naming.
    assert describe(contrast) == "high order total, mostly in Energy, a recent order"
    assert describe(contrast * 0.1) == "much like the other contacts"
