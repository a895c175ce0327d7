"""The segments page's analytic tabs: RFM groups and k-means clusters, each saved as a static segment in one click.

Both read every customer's history (seconds at a million contacts), so they run when asked for and are cached on
the data version: a write anywhere shows in the next computation, never a stale one.
"""
import plotly.express as px
import streamlit as st

from crm.clock import today
from crm.db import read_scope
from crm.errors import CRMError
from crm.permissions import Actor
from crm.segments.rfm import GROUPS, compute_rfm, save_rfm_group
from ui.directory import version
from ui.forms import act, describe
from ui.text import md_escape


@st.cache_data(ttl=1800, max_entries=8, show_spinner=False)
def _rfm(actor: Actor, data_version: int):
    with read_scope() as s:
        return compute_rfm(session=s, actor=actor)


@st.cache_data(ttl=1800, max_entries=8, show_spinner=False)
def _clusters(actor: Actor, seed: int, data_version: int):
    from crm.segments.clusters import cluster_contacts  # late: see clusters()
    with read_scope() as s:
        return cluster_contacts(session=s, actor=actor, seed=seed)


def rfm(actor: Actor) -> None:
    st.caption("Recency, frequency and monetary value of completed, dated orders, scored 1–5 by quintile; groups "
               "follow the usual recency × frequency grid (docs/segments-analytics.md).")
    if not st.toggle("Compute RFM", key="rfm_on"):
        return
    with st.spinner("Scoring every customer's orders…"):
        result = _rfm(actor, version())
    summary = result.summary
    if result.scores.empty:
        st.info("No customer has a dated, completed order yet.", icon=":material/info:")
        return
    chart = px.bar(summary[summary["group"].isin(GROUPS)], x="count", y="group", orientation="h",
                   hover_data=["share", "mean_recency_days", "mean_frequency", "mean_monetary"],
                   labels={"count": "customers", "group": ""})
    chart.update_layout(yaxis={"categoryorder": "array", "categoryarray": list(reversed(GROUPS))}, height=380,
                        margin={"l": 0, "r": 0, "t": 10, "b": 0})
    st.plotly_chart(chart, key="rfm_chart")
    st.dataframe(summary, hide_index=True, key="rfm_summary", column_config={
        "share": st.column_config.NumberColumn("Share", format="percent")})
    if result.unscored:
        st.caption(f"{result.unscored:,} customers have completed orders but none dated: not scored.")
    present = [g for g in GROUPS if (summary.set_index("group")["count"].get(g, 0) or 0) > 0]
    with st.form("rfm_save"):
        group = st.selectbox("Group", present, key="rfm_group")
        name = st.text_input("Segment name", value=f"RFM {today():%Y-%m-%d}", max_chars=100, key="rfm_name")
        if st.form_submit_button("Save the group as a static segment", type="primary"):
            act(lambda s, who: _saved(save_rfm_group(session=s, actor=who, result=result, group=group,
                                                      name=f"{name} – {group}")))


def clusters(actor: Actor) -> None:
    st.caption("k-means over engagement, orders and company size (scaled); k is the one with the best silhouette "
               "on a fixed sample. The same seed gives the same clusters.")
    seed = int(st.number_input("Seed", min_value=0, max_value=10_000, value=0, key="cl_seed"))
    if not st.toggle("Find clusters", key="cl_on"):
        return
    # Imported only now: scikit-learn takes about 0.9 s to import, which every first visit of the page paid.
    from crm.segments.clusters import save_cluster_segment
    with st.spinner("Clustering…"):
        try:
            found = _clusters(actor, seed, version())
        except CRMError as exc:
            st.info(md_escape(describe(exc)), icon=":material/info:")
            return
    choice = found.choice
    chart = px.line(choice, x="k", y="silhouette", markers=True, labels={"silhouette": "silhouette (higher is better)"})
    chart.add_vline(x=found.k, line_dash="dot")
    chart.update_layout(height=260, margin={"l": 0, "r": 0, "t": 10, "b": 0})
    st.plotly_chart(chart, key="cl_choice")
    st.caption(f"k = {found.k}: the best silhouette of k = {choice['k'].min()}…{choice['k'].max()}.")
    st.dataframe(found.clusters, hide_index=True, key="cl_table", column_config={
        "share": st.column_config.NumberColumn("Share", format="percent"),
        "description": st.column_config.TextColumn("What sets it apart", width="large")})
    with st.form("cl_save"):
        cluster = st.selectbox("Cluster", found.clusters["cluster"].tolist(), key="cl_pick")
        name = st.text_input("Segment name", value=f"Cluster {today():%Y-%m-%d}", max_chars=100, key="cl_name")
        if st.form_submit_button("Save the cluster as a static segment", type="primary"):
            act(lambda s, who: _saved(save_cluster_segment(session=s, actor=who, clustering=found,
                                                            cluster=int(cluster), name=f"{name} #{cluster}")))


def _saved(made) -> str:
    return f"Segment {made.name} saved with {made.members:,} contacts"
