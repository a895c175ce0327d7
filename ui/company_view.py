"""The company form's fields, shared by the create form and the company 360° page's edit tab."""
import streamlit as st

from crm.models import CompanyView
from ui.directory import COUNTRIES, Lookups, owner_select
from ui.forms import FormKeys, field_error

COMPANY_FIELDS = ["name", "domain", "industry", "employees", "annual_revenue", "country", "city", "owner_id"]


def company_fields(key: FormKeys, known: Lookups, submit_key: str, current: CompanyView | None = None) -> None:
    def value(name, default=None):
        return getattr(current, name) if current is not None else default

    a, b = st.columns(2)
    with a:
        st.text_input("Name", value=value("name", ""), key=key("name"), max_chars=200)
        field_error(submit_key, "name")
        st.text_input("Industry", value=value("industry") or "", key=key("industry"))
        field_error(submit_key, "industry")
        st.number_input("Employees", min_value=0, value=value("employees"), step=1, key=key("employees"))
        field_error(submit_key, "employees")
        countries = [None, *COUNTRIES]
        st.selectbox("Country", countries, index=countries.index(value("country")) if value("country") in countries
                     else 0, key=key("country"))
        field_error(submit_key, "country")
    with b:
        st.text_input("Domain", value=value("domain") or "", key=key("domain"), placeholder="example.com")
        field_error(submit_key, "domain")
        st.number_input("Annual revenue", min_value=0.0, value=value("annual_revenue"), key=key("annual_revenue"))
        field_error(submit_key, "annual_revenue")
        st.text_input("City", value=value("city") or "", key=key("city"))
        field_error(submit_key, "city")
        owner_select(known, key=key("owner_id"), current=value("owner_id"))
        field_error(submit_key, "owner_id")


def company_input(values: dict, current: CompanyView | None = None) -> dict:
    """The submitted fields, empty text as None; on an edit form only those that changed."""
    out = {}
    for name in COMPANY_FIELDS:
        value = values.get(name)
        if isinstance(value, str):
            value = value.strip() or ("" if name == "name" else None)
        if current is None or value != getattr(current, name):
            out[name] = value
    return out
