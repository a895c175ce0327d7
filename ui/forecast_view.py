"""The forecast page's parts: filters, the numbers, the range chart and the backtest table."""
from datetime import date, timedelta

import plotly.graph_objects as go
import streamlit as st

from crm.clock import today
from crm.db import read_scope
from crm.forecast import (
    Backtest, ForecastFilter, ForecastRange, ForecastSummary, backtest, forecast_range, forecast_summary,
    period_bounds, previous_periods,
)
from crm.permissions import Actor
from ui.directory import version
from ui.pipeline_data import PipelineLookups

WEIGHTS = {"stage": "Stage defaults", "rep": "Rep probabilities", "model": "Model probabilities"}
SIMULATIONS = 2000


def period_choices(kind: str, day: date) -> list[date]:
    """Period starts to pick from, newest first: the next two, the current one, and the last four."""
    current, later = period_bounds(kind, day)[0], []
    end = period_bounds(kind, day)[1]
    for _ in range(2):
        start, end = period_bounds(kind, end + timedelta(days=1))
        later.append(start)
    return [*later[::-1], current, *[start for start, _ in previous_periods(kind, day, 4)][::-1]]


def scope_selects(actor: Actor, known: PipelineLookups, cols, prefix: str) -> tuple[int | None, ...]:
    """Pipeline, team (for those who read every deal) and rep, in three columns: the deal scope of the forecast
    and KPI pages. Widget keys are `<prefix>_pipeline`, `<prefix>_team`, `<prefix>_owner`."""
    pipelines = {p.id: p.name for p in known.pipelines}
    pipeline = cols[0].selectbox("Pipeline", [None, *pipelines], key=f"{prefix}_pipeline",
                                 format_func=lambda i: "All pipelines" if i is None else pipelines[i])
    teams = {t.id: t.name for t in known.teams} if actor.can("deals.read_all") else {}
    team = cols[1].selectbox("Team", [None, *teams], key=f"{prefix}_team", disabled=not teams,
                             format_func=lambda i: "All I can see" if i is None else teams[i])
    owner = cols[2].selectbox("Rep", [None, *known.owners], key=f"{prefix}_owner",
                              format_func=lambda i: "Everyone" if i is None else known.owners[i])
    return pipeline, team, owner


def forecast_filter(actor: Actor, known: PipelineLookups) -> tuple[ForecastFilter, str]:
    cols = st.columns([1, 2, 2, 2, 2, 2])
    kind = cols[0].radio("Period", ["month", "quarter"], key="fc_kind", format_func=str.capitalize)
    choices = period_choices(kind, today())
    period = cols[1].selectbox("Period starting", choices, index=2, key=f"fc_period_{kind}",
                               format_func=lambda d: f"{d:%b %Y}" if kind == "month"
                               else f"Q{(d.month - 1) // 3 + 1} {d.year}")
    pipeline, team, owner = scope_selects(actor, known, cols[2:5], "fc")
    weighting = cols[5].selectbox("Weights from", list(WEIGHTS), key="fc_weighting", format_func=WEIGHTS.get)
    return ForecastFilter(kind=kind, period_start=period, pipeline_id=pipeline, team_id=team, owner_id=owner), weighting


@st.cache_data(ttl=600, max_entries=64, show_spinner=False)
def _numbers(actor: Actor, flt: ForecastFilter, weighting: str, data_version: int, day: date):
    with read_scope() as s:
        return (forecast_summary(session=s, actor=actor, filter=flt, weighting=weighting),
                forecast_range(session=s, actor=actor, filter=flt, weighting=weighting, simulations=SIMULATIONS))


def numbers(actor: Actor, flt: ForecastFilter, weighting: str) -> tuple[ForecastSummary, ForecastRange]:
    return _numbers(actor, flt, weighting, version(), today())


@st.cache_data(ttl=3600, max_entries=32, show_spinner=False)
def _backtest(actor: Actor, kind: str, periods: int, pipeline_id, team_id, owner_id, data_version: int, day: date):
    with read_scope() as s:
        return backtest(session=s, actor=actor, kind=kind, periods=periods, pipeline_id=pipeline_id,
                        team_id=team_id, owner_id=owner_id)


def backtest_of(actor: Actor, flt: ForecastFilter, periods: int) -> Backtest:
    return _backtest(actor, flt.kind, periods, flt.pipeline_id, flt.team_id, flt.owner_id, version(), today())


