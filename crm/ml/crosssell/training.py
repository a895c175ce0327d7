"""Training: choose the mode (dated or undated), build rows, fit the ladder's tier and both baselines out of fold,
calibrate the tier on its out-of-fold training scores, compare on the holdout (pooled and per product), register
the version and promote it only if it is at least as good as the champion."""
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from crm import clock
from crm.errors import NotFound, ValidationFailed
from crm.ml import metrics, registry
from crm.ml.crosssell.calibration import Calibrator, score_frame
from crm.ml.crosssell.data import History, check_level, load_history, to_days
from crm.ml.crosssell.features import bought_between, candidate_rows, feature_columns
from crm.ml.crosssell.model import (FOLDS, AssociationRules, CrossSellModel, GradientBoosting, OutOfFold, Popularity,
                                    rule_stats)

NAME = "cross-sell"
K = 100  # precision@k and recall@k are over the top 100 (customer, product) pairs of the holdout
MAX_CUTOFFS = 4  # training cutoffs, one horizon apart, before the holdout cutoff
MIN_DATED_SHARE = 0.5  # below this share of dated orders the history is treated as undated
MIN_POSITIVES = 30  # training purchases (or ownerships) the gradient-boosting tier needs
MIN_REPEAT_CUSTOMERS = 30  # customers with at least two orders the gradient-boosting tier needs
MAX_TRAIN_ROWS = 300_000
MAX_HOLDOUT_ROWS = 200_000
KEY_INPUTS = ("n_orders", "monetary", "events_90d", "n_products")  # averaged for the drift check


def level_root(root: Path | None, level: str) -> Path | None:
    """Company-level models live in their own registry folder, so each level has its own champion."""
    if level == "contact":
        return root
    from crm.config import get_settings

    return (root or get_settings().models_dir) / "company-level"


def train_cross_sell(engine, *, level: str = "contact", horizon_days: int = 90, root: Path | None = None,
                     now=None) -> dict:
    """Train, register and (if at least as good as the champion) promote a cross-sell model; return its summary."""
    check_level(level)
    if not 1 <= horizon_days <= 3650:
        raise ValidationFailed("horizon", "the horizon must be between 1 and 3650 days")
    started = time.perf_counter()
    h = load_history(engine, level)
    end = float(to_days([now or clock.utcnow()])[0])
    if not len(h.purchases) or not len(h.products):
        raise ValidationFailed("orders", "there are no completed orders with products to learn from")
    mode, cutoffs = _mode(h, end, horizon_days)
    train, holdout = _dated_rows(h, cutoffs, horizon_days) if mode == "dated" else _undated_rows(h, end)
    y, w, y_hold = train["label"].to_numpy(float), train["weight"].to_numpy(float), holdout["label"].to_numpy(float)
    tier, tier_reason = _tier(train, y)
    numeric, categorical = feature_columns(h)
    baselines = {"popularity": OutOfFold(Popularity).fit(train, y, w),
                 "association_rules": OutOfFold(AssociationRules).fit(train, y, w)}
    scorer = (OutOfFold(partial(GradientBoosting, numeric, categorical)).fit(train, y, w)
              if tier == "gradient boosting" else baselines["association_rules"])
    product_ids = [int(p) for p in h.products["id"]]
    model = CrossSellModel(tier, mode, level, horizon_days, scorer, baselines,
                           rule_stats(train, y, w, product_ids, pairs=len(product_ids) <= 40),
                           dict(zip(product_ids, h.products["name"])), numeric, categorical, list(h.offers),
                           _prior(h, product_ids), calibrator=_calibrator(scorer, train, y, w))
    predicted = model.predict(holdout)
    scored = {"model": predicted, **{name: b.predict(holdout) for name, b in baselines.items()}}
    measured = {name: _metrics(y_hold, p) for name, p in scored.items()}
    measured["model"]["ece_before_calibration"] = (metrics.ece(y_hold, model.predict(holdout, calibrated=False))
                                                   if len(y_hold) else None)
    meta = _metadata(h, mode, level, horizon_days, cutoffs, end, train, holdout, tier, tier_reason, numeric,
                     categorical, measured, y_hold, scored, model, started)
    version = registry.register(NAME, model, meta, root=level_root(root, level))
    outcome = registry.promote_if_better(
        version, metric="auc", candidate_score=_auc(y_hold, predicted),
        score_champion=lambda champ: _auc(y_hold, champ.predict(holdout)), root=level_root(root, level))
    return {"version": version.version, "mode": mode, "level": level, "horizon_days": horizon_days,
            "tier": tier, "rows": meta["rows"], "split": meta["split"], "metrics": measured,
            "promoted": outcome.promoted, "reason": outcome.reason, "seconds": meta["seconds"]}


