"""Numpy helpers the generators share: categorical draws, group arithmetic, NULL-able columns."""
import numpy as np


def draw(rng: np.random.Generator, weights, n: int) -> np.ndarray:
    """n category indices drawn with the given (unnormalised) weights."""
    cum = np.cumsum(np.asarray(weights, dtype=float))
    return np.minimum(np.searchsorted(cum, rng.random(n) * cum[-1], side="right"), len(cum) - 1)


def draw_rows(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One category per row of a (rows x categories) weight matrix, each row its own distribution."""
    cum = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cum[:, -1]
    return np.minimum((u[:, None] >= cum).sum(axis=1), weights.shape[1] - 1)


def spans(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For consecutive groups of the given sizes: each element's group and its position within the group."""
    sizes = np.asarray(sizes, dtype=np.int64)
    group = np.repeat(np.arange(len(sizes)), sizes)
    starts = np.cumsum(sizes) - sizes
    return group, np.arange(group.size) - starts[group]


def group_cumsum(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Running totals that restart at each of the consecutive groups of the given sizes."""
    total = np.cumsum(values)
    starts = np.cumsum(sizes) - sizes
    return total - np.repeat(np.r_[0.0, total][starts], sizes)


def occurrence_rank(keys: np.ndarray) -> np.ndarray:
    """0 for the first occurrence of each key (in array order), 1 for the second, and so on."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(keys)), 0))
    rank = np.empty(len(keys), dtype=np.int64)
    rank[order] = np.arange(len(keys)) - group_start
    return rank


def pick_member(rng: np.random.Generator, member_group: np.ndarray, wanted: np.ndarray,
                weights: np.ndarray | None = None) -> np.ndarray:
    """For each wanted group, the index of a random member of it (weighted if given); -1 if the group is empty."""
    order = np.argsort(member_group, kind="stable")
    groups = int(max(member_group.max(initial=0), wanted.max(initial=0))) + 1
    w = np.ones(len(member_group)) if weights is None else np.asarray(weights, dtype=float)
    cum = np.cumsum(w[order])
    totals = np.bincount(member_group, weights=w, minlength=groups)
    before = np.cumsum(totals) - totals
    target = before[wanted] + rng.random(len(wanted)) * totals[wanted]
    pos = np.minimum(np.searchsorted(cum, target, side="right"), len(order) - 1)
    found = order[pos] if len(order) else np.zeros(len(wanted), dtype=np.int64)
    return np.where(totals[wanted] > 0, found, -1)


def nullable(values: np.ndarray, missing: np.ndarray) -> np.ma.MaskedArray:
    """A column whose masked entries are written as NULL."""
    return np.ma.masked_array(values, mask=missing)


def lookup(labels, codes: np.ndarray) -> np.ndarray:
    """Object array of labels[codes] (the labels are shared, not copied)."""
    table = np.empty(len(labels), dtype=object)
    for i, label in enumerate(labels):  # item by item, so that list labels stay lists
        table[i] = label
    return table[codes]


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
