"""The predictive model's features and labels, as of a time. Pure: nothing after `as_of` is read.

Fit columns (industry, size, revenue, title, country, source) are the contact's and company's current values: the
CRM keeps no history of them, so they are assumed stable. Engagement columns count behaviour events before `as_of`.
"""
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import DateTime, Integer, case, cast, func, literal, or_, select
from sqlalchemy.engine import Connection

from crm.models import BehaviorEvent, Company, Contact, Deal, DealContact, EventKind, Order
from crm.sqlfuncs import days_between

CATEGORICAL = ["industry", "country", "source", "title_level"]
EVENTS = [k.value for k in EventKind]
WINDOWS = (30, 90)
NUMERIC = (["log_employees", "log_revenue", "has_company", "email_opt_in", "tenure_days"]
           + [f"{k}_{w}d" for k in EVENTS for w in WINDOWS] + [f"{k}_days_since" for k in EVENTS])
FEATURES = CATEGORICAL + NUMERIC
QUIET = 365.0  # "days since" for a contact who never did it
TITLE_LEVELS = (("c-level", ("chief", "ceo", "cto", "cfo", "coo", "founder", "president", "owner")),
                ("vp/head/director", ("vp", "vice president", "head of", "director")),
                ("manager", ("manager", "lead")))
HORIZON_DAYS = 90


def title_level(titles: pd.Series) -> pd.Series:
    """A job title's seniority in words, by keyword (the first level that matches wins)."""
    lower = titles.fillna("").str.lower()
    level = pd.Series(np.where(lower == "", "none", "other"), index=titles.index, dtype=object)
    for name, words in reversed(TITLE_LEVELS):
        level[lower.str.contains("|".join(words), regex=True)] = name
    return level


def _contacts(conn: Connection, as_of: datetime, contact_ids: list[int] | None) -> pd.DataFrame:
    at = literal(as_of, DateTime(timezone=True))
    stmt = (select(Contact.id.label("contact_id"), Contact.job_title, Contact.country, Contact.source,
                   cast(Contact.email_opt_in, Integer).label("email_opt_in"), Company.industry, Company.employees,
                   Company.annual_revenue, Contact.company_id,
                   days_between(Contact.created_at, at).label("tenure_days"))
            .select_from(Contact).outerjoin(Company, Company.id == Contact.company_id)
            .where(Contact.deleted_at.is_(None), Contact.created_at <= as_of).order_by(Contact.id))
    if contact_ids is not None:
        stmt = stmt.where(Contact.id.in_(contact_ids))
    result = conn.execute(stmt)
    return pd.DataFrame([tuple(r) for r in result.all()], columns=list(result.keys()))


def _event_counts(conn: Connection, as_of: datetime, contact_ids: list[int] | None) -> pd.DataFrame:
    at = literal(as_of, DateTime(timezone=True))
    age = days_between(BehaviorEvent.occurred_at, at)
    windows = [func.sum(case((BehaviorEvent.occurred_at > as_of - timedelta(days=w), 1), else_=0)).label(f"n{w}")
               for w in WINDOWS]
    stmt = (select(BehaviorEvent.contact_id, BehaviorEvent.kind, *windows, func.min(age).label("days_since"))
            .where(BehaviorEvent.occurred_at <= as_of).group_by(BehaviorEvent.contact_id, BehaviorEvent.kind))
    if contact_ids is not None:
        stmt = stmt.where(BehaviorEvent.contact_id.in_(contact_ids))
    result = conn.execute(stmt)
    return pd.DataFrame([tuple(r) for r in result.all()], columns=list(result.keys()))


def lead_features(conn: Connection, as_of: datetime, *, contact_ids: list[int] | None = None) -> pd.DataFrame:
    """One row per live contact created by `as_of` (index contact_id), columns FEATURES."""
    base = _contacts(conn, as_of, contact_ids).set_index("contact_id")
    out = pd.DataFrame(index=base.index)
    for col in ("industry", "country", "source"):
        out[col] = base[col].fillna("(none)").astype(str)
    out["title_level"] = title_level(base["job_title"])
    out["log_employees"] = np.log1p(pd.to_numeric(base["employees"], errors="coerce").fillna(0).to_numpy(float))
    out["log_revenue"] = np.log1p(pd.to_numeric(base["annual_revenue"], errors="coerce").fillna(0).to_numpy(float))
    out["has_company"] = base["company_id"].notna().astype(float)
    out["email_opt_in"] = base["email_opt_in"].astype(float)
    out["tenure_days"] = base["tenure_days"].astype(float).clip(lower=0)
    counts = _event_counts(conn, as_of, contact_ids)
    for kind in EVENTS:
        mine = counts[counts["kind"] == kind].set_index("contact_id").reindex(out.index)
        for w in WINDOWS:
            out[f"{kind}_{w}d"] = mine[f"n{w}"].fillna(0).astype(float)
        out[f"{kind}_days_since"] = mine["days_since"].astype(float).clip(lower=0, upper=QUIET).fillna(QUIET)
    return out[FEATURES]


def converted_between(conn: Connection, start: datetime | None, end: datetime, *,
                      contact_ids: list[int] | None = None) -> set[int]:
    """Contacts who became an opportunity (a deal was opened with them) or a customer (an order) in (start, end];
    with `contact_ids`, only among those (a sample reads a sample's worth, not every converted contact)."""
    def window(column):
        return column <= end if start is None else (column > start) & (column <= end)

    def among(column):
        return [column.in_(contact_ids)] if contact_ids is not None else []

    deal_contacts = select(Deal.contact_id).where(Deal.deleted_at.is_(None), window(Deal.created_at),
                                                  *among(Deal.contact_id))
    linked = (select(DealContact.contact_id).join(Deal, Deal.id == DealContact.deal_id)
              .where(Deal.deleted_at.is_(None), window(Deal.created_at), *among(DealContact.contact_id)))
    ordered = select(Order.contact_id).where(Order.deleted_at.is_(None), window(Order.ordered_at),
                                             *among(Order.contact_id))
    found: set[int] = set()
    for stmt in (deal_contacts, linked, ordered):
        found.update(r[0] for r in conn.execute(stmt) if r[0] is not None)
    return found


def undated_customers(conn: Connection, *, contact_ids: list[int] | None = None) -> set[int]:
    """Contacts with an order of unknown date: customers at some point, so never 'not yet converted'."""
    stmt = select(Order.contact_id).where(Order.deleted_at.is_(None), or_(Order.ordered_at.is_(None)))
    if contact_ids is not None:
        stmt = stmt.where(Order.contact_id.in_(contact_ids))
    return {r[0] for r in conn.execute(stmt) if r[0] is not None}


def snapshot(conn: Connection, as_of: datetime, horizon_days: int = HORIZON_DAYS) -> tuple[pd.DataFrame, np.ndarray]:
    """Leads not yet converted at `as_of` (features as of then) and whether each converted within the horizon."""
    x = lead_features(conn, as_of)
    before = converted_between(conn, None, as_of) | undated_customers(conn)
    x = x[~x.index.isin(list(before))]
    after = converted_between(conn, as_of, as_of + timedelta(days=horizon_days))
    return x, x.index.isin(list(after)).astype(int)
