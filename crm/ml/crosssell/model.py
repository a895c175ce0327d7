"""The scorers: popularity, co-purchase association rules, gradient boosting; and the out-of-fold ensemble.

Every scorer is fitted once per fold of customers (customer id modulo FOLDS) and a customer is always scored by
the fold model that never saw them, so a customer who appears as a non-owner in training is not simply memorised
as a negative. The same routing scores the holdout, which makes the champion comparable on it.
"""
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from threadpoolctl import threadpool_limits

from crm.ml.crosssell.calibration import score_frame

FOLDS = 4
SHRINK = 10.0  # pseudo-rows pulling a rule's confidence toward the product's base rate
MIN_SUPPORT = 5  # a rule must rest on at least this many customers to be used or quoted
# One OpenMP thread: on the shared 2-CPU host, 2 threads made a 40k-row fit 7× slower (16 s against 2.3 s).
THREADS = 1


def own_matrix(frame: pd.DataFrame, product_ids: list[int]) -> np.ndarray:
    """Which products each row's customer owns (columns in `product_ids` order; unknown products are 0)."""
    columns = [f"own_{pid}" for pid in product_ids]
    return frame.reindex(columns=columns, fill_value=0.0).to_numpy(dtype=float) > 0


class Popularity:
    """Baseline: every customer gets the product's rate in training."""

    def fit(self, frame: pd.DataFrame, y: np.ndarray, w: np.ndarray):
        rates = pd.DataFrame({"p": frame["product_id"].to_numpy(), "y": y * w, "w": w}).groupby("p").sum()
        self.rate_ = (rates["y"] / rates["w"]).to_dict()
        self.default_ = float(np.sum(y * w) / np.sum(w)) if len(y) else 0.0
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return frame["product_id"].map(self.rate_).fillna(self.default_).to_numpy(dtype=float)


class AssociationRules:
    """Baseline: "owns X → buys Z" rules; a row scores the most confident rule it fires, else the base rate."""

    def fit(self, frame: pd.DataFrame, y: np.ndarray, w: np.ndarray):
        self.products_ = sorted(int(p) for p in frame["product_id"].unique())
        self.stats_ = rule_stats(frame, y, w, self.products_, pairs=False)
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.zeros(len(frame))
        own = own_matrix(frame, self.products_)
        pid = frame["product_id"].to_numpy()
        for z, stats in self.stats_.items():
            rows = pid == z
            conf = (stats.hits + SHRINK * stats.base) / (stats.support + SHRINK)
            conf = np.where(stats.support >= MIN_SUPPORT, conf, stats.base)
            out[rows] = np.max(np.where(own[rows], conf[None, :], stats.base), axis=1, initial=stats.base)
        return out


@dataclass
class RuleStats:
    """For one candidate product z: rows, positives and, per antecedent product (or pair), support and hits."""
    rows: float
    base: float
    support: np.ndarray  # (P,) or (P, P) with pairs
    hits: np.ndarray
    pair_support: np.ndarray | None = None
    pair_hits: np.ndarray | None = None


def rule_stats(frame, y, w, product_ids: list[int], *, pairs: bool) -> dict[int, RuleStats]:
    own = own_matrix(frame, product_ids).astype(float)
    pid = frame["product_id"].to_numpy()
    out = {}
    for z in product_ids:
        rows = pid == z
        if not rows.any():
            continue
        o, yy, ww = own[rows], y[rows], w[rows]
        weight = ww[:, None] * o
        stats = RuleStats(float(ww.sum()), float((yy * ww).sum() / ww.sum()), weight.sum(axis=0),
                          (weight * yy[:, None]).sum(axis=0))
        if pairs:
            stats.pair_support = weight.T @ o
            stats.pair_hits = (weight * yy[:, None]).T @ o
        out[z] = stats
    return out


