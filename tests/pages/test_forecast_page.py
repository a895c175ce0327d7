"""The forecast page through AppTest: every manager filter renders, and the numbers follow the filters."""
from datetime import date, timedelta

import pytest
from sqlmodel import select

from crm import db
from crm.clock import today
from crm.deals import DealChanges, DealInput, create_deal, update_deal, win_deal
from crm.forecast import period_bounds
from crm.models import Pipeline, Role, Team
from crm.permissions import load_actor
from crm.quotas import save_quota
from tests.pages.apptest import no_exception, signed_in
from ui.navigation import FORECAST


@pytest.fixture
def book(people):
    """This month: the rep won 1,000 and has 4,000 open in Commit; the manager has 500 open. A month quota of 2,000
    for the rep."""
    start, end = period_bounds("month", today())
    close = min(end, today() + timedelta(days=3))
    with db.session_scope() as s:
        rep, manager = load_actor(s, people[Role.REP]), load_actor(s, people[Role.MANAGER])
        won = create_deal(session=s, actor=rep, data=DealInput(title="Won", amount=1000, expected_close=close))
        win_deal(session=s, actor=rep, deal_id=won.id, seen_version=1)
        committed = create_deal(session=s, actor=rep, data=DealInput(title="Committed", amount=4000,
                                                                     expected_close=close))
        update_deal(session=s, actor=rep, deal_id=committed.id, seen_version=1,
                    changes=DealChanges(forecast_category="commit", rep_probability=0.9))
        create_deal(session=s, actor=manager, data=DealInput(title="Manager's", amount=500, expected_close=close))
        save_quota(session=s, actor=load_actor(s, people[Role.ADMIN]), user_id=rep.id, period_start=start,
                   period_end=end, amount=2000)
    return people


def forecast_page(user_id: int):
    at = signed_in(user_id).run()
    at.switch_page(FORECAST.path).run()
    no_exception(at)
    return at


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_the_manager_sees_the_months_numbers(book):
    at = forecast_page(book[Role.MANAGER])
    shown = metrics(at)
    assert shown["Closed won"] == "1,000"
    assert shown["Commit forecast"] == "5,000"  # won + commit
    # weighted with the stage defaults: 1,000 + 0.1 × 4,000 + 0.1 × 500
    assert shown["Weighted forecast"] == "1,450"
    assert shown["Quota"] == "2,000" and shown["Attainment"] == "50%"
    assert len(at.get("plotly_chart")) == 1  # the range band; the backtest runs when asked for


def _pipeline_id(name: str) -> int:
    with db.read_scope() as s:
        return s.exec(select(Pipeline.id).where(Pipeline.name == name)).one()


def _team_id(name: str) -> int:
    with db.read_scope() as s:
        return s.exec(select(Team.id).where(Team.name == name)).one()


@pytest.mark.parametrize("choose, weighted", [
    (lambda at, people: at.selectbox(key="fc_weighting").set_value("rep"), "4,650"),  # 1,000 + .9×4,000 + .1×500
    (lambda at, people: at.selectbox(key="fc_owner").set_value(people[Role.REP]), "1,400"),  # 1,000 + .1×4,000
    (lambda at, people: at.selectbox(key="fc_pipeline").set_value(_pipeline_id("Renewals & upsell")), "0"),
    (lambda at, people: at.radio(key="fc_kind").set_value("quarter"), "1,450"),  # the quarter holds the month
    (lambda at, people: at.selectbox(key="fc_weighting").set_value("model"), "1,450"),  # no scores: stage defaults
])
def test_each_filter_renders_and_changes_the_numbers(book, choose, weighted):
    at = forecast_page(book[Role.MANAGER])
    choose(at, book)
    at.run()
    no_exception(at)
    assert metrics(at)["Weighted forecast"] == weighted


def test_a_past_period_and_a_team_filter_render(book):
    at = forecast_page(book[Role.ADMIN])
    at.selectbox(key="fc_period_month").set_value(period_bounds("month", date.today().replace(day=1)
                                                                 - timedelta(days=1))[0]).run()
    no_exception(at)
    assert metrics(at)["Closed won"] == "0"
    at.selectbox(key="fc_period_month").set_value(period_bounds("month", today())[0])
    at.selectbox(key="fc_team").set_value(_team_id("East")).run()
    no_exception(at)
    assert metrics(at)["Closed won"] == "1,000"


def test_the_backtest_says_when_it_reconstructed(book):
    at = forecast_page(book[Role.MANAGER])
    at.radio(key="fc_view").set_value("Backtest").run()
    no_exception(at)
    assert any("reconstructed from stage history" in i.value for i in at.info)
    summary = next(d.value for d in at.dataframe if "mean_abs_pct_error" in d.value.columns)
    assert set(summary["method"]) == {"stage", "rep", "model", "history"}


def test_reps_and_marketers_have_no_forecast_page(book):
    for role in (Role.REP, Role.MARKETER):
        at = signed_in(book[role]).run()
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(FORECAST.path)
