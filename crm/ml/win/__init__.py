"""The win-probability model: snapshots of closed deals → a calibrated probability for every open deal.

`train_win` builds snapshots (crm.ml.win.features), splits by time where it can, walks the cold-start ladder
(stage base rates → naive Bayes → gradient boosting; a tier is used only when it beats the one below on the
holdout), calibrates on deals not used for fitting, registers the version and promotes it if it is at least as good
as the champion on the same holdout. `score_open_deals` writes the champion's probabilities to deals;
`explain_deal` says why, and what would change it; `win_card` fills the models page's card.
"""
import math
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import and_, func, select

from crm.clock import utcnow
from crm.db import read_scope, session_scope
from crm.errors import NotFound, ValidationFailed
from crm.ml import metrics as mx
from crm.ml import registry
from crm.ml.card import Minimum, ModelCard
from crm.ml.drift import drift_rows, sample_step, summarise
from crm.ml.win import words
from crm.ml.win.data import WinData, load_data
from crm.ml.win.features import DAY, features, is_text, open_snapshots, training_snapshots
from crm.ml.win.model import (
    GB_MIN_DEALS, GB_MIN_PER_OUTCOME, NB_MIN_DEALS, NB_MIN_PER_OUTCOME, SELECTION_FOLDS, TIER_BASE, TIER_GB, TIER_NB,
    GradientBoosting, SmoothedNB, StageRates, WinModel, calibrate, calibration_map, chance_check, leaky_columns, split,
)
from crm.models import Deal

__all__ = ["WinExplanation", "evaluate_win", "explain_deal", "load_champion", "score_open_deals", "train_win",
           "win_card"]

MAX_TRAIN_DEALS = 60_000  # beyond this many closed deals, train on an even sample by id (keeps training < 2 min)
IMPORTANCE_ROWS = 5_000
SCORING_WORKERS = 1  # >1 runs the bulk queries side by side; measured slower on a busy two-core host (16 s vs 9 s)
DRIFT_FEATURES = ["age_days", "days_in_stage", "days_to_close", "log_amount", "activities_30d",
                  "days_since_activity", "events_30d", "log_employees"]
EXPLAIN_MIN_EFFECT = 0.005
SELECTION_MIN_DEALS = 1_000  # calibration deals enough to tell tiers apart; fewer: cross-validation
CLIMB_STANDARD_ERRORS = 2.0  # a higher tier must be better with about 95 % confidence, not by chance
LADDER = [(TIER_BASE, StageRates, 0, 0), (TIER_NB, SmoothedNB, NB_MIN_DEALS, NB_MIN_PER_OUTCOME),
          (TIER_GB, GradientBoosting, GB_MIN_DEALS, GB_MIN_PER_OUTCOME)]


@dataclass(frozen=True)
class WinExplanation:
    probability: float
    tier: str
    version: str
    raising: list[str]
    lowering: list[str]
    what_if: list[tuple[str, float]]


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def _closed_counts(conn) -> tuple[int, int]:
    rows = dict(conn.execute(select(Deal.status, func.count()).where(Deal.deleted_at.is_(None), Deal.status != "open")
                             .group_by(Deal.status)).all())
    return int(rows.get("won", 0)), int(rows.get("lost", 0))


