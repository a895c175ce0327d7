"""Forecast totals, quotas, the Monte Carlo range and snapshots, on hand-made fixtures with hand-computed values.

Today is 2026-11-22; the quarter is 2026-10-01 .. 2026-12-31. Stage defaults (data/reference/pipelines.json):
Qualification 0.1, Discovery 0.2, Proposal 0.4, Negotiation 0.65.
"""
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import func, select

from crm.db import read_scope, session_scope
from crm.errors import PermissionDenied, ValidationFailed
from crm.forecast import (
    ForecastFilter, forecast_range, forecast_summary, list_snapshots, period_bounds, previous_periods, take_snapshot,
)
from crm.models import Deal, DealStageHistory, ForecastSnapshot, Quota
from tests.factories import actor, make_team, make_user, stage_named

TODAY = date(2026, 11, 22)
Q4 = ForecastFilter("quarter", date(2026, 11, 5))  # any day of the quarter names it
NOV = ForecastFilter("month", date(2026, 11, 1))


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def add_deal(s, owner: int | None, stage: str, amount: float, *, status: str = "open", expected: str | None = None,
             closed: datetime | None = None, category: str = "pipeline", rep_p: float | None = None,
             model_p: float | None = None, entered: datetime | None = None, deleted: bool = False) -> Deal:
    st = stage_named(s, stage)
    deal = Deal(title=f"{stage} {amount}", pipeline_id=st.pipeline_id, stage_id=st.id, owner_id=owner, amount=amount,
                status=status, expected_close=date.fromisoformat(expected) if expected else None, closed_at=closed,
                forecast_category="closed" if status != "open" else category, rep_probability=rep_p,
                model_probability=model_p, stage_entered_at=entered or at("2026-11-01"),
                deleted_at=at("2026-11-02") if deleted else None)
    s.add(deal)
    s.flush()
    return deal


def won_examples(s, owner: int, stage: str, *, days: int, n: int = 20, closed: str = "2026-06-15") -> None:
    """n deals won `days` days after entering `stage`: what the stage's close timing is learned from."""
    for _ in range(n):
        deal = add_deal(s, owner, "Closed won", 100, status="won", closed=at(closed))
        s.add(DealStageHistory(deal_id=deal.id, stage_id=stage_named(s, stage).id,
                               entered_at=at(closed) - timedelta(days=days), exited_at=at(closed)))


@pytest.fixture
def east(engine):
    """Manager M of team East with reps A and B; rep C in team West; a marketer."""
    ids = {"A": make_user(engine, "rep", team="East"), "B": make_user(engine, "rep", team="East"),
           "C": make_user(engine, "rep", team="West"), "M": make_user(engine, "manager", team="East"),
           "admin": make_user(engine, "admin"), "marketer": make_user(engine, "marketer")}
    return ids


def test_periods():
    assert period_bounds("month", date(2026, 2, 14)) == (date(2026, 2, 1), date(2026, 2, 28))
    assert period_bounds("quarter", date(2026, 12, 31)) == (date(2026, 10, 1), date(2026, 12, 31))
    assert previous_periods("quarter", date(2026, 1, 5), 2) == [(date(2025, 7, 1), date(2025, 9, 30)),
                                                                (date(2025, 10, 1), date(2025, 12, 31))]
    assert Q4.period_start == date(2026, 10, 1) and Q4.period_end == date(2026, 12, 31)
    with pytest.raises(ValidationFailed):
        period_bounds("week", TODAY)


