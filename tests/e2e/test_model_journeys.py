"""Browser journeys on the models: a marketer reads the cross-sell card and saves the likely buyers of a product
as a static segment; a rep reads why the model gives a deal its probability."""
import shutil
from pathlib import Path

import pytest
from sqlmodel import select

from crm.db import session_scope
from crm.ml.crosssell import train_cross_sell
from crm.ml.win import train_win
from crm.models import Deal, Segment, SegmentMember, User
from tests.e2e.conftest import CHROMIUM, DOCS_SHOTS, SHOTS, expect, full_screenshot, settle, sign_in

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}: browser journeys need it"),
]

WAIT = 60_000


@pytest.fixture(scope="module")
def trained(server, db):
    """The win and cross-sell models trained on the app's database, into the folder the app reads."""
    train_win(db, root=server.models_dir)
    train_cross_sell(db, root=server.models_dir)


def test_a_marketer_saves_the_likely_buyers_of_a_product_as_a_segment(page, server, db, trained):
    sign_in(page, server, "marketer")
    page.get_by_role("heading", name="Home").wait_for()
    page.get_by_test_id("stSidebar").get_by_role("link", name="Models").click()
    page.locator("h1", has_text="Models").wait_for()
    settle(page)
    page.get_by_role("tab", name="Cross-sell").click()
    page.get_by_text("Likely buyers", exact=True).wait_for(timeout=WAIT)
    expect(page.get_by_text("Metrics on the holdout, against baselines").nth(1)).to_be_visible(timeout=WAIT)
    page.get_by_role("button", name="Save as a static segment").click()
    page.get_by_text("saved with 100 contacts").wait_for(timeout=WAIT)
    settle(page)
    with session_scope(db) as s:
        segment = s.exec(select(Segment).order_by(Segment.id.desc()).limit(1)).one()  # other journeys make some too
        assert segment.kind == "static"
        assert len(s.exec(select(SegmentMember).where(SegmentMember.segment_id == segment.id)).all()) == 100
    shot = SHOTS / "models_crosssell_marketer.png"
    full_screenshot(page, shot)
    shutil.copy(shot, DOCS_SHOTS / shot.name)


def test_a_rep_reads_why_the_model_gives_a_deal_its_probability(page, server, db, trained):
    with session_scope(db) as s:
        rep = s.exec(select(User.id).where(User.email == server.logins["rep"])).one()
        deal = s.exec(select(Deal).where(Deal.owner_id == rep, Deal.status == "open").order_by(Deal.id)).first()
        deal_id, title = deal.id, deal.title
    sign_in(page, server, "rep", path=f"/deal-detail?id={deal_id}")
    page.locator("h1", has_text=title).wait_for(timeout=WAIT)
    settle(page)
    page.get_by_text("Why the model says").click()
    page.get_by_text("What if…").wait_for(timeout=WAIT)
    expect(page.get_by_text("log a meeting today")).to_be_visible()
    shot = SHOTS / "deal_explanation_rep.png"
    full_screenshot(page, shot)
    shutil.copy(shot, DOCS_SHOTS / shot.name)
