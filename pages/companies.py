"""Companies: search, filter, sort and page through companies; select rows to tag or export; open one."""
import pandas as pd
import streamlit as st

from crm import companies as company_cases, tags
from crm.listing import CompanyFilter, export_companies
from crm.models import CompanyInput
from ui import session
from ui.company_view import company_fields, company_input
from ui.custom_fields import custom_inputs, custom_values
from ui.directory import COUNTRIES, companies, lookups, version
from ui.exports import export_buttons
from ui.forms import FormKeys, show_outcome, submit_button
from ui.navigation import COMPANY

SORTS = {"name": "Name A–Z", "-updated": "Recently updated", "-created": "Newest", "-employees": "Employees"}

actor = session.current_actor()
st.title("Companies")
known = lookups(actor)
left, mid, right = st.columns([4, 2, 1])
query = left.text_input("Search", key="companies_search", placeholder="Company name or domain")
sort = mid.selectbox("Sort by", list(SORTS), format_func=SORTS.get, key="companies_sort")
page_size = right.selectbox("Per page", [25, 50, 100], index=1, key="companies_page_size")
with st.expander("Filters", icon=":material/filter_list:"):
    a, b, c = st.columns(3)
    countries = a.multiselect("Country", COUNTRIES, key="companies_country")
    tag_ids = b.multiselect("Tags (any of)", list(known.tags), format_func=known.tags.get, key="companies_tags")
    deleted = c.toggle("Show deleted companies (to restore)", key="companies_deleted")
filters = CompanyFilter(query=query, countries=tuple(countries), tag_ids=tuple(tag_ids), deleted=deleted)
page_number = st.session_state.get("companies_page", 1)
result = companies(actor, filters, sort, page_number, page_size)
if not result.rows and page_number > 1:
    st.session_state["companies_page"] = page_number = 1
    result = companies(actor, filters, sort, 1, page_size)

st.caption(f"{result.total:,}{'+' if result.capped else ''} compan{'y' if result.total == 1 else 'ies'} match.")
frame = pd.DataFrame([{"Name": r.name, "Domain": r.domain, "Industry": r.industry, "Country": r.country,
                       "City": r.city, "Employees": r.employees, "Contacts": r.contacts, "Owner": r.owner,
                       "Tags": ", ".join(r.tags)} for r in result.rows],
                     columns=["Name", "Domain", "Industry", "Country", "City", "Employees", "Contacts", "Owner", "Tags"])
picked = st.dataframe(frame, hide_index=True, on_select="rerun", selection_mode="multi-row", key="companies_table")
selected = [result.rows[i].id for i in picked.selection.rows if i < len(result.rows)]
prev_col, page_col, next_col = st.columns([1, 2, 1])
if prev_col.button("Previous", key="companies_prev", disabled=page_number <= 1):
    st.session_state["companies_page"] = page_number - 1
    st.rerun()
page_col.caption(f"Page {page_number} of {result.pages:,}{'+' if result.capped else ''}")
if next_col.button("Next", key="companies_next", disabled=page_number >= result.pages):
    st.session_state["companies_page"] = page_number + 1
    st.rerun()

if len(selected) == 1 and st.button("Open the selected company", key="companies_open", type="primary"):
    st.switch_page(COMPANY.path, query_params={"id": str(selected[0])})
if selected:
    with st.form("companies_bulk_tag_form"):
        key = FormKeys("companies_bulk_tag_", version())
        st.multiselect("Add tags", list(known.tags), format_func=known.tags.get, key=key("add"))
        st.multiselect("Remove tags", list(known.tags), format_func=known.tags.get, key=key("remove"))

        def tag(s, who, v) -> str:
            n = tags.change_tags(session=s, actor=who, entity="company", record_ids=selected, add=v["add"] or [],
                                 remove=v["remove"] or [])
            return f"Tags changed on {n} compan{'y' if n == 1 else 'ies'}"

        done = submit_button(f"Apply to {len(selected)} selected", key="companies_bulk_tag", form=key, action=tag)
    show_outcome("companies_bulk_tag", done)
if actor.can("data.export"):
    export_buttons(lambda s: export_companies(session=s, actor=actor, filters=filters, ids=selected or None),
                   stem="companies", key="companies_export")
with st.expander("New company", icon=":material/add_business:"):
    key = FormKeys("companies_new_", version())
    with st.form("companies_new_form"):
        company_fields(key, known, "companies_new_save")
        custom_inputs(key, known.company_fields, "companies_new_save", editable_by=actor.role)

        def create(s, who, v) -> str:
            view = company_cases.create_company(session=s, actor=who, data=CompanyInput(**company_input(v)),
                                                custom=custom_values(v, known.company_fields, who.role))
            return f"Created {view.name}"

        done = submit_button("Create company", key="companies_new_save", form=key, action=create, type="primary")
    show_outcome("companies_new_save", done)
