"""The predictive lead model on demo-like synthetic data: ranking, governance, scoring, explanations, no leakage."""
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import insert
from sqlmodel import select

from crm.db import read_scope, session_scope
from crm.lead_rules import seed_default_rules
from crm.ml import registry
from crm.ml.lead import evaluate_lead, explain_lead, lead_card, train_lead, update_lead_scores
from crm.ml.lead.features import FEATURES, lead_features
from crm.models import BehaviorEvent, Company, Contact, Order

NOW = datetime(2026, 6, 1, tzinfo=UTC)
N = 700


def world(engine, seed: int = 1) -> None:
    """Like the demo: good-fit, senior, engaged leads convert (an order) far more often, after engaging."""
    rng = np.random.default_rng(seed)
    industries = np.array(["Software", "Retail"])
    with session_scope(engine) as s:
        s.execute(insert(Company), [dict(id=i + 1, name=f"Co {i}", industry=industries[i % 2], employees=50 + 40 * i,
                                         created_at=NOW - timedelta(days=900), updated_at=NOW, version=1)
                                    for i in range(40)])
        company = rng.integers(0, 40, N)
        senior = rng.random(N) < 0.3
        quality = (company % 2 == 0) * 1.2 + senior * 0.8 + rng.normal(0, 0.3, N)
        created = NOW - timedelta(days=420) + (rng.random(N) * 60 * 86400).astype(int) * timedelta(seconds=1)
        s.execute(insert(Contact), [dict(id=i + 1, first_name="Lead", last_name=str(i), name_key=f"lead {i}",
                                         company_id=int(company[i]) + 1,
                                         job_title="VP Sales" if senior[i] else "Analyst", created_at=created[i],
                                         updated_at=created[i], version=1, lifecycle_stage="lead",
                                         email_opt_in=False, do_not_contact=False, social_profiles={}, interests=[])
                                    for i in range(N)])
        events, orders = [], []
        for i in range(N):
            start = (NOW - created[i]).days
            for _ in range(rng.poisson(1 + 2.5 * max(quality[i], 0))):
                events.append(dict(contact_id=i + 1, kind=rng.choice(["web_visit", "email_click", "offer_viewed"]),
                                   occurred_at=NOW - timedelta(days=float(rng.uniform(0, start))), properties={}))
            if rng.random() < 0.12 + 0.25 * max(quality[i], 0):
                day = float(rng.uniform(0, 300))
                orders.append(dict(contact_id=i + 1, ordered_at=NOW - timedelta(days=day), status="completed",
                                   total=100.0, currency="USD"))
                events.append(dict(contact_id=i + 1, kind="form_submission", properties={},
                                   occurred_at=NOW - timedelta(days=day + float(rng.uniform(1, 20)))))
        stamp = dict(created_at=NOW, updated_at=NOW, version=1)
        s.execute(insert(BehaviorEvent), [{**e, **stamp} for e in events])
        s.execute(insert(Order), [{**o, **stamp} for o in orders])
        seed_default_rules(session=s)


def test_the_model_ranks_above_chance_and_is_governed(engine, tmp_path):
    world(engine)
    summary = train_lead(engine, root=tmp_path, now=NOW)
    assert summary["version"] and summary["promoted"] and summary["reason"] == "no champion yet"
    assert summary["split"].startswith("time:")
    assert summary["metrics"]["model"]["auc"] > 0.65
    assert set(summary["metrics"]) == {"model", "rules", "base_rate"}
    assert summary["metrics"]["base_rate"]["auc"] == 0.5
    meta = registry.champion("lead", root=tmp_path).metadata
    assert meta["features"] == FEATURES and meta["data_hash"] and meta["data_window"]["horizon_days"] == 90
    assert meta["rows"]["train"] > 0 and meta["libraries"]["scikit-learn"]
    # The same data again: a new version, judged against the champion on the same holdout.
    again = train_lead(engine, root=tmp_path, now=NOW)
    assert again["version"] != summary["version"] and "same holdout" in again["reason"]
    assert len(registry.versions("lead", root=tmp_path)) == 2
    assert evaluate_lead(root=tmp_path)["metrics"]["model"]["auc"] > 0.65
    card = lead_card(engine, root=tmp_path)
    assert card.status == "champion" and card.importance and card.reliability and all(m.met for m in card.minimums)

    report = update_lead_scores(engine, root=tmp_path, now=NOW)
    assert report["source"].startswith("model ") and report["contacts"] == N
    with read_scope(engine) as s:
        scores = [c.lead_score for c in s.exec(select(Contact)).all()]
    assert all(0 <= x <= 100 for x in scores)
    explained = explain_lead(engine, 1, root=tmp_path, now=NOW)
    assert 0 < explained["model"]["probability"] < 1 and explained["model"]["factors"]
    assert explained["score_source"] == "model" and explained["rules"]["text"]


def test_too_few_conversions_trains_nothing(engine, tmp_path):
    with session_scope(engine) as s:
        s.add(Contact(first_name="Only", last_name="One", created_at=NOW - timedelta(days=400)))
    summary = train_lead(engine, root=tmp_path, now=NOW)
    assert summary["version"] is None and not summary["promoted"] and "too few conversions" in summary["reason"]
    assert lead_card(engine, root=tmp_path).version is None
    assert update_lead_scores(engine, root=tmp_path, now=NOW)["source"] == "rules"


def test_features_as_of_a_time_ignore_later_events(engine):
    with session_scope(engine) as s:
        contact = Contact(first_name="Grace", last_name="Hopper", job_title="CTO", created_at=NOW - timedelta(days=100))
        s.add(contact)
        s.flush()
        s.add(BehaviorEvent(contact_id=contact.id, kind="web_visit", occurred_at=NOW - timedelta(days=10)))
        cid = contact.id
    with read_scope(engine) as s:
        before = lead_features(s.connection(), NOW)
    with session_scope(engine) as s:
        s.add(BehaviorEvent(contact_id=cid, kind="web_visit", occurred_at=NOW + timedelta(days=1)))
        s.add(Contact(first_name="Later", last_name="Lead", created_at=NOW + timedelta(days=1)))
    with read_scope(engine) as s:
        after = lead_features(s.connection(), NOW)
    assert after.equals(before)
    assert before.loc[cid, "web_visit_30d"] == 1 and before.loc[cid, "title_level"] == "c-level"
    assert before.loc[cid, "web_visit_days_since"] == pytest.approx(10)
