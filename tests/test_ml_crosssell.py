"""Cross-sell likelihood end to end on small hand-made shops, on SQLite and PostgreSQL."""
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func
from sqlmodel import select

from crm.db import session_scope
from crm.errors import NotFound, ValidationFailed
from crm.ml import registry
from crm.ml.crosssell import (cross_sell_card, evaluate_cross_sell, explain, score_product, top_buyers,
                              train_cross_sell)
from crm.ml.crosssell.data import load_history, to_days
from crm.ml.crosssell.features import candidate_rows
from crm.models import BehaviorEvent, Company, Contact, Order, OrderLine, PredictionScore, Product

NOW = datetime(2026, 6, 1, tzinfo=UTC)
PRODUCTS = ("Alpha", "Beta", "Gamma", "Delta")


def make_shop(engine, *, customers: int = 160, dated: bool = True, seed: int = 7) -> dict[str, set[int]]:
    """Alpha buyers go on to buy Beta (70 %), Gamma buyers rarely do (5 %): the affinity pair is Alpha → Beta.

    Even customers start with Alpha, odd ones with Gamma; every tenth customer never buys (boundary: no orders),
    and every fifth sits in one of four companies. Customers are created shortly before their first order.
    Returns who owns what, by product name.
    """
    rng = np.random.default_rng(seed)
    owners: dict[str, set[int]] = {name: set() for name in PRODUCTS}
    with session_scope(engine) as s:
        products = [Product(name=name, sku=name[:3].upper(), list_price=100.0) for name in PRODUCTS]
        companies = [Company(name=f"Firm {k}", industry=("Retail", "Banking")[k % 2], employees=10 * (k + 1))
                     for k in range(4)]
        s.add_all(products + companies)
        s.flush()
        ids = {p.name: p.id for p in products}
        for i in range(customers):
            when = NOW - timedelta(days=float(rng.uniform(40, 720)))
            contact = Contact(first_name=f"Cust{i}", last_name="Shopper", external_id=f"C-{i}",
                              company_id=companies[i % 4].id if i % 5 == 0 else None,
                              created_at=when - timedelta(days=float(rng.uniform(0, 30))))
            s.add(contact)
            s.flush()
            if i % 10 == 9:
                continue
            first = "Alpha" if i % 2 == 0 else "Gamma"
            _order(s, contact.id, ids[first], when if dated else None)
            owners[first].add(contact.id)
            chance = 0.7 if first == "Alpha" else 0.05
            later = when + timedelta(days=5 + float(rng.exponential(150)))
            if rng.random() < chance and later < NOW:
                _order(s, contact.id, ids["Beta"], later if dated else None)
                owners["Beta"].add(contact.id)
            if rng.random() < 0.15:
                extra = when + timedelta(days=float(rng.uniform(1, 300)))
                if extra < NOW:
                    _order(s, contact.id, ids["Delta"], extra if dated else None)
                    owners["Delta"].add(contact.id)
    return owners


def _order(session, contact_id: int, product_id: int, when) -> None:
    order = Order(contact_id=contact_id, ordered_at=when, total=100.0, status="completed")
    session.add(order)
    session.flush()
    session.add(OrderLine(order_id=order.id, product_id=product_id, quantity=1, unit_price=100.0))


def test_training_registers_a_dated_model_with_baselines_and_promotes_it(engine, tmp_path):
    make_shop(engine)
    summary = train_cross_sell(engine, root=tmp_path, now=NOW)
    assert summary["mode"] == "dated" and summary["level"] == "contact" and summary["promoted"]
    assert set(summary["metrics"]) == {"model", "popularity", "association_rules"}
    for measured in summary["metrics"].values():
        assert {"k", "precision_at_k", "recall_at_k", "lift_top_decile", "auc"} <= set(measured)
    assert summary["metrics"]["model"]["auc"] > summary["metrics"]["popularity"]["auc"]
    [stored] = registry.versions("cross-sell", root=tmp_path)
    meta = stored.metadata
    assert meta["status"] == "champion" and meta["horizon_days"] == 90 and meta["data_hash"]
    assert meta["rows"]["train"] > 0 and meta["rows"]["holdout"] > 0 and len(meta["data_window"]["cutoffs"]) >= 2
    assert "own_" in " ".join(meta["features"]["numeric"]) and meta["split"].startswith("time:")
    assert evaluate_cross_sell(root=tmp_path)["metrics"] == summary["metrics"]

    again = train_cross_sell(engine, root=tmp_path, now=NOW)  # same data, same holdout: a tie is promoted
    assert again["promoted"] and "at least as good as" in again["reason"]


def test_evaluating_before_any_training_says_so(tmp_path):
    with pytest.raises(NotFound):
        evaluate_cross_sell(root=tmp_path)


def test_an_owned_product_is_never_scored_and_unknown_products_are_refused(engine, tmp_path):
    owners = make_shop(engine)
    train_cross_sell(engine, root=tmp_path, now=NOW)
    for name in PRODUCTS:
        scores = score_product(engine, name, root=tmp_path)
        assert list(scores.columns) == ["id", "external_id", "probability"]
        assert not set(scores["id"]) & owners[name]
        assert scores["probability"].between(0, 1).all() and scores["probability"].is_monotonic_decreasing
        assert len(scores) == 160 - len(owners[name])  # everyone else, buyers or not
    with pytest.raises(ValidationFailed) as failed:
        score_product(engine, "Omega", root=tmp_path)
    assert failed.value.field == "product"


