"""The forecast for managers: the period's numbers by category and weighting, quota and attainment, the Monte Carlo
range as a band chart, and a backtest that shows which weighting deserves trust."""
import streamlit as st

from crm.errors import CRMError
from ui import session
from ui.exports import export_buttons
from ui.forecast_view import BY_REP_COLUMNS, WEIGHTS, forecast_filter, numbers, range_chart, show_backtest, show_summary
from ui.pipeline_data import lookups
from ui.text import md_escape

BACKTEST_PERIODS = 6

actor = session.current_actor()
st.title("Forecast")
known = lookups(actor)
flt, weighting = forecast_filter(actor, known)
try:
    summary, spread = numbers(actor, flt, weighting)
except CRMError as exc:
    st.error(md_escape(exc.message), icon=":material/block:")
    st.stop()
st.caption(f"{flt.period_start:%d %b %Y} – {flt.period_end:%d %b %Y} · weights: {WEIGHTS[weighting].lower()}")
show_summary(summary, spread)
# The backtest replays past periods (about a second for a team at the large demo size), so it runs when asked for.
view = st.radio("Show", ["Range and reps", "Backtest"], horizontal=True, key="fc_view", label_visibility="collapsed")
if view == "Backtest":
    show_backtest(actor, flt, BACKTEST_PERIODS)
    st.stop()

st.subheader("Range")
st.plotly_chart(range_chart(spread), key="fc_range_chart", config={"displayModeBar": False})
slipped = spread.slip[~spread.slip["learned"]] if not spread.slip.empty else spread.slip
st.caption("Each run draws every open deal's win from its probability, and its close date from how long won deals "
           "took from its stage to close (close dates only slip later). "
           + (f"{len(slipped)} stage(s) had too few won deals to learn from: no slip there." if len(slipped) else ""))

st.subheader("By rep")
st.dataframe(summary.by_rep, hide_index=True, key="fc_by_rep", column_order=list(BY_REP_COLUMNS),
             column_config=BY_REP_COLUMNS)
if actor.can("data.export"):
    export_buttons(lambda _session: summary.by_rep, stem="forecast-by-rep", key="fc_by_rep_export")

