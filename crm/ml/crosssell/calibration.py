"""Calibration: a map from the scorer's out-of-fold score to a probability that matches observed purchase rates.

The map is fitted on training rows' out-of-fold scores, so it learns from scores the scorer made without seeing
the row's customer, as it does for everyone it scores later. It is fitted per fold of customers too (wrapped in
`OutOfFold` by training): in undated mode the holdout *is* the training cross-section, and a single map would
have seen every holdout label.
"""
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

# Isotonic regression is a free-form step function; below a few hundred buyers its steps rest on a handful of
# them each and chase noise, while Platt scaling's two parameters do not (Niculescu-Mizil and Caruana, 2005, saw
# isotonic overtake Platt at around a thousand calibration rows).
ISOTONIC_MIN_POSITIVES = 500
PRODUCT_MIN_ROWS = 30  # buyers and non-buyers a product needs for its own map; with fewer it uses the pooled one


class Platt:
    """Sigmoid calibration: a logistic regression on the score's log-odds."""

    def fit(self, p: np.ndarray, y: np.ndarray, w: np.ndarray):
        self.model_ = LogisticRegression().fit(_log_odds(p), y.astype(int), sample_weight=w)
        return self

    def predict(self, p: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(_log_odds(p))[:, 1]


def _log_odds(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))[:, None]


def fit_map(p: np.ndarray, y: np.ndarray, w: np.ndarray) -> IsotonicRegression | Platt:
    """Isotonic with plenty of buyers, Platt otherwise; both weighted (dated mode weights up sampled non-buyers)."""
    if y.sum() >= ISOTONIC_MIN_POSITIVES:
        return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y, sample_weight=w)
    return Platt().fit(p, y, w)


class Calibrator:
    """Per product where it has at least PRODUCT_MIN_ROWS buyers and non-buyers, pooled over all rows otherwise.

    Reads the frame's `score` (the scorer's output) and `product_id`; its fit needs both classes, which
    `OutOfFold` guarantees (it falls back to the popularity rate in a fold with one class).
    """

    def fit(self, frame: pd.DataFrame, y: np.ndarray, w: np.ndarray):
        p, pid = frame["score"].to_numpy(dtype=float), frame["product_id"].to_numpy()
        self.pooled_ = fit_map(p, y, w)
        self.by_product_ = {}
        for z in np.unique(pid):
            rows = pid == z
            if min(y[rows].sum(), (1 - y[rows]).sum()) >= PRODUCT_MIN_ROWS:
                self.by_product_[int(z)] = fit_map(p[rows], y[rows], w[rows])
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        p, pid = frame["score"].to_numpy(dtype=float), frame["product_id"].to_numpy()
        out = self.pooled_.predict(p)
        for z, calibration in self.by_product_.items():
            rows = pid == z
            if rows.any():
                out[rows] = calibration.predict(p[rows])
        return np.clip(out, 0.0, 1.0)


def score_frame(frame: pd.DataFrame, p: np.ndarray) -> pd.DataFrame:
    """What a Calibrator (inside OutOfFold) reads: who, which product, and the scorer's output."""
    return pd.DataFrame({"customer_id": frame["customer_id"].to_numpy(), "product_id": frame["product_id"].to_numpy(),
                         "score": p})
