"""Cross-sell calibration and the per-product holdout breakdown, on a shop whose purchase probabilities are known."""
from datetime import UTC, datetime, timedelta

import joblib
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from crm.db import session_scope
from crm.ml import registry
from crm.ml.crosssell import cross_sell_card, evaluate_cross_sell, score_product, train_cross_sell
from crm.ml.crosssell.calibration import ISOTONIC_MIN_POSITIVES, PRODUCT_MIN_ROWS, Calibrator, Platt
from crm.ml.crosssell.data import load_history, to_days
from crm.ml.crosssell.features import candidate_rows
from crm.models import Contact, Order, OrderLine, Product

NOW = datetime(2026, 6, 1, tzinfo=UTC)
HORIZON = 90
PRODUCTS = ("Alpha", "Beta", "Gamma", "Delta")
# The chance of buying each other product within any 90 days, by the product a customer started with. Waiting
# times are exponential, so the chance is the same in every window a product is not yet owned: the truth the
# holdout's labels are drawn from.
CHANCE = {"Alpha": {"Beta": 0.30, "Gamma": 0.06, "Delta": 0.12},
          "Gamma": {"Alpha": 0.06, "Beta": 0.04, "Delta": 0.12}}


def make_known_shop(engine, *, customers: int, seed: int = 1) -> list[tuple[int, str, datetime]]:
    """Customers created over the last 900 days buy their first product (Alpha or Gamma, at random) on the day they
    are created; one in ten never buys anything (boundary: the down-sampled, weighted-up non-buyers). The first
    product is drawn at random, not from the id, so it is independent of the fold (customer id modulo 4).
    Returns every purchase as (contact id, product name, when)."""
    rng = np.random.default_rng(seed)
    with session_scope(engine) as s:
        products = [Product(name=name, sku=name[:3].upper(), list_price=100.0) for name in PRODUCTS]
        created = [NOW - timedelta(days=float(rng.uniform(0, 900))) for _ in range(customers)]
        contacts = [Contact(first_name=f"Cust{i}", last_name="Known", external_id=f"K-{i}", created_at=when)
                    for i, when in enumerate(created)]
        s.add_all(products + contacts)
        s.flush()
        ids = {p.name: p.id for p in products}
        bought = []
        for contact, when in zip(contacts, created):
            kind = rng.random()
            if kind < 0.1:
                continue
            first = "Alpha" if kind < 0.55 else "Gamma"
            bought.append((contact.id, first, when))
            for name, chance in CHANCE[first].items():
                later = when + timedelta(days=float(rng.exponential(-HORIZON / np.log(1 - chance))))
                if later < NOW:
                    bought.append((contact.id, name, later))
        orders = [Order(contact_id=c, ordered_at=when, total=100.0, status="completed") for c, _, when in bought]
        s.add_all(orders)
        s.flush()
        s.add_all([OrderLine(order_id=order.id, product_id=ids[name], quantity=1, unit_price=100.0)
                   for order, (_, name, _) in zip(orders, bought)])
    return bought


def test_calibration_brings_the_holdout_ece_down_on_known_purchase_rates(sqlite_engine, tmp_path):
    # 2,000 customers: about 3,800 holdout rows and 280 holdout buyers. Measured over seeds 1–8: ECE 0.021–0.038
    # before calibration, 0.004–0.014 after; training takes 4–6 s.
    make_known_shop(sqlite_engine, customers=2000)
    measured = train_cross_sell(sqlite_engine, root=tmp_path, now=NOW)["metrics"]["model"]
    assert measured["ece"] <= measured["ece_before_calibration"]
    assert measured["ece"] <= 0.05


def expected_holdout_buyers(bought: list[tuple[int, str, datetime]]) -> dict[str, int]:
    """By hand: customers who existed at the holdout cutoff (their first purchase is their creation) and bought a
    product in the 90 days after it that they did not have before it."""
    cutoff = NOW - timedelta(days=HORIZON)
    frame = pd.DataFrame(bought, columns=["contact", "product", "when"])
    existed = set(frame.loc[frame["when"] <= cutoff, "contact"])
    owned = set(frame.loc[frame["when"] <= cutoff, ["contact", "product"]].itertuples(index=False, name=None))
    later = frame[(frame["when"] > cutoff) & frame["contact"].isin(existed)]
    fresh = [p for c, p in later[["contact", "product"]].itertuples(index=False, name=None) if (c, p) not in owned]
    return {name: fresh.count(name) for name in PRODUCTS}


