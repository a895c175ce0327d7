"""The forecast for managers: the period's numbers by category and weighting, quota and attainment, the Monte Carlo
range as a band chart, and a backtest that shows which weighting deserves trust."""
import streamlit as st

from crm.errors import CRMError
from ui import session
from ui.exports import export_buttons
from ui.forecast_view import (
    BACKTEST_COLUMNS, BY_REP_COLUMNS, WEIGHTS, backtest_chart, backtest_of, forecast_filter, numbers, range_chart, show_summary,
)
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

st.subheader("Backtest")
result = backtest_of(actor, flt, BACKTEST_PERIODS)
if result.reconstructed_periods:
    st.info(f"{result.reconstructed_periods} of the last {BACKTEST_PERIODS} {flt.kind}s have no forecast snapshot "
            "from their start, so their stage-default forecasts were reconstructed from stage history. Rep and "
            "model probabilities were never recorded for those days and are shown as \"needs snapshots\". "
            "Run `python -m crm forecast snapshot` nightly to build the record.", icon=":material/history:")
st.dataframe(result.summary, hide_index=True, key="fc_backtest_summary", column_config=BACKTEST_COLUMNS)
st.caption("The lower the mean absolute % error, the more that weighting deserves trust for this scope.")
st.plotly_chart(backtest_chart(result), key="fc_backtest_chart", config={"displayModeBar": False})
with st.expander("Every period and method"):
    st.dataframe(result.rows, hide_index=True, key="fc_backtest_rows")
