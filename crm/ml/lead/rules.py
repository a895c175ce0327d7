"""Rule-based lead points, computed in bulk: one query for fit, one for engagement events, numpy for the rest."""
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import DateTime, and_, case, func, literal, or_, select
from sqlalchemy.engine import Engine

from crm.clock import utcnow
from crm.db import read_scope
from crm.lead_rules import LeadRuleView, list_rules
from crm.models import BehaviorEvent, Company, Contact, CustomFieldDef, CustomFieldValue, Entity
from crm.sqlfuncs import days_between

COLUMNS = ["contact_id", "points", "fit_points", "engagement_points", "reasons"]


@dataclass(frozen=True)
class RuleMatrix:
    """Each live contact's points per rule (columns in `rules` order), and event counts for engagement rules."""
    contact_id: np.ndarray
    rules: list[LeadRuleView]
    points: np.ndarray  # contacts x rules
    counts: np.ndarray  # contacts x rules: events counted (0 for fit rules)


def _fit_expression(rule: LeadRuleView, contact, company, custom_values: dict):
    cond = rule.condition
    field = cond["field"]
    if field.startswith("custom."):
        value = custom_values[field]
        column = value.c.value_number if "min" in cond or "max" in cond else value.c.value_text
        if "equals" in cond:
            return value.c.value_bool == cond["equals"]
    else:
        column = {"industry": company.c.industry, "employees": company.c.employees,
                  "annual_revenue": company.c.annual_revenue, "country": contact.c.country,
                  "job_title": contact.c.job_title}[field]
    if "in" in cond:
        return func.lower(column).in_([v.lower() for v in cond["in"]])
    if "contains" in cond:
        return or_(*[func.lower(column).contains(w.lower(), autoescape=True) for w in cond["contains"]])
    bounds = [column >= cond["min"]] if "min" in cond else []
    bounds += [column < cond["max"]] if "max" in cond else []
    return and_(*bounds)


def _fit_matches(conn, rules: list[LeadRuleView], contact_ids: list[int] | None) -> tuple[np.ndarray, np.ndarray]:
    """Contact ids and a 0/1 matrix of which fit rule matches which contact, in one query."""
    contact, company = Contact.__table__, Company.__table__
    source = contact.outerjoin(company, company.c.id == contact.c.company_id)
    custom_values = {}
    for key in sorted({r.condition["field"] for r in rules if r.condition["field"].startswith("custom.")}):
        field_id = conn.execute(select(CustomFieldDef.id).where(
            CustomFieldDef.entity == Entity.CONTACT, CustomFieldDef.key == key.removeprefix("custom."),
            CustomFieldDef.deleted_at.is_(None))).scalar()
        value = CustomFieldValue.__table__.alias(f"cf{len(custom_values)}")
        custom_values[key] = value
        source = source.outerjoin(value, and_(value.c.field_id == (field_id or -1), value.c.record_id == contact.c.id))
    flags = [case((_fit_expression(r, contact, company, custom_values), 1), else_=0).label(f"r{i}")
             for i, r in enumerate(rules)]
    stmt = select(contact.c.id, *flags).select_from(source).where(contact.c.deleted_at.is_(None)).order_by(contact.c.id)
    if contact_ids is not None:
        stmt = stmt.where(contact.c.id.in_(contact_ids))
    # Rows become plain tuples first: numpy probes each Row object for array attributes, which costs seconds.
    rows = np.array([tuple(r) for r in conn.execute(stmt).all()], dtype=np.int64).reshape(-1, len(rules) + 1)
    return rows[:, 0], rows[:, 1:]


def _events(conn, rules: list[LeadRuleView], now: datetime, contact_ids: list[int] | None) -> pd.DataFrame:
    """(contact_id, kind, age in days) of every event an engagement rule may count, up to `now`."""
    if not rules:
        return pd.DataFrame({"contact_id": [], "kind": [], "age": []})
    oldest = now - timedelta(days=max(r.condition["window_days"] for r in rules))
    at = literal(now, DateTime(timezone=True))
    event = BehaviorEvent.__table__
    stmt = (select(event.c.contact_id, event.c.kind, days_between(event.c.occurred_at, at).label("age"))
            .where(event.c.kind.in_(sorted({r.condition["event"] for r in rules})),
                   event.c.occurred_at >= oldest, event.c.occurred_at <= now))
    if contact_ids is not None:
        stmt = stmt.where(event.c.contact_id.in_(contact_ids))
    rows = [tuple(r) for r in conn.execute(stmt).all()]
    return pd.DataFrame(rows, columns=["contact_id", "kind", "age"])


def decayed_points(points: float, ages: np.ndarray, *, window_days: float, half_life_days: float | None,
                   max_points: float | None = None) -> float:
    """One contact's points for one engagement rule: points x sum of 0.5 ** (age / half-life) inside the window."""
    ages = np.asarray(ages, dtype=float)
    ages = ages[(ages >= 0) & (ages <= window_days)]
    weight = np.power(0.5, ages / half_life_days) if half_life_days else np.ones(len(ages))
    total = points * weight.sum()
    return min(total, max_points) if max_points is not None else total


