"""Browser journey of an admin on the data hygiene page: scan for duplicates (in the background), merge two planted
duplicate contacts side by side with one value taken from the merged record, check the database, then undo the
merge from the merge log and check that both records and their call and deal are back."""
import shutil
from pathlib import Path

import pytest
from sqlmodel import select

from crm.activities import ActivityInput, log_activity
from crm.contacts import create_contact
from crm.db import session_scope
from crm.deals import DealInput, create_deal
from crm.models import Activity, ActivityKind, Contact, ContactInput, Deal, MergeLog, User
from crm.permissions import load_actor
from tests.e2e.conftest import CHROMIUM, DOCS_SHOTS, SHOTS, expect, full_screenshot, pick, settle, sign_in

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}: browser journeys need it"),
]

WAIT = 60_000  # ms: a scan and a merge each take a few seconds on a busy machine
EMAIL = "quincy.quartermain@planted.example"


def plant_duplicates(db, admin_email: str) -> dict[str, int]:
    """Quincy Quartermain twice (one email, two cities); the second has a call and a deal, which must move."""
    with session_scope(db) as s:
        admin = load_actor(s, s.exec(select(User.id).where(User.email == admin_email)).one())
        ids = {name: create_contact(session=s, actor=admin, data=ContactInput(
            first_name="Quincy", last_name="Quartermain", email=EMAIL, city=city)).id
            for name, city in (("first", "Leeds"), ("second", "York"))}
        ids["call"] = log_activity(session=s, actor=admin, data=ActivityInput(
            kind=ActivityKind.CALL, subject="Quincy asked for a quote", contact_id=ids["second"])).id
        ids["deal"] = create_deal(session=s, actor=admin, data=DealInput(
            title="Quartermain order", amount=900, contact_id=ids["second"])).id
    return ids


def state(db, ids: dict[str, int]) -> dict:
    """What the journey checks: both contacts' city and deletion, and whom the call and the deal point at."""
    with session_scope(db) as s:
        first, second = s.get(Contact, ids["first"]), s.get(Contact, ids["second"])
        return {"cities": (first.city, second.city), "deleted": (first.deleted_at is not None,
                                                                 second.deleted_at is not None),
                "versions": (first.version, second.version),
                "call": s.get(Activity, ids["call"]).contact_id, "deal": s.get(Deal, ids["deal"]).contact_id}


def _pick_pair(page, name: str) -> None:
    pick(page, page.get_by_role("combobox", name="Pair"), name, page.get_by_role("option").filter(has_text=name).first)


def _shot(page, name: str) -> None:
    shot = SHOTS / name
    full_screenshot(page, shot)
    shutil.copy(shot, DOCS_SHOTS / shot.name)


def test_an_admin_merges_planted_duplicates_and_undoes_the_merge(page, server, db):
    ids = plant_duplicates(db, server.logins["admin"])
    before = state(db, ids)
    sign_in(page, server, "admin")
    page.get_by_role("heading", name="Home").wait_for()
    page.get_by_test_id("stSidebar").get_by_role("link", name="Data hygiene").click()
    page.locator("h1", has_text="Data hygiene").wait_for()
    settle(page)

    page.get_by_role("button", name="Scan for duplicates").click()
    page.get_by_text("Scan done in").wait_for(timeout=WAIT)  # the running scan is polled; the page lists its pairs
    _pick_pair(page, "Quincy Quartermain")
    form = page.get_by_role("tabpanel", name="Duplicates").get_by_test_id("stForm")
    expect(form).to_contain_text(f"#{ids['first']} Quincy Quartermain")
    form.get_by_text("York", exact=True).click()  # the city of the record merged away, not the survivor's Leeds
    expect(page.get_by_test_id("stDataFrame").filter(has_text="Related records")).to_be_visible()
    _shot(page, "hygiene_merge_admin.png")

    form.get_by_role("button", name="Merge").click()
    page.get_by_text("is now part of").wait_for(timeout=WAIT)
    settle(page)
    merged = state(db, ids)
    assert merged["cities"][0] == "York" and merged["deleted"] == (False, True)
    assert (merged["call"], merged["deal"]) == (ids["first"], ids["first"])  # the relations moved to the survivor
    with session_scope(db) as s:
        merge_id = s.exec(select(MergeLog.id).where(MergeLog.merged_id == ids["second"])).one()

    page.get_by_role("tab", name="Merge log").click()
    row = page.get_by_test_id("stHorizontalBlock").filter(has_text=f"Merge {merge_id} ·")
    row.get_by_role("button", name="Undo").click()
    row.get_by_text("Undone").wait_for(timeout=WAIT)
    settle(page)
    assert state(db, ids) == before  # both records (their versions too) and both relations are back
    _shot(page, "hygiene_undo_admin.png")
