"""The three tiers of the cold-start ladder, the holdout split, calibration and the chosen model's wrapper."""
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from threadpoolctl import threadpool_limits

from crm.ml import metrics as mx
from crm.ml.win.features import is_text

TIER_BASE, TIER_NB, TIER_GB = "stage base rates", "naive Bayes", "gradient boosting"
NB_MIN_DEALS, NB_MIN_PER_OUTCOME = 20, 5  # naive Bayes needs this many closed deals, and of each outcome
GB_MIN_DEALS, GB_MIN_PER_OUTCOME = 200, 50  # gradient boosting likewise
CALIBRATION_MIN_DEALS = 20  # closed deals held back for calibration (with 5 of each outcome) before calibrating
HOLDOUT_SHARE = 0.25
CALIBRATION_SHARE = 0.2  # of the training deals
SELECTION_FOLDS = 5  # the ladder compares tiers out of fold on training deals, never on the holdout
TIME_SPLIT_MIN_PER_OUTCOME = 3  # each side of a time split needs this many deals of each outcome
PRIOR_WEIGHT = 5.0  # stage base rates: pseudo-deals at the stage's default probability
NB_ALPHA = 1.0  # Laplace smoothing of the naive Bayes counts
NB_BINNED = ["days_in_stage", "age_days", "activities_30d", "days_since_activity", "company_past_wins"]
NB_BINS = 5
UP = ["activities", "activities_30d", "meetings_30d", "calls_30d", "emails_30d", "events", "events_30d"]
DOWN = ["days_since_activity", "days_since_event"]  # more engagement, or more recent, never lowers a probability
OPENMP_THREADS = 1  # measured: on a busy two-core host, more OpenMP threads made boosting 20x slower, not faster
LEAK_ABSENT, LEAK_PRESENT = 0.01, 0.05  # filled in for ≤ 1 % of one outcome and ≥ 5 % of the other: leaked


def _clip(p) -> np.ndarray:
    return np.clip(np.asarray(p, dtype=float), 1e-3, 1 - 1e-3)


class _Classifier(ClassifierMixin, BaseEstimator):
    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


class StageRates(_Classifier):
    """Tier 1: each stage's win rate among training snapshots, shrunk toward the stage's default probability."""

    def __init__(self, prior_weight: float = PRIOR_WEIGHT):
        self.prior_weight = prior_weight

    def fit(self, X: pd.DataFrame, y):
        frame = pd.DataFrame({"stage": X["stage"].to_numpy(), "y": np.asarray(y, dtype=float),
                              "default": X["stage_probability"].to_numpy(dtype=float)})
        g = frame.groupby("stage").agg(n=("y", "size"), wins=("y", "sum"), default=("default", "first"))
        prior = self.prior_weight * g["default"].fillna(0.5)
        self.rates_ = ((g["wins"] + prior) / (g["n"] + self.prior_weight)).to_dict()
        self.overall_ = float(frame["y"].mean()) if len(frame) else 0.5
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        default = X["stage_probability"].astype(float).fillna(getattr(self, "overall_", 0.5))
        p = _clip(X["stage"].map(getattr(self, "rates_", {})).astype(float).fillna(default))
        return np.column_stack([1 - p, p])


