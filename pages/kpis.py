"""The KPI dashboard for managers: every metric with its change against the previous period, the rows behind any
one of them, and the funnel, stage durations, revenue, NPS and CAC charts. Cached on the data version, so a write
anywhere shows on the next run."""
import streamlit as st

from crm.errors import CRMError
from crm.kpis.catalogue import BY_KEY, KPIS, metrics_frame
from ui import kpi_data, session
from ui.exports import export_buttons
from ui.kpi_view import (cac_chart, change_text, duration_boxes, funnel_chart, kpi_filter, line, shown,
                         trend_points)
from ui.text import md_escape


def _chart(where, chart, key: str, height: int = 300) -> None:
    """One layout for every chart on the page: compact margins, room for a title."""
    chart.update_layout(height=height, margin={"l": 0, "r": 0, "t": 40 if chart.layout.title.text else 20, "b": 0})
    where.plotly_chart(chart, key=key)


actor = session.current_actor()
st.title("KPIs")
if not actor.can("forecast.view"):
    st.info("The KPI dashboard is for managers and admins.", icon=":material/lock:")
    st.stop()

flt = kpi_filter(actor)
try:
    history = kpi_data.history(actor, flt)  # oldest first: this period last, the one it is compared with before it
    charts = kpi_data.breakdowns(actor, flt)
except CRMError as exc:
    st.error(md_escape(exc.message), icon=":material/block:")
    st.stop()
metrics, previous = history[-1], history[-2]
st.caption(f"{flt.start:%d %b %Y} – {flt.end:%d %b %Y}, compared with {flt.previous().start:%d %b %Y} – "
           f"{flt.previous().end:%d %b %Y}; the small charts show the last {len(history)} periods. "
           "Definitions: docs/kpis.md.")

for row in range(0, len(KPIS), 4):
    for column, kpi in zip(st.columns(4), KPIS[row:row + 4]):
        m, before = metrics[kpi.key], previous[kpi.key]
        column.metric(kpi.label, shown(m.value, m.unit), change_text(m, before),
                      delta_color="normal" if kpi.higher_is_better else "inverse", border=True,
                      help=(kpi.compute.__doc__ or "").strip().split("\n\n")[0],
                      chart_data=trend_points(history, kpi.key), chart_type="line")

# The drill-down is drawn when asked for: the rows behind a number can be thousands of deals or orders.
focus = st.selectbox("Look closer at", [k.key for k in KPIS], format_func=lambda k: BY_KEY[k].label,
                     index=None, placeholder="Choose a KPI to see its trend and the records behind it",
                     key="kpi_focus")
if focus is not None:
    kpi = BY_KEY[focus]
    _chart(st, line([p.start for p in kpi_data.periods(flt)], [h[focus].value for h in history], y_title=kpi.label),
           "kpi_trend", 260)
    rows = kpi_data.records(actor, flt, focus)
    st.caption(f"{len(rows):,} records behind {kpi.label.lower()}" if len(rows) else "No records behind this number.")
    if len(rows):
        st.dataframe(rows, hide_index=True, key="kpi_records")

st.subheader("Pipeline")
funnel, losses = charts["funnel"], charts["losses"]
left, right = st.columns(2)
if funnel.empty:
    left.caption("No deals closed in this period.")
else:
    for pipeline, stages in funnel.groupby("pipeline", sort=False):
        _chart(left, funnel_chart(stages, str(pipeline)), f"kpi_funnel_{pipeline}", 320)
durations = charts["stage_durations"]
if not durations.empty:
    _chart(right, duration_boxes(durations), "kpi_durations", 360)
if not losses.empty:
    st.caption("Where deals were lost, and why")
    st.dataframe(losses, hide_index=True, key="kpi_losses", column_config={
        "share": st.column_config.NumberColumn(format="percent")})
by = st.radio("Win rate by", ["source", "product", "rep"], horizontal=True, key="kpi_win_by")
st.dataframe(kpi_data.win_rates(actor, flt, by), hide_index=True, key="kpi_win_rates", column_config={
    "win_rate": st.column_config.NumberColumn("Win rate", format="percent")})

st.subheader("Customers")
left, right = st.columns(2)
revenue = charts["revenue_trend"]  # trends over the twelve months that end with the period
if not revenue.empty:
    _chart(left, line(revenue["period_start"], revenue["revenue"], title="Revenue by month, last 12 months",
                      y_title="revenue"), "kpi_revenue")
nps = charts["nps_trend"]
if not nps.empty:
    _chart(right, line(nps["month"], nps["nps"], title="NPS by month, last 12 months", y_title="NPS"), "kpi_nps")
cac = charts["cac_by_channel"]
if not cac.empty:
    _chart(st, cac_chart(cac), "kpi_cac")

export_buttons(lambda s: metrics_frame(metrics, previous), stem=f"kpis-{flt.start:%Y%m%d}", key="kpi_export",
               label="Export the KPIs")
