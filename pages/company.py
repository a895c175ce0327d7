"""One company, 360°: fields, tags, its contacts, open and closed deals, and one timeline; edit, delete, restore."""
import pandas as pd
import streamlit as st

from crm import companies as cases, tags as tag_cases
from crm.db import read_scope
from crm.deals import deals_around
from crm.errors import CRMError
from crm.listing import ContactFilter, list_contacts
from crm.models import CompanyInput
from crm.permissions import readable_owner_ids
from crm.timeline import GROUPS, KINDS, company_timeline
from ui import session
from ui.company_view import company_fields, company_input
from ui.custom_fields import custom_inputs, custom_values
from ui.directory import lookups
from ui.forms import FormKeys, show_outcome, submit_button
from ui.navigation import COMPANIES, CONTACT
from ui.text import md_escape
from ui.timeline import show_timeline

actor = session.current_actor()
st.page_link(COMPANIES.path, label="All companies", icon=":material/arrow_back:")
raw_id = st.query_params.get("id", "")
if not raw_id.isdigit():
    st.title("Company")
    st.info("Pick a company on the Companies page to see it here.", icon=":material/domain:")
    st.stop()
company_id = int(raw_id)
groups = st.session_state.get("company_timeline_groups") or GROUPS
try:
    with read_scope() as s:
        company = cases.get_company(session=s, actor=actor, company_id=company_id, include_deleted=True)
        custom = cases.company_custom_values(session=s, actor=actor, company_id=company_id)
        tags = tag_cases.tags_of(session=s, entity="company", record_id=company_id)
        people = list_contacts(session=s, actor=actor, filters=ContactFilter(company_id=company_id), page_size=200)
        deals = deals_around(session=s, actor=actor, company_id=company_id)
        timeline = company_timeline(session=s, company_id=company_id, kinds={k for k, g in KINDS.items() if g in groups},
                                    readable_owners=readable_owner_ids(s, actor, "contacts"))
except CRMError as exc:
    st.error(md_escape(exc.message), icon=":material/block:")
    st.stop()
known = lookups(actor)

st.title(md_escape(company.name))
st.caption(" · ".join(md_escape(x) for x in [company.industry, company.domain, company.city, company.country] if x))
if company.deleted_at is not None:
    st.warning("This company is deleted: it is hidden from lists. Restore it on the Edit tab.", icon=":material/delete:")
overview, edit = st.tabs(["Overview", "Edit"])
with overview:
    left, right = st.columns([2, 3])
    with left:
        labels = {f.key: f.label for f in known.company_fields}
        st.dataframe(pd.DataFrame([{"Field": k, "Value": "" if v is None else str(v)} for k, v in [
            ("Employees", company.employees), ("Annual revenue", company.annual_revenue),
            ("Owner", known.readers.get(company.owner_id) or known.assignable.get(company.owner_id)),
            ("Tags", ", ".join(t.name for t in tags)), *((labels.get(k, k), v) for k, v in custom.items())]]),
            hide_index=True, key="company_details")
        st.subheader(f"Contacts ({people.total:,})")
        picked = st.dataframe(pd.DataFrame([{"Name": r.name, "Email": r.email, "Stage": r.lifecycle_stage,
                                             "Owner": r.owner} for r in people.rows],
                                           columns=["Name", "Email", "Stage", "Owner"]),
                              hide_index=True, on_select="rerun", selection_mode="single-row", key="company_contacts")
        if picked.selection.rows and st.button("Open the selected contact", key="company_open_contact"):
            st.switch_page(CONTACT.path, query_params={"id": str(people.rows[picked.selection.rows[0]].id)})
        st.subheader("Deals")
        st.dataframe(pd.DataFrame([{"Deal": d.title, "Stage": d.stage, "Status": d.status.value, "Amount": d.amount,
                                    "Close": d.closed_at or d.expected_close, "Owner": d.owner} for d in deals],
                                  columns=["Deal", "Stage", "Status", "Amount", "Close", "Owner"]), hide_index=True)
    with right:
        show_timeline(timeline, key="company_timeline_groups")
with edit:
    save_key = f"company_edit_{company.id}_save"
    if company.deleted_at is None:
        key = FormKeys(f"company_edit_{company.id}_", company.version)
        with st.form(f"company_edit_{company.id}_form"):
            company_fields(key, known, save_key, current=company)
            custom_inputs(key, known.company_fields, save_key, editable_by=actor.role, current=custom)

            def save(s, who, v) -> str:
                cases.update_company(session=s, actor=who, company_id=company.id, seen_version=key.generation,
                                     data=CompanyInput(**company_input(v, company)),
                                     custom=custom_values(v, known.company_fields, who.role, current=custom))
                return "Company saved"

            done = submit_button("Save", key=save_key, form=key, action=save, type="primary")
        show_outcome(save_key, done)
    with st.form(f"company_delete_{company.id}_form"):
        verb = cases.restore_company if company.deleted_at else cases.delete_company

        def toggle(s, who, v) -> str:
            verb(session=s, actor=who, company_id=company.id, seen_version=company.version)
            return "Company restored" if company.deleted_at else "Company deleted"

        done = submit_button("Restore company" if company.deleted_at else "Delete company",
                             key=f"company_delete_{company.id}", form=FormKeys(f"company_delete_{company.id}_",
                                                                                company.version), action=toggle)
    show_outcome(f"company_delete_{company.id}", done)