def evaluate_cross_sell(*, root: Path | None = None, level: str = "contact") -> dict:
    """The champion's holdout metrics against both baselines, pooled and per product, as recorded at training time."""
    champ = registry.champion(NAME, root=level_root(root, check_level(level)))
    if champ is None:
        raise NotFound("no cross-sell model has been trained yet; run training first")
    m = champ.metadata
    return {key: m.get(key) for key in ("version", "trained_at", "mode", "level", "horizon_days", "tier", "rows",
                                        "split", "metrics", "breakdown", "data_window", "status")}


def _mode(h: History, end: float, horizon: int) -> tuple[str, list[float]]:
    """Dated when most orders carry a date and at least one training cutoff before the holdout has buyers."""
    holdout = end - horizon
    first = np.nanmin(h.purchases["day"].to_numpy()) if h.purchases["day"].notna().any() else np.inf
    cutoffs = [holdout - k * horizon for k in range(1, MAX_CUTOFFS + 1) if holdout - k * horizon >= first]
    if h.dated_share >= MIN_DATED_SHARE and cutoffs:
        return "dated", sorted(cutoffs) + [holdout]
    return "undated", []


def _labelled(h: History, cutoff: float, horizon: int) -> pd.DataFrame:
    rows = candidate_rows(h, cutoff, dated=True)
    bought = bought_between(h, cutoff, cutoff + horizon)
    rows["label"] = bought[rows["cust"].to_numpy(dtype=int), rows["prod"].to_numpy(dtype=int)].astype(float)
    rows["cutoff"] = cutoff
    return rows


