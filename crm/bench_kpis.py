"""Benchmark of the KPIs: every headline metric for the last complete quarter, as an admin, on the CRM's SQLite
database (cold, then warm), and the same functions on an in-memory DuckDB copy of the tables they read, for the
issue's "our time ÷ DuckDB's time ≤ 3×". Each side runs twice: reading the KPI cube (crm/kpis/cube.py, what the
page does) and computing from the base tables (the cube switched off). The copy runs the very same SQLAlchemy
queries (DuckDB reads them as PostgreSQL), so all four compute the same numbers; the bench checks that too."""
import math
import time
from contextlib import contextmanager
from datetime import date

import pandas as pd
from sqlalchemy import Engine, create_engine
from sqlmodel import Session

from crm.clock import today
from crm.db import read_scope
from crm.forecast.periods import previous_periods
from crm.kpis import cube
from crm.kpis.base import KpiFilter
from crm.kpis.catalogue import KPIS
from crm.models import Role
from crm.permissions import load_actor
from crm.users import first_active_user_of_role

COLD_TARGET_MS, RATIO_GOAL = 1000, 3.0
TABLES = ("deal", "deal_stage_history", "stage", "pipeline", "lost_reason", "deal_line_item", "product",
          "sales_order", "order_line", "contact", "company", "app_user", "team", "role_right",
          "list_subscription_event", "survey_response", "ticket", "marketing_spend", "segment", "segment_member",
          "kpi_cube", "data_version")


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
        with _cube_off():
            tables, table_values = _times(s, actor, flt)
    copy_started = time.perf_counter()
    duck = _duckdb_copy(engine)
    copy_s = time.perf_counter() - copy_started
    with Session(duck) as s:
        _times(s, actor, flt)
        duckdb, duck_values = _times(s, actor, flt)
        with _cube_off():
            duck_tables, duck_table_values = _times(s, actor, flt)
    duck.dispose()
    differ = {k for other in (table_values, duck_values, duck_table_values) for k in values
              if not _same(values[k], other[k])}
    return {"period": f"{start:%Y-%m-%d} – {end:%Y-%m-%d}", "cold": cold, "warm": warm, "tables": tables,
            "duckdb": duckdb, "duckdb_tables": duck_tables, "copy_s": copy_s, "differ": sorted(differ)}


@contextmanager
def _cube_off():
    """Compute from the base tables, as before the cube."""
    enabled, cube.ENABLED = cube.ENABLED, False
    try:
        yield
    finally:
        cube.ENABLED = enabled


def summary_rows(result: dict) -> list[tuple[str, str, str]]:
    cold, warm, tables, duck, duck_tables = (sum(result[k].values()) for k in
                                             ("cold", "warm", "tables", "duckdb", "duckdb_tables"))
    same = "the same numbers" if not result["differ"] else f"different numbers for {', '.join(result['differ'])}"
    ratio, ratio_tables = warm / duck if duck else float("inf"), warm / duck_tables if duck_tables else float("inf")
    rows = [(f"all {len(result['cold'])} KPIs for {result['period']}, admin, SQLite with the KPI cube, cold / warm",
             f"{cold * 1000:,.0f} ms / {warm * 1000:,.0f} ms",
             f"cold ≤ {COLD_TARGET_MS} ms {'✅' if cold * 1000 <= COLD_TARGET_MS else '❌ over target'}"),
            ("the same on SQLite from the base tables (the cube switched off)", f"{tables * 1000:,.0f} ms", "—"),
            (f"DuckDB in memory from the base tables ({same}; copying the tables took {result['copy_s']:.0f} s)",
             f"{duck_tables * 1000:,.0f} ms; SQLite with the cube ÷ DuckDB = {ratio_tables:.2f}×",
             f"≤ {RATIO_GOAL:.0f}× {'✅' if ratio_tables <= RATIO_GOAL else '❌ over goal'}"),
            ("DuckDB in memory running the same queries on the cube", f"{duck * 1000:,.0f} ms; SQLite ÷ DuckDB = "
             f"{ratio:.1f}×", f"≤ {RATIO_GOAL:.0f}× {'✅' if ratio <= RATIO_GOAL else '❌ over goal'}")]
    slowest = sorted(result["warm"], key=result["warm"].get, reverse=True)[:4]
    rows += [(f"KPI {k}: SQLite with the cube / DuckDB on the same queries", f"{result['warm'][k] * 1000:,.0f} ms / "
              f"{result['duckdb'][k] * 1000:,.0f} ms", "—") for k in slowest]
    return rows
