"""Writing Contact.lead_score in bulk, and explaining one contact's points and probability."""
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import column, table, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from crm.audit import audit
from crm.automations.engine import fire_score_crossings, score_crossings
from crm.clock import utcnow
from crm.db import read_scope, session_scope
from crm.errors import NotFound
from crm.ml import registry
from crm.ml.lead.features import lead_features
from crm.ml.lead.rules import reason_items, reason_text, rule_matrix, rule_scores

CHUNK = 50_000


def current_scores(engine: Engine, *, now: datetime | None = None, root: Path | None = None) -> tuple[pd.Series, str]:
    """The 0-100 score of every live contact, and where it came from.

    With a champion model: its probability x 100 (one scale for everyone, comparable across runs). Without: the
    rule points clipped to 0-100 (the default rules give an ideal lead about 100)."""
    now = now or utcnow()
    champion = registry.champion("lead", root=root)
    if champion is None:
        frame = rule_scores(engine, now=now, reasons=False).set_index("contact_id")
        return frame["points"].clip(0, 100).round(1), "rules"
    model = champion.load()
    with read_scope(engine) as session:
        x = lead_features(session.connection(), now)
    scores = pd.Series(np.round(model.predict(x) * 100, 1) if len(x) else [], index=x.index, dtype=float)
    return scores, f"model {champion.version}"


def update_lead_scores(engine: Engine, *, now: datetime | None = None, root: Path | None = None) -> dict:
    """Write every live contact's lead score in bulk. A score is not an edit: versions and updated_at stay, and
    the run is audited once, with its size."""
    started = time.perf_counter()
    scores, source = current_scores(engine, now=now, root=root)
    computed = time.perf_counter()
    with session_scope(engine) as session:
        changed = _write(session, scores)
        audit(session, actor_id=None, entity="model", record_id=0, action="score",
              context=f"lead: {len(scores)} contacts scored, {changed} changed ({source})"[:80])
    return {"source": source, "contacts": int(len(scores)), "changed": int(changed),
            "mean_score": round(float(scores.mean()), 2) if len(scores) else None,
            "seconds": {"compute": round(computed - started, 2), "write": round(time.perf_counter() - computed, 2)}}


def _write(session: Session, scores: pd.Series) -> int:
    """Load (id, score) into a temporary table, then one UPDATE ... FROM of the rows whose score changed. The
    automation rules on a score crossing a threshold fire on the crossings, in the same transaction."""
    conn = session.connection()
    postgres = conn.dialect.name == "postgresql"
    conn.execute(text("CREATE TEMP TABLE IF NOT EXISTS lead_score_new (id BIGINT PRIMARY KEY, score FLOAT)"))
    conn.execute(text("DELETE FROM lead_score_new"))
    rows = list(zip(scores.index.astype(int).tolist(), scores.astype(float).tolist()))
    if postgres:
        with conn.connection.driver_connection.cursor() as cursor:
            with cursor.copy("COPY lead_score_new (id, score) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    else:
        for lo in range(0, len(rows), CHUNK):
            conn.exec_driver_sql("INSERT INTO lead_score_new (id, score) VALUES (?, ?)", rows[lo:lo + CHUNK])
    crossings = score_crossings(session, table("lead_score_new", column("id"), column("score")))
    changed = conn.execute(text(
        "UPDATE contact SET lead_score = lead_score_new.score FROM lead_score_new "
        "WHERE contact.id = lead_score_new.id "
        "AND (contact.lead_score IS NULL OR contact.lead_score <> lead_score_new.score)"
    )).rowcount
    fire_score_crossings(session, crossings)
    conn.execute(text("DROP TABLE lead_score_new"))
    return changed


def explain_lead(engine: Engine, contact_id: int, *, root: Path | None = None, now: datetime | None = None) -> dict:
    """One contact's rule points with their reasons, and the model's probability with its top factors."""
    now = now or utcnow()
    matrix = rule_matrix(engine, now=now, contact_ids=[contact_id])
    if len(matrix.contact_id) == 0:
        raise NotFound(f"Contact {contact_id} does not exist (or was deleted)")
    items = reason_items(matrix, 0)
    is_fit = [r.kind == "fit" for r in matrix.rules]
    fit = sum(float(p) for p, f in zip(matrix.points[0], is_fit) if f)
    engaged = sum(float(p) for p, f in zip(matrix.points[0], is_fit) if not f)
    out = {"contact_id": contact_id,
           "rules": {"points": round(fit + engaged, 2), "fit_points": round(fit, 2),
                     "engagement_points": round(engaged, 2), "reasons": items,
                     "text": "; ".join(reason_text(i) for i in items) or "no rule matched"},
           "model": None}
    champion = registry.champion("lead", root=root)
    if champion is not None:
        model = champion.load()
        with read_scope(engine) as session:
            x = lead_features(session.connection(), now, contact_ids=[contact_id])
        if len(x):
            out["model"] = {"version": champion.version, "probability": round(float(model.predict(x)[0]), 4),
                            "factors": model.factors(x)[0]}
    out["score_source"] = "model" if out["model"] else "rules"
    return out
