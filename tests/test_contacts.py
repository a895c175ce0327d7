"""Creating and editing contacts: validation by field, any script, E.164 phones, audit, conflicts."""
import pytest
from sqlmodel import select

from crm.contacts import create_contact, get_contact, update_contact
from crm.db import read_scope, session_scope
from crm.errors import EditConflict, NotFound, ValidationFailed
from crm.models import AuditLog, Contact, ContactInput
from tests.factories import actor, make_user


@pytest.mark.parametrize("first, last, phone, country, e164", [
    ("สมชาย", "ใจดี", "081 234 5678", "TH", "+66812345678"),         # Thai name, national format
    ("علی", "کریمی", "۰۹۱۲۳۴۵۶۷۸۹", "IR", "+989123456789"),          # Persian name and Persian digits
    ("小明", "王", "１３８ ００１３ ８０００", "CN", "+8613800138000"),  # full-width digits
    ("Giulia", "Bianchi", "+39 312 345 6789", None, "+393123456789"),  # international format, no country
])
def test_names_in_any_script_and_phones_stored_as_e164(engine, first, last, phone, country, e164):
    admin = make_user(engine, "admin")
    with session_scope(engine) as s:
        view = create_contact(session=s, actor=actor(engine, admin),
                              data=ContactInput(first_name=first, last_name=last, phone=phone, country=country))
    assert (view.first_name, view.last_name, view.phone) == (first, last, e164)


@pytest.mark.parametrize("data, field", [
    (dict(first_name="", last_name=""), "first_name"),
    (dict(email="bob@@example.com"), "email"),
    (dict(phone="12", country="TH"), "phone"),
    (dict(phone="0812345678"), "phone"),           # national number with no country to read it by
    (dict(country="Thailand"), "country"),
    (dict(lead_score=101), "lead_score"),
    (dict(company_id=404), "company_id"),
    (dict(job_title="x" * 151), "job_title"),
])
def test_validation_names_the_field_and_writes_nothing(engine, data, field):
    admin = make_user(engine, "admin")
    payload = {"first_name": "Valid", **data}
    with session_scope(engine) as s, pytest.raises(ValidationFailed) as err:
        create_contact(session=s, actor=actor(engine, admin), data=ContactInput(**payload))
    assert err.value.field == field
    with read_scope(engine) as s:
        assert s.exec(select(Contact)).all() == []


def test_email_is_normalised_and_name_key_supports_search(engine):
    admin = make_user(engine, "admin")
    with session_scope(engine) as s:
        view = create_contact(session=s, actor=actor(engine, admin),
                              data=ContactInput(first_name="José", last_name="ÁLVAREZ", email="Jose@Example.COM"))
        stored = s.get(Contact, view.id)
    assert view.email == "jose@example.com" and stored.name_key == "jose alvarez"


def test_an_edit_writes_one_audit_row_per_changed_field(engine):
    admin = make_user(engine, "admin")
    me = actor(engine, admin)
    with session_scope(engine) as s:
        view = create_contact(session=s, actor=me, data=ContactInput(first_name="Ann", city="Rome"))
    with session_scope(engine) as s:
        edited = update_contact(session=s, actor=me, contact_id=view.id, seen_version=1,
                                data=ContactInput(first_name="Ann", city="Milan", job_title="CTO"))
    with read_scope(engine) as s:
        rows = s.exec(select(AuditLog).where(AuditLog.entity == "contact", AuditLog.action == "update")).all()
    assert edited.version == 2
    assert {(r.field, r.old_value, r.new_value, r.record_version) for r in rows} == {
        ("city", "Rome", "Milan", 2), ("job_title", None, "CTO", 2)}


def test_saving_unchanged_data_changes_nothing(engine):
    admin = make_user(engine, "admin")
    me = actor(engine, admin)
    with session_scope(engine) as s:
        view = create_contact(session=s, actor=me, data=ContactInput(first_name="Same"))
    with session_scope(engine) as s:
        again = update_contact(session=s, actor=me, contact_id=view.id, seen_version=1,
                               data=ContactInput(first_name="Same", owner_id=view.owner_id))
    assert again.version == 1


def test_a_stale_edit_never_overwrites(engine):
    ravi, rosa = make_user(engine, "rep", team="East", name="Ravi"), make_user(engine, "manager", team="East")
    with session_scope(engine) as s:
        view = create_contact(session=s, actor=actor(engine, ravi), data=ContactInput(first_name="Pat", city="Oslo"))
    with session_scope(engine) as s:
        update_contact(session=s, actor=actor(engine, ravi), contact_id=view.id, seen_version=1,
                       data=ContactInput(first_name="Pat", city="Bergen", owner_id=ravi))
    with session_scope(engine) as s, pytest.raises(EditConflict) as err:
        update_contact(session=s, actor=actor(engine, rosa), contact_id=view.id, seen_version=1,
                       data=ContactInput(first_name="Pat", city="Tromsø", owner_id=ravi))
    assert "Ravi changed city" in err.value.message
    assert err.value.changes[0]["old"] == "Oslo" and err.value.changes[0]["new"] == "Bergen"
    with read_scope(engine) as s:
        assert s.get(Contact, view.id).city == "Bergen"


def test_deleted_contacts_are_not_found(engine):
    admin = make_user(engine, "admin")
    me = actor(engine, admin)
    with session_scope(engine) as s:
        view = create_contact(session=s, actor=me, data=ContactInput(first_name="Gone"))
        from crm.clock import utcnow
        s.get(Contact, view.id).deleted_at = utcnow()
    with read_scope(engine) as s, pytest.raises(NotFound):
        get_contact(session=s, actor=me, contact_id=view.id)