def test_summary_totals_by_category_weighting_and_rep(engine, east):
    a, b, c = east["A"], east["B"], east["C"]
    with session_scope(engine) as s:
        add_deal(s, a, "Closed won", 1000, status="won", closed=at("2026-10-05"))
        add_deal(s, a, "Closed won", 7, status="won", closed=at("2026-09-30", 23))  # last quarter: not counted
        add_deal(s, b, "Closed won", 500, status="won", closed=at("2026-12-31", 23))  # last hour of Q4: counted
        add_deal(s, a, "Closed lost", 800, status="lost", closed=at("2026-10-10"))  # lost never counts
        add_deal(s, a, "Proposal", 2000, expected="2026-11-30", category="commit", rep_p=0.9)
        add_deal(s, a, "Negotiation", 1000, expected="2026-12-31", category="best_case", model_p=0.5)
        add_deal(s, b, "Qualification", 3000, expected="2026-10-01")
        add_deal(s, a, "Proposal", 700, expected="2026-11-15", category="omitted", rep_p=1.0)
        add_deal(s, a, "Discovery", 5000, expected="2027-01-01", category="commit")  # next quarter
        add_deal(s, a, "Discovery", 400)  # no expected close: in no period
        add_deal(s, a, "Proposal", 9999, expected="2026-11-30", deleted=True)  # deleted: never counts
        add_deal(s, c, "Closed won", 4000, status="won", closed=at("2026-10-05"))  # team West: not the manager's
        add_deal(s, c, "Proposal", 8000, expected="2026-11-30", category="commit")
    with read_scope(engine) as s:
        stage = forecast_summary(session=s, actor=actor(engine, east["M"]), filter=Q4)
        rep = forecast_summary(session=s, actor=actor(engine, east["M"]), filter=Q4, weighting="rep")
        model = forecast_summary(session=s, actor=actor(engine, east["M"]), filter=Q4, weighting="model")
    assert (stage.closed_won, stage.won_deals) == (1500, 2)  # 1000 + 500
    assert (stage.commit, stage.best_case, stage.pipeline, stage.omitted) == (2000, 1000, 3000, 700)
    assert (stage.commit_forecast, stage.best_case_forecast) == (3500, 4500)  # won + commit (+ best case)
    assert stage.weighted_pipeline == pytest.approx(2000 * 0.4 + 1000 * 0.65 + 3000 * 0.1)  # 1750; omitted out
    assert stage.weighted_forecast == pytest.approx(1500 + 1750)
    assert rep.weighted_pipeline == pytest.approx(2000 * 0.9 + 1000 * 0.65 + 3000 * 0.1)  # 2750
    assert model.weighted_pipeline == pytest.approx(2000 * 0.4 + 1000 * 0.5 + 3000 * 0.1)  # 1600
    assert (stage.open_deals, stage.undated_open_deals) == (4, 1)
    assert (stage.weights_from_rep, stage.weights_from_model) == (2, 1)  # the omitted deal has a rep probability
    assert stage.quota is None and stage.attainment is None
    by_rep = stage.by_rep.set_index("owner_id")
    amounts = ["closed_won", "commit", "best_case", "pipeline", "omitted"]
    assert by_rep.loc[a, amounts].tolist() == [1000, 2000, 1000, 0, 700]
    assert by_rep.loc[a, "weighted"] == pytest.approx(1450) and by_rep.loc[b, "weighted"] == pytest.approx(300)
    assert set(by_rep.index) == {a, b}


def _quota(s, amount: float, start: str, end: str, *, user: int | None = None, team: int | None = None) -> None:
    s.add(Quota(user_id=user, team_id=team, period_start=date.fromisoformat(start), period_end=date.fromisoformat(end),
                amount=amount))


def test_quota_rules_and_attainment(engine, east):
    a, b, c = east["A"], east["B"], east["C"]
    d = make_user(engine, "rep")  # in no team
    west, east_team = make_team(engine, "West"), make_team(engine, "East")
    with session_scope(engine) as s:
        add_deal(s, a, "Closed won", 1400, status="won", closed=at("2026-11-03"))
        _quota(s, 4000, "2026-10-01", "2026-12-31", user=a)  # quarterly
        for month, end in (("10", "31"), ("11", "30"), ("12", "31")):
            _quota(s, 1000, f"2026-{month}-01", f"2026-{month}-{end}", user=b)  # monthly
        _quota(s, 2500, "2026-10-01", "2026-12-31", user=c)  # covered by West's own quota below
        _quota(s, 10000, "2026-10-01", "2026-12-31", team=west)
        _quota(s, 900, "2026-10-01", "2026-12-31", user=d)
    manager, admin = actor(engine, east["M"]), actor(engine, east["admin"])
    with read_scope(engine) as s:
        team = forecast_summary(session=s, actor=manager, filter=Q4)
        everyone = forecast_summary(session=s, actor=admin, filter=Q4)
        a_november = forecast_summary(session=s, actor=manager, filter=ForecastFilter("month", TODAY, owner_id=a))
    assert team.quota == 7000  # East has no team row: A's 4000 + B's three months
    assert team.attainment == pytest.approx(1400 / 7000)
    assert everyone.quota == 7000 + 10000 + 900  # West's team row replaces C's own 2500
    assert a_november.quota == pytest.approx(4000 * 30 / 92)  # a quarterly quota's share of November's 30 days
    assert team.by_rep.set_index("owner_id").loc[b, "quota"] == 3000
    with session_scope(engine) as s:
        _quota(s, 6000, "2026-10-01", "2026-12-31", team=east_team)
    with read_scope(engine) as s:
        assert forecast_summary(session=s, actor=manager, filter=Q4).quota == 6000  # the team's own row wins


