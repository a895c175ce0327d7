"""Which pairs a duplicate scan compares (blocking): records that share a normalised email, phone or domain, and
records whose names are the same or one typo apart. Comparing every pair of a million contacts would take days;
these pairs are a few per record, and found with sorts over integer arrays.

Names are blocked once per distinct name, not per record: the demo's million contacts carry far fewer names. Very
common values are left out and counted, because they say little: an email or phone shared by more than
`GROUP_CAP` records is a switchboard or a shared inbox, and a name carried by that many records is too common to
suggest anything on its own (those records still pair through their emails and phones).
"""
from array import array
from collections import Counter

import numpy as np

from crm.hygiene.duplicates_match import BlockingKeys

GROUP_CAP = 50  # records sharing one value (email, phone, domain, name)
NAME_BLOCK_CAP = 100  # distinct names sharing one blocking key


def factorize(values: list) -> np.ndarray:
    """One integer per value, equal for equal values, in order of first appearance; -1 for None and ""."""
    seen: dict = {}
    return np.fromiter((seen.setdefault(v, len(seen)) if v else -1 for v in values), dtype=np.int64,
                       count=len(values))


def _offsets(sizes: np.ndarray) -> np.ndarray:
    """0, 1, ..., size-1 for each size in turn, concatenated."""
    return np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)


def _pairs_in_runs(values: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of positions within each run values[start:start + size], earlier position first."""
    position = np.repeat(starts, sizes) + _offsets(sizes)
    after = np.repeat(starts + sizes, sizes) - position - 1  # how many positions follow in the same run
    a = np.repeat(position, after)
    return values[a], values[a + 1 + _offsets(after)]


def pairs_in_groups(keys: np.ndarray, members: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Every pair of members that share a key (each pair once, either way round), in groups of at most `cap`; and
    how many larger groups were left out."""
    order = np.argsort(keys)
    sorted_keys, sorted_members = keys[order], members[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    sizes = np.diff(np.r_[starts, len(keys)])  # with no keys: one run of size 0
    fits = (sizes >= 2) & (sizes <= cap)
    a, b = _pairs_in_runs(sorted_members, starts[fits], sizes[fits])
    return a, b, int((sizes > cap).sum())


def same_value_pairs(codes: np.ndarray, cap: int = GROUP_CAP) -> tuple[np.ndarray, np.ndarray, int]:
    """Pairs of records (positions) with the same code (-1: no value); groups above `cap` are counted, not paired."""
    has = np.flatnonzero(codes >= 0)
    return pairs_in_groups(codes[has], has, cap)


def cross_pairs(codes: np.ndarray, left: np.ndarray, right: np.ndarray,
                cap: int = GROUP_CAP) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of a record coded left[k] with a record coded right[k] (positions); codes that more than `cap`
    records carry are left out."""
    has = np.flatnonzero(codes >= 0)
    order = has[np.argsort(codes[has])]
    counts = np.bincount(codes[has], minlength=int(max(codes.max(initial=-1), left.max(initial=-1),
                                                        right.max(initial=-1))) + 1)
    starts = np.cumsum(counts) - counts
    fits = (counts[left] <= cap) & (counts[right] <= cap)
    left, right = left[fits], right[fits]
    size = counts[left] * counts[right]
    k = np.repeat(np.arange(len(left)), size)
    t = _offsets(size)
    width = counts[right][k]
    return order[starts[left][k] + t // width], order[starts[right][k] + t % width]


def similar_name_pairs(names: list[tuple[str, ...]], cap: int = NAME_BLOCK_CAP) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) of distinct names that share a blocking key, so may be one typo apart (not yet compared).

    Keys are kept as 64-bit hashes: a collision only adds a pair, which the comparison then rejects."""
    names_with = Counter(word for tokens in names for word in set(tokens))  # how rare each word is
    blocking_keys = BlockingKeys(names_with.__getitem__)
    hashes, owners = array("q"), array("q")
    for code, tokens in enumerate(names):
        keys = blocking_keys(tokens)
        hashes.extend(map(hash, keys))
        owners.extend([code] * len(keys))
    a, b, _ = pairs_in_groups(np.frombuffer(hashes, dtype=np.int64), np.frombuffer(owners, dtype=np.int64), cap)
    return unique_pairs(a, b, len(names))


def unique_pairs(a: np.ndarray, b: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct pairs, each as (smaller, larger), sorted; pairs of a value with itself dropped."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keys = np.sort((lo * n + hi)[lo != hi])
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys  # np.unique hashes: far slower here
    return keys // n, keys % n
