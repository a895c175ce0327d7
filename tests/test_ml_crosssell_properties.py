"""Property tests of cross-sell's pure parts on in-memory histories: candidates, leakage, folds and rules."""
import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from crm.ml.crosssell.data import History
from crm.ml.crosssell.features import candidate_rows, owned_counts
from crm.ml.crosssell.model import AssociationRules, GradientBoosting, OutOfFold, Popularity

AS_OF = 20_000.0  # days since the epoch (2024-10-04)

purchase = st.tuples(st.integers(0, 11), st.integers(0, 3), st.one_of(st.none(), st.floats(19_000, 21_000)))


def history(purchases: list[tuple[int, int, float | None]], customers: int = 12, products: int = 4) -> History:
    """`customers` customers (ids 101…), `products` products (ids 1…), one order per purchase tuple."""
    frame = pd.DataFrame({"cust": [p[0] for p in purchases], "prod": [p[1] for p in purchases],
                          "order_id": np.arange(len(purchases)),
                          "day": [np.nan if p[2] is None else p[2] for p in purchases],
                          "amount": 10.0}, columns=["cust", "prod", "order_id", "day", "amount"])
    people = pd.DataFrame({"id": np.arange(101, 101 + customers), "external_id": None, "name": "x",
                           "owner_id": None, "created_day": 18_000.0, "industry": "Retail", "country": "DE",
                           "employees": 5.0})
    goods = pd.DataFrame({"id": np.arange(1, products + 1), "name": [f"P{k}" for k in range(products)], "sku": None})
    events = pd.DataFrame({"cust": pd.Series([], dtype=int), "day": pd.Series([], dtype=float), "offer": []})
    return History("contact", people, goods, frame.astype({"cust": int, "prod": int}), events, [], [], [])


@settings(max_examples=60, deadline=None)
@given(st.lists(purchase, max_size=40), st.booleans())
def test_an_owned_product_is_never_a_candidate(purchases, dated):
    h = history(purchases)
    owned = owned_counts(h, AS_OF, dated=dated)
    rows = candidate_rows(h, AS_OF, dated=dated)
    assert (owned[rows["cust"].to_numpy(dtype=int), rows["prod"].to_numpy(dtype=int)] == 0).all()
    # ... and every pair that is not owned is a candidate (no customer silently dropped)
    assert len(rows) == int((owned == 0).sum())


@settings(max_examples=60, deadline=None)
@given(st.lists(purchase, max_size=30), st.lists(purchase, min_size=1, max_size=10))
def test_purchases_after_the_cutoff_never_change_its_features(earlier, later):
    dated_earlier = [p for p in earlier if p[2] is None or p[2] <= AS_OF]
    after = [(c, p, AS_OF + 1 + (day or 0) % 500) for c, p, day in later]  # strictly after the cutoff
    before = candidate_rows(history(dated_earlier), AS_OF, dated=True)
    with_future = candidate_rows(history(dated_earlier + after), AS_OF, dated=True)
    pd.testing.assert_frame_equal(before, with_future)


def test_out_of_fold_scores_do_not_memorise_a_customers_own_labels():
    """Labels that are pure per-customer noise: in-sample boosting memorises them, out-of-fold scoring cannot."""
    rng = np.random.default_rng(3)
    customers = np.arange(400)
    frame = pd.DataFrame({"customer_id": np.repeat(customers, 3), "product_id": np.tile([1, 2, 3], 400),
                          "signature": np.repeat(rng.random(400), 3)})  # identifies the customer, predicts nothing
    y = np.repeat(rng.random(400) < 0.3, 3).astype(float)
    w = np.ones(len(y))
    make = lambda: GradientBoosting(["signature"], ["product_id"])  # noqa: E731
    in_sample = make().fit(frame, y, w).predict(frame)
    out_of_fold = OutOfFold(make).fit(frame, y, w).predict(frame)
    from crm.ml.metrics import auc

    assert auc(y, in_sample) > 0.75
    assert 0.35 < auc(y, out_of_fold) < 0.65


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1), st.integers(0, 1)), min_size=1, max_size=60))
def test_baselines_are_probabilities_and_rules_never_fall_below_the_base_rate(rows):
    frame = pd.DataFrame({"customer_id": np.arange(len(rows)), "product_id": [r[0] + 1 for r in rows],
                          **{f"own_{k}": [float(r[1] and r[0] != k - 1) for r in rows] for k in range(1, 5)}})
    y, w = np.array([r[2] for r in rows], dtype=float), np.ones(len(rows))
    rules = AssociationRules().fit(frame, y, w).predict(frame)
    base = Popularity().fit(frame, y, w).predict(frame)
    assert ((rules >= 0) & (rules <= 1)).all() and ((base >= 0) & (base <= 1)).all()
    assert (rules >= base - 1e-12).all()