def test_forecast_needs_the_right_and_stays_in_the_readers_scope(engine, east):
    west = make_team(engine, "West")
    with session_scope(engine) as s:
        add_deal(s, None, "Closed won", 50, status="won", closed=at("2026-10-05"))  # nobody's: admins only
    with read_scope(engine) as s:
        everyone = forecast_summary(session=s, actor=actor(engine, east["admin"]), filter=Q4)
        assert everyone.closed_won == 50 and everyone.by_rep["rep"].tolist() == ["Unassigned"]
        assert forecast_summary(session=s, actor=actor(engine, east["M"]), filter=Q4).closed_won == 0
        for who in ("marketer", "A"):  # neither marketers nor reps hold forecast.view
            with pytest.raises(PermissionDenied):
                forecast_summary(session=s, actor=actor(engine, east[who]), filter=Q4)
        with pytest.raises(PermissionDenied):
            forecast_range(session=s, actor=actor(engine, east["marketer"]), filter=Q4)
        for other in (ForecastFilter("quarter", TODAY, owner_id=east["C"]),
                      ForecastFilter("quarter", TODAY, team_id=west)):
            with pytest.raises(PermissionDenied):
                forecast_summary(session=s, actor=actor(engine, east["M"]), filter=other)
        assert forecast_summary(session=s, actor=actor(engine, east["admin"]), filter=ForecastFilter(
            "quarter", TODAY, team_id=west)).closed_won == 0
        with pytest.raises(ValidationFailed):
            forecast_summary(session=s, actor=actor(engine, east["M"]), filter=Q4, weighting="gut")


def _range(engine, who, flt=Q4, **kwargs):
    with read_scope(engine) as s:
        return forecast_range(session=s, actor=actor(engine, who), filter=flt, today=TODAY, **kwargs)


def test_a_certain_deal_always_counts_and_a_hopeless_one_never(engine, east):
    a = east["A"]
    with session_scope(engine) as s:
        add_deal(s, a, "Closed won", 300, status="won", closed=at("2026-10-20"))
        add_deal(s, a, "Proposal", 1000, expected="2026-12-10", rep_p=1.0)
        add_deal(s, a, "Proposal", 5000, expected="2026-12-10", rep_p=0.0)
        _quota(s, 1300, "2026-10-01", "2026-12-31", user=a)
    result = _range(engine, east["M"], weighting="rep", simulations=500)
    assert (result.closed_won, result.p10, result.p50, result.p90, result.mean) == (300, 1300, 1300, 1300, 1300)
    assert result.p_hit_quota == 1.0  # 1300 >= 1300 in every run
    assert result.simulated_deals == 2
    fan = result.fan.set_index("day")
    assert fan.loc[date(2026, 10, 14), "p90"] == 0  # the fan's days are the last of each week from Oct 1
    assert fan.loc[date(2026, 10, 21), ["closed_won", "p10", "p90"]].tolist() == [300, 300, 300]  # won Oct 20
    assert fan.loc[date(2026, 12, 9), "p90"] == 300 and fan.loc[date(2026, 12, 16), "p10"] == 1300  # closes Dec 10
    assert fan.index[-1] == date(2026, 12, 31)
    with session_scope(engine) as s:
        s.exec(select(Quota).where(Quota.user_id == a)).one().amount = 1301
    assert _range(engine, east["M"], weighting="rep", simulations=500).p_hit_quota == 0.0


def test_quantiles_of_two_independent_deals(engine, east):
    """Outcomes: 0 (p .2 x .7 = .14), 100 (.8 x .7 = .56), 1000 (.2 x .3 = .06), 1100 (.8 x .3 = .24).
    Cumulative .14, .70, .76, 1: so P10 = 0, P50 = 100, P90 = 1100; P(>= 1000) = .30; mean 80 + 300 = 380."""
    a = east["A"]
    with session_scope(engine) as s:
        add_deal(s, a, "Proposal", 100, expected="2026-12-01", rep_p=0.8)
        add_deal(s, a, "Proposal", 1000, expected="2026-12-01", rep_p=0.3)
        _quota(s, 1000, "2026-10-01", "2026-12-31", user=a)
    result = _range(engine, east["M"], weighting="rep", simulations=20_000, seed=7)
    assert (result.p10, result.p50, result.p90) == (0, 100, 1100)
    assert result.p_hit_quota == pytest.approx(0.30, abs=0.015)  # 20,000 runs: standard error 0.003
    assert result.mean == pytest.approx(380, abs=15)  # standard error 460 / sqrt(20,000) = 3.3
    again = _range(engine, east["M"], weighting="rep", simulations=20_000, seed=7)
    assert (again.mean, again.p_hit_quota) == (result.mean, result.p_hit_quota)  # seeded: the same every time


