"""Property tests: validators never crash on any input; they return clean values or a typed error."""
import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from crm.errors import ValidationFailed
from crm.text import normalize_name
from crm.validation import normalize_country, normalize_email, normalize_phone

ANY_TEXT = st.text(max_size=80)
REGIONS = st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS))


@settings(max_examples=400, deadline=None)
@given(raw=ANY_TEXT, country=st.one_of(st.none(), REGIONS))
def test_phone_is_e164_or_a_field_error(raw, country):
    try:
        e164 = normalize_phone(raw, country=country)
    except ValidationFailed as err:
        assert err.field == "phone"
        return
    assert e164 is None or (e164.startswith("+") and e164[1:].isdigit()
                            and phonenumbers.is_valid_number(phonenumbers.parse(e164)))


@settings(max_examples=400, deadline=None)
@given(raw=st.one_of(ANY_TEXT, st.emails()))
def test_email_is_lowercase_or_a_field_error(raw):
    try:
        email = normalize_email(raw)
    except ValidationFailed as err:
        assert err.field == "email"
        return
    assert email is None or (email == email.lower() and "@" in email)


@settings(max_examples=200, deadline=None)
@given(raw=ANY_TEXT)
def test_country_is_a_supported_iso_code_or_a_field_error(raw):
    try:
        code = normalize_country(raw)
    except ValidationFailed as err:
        assert err.field == "country"
        return
    assert code is None or code in phonenumbers.SUPPORTED_REGIONS


@settings(max_examples=400, deadline=None)
@given(raw=ANY_TEXT)
def test_name_normalisation_is_idempotent(raw):
    once = normalize_name(raw)
    assert normalize_name(once) == once


def test_name_normalisation_across_scripts():
    assert normalize_name("  José   ÁLVAREZ ") == "jose alvarez"
    assert normalize_name("Ｊｏｈｎ") == "john"                       # full-width Latin
    assert normalize_name("علي كريمي") == normalize_name("علی کریمی")  # Arabic vs Persian yeh and kaf
    assert normalize_name("สมชาย") == "สมชาย"                         # Thai vowel marks are kept
    assert normalize_name("สมชาย") != normalize_name("สมชาย".replace("\u0e32", ""))
    assert normalize_name("王小明") == "王小明"
