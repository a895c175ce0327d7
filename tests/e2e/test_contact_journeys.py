"""Browser journeys on contacts: a rep finds a contact, edits it and logs a call, and both survive a reload;
HTML typed into names and notes stays text; exported CSV and XLSX files hold no live formula."""
import csv
import io
import shutil
from pathlib import Path

import openpyxl
import pytest
from sqlmodel import select

from crm.contacts import create_contact
from crm.db import session_scope
from crm.models import Activity, Contact, ContactInput, User
from crm.permissions import load_actor
from tests.e2e.conftest import CHROMIUM, DOCS_SHOTS, SHOTS, expect, full_screenshot, settle, sign_in

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}: browser journeys need it"),
]

WAIT = 30_000  # ms, for expect(); Streamlit reruns can take a few seconds on a busy machine
# What a spreadsheet would run as a formula (crm.exporting.DANGEROUS_PREFIXES, ASCII and full-width).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
XSS_FIRST = "<img src=x onerror=window.__xss=1>"
XSS_LAST = "<script>window.__xss=2</script>"
XSS_TITLE = "<svg onload=window.__xss=4>"
XSS_NOTE = "<img src=x onerror=window.__xss=3>"
XSS_SUBJECT = "<b>Note</b> <script>window.__xss=5</script>"
FORMULA_FIRST = '=HYPERLINK("http://evil.example","x")'
FORMULA_LAST = "+1+1"


def user_id(db, email: str) -> int:
    with session_scope(db) as s:
        return s.exec(select(User.id).where(User.email == email)).one()


def open_contacts(page, server, role: str) -> None:
    """Sign in on the start page and open Contacts from the menu."""
    sign_in(page, server, role)
    page.get_by_role("heading", name="Home").wait_for()
    page.get_by_test_id("stSidebar").get_by_role("link", name="Contacts").click()
    page.get_by_role("heading", name="Contacts").wait_for()
    settle(page)


def search(page, text: str, matches: str) -> None:
    box = page.get_by_role("textbox", name="Search")
    box.fill(text)
    box.press("Enter")
    page.get_by_text(matches, exact=True).wait_for()
    settle(page)


def grid_rows(grid) -> list[list[str]]:
    """The cells of a dataframe as its screen-reader table exposes them (the rows and columns in view)."""
    return grid.locator('table[role="grid"]').evaluate(
        "t => [...t.rows].map(r => [...r.cells].map(c => c.textContent))")


def first_cell(grid):
    """The first data row's first column (after the selection checkboxes) in the screen-reader table."""
    return grid.locator('table[role="grid"] [data-testid="glide-cell-1-0"]')


def tick_row(page, grid, row: int) -> None:
    """Tick a row's selection box: the grid is a canvas, so click where the box is drawn.
    Rows and the header are 35 px high; the checkbox column is about 34 px wide."""
    box = grid.get_by_test_id("data-grid-canvas").bounding_box()
    page.mouse.click(box["x"] + 17, box["y"] + 35 * (row + 1) + 17)


def open_selected(page, grid, name: str) -> None:
    tick_row(page, grid, 0)
    page.get_by_role("button", name="Open the selected contact").click()
    page.get_by_role("heading", name=name, exact=True).wait_for()
    settle(page)


def grid_with_column(page, column: str):
    """The dataframe with this column header (dataframes carry no key class to find them by)."""
    header = page.locator('table[role="grid"] th[role="columnheader"]', has_text=column)
    return page.get_by_test_id("stDataFrame").filter(has=header)


def assert_nothing_ran(page, dialogs: list[str]) -> None:
    """No payload ran: no flag set, no dialog, no element or handler from user text in the DOM."""
    page.wait_for_timeout(300)  # give an injected handler time to run
    assert page.evaluate("() => window.__xss") is None
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator("[onerror], [onload]").count() == 0
    assert page.evaluate("() => [...document.scripts].filter(s => s.textContent.includes('__xss')).length") == 0
    assert dialogs == []


def log_activity(page, kind: str, subject: str, notes: str) -> None:
    page.get_by_role("button", name="Log a call, email, meeting or note").click()
    popover = page.get_by_test_id("stPopoverBody")
    popover.get_by_text(kind, exact=True).click()
    popover.get_by_role("textbox", name="Subject").fill(subject)
    popover.get_by_role("textbox", name="Notes").fill(notes)
    popover.get_by_role("button", name="Log it").click()
    page.get_by_text(f"{kind} logged", exact=True).wait_for()
    settle(page)
    page.keyboard.press("Escape")  # close the popover, so it covers nothing in the screenshots
    settle(page)


