"""Server-side render times of every page as every role, through AppTest. Run by `python -m crm bench`.

Lives beside the UI because it drives Streamlit; crm/ calls it as a subprocess and reads its JSON.
`python -m ui.perf --rounds 3` prints {"pages": [...], "peak_rss_mb": ...} for the database in CRM_DATABASE_URL.
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from crm.clock import utcnow
from crm.db import read_scope
from crm.models import Role
from crm.users import first_active_user_of_role
from ui.navigation import pages_for
from ui.session import LAST_SEEN, USER_ID

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def _user_for(role: Role) -> int:
    with read_scope() as session:
        user_id = first_active_user_of_role(session=session, role=role)
    if user_id is None:
        raise SystemExit(f"no active {role} in the database: run `python -m crm demo` first")
    return user_id


def _records_for(user_id: int) -> dict[str, int]:
    """For each record page, the id of a record this user may read: a contact, a company and an open deal."""
    from crm.deals import newest_open_deal_id
    from crm.listing import list_companies, list_contacts
    from crm.permissions import load_actor
    from ui.navigation import COMPANY, CONTACT, DEAL

    with read_scope() as session:
        actor = load_actor(session, user_id)
        contact = list_contacts(session=session, actor=actor, sort="-updated", page_size=1).rows
        company = list_companies(session=session, actor=actor, sort="-updated", page_size=1).rows
        deal = newest_open_deal_id(session=session, actor=actor)
    return {CONTACT.path: contact[0].id if contact else 0, COMPANY.path: company[0].id if company else 0,
            DEAL.path: deal or 0}


def _timed_run(at: AppTest) -> float:
    start = time.perf_counter()
    at.run()
    elapsed = (time.perf_counter() - start) * 1000
    if at.exception:
        raise SystemExit(f"page raised: {at.exception[0].message}")
    return elapsed


def _page(spec, user_id: int, records: dict[str, int]) -> AppTest:
    """An AppTest signed in as `user_id`, switched to the page `spec` (not yet run there)."""
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state[USER_ID], at.session_state[LAST_SEEN] = user_id, utcnow()
    at.run()  # lands on the default page, which fills the caches
    at.session_state[LAST_SEEN] = utcnow()
    at.switch_page(spec.path)
    if spec.path in records:  # a record's 360° view: open one the role may read
        at.query_params["id"] = str(records[spec.path])
    return at


def measure(rounds: int) -> dict:
    """Cold: the first render of a page in a new browser session, caches cleared. Warm: median of reruns."""
    import streamlit as st

    rows = []
    # Every page once, untimed, first: a running server has imported what its pages need (scikit-learn alone takes
    # about 0.9 s), and without this the first page to import a library would pay for it in its cold time.
    for role in Role:
        user_id = _user_for(role)
        records = _records_for(user_id)
        for spec in pages_for(role):
            _page(spec, user_id, records).run()
    for role in Role:
        user_id = _user_for(role)
        records = _records_for(user_id)
        for spec in pages_for(role):
            at = _page(spec, user_id, records)
            st.cache_data.clear()  # so that the timed run below computes everything, as a first visit would
            cold = _timed_run(at)
            warm = statistics.median(_timed_run(at) for _ in range(rounds))
            rows.append({"role": role.value, "page": spec.title, "cold_ms": round(cold, 1), "warm_ms": round(warm, 1)})
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so it would report the peak of the
    # process that launched this one (the bench, right after generating a million contacts).
    return {"pages": rows, "peak_rss_mb": round(_peak_rss_mb(os.getpid()), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server", action="store_true", help="also drive the real server in Chromium for its RSS")
    args = parser.parse_args()
    result = measure(args.rounds)
    if args.server:
        result |= measure_server()
    json.dump(result, sys.stdout)



CHROMIUM = "/usr/bin/chromium"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, proc, timeout: float = 120) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.read().decode().strip() == "ok":
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"streamlit was not healthy after {timeout:.0f} s")


def _peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set size, as the kernel counted it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _browse_every_page(base: str) -> None:
    """Each demo role signs in and opens each of its pages, so that the server does all its work."""
    from playwright.sync_api import sync_playwright

    from crm.demo import DEMO_LOGINS, DEMO_PASSWORD

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        for role, email in DEMO_LOGINS.items():
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.set_default_timeout(120_000)
            page.goto(base)
            page.get_by_label("Email").fill(email)
            page.get_by_role("textbox", name="Password").fill(DEMO_PASSWORD)
            page.get_by_role("button", name="Sign in").click()  # lands on the role's first page
            for i, spec in enumerate(pages_for(role)):
                if spec.hidden:  # a 360° view: opened from its list by selecting a row; here by its URL
                    continue
                if i:  # a role with one page has no menu; the others are opened from it
                    page.get_by_role("link", name=spec.title).click()
                page.get_by_role("heading", name=spec.title).first.wait_for()
                page.wait_for_timeout(500)
                page.get_by_test_id("stStatusWidget").wait_for(state="hidden")
            page.context.close()
        browser.close()


def measure_server() -> dict:
    """The real `streamlit run` server: peak RSS after every role has opened every page in Chromium."""
    import os
    import subprocess

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", APP, "--server.headless", "true", "--server.fileWatcherType",
         "none", "--browser.gatherUsageStats", "false", "--server.port", str(port)],
        cwd=Path(APP).parent, env={**os.environ, "CRM_DEMO_MODE": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", proc)
        _browse_every_page(f"http://127.0.0.1:{port}")
        return {"server_peak_rss_mb": round(_peak_rss_mb(proc.pid), 1)}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