def train_win(engine, *, root: Path | None = None, now: datetime | None = None) -> dict:
    """Train, evaluate, register and (if at least as good as the champion) promote a win model."""
    now = now or utcnow()
    with read_scope(engine) as session:
        conn = session.connection()
        won, lost = _closed_counts(conn)
        every = max(1, math.ceil((won + lost) / MAX_TRAIN_DEALS))
        closed = Deal.status.in_(["won", "lost"])
        data = load_data(conn, and_(closed, Deal.id % every == 0) if every > 1 else closed)
    snaps = training_snapshots(data)
    X, y = features(snaps, data), snaps["won"].to_numpy()
    deal_outcome = snaps.groupby("deal_id")["won"].first()
    n_deals, n_won = len(deal_outcome), int(deal_outcome.sum())
    sp = split(snaps, data.deals.set_index("id")["closed"])
    excluded = leaky_columns(X[sp.train], y[sp.train])
    columns = [c for c in X.columns if c not in excluded]
    X = X[columns]
    chosen, reason, tried = _walk_ladder(X, y, sp, n_deals, n_won)
    model = WinModel(chosen["tier"], chosen["estimator"], columns, _reference(X[sp.train]), excluded)
    Xh, yh = X[sp.holdout], y[sp.holdout]
    metrics, reliability = _evaluate(model, Xh, yh, snaps[sp.holdout])
    metadata = {
        "data_window": _window(data.deals), "tier": model.tier, "tier_reason": reason, "split": sp.description,
        "rows": {"snapshots": int(len(X)), "train": int(sp.train.sum()), "fit": int(sp.fit.sum()),
                 "calibration": int(sp.calibration.sum()), "holdout": int(sp.holdout.sum()), "deals": n_deals,
                 "closed_deals": won + lost, "sampled_every": every},
        "features": columns, "excluded_features": excluded, "metrics": metrics, "ladder": tried,
        "data_hash": registry.data_hash(X.shape, pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes(),
                                        y.tobytes()),
        "minimums": [m.__dict__ for m in _minimums(n_deals, n_won)], "reliability": reliability,
        "calibrated": bool(sp.calibration.any()) and model.tier != TIER_BASE,
        "importance": _importance(model, Xh, yh), "training_summary": summarise(X[sp.train], DRIFT_FEATURES),
    }
    version = registry.register("win", model, metadata, root=root, now=now)
    promoted, why = _promote(version, model, metrics, Xh, yh, root)
    return {"version": version.version, "tier": model.tier, "tier_reason": reason, "split": sp.description,
            "rows": metadata["rows"], "metrics": {k: metrics[k] for k in ("model", "stage_default")},
            "promoted": promoted, "reason": why}


def _walk_ladder(X, y, sp, n_deals: int, n_won: int) -> tuple[dict, str, list]:
    """Fit each tier the data allows; climb only when the higher tier's log loss on the selection deals beats the
    chosen one's by more than CLIMB_STANDARD_ERRORS standard errors (counted over deals): a tier that may be better
    only by chance, as on data without signal, does not replace a simpler one.

    Selection never looks at the holdout (its metrics would then flatter the winner): each tier is judged on
    training deals it was not fitted on (`_fit`). The holdout log loss is recorded beside it, never used."""
    Xh, yh = X[sp.holdout], y[sp.holdout]
    chosen, reason, tried = None, "", []
    for tier, make, min_deals, min_each in LADDER:
        if n_deals < min_deals or min(n_won, n_deals - n_won) < min_each:
            tried.append({"tier": tier, "fitted": False,
                          "why": f"needs {min_deals} closed deals with {min_each} of each outcome; "
                                 f"have {n_deals} ({n_won} won, {n_deals - n_won} lost)"})
            continue
        if not n_deals:
            estimator, losses, deals, how = StageRates().fit(X.iloc[:0], y[:0]), None, None, ""
        else:
            estimator, losses, deals, how = _fit(make, X, y, sp)
        loss = None if losses is None or np.isnan(losses).all() else float(np.nanmean(losses))
        held = mx.probability_metrics(yh, estimator.predict_proba(Xh)[:, 1])["log_loss"] if len(yh) else None
        step = {"tier": tier, "fitted": True, "selection_log_loss": loss, "selected_on": how, "holdout_log_loss": held}
        tried.append(step)
        candidate = {"tier": tier, "estimator": estimator, "losses": losses}
        if chosen is None:
            chosen = candidate
            reason = (f"{tier}: {n_deals} closed deals" if n_deals else
                      "stage base rates: no closed deals yet, so each stage's default probability")
            continue
        if losses is None or chosen["losses"] is None:
            continue
        gain, error = _gain(chosen["losses"], losses, deals)
        step.update(gain=gain, gain_standard_error=error)
        versus = (f"log loss on {how} {gain:+.4f} better than {chosen['tier']}'s (needs more than "
                  f"{CLIMB_STANDARD_ERRORS:g} standard errors, {CLIMB_STANDARD_ERRORS * error:.4f})")
        if gain > CLIMB_STANDARD_ERRORS * error:
            reason = f"{tier}: {n_deals} closed deals (needs {min_deals}, {min_each} of each outcome); {versus}"
            chosen = candidate
        else:
            reason += f"; {tier} was fitted but not chosen: {versus}"
    return chosen, reason, tried


