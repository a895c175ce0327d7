"""What "the previous period" is: the previous calendar month or quarter, else as many days."""
from datetime import date

import pytest

from crm.kpis.base import KpiFilter


@pytest.mark.parametrize("start, end, before", [
    (date(2026, 10, 1), date(2026, 10, 31), (date(2026, 9, 1), date(2026, 9, 30))),  # not 31 Aug – 30 Sep
    (date(2026, 3, 1), date(2026, 3, 31), (date(2026, 2, 1), date(2026, 2, 28))),
    (date(2026, 10, 1), date(2026, 12, 31), (date(2026, 7, 1), date(2026, 9, 30))),
    (date(2026, 1, 1), date(2026, 1, 31), (date(2025, 12, 1), date(2025, 12, 31))),
    (date(2026, 10, 5), date(2026, 10, 14), (date(2026, 9, 25), date(2026, 10, 4))),  # ten days: ten days before
])
def test_previous_period(start, end, before):
    flt = KpiFilter(start, end, pipeline_id=3, segment_id=7)
    previous = flt.previous()
    assert (previous.start, previous.end) == before
    assert (previous.pipeline_id, previous.segment_id) == (3, 7)
