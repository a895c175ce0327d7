"""On the real Maven CRM import, the close rate and won revenue equal what pandas computes from the CSV."""
from datetime import date

import pandas as pd
import pytest

from crm.db import read_scope
from crm.kpis.base import KpiFilter
from crm.kpis.deals import close_rate
from crm.permissions import load_actor
from tests.test_imports_maven import FIXES, MAVEN, import_all

pytestmark = pytest.mark.skipif(not (MAVEN / "sales_pipeline.csv").exists(),
                                reason=f"the Maven CRM data set is not at {MAVEN}")

PERIODS = [(date(2016, 1, 1), date(2018, 12, 31)), (date(2017, 4, 1), date(2017, 6, 30)),
           (date(2017, 12, 1), date(2017, 12, 31))]


def from_csv(start: date, end: date) -> tuple[int, int, float]:
    """Won and closed deals, and won revenue, of the deals the CSV says closed in [start, end]."""
    deals = pd.read_csv(MAVEN / "sales_pipeline.csv", parse_dates=["close_date"])
    closed = deals[deals["deal_stage"].isin(["Won", "Lost"]) & deals["close_date"].between(
        pd.Timestamp(start), pd.Timestamp(end))]
    won = closed[closed["deal_stage"] == "Won"]
    return len(won), len(closed), float(won["close_value"].sum())


def test_close_rate_and_won_revenue_match_the_csv(engine, admin, tmp_path):
    import_all(engine, admin, tmp_path, fixes=FIXES)
    with read_scope(engine) as s:
        who = load_actor(s, admin.id)
        for start, end in PERIODS:
            won, closed, revenue = from_csv(start, end)
            m = close_rate(s, who, KpiFilter(start, end))
            assert (m.numerator, m.denominator) == (won, closed), (start, end)
            assert m.value == pytest.approx(won / closed)
            assert m.detail["won_amount"] == pytest.approx(revenue), (start, end)
