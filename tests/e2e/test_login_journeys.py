"""Browser journeys against the real app: each role signs in and sees its home; user text never runs as HTML."""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from crm.db import make_engine, session_scope
from crm.demo import DEMO_LOGINS, DEMO_PASSWORD, generate_demo
from crm.schema import seed_reference_data, upgrade_schema

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(__file__).resolve().parent / "screenshots"
DOCS_SHOT = ROOT / "docs" / "screenshots" / "home_manager.png"
# What each role's home shows once its data has loaded.
HOME_MARKERS = {"admin": "Active users", "manager": "Open pipeline", "rep": "Weighted amount",
                "marketer": "Opted in to email"}
XSS = "<img src=x onerror=alert(1)>"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}: browser journeys need it"),
]


@dataclass
class Server:
    url: str
    logins: dict[str, str]  # role -> email
    password: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _prepare_database(url: str) -> None:
    """Schema, reference data and the small demo data set, as `scripts/start` prepares them."""
    engine = make_engine(url)
    upgrade_schema(engine)
    with session_scope(engine) as s:
        seed_reference_data(s)
    generate_demo(engine, size="small", seed=7)
    engine.dispose()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The real app under `streamlit run`, on a free port, against a prepared SQLite database."""
    tmp = tmp_path_factory.mktemp("e2e")
    url = f"sqlite:///{tmp / 'crm.db'}"
    _prepare_database(url)
    port = _free_port()
    env = {**os.environ, "CRM_DATABASE_URL": url, "CRM_DEMO_MODE": "1"}
    log = open(tmp / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false", "--server.port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", proc, tmp / "streamlit.log")
        yield Server(f"http://127.0.0.1:{port}", dict(DEMO_LOGINS), DEMO_PASSWORD)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_healthy(health: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(health, timeout=2) as response:
                if response.read().decode().strip() == "ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"streamlit was not healthy after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def sign_in(page, server: Server, role: str, *, path: str | None = "") -> None:
    if path is not None:
        page.goto(server.url + path)
    page.get_by_label("Email").fill(server.logins[role])
    page.get_by_role("textbox", name="Password").fill(server.password)
    page.get_by_role("button", name="Sign in").click()


def full_screenshot(page, path: Path) -> None:
    """Streamlit scrolls inside its main container, so grow the viewport to the content before the shot."""
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMainBlockContainer\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": max(1000, int(height) + 120)})
    page.wait_for_timeout(500)  # let plotly re-lay out at the new size
    path.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(path), full_page=True)


def settle(page) -> None:
    """Wait until Streamlit has finished the current run (its status widget says 'Running' meanwhile)."""
    page.wait_for_timeout(300)
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden")


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
    # Typing the admin URL starts a new, signed-out browser session, where the page does not exist.
    page.goto(f"{server.url}/administration")
    page.get_by_text("Page not found").wait_for()
    page.keyboard.press("Escape")
    sign_in(page, server, "rep", path=None)  # and signing in there still lands on Home
    page.get_by_role("heading", name="Home").wait_for()
    settle(page)
    assert page.get_by_role("heading", name="Admin").count() == 0


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