def _gain(before: np.ndarray, after: np.ndarray, deals: np.ndarray) -> tuple[float, float]:
    """How much lower `after`'s per-row log losses are than `before`'s, averaged per deal then over deals (a deal's
    snapshots are not independent), and the standard error of that mean."""
    known = ~(np.isnan(before) | np.isnan(after))
    per_deal = pd.Series(before[known] - after[known]).groupby(deals[known]).mean().to_numpy()
    if len(per_deal) < 2:
        return 0.0, float("inf")
    return float(per_deal.mean()), float(per_deal.std(ddof=1) / math.sqrt(len(per_deal)))


def _row_losses(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def _fit(make, X, y, sp) -> tuple[object, np.ndarray, np.ndarray, str]:
    """The tier's final estimator, its per-row log losses on the selection rows, their deals, and what they are.

    The final estimator: fitted on the fitting rows and calibrated on the calibration deals; without calibration
    deals (a few dozen closed deals) and for stage rates, fitted on all training rows and left uncalibrated.

    The selection losses come from rows the tier was not fitted on, scored as the final estimator would score them:
    - with at least SELECTION_MIN_DEALS calibration deals, on those deals, each calibrated by a calibrator that did
      not see its deal, so calibrating is not mistaken for skill (stage rates: fitted on the fitting rows);
    - otherwise (too few deals to tell tiers apart), by SELECTION_FOLDS-fold cross-validation by deal over all the
      training rows, the fold scores calibrated out of fold in the same way when the final estimator is."""
    fit, cal, train = sp.fit, sp.calibration, sp.train
    calibrated = bool(cal.any()) and make is not StageRates
    if calibrated:
        estimator = make().fit(X[fit], y[fit])
        final = calibrate(estimator, X[cal], y[cal])
    else:
        final = make().fit(X[train], y[train])
    if len(np.unique(sp.deal_ids[cal])) >= SELECTION_MIN_DEALS:
        rows = cal
        p = (make().fit(X[fit], y[fit]) if make is StageRates else estimator).predict_proba(X[cal])[:, 1]
        how = "the calibration deals"
    else:
        rows = train
        p = _cross_validated(make, X[train], y[train], sp.deal_ids[train])
        how = f"{SELECTION_FOLDS}-fold cross-validation by deal"
    if calibrated:
        p = _out_of_fold_calibrated(p, y[rows], sp.deal_ids[rows])
    return final, _row_losses(y[rows], p), sp.deal_ids[rows], how


def _out_of_fold_calibrated(raw: np.ndarray, y: np.ndarray, deals: np.ndarray) -> np.ndarray:
    """Each row's score mapped by a calibrator fitted on the other deals' rows (the method `calibrate` would use)."""
    out, known = raw.copy(), ~np.isnan(raw)
    fold = deals % SELECTION_FOLDS
    for k in range(SELECTION_FOLDS):
        rows, rest = known & (fold == k), known & (fold != k)
        if rows.any() and len(set(y[rest].tolist())) == 2:
            out[rows] = calibration_map(raw[rest], y[rest]).predict(raw[rows])
    return out


def _cross_validated(make, X, y, deals: np.ndarray) -> np.ndarray:
    """Each row's probability from the tier fitted without its deal (NaN where a fold could not be fitted)."""
    p = np.full(len(y), np.nan)
    fold = deals % SELECTION_FOLDS
    for k in range(SELECTION_FOLDS):
        rows = fold == k
        if rows.any() and (~rows).any():
            p[rows] = make().fit(X[~rows], y[~rows]).predict_proba(X[rows])[:, 1]
    return p


def _evaluate(model: WinModel, Xh, yh, snaps_h) -> tuple[dict, list]:
    if not len(yh):
        return {"model": {}, "stage_default": {}, "note": "no closed deals: nothing to test on"}, []
    p = model.predict(Xh)
    default = Xh["stage_probability"].fillna(0.5).to_numpy()
    outcome = snaps_h.groupby("deal_id")["won"].first()
    pos, neg = int(outcome.sum()), int(len(outcome) - outcome.sum())
    out = {"model": {**mx.probability_metrics(yh, p), **chance_check(yh, p, pos, neg)},
           "stage_default": {**mx.probability_metrics(yh, default), **chance_check(yh, default, pos, neg)}}
    return out, mx.reliability(yh, p)


def _groups(columns: list[str]) -> dict[str, list[str]]:
    grouped = {c for cols in words.GROUPS.values() for c in cols}
    out = {g: [c for c in cols if c in columns] for g, cols in words.GROUPS.items()}
    out.update({c: [c] for c in columns if c not in grouped})
    return {g: cols for g, cols in out.items() if cols}


def _importance(model: WinModel, Xh, yh) -> list[tuple[str, float]]:
    """Permutation importance on (a sample of) the holdout: how much log loss worsens when a factor is shuffled."""
    if len(yh) < 10 or len(set(yh.tolist())) < 2:
        return []
    rng = np.random.default_rng(0)
    pick = rng.choice(len(yh), min(len(yh), IMPORTANCE_ROWS), replace=False)
    Xs, ys = Xh.iloc[pick].reset_index(drop=True), yh[pick]
    base = mx.probability_metrics(ys, model.predict(Xs))["log_loss"]
    out = []
    for group, cols in _groups(model.columns).items():
        shuffled = Xs.copy()
        order = rng.permutation(len(Xs))
        for c in cols:
            shuffled[c] = Xs[c].to_numpy()[order]
        loss = mx.probability_metrics(ys, model.predict(shuffled))["log_loss"]
        out.append((words.name(group), round(loss - base, 5)))
    return sorted(out, key=lambda kv: -kv[1])


def _reference(X: pd.DataFrame) -> dict:
    """A typical value of each column: the median, or the most common category."""
    out = {}
    for c in X.columns:
        if is_text(X[c]):
            mode = X[c].dropna().mode()
            out[c] = mode.iloc[0] if len(mode) else None
        else:
            out[c] = float(X[c].median()) if X[c].notna().any() else float("nan")
    return out


def _window(deals: pd.DataFrame) -> dict:
    def day(x):
        return None if x is None or (isinstance(x, float) and math.isnan(x)) else str(pd.Timestamp(x, unit="s").date())
    return {"first_created": day(deals["created"].min()) if len(deals) else None,
            "last_closed": day(deals["closed"].max()) if len(deals) else None}


def _minimums(n_deals: int, n_won: int) -> list[Minimum]:
    n_lost = n_deals - n_won
    return [Minimum("closed deals for naive Bayes", NB_MIN_DEALS, n_deals),
            Minimum("deals of the rarer outcome for naive Bayes", NB_MIN_PER_OUTCOME, min(n_won, n_lost)),
            Minimum("closed deals for gradient boosting", GB_MIN_DEALS, n_deals),
            Minimum("deals of the rarer outcome for gradient boosting", GB_MIN_PER_OUTCOME, min(n_won, n_lost))]


def _promote(version, model, metrics, Xh, yh, root) -> tuple[bool, str]:
    if not len(yh):
        if registry.champion("win", root=root) is None:
            result = registry.promote_if_better(version, metric="log_loss", candidate_score=float("nan"),
                                                score_champion=lambda _: float("nan"), higher_is_better=False,
                                                root=root)
            return result.promoted, result.reason
        return False, "no closed deals to compare with the champion on; kept as a challenger"
    result = registry.promote_if_better(
        version, metric="log_loss", candidate_score=metrics["model"]["log_loss"], higher_is_better=False,
        score_champion=lambda champ: mx.probability_metrics(yh, champ.predict(Xh))["log_loss"], root=root)
    return result.promoted, result.reason


def _champion(root):
    current = registry.champion("win", root=root)
    if current is None:
        raise NotFound("no win-probability model has been trained yet; train one first (python -m crm train win)")
    return current


def load_champion(root: Path | None = None) -> WinModel:
    """The live win model, with its version and metadata attached."""
    current = _champion(root)
    model = current.load()
    model.version, model.metadata = current.version, current.metadata
    return model


def evaluate_win(*, root: Path | None = None) -> dict:
    """The champion's holdout metrics against the stage-default baseline, as stored at training."""
    meta = _champion(root).metadata
    return {k: meta.get(k) for k in ("version", "trained_at", "tier", "tier_reason", "split", "rows", "metrics",
                                     "reliability", "excluded_features", "calibrated", "promotion")}


def _open_features(engine, condition, as_of: float) -> tuple[WinData, pd.DataFrame, pd.DataFrame]:
    data = load_data(engine, condition, as_of=as_of, workers=SCORING_WORKERS)
    snaps = open_snapshots(data, as_of)
    return data, snaps, features(snaps, data)


def score_open_deals(engine, *, root: Path | None = None, write: bool = True) -> pd.DataFrame:
    """The champion's probability for every open deal; written to deals' model_probability when `write`."""
    model = load_champion(root)
    data, snaps, X = _open_features(engine, Deal.status == "open", _epoch(utcnow()))
    p = model.predict(X) if len(X) else np.zeros(0)
    ids = data.deals.set_index("id").reindex(snaps["deal_id"])
    out = pd.DataFrame({"id": snaps["deal_id"].to_numpy(), "external_id": ids["external_id"].to_numpy(),
                        "probability": np.round(p, 6)})
    if write and len(out):
        from crm.deals import record_model_scores

        with session_scope(engine) as session:
            record_model_scores(session=session, scores=dict(zip(out["id"].tolist(), out["probability"].tolist())),
                                model=f"win {model.version}")
    return out


def explain_deal(engine, deal_id: int, *, root: Path | None = None, model: WinModel | None = None) -> WinExplanation:
    """The top factors raising and lowering one open deal's probability, and what would move it."""
    model = model or load_champion(root)  # pages pass the champion they keep loaded (st.cache_resource)
    as_of = _epoch(utcnow())
    data, snaps, X = _open_features(engine, Deal.id == deal_id, as_of)
    if data.deals.empty:
        raise NotFound(f"deal {deal_id} does not exist")
    if snaps.empty:
        raise ValidationFailed("deal_id", f"deal {deal_id} is closed: its outcome is known")
    X = model.align(X)
    p = float(model.predict(X)[0])
    effects = _effects(model, X)
    row = X.iloc[0].to_dict()
    labels = {"pipeline": dict(zip(data.stages["pipeline_id"].astype(str), data.stages["pipeline"])),
              "owner": {str(k): v for k, v in data.users.items()}}
    stage_name = str(data.stages.set_index("id")["name"].get(int(snaps["stage_id"].iloc[0]), "its stage"))

    def say(group, more):
        return words.describe(group, row, stage_name, labels) + \
            (" (deals like this win more)" if more else " (deals like this win less)")
    raising = [say(g, True) for g, e in effects if e > EXPLAIN_MIN_EFFECT][:3]
    lowering = [say(g, False) for g, e in reversed(effects) if e < -EXPLAIN_MIN_EFFECT][:3]
    return WinExplanation(p, model.tier, model.version, raising, lowering, _what_if(model, data, snaps, deal_id, as_of))


def _effects(model: WinModel, X: pd.DataFrame) -> list[tuple[str, float]]:
    """Each factor's effect on this deal: its probability minus the probability with that factor made typical."""
    groups = [(g, cols) for g, cols in _groups(model.columns).items()
              if any(not _same(X.iloc[0][c], model.reference.get(c)) for c in cols)]
    if not groups:
        return []
    variants = pd.concat([X] * len(groups), ignore_index=True)
    variants = variants.astype({c: object for c in variants if isinstance(model.reference.get(c), str)})
    for i, (_, cols) in enumerate(groups):
        for c in cols:
            variants.loc[i, c] = model.reference.get(c)
    base = float(model.predict(X)[0])
    deltas = base - model.predict(variants)
    return sorted(((g, float(d)) for (g, _), d in zip(groups, deltas)), key=lambda kv: -kv[1])


def _same(a, b) -> bool:
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)) or (isinstance(b, float) and math.isnan(b)):
        return (a is None or (isinstance(a, float) and math.isnan(a))) == \
            (b is None or (isinstance(b, float) and math.isnan(b)))
    return a == b


