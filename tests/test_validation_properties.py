"""Generated input through the contact and company validators: each value is stored clean or refused by name."""
from hypothesis import HealthCheck, given, settings, strategies as st

from crm.companies import clean_company
from crm.contacts import clean_contact
from crm.db import session_scope
from crm.errors import ValidationFailed
from crm.models import CompanyInput, ContactInput, Lifecycle
from crm.search import contact_tokens, parse_query
from tests.factories import new_sqlite_crm

DIGITS = "0123456789" + "۰۱۲۳۴۵۶۷۸۹" + "٠١٢٣٤٥٦٧٨٩" + "０１２３４５６７８９"
texts = st.one_of(st.none(), st.text(max_size=120), st.sampled_from(["", "  ", "Zoë", "สมชาย", "王小明", "رضا",
                                                                     "=cmd|' /C calc'!A0", "<script>x</script>"]))
phones = st.one_of(st.none(), st.text(alphabet=DIGITS + " +-()./", max_size=20),
                   st.sampled_from(["+66 81 234 5678", "۰۹۱۲ ۳۴۵ ۶۷۸۹", "(415) 555-2671", "+999 1", "abc"]))
emails = st.one_of(st.none(), st.emails(), st.text(max_size=40), st.sampled_from(["a@b", "x@example.com ", "@@"]))
countries = st.one_of(st.none(), st.sampled_from(["US", "th", "IR", "CN", "ZZ", "USA", "", "de "]))

contact_rows = st.builds(
    ContactInput, first_name=st.text(max_size=110), last_name=st.text(max_size=110), email=emails, phone=phones,
    country=countries, job_title=texts, city=texts, source=texts, lifecycle_stage=st.sampled_from(list(Lifecycle)),
    lead_score=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)))
company_rows = st.builds(
    CompanyInput, name=st.text(max_size=210), domain=st.one_of(st.none(), st.text(max_size=40), st.sampled_from(
        ["https://www.Acme.example/x", "acme", "xn--bcher-kva.example", "bücher.example", "a..b"])),
    industry=texts, country=countries, employees=st.one_of(st.none(), st.integers(-5, 10**7)),
    annual_revenue=st.one_of(st.none(), st.floats(allow_nan=True)))

CONTACT_FIELDS = set(ContactInput.model_fields) | {"first_name"}
COMPANY_FIELDS = set(CompanyInput.model_fields)


def _engine(tmp_path_factory):
    return new_sqlite_crm(tmp_path_factory.mktemp("props") / "crm.db")


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=contact_rows, row=st.integers(1, 10**6))
def test_contact_rows_are_cleaned_or_refused_by_field(tmp_path_factory, data, row):
    engine = getattr(test_contact_rows_are_cleaned_or_refused_by_field, "engine", None) or _engine(tmp_path_factory)
    test_contact_rows_are_cleaned_or_refused_by_field.engine = engine
    with session_scope(engine) as s:
        try:
            values = clean_contact(s, data, row=row)
        except ValidationFailed as exc:
            assert exc.field in CONTACT_FIELDS and exc.row == row and exc.reason
            return
    assert values["first_name"] or values["last_name"]
    assert values["phone"] is None or (values["phone"].startswith("+") and values["phone"][1:].isdigit())
    assert values["country"] is None or (len(values["country"]) == 2 and values["country"].isupper())
    assert values["email"] is None or values["email"] == values["email"].lower()
    assert values["lead_score"] is None or 0 <= values["lead_score"] <= 100
    contact_tokens(values["first_name"], values["last_name"], values["email"], values["phone"])  # never raises


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=company_rows)
def test_company_rows_are_cleaned_or_refused_by_field(tmp_path_factory, data):
    engine = getattr(test_company_rows_are_cleaned_or_refused_by_field, "engine", None) or _engine(tmp_path_factory)
    test_company_rows_are_cleaned_or_refused_by_field.engine = engine
    with session_scope(engine) as s:
        try:
            values = clean_company(s, data, row=7)
        except ValidationFailed as exc:
            assert exc.field in COMPANY_FIELDS and exc.row == 7
            return
    assert values["name"] and values["name_key"]
    assert values["domain"] is None or ("." in values["domain"] and values["domain"] == values["domain"].lower())


@settings(max_examples=500, deadline=None)
@given(text=st.text(max_size=60))
def test_any_search_text_parses(text):
    query = parse_query(text)
    assert all(term and len(term) <= 120 for term in query.terms)
