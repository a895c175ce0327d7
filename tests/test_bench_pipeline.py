"""The pipeline benchmark: it times every part it names for the people it finds, and marks the page targets."""
from datetime import date, timedelta

from crm.bench_pipeline import bench_pipeline, summary_rows
from crm.db import session_scope
from crm.deals import DealInput, create_deal
from tests.factories import actor, make_user


def test_bench_times_boards_forecasts_backtests_and_the_nightly_jobs(sqlite_engine):
    reps = [make_user(sqlite_engine, "rep", team="East") for _ in range(2)]
    make_user(sqlite_engine, "manager", team="East")
    with session_scope(sqlite_engine) as s:
        for rep in reps:
            create_deal(session=s, actor=actor(sqlite_engine, rep), data=DealInput(
                title="Deal", amount=100, expected_close=date.today() + timedelta(days=5)))

    result = bench_pipeline(sqlite_engine)

    assert (len(result["board_ms"]), len(result["forecast_ms"]), len(result["backtest_ms"])) == (2, 1, 1)
    assert result["stage_stats_ms"] >= 0 and result["snapshot_ms"] > 0
    pages = [{"role": "rep", "page": "Pipeline", "cold_ms": 350.0, "warm_ms": 90.0},
             {"role": "manager", "page": "Forecast", "cold_ms": 400.0, "warm_ms": 40.0}]
    rows = summary_rows(result, pages)
    assert rows[0] == ("a rep's Pipeline page (their board and table), cold / warm", "350 / 90 ms",
                       "≤ 300 ms ❌ over target")
    assert rows[1][2] == "≤ 1000 ms ✅" and len(rows) == 7
