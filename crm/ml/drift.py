"""Input drift, shared by the models' cards: key inputs summarised at training, and how far today's rows moved.

The shift is the population stability index (PSI) over the training deciles,
sum over bins of (now − train) × ln(now ÷ train), with missing values in a bin of their own.
"""
import math
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

DRIFT_FLAG = 0.25  # PSI above this: the input has shifted since training (the usual rule of thumb)
# Today's rows compared: a population's shares settle long before 100,000 rows, and a card must render in a
# page's time.
DRIFT_SAMPLE = 5_000
EMPTY_BIN = 1e-4  # added to every share, so a bin empty on one side gives a large shift instead of an infinite one


def summarise(X: pd.DataFrame, features: Iterable[str]) -> dict:
    """Each feature's deciles (as bin edges), bin shares, mean and spread in the training rows, for metadata."""
    out = {}
    for c in features:
        if c not in X or not X[c].notna().any():
            continue
        v = X[c].to_numpy(dtype=float)
        deciles = np.unique(np.nanquantile(v, np.linspace(0.1, 0.9, 9)))
        # Bins run from an edge up to the next. An edge just above the top decile gives values above it a bin of
        # their own: a mostly-zero count (most 30-day counts) would otherwise have one bin, blind to a rise.
        edges = [*deciles.tolist(), float(np.nextafter(deciles[-1], np.inf))]
        out[c] = {"mean": float(np.nanmean(v)), "std": float(np.nanstd(v)), "edges": edges,
                  "shares": bin_shares(v, edges)}
    return out


def bin_shares(v: np.ndarray, edges: list) -> list[float]:
    """The share of values in each bin the edges make (below the first, …, from the last up), then of missing."""
    bins = np.where(np.isnan(v), len(edges) + 1, np.searchsorted(edges, v, side="right"))
    return (np.bincount(bins, minlength=len(edges) + 2) / max(len(v), 1)).tolist()


def psi(train: list[float], now: list[float]) -> float:
    """Population stability index of two sets of bin shares: 0 when equal, growing as they part."""
    before, after = np.asarray(train) + EMPTY_BIN, np.asarray(now) + EMPTY_BIN
    return float(np.sum((after - before) * np.log(after / before)))


def sample_step(rows: int) -> int:
    """k such that every k-th of `rows` evenly spread ids is a sample of at most DRIFT_SAMPLE (k = 1: all rows)."""
    return max(1, math.ceil(rows / DRIFT_SAMPLE))


def drift_rows(summary: dict, X: pd.DataFrame, name: Callable[[str], str]) -> list[dict]:
    """The models page's drift table: each summarised input's training mean, today's mean and PSI, flagged above
    DRIFT_FLAG. `name` turns a column into words a reader knows; no rows without today's rows to compare."""
    out = []
    for c, s in summary.items():
        if c not in X or not len(X):
            continue
        v = X[c].to_numpy(dtype=float)
        shift = psi(s["shares"], bin_shares(v, s["edges"]))
        out.append({"feature": name(c), "train": round(s["mean"], 3),
                    "now": round(float(np.nanmean(v)), 3) if np.isfinite(v).any() else None,
                    "shift": round(shift, 3), "flag": shift > DRIFT_FLAG})
    return out
