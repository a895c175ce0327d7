"""One contact, 360°: fields, tags, company, deals and a single timeline; quick actions; edit, delete, privacy."""
import pandas as pd
import streamlit as st

from crm.companies import get_company
from crm.contacts import contact_custom_values, get_contact
from crm.db import read_scope
from crm.deals import deals_around
from crm.errors import CRMError
from crm.tags import tags_of
from crm.timeline import GROUPS, KINDS, contact_timeline
from ui import session
from ui.contact_view import details, edit_tab, privacy_tab, quick_actions, tag_editor
from ui.directory import lookups
from ui.navigation import COMPANY, CONTACTS
from ui.text import md_escape
from ui.timeline import show_timeline

actor = session.current_actor()
st.page_link(CONTACTS.path, label="All contacts", icon=":material/arrow_back:")
raw_id = st.query_params.get("id", "")
if not raw_id.isdigit():
    st.title("Contact")
    st.info("Pick a contact on the Contacts page to see it here.", icon=":material/person_search:")
    st.stop()
contact_id = int(raw_id)
groups = st.session_state.get("contact_timeline_groups") or GROUPS
try:
    with read_scope() as s:
        contact = get_contact(session=s, actor=actor, contact_id=contact_id, include_deleted=True)
        custom = contact_custom_values(session=s, actor=actor, contact_id=contact_id)
        tags = tags_of(session=s, entity="contact", record_id=contact_id)
        company = get_company(session=s, actor=actor, company_id=contact.company_id,
                              include_deleted=True) if contact.company_id else None
        deals = deals_around(session=s, actor=actor, contact_id=contact_id)
        timeline = contact_timeline(session=s, contact_id=contact_id,
                                    kinds={k for k, g in KINDS.items() if g in groups})
except CRMError as exc:
    st.error(md_escape(exc.message), icon=":material/block:")
    st.stop()
known = lookups(actor)

st.title(md_escape(contact.full_name or f"Contact {contact.id}"))
st.caption(" · ".join(md_escape(x) for x in [contact.job_title, company.name if company else None,
                                            contact.lifecycle_stage.value] if x))
if company is not None:
    st.page_link(COMPANY.path, label=f"Open {md_escape(company.name)}", icon=":material/domain:",
                 query_params={"id": str(company.id)})
if contact.deleted_at is not None:
    st.warning("This contact is deleted: it is hidden from lists. Restore it on the Edit tab.", icon=":material/delete:")

tab_names = ["Overview", "Edit"] + (["Privacy"] if actor.can("privacy.erase") else [])
tabs = st.tabs(tab_names)
with tabs[0]:
    quick_actions(actor, contact, known)
    left, right = st.columns([2, 3])
    with left:
        details(contact, custom, company, known)
        tag_editor(contact, tags, known)
        st.subheader("Deals")
        if deals:
            st.dataframe(pd.DataFrame([{"Deal": d.title, "Stage": d.stage, "Status": d.status.value,
                                        "Amount": d.amount, "Close": d.closed_at or d.expected_close,
                                        "Owner": d.owner} for d in deals]), hide_index=True,
                         column_config={"Amount": st.column_config.NumberColumn(format="localized")})
        else:
            st.caption("No deals you can see.")
    with right:
        show_timeline(timeline, key="contact_timeline_groups")
with tabs[1]:
    edit_tab(actor, contact, custom, known)
if len(tabs) > 2:
    with tabs[2]:
        privacy_tab(actor, contact)
