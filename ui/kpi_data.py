"""Cached reads for the KPI page, keyed on the data version: any write through the service layer bumps it, so the
next run shows the new numbers (no long TTL)."""
from dataclasses import replace

import pandas as pd
import streamlit as st

from crm.db import read_scope
from crm.forecast.periods import previous_periods
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


def year_of(flt: KpiFilter) -> KpiFilter:
    """The twelve months that end with the period, for the trends: a month shows its place in the year."""
    return replace(flt, start=previous_periods("month", flt.end, 11)[0][0])


@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def _breakdowns(actor: Actor, flt: KpiFilter, data_version: int) -> dict:
    year = year_of(flt)
    with read_scope() as s:
        funnel, losses = deals.funnel_and_losses(s, actor, flt)
        return {"funnel": funnel, "losses": losses, "stage_durations": deals.stage_durations(s, actor, flt),
                "cac_by_channel": customers.cac_by_channel(s, actor, flt),
                "revenue_trend": revenue.revenue_trend(s, actor, year), "nps_trend": customers.nps_trend(s, actor, year)}


def breakdowns(actor: Actor, flt: KpiFilter) -> dict[str, pd.DataFrame]:
    """What the charts show, cached as one: funnel, losses, stage_durations and cac_by_channel over the period, and
    revenue_trend and nps_trend over year_of(flt)."""
    return _breakdowns(actor, flt, version())


@st.cache_data(ttl=3600, max_entries=128, show_spinner=False)
def _win_rates(actor: Actor, flt: KpiFilter, by: str, data_version: int) -> pd.DataFrame:
    with read_scope() as s:
        return deals.win_rates(s, actor, flt, by)


def win_rates(actor: Actor, flt: KpiFilter, by: str) -> pd.DataFrame:
    """Win rates by source, product or rep (its own cache: the page's radio changes only this)."""
    return _win_rates(actor, flt, by, version())