def test_a_rep_edits_a_contact_logs_a_call_and_both_survive_a_reload(page, server, db):
    rep = user_id(db, server.logins["rep"])
    with session_scope(db) as s:
        contact = s.exec(select(Contact).where(Contact.owner_id == rep, Contact.deleted_at.is_(None),
                                               Contact.email.is_not(None)).order_by(Contact.id)).first()
        contact_id, email, name = contact.id, contact.email, f"{contact.first_name} {contact.last_name}".strip()
        old_title = contact.job_title
    new_title = "Head of Browser Journeys"
    subject, notes = "Discovery call from the browser", "Wants a demo for 12 seats; call back on Friday."

    open_contacts(page, server, "rep")
    assert page.get_by_role("button", name="Export CSV").count() == 0  # reps may not export
    search(page, email, "1 contact match.")
    table = page.get_by_test_id("stDataFrame").first
    expect(first_cell(table)).to_have_text(name, timeout=WAIT)
    tick_row(page, table, 0)
    page.get_by_role("button", name="Open the selected contact").wait_for()
    page.get_by_text("Selected contacts", exact=True).wait_for()
    settle(page)
    full_screenshot(page, SHOTS / "contacts_list_rep.png")
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.get_by_role("button", name="Open the selected contact").click()
    page.get_by_role("heading", name=name, exact=True).wait_for()
    settle(page)
    assert page.url.endswith(f"/contact-360?id={contact_id}")

    page.get_by_role("tab", name="Edit").click()
    title_box = page.get_by_role("textbox", name="Job title")
    assert title_box.input_value() == (old_title or "")
    title_box.fill(new_title)
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_text("Contact saved", exact=True).wait_for()
    settle(page)
    with session_scope(db) as s:
        assert s.get(Contact, contact_id).job_title == new_title

    page.get_by_role("tab", name="Overview").click()
    log_activity(page, "Call", subject, notes)
    with session_scope(db) as s:
        calls = s.exec(select(Activity).where(Activity.contact_id == contact_id, Activity.subject == subject)).all()
        assert [(a.kind, a.body, a.owner_id) for a in calls] == [("call", notes, rep)]

    page.reload()  # a new Streamlit session: the deep link shows the sign-in form, then this contact
    page.get_by_role("heading", name="Sign in").wait_for()
    sign_in(page, server, "rep", path=None)
    page.get_by_role("heading", name=name, exact=True).wait_for()
    settle(page)
    assert page.url.endswith(f"/contact-360?id={contact_id}")
    expect(page.get_by_test_id("stCaptionContainer").filter(has_text=new_title)).to_be_visible(timeout=WAIT)
    details = grid_with_column(page, "Field")
    timeline = grid_with_column(page, "When")
    expect(details.locator("table[role=grid]")).to_contain_text(new_title, timeout=WAIT)
    expect(timeline.locator("table[role=grid]")).to_contain_text(subject, timeout=WAIT)
    assert ["Job title", new_title] in grid_rows(details)
    timeline_rows = grid_rows(timeline)
    assert timeline_rows[0][:2] == ["When", "Kind"]
    assert any(row[1:4] == ["call", subject, notes] for row in timeline_rows), timeline_rows
    full_screenshot(page, SHOTS / "contact_360_rep.png")
    DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
    for shot in ("contacts_list_rep.png", "contact_360_rep.png"):
        shutil.copyfile(SHOTS / shot, DOCS_SHOTS / shot)