def build_pipeline(numeric: list[str], categorical: list[str]) -> Pipeline:
    features = ColumnTransformer([("numbers", "passthrough", numeric),
                                  ("categories", OneHotEncoder(handle_unknown="ignore", min_frequency=5,
                                                               sparse_output=False), categorical)],
                                 sparse_threshold=0.0)
    model = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.08, max_leaf_nodes=31,
                                           min_samples_leaf=40, l2_regularization=1.0, random_state=0)
    return Pipeline([("features", features), ("model", model)])


class GradientBoosting:
    def __init__(self, numeric: list[str], categorical: list[str]):
        self.numeric, self.categorical = numeric, categorical

    def _inputs(self, frame: pd.DataFrame) -> pd.DataFrame:
        x = frame.reindex(columns=self.numeric + self.categorical)
        x[self.numeric] = x[self.numeric].astype(float)
        x[self.categorical] = x[self.categorical].astype(object).where(x[self.categorical].notna(), "∅").astype(str)
        return x

    def fit(self, frame, y, w):
        # Inputs never known in training (recency in undated mode) are left out: HGB's binning rejects them.
        known = frame.reindex(columns=self.numeric).notna().any()
        self.numeric = [c for c in self.numeric if known[c]]
        self.pipeline_ = build_pipeline(self.numeric, self.categorical)
        with threadpool_limits(THREADS, user_api="openmp"):
            self.pipeline_.fit(self._inputs(frame), y.astype(int), model__sample_weight=w)
        return self

    def predict(self, frame) -> np.ndarray:
        with threadpool_limits(THREADS, user_api="openmp"):
            return self.pipeline_.predict_proba(self._inputs(frame))[:, 1]


class OutOfFold:
    """One fitted scorer per fold of customers; each row is scored by the scorer that did not see its customer."""

    def __init__(self, make, folds: int = FOLDS):
        self.make, self.folds = make, folds

    def fit(self, frame: pd.DataFrame, y: np.ndarray, w: np.ndarray):
        fold = frame["customer_id"].to_numpy() % self.folds
        self.models_ = []
        for k in range(self.folds):
            train = fold != k
            self.models_.append(self.make().fit(frame[train], y[train], w[train]) if _two_classes(y[train])
                                else Popularity().fit(frame[train], y[train], w[train]))
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.zeros(len(frame))
        fold = frame["customer_id"].to_numpy() % self.folds
        for k, model in enumerate(self.models_):
            rows = fold == k
            if rows.any():
                out[rows] = model.predict(frame[rows])
        return out


def _two_classes(y: np.ndarray) -> bool:
    return 0 < y.sum() < len(y)


@dataclass
class CrossSellModel:
    """What the registry stores: the live scorer and its calibration, both baselines, and the rule statistics used
    in explanations."""
    tier: str  # "gradient boosting" | "association rules"
    mode: str  # dated | undated
    level: str
    horizon_days: int
    scorer: OutOfFold
    baselines: dict[str, OutOfFold]
    rules: dict[int, RuleStats]  # on all training rows, with pairs: the evidence quoted to reps
    products: dict[int, str]  # product id → name at training time
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    offers: list[str] = field(default_factory=list)  # offer_k features count views of offers[k]
    prior: dict[int, float] = field(default_factory=dict)  # undated: share of all customers owning each product
    calibrator: OutOfFold | None = None  # of calibration.Calibrator; None: the scorer's output as is

    def predict(self, frame: pd.DataFrame, *, calibrated: bool = True) -> np.ndarray:
        """Probabilities for candidate rows; `calibrated=False` gives the scorer's own (for the before/after ECE)."""
        if not len(frame):
            return np.zeros(0)
        out = np.clip(self.scorer.predict(frame), 0.0, 1.0)
        calibrator = getattr(self, "calibrator", None)  # models pickled before calibration existed have none
        if calibrated and calibrator is not None:
            out = calibrator.predict(score_frame(frame, out))
        if self.mode == "undated":
            # The cross-section learns from customers who own something else; someone who owns nothing gets the
            # product's share among all customers rather than an extrapolation.
            alone = ~own_matrix(frame, sorted(self.products)).any(axis=1)
            out[alone] = frame.loc[alone, "product_id"].map(self.prior).fillna(0.0).to_numpy(dtype=float)
        return out