def _money(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def show_summary(summary: ForecastSummary, spread: ForecastRange) -> None:
    top = st.columns(5)
    top[0].metric("Closed won", _money(summary.closed_won), help=f"{summary.won_deals} deals won in the period")
    top[1].metric("Commit forecast", _money(summary.commit_forecast), help="Closed won + open deals in Commit")
    top[2].metric("Best-case forecast", _money(summary.best_case_forecast),
                  help="Closed won + Commit + Best case")
    top[3].metric("Weighted forecast", _money(summary.weighted_forecast),
                  help="Closed won + Σ amount × probability of the open deals expected to close in the period")
    top[4].metric("Quota", _money(summary.quota), help="The quotas of the people or team in view")
    low = st.columns(5)
    low[0].metric("Attainment", "—" if summary.attainment is None else f"{summary.attainment:.0%}",
                  help="Closed won ÷ quota")
    ran = f"{spread.simulations:,} simulated outcomes of {spread.simulated_deals:,} open deals"
    low[1].metric("P10", _money(spread.p10), help=f"9 runs in 10 end above this. {ran}")
    low[2].metric("P50", _money(spread.p50), help=f"The median outcome. {ran}")
    low[3].metric("P90", _money(spread.p90), help=f"1 run in 10 ends above this. {ran}")
    low[4].metric("P(hit quota)", "—" if spread.p_hit_quota is None else f"{spread.p_hit_quota:.0%}")
    st.caption(f"Open in the period: pipeline {summary.pipeline:,.0f} · best case {summary.best_case:,.0f} · "
               f"commit {summary.commit:,.0f} · omitted {summary.omitted:,.0f} · weighted "
               f"{summary.weighted_pipeline:,.0f} ({summary.open_deals:,} deals).")
    notes = []
    if summary.weighting == "model" and summary.weights_from_model < summary.open_deals:
        notes.append(f"{summary.open_deals - summary.weights_from_model:,} of {summary.open_deals:,} open deals have "
                     "no model probability yet and are weighted by their stage default.")
    if summary.undated_open_deals:
        notes.append(f"{summary.undated_open_deals:,} open deals have no expected close date and are in no period.")
    for note in notes:
        st.caption(note)


def range_chart(spread: ForecastRange) -> go.Figure:
    """A band chart: cumulative revenue through the period, P10–P90 shaded around P50, with won so far and quota."""
    fan = spread.fan
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=fan["day"], y=fan["p90"], name="P90", line={"width": 0}, showlegend=False,
                             hovertemplate="P90 %{y:,.0f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=fan["day"], y=fan["p10"], name="P10–P90", fill="tonexty", line={"width": 0},
                             fillcolor="rgba(31, 119, 180, 0.25)", hovertemplate="P10 %{y:,.0f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=fan["day"], y=fan["p50"], name="P50", line={"color": "#1f77b4", "width": 3},
                             hovertemplate="P50 %{y:,.0f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=fan["day"], y=fan["closed_won"], name="Closed won so far",
                             line={"color": "#2ca02c", "dash": "dot"}, hovertemplate="Won %{y:,.0f}<extra></extra>"))
    if spread.quota:
        fig.add_hline(y=spread.quota, line={"color": "#d62728", "dash": "dash"}, annotation_text="Quota")
    fig.update_layout(height=380, margin={"l": 10, "r": 10, "t": 30, "b": 10}, yaxis_title="Revenue",
                      legend={"orientation": "h", "y": 1.1}, hovermode="x unified")
    return fig


def backtest_chart(result: Backtest) -> go.Figure:
    rows = result.rows.dropna(subset=["forecast"])
    fig = go.Figure()
    actual = result.rows.drop_duplicates("period_start")
    fig.add_trace(go.Bar(x=actual["period_start"], y=actual["actual"], name="Actually closed won",
                         marker_color="#2ca02c", opacity=0.5))
    for method, group in rows.groupby("method", sort=False):
        fig.add_trace(go.Scatter(x=group["period_start"], y=group["forecast"], mode="lines+markers",
                                 name=f"Forecast: {method}"))
    fig.update_layout(height=340, margin={"l": 10, "r": 10, "t": 30, "b": 10}, yaxis_title="Revenue",
                      legend={"orientation": "h", "y": 1.15})
    return fig


BY_REP_COLUMNS = {
    "rep": st.column_config.TextColumn("Rep"),
    "closed_won": st.column_config.NumberColumn("Closed won", format="localized"),
    "commit": st.column_config.NumberColumn("Commit", format="localized"),
    "best_case": st.column_config.NumberColumn("Best case", format="localized"),
    "pipeline": st.column_config.NumberColumn("Pipeline", format="localized"),
    "omitted": st.column_config.NumberColumn("Omitted", format="localized"),
    "weighted": st.column_config.NumberColumn("Weighted", format="localized"),
    "open_deals": st.column_config.NumberColumn("Open deals"),
    "quota": st.column_config.NumberColumn("Quota", format="localized"),
    "attainment": st.column_config.NumberColumn("Attainment", format="percent"),
}
BACKTEST_COLUMNS = {
    "method": st.column_config.TextColumn("Weights from"), "periods": st.column_config.NumberColumn("Periods"),
    "mean_error": st.column_config.NumberColumn("Mean error (forecast − actual)", format="localized"),
    "mean_abs_pct_error": st.column_config.NumberColumn("Mean absolute % error", format="percent"),
    "sources": st.column_config.TextColumn("Forecasts from"),
}


def show_backtest(actor: Actor, flt: ForecastFilter, periods: int) -> None:
    st.subheader("Backtest")
    st.caption(f"The forecast made at the start of each of the last {periods} {flt.kind}s, by each weighting, "
               "against what actually closed won. The lower the mean absolute % error, the more that weighting "
               "deserves trust for this scope.")
    with st.spinner("Replaying past periods…"):
        result = backtest_of(actor, flt, periods)
    if result.reconstructed_periods:
        st.info(f"{result.reconstructed_periods} of the last {periods} {flt.kind}s have no forecast snapshot from "
                "their start, so their stage-default forecasts were reconstructed from stage history. Rep and model "
                "probabilities were never recorded for those days and are shown as \"needs snapshots\". Run "
                "`python -m crm forecast snapshot` nightly to build the record.", icon=":material/history:")
    st.dataframe(result.summary, hide_index=True, key="fc_backtest_summary", column_config=BACKTEST_COLUMNS)
    st.plotly_chart(backtest_chart(result), key="fc_backtest_chart", config={"displayModeBar": False})
    with st.expander("Every period and method"):
        st.dataframe(result.rows, hide_index=True, key="fc_backtest_rows")
