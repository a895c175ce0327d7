"""Scoring with the champion: who is likely to buy a product they do not have, why, and the top N for a rep."""
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import delete, insert

from crm import clock
from crm.errors import NotFound
from crm.ml import registry
from crm.ml.crosssell.data import History, check_level, load_history, to_days
from crm.ml.crosssell.explain import sentences
from crm.ml.crosssell.features import candidate_rows
from crm.ml.crosssell.model import CrossSellModel
from crm.ml.crosssell.training import NAME, level_root
from crm.models import PredictionScore


def load_champion(*, root: Path | None = None, level: str = "contact") -> tuple[str, CrossSellModel]:
    champ = registry.champion(NAME, root=level_root(root, check_level(level)))
    if champ is None:
        raise NotFound("no cross-sell model has been trained yet; run training first")
    return champ.version, champ.load()


def _history(engine, model: CrossSellModel, level: str) -> tuple[History, float]:
    """Everything as of now; `as_of` is at least the last order, so every existing purchase counts as owned."""
    h = load_history(engine, level)
    h.offers = list(model.offers)  # the offer columns must mean what they meant in training
    now = float(to_days([clock.utcnow()])[0])
    last = float(np.nanmax(h.purchases["day"].to_numpy())) if h.purchases["day"].notna().any() else now
    return h, max(now, last)


def _scored_rows(engine, product: str, level: str, root, customers=None):
    check_level(level)
    version, model = load_champion(root=root, level=level)
    h, as_of = _history(engine, model, level)
    z = h.product_index(product)
    rows = candidate_rows(h, as_of, dated=model.mode == "dated", only_product=z, customers=customers)
    rows["probability"] = model.predict(rows)
    return version, model, h, rows


def score_product(engine, product: str, *, level: str = "contact", root: Path | None = None,
                  store: bool = False) -> pd.DataFrame:
    """Every customer who does not have `product`, with the probability that they buy it, most likely first."""
    version, _, h, rows = _scored_rows(engine, product, level, root)
    out = pd.DataFrame({"id": rows["customer_id"].astype(int),
                        "external_id": h.customers["external_id"].to_numpy()[rows["cust"].to_numpy(dtype=int)],
                        "probability": rows["probability"].astype(float)})
    out = out.sort_values(["probability", "id"], ascending=[False, True], kind="stable").reset_index(drop=True)
    if store:
        _store(engine, version, level, int(h.products["id"].iloc[h.product_index(product)]), out)
    return out


def _store(engine, version: str, level: str, product_id: int, scores: pd.DataFrame) -> None:
    """Replace this product's stored scores in prediction_score (model "cross-sell"), in one transaction."""
    table = PredictionScore.__table__
    now = clock.utcnow()
    rows = [{"model": NAME, "model_version": version, "entity": level, "record_id": int(i), "product_id": product_id,
             "probability": float(p), "scored_at": now, "created_at": now, "updated_at": now, "version": 1}
            for i, p in zip(scores["id"], scores["probability"])]
    with engine.begin() as conn:
        conn.execute(delete(table).where(table.c.model == NAME, table.c.entity == level,
                                         table.c.product_id == product_id))
        if rows:
            conn.execute(insert(table), rows)


def top_buyers(engine, product: str, n: int, *, level: str = "contact", root: Path | None = None) -> pd.DataFrame:
    """The `n` customers most likely to buy `product`, with their owner and the evidence in words."""
    _, model, h, rows = _scored_rows(engine, product, level, root)
    rows = rows.sort_values(["probability", "customer_id"], ascending=[False, True], kind="stable").head(max(n, 0))
    cust = rows["cust"].to_numpy(dtype=int)
    evidence = ["; ".join(sentences(model, row, int(row["product_id"]))) for _, row in rows.iterrows()]
    owner = h.customers["owner_id"].to_numpy()[cust]
    return pd.DataFrame({"id": rows["customer_id"].astype(int).to_numpy(), "name": h.customers["name"].to_numpy()[cust],
                         "owner_id": pd.array([None if pd.isna(o) else int(o) for o in owner], dtype="Int64"),
                         "probability": rows["probability"].astype(float).to_numpy(), "evidence": evidence})


def explain(engine, customer_id: int, product: str, *, level: str = "contact", root: Path | None = None) -> list[str]:
    """Evidence sentences for one customer and product (or why there is nothing to score)."""
    check_level(level)
    _, model = load_champion(root=root, level=level)
    h, as_of = _history(engine, model, level)
    z = h.product_index(product)
    where = np.flatnonzero(h.customers["id"].to_numpy() == customer_id)
    if not len(where):
        raise NotFound(f"no {level} with id {customer_id}")
    rows = candidate_rows(h, as_of, dated=model.mode == "dated", only_product=z, customers=where)
    name = h.products["name"].iloc[z]
    if not len(rows):
        return [f"already has {name}, so it is not scored"]
    row = rows.iloc[0]
    probability = float(model.predict(rows)[0])
    return [f"{probability:.1%} likely to buy {name}", *sentences(model, row, int(row["product_id"]))]
