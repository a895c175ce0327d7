"""What the browser journeys share: the real app on a prepared demo database, headless Chromium, and helpers."""
import os
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
DOCS_SHOTS = ROOT / "docs" / "screenshots"


@dataclass
class Server:
    url: str
    logins: dict[str, str]  # role -> email
    password: str
    database_url: str = ""  # the database the app runs on, for arranging and checking data behind the UI
    models_dir: Path | None = None  # where the app looks for trained models


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
    models = tmp / "models"
    env = {**os.environ, "CRM_DATABASE_URL": url, "CRM_DEMO_MODE": "1", "CRM_MODELS_DIR": str(models)}
    log = open(tmp / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false", "--server.port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", proc, tmp / "streamlit.log")
        yield Server(f"http://127.0.0.1:{port}", dict(DEMO_LOGINS), DEMO_PASSWORD, url, models)
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
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


@pytest.fixture(scope="module")
def db(server):
    """The app's own database, to arrange data and to check what the UI stored."""
    engine = make_engine(server.database_url)
    yield engine
    engine.dispose()


def expect(locator):
    """Playwright's expect, imported late: the module is optional when the browser tests are skipped."""
    from playwright.sync_api import expect as playwright_expect
    return playwright_expect(locator)


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
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)


def settle(page) -> None:
    """Wait until Streamlit has finished the current run (its status widget says 'Running' meanwhile)."""
    page.wait_for_timeout(300)
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden")


def pick(page, box, typed: str, option, attempts: int = 3) -> None:
    """Open the selectbox `box`, type `typed` (long lists only render the options in view) and click `option`.

    A rerun that lands while the list is open redraws the box and closes the list (CI saw this once, after the field
    of the same segment condition had just changed), so a list that never shows the option is closed and opened
    again once the run has settled."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout  # late: optional without a browser
    for attempt in range(attempts):
        settle(page)
        box.click()
        page.keyboard.type(typed)
        try:
            option.wait_for(timeout=10_000)
            option.click()
            break
        except PlaywrightTimeout:
            if attempt == attempts - 1:
                raise
            page.keyboard.press("Escape")
    settle(page)


def choose(page, label: str, nth: int, option: str) -> None:
    """The option named `option` (for "Group · Field", typed by its last part) in the nth selectbox `label`."""
    pick(page, page.get_by_role("combobox", name=label).nth(nth), option.split(" · ")[-1],
         page.get_by_role("option", name=option, exact=True))

