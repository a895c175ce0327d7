"""The contacts list's widgets: search and sort, filters, bulk actions on selected rows, the new-contact form."""
from typing import Any

import streamlit as st

from crm import contacts, tags
from crm.listing import ContactFilter, CustomCondition
from crm.models import ContactInput, FieldType, Lifecycle
from crm.permissions import Actor
from ui.custom_fields import custom_inputs, custom_values
from ui.directory import COUNTRIES, Lookups, owner_select, version
from ui.forms import FormKeys, field_error, show_outcome, submit_button

SORTS = {"name": "Name A–Z", "-updated": "Recently updated", "-created": "Newest", "-lead_score": "Lead score",
         "-last_engaged": "Recently engaged"}
CONTACT_FIELDS = ["first_name", "last_name", "email", "phone", "country", "job_title", "city", "lifecycle_stage",
                  "owner_id", "lead_score", "source", "email_opt_in", "do_not_contact"]


def search_row() -> tuple[str, str, int]:
    left, mid, right = st.columns([4, 2, 1])
    query = left.text_input("Search", key="contacts_search", placeholder="Name, email, phone or company",
                            help="Any script; accents and case don't matter. Every word must match the start of a "
                                 "name, email, phone or company word.")
    sort = mid.selectbox("Sort by", list(SORTS), format_func=SORTS.get, key="contacts_sort")
    page_size = right.selectbox("Per page", [25, 50, 100, 200], index=1, key="contacts_page_size")
    return query, sort, page_size


def _custom_condition(fields) -> CustomCondition | None:
    by_key = {f.key: f for f in fields}
    key = st.selectbox("Custom field", [None, *by_key], key="contacts_cf_key",
                       format_func=lambda k: by_key[k].label if k else "—")
    if key is None:
        return None
    field = by_key[key]
    kind = FieldType(field.field_type)
    if kind == FieldType.NUMBER:
        lo, hi = st.columns(2)
        return CustomCondition(key=key, op="between", value=lo.number_input("From", value=None, key="contacts_cf_lo"),
                               upper=hi.number_input("To", value=None, key="contacts_cf_hi"))
    if kind == FieldType.DATE:
        lo, hi = st.columns(2)
        return CustomCondition(key=key, op="between", value=lo.date_input("From", value=None, key="contacts_cf_dlo"),
                               upper=hi.date_input("To", value=None, key="contacts_cf_dhi"))
    if kind == FieldType.CHECKBOX:
        return CustomCondition(key=key, op="is", value=st.toggle("Is ticked", value=True, key="contacts_cf_bool"))
    if kind == FieldType.DROPDOWN:
        return CustomCondition(key=key, op="equals", value=st.selectbox("Is", field.options, key="contacts_cf_opt"))
    text = st.text_input("Contains", key="contacts_cf_text")
    return CustomCondition(key=key, op="contains", value=text) if text else None


def filter_panel(known: Lookups, query: str) -> ContactFilter:
    with st.expander("Filters", icon=":material/filter_list:"):
        a, b, c = st.columns(3)
        owners = a.multiselect("Owner", list(known.readers), format_func=known.readers.get, key="contacts_owner")
        stages = b.multiselect("Lifecycle stage", list(Lifecycle), format_func=lambda s: s.value.upper()
                               if s in (Lifecycle.MQL, Lifecycle.SQL) else s.value.capitalize(), key="contacts_stage")
        tag_ids = c.multiselect("Tags (any of)", list(known.tags), format_func=known.tags.get, key="contacts_tags")
        d, e, f = st.columns(3)
        countries = d.multiselect("Country", COUNTRIES, key="contacts_country")
        use_score = e.toggle("Filter by lead score", key="contacts_use_score")
        lo, hi = e.slider("Lead score", 0, 100, (0, 100), key="contacts_score", disabled=not use_score)
        deleted = f.toggle("Show deleted contacts (to restore)", key="contacts_deleted")
        with f:
            condition = _custom_condition(known.contact_fields)
    return ContactFilter(query=query, owner_ids=tuple(owners), lifecycle=tuple(stages), tag_ids=tuple(tag_ids),
                         countries=tuple(countries), score_min=lo if use_score else None,
                         score_max=hi if use_score else None, deleted=deleted,
                         custom=(condition,) if condition else ())