def test_scores_can_be_stored_for_segments_and_reports(engine, tmp_path):
    make_shop(engine, customers=60)
    train_cross_sell(engine, root=tmp_path, now=NOW)
    scores = score_product(engine, "Beta", root=tmp_path, store=True)
    score_product(engine, "Beta", root=tmp_path, store=True)  # replaces, never duplicates
    with session_scope(engine) as s:
        stored = s.exec(select(func.count()).select_from(PredictionScore)
                        .where(PredictionScore.model == "cross-sell")).one()
    assert stored == len(scores)


def test_the_affinity_pair_ranks_above_chance_and_is_explained(engine, tmp_path):
    owners = make_shop(engine)
    train_cross_sell(engine, root=tmp_path, now=NOW)
    scores = score_product(engine, "Beta", root=tmp_path).set_index("id")["probability"]
    alpha, gamma = scores[scores.index.isin(owners["Alpha"])], scores[scores.index.isin(owners["Gamma"])]
    assert alpha.mean() > 2 * gamma.mean()
    top = top_buyers(engine, "Beta", 10, root=tmp_path)
    assert list(top.columns) == ["id", "name", "owner_id", "probability", "evidence"]
    alpha_top = top[top["id"].isin(owners["Alpha"])]
    assert len(alpha_top) >= 7  # the most likely are mostly Alpha owners
    assert alpha_top["evidence"].str.contains("customers who own Alpha").all()
    assert "× more often (support" in alpha_top["evidence"].iloc[0]
    sentences = explain(engine, int(alpha_top["id"].iloc[0]), "Beta", root=tmp_path)
    assert sentences[0].endswith("likely to buy Beta") and any("own Alpha" in s for s in sentences)
    owner = next(iter(owners["Beta"]))
    assert explain(engine, owner, "Beta", root=tmp_path) == ["already has Beta, so it is not scored"]


def test_later_purchases_and_events_never_change_the_features_of_a_cutoff(engine):
    make_shop(engine, customers=40)
    cutoff = float(to_days([NOW - timedelta(days=200)])[0])
    before = candidate_rows(load_history(engine, "contact"), cutoff, dated=True)
    with session_scope(engine) as s:
        someone = s.exec(select(Contact.id)).first()
        delta = s.exec(select(Product.id).where(Product.name == "Delta")).one()
        _order(s, someone, delta, NOW - timedelta(days=100))  # after the cutoff: a label, never a feature
        s.add(BehaviorEvent(contact_id=someone, kind="web_visit", occurred_at=NOW - timedelta(days=10)))
    after = candidate_rows(load_history(engine, "contact"), cutoff, dated=True)
    assert before.equals(after)


def test_undated_history_becomes_an_out_of_fold_ownership_propensity(engine, tmp_path):
    owners = make_shop(engine, dated=False)
    summary = train_cross_sell(engine, root=tmp_path, now=NOW)
    assert summary["mode"] == "undated" and "out of fold" in summary["split"]
    scores = score_product(engine, "Beta", root=tmp_path)
    assert not set(scores["id"]) & owners["Beta"]
    alpha = scores[scores["id"].isin(owners["Alpha"])]["probability"].mean()
    gamma = scores[scores["id"].isin(owners["Gamma"])]["probability"].mean()
    assert alpha > gamma
    assert "also own Beta" in top_buyers(engine, "Beta", 3, root=tmp_path)["evidence"].iloc[0]


def test_company_level_rolls_orders_up_to_companies(engine, tmp_path):
    make_shop(engine, customers=80)
    summary = train_cross_sell(engine, level="company", root=tmp_path, now=NOW)
    assert summary["level"] == "company"
    scores = score_product(engine, "Delta", level="company", root=tmp_path)
    with session_scope(engine) as s:
        companies = set(s.exec(select(Company.id)).all())
    assert set(scores["id"]) <= companies
    with pytest.raises(NotFound):  # the contact level has its own champion, and none was trained
        score_product(engine, "Delta", root=tmp_path)
    with pytest.raises(ValidationFailed):
        train_cross_sell(engine, level="deal", root=tmp_path)


def test_a_tiny_shop_falls_back_to_association_rules_and_the_card_says_why(engine, tmp_path):
    assert cross_sell_card(engine, root=tmp_path).version is None
    make_shop(engine, customers=24)
    summary = train_cross_sell(engine, root=tmp_path, now=NOW)
    assert summary["tier"] == "association rules"
    card = cross_sell_card(engine, root=tmp_path)
    assert card.tier == "association rules" and "gradient boosting needs" in card.tier_reason
    assert card.status == "champion" and card.minimums and not card.minimums[0].met
    assert set(card.metrics) == {"model", "popularity", "association_rules"}


def test_the_card_of_a_boosted_model_has_reliability_importance_and_drift(engine, tmp_path):
    make_shop(engine)
    train_cross_sell(engine, root=tmp_path, now=NOW)
    card = cross_sell_card(engine, root=tmp_path)
    assert card.tier == "gradient boosting" and card.reliability and card.importance
    assert {d["feature"] for d in card.drift} == {"n_orders", "monetary", "events_90d", "n_products"}
    assert all({"train", "now", "shift", "flag"} <= set(d) for d in card.drift)
