"""Browser journey of a manager on the KPI dashboard: every metric with its change, a drill-down, the charts."""
import shutil
from pathlib import Path

import pytest

from crm.kpis.catalogue import KPIS
from tests.e2e.conftest import CHROMIUM, DOCS_SHOTS, SHOTS, expect, full_screenshot, settle, sign_in

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}: browser journeys need it"),
]

WAIT = 60_000


def test_a_manager_reads_the_kpis_and_the_records_behind_one(page, server):
    sign_in(page, server, "manager")
    page.get_by_role("heading", name="Home").wait_for()
    page.get_by_test_id("stSidebar").get_by_role("link", name="KPIs").click()
    page.locator("h1", has_text="KPIs").wait_for()
    settle(page)
    metrics = page.get_by_test_id("stMetric")
    expect(metrics).to_have_count(len(KPIS), timeout=WAIT)
    for kpi in KPIS:
        expect(metrics.filter(has_text=kpi.label).first).to_be_visible()
    # A tall window: the chooser sits below twelve tiles, and scrolling to it would close its list again.
    page.set_viewport_size({"width": 1400, "height": 2400})
    page.get_by_role("combobox", name="Look closer at").click()
    page.get_by_role("option", name="Close rate", exact=True).click()
    settle(page)
    expect(page.get_by_text("records behind close rate")).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("Where deals were lost, and why")).to_be_visible(timeout=WAIT)
    shot = SHOTS / "kpis_manager.png"
    full_screenshot(page, shot)
    shutil.copy(shot, DOCS_SHOTS / shot.name)