def _what_if(model: WinModel, data: WinData, snaps: pd.DataFrame, deal_id: int,
             as_of: float) -> list[tuple[str, float]]:
    """The same deal under small changes a rep can make, through the same feature function."""
    deal = data.deals[data.deals["id"] == deal_id].iloc[0]
    meeting = pd.DataFrame({"deal_id": [deal_id], "kind": ["meeting"], "time": [as_of - 1.0]})
    scenarios = [("log a meeting today", data.with_rows(activities=meeting))]
    close = deal["expected_close"]
    base_close = close if not math.isnan(close) else as_of
    for days in (30, -30):
        moved = data.deals.assign(expected_close=np.where(data.deals["id"] == deal_id, base_close + days * DAY,
                                                          data.deals["expected_close"]))
        label = f"move the close date {abs(days)} days {'later' if days > 0 else 'earlier'}"
        scenarios.append((label, replace(data, deals=moved)))
    for factor in (1.2, 0.8):
        changed = data.deals.assign(amount=np.where(data.deals["id"] == deal_id, deal["amount"] * factor,
                                                    data.deals["amount"]))
        scenarios.append((f"amount {'+' if factor > 1 else '−'}20 %", replace(data, deals=changed)))
    return [(label, float(model.predict(features(snaps, d))[0])) for label, d in scenarios]


