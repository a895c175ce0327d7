"""The cross-sell model card: tier, minimums, metrics against baselines (pooled and per product), reliability,
importance and drift."""
from pathlib import Path

import numpy as np

from crm import clock
from crm.ml import registry
from crm.ml.card import Minimum, ModelCard
from crm.ml.crosssell.data import check_level, load_history, repeat_customers, to_days
from crm.ml.crosssell.features import candidate_rows
from crm.ml.crosssell.training import KEY_INPUTS, MIN_POSITIVES, MIN_REPEAT_CUSTOMERS, NAME, level_root

DRIFT_FLAG = 0.25  # a key input whose mean moved by more than a quarter since training is flagged


def cross_sell_card(engine, *, root: Path | None = None, level: str = "contact", drift: bool = True) -> ModelCard:
    """What the models page shows for cross-sell; works before the first training too (version None). Drift reads
    every customer's history (half a minute at a million contacts): the page asks for it separately."""
    check_level(level)
    repeat = repeat_customers(engine, level)
    champ = registry.champion(NAME, root=level_root(root, level))
    if champ is None:
        return ModelCard(NAME, None, None, None, "not trained yet", None,
                         minimums=[Minimum("customers with ≥ 2 orders", MIN_REPEAT_CUSTOMERS, repeat)])
    m = champ.metadata
    rows = m.get("rows", {})
    minimums = [Minimum("customers with ≥ 2 orders", MIN_REPEAT_CUSTOMERS, repeat),
                Minimum("positive training rows (purchases or ownerships)", MIN_POSITIVES,
                        int(rows.get("train_positives", 0)))]
    return ModelCard(NAME, champ.version, m.get("trained_at"), m.get("tier"), m.get("tier_reason", ""),
                     m.get("split"), rows=rows, minimums=minimums, metrics=m.get("metrics", {}),
                     reliability=m.get("reliability", []), breakdown=m.get("breakdown", []),
                     importance=[tuple(item) for item in m.get("importance", [])],
                     drift=_drift(champ.load(), load_history(engine, level), m.get("drift_reference", {}))
                     if drift else [], status=m.get("status"),
                     promotion=(m.get("promotion") or {}).get("reason"))


def _drift(model, h, reference: dict) -> list[dict]:
    """Key inputs' means over today's candidate rows against the holdout's at training time."""
    if not reference:
        return []
    h.offers = list(model.offers)
    now = float(to_days([clock.utcnow()])[0])
    last = float(np.nanmax(h.purchases["day"].to_numpy())) if h.purchases["day"].notna().any() else now
    rows = candidate_rows(h, max(now, last), dated=model.mode == "dated")
    out = []
    for key in KEY_INPUTS:
        if key not in reference or not len(rows):
            continue
        train, current = reference[key], float(rows[key].mean())
        shift = (current - train) / abs(train) if train else (0.0 if current == 0 else float("inf"))
        out.append({"feature": key, "train": train, "now": current, "shift": shift, "flag": abs(shift) > DRIFT_FLAG})
    return out
