"""One deal: stage, probability (model beside rep), close it, edit it; its timeline, stage history, line items,
contacts and tasks."""
import streamlit as st

from crm import deal_detail
from crm.db import read_scope
from crm.deals import get_deal
from crm.errors import CRMError
from crm.timeline import KINDS, deal_timeline
from ui import session
from ui.deal_view import edit_form, explanation_panel, heading, log_forms, probability_panel, stage_actions
from ui.navigation import COMPANY, CONTACT, PIPELINE
from ui.pipeline_data import lookups
from ui.text import md_escape
from ui.timeline import show_timeline

actor = session.current_actor()
st.page_link(PIPELINE.path, label="Pipeline", icon=":material/arrow_back:")
raw_id = st.query_params.get("id", "")
if not raw_id.isdigit():
    st.title("Deal")
    st.info("Open a deal from the Pipeline page to see it here.", icon=":material/handshake:")
    st.stop()
deal_id = int(raw_id)
groups = st.session_state.get("deal_timeline_groups") or ["activities", "changes"]
try:
    with read_scope() as s:
        deal = get_deal(session=s, actor=actor, deal_id=deal_id)
        history = deal_detail.stage_history(session=s, deal_id=deal_id)
        items = deal_detail.line_items(session=s, deal_id=deal_id)
        people = deal_detail.deal_contacts(session=s, deal_id=deal_id)
        tasks = deal_detail.open_tasks(session=s, deal_id=deal_id)
        timeline = deal_timeline(session=s, deal_id=deal_id, kinds={k for k, g in KINDS.items() if g in groups})
except CRMError as exc:
    st.error(md_escape(exc.message), icon=":material/block:")
    st.stop()
known = lookups(actor)
pipeline = next(p for p in known.pipelines if p.id == deal.pipeline_id)

st.title(md_escape(deal.title))
st.caption(heading(deal))
amount = f"{deal.amount:,.2f} {md_escape(deal.currency)}"
close = f"closed {deal.closed_at:%d %b %Y}" if deal.closed_at else (
    f"expected {deal.expected_close:%d %b %Y}" if deal.expected_close else "no expected close date")
st.markdown(f"**{amount}** · {close} · forecast: {deal.forecast_category.value.replace('_', ' ')}")
if deal.next_step:
    st.caption(f"Next step: {md_escape(deal.next_step)}")
links = st.columns(4)
if deal.company_id:
    links[0].page_link(COMPANY.path, label=md_escape(deal.company or "Company"), icon=":material/domain:",
                       query_params={"id": str(deal.company_id)})
if deal.contact_id:
    links[1].page_link(CONTACT.path, label="Primary contact", icon=":material/person:",
                       query_params={"id": str(deal.contact_id)})

stage_actions(actor, deal, pipeline, known)
probability_panel(deal)
if deal.status == "open":
    explanation_panel(deal)
overview, stages_tab, items_tab, people_tab, edit_tab = st.tabs(
    ["Timeline", "Stage history", "Line items", "Contacts", "Edit"])
with overview:
    log_forms(actor, deal)
    st.subheader("Open tasks")
    if tasks.empty:
        st.caption("No open tasks.")
    else:
        st.dataframe(tasks, hide_index=True, key="deal_tasks",
                     column_config={"due": st.column_config.DatetimeColumn("Due", format="D MMM YYYY")})
    show_timeline(timeline, key="deal_timeline_groups")
with stages_tab:
    st.dataframe(history, hide_index=True, key="deal_stage_history", column_config={
        "stage": st.column_config.TextColumn("Stage"), "current": st.column_config.CheckboxColumn("Current"),
        "by": st.column_config.TextColumn("Moved by"),
        "entered": st.column_config.DatetimeColumn("Entered", format="D MMM YYYY, HH:mm"),
        "left": st.column_config.DatetimeColumn("Left", format="D MMM YYYY, HH:mm"),
        "days": st.column_config.NumberColumn("Days in stage", format="%.1f")})
    if not history.empty:
        st.bar_chart(history.groupby("stage", sort=False)["days"].sum(), horizontal=True, y_label="days")
with items_tab:
    if items.empty:
        st.caption("No line items.")
    else:
        st.dataframe(items, hide_index=True, key="deal_items")
        st.caption(f"Total of the line items: {items['total'].sum():,.2f}")
with people_tab:
    if people.empty:
        st.caption("No contacts linked.")
    else:
        st.dataframe(people.drop(columns="id"), hide_index=True, key="deal_people")
with edit_tab:
    edit_form(deal)
