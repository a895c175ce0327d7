"""Feature building, shared by training and scoring: one row per (customer, candidate product), as of a day.

`candidate_rows` is pure: it reads the History only up to `as_of` (purchases and events after it are ignored),
so the features for a time never change when later orders or events are added. Undated orders count as owned
before every cutoff: they are the history from before the migration.
"""
import numpy as np
import pandas as pd

from crm.ml.crosssell.data import History

ENGAGEMENT_DAYS = 90
OFFER_DAYS = 180
CAP_DAYS = 3650.0  # "never" is read as ten years ago
BASE_NUMERIC = ["n_orders", "n_products", "monetary", "days_since_last", "tenure_days", "age_days", "events_90d",
                "days_since_event", "coown_max", "coown_mean", "popularity", "employees"]
BASE_CATEGORICAL = ["product_id", "industry", "country"]


def owned_counts(h: History, as_of: float, *, dated: bool) -> np.ndarray:
    """Orders per (customer, product) up to `as_of` (all orders when undated): the ownership matrix."""
    p = h.purchases
    if dated:
        p = p[p["day"].isna() | (p["day"] <= as_of)]
    p = p.drop_duplicates(["cust", "prod", "order_id"])
    n, k = len(h.customers), len(h.products)
    return np.bincount(p["cust"] * k + p["prod"], minlength=n * k).reshape(n, k).astype(float)


def bought_between(h: History, start: float, end: float) -> np.ndarray:
    """Which (customer, product) pairs were bought after `start` and up to `end`: the label matrix."""
    p = h.purchases
    p = p[(p["day"] > start) & (p["day"] <= end)]
    n, k = len(h.customers), len(h.products)
    out = np.zeros((n, k), dtype=bool)
    out[p["cust"].to_numpy(), p["prod"].to_numpy()] = True
    return out


def population(h: History, as_of: float, owned: np.ndarray, *, dated: bool) -> np.ndarray:
    """Customers who exist at `as_of`: created by then, or already buyers (imports may set created_at late)."""
    if not dated:
        return np.ones(len(h.customers), dtype=bool)
    created = h.customers["created_day"].to_numpy()
    return (np.nan_to_num(created, nan=-np.inf) <= as_of) | (owned.sum(axis=1) > 0)


def customer_features(h: History, as_of: float, *, dated: bool) -> pd.DataFrame:
    """Recency, frequency, monetary value and engagement per customer, as of `as_of`."""
    n = len(h.customers)
    p = h.purchases
    if dated:
        p = p[p["day"].isna() | (p["day"] <= as_of)]
    orders = p.drop_duplicates("order_id")
    out = pd.DataFrame(index=np.arange(n))
    out["n_orders"] = np.bincount(orders["cust"], minlength=n).astype(float)
    out["n_products"] = np.bincount(p.drop_duplicates(["cust", "prod"])["cust"], minlength=n).astype(float)
    out["monetary"] = np.bincount(p["cust"], weights=p["amount"], minlength=n)
    last, first = np.full(n, np.nan), np.full(n, np.nan)
    dated_orders = orders[orders["day"].notna()]
    if dated and len(dated_orders):
        grouped = dated_orders.groupby("cust")["day"]
        last[grouped.max().index], first[grouped.min().index] = grouped.max().to_numpy(), grouped.min().to_numpy()
    out["days_since_last"] = np.minimum(as_of - last, CAP_DAYS) if dated else np.nan
    out["tenure_days"] = np.minimum(as_of - first, CAP_DAYS) if dated else np.nan
    out["age_days"] = np.clip(as_of - h.customers["created_day"].to_numpy(dtype=float), 0, CAP_DAYS)
    return out.join(_engagement(h, as_of))


def _engagement(h: History, as_of: float) -> pd.DataFrame:
    n = len(h.customers)
    e = h.events[h.events["day"] <= as_of]
    recent = e[e["day"] > as_of - ENGAGEMENT_DAYS]
    out = pd.DataFrame(index=np.arange(n))
    out["events_90d"] = np.bincount(recent["cust"], minlength=n).astype(float)
    last = np.full(n, -np.inf)
    np.maximum.at(last, e["cust"].to_numpy(), e["day"].to_numpy())
    out["days_since_event"] = np.minimum(as_of - last, CAP_DAYS)
    viewed = e[(e["day"] > as_of - OFFER_DAYS) & e["offer"].notna()]
    for k, offer in enumerate(h.offers):
        rows = viewed[viewed["offer"] == offer]
        out[f"offer_{k}"] = np.bincount(rows["cust"], minlength=n).astype(float)
    return out


