"""Benchmark of the KPIs: every headline metric for the last complete quarter, as an admin, on the CRM's SQLite
database (cold, then warm), and the same functions on an in-memory DuckDB copy of the tables they read, for the
issue's "our time ÷ DuckDB's time ≤ 3×". The copy runs the very same SQLAlchemy queries (DuckDB reads them as
PostgreSQL), so both compute exactly the same numbers; the bench checks that too."""
import math
import time
from datetime import date

import pandas as pd
from sqlalchemy import Engine, create_engine
from sqlmodel import Session

from crm.clock import today
from crm.db import read_scope
from crm.forecast.periods import previous_periods
from crm.kpis.base import KpiFilter
from crm.kpis.catalogue import KPIS
from crm.models import Role
from crm.permissions import load_actor
from crm.users import first_active_user_of_role

COLD_TARGET_MS, RATIO_GOAL = 1000, 3.0
TABLES = ("deal", "deal_stage_history", "stage", "pipeline", "lost_reason", "deal_line_item", "product",
          "sales_order", "order_line", "contact", "company", "app_user", "team", "role_right",
          "list_subscription_event", "survey_response", "ticket", "marketing_spend", "segment", "segment_member")


def _times(session: Session, actor, flt: KpiFilter) -> tuple[dict[str, float], dict[str, float | None]]:
    seconds, values = {}, {}
    for kpi in KPIS:
        start = time.perf_counter()
        values[kpi.key] = kpi.compute(session, actor, flt).value
        seconds[kpi.key] = time.perf_counter() - start
    return seconds, values


def _duckdb_copy(engine: Engine) -> Engine:
    duck = create_engine("duckdb:///:memory:")
    raw = duck.raw_connection().driver_connection
    for name in TABLES:
        raw.register("frame", pd.read_sql_table(name, engine))
        raw.execute(f'CREATE TABLE "{name}" AS SELECT * FROM frame')
        raw.unregister("frame")
    return duck


def _same(a: float | None, b: float | None) -> bool:
    return a == b or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9))


def bench_kpis(engine: Engine, *, day: date | None = None) -> dict:
    """Seconds per metric: SQLite cold and warm, DuckDB (warm: its first run pays no disk), and the period."""
    start, end = previous_periods("quarter", day or today(), 1)[0]
    flt = KpiFilter(start, end)
    with read_scope(engine) as s:
        actor = load_actor(s, first_active_user_of_role(session=s, role=Role.ADMIN))
        cold, values = _times(s, actor, flt)
        warm, _ = _times(s, actor, flt)
    copy_started = time.perf_counter()
    duck = _duckdb_copy(engine)
    copy_s = time.perf_counter() - copy_started
    with Session(duck) as s:
        _times(s, actor, flt)
        duckdb, duck_values = _times(s, actor, flt)
    duck.dispose()
    return {"period": f"{start:%Y-%m-%d} – {end:%Y-%m-%d}", "cold": cold, "warm": warm, "duckdb": duckdb,
            "copy_s": copy_s, "differ": [k for k in values if not _same(values[k], duck_values[k])]}


def summary_rows(result: dict) -> list[tuple[str, str, str]]:
    cold, warm, duck = (sum(result[k].values()) for k in ("cold", "warm", "duckdb"))
    ratio = warm / duck if duck else float("inf")
    same = "the same numbers" if not result["differ"] else f"different numbers for {', '.join(result['differ'])}"
    rows = [(f"all {len(result['cold'])} KPIs for {result['period']}, admin, SQLite cold / warm",
             f"{cold * 1000:,.0f} ms / {warm * 1000:,.0f} ms",
             f"cold ≤ {COLD_TARGET_MS} ms {'✅' if cold * 1000 <= COLD_TARGET_MS else '❌ over target'}"),
            (f"the same on DuckDB in memory ({same}; copying the tables took {result['copy_s']:.0f} s)",
             f"{duck * 1000:,.0f} ms; SQLite warm ÷ DuckDB = {ratio:.1f}×",
             f"≤ {RATIO_GOAL:.0f}× {'✅' if ratio <= RATIO_GOAL else '❌ over goal'}")]
    slowest = sorted(result["warm"], key=result["warm"].get, reverse=True)[:4]
    rows += [(f"KPI {k}: SQLite warm / DuckDB", f"{result['warm'][k] * 1000:,.0f} ms / "
              f"{result['duckdb'][k] * 1000:,.0f} ms", "—") for k in slowest]
    return rows
