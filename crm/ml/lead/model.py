"""The predictive lead model: a calibrated scikit-learn pipeline plus what is needed to explain its scores."""
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from crm.ml.lead.features import CATEGORICAL, NUMERIC

LABELS = {"industry": "industry", "country": "country", "source": "source", "title_level": "title level",
          "log_employees": "company size", "log_revenue": "company revenue", "has_company": "has a company",
          "email_opt_in": "email opt-in", "tenure_days": "days since the contact was created"}


def readable(feature: str) -> str:
    """'email_click_30d' -> 'email click (30 d)'; 'offer_viewed_days_since' -> 'days since last offer viewed'."""
    if feature in LABELS:
        return LABELS[feature]
    if feature.endswith("_days_since"):
        return f"days since last {feature.removesuffix('_days_since').replace('_', ' ')}"
    kind, _, window = feature.rpartition("_")
    return f"{kind.replace('_', ' ')} ({window.removesuffix('d')} d)"


def build_pipeline(tier: str) -> Pipeline:
    """Gradient boosting when there is enough data, else logistic regression: the same features either way."""
    numeric = StandardScaler() if tier == "logistic regression" else "passthrough"
    features = ColumnTransformer([("categorical", OneHotEncoder(handle_unknown="ignore", min_frequency=5),
                                   CATEGORICAL), ("numeric", numeric, NUMERIC)])
    if tier == "logistic regression":
        model = LogisticRegression(max_iter=2000, C=0.5)
    else:
        model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.06, max_leaf_nodes=15,
                                               min_samples_leaf=40, l2_regularization=1.0, random_state=0)
    return Pipeline([("features", features), ("model", model)])


@dataclass
class LeadModel:
    """What the registry stores: the calibrated estimator and a reference lead for explanations."""
    estimator: object
    tier: str
    reference: dict = field(default_factory=dict)  # each feature's typical value (median / mode) in training

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return self.estimator.predict_proba(x[CATEGORICAL + NUMERIC])[:, 1]

    def factors(self, x: pd.DataFrame, top: int = 5) -> list[list[dict]]:
        """Per row: the features whose typical value would change the probability most (signed effect)."""
        effects = self.effects(x)
        out = []
        for i in range(len(x)):
            ranked = sorted(effects, key=lambda f: -abs(effects[f][i]))[:top]
            out.append([{"feature": readable(f), "value": _shown(f, x.iloc[i][f]),
                         "effect": round(float(effects[f][i]), 4)} for f in ranked if effects[f][i] != 0])
        return out


    def effects(self, x: pd.DataFrame) -> dict[str, np.ndarray]:
        """Per feature, each row's probability minus its probability with that feature at its typical value.
        One predict call over all the swapped copies: a pipeline's per-call overhead dwarfs a few rows."""
        features = CATEGORICAL + NUMERIC
        copies = [x]
        for feature in features:
            swapped = x.copy()
            swapped[feature] = self.reference[feature]
            copies.append(swapped)
        p = self.predict(pd.concat(copies, ignore_index=True)).reshape(len(copies), len(x))
        return {feature: p[0] - p[i + 1] for i, feature in enumerate(features)}


def _shown(feature: str, value):
    """The value as a user knows it: employees and revenue unlogged, days and counts rounded."""
    value = value.item() if hasattr(value, "item") else value
    if feature.startswith("log_"):
        return round(float(np.expm1(value)))
    return round(value, 1) if isinstance(value, float) else value


def reference_values(x: pd.DataFrame) -> dict:
    ref = {c: x[c].mode().iloc[0] if len(x) else "(none)" for c in CATEGORICAL}
    ref.update({c: float(x[c].median()) if len(x) else 0.0 for c in NUMERIC})
    return ref


def fit_lead_model(x: pd.DataFrame, y: np.ndarray, tier: str, *, seed: int = 0) -> LeadModel:
    """Fit on three quarters of the training rows and calibrate (sigmoid) on the quarter it did not see."""
    rng = np.random.default_rng(seed)
    calibrate = np.zeros(len(y), dtype=bool)
    for label in (0, 1):  # stratified: a quarter of each class
        idx = np.flatnonzero(y == label)
        calibrate[rng.choice(idx, size=len(idx) // 4, replace=False)] = True
    pipe = build_pipeline(tier).fit(x[~calibrate], y[~calibrate])
    estimator = pipe
    if y[calibrate].sum() >= 5:
        estimator = CalibratedClassifierCV(FrozenEstimator(pipe), method="sigmoid").fit(x[calibrate], y[calibrate])
    return LeadModel(estimator, tier, reference_values(x))
