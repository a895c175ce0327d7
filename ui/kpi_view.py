"""The KPI page's filter row, number formatting and charts.

The charts are plotly graph objects, not plotly express: express spends about 20 ms building each figure (200 ms
for the first in a process), which a cold page with half a dozen charts feels."""
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crm.clock import today
from crm.db import read_scope
from crm.forecast.periods import period_bounds, previous_periods
from crm.kpis.base import KpiFilter, Metric
from crm.permissions import Actor
from crm.segments.service import list_segments
from ui.forecast_view import scope_selects
from ui.pipeline_data import lookups

PERIODS = {"month": "Month", "quarter": "Quarter"}
UNITS = {"ratio": "{:.1%}", "money": "{:,.0f}", "days": "{:,.1f} d", "hours": "{:,.1f} h", "count": "{:,.0f}",
         "score": "{:+.0f}"}


def kpi_filter(actor: Actor) -> KpiFilter:
    """Period (a month or quarter, against the one before), pipeline, team, rep and segment."""
    known = lookups(actor)
    cols = st.columns([1, 2, 2, 2, 2, 2])
    kind = cols[0].radio("Period", list(PERIODS), key="kpi_kind", format_func=PERIODS.get)
    current = period_bounds(kind, today())[0]
    choices = [current, *[s for s, _ in previous_periods(kind, today(), 11)][::-1]]  # newest first
    start = cols[1].selectbox("Period", choices, index=1, key=f"kpi_period_{kind}",
                              format_func=lambda d: f"{d:%b %Y}" if kind == "month"
                              else f"Q{(d.month - 1) // 3 + 1} {d.year}", help="The last complete one by default")
    end = period_bounds(kind, start)[1]
    pipeline, team, owner = scope_selects(actor, known, cols[2:5], "kpi")
    with read_scope() as s:
        segments = {x.id: x.name for x in list_segments(session=s, actor=actor)}
    segment = cols[5].selectbox("Customers in segment", [None, *segments], key="kpi_segment",
                                format_func=lambda i: "All customers" if i is None else segments[i])
    return KpiFilter(start, end, pipeline, team, owner, segment)


def shown(value: float | None, unit: str) -> str:
    """A value in its unit; "—" where it is not defined (a zero denominator), never 0 %."""
    return "—" if value is None else UNITS.get(unit, "{:,.2f}").format(value)


def change_text(now: Metric, before: Metric) -> str | None:
    """The change against the previous period: points for ratios, otherwise in the metric's unit."""
    if now.value is None or before.value is None:
        return None
    difference = now.value - before.value
    if now.unit == "ratio":
        return f"{difference * 100:+.1f} pts"
    return f"{difference:+,.1f}" if now.unit in ("days", "hours") else f"{difference:+,.0f}"


def trend_points(history: list[dict[str, Metric]], key: str) -> list[float]:
    """One KPI's values over the periods, for a tile's small chart (an undefined value is a gap)."""
    return [float("nan") if h[key].value is None else h[key].value for h in history]


def duration_boxes(durations: pd.DataFrame) -> go.Figure:
    """Days in each stage as box plots, won beside lost, from the quartiles and whiskers crm.kpis.deals computed
    (plotly draws a box from given numbers, so the page never loads the deals' durations themselves)."""
    figure = go.Figure()
    for outcome, rows in durations.groupby("outcome", sort=True):
        figure.add_trace(go.Box(
            name=str(outcome), x=rows["stage"], q1=rows["p25_days"], median=rows["median_days"], q3=rows["p75_days"],
            lowerfence=rows["whisker_low_days"], upperfence=rows["whisker_high_days"]))
    figure.update_layout(boxmode="group", title="Days in each stage, deals closed in the period",
                         yaxis_title="days in stage", legend_title_text="")
    return figure


def line(x, y, *, title: str | None = None, y_title: str = "") -> go.Figure:
    figure = go.Figure(go.Scatter(x=list(x), y=list(y), mode="lines+markers"))
    figure.update_layout(title=title, yaxis_title=y_title)
    return figure


def funnel_chart(stages: pd.DataFrame, title: str) -> go.Figure:
    """How many deals reached each stage of one pipeline (conversion_funnel's rows), top to bottom."""
    figure = go.Figure(go.Funnel(x=stages["reached"], y=stages["stage"]))
    figure.update_layout(title=title, yaxis_title="stage")
    return figure


def cac_chart(cac: pd.DataFrame) -> go.Figure:
    """CAC per channel, with the spend and new customers behind it on hover."""
    figure = go.Figure(go.Bar(
        x=cac["channel"], y=cac["cac"], customdata=cac[["spend", "new_customers"]],
        hovertemplate="%{x}: CAC %{y:,.0f}<br>spend %{customdata[0]:,.0f}, new customers %{customdata[1]:,}"
                      "<extra></extra>"))
    figure.update_layout(title="CAC by channel", xaxis_title="channel", yaxis_title="CAC")
    return figure