def _dated_rows(h: History, cutoffs: list[float], horizon: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    train = pd.concat([_downsample_non_buyers(_labelled(h, c, horizon), rng) for c in cutoffs[:-1]],
                      ignore_index=True)
    holdout = _labelled(h, cutoffs[-1], horizon)
    holdout["weight"] = 1.0
    return _cap(train, MAX_TRAIN_ROWS, rng), _cap(holdout, MAX_HOLDOUT_ROWS, rng)


def _undated_rows(h: History, end: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cross-section of customers who own another product: label = owns this one, scored out of fold."""
    rows = candidate_rows(h, end, dated=False, include_owned=True)
    others = rows[[c for c in rows.columns if c.startswith("own_")]].to_numpy().sum(axis=1)
    rows = rows[others > 0].reset_index(drop=True)  # owning nothing else says nothing about cross-sell
    rows["label"], rows["weight"], rows["cutoff"] = rows["owned_target"], 1.0, end
    rows = _cap(rows, MAX_TRAIN_ROWS, np.random.default_rng(0))
    return rows, rows


def _calibrator(scorer: OutOfFold, train: pd.DataFrame, y: np.ndarray, w: np.ndarray) -> OutOfFold:
    """Calibration fitted on the training rows' out-of-fold scores: each was made without seeing its customer."""
    return OutOfFold(Calibrator).fit(score_frame(train, np.clip(scorer.predict(train), 0.0, 1.0)), y, w)


def _prior(h: History, product_ids: list[int]) -> dict[int, float]:
    owners = h.purchases.drop_duplicates(["cust", "prod"])["prod"].value_counts()
    return {pid: float(owners.get(j, 0)) / max(len(h.customers), 1) for j, pid in enumerate(product_ids)}


def _downsample_non_buyers(rows: pd.DataFrame, rng) -> pd.DataFrame:
    """Keep about as many never-bought customers as buyers, and weight them up by as much."""
    never = rows["n_orders"].to_numpy() == 0
    buyers, others = rows.loc[~never, "cust"].nunique(), rows.loc[never, "cust"].unique()
    rate = min(1.0, max(buyers, 200) / max(len(others), 1))
    kept = others[rng.random(len(others)) < rate]
    rows = rows[~never | rows["cust"].isin(kept)].copy()
    rows["weight"] = np.where(rows["n_orders"] == 0, 1.0 / rate, 1.0)
    return rows


def _cap(rows: pd.DataFrame, limit: int, rng) -> pd.DataFrame:
    """A uniform sample of whole customers when there are more rows than `limit` (keeps rates unbiased)."""
    if len(rows) <= limit:
        return rows.reset_index(drop=True)
    customers = rows["customer_id"].unique()
    kept = customers[rng.random(len(customers)) < limit / len(rows)]
    return rows[rows["customer_id"].isin(kept)].reset_index(drop=True)


def _tier(train: pd.DataFrame, y: np.ndarray) -> tuple[str, str]:
    positives = int(y.sum())
    repeat = int(train.loc[train["n_orders"] >= 2, "customer_id"].nunique())
    if positives >= MIN_POSITIVES and repeat >= MIN_REPEAT_CUSTOMERS:
        return "gradient boosting", (f"{positives} positive rows and {repeat} customers with ≥ 2 orders meet the "
                                     f"minimums ({MIN_POSITIVES}, {MIN_REPEAT_CUSTOMERS})")
    return "association rules", (f"only {positives} positive rows and {repeat} customers with ≥ 2 orders "
                                 f"(gradient boosting needs {MIN_POSITIVES} and {MIN_REPEAT_CUSTOMERS})")


def _auc(y, p) -> float:
    value = metrics.auc(y, p) if len(y) else None
    return 0.5 if value is None else value


def _metrics(y, p) -> dict:
    if not len(y):
        return {"k": K, "precision_at_k": None, "recall_at_k": None, "lift_top_decile": None, "auc": None, "rows": 0}
    probability = metrics.probability_metrics(y, p)
    return {**metrics.ranking_metrics(y, p, K),
            **{key: probability[key] for key in ("brier", "log_loss", "ece", "base_rate", "rows")}}


def _breakdown(holdout: pd.DataFrame, y: np.ndarray, scored: dict[str, np.ndarray], products: dict[int, str]
               ) -> list[dict]:
    """Per product with holdout rows: the model's ranking and calibration, and both baselines' AUC."""
    pid = holdout["product_id"].to_numpy()
    out = []
    for product_id, name in products.items():
        rows = pid == product_id
        if not rows.any():
            continue
        truth, p = y[rows], scored["model"][rows]
        out.append({"product": name, "rows": int(rows.sum()), "positives": int(truth.sum()),
                    **metrics.ranking_metrics(truth, p, K), "ece": metrics.ece(truth, p),
                    "auc_popularity": metrics.auc(truth, scored["popularity"][rows]),
                    "auc_association_rules": metrics.auc(truth, scored["association_rules"][rows])})
    return out


def _day(value: float | None) -> str | None:
    if value is None or not np.isfinite(value):
        return None
    return pd.Timestamp(value * 86400.0, unit="s", tz="UTC").isoformat()


def _metadata(h, mode, level, horizon, cutoffs, end, train, holdout, tier, tier_reason, numeric, categorical,
              measured, y_hold, scored, model, started) -> dict:
    days = h.purchases["day"]
    split = (f"time: features as of {len(cutoffs) - 1} training cutoffs {horizon} days apart "
             f"({_day(cutoffs[0])[:10]} … {_day(cutoffs[-2])[:10]}), labels = purchases in the next {horizon} days; "
             f"holdout cutoff {_day(cutoffs[-1])[:10]}; each customer scored by the fold model that did not train on "
             f"them ({FOLDS} folds by customer id)") if mode == "dated" else (
             f"cross-section of ownership, {FOLDS} folds by customer id: every customer is scored out of fold")
    from crm.ml.crosssell.explain import importance

    return {
        "mode": mode, "level": level, "horizon_days": horizon, "tier": tier, "tier_reason": tier_reason,
        "data_window": {"first_order": _day(days.min()), "last_order": _day(days.max()), "as_of": _day(end),
                        "cutoffs": [_day(c) for c in cutoffs], "dated_share": h.dated_share},
        "rows": {"train": int(len(train)), "holdout": int(len(holdout)), "customers": int(len(h.customers)),
                 "products": int(len(h.products)), "order_lines": int(len(h.purchases)),
                 "train_positives": int(train["label"].sum()), "holdout_positives": int(y_hold.sum()),
                 "repeat_customers": int((h.purchases.drop_duplicates("order_id")["cust"].value_counts() >= 2).sum())},
        "features": {"numeric": numeric, "categorical": categorical},
        "split": split, "metrics": measured, "k": K,
        "breakdown": _breakdown(holdout, y_hold, scored, model.products),
        "reliability": metrics.reliability(y_hold, scored["model"]) if len(y_hold) else [],
        "importance": importance(model, holdout, y_hold),
        "drift_reference": {key: float(holdout[key].mean()) for key in KEY_INPUTS if len(holdout)},
        "data_hash": registry.data_hash(pd.util.hash_pandas_object(h.purchases, index=False).to_numpy().tobytes(),
                                        len(h.customers), len(h.events)),
        "seconds": round(time.perf_counter() - started, 2),
    }