def _engagement(events: pd.DataFrame, index: pd.Index, rule: LeadRuleView) -> tuple[np.ndarray, np.ndarray]:
    """Per contact (in `index` order): the rule's decayed, capped points and how many events it counted."""
    cond = rule.condition
    mine = events[(events["kind"] == cond["event"]) & (events["age"] >= 0) & (events["age"] <= cond["window_days"])]
    age = mine["age"].to_numpy(dtype=float)
    weight = np.power(0.5, age / rule.half_life_days) if rule.half_life_days else np.ones(len(age))
    grouped = pd.DataFrame({"contact_id": mine["contact_id"].to_numpy(), "w": weight, "n": 1})
    grouped = grouped.groupby("contact_id").sum()
    grouped = grouped.reindex(index, fill_value=0)
    points = rule.points * grouped["w"].to_numpy(dtype=float)
    if cond.get("max_points") is not None:
        points = np.minimum(points, cond["max_points"])
    return points, grouped["n"].to_numpy(dtype=np.int64)


def rule_matrix(engine: Engine, *, now: datetime | None = None, contact_ids: list[int] | None = None) -> RuleMatrix:
    """Points per live contact and active rule, as of `now` (events after it are not read)."""
    now = now or utcnow()
    with read_scope(engine) as session:
        rules = [r for r in list_rules(session=session) if r.active]
        fit = [r for r in rules if r.kind == "fit"]
        engaged = [r for r in rules if r.kind == "engagement"]
        conn = session.connection()
        ids, matched = _fit_matches(conn, fit, contact_ids)
        events = _events(conn, engaged, now, contact_ids)
    index = pd.Index(ids)
    points = [matched[:, i] * r.points for i, r in enumerate(fit)]
    counts = [np.zeros(len(ids), dtype=np.int64) for _ in fit]
    for rule in engaged:
        p, n = _engagement(events, index, rule)
        points.append(p)
        counts.append(n)
    stack = (lambda cols: np.column_stack(cols) if cols else np.zeros((len(ids), 0)))
    return RuleMatrix(ids, fit + engaged, stack(points).astype(float), stack(counts))


def reason_items(matrix: RuleMatrix, row: int) -> list[dict]:
    """The rules that gave one contact points: name, kind, points and (engagement) events counted."""
    out = []
    for j, rule in enumerate(matrix.rules):
        p = float(matrix.points[row, j])
        if p != 0:
            item = {"rule": rule.name, "kind": rule.kind, "points": round(p, 1)}
            if rule.kind == "engagement":
                item["events"] = int(matrix.counts[row, j])
                item["window_days"] = rule.condition["window_days"]
            out.append(item)
    return out


def reason_text(item: dict) -> str:
    if item["kind"] == "engagement":
        return f"{item['rule']} ({item['events']} in {item['window_days']:g} d) {item['points']:+.1f}"
    return f"{item['rule']} {item['points']:+.1f}"


def _reasons(matrix: RuleMatrix) -> np.ndarray:
    """'Target industry +15.0; Email clicks (3 in 90 d) +7.4' per contact, built column by column."""
    out = np.full(len(matrix.contact_id), "", dtype=object)
    for j, rule in enumerate(matrix.rules):
        hit = np.flatnonzero(matrix.points[:, j] != 0)
        if not len(hit):
            continue
        texts = np.array([reason_text(it) for it in _items(matrix, j, hit)], dtype=object)
        out[hit] = np.where(out[hit] == "", texts, out[hit] + "; " + texts)
    return out


def _items(matrix: RuleMatrix, j: int, rows: np.ndarray) -> list[dict]:
    rule = matrix.rules[j]
    extra = ({"window_days": rule.condition["window_days"]} if rule.kind == "engagement" else {})
    return [{"rule": rule.name, "kind": rule.kind, "points": round(float(matrix.points[i, j]), 1),
             "events": int(matrix.counts[i, j]), **extra} for i in rows]


def rule_scores(engine: Engine, *, now: datetime | None = None, contact_ids: list[int] | None = None,
                reasons: bool = True) -> pd.DataFrame:
    """contact_id, points (fit + engagement), fit_points, engagement_points (decayed) and reasons, per live contact."""
    matrix = rule_matrix(engine, now=now, contact_ids=contact_ids)
    is_fit = np.array([r.kind == "fit" for r in matrix.rules], dtype=bool)
    fit = matrix.points[:, is_fit].sum(axis=1) if is_fit.any() else np.zeros(len(matrix.contact_id))
    engaged = matrix.points[:, ~is_fit].sum(axis=1) if (~is_fit).any() else np.zeros(len(matrix.contact_id))
    frame = pd.DataFrame({"contact_id": matrix.contact_id, "points": np.round(fit + engaged, 2),
                          "fit_points": np.round(fit, 2), "engagement_points": np.round(engaged, 2)})
    if reasons:
        frame["reasons"] = _reasons(matrix)
    return frame
