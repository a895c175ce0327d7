"""A model's card on the models page: tier and why, data minimums, metrics against baselines, the reliability curve,
what weighs most, and drift since training."""
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crm.ml.card import ModelCard
from ui.text import md_escape


def show_card(card: ModelCard) -> None:
    if card.version is None:
        st.info(f"Not trained yet. {card.tier_reason}", icon=":material/model_training:")
        _minimums(card)
        return
    status = "live (champion)" if card.status == "champion" else card.status or "—"
    st.markdown(f"**Tier:** {md_escape(card.tier or '—')} · **version** {md_escape(card.version)} · {status} · "
                f"trained {md_escape((card.trained_at or '')[:16].replace('T', ' '))} UTC")
    st.caption(md_escape(card.tier_reason))
    if card.promotion:
        st.caption(f"Promotion: {md_escape(card.promotion)}")
    if card.split:
        rows = " · ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in card.rows.items())
        st.caption(f"Holdout: {md_escape(card.split)}" + (f" · rows: {md_escape(rows)}" if rows else ""))
    _minimums(card)
    left, right = st.columns(2)
    with left:
        st.markdown("**Metrics on the holdout, against baselines**")
        st.dataframe(metrics_frame(card.metrics), key=f"card_{card.name}_metrics")
        if card.breakdown:
            st.markdown("**Per product on the holdout**")
            st.dataframe(breakdown_frame(card.breakdown), hide_index=True, key=f"card_{card.name}_breakdown")
        if card.reliability:
            st.plotly_chart(reliability_chart(card.reliability), key=f"card_{card.name}_reliability",
                            config={"displayModeBar": False})
    with right:
        if card.importance:
            st.markdown("**What weighs most (global importance)**")
            top = pd.DataFrame(card.importance[:15], columns=["feature", "importance"])
            st.plotly_chart(importance_chart(top), key=f"card_{card.name}_importance",
                            config={"displayModeBar": False})
        if card.drift:
            st.markdown("**Inputs now against training**")
            st.dataframe(pd.DataFrame(card.drift), hide_index=True, key=f"card_{card.name}_drift")


def _minimums(card: ModelCard) -> None:
    if card.minimums:
        st.dataframe(pd.DataFrame([{"data": m.what, "needed": m.needed, "have": m.have, "met": m.met}
                                   for m in card.minimums]), hide_index=True, key=f"card_{card.name}_minimums")


def metrics_frame(metrics: dict) -> pd.DataFrame:
    """One column per model or baseline, one row per metric."""
    frame = pd.DataFrame({name: values for name, values in metrics.items() if isinstance(values, dict)})
    return frame.map(lambda v: round(v, 4) if isinstance(v, float) else v)


def breakdown_frame(rows: list[dict]) -> pd.DataFrame:
    """One row per product (cross-sell): the model's holdout metrics and both baselines' AUC."""
    return pd.DataFrame(rows).map(lambda v: round(v, 4) if isinstance(v, float) else v)


def reliability_chart(rows: list[dict]) -> go.Figure:
    frame = pd.DataFrame(rows)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                             line={"dash": "dash", "color": "#999"}))
    fig.add_trace(go.Scatter(x=frame["predicted"], y=frame["observed"], mode="lines+markers", name="model",
                             text=frame["count"], hovertemplate="predicted %{x:.0%} · observed %{y:.0%} · "
                                                                 "%{text} rows<extra></extra>"))
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10}, title="Reliability",
                      xaxis={"title": "predicted", "tickformat": ".0%", "range": [0, 1]},
                      yaxis={"title": "observed", "tickformat": ".0%", "range": [0, 1]},
                      legend={"orientation": "h", "y": -0.25})
    return fig


def plain(text: object) -> str:
    """Chart text without the tags plotly would interpret (<a href>, <b> …): names can come from custom fields."""
    return str(text).replace("<", "‹").replace(">", "›")


def importance_chart(top: pd.DataFrame) -> go.Figure:
    fig = go.Figure(go.Bar(x=top["importance"][::-1], y=[plain(f) for f in top["feature"][::-1]], orientation="h"))
    fig.update_layout(height=40 + 22 * len(top), margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return fig
