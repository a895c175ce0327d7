"""Cached reads for the KPI page, keyed on the data version: any write through the service layer bumps it, so the
next run shows the new numbers (no long TTL)."""
import pandas as pd
import streamlit as st

from crm.db import read_scope
from crm.kpis import customers, deals, revenue
from crm.kpis.base import KpiFilter, Metric
from crm.kpis.catalogue import compute_all, records as kpi_records
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


def periods(flt: KpiFilter) -> list[KpiFilter]:
    """This period and the TREND_PERIODS − 1 before it, each the previous of the next, oldest first."""
    found = [flt]
    while len(found) < TREND_PERIODS:
        found.insert(0, found[0].previous())
    return found


def history(actor: Actor, flt: KpiFilter) -> list[dict[str, Metric]]:
    """Every KPI for each of periods(flt): [-1] is this period, [-2] what its change compares with. Each period is
    cached on its own, so the next period's page reuses five of them."""
    return [metrics(actor, period) for period in periods(flt)]


FRAMES = {"funnel_and_losses": deals.funnel_and_losses, "stage_durations": deals.stage_durations,
          "win_rates": deals.win_rates, "revenue_trend": revenue.revenue_trend, "nps_trend": customers.nps_trend,
          "cac_by_channel": customers.cac_by_channel}


@st.cache_data(ttl=3600, max_entries=128, show_spinner=False)
def _frame(name: str, actor: Actor, flt: KpiFilter, data_version: int, *args):
    with read_scope() as s:
        return FRAMES[name](s, actor, flt, *args)


def frame(name: str, actor: Actor, flt: KpiFilter, *args):
    """A breakdown the page charts (funnel and losses, stage durations, win rates, revenue, NPS, CAC by channel):
    a DataFrame, or a pair of them for funnel_and_losses."""
    return _frame(name, actor, flt, version(), *args)