class SmoothedNB(_Classifier):
    """Tier 2: naive Bayes over categorical fields with Laplace smoothing, as Odoo's predictive lead scoring does,
    plus a few numbers in quantile bins (engagement bins are made monotone: more engagement never counts less)."""

    def __init__(self, alpha: float = NB_ALPHA, bins: int = NB_BINS):
        self.alpha = alpha
        self.bins = bins

    def _fields(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        out = {}
        for c in self.categorical_:
            out[c] = X[c].astype(object).where(X[c].notna(), "∅").astype(str).to_numpy() if c in X else \
                np.full(len(X), "∅")
        for c, edges in self.edges_.items():
            v = X[c].to_numpy(dtype=float) if c in X else np.full(len(X), np.nan)
            out[c] = np.where(np.isnan(v), -1, np.searchsorted(edges, v, side="right")).astype(str)
        return out

    def fit(self, X: pd.DataFrame, y):
        y = np.asarray(y, dtype=int)
        self.categorical_ = [c for c in X.columns if is_text(X[c])]
        self.edges_ = {c: np.unique(np.nanquantile(X[c].to_numpy(dtype=float), np.linspace(0, 1, self.bins + 1)[1:-1]))
                       for c in NB_BINNED if c in X and X[c].notna().any()}
        wins, losses = int(y.sum()), int(len(y) - y.sum())
        self.prior_ = math.log((wins + self.alpha) / (losses + self.alpha))
        self.tables_ = {}
        for name, values in self._fields(X).items():
            frame = pd.DataFrame({"v": values, "y": y}).groupby("v")["y"].agg(["sum", "size"])
            k = len(frame) + 1
            won = (frame["sum"] + self.alpha) / (wins + self.alpha * k)
            lost = (frame["size"] - frame["sum"] + self.alpha) / (losses + self.alpha * k)
            table = np.log(won / lost)
            if name in UP or name in DOWN:
                table = self._monotone(table, up=name in UP)
            self.tables_[name] = table.to_dict()
        self.classes_ = np.array([0, 1])
        return self

    @staticmethod
    def _monotone(table: pd.Series, up: bool) -> pd.Series:
        order = sorted(table.index, key=lambda b: int(b))  # bin -1 (missing) first
        values = table.reindex(order).to_numpy()
        values = np.maximum.accumulate(values) if up else np.maximum.accumulate(values[::-1])[::-1]
        return pd.Series(values, index=order)

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Each field's log-likelihood ratio for each row: positive raises the odds of winning."""
        return pd.DataFrame({name: pd.Series(values).map(self.tables_[name]).fillna(0.0).to_numpy()
                             for name, values in self._fields(X).items()}, index=X.index)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        logit = self.prior_ + self.contributions(X).sum(axis=1).to_numpy()
        p = _clip(1 / (1 + np.exp(-logit)))
        return np.column_stack([1 - p, p])


class GradientBoosting(_Classifier):
    """Tier 3: histogram gradient boosting; categories are coded by a vocabulary learnt in fit (unknown → missing);
    engagement is monotone (more, or more recent, never lowers the probability)."""

    def __init__(self, max_iter: int = 150, learning_rate: float = 0.12, max_leaf_nodes: int = 31,
                 min_samples_leaf: int = 40, l2_regularization: float = 1.0, random_state: int = 0):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.random_state = random_state

    def _encode(self, X: pd.DataFrame) -> np.ndarray:
        cols = []
        for c in self.columns_:
            if c in self.vocab_:
                # Categorical coding hashes each value once (Series.map over string arrays was a fifth of scoring).
                codes = pd.Categorical(X[c], categories=list(self.vocab_[c])).codes if c in X else \
                    np.full(len(X), -1)
                cols.append(np.where(codes < 0, np.nan, codes).astype(float))
            else:
                cols.append(X[c].to_numpy(dtype=float) if c in X else np.full(len(X), np.nan))
        return np.column_stack(cols) if cols else np.zeros((len(X), 0))

    def fit(self, X: pd.DataFrame, y):
        self.columns_ = [c for c in X.columns if X[c].notna().any()]  # an all-empty column carries nothing
        self.vocab_ = {}
        for c in self.columns_:
            if is_text(X[c]):
                top = X[c].dropna().value_counts().index[:250]
                self.vocab_[c] = {v: i for i, v in enumerate(top)}
        mask = [c in self.vocab_ for c in self.columns_]
        monotone = [1 if c in UP else -1 if c in DOWN else 0 for c in self.columns_]
        self.model_ = HistGradientBoostingClassifier(
            max_iter=self.max_iter, learning_rate=self.learning_rate, max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf, l2_regularization=self.l2_regularization,
            categorical_features=mask if any(mask) else None, monotonic_cst=monotone, early_stopping=True,
            validation_fraction=0.1, n_iter_no_change=15, random_state=self.random_state)
        with threadpool_limits(limits=OPENMP_THREADS, user_api="openmp"):
            self.model_.fit(self._encode(X), np.asarray(y, dtype=int))
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        with threadpool_limits(limits=OPENMP_THREADS, user_api="openmp"):
            return self.model_.predict_proba(self._encode(X))


@dataclass
class WinModel:
    """What is stored for a version: the chosen tier's calibrated estimator and what explanations need."""
    tier: str
    estimator: object  # predict_proba(DataFrame of features)
    columns: list[str]
    reference: dict  # a typical value per column: what "unlike this deal" means in explanations
    excluded: dict = field(default_factory=dict)  # column -> why it was left out
    version: str | None = None  # set when loaded from the registry
    metadata: dict = field(default_factory=dict)

    def align(self, X: pd.DataFrame) -> pd.DataFrame:
        """X with exactly the model's columns (a custom field no deal has filled in yet is missing)."""
        missing = [c for c in self.columns if c not in X]
        return X.assign(**{c: np.nan for c in missing})[self.columns] if missing else X[self.columns]

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return _clip(self.estimator.predict_proba(self.align(X))[:, 1])


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # boolean masks over snapshots
    holdout: np.ndarray
    fit: np.ndarray  # within train: fitting rows
    calibration: np.ndarray  # within train: held back for calibration (may be empty)
    description: str
    deal_ids: np.ndarray  # each snapshot's deal (selection folds group by it)


def split(snaps: pd.DataFrame, closed_at: pd.Series, seed: int = 0) -> Split:
    """The holdout by time when every closed deal has a close date and both sides hold both outcomes; else a
    stratified random share. Deals never straddle: all of a deal's snapshots fall on one side.

    The calibration deals are a stratified random share of the training deals, not its latest ones: they stand for
    the whole training period, as the fitting deals do. (Taken last, they carried that season's win rate into every
    calibrated tier, and on the Maven deals a win rate that moved again by the holdout.)"""
    outcome = snaps.groupby("deal_id")["won"].first()
    closed = closed_at.reindex(outcome.index)
    rng = np.random.default_rng(seed)
    holdout_deals = None
    if len(outcome) and closed.notna().all() and closed.nunique() > 4:
        cutoff = float(closed.quantile(1 - HOLDOUT_SHARE))
        late = closed > cutoff
        if _both(outcome[late]) and _both(outcome[~late]):
            holdout_deals = outcome.index[late]
            day = pd.Timestamp(cutoff, unit="s").date()
            description = f"time: trained on deals closed by {day}, tested on the {int(late.sum())} closed after"
    if holdout_deals is None:
        holdout_deals = _stratified(outcome, HOLDOUT_SHARE, rng)
        description = (f"stratified random {int(HOLDOUT_SHARE * 100)} % of deals "
                       f"(close dates do not allow a time split with both outcomes on each side)")
    cal_deals = _stratified(outcome.drop(holdout_deals), CALIBRATION_SHARE, rng)
    in_holdout = snaps["deal_id"].isin(holdout_deals).to_numpy()
    in_cal = snaps["deal_id"].isin(cal_deals).to_numpy() & ~in_holdout
    cal_outcomes = outcome.reindex(pd.Index(cal_deals))
    if len(cal_outcomes) < CALIBRATION_MIN_DEALS or not _both(cal_outcomes, 5):
        in_cal = np.zeros(len(snaps), dtype=bool)
    return Split(~in_holdout, in_holdout, ~in_holdout & ~in_cal, in_cal, description,
                 snaps["deal_id"].to_numpy(dtype=np.int64))


def _stratified(outcome: pd.Series, share: float, rng) -> list:
    """A random `share` of the deals (index of `outcome`) taken from the won and the lost ones alike."""
    picked = []
    for _, group in outcome.groupby(outcome):
        ids = rng.permutation(group.index.to_numpy())
        picked.extend(ids[:int(round(len(ids) * share))])
    return picked


def _both(outcome: pd.Series, least: int = TIME_SPLIT_MIN_PER_OUTCOME) -> bool:
    wins = int(outcome.sum())
    return wins >= least and len(outcome) - wins >= least


def leaky_columns(X: pd.DataFrame, y: np.ndarray) -> dict:
    """Columns filled in for (almost) no snapshot of one outcome but for many of the other: values recorded at or
    after the close (a lost deal's zero amount, a contract end written when a deal is won), not predictors."""
    out = {}
    y = np.asarray(y, dtype=bool)
    if y.all() or not y.any():
        return out
    for c in X.columns:
        if c in UP or c in DOWN or c in ("company_past_wins", "company_past_deals"):
            continue
        present = X[c].notna().to_numpy()
        won, lost = float(present[y].mean()), float(present[~y].mean())
        if min(won, lost) <= LEAK_ABSENT and max(won, lost) >= LEAK_PRESENT:
            empty = "won" if won < lost else "lost"
            out[c] = (f"filled in for {min(won, lost):.0%} of {empty} and {max(won, lost):.0%} of "
                      f"{'lost' if empty == 'won' else 'won'} snapshots: recorded at or after the close")
    return out


def calibrate(estimator, X: pd.DataFrame, y) -> object:
    """Calibrated on rows the estimator never saw; isotonic with plenty of rows, sigmoid otherwise."""
    method = "isotonic" if len(X) >= 5000 else "sigmoid"
    return CalibratedClassifierCV(FrozenEstimator(estimator), method=method).fit(X, np.asarray(y, dtype=int))


class _Scores(_Classifier):
    """An already-fitted "model" whose probability is its one input column: lets `calibrate` map bare scores."""
    def fit(self, X=None, y=None):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X) -> np.ndarray:
        p = np.asarray(X, dtype=float).reshape(-1)
        return np.column_stack([1 - p, p])


