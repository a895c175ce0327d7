"""Custom fields: definitions, typed values with their rules, per-role rights, values queryable in SQL."""
from datetime import date

import pytest
from sqlmodel import select

from crm.contacts import create_contact, update_contact
from crm.customfields import archive_field_def, create_field_def, get_values, list_field_defs, parse_value
from crm.db import read_scope, session_scope
from crm.errors import PermissionDenied, ValidationFailed
from crm.models import ContactInput, CustomFieldDef, CustomFieldDefBase, CustomFieldDefView, CustomFieldValue, Role
from tests.factories import actor, make_user


def field(**kw) -> CustomFieldDefView:
    base = dict(id=1, version=1, entity="contact", key="f", label="F", field_type="text")
    return CustomFieldDefView(**{**base, **kw})


@pytest.mark.parametrize("definition, raw, expected", [
    (dict(field_type="number", min_value=0, max_value=10), "10", 10.0),      # max is inclusive
    (dict(field_type="number", min_value=0, max_value=10), "0", 0.0),        # min is inclusive
    (dict(field_type="number"), "1,250.5", 1250.5),
    (dict(field_type="checkbox"), "Yes", True),
    (dict(field_type="checkbox"), "0", False),
    (dict(field_type="date"), "2026-02-28", date(2026, 2, 28)),
    (dict(field_type="dropdown", options=["Gold", "Silver"]), "Gold", "Gold"),
    (dict(field_type="text", regex=r"[A-Z]{2}-\d{4}"), "AB-1234", "AB-1234"),
    (dict(field_type="text"), "   ", None),                                  # blank and optional: no value
])
def test_values_parse_to_their_type(definition, raw, expected):
    assert parse_value(field(**definition), raw) == expected


@pytest.mark.parametrize("definition, raw, reason", [
    (dict(field_type="number", min_value=0, max_value=10), "10.01", "at most 10"),
    (dict(field_type="number", min_value=0), "-0.5", "at least 0"),
    (dict(field_type="number"), "ten", "not a number"),
    (dict(field_type="number"), "nan", "finite"),
    (dict(field_type="checkbox"), "maybe", "yes/no"),
    (dict(field_type="date"), "2026-02-30", "not a date"),
    (dict(field_type="dropdown", options=["Gold"]), "gold", "not one of"),
    (dict(field_type="text", regex=r"[A-Z]{2}-\d{4}"), "AB-12345", "pattern"),
    (dict(field_type="text", required=True), "", "required"),
])
def test_bad_values_are_rejected_with_the_field_and_row(definition, raw, reason):
    with pytest.raises(ValidationFailed, match=reason) as err:
        parse_value(field(key="tier", **definition), raw, row=7)
    assert err.value.field == "tier" and err.value.row == 7 and str(err.value).startswith("row 7, tier:")


@pytest.mark.parametrize("definition, bad_field", [
    (dict(field_type="text", regex="(unclosed"), "regex"),
    (dict(field_type="number", regex="x"), "regex"),
    (dict(field_type="number", min_value=5, max_value=1), "max_value"),
    (dict(field_type="dropdown", options=[]), "options"),
    (dict(field_type="dropdown", options=["A", "A"]), "options"),
    (dict(field_type="text", options=["A"]), "options"),
    (dict(field_type="text", view_roles=["admin"], edit_roles=["admin", "rep"]), "edit_roles"),
])
def test_bad_definitions_are_rejected(engine, definition, bad_field):
    admin = make_user(engine, "admin")
    data = CustomFieldDefBase(entity="contact", key="x", label="X", **definition)
    with session_scope(engine) as s, pytest.raises(ValidationFailed) as err:
        create_field_def(session=s, actor=actor(engine, admin), data=data)
    assert err.value.field == bad_field


def test_view_and_edit_roles_apply_on_top_of_record_rights(engine):
    admin, rep = make_user(engine, "admin"), make_user(engine, "rep", team="East")
    with session_scope(engine) as s:
        create_field_def(session=s, actor=actor(engine, admin), data=CustomFieldDefBase(
            entity="contact", key="discount_cap", label="Discount cap", field_type="number",
            view_roles=[Role.ADMIN, Role.MANAGER], edit_roles=[Role.ADMIN]))
        create_field_def(session=s, actor=actor(engine, admin), data=CustomFieldDefBase(
            entity="contact", key="nickname", label="Nickname", field_type="text"))
        contact = create_contact(session=s, actor=actor(engine, admin),
                                 data=ContactInput(first_name="Kai", owner_id=rep), custom={"discount_cap": 15})
    with read_scope(engine) as s:
        assert [f.key for f in list_field_defs(session=s, actor=actor(engine, rep), entity="contact")] == ["nickname"]
        assert get_values(session=s, actor=actor(engine, rep), entity="contact", record_id=contact.id) == {}
        assert get_values(session=s, actor=actor(engine, admin), entity="contact", record_id=contact.id) == {
            "discount_cap": 15.0}
    with session_scope(engine) as s, pytest.raises(PermissionDenied, match="Discount cap"):
        update_contact(session=s, actor=actor(engine, rep), contact_id=contact.id, seen_version=contact.version,
                       data=ContactInput(first_name="Kai", owner_id=rep), custom={"discount_cap": 50})


def test_values_are_typed_columns_queryable_in_sql(engine):
    admin = make_user(engine, "admin")
    me = actor(engine, admin)
    with session_scope(engine) as s:
        spec = create_field_def(session=s, actor=me, data=CustomFieldDefBase(
            entity="contact", key="seats", label="Seats", field_type="number"))
        for name, seats in [("Small", 5), ("Mid", 50), ("Large", 500)]:
            create_contact(session=s, actor=me, data=ContactInput(first_name=name), custom={"seats": seats})
    with read_scope(engine) as s:
        big = s.exec(select(CustomFieldValue.record_id).where(
            CustomFieldValue.field_id == spec.id, CustomFieldValue.value_number >= 50)).all()
    assert len(big) == 2


def test_required_custom_field_is_enforced_on_create(engine):
    admin = make_user(engine, "admin")
    with session_scope(engine) as s:
        create_field_def(session=s, actor=actor(engine, admin), data=CustomFieldDefBase(
            entity="contact", key="region", label="Region", field_type="dropdown", options=["EMEA", "APAC"],
            required=True))
    with session_scope(engine) as s, pytest.raises(ValidationFailed) as err:
        create_contact(session=s, actor=actor(engine, admin), data=ContactInput(first_name="No region"))
    assert err.value.field == "region"


def test_archiving_hides_a_field_but_keeps_its_values(engine):
    admin = make_user(engine, "admin")
    me = actor(engine, admin)
    with session_scope(engine) as s:
        spec = create_field_def(session=s, actor=me, data=CustomFieldDefBase(
            entity="contact", key="legacy_id", label="Legacy id", field_type="text"))
        create_contact(session=s, actor=me, data=ContactInput(first_name="Old"), custom={"legacy_id": "L-1"})
        archive_field_def(session=s, actor=me, field_id=spec.id, seen_version=1)
    with read_scope(engine) as s:
        assert list_field_defs(session=s, actor=me, entity="contact") == []
        assert s.exec(select(CustomFieldValue).where(CustomFieldValue.field_id == spec.id)).one().value_text == "L-1"
        assert s.get(CustomFieldDef, spec.id).deleted_at is not None
