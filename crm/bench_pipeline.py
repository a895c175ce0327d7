"""Benchmark of the pipeline and forecast use cases behind the pages: the board per rep, the forecast per manager,
the on-demand backtest, and the nightly jobs (stage durations, forecast snapshot)."""
import statistics
import time

from sqlalchemy import Engine
from sqlmodel import select

from crm.board import BoardFilter, pipeline_board
from crm.clock import today
from crm.db import read_scope, session_scope
from crm.forecast import ForecastFilter, backtest, forecast_range, forecast_summary, take_snapshot
from crm.models import Pipeline, Role, User
from crm.permissions import load_actor
from crm.stage_stats import refresh_stage_stats

SAMPLE = 10  # reps and managers measured


def _ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def _people(engine: Engine, role: Role) -> list[int]:
    with read_scope(engine) as s:
        return list(s.exec(select(User.id).where(User.role == role, User.active).order_by(User.id)
                           .limit(SAMPLE)).all())


def bench_pipeline(engine: Engine) -> dict:
    """Milliseconds: per rep, the default pipeline's board as the page asks for it (their own deals); per manager,
    the month's forecast summary plus its Monte Carlo range, and the 6-month backtest; then the nightly jobs."""
    with read_scope(engine) as s:
        pipeline = s.exec(select(Pipeline.id).where(Pipeline.is_default)).first()
    boards, forecasts, backtests = [], [], []
    for rep in _people(engine, Role.REP):
        with read_scope(engine) as s:
            actor = load_actor(s, rep)
            boards.append(_ms(lambda: pipeline_board(session=s, actor=actor, flt=BoardFilter(pipeline, owner_id=rep),
                                                     per_column=20)))
    month = ForecastFilter(kind="month", period_start=today())
    for manager in _people(engine, Role.MANAGER):
        with read_scope(engine) as s:
            actor = load_actor(s, manager)
            forecasts.append(_ms(lambda: (forecast_summary(session=s, actor=actor, filter=month),
                                          forecast_range(session=s, actor=actor, filter=month))))
            backtests.append(_ms(lambda: backtest(session=s, actor=actor, kind="month", periods=6)))
    with session_scope(engine) as s:
        stats_ms = _ms(lambda: refresh_stage_stats(session=s))
    with session_scope(engine) as s:
        snapshot_ms = _ms(lambda: take_snapshot(session=s))
    return {"board_ms": boards, "forecast_ms": forecasts, "backtest_ms": backtests, "stage_stats_ms": stats_ms,
            "snapshot_ms": snapshot_ms}


def summary_rows(result: dict, pages: list[dict]) -> list[tuple[str, str, str]]:
    """Rows for the bench table: the page figures the issue names, then the use cases behind them."""
    def spread(values: list[float]) -> str:
        return f"{statistics.median(values):.0f} ms (max {max(values):.0f})" if values else "no users of that role"

    def page(role: str, title: str) -> dict | None:
        return next((p for p in pages if p["role"] == role and p["page"] == title), None)

    rows = []
    if (board := page("rep", "Pipeline")) is not None:
        ok = "✅" if board["cold_ms"] <= 300 else "❌ over target"
        rows.append(("a rep's Pipeline page (their board and table), cold / warm",
                     f"{board['cold_ms']:.0f} / {board['warm_ms']:.0f} ms", f"≤ 300 ms {ok}"))
    if (forecast := page("manager", "Forecast")) is not None:
        ok = "✅" if forecast["cold_ms"] <= 1000 else "❌ over target"
        rows.append(("a manager's Forecast page, cold / warm", f"{forecast['cold_ms']:.0f} / "
                     f"{forecast['warm_ms']:.0f} ms", f"≤ 1000 ms {ok}"))
    rows += [
        (f"board query for one rep, {len(result['board_ms'])} reps, median", spread(result["board_ms"]), "—"),
        (f"forecast summary + Monte Carlo range (2,000 runs) for one manager's team, {len(result['forecast_ms'])} "
         "managers, median", spread(result["forecast_ms"]), "—"),
        ("backtest of 6 months for one manager's team (on demand), median", spread(result["backtest_ms"]), "—"),
        ("nightly: stage durations refresh", f"{result['stage_stats_ms'] / 1000:.1f} s", "—"),
        ("nightly: forecast snapshot", f"{result['snapshot_ms'] / 1000:.1f} s", "—"),
    ]
    return rows
