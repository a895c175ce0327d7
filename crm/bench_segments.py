"""Benchmark of the segment builder's live count: the 3-condition counts a marketer builds, as a marketer."""
import statistics
import time

from sqlalchemy import Engine, func
from sqlmodel import select

from crm.db import read_scope
from crm.models import Product, Role
from crm.permissions import load_actor
from crm.segments.service import count_matching
from crm.users import first_active_user_of_role

TARGET_MS = 500
ROUNDS = 3


def cases(product: str) -> dict[str, list[dict]]:
    """Three conditions each, of the kinds the builder offers: fields, behaviour, commerce, surveys, tags."""
    return {
        "customers or opportunities in US/DE/GB who visited the site in the last 30 days": [
            {"field": "lifecycle_stage", "op": "in", "value": ["customer", "opportunity"]},
            {"field": "country", "op": "in", "value": ["US", "DE", "GB"]},
            {"field": "days_since_web_visit", "op": "lt", "value": 30}],
        "retail companies' contacts with lead score ≥ 50 whose latest NPS is a promoter": [
            {"field": "company.industry", "op": "equals", "value": "Retail"},
            {"field": "lead_score", "op": "gte", "value": 50},
            {"field": "nps_category", "op": "equals", "value": "promoter"}],
        f"owners of {product} with ≥ 2 orders who opted in to email": [
            {"field": "owns_product", "op": "has_any", "value": [product]},
            {"field": "order_count", "op": "gte", "value": 2},
            {"field": "email_opt_in", "op": "is", "value": True}],
        "customers with no web visit in 60 days, owned by someone in a team": [
            {"field": "days_since_web_visit", "op": "gte", "value": 60},
            {"field": "lifecycle_stage", "op": "equals", "value": "customer"},
            {"field": "team", "op": "is_not_empty"}],
    }


def bench_segments(engine: Engine) -> dict:
    """Milliseconds per count (best and median of ROUNDS), and the counts."""
    with read_scope(engine) as s:
        marketer = first_active_user_of_role(session=s, role=Role.MARKETER) or \
            first_active_user_of_role(session=s, role=Role.ADMIN)
        actor = load_actor(s, marketer)
        product = s.exec(select(Product.name).where(Product.deleted_at.is_(None)).order_by(func.lower(Product.name))
                         ).first() or "none"
        out = []
        for name, conditions in cases(product).items():
            definition = {"groups": [{"conditions": conditions}]}
            times, found = [], 0
            for _ in range(ROUNDS):
                start = time.perf_counter()
                found = count_matching(session=s, actor=actor, definition=definition)
                times.append((time.perf_counter() - start) * 1000)
            out.append({"case": name, "count": found, "first_ms": times[0], "median_ms": statistics.median(times)})
    return {"cases": out}


def summary_rows(result: dict) -> list[tuple[str, str, str]]:
    return [(f"segment count (3 conditions): {c['case']} — {c['count']:,} contacts, median of {ROUNDS}",
             f"{c['median_ms']:.0f} ms (first {c['first_ms']:.0f} ms)",
             f"≤ {TARGET_MS} ms {'✅' if c['median_ms'] <= TARGET_MS else '❌ over target'}") for c in result["cases"]]
