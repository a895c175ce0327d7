"""Cached reads for the KPI page, keyed on the data version: any write through the service layer bumps it, so the
next run shows the new numbers (no long TTL)."""
import pandas as pd
import streamlit as st

from crm.db import read_scope
from crm.forecast.periods import previous_periods
from crm.kpis import customers, deals, revenue
from crm.kpis.base import KpiFilter, Metric
from crm.kpis.catalogue import BY_KEY, compute_all, records as kpi_records
from crm.permissions import Actor
from ui.directory import version

TREND_PERIODS = 6


@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def _metrics(actor: Actor, flt: KpiFilter, data_version: int) -> dict[str, Metric]:
    with read_scope() as s:
        return compute_all(s, actor, flt)


def metrics(actor: Actor, flt: KpiFilter) -> dict[str, Metric]:
    return _metrics(actor, flt, version())


@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def _records(actor: Actor, flt: KpiFilter, key: str, data_version: int) -> pd.DataFrame:
    with read_scope() as s:
        return kpi_records(s, actor, flt, key)


def records(actor: Actor, flt: KpiFilter, key: str) -> pd.DataFrame:
    return _records(actor, flt, key, version())


@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def _trend(actor: Actor, flt: KpiFilter, key: str, data_version: int) -> pd.DataFrame:
    """One KPI over the months (or quarters) before this period, and this one."""
    kind = "quarter" if (flt.end - flt.start).days > 40 else "month"
    periods = [*previous_periods(kind, flt.start, TREND_PERIODS - 1), (flt.start, flt.end)]
    rows = []
    with read_scope() as s:
        for start, end in periods:
            m = BY_KEY[key].compute(s, actor, KpiFilter(start, end, flt.pipeline_id, flt.team_id, flt.owner_id,
                                                        flt.segment_id))
            rows.append({"period": start, "value": m.value})
    return pd.DataFrame(rows)


def trend(actor: Actor, flt: KpiFilter, key: str) -> pd.DataFrame:
    return _trend(actor, flt, key, version())


FRAMES = {"funnel": deals.conversion_funnel, "stage_durations": deals.stage_durations, "losses": deals.losses,
          "win_rates": deals.win_rates, "revenue_trend": revenue.revenue_trend, "nps_trend": customers.nps_trend,
          "cac_by_channel": customers.cac_by_channel}


@st.cache_data(ttl=3600, max_entries=128, show_spinner=False)
def _frame(name: str, actor: Actor, flt: KpiFilter, data_version: int, *args) -> pd.DataFrame:
    with read_scope() as s:
        return FRAMES[name](s, actor, flt, *args)


def frame(name: str, actor: Actor, flt: KpiFilter, *args) -> pd.DataFrame:
    """A breakdown the page charts (funnel, stage durations, losses, win rates, revenue, NPS, CAC by channel)."""
    return _frame(name, actor, flt, version(), *args)
