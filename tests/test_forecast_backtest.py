"""Backtest arithmetic on a hand-made history: October has a snapshot, September is rebuilt from stage history.

Today is 2026-11-22, so the last two complete months are September and October 2026. Everything belongs to rep A
of team East unless said otherwise; the reader is East's manager. Proposal's stage default is 0.4.
"""
from datetime import date

import pandas as pd
import pytest

from crm.db import read_scope, session_scope
from crm.errors import PermissionDenied
from crm.forecast import backtest
from crm.models import DealStageHistory, ForecastSnapshot
from tests.factories import actor, make_user, stage_named
from tests.test_forecast import add_deal, at

TODAY = date(2026, 11, 22)
SEPTEMBER, OCTOBER = date(2026, 9, 1), date(2026, 10, 1)


def in_proposal(s, owner: int, amount: float, entered: str, *, status: str = "open", closed: str | None = None):
    """A deal created when it entered Proposal; closed ones leave it for Closed won/lost on `closed`."""
    deal = add_deal(s, owner, "Proposal" if status == "open" else f"Closed {status}", amount, status=status,
                    closed=at(closed) if closed else None, entered=at(entered))
    deal.created_at = at(entered)
    s.add(DealStageHistory(deal_id=deal.id, stage_id=stage_named(s, "Proposal").id, entered_at=at(entered),
                           exited_at=at(closed) if closed else None))
    if closed:
        s.add(DealStageHistory(deal_id=deal.id, stage_id=deal.stage_id, entered_at=at(closed)))


def snapshot(s, owner: int, taken_on: date, start: date, end: date, **data):
    s.add(ForecastSnapshot(taken_on=taken_on, period_start=start, period_end=end, user_id=owner,
                           pipeline_id=stage_named(s, "Proposal").pipeline_id, data=data))


@pytest.fixture
def history(engine):
    """Close timing: 20 deals entered Proposal on Jun 25; 10 were won 10 days later (Jul 5), 10 after 60 (Aug 24).

    X entered Proposal on Aug 29 (2 whole days before Sep 1) and was won on Sep 20; Y entered on Jul 20 (42 days
    before Sep 1) and is still open; Z was created on Oct 3 and won on Oct 15.
    """
    ids = {"A": make_user(engine, "rep", team="East"), "C": make_user(engine, "rep", team="West"),
           "M": make_user(engine, "manager", team="East")}
    a = ids["A"]
    with session_scope(engine) as s:
        for closed in ["2026-07-05"] * 10 + ["2026-08-24"] * 10:
            in_proposal(s, a, 100, "2026-06-25", status="won", closed=closed)
        in_proposal(s, a, 1000, "2026-08-29", status="won", closed="2026-09-20")  # X
        in_proposal(s, a, 500, "2026-07-20")  # Y
        in_proposal(s, a, 1000, "2026-10-03", status="won", closed="2026-10-15")  # Z
        october = (OCTOBER, date(2026, 10, 31))
        snapshot(s, a, date(2026, 10, 2), *october, won=100, weighted_stage=900, weighted_rep=1200, weighted_model=900,
                 open_deals=3, rep_deals=2, model_deals=0)
        snapshot(s, ids["C"], date(2026, 10, 2), *october, won=5000, weighted_stage=1, weighted_rep=1,
                 weighted_model=1, open_deals=1, rep_deals=1, model_deals=1)  # team West: not in East's forecast
        snapshot(s, a, date(2026, 9, 5), SEPTEMBER, date(2026, 9, 30), won=0, weighted_stage=7, weighted_rep=7,
                 weighted_model=7, open_deals=1, rep_deals=1, model_deals=1)  # 4 days into September: too late
    return ids


def _backtest(engine, who, **kwargs):
    with read_scope(engine) as s:
        return backtest(session=s, actor=actor(engine, who), kind="month", periods=2, today=TODAY, **kwargs)


