"""Contacts: search, filter, sort and page through contacts; select rows to tag, assign or export; open one."""
import pandas as pd
import streamlit as st

from crm.listing import export_contacts
from ui import session
from ui.contact_list import bulk_actions, create_contact_form, filter_panel, search_row
from ui.directory import contacts, lookups, version
from ui.exports import export_buttons
from ui.navigation import CONTACT

actor = session.current_actor()
st.title("Contacts")
known = lookups(actor)

query, sort, page_size = search_row()
filters = filter_panel(known, query)
page_number = st.session_state.get("contacts_page", 1)
result = contacts(actor, filters, sort, page_number, page_size)
if result.rows == [] and page_number > 1:  # the filters changed under a later page: start again
    st.session_state["contacts_page"] = page_number = 1
    result = contacts(actor, filters, sort, 1, page_size)

total = f"{result.total:,}{'+' if result.capped else ''}"
st.caption(f"{total} {'deleted ' if filters.deleted else ''}contact{'s' if result.total != 1 else ''} match.")
frame = pd.DataFrame([{
    "Name": r.name, "Email": r.email or "", "Phone": r.phone or "", "Company": r.company or "", "Owner": r.owner or "",
    "Stage": r.lifecycle_stage, "Country": r.country or "", "Lead score": r.lead_score, "Tags": ", ".join(r.tags),
    "Updated": r.updated_at,
} for r in result.rows], columns=["Name", "Email", "Phone", "Company", "Owner", "Stage", "Country", "Lead score",
                                  "Tags", "Updated"])
picked = st.dataframe(
    frame, hide_index=True, on_select="rerun", selection_mode="multi-row", key="contacts_table",
    column_config={"Lead score": st.column_config.NumberColumn(format="%.0f"),
                   "Updated": st.column_config.DatetimeColumn(format="D MMM YYYY, HH:mm")})
selected = [result.rows[i].id for i in picked.selection.rows if i < len(result.rows)]

left, mid, right = st.columns([1, 2, 1])
if left.button("Previous", key="contacts_prev", disabled=page_number <= 1, icon=":material/chevron_left:"):
    st.session_state["contacts_page"] = page_number - 1
    st.rerun()
mid.caption(f"Page {page_number} of {result.pages:,}{'+' if result.capped else ''}")
if right.button("Next", key="contacts_next", disabled=page_number >= result.pages, icon=":material/chevron_right:"):
    st.session_state["contacts_page"] = page_number + 1
    st.rerun()

if len(selected) == 1:
    if st.button("Open the selected contact", key="contacts_open", type="primary", icon=":material/person:"):
        st.switch_page(CONTACT.path, query_params={"id": str(selected[0])})
st.subheader("Selected contacts" if selected else "Actions")
bulk_actions(actor, known, selected, filters)
if actor.can("data.export"):
    what = f"the {len(selected)} selected" if selected else "every matching contact"
    st.caption(f"Export {what} (formulas are neutralised, so the file is safe to open in a spreadsheet).")
    export_buttons(lambda s: export_contacts(session=s, actor=actor, filters=filters, ids=selected or None, sort=sort),
                   stem="contacts", key="contacts_export")
with st.expander("New contact", icon=":material/person_add:"):
    create_contact_form(actor, known, version())