def bulk_actions(actor: Actor, known: Lookups, selected: list[int], filters: ContactFilter) -> None:
    if not selected:
        st.caption("Select rows in the table (tick the boxes at the left) to tag them, assign an owner or export them.")
        return
    tag_col, owner_col = st.columns(2)
    with tag_col, st.form("contacts_bulk_tag_form"):
        key = FormKeys("contacts_bulk_tag_", version())
        st.multiselect("Add tags", list(known.tags), format_func=known.tags.get, key=key("add"))
        st.text_input("…or a new tag", key=key("new"), max_chars=60)
        st.multiselect("Remove tags", list(known.tags), format_func=known.tags.get, key=key("remove"))

        def tag(s, who, v) -> str:
            add = list(v["add"] or [])
            if (v["new"] or "").strip():
                add.append(tags.ensure_tag(session=s, actor=who, name=v["new"]).id)
            changed = tags.change_tags(session=s, actor=who, entity="contact", record_ids=selected, add=add,
                                       remove=v["remove"] or [])
            return f"Tags changed on {changed} contact{'s' if changed != 1 else ''}"

        done = submit_button(f"Apply to {len(selected)} selected", key="contacts_bulk_tag", form=key, action=tag)
    with tag_col:
        show_outcome("contacts_bulk_tag", done)
    if not known.assignable:
        return
    with owner_col, st.form("contacts_bulk_owner_form"):
        key = FormKeys("contacts_bulk_owner_", version())
        st.selectbox("New owner", list(known.assignable), format_func=known.assignable.get, key=key("owner"))

        def assign(s, who, v) -> str:
            changed = contacts.assign_owner(session=s, actor=who, contact_ids=selected, owner_id=v["owner"])
            return f"{changed} contact{'s' if changed != 1 else ''} assigned to {known.assignable[v['owner']]}"

        done = submit_button(f"Assign {len(selected)} selected", key="contacts_bulk_owner", form=key, action=assign)
    with owner_col:
        show_outcome("contacts_bulk_owner", done)


def contact_input(values: dict[str, Any]) -> ContactInput:
    """The form's values as a ContactInput: empty text means "no value"."""
    cleaned = {k: (v.strip() or None) if isinstance(v, str) else v for k, v in values.items() if k in CONTACT_FIELDS}
    cleaned["first_name"] = cleaned.get("first_name") or ""
    cleaned["last_name"] = cleaned.get("last_name") or ""
    return ContactInput(**cleaned)


def contact_fields(key: FormKeys, known: Lookups, submit_key: str, current=None) -> None:
    """The contact's own fields, each followed by its error if the last save failed on it."""
    def value(name, default=None):
        return getattr(current, name) if current is not None else default

    a, b = st.columns(2)
    with a:
        st.text_input("First name", value=value("first_name", ""), key=key("first_name"), max_chars=100)
        field_error(submit_key, "first_name")
        st.text_input("Email", value=value("email") or "", key=key("email"))
        field_error(submit_key, "email")
        st.selectbox("Country", [None, *COUNTRIES], index=([None, *COUNTRIES].index(value("country"))
                     if value("country") in COUNTRIES else 0), key=key("country"),
                     help="Also the default region for phone numbers written without +country code.")
        field_error(submit_key, "country")
        st.text_input("City", value=value("city") or "", key=key("city"))
        field_error(submit_key, "city")
        stages = list(Lifecycle)
        st.selectbox("Lifecycle stage", stages, index=stages.index(value("lifecycle_stage", Lifecycle.LEAD)),
                     format_func=lambda s: s.value, key=key("lifecycle_stage"))
    with b:
        st.text_input("Last name", value=value("last_name", ""), key=key("last_name"), max_chars=100)
        field_error(submit_key, "last_name")
        st.text_input("Phone", value=value("phone") or "", key=key("phone"),
                      help="Any format or digits (Persian, Arabic-Indic and full-width too); stored as +E.164.")
        field_error(submit_key, "phone")
        st.text_input("Job title", value=value("job_title") or "", key=key("job_title"))
        field_error(submit_key, "job_title")
        owner_select(known, key=key("owner_id"), current=value("owner_id"))
        field_error(submit_key, "owner_id")
        st.number_input("Lead score", 0.0, 100.0, value=value("lead_score"), key=key("lead_score"))
        field_error(submit_key, "lead_score")
    st.text_input("Source", value=value("source") or "", key=key("source"))
    c, d = st.columns(2)
    c.checkbox("Opted in to email", value=value("email_opt_in", False), key=key("email_opt_in"))
    d.checkbox("Do not contact", value=value("do_not_contact", False), key=key("do_not_contact"))


def create_contact_form(actor: Actor, known: Lookups, generation: int) -> None:
    key = FormKeys("contacts_new_", generation)
    with st.form("contacts_new_form"):
        contact_fields(key, known, "contacts_new_save")
        custom_inputs(key, known.contact_fields, "contacts_new_save", editable_by=actor.role)

        def create(s, who, v) -> str:
            view = contacts.create_contact(session=s, actor=who, data=contact_input(v),
                                           custom=custom_values(v, known.contact_fields, who.role))
            return f"Created {view.full_name}"

        done = submit_button("Create contact", key="contacts_new_save", form=key, action=create, type="primary")
    show_outcome("contacts_new_save", done)
