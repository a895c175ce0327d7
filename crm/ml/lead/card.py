"""What the models page shows about the lead model: the champion (or newest) version's card, and evaluation."""
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from crm.clock import utcnow
from crm.db import read_scope
from crm.ml import registry
from crm.ml.card import Minimum, ModelCard
from crm.ml.drift import DRIFT_SAMPLE, drift_rows, sample_step
from crm.ml.lead.features import converted_between, lead_features, undated_customers
from crm.ml.lead.model import readable
from crm.ml.lead.train import MIN_CLASS
from crm.models import Contact, Deal

SUMMARY_KEYS = ("tier", "split", "rows", "metrics", "data_window", "data_hash", "trained_at", "status", "promotion")


def _shown(root: Path | None) -> registry.ModelVersion | None:
    return registry.champion("lead", root=root) or next(iter(registry.versions("lead", root=root)), None)


def evaluate_lead(*, root: Path | None = None) -> dict:
    """The live (or newest) version's holdout metrics beside the rules and the base rate, as recorded at training."""
    shown = _shown(root)
    if shown is None:
        return {"version": None, "reason": "no lead model has been trained; scores come from the rules"}
    return {"version": shown.version, **{k: shown.metadata.get(k) for k in SUMMARY_KEYS}}


def lead_card(engine: Engine, *, root: Path | None = None, drift: bool = True,
              now: datetime | None = None) -> ModelCard:
    """The models page's card: the champion (or newest) version, its minimums, metrics and drift since training."""
    shown = _shown(root)
    with read_scope(engine) as session:
        leads = session.execute(select(func.count()).select_from(Contact).where(Contact.deleted_at.is_(None))).scalar_one()
        deals = session.execute(select(func.count()).select_from(Deal).where(Deal.deleted_at.is_(None))).scalar_one()
    if shown is None:
        return ModelCard(name="lead", version=None, trained_at=None, tier=None,
                         tier_reason="never trained: lead scores come from the rules", split=None,
                         minimums=[Minimum("contacts", 2 * MIN_CLASS, leads), Minimum("deals", MIN_CLASS, deals)])
    meta = shown.metadata
    rows = meta.get("rows", {})
    promotion = meta.get("promotion") or {}
    return ModelCard(
        name="lead", version=shown.version, trained_at=meta.get("trained_at"), tier=meta.get("tier"),
        tier_reason=meta.get("tier_reason", ""), split=meta.get("split"), rows=rows,
        minimums=[Minimum("training conversions", MIN_CLASS, rows.get("train_conversions", 0)),
                  Minimum("holdout conversions", MIN_CLASS, rows.get("holdout_conversions", 0))],
        metrics=meta.get("metrics", {}), reliability=meta.get("reliability", []),
        importance=[tuple(i) for i in meta.get("importance", [])][:15],
        drift=_drift(engine, meta.get("training_summary") or {}, now or utcnow()) if drift else [],
        status=meta.get("status"), promotion=promotion.get("reason"))


def _drift(engine: Engine, summary: dict, now: datetime) -> list[dict]:
    """Population stability of the key inputs: the training leads against a fixed sample of today's leads (live
    contacts not yet converted, as `snapshot` defines them). Versions trained without a summary show none."""
    if not summary:
        return []
    with read_scope(engine) as session:
        conn = session.connection()
        sample = _sample(conn, now)
        x = lead_features(conn, now, contact_ids=sample)
        converted = converted_between(conn, None, now, contact_ids=sample) | \
            undated_customers(conn, contact_ids=sample)
    return drift_rows(summary, x[~x.index.isin(list(converted))], readable)


def _sample(conn: Connection, now: datetime) -> list[int]:
    """Every k-th live contact by id, at most DRIFT_SAMPLE: the same contacts on every render."""
    live = (Contact.deleted_at.is_(None), Contact.created_at <= now)
    contacts = conn.execute(select(func.count()).select_from(Contact).where(*live)).scalar_one()
    picked = select(Contact.id).where(*live, Contact.id % sample_step(contacts) == 0)
    return list(conn.execute(picked.order_by(Contact.id).limit(DRIFT_SAMPLE)).scalars())