def test_the_breakdown_counts_each_products_holdout_buyers(engine, tmp_path):
    bought = make_known_shop(engine, customers=400)
    train_cross_sell(engine, root=tmp_path, now=NOW)
    [stored] = registry.versions("cross-sell", root=tmp_path)
    breakdown = stored.metadata["breakdown"]
    assert [row["product"] for row in breakdown] == list(PRODUCTS)
    assert {row["product"]: row["positives"] for row in breakdown} == expected_holdout_buyers(bought)
    assert sum(row["rows"] for row in breakdown) == stored.metadata["rows"]["holdout"]
    for row in breakdown:
        assert row["k"] == min(100, row["rows"])
        assert {"auc", "precision_at_k", "recall_at_k", "lift_top_decile", "ece", "auc_popularity",
                "auc_association_rules"} <= set(row)
    assert 0 <= stored.metadata["metrics"]["model"]["ece_before_calibration"] <= 1
    assert cross_sell_card(engine, root=tmp_path, drift=False).breakdown == breakdown
    assert evaluate_cross_sell(root=tmp_path)["breakdown"] == breakdown


def test_a_model_pickled_before_calibration_still_scores(engine, tmp_path):
    make_known_shop(engine, customers=400)
    train_cross_sell(engine, root=tmp_path, now=NOW)
    champ = registry.champion("cross-sell", root=tmp_path)
    model = champ.load()
    rows = candidate_rows(load_history(engine, "contact"), float(to_days([NOW])[0]), dated=True)
    calibrated = model.predict(rows)
    del model.calibrator  # what a model pickled before this change looks like
    joblib.dump(model, champ.path / "model.joblib")
    old = registry.champion("cross-sell", root=tmp_path).load()
    assert "calibrator" not in vars(old)
    raw = old.predict(rows)
    assert np.allclose(raw, np.clip(old.scorer.predict(rows), 0.0, 1.0)) and not np.allclose(raw, calibrated)
    assert score_product(engine, "Beta", root=tmp_path)["probability"].between(0, 1).all()


def overconfident_rows(positives_by_product: dict[int, int], seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows whose true chance is 20 % and whose score says 50 %: every product needs the same correction."""
    rng = np.random.default_rng(seed)
    pid = np.concatenate([np.full(5 * n, z) for z, n in positives_by_product.items()])
    y = np.concatenate([np.r_[np.ones(n), np.zeros(4 * n)] for n in positives_by_product.values()])
    score = np.clip(0.5 + rng.normal(0, 0.05, len(y)), 0.01, 0.99)
    return pd.DataFrame({"product_id": pid, "score": score}), y


def test_a_product_gets_its_own_map_only_with_enough_buyers_and_isotonic_only_with_plenty():
    few = PRODUCT_MIN_ROWS - 1
    frame, y = overconfident_rows({1: ISOTONIC_MIN_POSITIVES, 2: 100, 3: few})
    calibrator = Calibrator().fit(frame, y, np.ones(len(y)))
    assert isinstance(calibrator.by_product_[1], IsotonicRegression)
    assert isinstance(calibrator.by_product_[2], Platt)
    assert 3 not in calibrator.by_product_  # boundary: one buyer short, so the pooled map
    assert isinstance(calibrator.pooled_, IsotonicRegression)
    assert abs(calibrator.predict(frame).mean() - 0.2) < 0.01  # the 50 % scores come back to the 20 % observed


def test_calibration_uses_the_sample_weights():
    """A non-buyer weighted 2 counts as two: the map is the one fitted on the non-buyers duplicated."""
    frame, y = overconfident_rows({1: 100})
    weights = np.where(y == 0, 2.0, 1.0)
    weighted = Calibrator().fit(frame, y, weights).predict(frame)
    twice = np.r_[np.arange(len(y)), np.flatnonzero(y == 0)]
    duplicated = Calibrator().fit(frame.iloc[twice], y[twice], np.ones(len(twice))).predict(frame)
    assert np.allclose(weighted, duplicated, atol=1e-4)
    assert abs(weighted.mean() - 1 / 9) < 0.01  # 100 buyers against 400 non-buyers weighing 800