def candidate_rows(h: History, as_of: float, *, dated: bool, include_owned: bool = False,
                   only_product: int | None = None, customers: np.ndarray | None = None) -> pd.DataFrame:
    """One row per (customer, product) the customer does not own at `as_of` (or every pair, with
    `include_owned`, for the undated cross-section: then the row's own product is hidden from its features)."""
    owned = owned_counts(h, as_of, dated=dated)
    alive = population(h, as_of, owned, dated=dated)
    if customers is not None:
        alive &= np.isin(np.arange(len(alive)), customers)
    products = range(len(h.products)) if only_product is None else [only_product]
    per_customer = customer_features(h, as_of, dated=dated)
    static = h.customers[["industry", "country", "employees", *h.custom_numeric, *h.custom_categorical]]
    pop_owned = owned[alive] > 0
    coown = _coownership(pop_owned)
    frames = []
    for z in products:
        cust = np.flatnonzero(alive & ((owned[:, z] == 0) | include_owned))
        if len(cust):
            frames.append(_rows_for_product(h, z, cust, owned, coown, len(pop_owned), per_customer, static))
    if not frames:
        return _empty(h)
    return pd.concat(frames, ignore_index=True)


def _coownership(owned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Customers owning each product, and owning each pair (the co-purchase counts)."""
    b = owned.astype(float)
    return b.sum(axis=0), b.T @ b


def _rows_for_product(h, z, cust, owned, coown, population_size, per_customer, static) -> pd.DataFrame:
    count, both = coown
    own = owned[cust].copy()
    truth = (own[:, z] > 0).astype(float)  # 1 only in the undated cross-section, where it is the label
    own[:, z] = 0.0
    fired = own > 0
    # Confidence of "owns x → owns z" over everyone at `as_of`. Deliberately not leave-one-out: subtracting the
    # customer's own ownership of z would make the feature a function of an undated label (measured: AUC 1.0).
    conf = np.where(fired, both[:, z][None, :] / np.maximum(count[None, :], 1), 0.0)
    frame = pd.DataFrame(own, columns=[f"own_{pid}" for pid in h.products["id"]])
    frame.insert(0, "cust", cust)
    frame.insert(1, "customer_id", h.customers["id"].to_numpy()[cust])
    frame.insert(2, "prod", z)
    frame.insert(3, "product_id", int(h.products["id"].iloc[z]))
    frame["coown_max"] = conf.max(axis=1)
    frame["coown_mean"] = conf.sum(axis=1) / np.maximum(fired.sum(axis=1), 1)
    frame["popularity"] = count[z] / max(population_size, 1)
    frame["owned_target"] = truth
    extra = pd.concat([per_customer.iloc[cust].reset_index(drop=True), static.iloc[cust].reset_index(drop=True)],
                      axis=1)
    if truth.any():
        # An undated label must not leak through the totals either: take the target product out of them. Only
        # orders of z alone drop out: subtracting every order with z would expose orders shared with another.
        extra["n_products"] -= truth
        extra["n_orders"] -= solo_orders(h, z)[cust] * truth
        extra["monetary"] -= spent_on(h, z)[cust] * truth
    return pd.concat([frame, extra], axis=1)


def solo_orders(h: History, z: int) -> np.ndarray:
    """Orders per customer whose only product is z (subtracted only where z is an undated label)."""
    lines = h.purchases.groupby("order_id").agg(cust=("cust", "first"), low=("prod", "min"), high=("prod", "max"))
    alone = lines[(lines["low"] == z) & (lines["high"] == z)]
    return np.bincount(alone["cust"], minlength=len(h.customers)).astype(float)


def spent_on(h: History, z: int) -> np.ndarray:
    """Spend per customer on product z over the whole history (subtracted only where z is an undated label)."""
    p = h.purchases[h.purchases["prod"] == z]
    return np.bincount(p["cust"], weights=p["amount"], minlength=len(h.customers))


def _empty(h: History) -> pd.DataFrame:
    columns = ["cust", "customer_id", "prod", "product_id", *[f"own_{pid}" for pid in h.products["id"]],
               *BASE_NUMERIC, "owned_target", "industry", "country", *h.custom_numeric, *h.custom_categorical]
    return pd.DataFrame(columns=list(dict.fromkeys(columns)))


def feature_columns(h: History) -> tuple[list[str], list[str]]:
    """Numeric and categorical model inputs for this history."""
    numeric = [*BASE_NUMERIC, *[f"own_{pid}" for pid in h.products["id"]],
               *[f"offer_{k}" for k in range(len(h.offers))], *h.custom_numeric]
    return numeric, [*BASE_CATEGORICAL, *h.custom_categorical]