def test_backtest_rows_by_period_and_method(engine, history):
    result = _backtest(engine, history["M"])
    rows = result.rows.set_index(["period_start", "method"])
    assert result.reconstructed_periods == 1

    # September, rebuilt as of Sep 1 00:00. Timing: P(r <= d + 29 | r >= d) with r in {10 x 10, 60 x 10}.
    # X: d = 2, P(r <= 31 | r >= 2) = 10/20;  Y: d = 42, P(r <= 71 | r >= 42) = 10/10.
    # stage: 1000 x 0.4 x 0.5 + 500 x 0.4 x 1 = 400. Actual: X, 1000.
    sep = rows.loc[SEPTEMBER]
    assert sep.loc["stage", ["source", "forecast", "actual", "error", "abs_pct_error"]].tolist() == pytest.approx(
        ["reconstructed from stage history", 400, 1000, -600, 0.6])
    assert sep.loc["stage", "actual_from_open_at_start"] == 1000
    for method in ("rep", "model"):
        assert sep.loc[method, "source"] == "needs snapshots" and pd.isna(sep.loc[method, "forecast"])
    # history: Proposal's conversion over May-Aug. Jul 1: the 20 (2000 open), 10 won in July (1000).
    # Aug 1: the other 10 and Y (1500 open), the 10 won in August (1000). Rate 2000 / 3500 = 4/7.
    # September's pipeline: X and Y, 1500 x 4/7.
    assert sep.loc["history", "forecast"] == pytest.approx(1500 * 4 / 7)
    assert sep.loc["history", "abs_pct_error"] == pytest.approx((1000 - 1500 * 4 / 7) / 1000)

    # October, from the snapshot of Oct 2 (East's rows only): won 100 + weighted.
    oct_ = rows.loc[OCTOBER]
    assert oct_.loc[["stage", "rep", "model"], "forecast"].tolist() == [1000, 1300, 1000]
    assert set(oct_.loc[["stage", "rep", "model"], "source"]) == {"snapshot"}
    assert oct_.loc["rep", ["error", "abs_pct_error"]].tolist() == pytest.approx([300, 0.3])  # actual: Z, 1000
    assert oct_.loc["rep", "note"] == "2 of 3 open deals had a rep probability; the others used the stage's"
    assert oct_.loc["model", "note"] == "0 of 3 open deals had a model probability; the others used the stage's"
    # history: Jun-Sep; Sep 1 adds X and Y (1500 open, X won: 1000). Rate 3000 / 5000. October's pipeline: Y.
    assert oct_.loc["history", "forecast"] == pytest.approx(500 * 0.6)
    assert oct_.loc["history", "actual_from_open_at_start"] == 0  # Z was created in October


def test_backtest_summary_per_method(engine, history):
    summary = _backtest(engine, history["M"]).summary.set_index("method")
    assert summary.loc["stage", "periods"] == 2
    assert summary.loc["stage", "mean_error"] == pytest.approx((-600 + 0) / 2)
    assert summary.loc["stage", "mean_abs_pct_error"] == pytest.approx((0.6 + 0) / 2)
    assert summary.loc["stage", "sources"] == "1 reconstructed from stage history, 1 snapshot"
    assert summary.loc["rep", ["periods", "mean_error", "mean_abs_pct_error"]].tolist() == pytest.approx([1, 300, 0.3])
    history_errors = [1500 * 4 / 7 - 1000, 300 - 1000]
    assert summary.loc["history", "mean_error"] == pytest.approx(sum(history_errors) / 2)


def test_a_rebuilt_forecast_never_sees_what_came_after_its_start(engine, history):
    before = _backtest(engine, history["M"]).rows
    with session_scope(engine) as s:  # later wins, with a very different close timing, changing nothing before
        for _ in range(30):
            in_proposal(s, history["A"], 100, "2026-09-29", status="won", closed="2026-09-30")
    after = _backtest(engine, history["M"]).rows
    september = (before["period_start"] == SEPTEMBER) & before["method"].isin(["stage", "history"])
    assert after.loc[september, "forecast"].tolist() == pytest.approx(before.loc[september, "forecast"].tolist())
    assert after.loc[september, "actual"].tolist() == [1000 + 3000] * 2  # the outcome, of course, moved


def test_backtest_with_too_little_history_says_so(engine, history):
    with read_scope(engine) as s:
        result = backtest(session=s, actor=actor(engine, history["M"]), kind="month", periods=1,
                          today=date(2026, 8, 10))  # July: rebuilt as of Jul 1, when nothing had closed yet
    stage = result.rows.set_index("method").loc["stage"]
    assert pd.isna(stage["forecast"])
    assert stage["note"].startswith("20 of 20 open deals left out: their stage had fewer than 20 won examples")


def test_backtest_scope(engine, history):
    with read_scope(engine) as s, pytest.raises(PermissionDenied):
        backtest(session=s, actor=actor(engine, history["M"]), kind="month", owner_id=history["C"], today=TODAY)
    rows = _backtest(engine, history["M"], owner_id=history["A"]).rows
    assert rows.loc[(rows["period_start"] == OCTOBER) & (rows["method"] == "stage"), "forecast"].item() == 1000
