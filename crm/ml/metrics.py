"""The numbers every model card reports, computed one way for all models."""
import numpy as np
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

BINS = 10


def _arrays(y, p) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(y, dtype=float), np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError("labels and probabilities must be 1-D and of the same length")
    return y, p


def auc(y, p) -> float | None:
    """ROC AUC, or None when the holdout has only one class (no ranking can be judged)."""
    y, p = _arrays(y, p)
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None


def reliability(y, p, bins: int = BINS) -> list[dict]:
    """Equal-width probability bins: mean predicted, observed rate and count, for the reliability curve."""
    y, p = _arrays(y, p)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    out = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            out.append({"bin": b, "predicted": float(p[mask].mean()), "observed": float(y[mask].mean()),
                        "count": int(mask.sum())})
    return out


def ece(y, p, bins: int = BINS) -> float:
    """Expected calibration error: the count-weighted gap between predicted and observed rates per bin."""
    y, _ = _arrays(y, p)
    return float(sum(r["count"] * abs(r["predicted"] - r["observed"]) for r in reliability(y, p, bins)) / len(y))


def probability_metrics(y, p) -> dict:
    """AUC, Brier score, log loss and ECE of predicted probabilities against 0/1 outcomes."""
    y, p = _arrays(y, p)
    return {"auc": auc(y, p), "brier": float(brier_score_loss(y, p)), "log_loss": float(log_loss(y, p, labels=[0, 1])),
            "ece": ece(y, p), "mean_predicted": float(p.mean()), "base_rate": float(y.mean()), "rows": int(len(y))}


def ranking_metrics(y, p, k: int) -> dict:
    """For "top N" lists: precision and recall in the top k, and the lift of the top decile over the base rate."""
    y, p = _arrays(y, p)
    order = np.argsort(-p, kind="stable")
    k = max(1, min(k, len(y)))
    top, decile = y[order[:k]], y[order[:max(1, len(y) // 10)]]
    positives, base = y.sum(), y.mean()
    return {"k": k, "precision_at_k": float(top.mean()), "recall_at_k": float(top.sum() / positives) if positives else None,
            "lift_top_decile": float(decile.mean() / base) if base else None, "auc": auc(y, p)}
