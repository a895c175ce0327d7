"""Why a customer is recommended a product, in words; and which groups of inputs the model leans on."""
import numpy as np
import pandas as pd

from crm.ml import metrics
from crm.ml.crosssell.model import MIN_SUPPORT, CrossSellModel

IMPORTANCE_ROWS = 5000
GROUPS = {
    "products owned": lambda c: c.startswith("own_"),
    "co-purchase signals": lambda c: c in ("coown_max", "coown_mean", "popularity"),
    "recency, frequency and monetary value": lambda c: c in ("n_orders", "n_products", "monetary",
                                                             "days_since_last", "tenure_days", "age_days"),
    "engagement": lambda c: c in ("events_90d", "days_since_event") or c.startswith("offer_"),
    "company and custom fields": lambda c: c in ("industry", "country", "employees") or c.startswith("cf_"),
    "the product itself": lambda c: c == "product_id",
}


def importance(model: CrossSellModel, holdout: pd.DataFrame, y: np.ndarray) -> list[list]:
    """Permutation importance by group: how much holdout AUC drops when a group's columns are shuffled."""
    if model.tier != "gradient boosting" or metrics.auc(y, np.full(len(y), 0.5)) is None:
        return [["products owned (association rules)", 1.0]] if model.tier != "gradient boosting" else []
    rng = np.random.default_rng(0)
    pick = rng.choice(len(holdout), size=min(IMPORTANCE_ROWS, len(holdout)), replace=False)
    sample, truth = holdout.iloc[pick].reset_index(drop=True), y[pick]
    base = metrics.auc(truth, model.predict(sample))
    if base is None:
        return []
    out = []
    for name, belongs in GROUPS.items():
        columns = [c for c in model.numeric + model.categorical if belongs(c) and c in sample.columns]
        if not columns:
            continue
        shuffled = sample.copy()
        shuffled[columns] = sample[columns].iloc[rng.permutation(len(sample))].to_numpy()
        out.append([name, round(max(base - (metrics.auc(truth, model.predict(shuffled)) or 0.5), 0.0), 4)])
    return sorted(out, key=lambda item: -item[1])


def rule_sentences(model: CrossSellModel, row: pd.Series, product_id: int, limit: int = 2) -> list[str]:
    """The strongest co-purchase rules this customer fires for the product, e.g. 'customers who own X and Y buy Z
    4.1× more often (support 320)'."""
    stats = model.rules.get(product_id)
    name = model.products.get(product_id, str(product_id))
    if stats is None or stats.base <= 0:
        return []
    ids = sorted(model.products)
    owned = [i for i, pid in enumerate(ids) if float(row.get(f"own_{pid}", 0) or 0) > 0 and pid != product_id]
    found = []
    for i in owned:
        found.append(((ids[i],), stats.support[i], stats.hits[i]))
    if stats.pair_support is not None:
        for a in owned:
            for b in owned:
                if a < b:
                    found.append(((ids[a], ids[b]), stats.pair_support[a, b], stats.pair_hits[a, b]))
    verb = "buy" if model.mode == "dated" else "also own"
    scored = [(hits / support / stats.base, what, support) for what, support, hits in found
              if support >= MIN_SUPPORT and hits > 0]
    scored.sort(key=lambda item: (-item[0], -len(item[1])))
    return [f"customers who own {' and '.join(model.products[p] for p in what)} {verb} {name} {lift:.1f}× more "
            f"often (support {support:.0f})" for lift, what, support in scored[:limit] if lift > 1.0]


def sentences(model: CrossSellModel, row: pd.Series, product_id: int) -> list[str]:
    """Evidence for one (customer, product) row: rules first, then engagement and purchase history."""
    out = rule_sentences(model, row, product_id)
    stats, name = model.rules.get(product_id), model.products.get(product_id, str(product_id))
    if not out and stats is not None:
        out.append(f"{name} is bought by {stats.base:.1%} of customers within {model.horizon_days} days"
                   if model.mode == "dated" else f"{name} is owned by {stats.base:.1%} of customers")
    views = sorted(((float(row.get(f"offer_{k}", 0) or 0), offer) for k, offer in enumerate(model.offers)),
                   key=lambda item: -item[0])
    out += [f"viewed the offer “{offer}” {n:.0f}× in the last 180 days" for n, offer in views[:2] if n > 0]
    if float(row.get("events_90d", 0) or 0) > 0:
        out.append(f"{row['events_90d']:.0f} tracked interactions in the last 90 days")
    if float(row.get("n_orders", 0) or 0) > 0:
        text = f"{row['n_orders']:.0f} orders, {row['monetary']:,.0f} spent"
        last = row.get("days_since_last")
        if last is not None and np.isfinite(last):
            text += f", the last {last:.0f} days ago"
        out.append(text)
    return out
