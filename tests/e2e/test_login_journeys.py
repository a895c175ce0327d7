"""Browser journeys against the real app: each role signs in and sees its home; user text never runs as HTML."""
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import CHROMIUM, DOCS_SHOTS, SHOTS, full_screenshot, settle, sign_in

DOCS_SHOT = DOCS_SHOTS / "home_manager.png"
# What each role's home shows once its data has loaded.
HOME_MARKERS = {"admin": "Active users", "manager": "Open pipeline", "rep": "Weighted amount",
                "marketer": "Opted in to email"}
XSS = "<img src=x onerror=alert(1)>"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}: browser journeys need it"),
]


def test_demo_logins_are_listed_on_the_login_page(page, server):
    page.goto(server.url)
    page.get_by_role("heading", name="Demo logins").wait_for()
    assert page.get_by_role("heading", name="Sign in").is_visible()
    settle(page)
    full_screenshot(page, SHOTS / "login.png")


@pytest.mark.parametrize("role", list(HOME_MARKERS))
def test_each_role_signs_in_and_sees_its_home(page, server, role):
    sign_in(page, server, role)
    page.get_by_test_id("stMetricLabel").filter(has_text=HOME_MARKERS[role]).first.wait_for()
    page.get_by_role("heading", name="Home").wait_for()
    if role in ("manager", "marketer"):
        page.locator(".js-plotly-plot").first.wait_for()
    settle(page)
    assert page.get_by_role("button", name="Sign out").is_visible()
    shot = SHOTS / f"home_{role}.png"
    full_screenshot(page, shot)
    if role == "manager":
        DOCS_SHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_SHOT)


def test_a_non_admin_cannot_open_the_admin_page(page, server):
    sign_in(page, server, "rep")
    page.get_by_role("heading", name="Home").wait_for()
    assert page.get_by_role("link", name="Admin").count() == 0
    # Typing the admin URL starts a new, signed-out browser session: like every deep link it shows the sign-in
    # form, and signing in there as a rep lands on Home, not on the admin page.
    page.goto(f"{server.url}/administration")
    page.get_by_role("heading", name="Sign in").wait_for()
    settle(page)
    assert page.get_by_role("heading", name="Admin").count() == 0
    sign_in(page, server, "rep", path=None)
    page.get_by_role("heading", name="Home").wait_for()
    settle(page)
    assert page.get_by_role("heading", name="Admin").count() == 0
    assert page.get_by_role("link", name="Admin").count() == 0


def test_html_typed_as_a_name_is_shown_as_text(page, server):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, server, "admin")
    page.get_by_role("link", name="Admin").click()
    page.get_by_role("heading", name="Admin").wait_for()
    page.get_by_text("Add a user").click()
    form = page.get_by_test_id("stForm").filter(has=page.get_by_role("button", name="Add user"))
    form.get_by_label("Email").fill("xss@example.com")
    form.get_by_label("Full name").fill(XSS)
    form.get_by_role("textbox", name="Password").fill("a long enough password")
    form.get_by_role("button", name="Add user").click()
    page.get_by_text(f"Added {XSS}").wait_for()  # the toast shows the name literally
    settle(page)
    full_screenshot(page, SHOTS / "admin_xss.png")
    page.get_by_test_id("stSelectbox").filter(has_text="User").first.click()  # and so does the user picker
    page.get_by_role("option", name=f"{XSS} <xss@example.com>").wait_for()
    assert page.locator('img[src="x"]').count() == 0
    page.wait_for_timeout(500)
    assert dialogs == []