def test_learned_slip_moves_a_deal_out_of_the_period(engine, east):
    """Won deals took exactly 60 days after entering Negotiation, so a Negotiation deal that entered on Nov 12 closes
    on Jan 11 at the earliest, though its rep expects Nov 30. Proposal has no examples: no slip, and it is said."""
    a = east["A"]
    with session_scope(engine) as s:
        won_examples(s, a, "Negotiation", days=60)  # won in June, outside the quarter
        add_deal(s, a, "Negotiation", 1000, expected="2026-11-30", rep_p=1.0, entered=at("2026-11-12"))
        add_deal(s, a, "Proposal", 300, expected="2026-11-30", rep_p=1.0)
        add_deal(s, a, "Proposal", 50, expected="2026-10-15", rep_p=1.0)  # overdue: no slip closes it from today
    result = _range(engine, east["M"], weighting="rep", simulations=200)
    assert (result.p10, result.p90) == (350, 350)
    slip = result.slip.set_index("stage")
    assert slip.loc["Negotiation", ["deals", "examples", "learned"]].tolist() == [1, 20, True]
    assert slip.loc["Proposal", ["deals", "examples", "learned"]].tolist() == [2, 0, False]
    with read_scope(engine) as s:  # the plain forecast takes the rep's date at its word
        assert forecast_summary(session=s, actor=actor(engine, east["M"]), filter=Q4,
                                weighting="rep").weighted_pipeline == 1000 + 300 + 50
    next_quarter = _range(engine, east["M"], ForecastFilter("quarter", date(2027, 1, 1)), weighting="rep",
                          simulations=200)
    assert next_quarter.p50 == 1000  # where the slip took it


def test_the_range_matches_the_weighted_forecast_on_average(engine, east):
    a = east["A"]
    with session_scope(engine) as s:
        add_deal(s, a, "Closed won", 250, status="won", closed=at("2026-11-02"))
        for amount, stage in ((1000, "Qualification"), (2000, "Discovery"), (1500, "Proposal"), (800, "Negotiation")):
            add_deal(s, a, stage, amount, expected="2026-12-20")
    result = _range(engine, east["M"], simulations=20_000)
    expected = 250 + 1000 * 0.1 + 2000 * 0.2 + 1500 * 0.4 + 800 * 0.65  # 1870
    assert result.mean == pytest.approx(expected, rel=0.02)
    assert result.p10 <= result.p50 <= result.p90 and result.quota is None and result.p_hit_quota is None


def _snapshot_rows(engine) -> int:
    with read_scope(engine) as s:
        return s.exec(select(func.count()).select_from(ForecastSnapshot)).one()


def test_snapshots_are_idempotent_per_day_and_hold_every_method(engine, east):
    a, b = east["A"], east["B"]
    with session_scope(engine) as s:
        add_deal(s, a, "Closed won", 1000, status="won", closed=at("2026-11-03"))
        add_deal(s, a, "Proposal", 2000, expected="2026-11-30", category="commit", rep_p=0.9)
        add_deal(s, b, "Negotiation", 1000, expected="2026-12-20")  # in the quarter, not in November
    with session_scope(engine) as s:
        written = take_snapshot(session=s, today=TODAY)
    assert written == 3  # November: A; quarter: A and B (one pipeline each)
    with session_scope(engine) as s:
        assert take_snapshot(session=s, today=TODAY) == 3
    assert _snapshot_rows(engine) == 3  # the second run replaced the first
    with session_scope(engine) as s:
        add_deal(s, b, "Proposal", 10, expected="2026-11-25")
        take_snapshot(session=s, actor=actor(engine, east["admin"]), today=TODAY + timedelta(days=1))
    assert _snapshot_rows(engine) == 3 + 4
    with read_scope(engine) as s:
        history = list_snapshots(session=s, actor=actor(engine, east["M"]), filter=NOV)
    first = history.iloc[0]
    assert history["taken_on"].tolist() == [TODAY, TODAY + timedelta(days=1)]
    assert (first["won"], first["commit"], first["weighted_stage"], first["weighted_rep"]) == (1000, 2000, 800, 1800)
    assert history.iloc[1]["weighted_stage"] == pytest.approx(800 + 10 * 0.4)
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        take_snapshot(session=s, actor=actor(engine, east["M"]), today=TODAY)  # a manager sees one team only


def test_very_large_scopes_get_fewer_runs_but_never_fewer_than_a_thousand():
    from crm.forecast.montecarlo import runs_for

    assert runs_for(2000, 100) == 2000  # a team: every run asked for
    assert runs_for(2000, 36_000) == 1111  # 40 million draws / 36,000 deals
    assert runs_for(2000, 1_000_000) == 1000
    assert runs_for(500, 1_000_000) == 500  # never more than asked
