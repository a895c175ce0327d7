"""Browser journey of a marketer: build a 3-condition segment, watch the count, save it, export it; the file opens
with the rows the database holds for those conditions, and no cell is a live formula."""
import csv
import io
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import select

from crm.db import session_scope
from crm.models import Contact, Segment, SegmentSnapshot
from tests.e2e.conftest import CHROMIUM, DOCS_SHOTS, SHOTS, choose, expect, full_screenshot, settle, sign_in

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}: browser journeys need it"),
]

WAIT = 60_000
NAME = "Browser: US customers who opted in"


def _add_condition(page) -> None:
    page.get_by_role("button", name="Add a condition").click()
    settle(page)


def test_a_marketer_builds_saves_and_exports_a_segment(page, server, db):
    with session_scope(db) as s:
        expected = s.exec(select(Contact.email).where(
            Contact.deleted_at.is_(None), Contact.lifecycle_stage == "customer", Contact.country == "US",
            Contact.email_opt_in.is_(True))).all()
        do_not_contact = s.exec(select(func.count()).select_from(Contact).where(
            Contact.deleted_at.is_(None), Contact.lifecycle_stage == "customer", Contact.country == "US",
            Contact.email_opt_in.is_(True), Contact.do_not_contact.is_(True))).one()
    assert expected, "the demo has US customers who opted in"
    sign_in(page, server, "marketer")
    page.get_by_role("heading", name="Home").wait_for()
    page.get_by_test_id("stSidebar").get_by_role("link", name="Segments").click()
    page.locator("h1", has_text="Segments").wait_for()
    settle(page)
    choose(page, "Value", 0, "customer")  # the first condition starts as "Lifecycle stage is …"
    _add_condition(page)
    choose(page, "Field", 1, "Location · Country")
    choose(page, "Value", 1, "US")
    _add_condition(page)
    choose(page, "Field", 2, "Consent · Email opt-in")
    expect(page.get_by_test_id("stMetric").filter(has_text="Matching contacts")).to_contain_text(
        f"{len(expected):,}", timeout=WAIT)
    page.get_by_label("Name").fill(NAME)
    page.get_by_role("button", name="Save segment").click()
    page.get_by_text(f"Segment {NAME} saved (dynamic)").wait_for(timeout=WAIT)
    settle(page)
    shot = SHOTS / "segments_builder_marketer.png"
    full_screenshot(page, shot)
    shutil.copy(shot, DOCS_SHOTS / shot.name)

    page.get_by_role("tab", name="Saved segments").click()
    page.get_by_role("combobox", name="Segment").click()
    page.get_by_role("option", name=NAME, exact=True).click()
    settle(page)
    page.get_by_role("button", name="Prepare the export").click()
    settle(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download").click()
    assert download.value.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_bytes().decode("utf-8-sig"))))
    assert len(rows) == len(expected) - do_not_contact  # do-not-contact left out: the box was not ticked
    assert all(r["lifecycle_stage"] == "customer" and r["country"] == "US" and r["email_opt_in"] == "True"
               for r in rows)
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values() if v)
    with session_scope(db) as s:
        segment = s.exec(select(Segment).where(Segment.name == NAME)).one()
        snapshot = s.exec(select(SegmentSnapshot).where(SegmentSnapshot.segment_id == segment.id)).one()
    assert snapshot.purpose == "export" and snapshot.member_count == len(rows)
    shot = SHOTS / "segments_export_marketer.png"
    full_screenshot(page, shot)
    shutil.copy(shot, DOCS_SHOTS / shot.name)