def win_card(engine, *, root: Path | None = None, drift: bool = True) -> ModelCard:
    """The models page's card: the champion (or latest version), its minimums, metrics and drift since training."""
    with read_scope(engine) as session:
        won, lost = _closed_counts(session.connection())
    minimums = _minimums(won + lost, won)
    current = registry.champion("win", root=root) or next(iter(registry.versions("win", root=root)), None)
    if current is None:
        return ModelCard("win", None, None, None, "not trained yet", None, minimums=minimums)
    meta = current.metadata
    promotion = meta.get("promotion") or {}
    return ModelCard(
        name="win", version=current.version, trained_at=meta.get("trained_at"), tier=meta.get("tier"),
        tier_reason=meta.get("tier_reason", ""), split=meta.get("split"), rows=meta.get("rows", {}),
        minimums=minimums, metrics=meta.get("metrics", {}), reliability=meta.get("reliability", []),
        importance=[tuple(x) for x in meta.get("importance", [])], drift=_drift(engine, meta) if drift else [],
        status=meta.get("status"), promotion=promotion.get("reason"))


def _drift(engine, meta: dict) -> list[dict]:
    """Population stability of the key inputs: training snapshots against a fixed sample of today's open deals."""
    summary = meta.get("training_summary") or {}
    if not summary:
        return []
    with read_scope(engine) as session:
        open_deals = session.execute(select(func.count()).select_from(Deal).where(
            Deal.status == "open", Deal.deleted_at.is_(None))).scalar_one()
    step = sample_step(open_deals)  # every k-th id: the same deals on every render
    _, _, X = _open_features(engine, (Deal.status == "open") & (Deal.id % step == 0), _epoch(utcnow()))
    return drift_rows(summary, X, words.name)
