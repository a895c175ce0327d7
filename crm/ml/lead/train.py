"""Training the predictive lead model: dataset and split, tier, metrics against baselines, registry promotion."""
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from crm.clock import utcnow
from crm.db import read_scope
from crm.ml import metrics, registry
from crm.ml.drift import summarise
from crm.ml.lead.features import FEATURES, HORIZON_DAYS, NUMERIC, snapshot
from crm.ml.lead.model import LeadModel, fit_lead_model, readable
from crm.ml.lead.rules import rule_scores

MIN_CLASS = 20  # conversions (and non-conversions) a training set and a holdout each need
BOOSTING_POSITIVES = 200  # below this many training conversions, logistic regression
SEED = 0
# Drift is checked on every numeric input but the 90-day counts: they mostly repeat the 30-day ones, and 15 rows
# (fit, age, and each event kind's 30-day count and days since the last) are what a reader can scan on the card.
DRIFT_FEATURES = [f for f in NUMERIC if not f.endswith("_90d")]


def _dataset(engine: Engine, now: datetime) -> dict:
    """Time split when two back-to-back horizons both hold enough conversions; else stratified random 25 %."""
    holdout_at, train_at = now - timedelta(days=HORIZON_DAYS), now - timedelta(days=2 * HORIZON_DAYS)
    with read_scope(engine) as session:
        conn = session.connection()
        x_hold, y_hold = snapshot(conn, holdout_at)
        x_train, y_train = snapshot(conn, train_at)
    if _enough(y_train) and _enough(y_hold):
        return dict(x_train=x_train, y_train=y_train, x_hold=x_hold, y_hold=y_hold, holdout_at=holdout_at,
                    window={"train_as_of": train_at, "holdout_as_of": holdout_at, "horizon_days": HORIZON_DAYS},
                    split=f"time: features as of {train_at:%Y-%m-%d} for training, as of {holdout_at:%Y-%m-%d} "
                          f"for the holdout, each labelled by the next {HORIZON_DAYS} days")
    hold = _stratified(y_hold, 0.25)
    return dict(x_train=x_hold[~hold], y_train=y_hold[~hold], x_hold=x_hold[hold], y_hold=y_hold[hold],
                holdout_at=holdout_at, window={"as_of": holdout_at, "horizon_days": HORIZON_DAYS},
                split=f"stratified random 25 % of leads as of {holdout_at:%Y-%m-%d} (too few conversions for a "
                      f"time split), labelled by the next {HORIZON_DAYS} days")


def _enough(y: np.ndarray) -> bool:
    return int(y.sum()) >= MIN_CLASS and int(len(y) - y.sum()) >= MIN_CLASS


def _stratified(y: np.ndarray, share: float) -> np.ndarray:
    rng, hold = np.random.default_rng(SEED), np.zeros(len(y), dtype=bool)
    for label in (0, 1):
        idx = np.flatnonzero(y == label)
        hold[rng.choice(idx, size=int(round(len(idx) * share)), replace=False)] = True
    return hold


def _baselines(engine: Engine, data: dict) -> dict:
    """The rules' points as of the holdout time (ranking only), and the training base rate for everyone."""
    y = data["y_hold"]
    points = (rule_scores(engine, now=data["holdout_at"], reasons=False).set_index("contact_id")["points"]
              .reindex(data["x_hold"].index).fillna(0).to_numpy(float))
    rank = pd.Series(points).rank(pct=True).to_numpy() * 0.998 + 0.001  # points are not probabilities: rank only
    rate = float(data["y_train"].mean())
    return {"rules": {"auc": metrics.auc(y, rank), **_ranking(y, rank)},
            "base_rate": metrics.probability_metrics(y, np.full(len(y), rate))}


def _ranking(y, p) -> dict:
    out = metrics.ranking_metrics(y, p, k=max(1, len(y) // 10))
    return {k: v for k, v in out.items() if k != "auc"}


def _importance(model: LeadModel, x: pd.DataFrame) -> list[tuple[str, float]]:
    """Mean absolute change of probability when a feature is set to its typical value, on up to 500 rows."""
    effects = model.effects(x.sample(min(len(x), 500), random_state=SEED))
    return sorted(((readable(f), float(np.abs(e).mean())) for f, e in effects.items()), key=lambda w: -w[1])


def train_lead(engine: Engine, *, root: Path | None = None, now: datetime | None = None) -> dict:
    """Train, evaluate against the rules and the base rate, register, and promote if not worse than the champion."""
    now = now or utcnow()
    data = _dataset(engine, now)
    y_train, y_hold = data["y_train"], data["y_hold"]
    rows = {"train": int(len(y_train)), "holdout": int(len(y_hold)), "train_conversions": int(y_train.sum()),
            "holdout_conversions": int(y_hold.sum())}
    if not (_enough(y_train) and _enough(y_hold)):
        return {"version": None, "tier": "rules only", "split": data["split"], "rows": rows, "metrics": {},
                "promoted": False, "reason": f"too few conversions to train: each of the training set and the "
                                             f"holdout needs {MIN_CLASS} leads who converted and {MIN_CLASS} "
                                             f"who did not"}
    tier = "gradient boosting" if y_train.sum() >= BOOSTING_POSITIVES else "logistic regression"
    model = fit_lead_model(data["x_train"], y_train, tier, seed=SEED)
    p = model.predict(data["x_hold"])
    scores = {"model": {**metrics.probability_metrics(y_hold, p), **_ranking(y_hold, p)}, **_baselines(engine, data)}
    metadata = {
        "tier": tier, "tier_reason": f"{rows['train_conversions']} training conversions; gradient boosting needs "
                                     f"{BOOSTING_POSITIVES}", "split": data["split"], "data_window": data["window"],
        "rows": rows, "features": FEATURES, "label": f"became an opportunity (deal opened) or customer (order) "
                                                     f"within {HORIZON_DAYS} days",
        "metrics": scores, "reliability": metrics.reliability(y_hold, p),
        "importance": _importance(model, data["x_hold"]),
        "feature_means": {f: float(data["x_train"][f].mean()) for f in NUMERIC},
        "training_summary": summarise(data["x_train"], DRIFT_FEATURES),
        "data_hash": registry.data_hash(pd.util.hash_pandas_object(data["x_train"]).to_numpy().tobytes(),
                                        np.asarray(y_train).tobytes(), np.asarray(y_hold).tobytes()),
    }
    version = registry.register("lead", model, metadata, root=root, now=utcnow())
    promotion = registry.promote_if_better(version, metric="auc", candidate_score=scores["model"]["auc"],
                                           score_champion=lambda old: _champion_auc(old, data), root=root)
    return {"version": version.version, "tier": tier, "split": data["split"], "rows": rows,
            "metrics": _jsonable(scores), "promoted": promotion.promoted, "reason": promotion.reason}


def _champion_auc(old: LeadModel, data: dict) -> float:
    try:
        return metrics.auc(data["y_hold"], old.predict(data["x_hold"])) or 0.0
    except (KeyError, ValueError):  # an older champion built on other features cannot score this holdout
        return 0.0


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value
