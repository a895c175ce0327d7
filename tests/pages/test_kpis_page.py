"""The KPI dashboard through AppTest on the small demo: every metric tile, the drill-down, and the charts; the
numbers match the domain functions; a write shows on the next run; reps do not get the page."""
import pytest
from sqlmodel import select

from crm import db
from crm.demo import DEMO_LOGINS, generate_demo
from crm.kpis.catalogue import KPIS, compute_all
from crm.models import Deal, User
from crm.permissions import load_actor
from tests.pages.apptest import no_exception, signed_in
from ui.kpi_view import shown
from ui.navigation import KPIS as KPI_PAGE, pages_for


@pytest.fixture
def demo(crm_db):
    generate_demo(crm_db, size="small", seed=3)
    with db.read_scope() as s:
        return {role: s.exec(select(User.id).where(User.email == email)).one() for role, email in DEMO_LOGINS.items()}


def kpi_page(user_id: int):
    at = signed_in(user_id).run()
    at.switch_page(KPI_PAGE.path).run()
    no_exception(at)
    return at


def test_every_kpi_shows_its_value_and_the_drill_down_its_rows(demo):
    at = kpi_page(demo["manager"])
    tiles = {m.label: m.value for m in at.metric}
    assert set(tiles) == {k.label for k in KPIS}
    flt_start = at.selectbox(key="kpi_period_month").value
    with db.read_scope() as s:
        from crm.forecast.periods import period_bounds
        from crm.kpis.base import KpiFilter
        expected = compute_all(s, load_actor(s, demo["manager"]),
                               KpiFilter(flt_start, period_bounds("month", flt_start)[1]))
    for kpi in KPIS:
        assert tiles[kpi.label] == shown(expected[kpi.key].value, expected[kpi.key].unit), kpi.key
    # Each tile's small trend: six periods, ending with this one's value (an undefined value is a gap).
    for tile in at.metric:
        kpi = next(k for k in KPIS if k.label == tile.label)
        points, value = list(tile.proto.chart_data), expected[kpi.key].value
        assert len(points) == 6 and (points[-1] != points[-1] if value is None else abs(points[-1] - value) < 1e-9)
    at.selectbox(key="kpi_focus").set_value("close_rate").run()
    no_exception(at)
    closed = next(d.value for d in at.dataframe if "status" in d.value.columns)
    m = expected["close_rate"]
    assert len(closed) == m.denominator and (closed["status"] == "won").sum() == m.numerator
    assert len(at.get("plotly_chart")) >= 3


def test_a_write_shows_on_the_next_run(demo):
    at = kpi_page(demo["admin"])
    at.radio(key="kpi_kind").set_value("quarter").run()
    before = next(m.value for m in at.metric if m.label == "Close rate")
    with db.session_scope() as s:  # lose every deal won in the period: the close rate must move at once
        start = at.selectbox(key="kpi_period_quarter").value
        from crm.forecast.periods import period_bounds
        from datetime import UTC, datetime, time, timedelta
        since = datetime.combine(start, time.min, tzinfo=UTC)
        until = datetime.combine(period_bounds("quarter", start)[1] + timedelta(days=1), time.min, tzinfo=UTC)
        from crm.audit import bump_data_version
        for deal in s.exec(select(Deal).where(Deal.status == "won", Deal.closed_at >= since,
                                              Deal.closed_at < until)).all():
            deal.status = "lost"
        bump_data_version(s)
    at.run()
    no_exception(at)
    after = next(m.value for m in at.metric if m.label == "Close rate")
    assert before != after and after in ("0.0%", "—")


def test_only_managers_and_admins_get_the_page():
    assert KPI_PAGE in pages_for("manager") and KPI_PAGE in pages_for("admin")
    assert KPI_PAGE not in pages_for("rep") and KPI_PAGE not in pages_for("marketer")