@dataclass(frozen=True)
class ScoreMap:
    """Scores → calibrated probabilities, by the same method `calibrate` uses for that many rows."""
    calibrated: object

    def predict(self, raw: np.ndarray) -> np.ndarray:
        return self.calibrated.predict_proba(np.asarray(raw, dtype=float).reshape(-1, 1))[:, 1]


def calibration_map(raw: np.ndarray, y) -> ScoreMap:
    return ScoreMap(calibrate(_Scores().fit(), np.asarray(raw, dtype=float).reshape(-1, 1), y))


def chance_check(y, p, deals_pos: int, deals_neg: int) -> dict:
    """AUC with a Hanley–McNeil 95 % interval counted in deals (snapshots of one deal are not independent)."""
    auc = mx.auc(y, p)
    if auc is None or deals_pos == 0 or deals_neg == 0:
        return {"auc_low": None, "auc_high": None, "beats_chance": False}
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    se = math.sqrt(max(auc * (1 - auc) + (deals_pos - 1) * (q1 - auc * auc) + (deals_neg - 1) * (q2 - auc * auc), 0)
                   / (deals_pos * deals_neg))
    low, high = auc - 1.96 * se, auc + 1.96 * se
    return {"auc_low": low, "auc_high": high, "beats_chance": bool(low > 0.5)}