def test_html_in_names_and_notes_is_shown_as_inert_text(page, server, db):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    full_name = f"{XSS_FIRST} {XSS_LAST}"
    open_contacts(page, server, "rep")

    page.get_by_test_id("stExpander").filter(has_text="New contact").get_by_text("New contact").click()
    form = page.get_by_test_id("stForm").filter(has=page.get_by_role("button", name="Create contact"))
    form.get_by_role("textbox", name="First name").fill(XSS_FIRST)
    form.get_by_role("textbox", name="Last name").fill(XSS_LAST)
    form.get_by_role("textbox", name="Email").fill("xss.victim@evil.example")
    form.get_by_role("textbox", name="Job title").fill(XSS_TITLE)
    form.get_by_role("button", name="Create contact").click()
    page.get_by_test_id("stToast").filter(has_text=f"Created {full_name}").wait_for()  # the toast shows it literally
    settle(page)
    assert_nothing_ran(page, dialogs)
    with session_scope(db) as s:
        stored = s.exec(select(Contact).where(Contact.email == "xss.victim@evil.example")).one()
        assert (stored.first_name, stored.last_name, stored.job_title) == (XSS_FIRST, XSS_LAST, XSS_TITLE)
        contact_id = stored.id

    search(page, "xss.victim@evil.example", "1 contact match.")
    table = page.get_by_test_id("stDataFrame").first
    expect(first_cell(table)).to_have_text(full_name, timeout=WAIT)
    assert_nothing_ran(page, dialogs)
    open_selected(page, table, full_name)
    assert page.url.endswith(f"/contact-360?id={contact_id}")
    log_activity(page, "Note", XSS_SUBJECT, XSS_NOTE)
    with session_scope(db) as s:
        note = s.exec(select(Activity).where(Activity.contact_id == contact_id, Activity.kind == "note")).one()
        assert (note.subject, note.body) == (XSS_SUBJECT, XSS_NOTE)

    timeline = grid_with_column(page, "When")
    expect(timeline.locator("table[role=grid]")).to_contain_text(XSS_NOTE, timeout=WAIT)
    assert any(row[1:4] == ["note", XSS_SUBJECT, XSS_NOTE] for row in grid_rows(timeline))
    heading = page.get_by_role("heading", level=1)
    assert heading.inner_text() == full_name
    expect(page.get_by_test_id("stCaptionContainer").filter(has_text=XSS_TITLE)).to_be_visible(timeout=WAIT)
    full_screenshot(page, SHOTS / "contact_xss.png")
    DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SHOTS / "contact_xss.png", DOCS_SHOTS / "contact_xss.png")
    assert_nothing_ran(page, dialogs)


def test_exported_csv_and_xlsx_hold_no_live_formula(page, server, db):
    admin = user_id(db, server.logins["admin"])
    with session_scope(db) as s:
        actor = load_actor(s, admin)
        create_contact(session=s, actor=actor, data=ContactInput(
            first_name=FORMULA_FIRST, last_name=FORMULA_LAST, email="formula.one@evil.example",
            job_title="@SUM(1+1)*cmd|' /C calc'!A0", city="-2+3"))
        create_contact(session=s, actor=actor, data=ContactInput(
            first_name="Plain", last_name="=1+2", email="formula.two@evil.example", job_title="\uff1d1+1"))

    open_contacts(page, server, "marketer")
    search(page, "formula", "2 contacts match.")
    table = page.get_by_test_id("stDataFrame").first
    expect(table.locator("table[role=grid]")).to_contain_text(FORMULA_FIRST, timeout=WAIT)
    page.get_by_text("Export every matching contact", exact=False).wait_for()

    with page.expect_download() as csv_download:
        page.get_by_role("button", name="Export CSV").click()
    assert csv_download.value.suggested_filename.endswith(".csv")
    rows = list(csv.reader(io.StringIO(Path(csv_download.value.path()).read_bytes().decode("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    assert len(body) == 2, rows
    live = [cell for row in rows for cell in row if cell.startswith(FORMULA_STARTS)]
    assert live == []
    by_email = {row[header.index("email")]: dict(zip(header, row)) for row in body}
    one, two = by_email["formula.one@evil.example"], by_email["formula.two@evil.example"]
    assert (one["first_name"], one["last_name"], one["city"]) == ("'" + FORMULA_FIRST, "'" + FORMULA_LAST, "'-2+3")
    assert one["job_title"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert (two["first_name"], two["last_name"], two["job_title"]) == ("Plain", "'=1+2", "'\uff1d1+1")

    with page.expect_download() as xlsx_download:
        page.get_by_role("button", name="Export XLSX").click()
    assert xlsx_download.value.suggested_filename.endswith(".xlsx")
    book = openpyxl.load_workbook(io.BytesIO(Path(xlsx_download.value.path()).read_bytes()))
    cells = [cell for sheet in book.worksheets for row in sheet.iter_rows() for cell in row]
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    values = [[c.value for c in row] for row in book.worksheets[0].iter_rows()]
    assert len(values) == 3
    first_names = {row[values[0].index("first_name")] for row in values[1:]}
    assert first_names == {"'" + FORMULA_FIRST, "Plain"}
    assert not any(isinstance(v, str) and v.startswith(FORMULA_STARTS) for row in values for v in row)
