"""Browser journeys on the pipeline: a rep moves one deal on the board and marks another lost with a reason, and
both survive a reload; a manager opens the forecast and its range chart renders."""
import shutil
from datetime import date
from pathlib import Path

import pytest
from sqlmodel import select

from crm.db import session_scope
from crm.deals import DealInput, create_deal
from crm.models import Deal, LostReason, User
from crm.permissions import load_actor
from tests.e2e.conftest import CHROMIUM, DOCS_SHOTS, SHOTS, expect, full_screenshot, settle, sign_in

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}: browser journeys need it"),
]

WAIT = 30_000


def _card(page, title: str):
    """A deal's card on the board: the bordered container holding its link."""
    link = page.get_by_role("link", name=title, exact=True)
    return page.get_by_test_id("stVerticalBlock").filter(has=link).filter(
        has=page.get_by_test_id("stSelectbox")).last


def _choose(page, card, option: str) -> None:
    # The run a previous choice started must end first: while it redraws the board, the stale card and the new one
    # can both sit in the block the locator finds (CI saw "resolved to 2 elements").
    settle(page)
    card.get_by_test_id("stSelectbox").click()
    page.get_by_role("option", name=option, exact=True).click()
    settle(page)


def test_a_rep_moves_a_deal_and_loses_another_with_a_reason(page, server, db):
    with session_scope(db) as s:
        rep = s.exec(select(User.id).where(User.email == server.logins["rep"])).one()
        actor = load_actor(s, rep)
        # Due long ago, so that both sort first in their column.
        moving, losing = (create_deal(session=s, actor=actor, data=DealInput(
            title=title, amount=4200, expected_close=date(2001, 1, 1))).id for title in ("Browser move", "Browser loss"))
    sign_in(page, server, "rep")
    page.get_by_role("heading", name="Home").wait_for()
    page.get_by_test_id("stSidebar").get_by_role("link", name="Pipeline").click()
    page.locator("h1", has_text="Pipeline").wait_for()
    settle(page)

    _choose(page, _card(page, "Browser move"), "Proposal")
    page.get_by_text("Browser move → Proposal").wait_for(timeout=WAIT)
    _choose(page, _card(page, "Browser loss"), "✖ Closed lost")
    page.get_by_text("Why was Browser loss lost?").wait_for(timeout=WAIT)
    page.get_by_test_id("stForm").get_by_test_id("stSelectbox").click()
    page.get_by_role("option", name="Price", exact=True).click()
    page.get_by_role("button", name="Mark lost").click()
    page.get_by_text("Browser loss marked lost (Price)").wait_for(timeout=WAIT)
    settle(page)

    page.reload()  # a new browser session: sign in again, right on the pipeline's address
    sign_in(page, server, "rep", path=None)
    page.locator("h1", has_text="Pipeline").wait_for()
    settle(page)
    expect(_card(page, "Browser move").get_by_role("combobox", name="Move to")).to_have_value("Proposal", timeout=WAIT)
    expect(page.get_by_role("link", name="Browser loss", exact=True)).to_have_count(0)
    with session_scope(db) as s:
        moved, lost = s.get(Deal, moving), s.get(Deal, losing)
        price = s.exec(select(LostReason.id).where(LostReason.name == "Price")).one()
        assert (moved.status, lost.status, lost.lost_reason_id) == ("open", "lost", price)
    shot = SHOTS / "pipeline_board_rep.png"
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.screenshot(path=str(shot), full_page=False)
    shutil.copy(shot, DOCS_SHOTS / shot.name)

    page.get_by_role("link", name="Browser move", exact=True).click()  # the deal page, with its stage history
    page.locator("h1", has_text="Browser move").wait_for(timeout=WAIT)
    settle(page)
    page.get_by_role("tab", name="Stage history").click()
    page.locator('td[role="gridcell"]', has_text="Qualification").first.wait_for(state="attached", timeout=WAIT)
    settle(page)
    shot = SHOTS / "deal_rep.png"
    full_screenshot(page, shot)
    shutil.copy(shot, DOCS_SHOTS / shot.name)


def test_a_manager_opens_the_forecast_and_the_range_chart_renders(page, server):
    sign_in(page, server, "manager")
    page.get_by_role("heading", name="Home").wait_for()
    page.get_by_test_id("stSidebar").get_by_role("link", name="Forecast").click()
    page.locator("h1", has_text="Forecast").wait_for()
    settle(page)
    chart = page.get_by_test_id("stPlotlyChart").first
    expect(chart).to_be_visible(timeout=WAIT)
    expect(chart.locator(".main-svg").first).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("P10", exact=False).first).to_be_visible()
    shot = SHOTS / "forecast_manager.png"
    full_screenshot(page, shot)
    shutil.copy(shot, DOCS_SHOTS / shot.name)
    page.get_by_text("Backtest", exact=True).click()
    page.get_by_text("Mean absolute % error").wait_for(timeout=WAIT)
    settle(page)
    expect(page.get_by_test_id("stPlotlyChart").first.locator(".main-svg").first).to_be_visible(timeout=WAIT)
    shot = SHOTS / "forecast_backtest_manager.png"
    full_screenshot(page, shot)
    shutil.copy(shot, DOCS_SHOTS / shot.name)
