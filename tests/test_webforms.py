"""Web forms as an admin sets them up (token shown once, hashed, rotated, deactivated) and their submissions:
validated like a manual entry, matched by email, creating or filling a contact, with an event, audit rows and the
automations, all in one transaction. On SQLite and PostgreSQL."""
import hashlib
import threading

import pytest
from sqlalchemy import func
from sqlmodel import select

from crm.audit import data_version
from crm.automations.rules import RuleInput, create_rule
from crm.contacts import create_contact, delete_contact
from crm.customfields import create_field_def, set_values
from crm.db import read_scope, session_scope
from crm.errors import AuthenticationFailed, EditConflict, NotFound, PermissionDenied, ValidationFailed
from crm.models import (
    AuditLog, AutomationFiring, BehaviorEvent, Contact, ContactInput, CustomFieldDefBase, CustomFieldValue, Entity,
    FieldType, Role, WebForm,
)
from crm.tags import ensure_tag, tags_of
from crm.webforms import intake
from crm.webforms.forms import authenticate_form, create_form, list_forms, rotate_token, set_form_active, update_form
from crm.webforms.intake import submit_form
from tests.factories import actor, make_user

MAPPING = {"your-email": "email", "name": "first_name", "surname": "last_name", "tel": "phone",
           "country": "country", "town": "city", "news": "email_opt_in", "topics": "interests"}
ANN = {"your-email": "Ann.Archer@Example.COM", "name": "Ann", "surname": "Archer", "tel": "081 234 5678",
       "country": "th", "news": "on"}


def table_counts(engine) -> dict[str, int]:
    """What a refused submission must leave untouched: contacts, events, audit rows, custom values, the data version."""
    with read_scope(engine) as s:
        counts = {m.__tablename__: s.exec(select(func.count()).select_from(m)).one()
                  for m in (Contact, BehaviorEvent, AuditLog, CustomFieldValue)}
        counts["data_version"] = data_version(s)
    return counts


def new_form(engine, admin, *, key: str = "contact-us", mapping: dict | None = None, rate: int = 30):
    with session_scope(engine) as s:
        return create_form(session=s, actor=admin, key=key, name=f"Form {key}", mapping=mapping or MAPPING,
                           rate_limit_per_minute=rate)


def submit(engine, form, fields: dict, **kw):
    with session_scope(engine) as s:
        return submit_form(session=s, form_key=form.form.key, token=kw.pop("token", form.token), fields=fields, **kw)


def contact(engine, contact_id: int) -> Contact:
    with read_scope(engine) as s:
        return s.get(Contact, contact_id)


@pytest.fixture
def fired(monkeypatch):
    """The automation calls a submission makes, recorded instead of run (crm.automations has its own tests)."""
    calls = []

    def handle_event(*, session, event, entity, record_id, context=None):
        # Called inside the submission's transaction: the contact is already visible to it.
        calls.append({"event": event, "entity": entity, "record_id": record_id, "context": context,
                      "contact_seen": session.get(Contact, record_id) is not None})
        return [100 + len(calls)]

    monkeypatch.setattr(intake, "handle_event", handle_event)
    return calls


# --- setting forms up -------------------------------------------------------------------------------------------

def test_a_new_form_shows_its_token_once_and_stores_only_a_hash(engine, admin):
    made = new_form(engine, admin)
    assert len(made.token) >= 43  # 32 random bytes, URL-safe base64
    with read_scope(engine) as s:
        row = s.exec(select(WebForm)).one()
        audit_values = s.exec(select(AuditLog.new_value).where(AuditLog.entity == "web_form")).all()
    assert row.token_hash == "sha256$" + hashlib.sha256(made.token.encode()).hexdigest()
    assert made.form.token_fingerprint == row.token_hash[7:15]
    assert "token_hash" not in made.form.model_dump()
    # The audit trail names the token by its fingerprint: neither the token nor its full hash is in it.
    assert made.form.token_fingerprint in audit_values
    assert not any(v and (made.token in v or row.token_hash in v) for v in audit_values)
    assert (made.form.key, made.form.mapping, made.form.rate_limit_per_minute) == ("contact-us", MAPPING, 30)


def test_only_admins_set_up_and_see_forms(engine, admin):
    rep = actor(engine, make_user(engine, "rep"))
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        create_form(session=s, actor=rep, key="x", name="X", mapping=MAPPING)
    new_form(engine, admin)
    with read_scope(engine) as s, pytest.raises(PermissionDenied):
        list_forms(session=s, actor=rep)
    with read_scope(engine) as s:
        assert [f.key for f in list_forms(session=s, actor=admin)] == ["contact-us"]


@pytest.mark.parametrize(("settings", "field"), [
    ({"key": "Contact Us"}, "key"),  # upper case and a space
    ({"key": "-signup"}, "key"),  # must start with a letter or digit
    ({"key": "x" * 41}, "key"),  # 40 at most
    ({"key": "contact-us"}, "key"),  # taken by the form made first
    ({"name": "form CONTACT-US"}, "name"),  # taken, ignoring case
    ({"mapping": {}}, "mapping"),
    ({"mapping": {"name": "first_name"}}, "mapping"),  # no email
    ({"mapping": {"e": "email", "x": "lead_score"}}, "mapping"),  # not a form's to fill
    ({"mapping": {"e": "email", "e2": "email"}}, "mapping"),  # the same target twice
    ({"mapping": {"form_token": "email"}}, "mapping"),  # the token's own field
    ({"mapping": {"e": "email", "b": "cf.budget"}}, "mapping"),  # no such custom field
    ({"mapping": {"e": "email", "x": ["first_name"]}}, "mapping"),  # a target is a name
    ({"rate_limit_per_minute": 0}, "rate_limit_per_minute"),
    ({"rate_limit_per_minute": 10_001}, "rate_limit_per_minute"),
    ({"rate_limit_per_minute": True}, "rate_limit_per_minute"),
])
def test_form_settings_are_checked_naming_the_field(engine, admin, settings, field):
    new_form(engine, admin)
    before = table_counts(engine)
    args = {"key": "signup", "name": "Signup", "mapping": MAPPING, "rate_limit_per_minute": 30, **settings}
    with session_scope(engine) as s, pytest.raises(ValidationFailed) as caught:
        create_form(session=s, actor=admin, **args)
    assert caught.value.field == field
    assert table_counts(engine) == before


def test_a_custom_field_admins_may_not_edit_cannot_be_mapped(engine, admin):
    with session_scope(engine) as s:
        create_field_def(session=s, actor=admin, data=CustomFieldDefBase(
            entity=Entity.CONTACT, key="vip_note", label="VIP note", field_type=FieldType.TEXT,
            view_roles=[Role.ADMIN, Role.MANAGER], edit_roles=[Role.MANAGER]))
    with session_scope(engine) as s, pytest.raises(ValidationFailed, match="admins may not edit"):
        create_form(session=s, actor=admin, key="vip", name="VIP", mapping={"e": "email", "n": "cf.vip_note"})


def test_rotating_the_token_stops_the_old_one_at_once(engine, admin):
    made = new_form(engine, admin)
    with session_scope(engine) as s:
        rotated = rotate_token(session=s, actor=admin, form_id=made.form.id, seen_version=1)
    assert rotated.token != made.token and rotated.form.version == 2
    with read_scope(engine) as s:
        with pytest.raises(AuthenticationFailed):
            authenticate_form(session=s, form_key="contact-us", token=made.token)
        assert authenticate_form(session=s, form_key="contact-us", token=rotated.token).id == made.form.id
        row = s.exec(select(AuditLog).where(AuditLog.entity == "web_form", AuditLog.action == "update")).one()
    assert (row.field, row.old_value, row.new_value) == (
        "token_hash", made.form.token_fingerprint, rotated.form.token_fingerprint)
    with session_scope(engine) as s, pytest.raises(EditConflict):  # someone rotating from the page seen at version 1
        rotate_token(session=s, actor=admin, form_id=made.form.id, seen_version=1)


def test_a_deactivated_form_is_not_found_until_it_is_switched_back_on(engine, admin):
    made = new_form(engine, admin)
    with session_scope(engine) as s:
        off = set_form_active(session=s, actor=admin, form_id=made.form.id, active=False, seen_version=1)
    assert off.active is False
    with read_scope(engine) as s, pytest.raises(NotFound):
        authenticate_form(session=s, form_key="contact-us", token=made.token)
    with session_scope(engine) as s:
        set_form_active(session=s, actor=admin, form_id=made.form.id, active=True, seen_version=2)
    with read_scope(engine) as s:  # the same token works again
        assert authenticate_form(session=s, form_key="contact-us", token=made.token).active


def test_updating_a_form_changes_its_mapping_and_checks_the_version(engine, admin):
    made = new_form(engine, admin)
    with session_scope(engine) as s:
        view = update_form(session=s, actor=admin, form_id=made.form.id, name="Contact", seen_version=1,
                           mapping={"mail": "email", "first": "first_name"}, rate_limit_per_minute=5)
    assert (view.name, view.mapping, view.rate_limit_per_minute, view.version) == (
        "Contact", {"mail": "email", "first": "first_name"}, 5, 2)
    assert view.token_fingerprint == made.form.token_fingerprint  # the token stays
    with session_scope(engine) as s, pytest.raises(EditConflict):
        update_form(session=s, actor=admin, form_id=made.form.id, name="Other", mapping=MAPPING,
                    rate_limit_per_minute=5, seen_version=1)


# --- submissions ------------------------------------------------------------------------------------------------

def test_a_new_email_creates_a_contact_as_a_manual_entry_would(engine, admin, fired):
    made = new_form(engine, admin)
    before = table_counts(engine)
    result = submit(engine, made, {**ANN, "topics": ["golf", "chess"], "submit": "Send"},
                    page_url="https://example.com/contact")
    assert result.created and result.firings == (101,)
    c = contact(engine, result.contact_id)
    # Normalised like a typed entry: email lower-cased, the national number made E.164 with the given country.
    assert (c.email, c.phone, c.country, c.first_name, c.last_name) == (
        "ann.archer@example.com", "+66812345678", "TH", "Ann", "Archer")
    assert (c.email_opt_in, c.interests, c.lifecycle_stage, c.owner_id) == (True, ["chess", "golf"], "lead", None)
    assert c.source == "form:contact-us" and c.last_engaged_at is not None
    with read_scope(engine) as s:
        event = s.exec(select(BehaviorEvent)).one()
        rows = s.exec(select(AuditLog).where(AuditLog.entity == "contact")).all()
    assert (event.kind, event.contact_id, event.url) == ("form_submission", c.id, "https://example.com/contact")
    # The automations see the submission (its event names the occasion) inside its transaction.
    assert fired == [{"event": "form_submitted", "entity": "contact", "record_id": c.id,
                      "context": {"form_key": "contact-us", "event_id": event.id}, "contact_seen": True}]
    # The values as sent, mapped fields only (the submit button is not one).
    assert event.properties == {"form": "contact-us", "created": True,
                                "values": {**ANN, "topics": ["golf", "chess"]}}
    assert {r.actor_id for r in rows} == {None}  # the system, not a user
    assert {(r.action, r.context) for r in rows} == {("create", "web form contact-us"),
                                                     ("submitted", "web form contact-us")}
    assert table_counts(engine)["data_version"] > before["data_version"]


def test_a_known_email_fills_only_what_is_missing(engine, admin, fired):
    made = new_form(engine, admin)
    with session_scope(engine) as s:
        known = create_contact(session=s, actor=admin, data=ContactInput(
            first_name="Ann", email="ann.archer@example.com", phone="+66 2 123 4567", interests=["golf"]))
    result = submit(engine, made, {**ANN, "name": "Annie", "town": "Bangkok", "topics": "golf; chess"})
    c = contact(engine, known.id)
    assert (result.contact_id, result.created) == (known.id, False)
    assert result.filled == ("city", "country", "email_opt_in", "interests", "last_name")
    assert (c.first_name, c.phone) == ("Ann", "+6621234567")  # stored values win over the form's
    assert (c.last_name, c.city, c.country, c.email_opt_in) == ("Archer", "Bangkok", "TH", True)
    assert c.interests == ["chess", "golf"]  # added to, never replaced (and kept sorted, as the contact form does)
    assert c.version == known.version + 1 and c.source is None  # one edit; the source was someone else's to set
    with read_scope(engine) as s:
        updated = s.exec(select(AuditLog.field).where(AuditLog.entity == "contact", AuditLog.action == "update",
                                                      AuditLog.context == "web form contact-us")).all()
        event = s.exec(select(BehaviorEvent)).one()
    assert sorted(updated) == ["city", "country", "email_opt_in", "interests", "last_name"]
    assert event.properties["values"]["name"] == "Annie" and event.properties["created"] is False


def test_a_form_never_clears_a_value_nor_turns_a_flag_off(engine, admin, fired):
    made = new_form(engine, admin)
    with session_scope(engine) as s:
        known = create_contact(session=s, actor=admin, data=ContactInput(
            first_name="Ann", last_name="Archer", email="ann.archer@example.com", city="Bangkok", email_opt_in=True))
    result = submit(engine, made, {"your-email": "ann.archer@example.com", "name": "Ann", "town": "  ", "news": "no"})
    c = contact(engine, known.id)
    assert result.filled == () and (c.city, c.email_opt_in, c.version) == ("Bangkok", True, known.version)


def test_email_matching_ignores_case_skips_deleted_contacts_and_takes_the_oldest_twin(engine, admin, fired):
    made = new_form(engine, admin)
    with session_scope(engine) as s:
        gone = create_contact(session=s, actor=admin, data=ContactInput(first_name="Bob", email="bob@example.com"))
        delete_contact(session=s, actor=admin, contact_id=gone.id, seen_version=gone.version)
        # Two live contacts share an email (a duplicate the hygiene page has not merged yet): the oldest is filled.
        first = create_contact(session=s, actor=admin, data=ContactInput(first_name="Cy", email="cy@example.com"))
        create_contact(session=s, actor=admin, data=ContactInput(first_name="Cy 2", email="cy@example.com"))
    assert submit(engine, made, {"your-email": "CY@EXAMPLE.com", "name": "Cy"}).contact_id == first.id
    again = submit(engine, made, {"your-email": "bob@example.com", "name": "Bob"})
    assert again.created and again.contact_id != gone.id


def test_custom_fields_are_validated_and_filled_only_when_empty(engine, admin, fired):
    with session_scope(engine) as s:
        create_field_def(session=s, actor=admin, data=CustomFieldDefBase(
            entity=Entity.CONTACT, key="budget", label="Budget", field_type=FieldType.NUMBER, min_value=0))
    made = new_form(engine, admin, mapping={**MAPPING, "how-much": "cf.budget"})
    with pytest.raises(ValidationFailed) as caught:
        submit(engine, made, {**ANN, "how-much": "lots"})
    assert caught.value.field == "how-much"  # the form's own name for it
    first = submit(engine, made, {**ANN, "how-much": "1,500"})
    with session_scope(engine) as s:
        set_values(session=s, actor=admin, entity=Entity.CONTACT, record_id=first.contact_id, values={"budget": 900})
    second = submit(engine, made, {**ANN, "how-much": 2000})
    with read_scope(engine) as s:
        stored = s.exec(select(CustomFieldValue.value_number)).all()
    assert "cf.budget" in first.filled and "cf.budget" not in second.filled
    assert stored == [900.0]


def test_a_required_custom_field_the_form_does_not_fill_refuses_every_submission(engine, admin, fired):
    made = new_form(engine, admin)
    with session_scope(engine) as s:
        known = create_contact(session=s, actor=admin, data=ContactInput(first_name="Ann",
                                                                         email="ann.archer@example.com"))
        create_field_def(session=s, actor=admin, data=CustomFieldDefBase(
            entity=Entity.CONTACT, key="region", label="Region", field_type=FieldType.TEXT, required=True))
    # Known or not, the same answer: a caller cannot learn which emails the CRM holds from the errors.
    for email in ("ann.archer@example.com", "new@example.com"):
        with pytest.raises(ValidationFailed) as caught:
            submit(engine, made, {**ANN, "your-email": email})
        assert caught.value.field == "region"
    assert contact(engine, known.id).version == known.version


NUL, SURROGATE = "Ann\x00", "Ann\ud800"


@pytest.mark.parametrize(("change", "field"), [
    ({"your-email": "ann@"}, "your-email"),
    ({"your-email": ""}, "your-email"),  # the email is what a submission is matched by
    ({"tel": "12"}, "tel"),
    ({"country": "Thailandia"}, "country"),
    ({"name": "", "surname": None}, "name"),  # a contact needs a first or a last name
    ({"name": "A" * 101}, "name"),  # 100 characters at most, as on the contact form
    ({"name": ["Ann", "Anne"]}, "name"),  # one value expected
    ({"name": {"first": "Ann"}}, "name"),
    ({"name": True}, "name"),
    ({"tel": float("nan")}, "tel"),
    ({"tel": 10 ** 400}, "tel"),
    ({"name": NUL}, "name"),  # PostgreSQL cannot store it
    ({"name": SURROGATE}, "name"),  # not UTF-8
    ({"news": "perhaps"}, "news"),
    ({"topics": ["golf", 7]}, "topics"),
    ({"topics": ";".join(f"t{i}" for i in range(21))}, "topics"),  # 20 interests at most
])
def test_bad_input_is_refused_naming_the_form_field_and_nothing_is_written(engine, admin, fired, change, field):
    made = new_form(engine, admin)
    with session_scope(engine) as s:  # known or not, the answer is the same
        create_contact(session=s, actor=admin, data=ContactInput(first_name="Ann", email="ann.archer@example.com"))
    before = table_counts(engine)
    for email in ("ann.archer@example.com", "new@example.com"):
        fields = {**ANN, "your-email": email, **change} if "your-email" not in change else {**ANN, **change}
        with pytest.raises(ValidationFailed) as caught:
            submit(engine, made, fields)
        assert caught.value.field == field
    assert table_counts(engine) == before and fired == []


def test_a_wrong_or_missing_token_and_an_unknown_form_write_nothing(engine, admin, fired):
    made = new_form(engine, admin)
    before = table_counts(engine)
    for token in ("wrong", "", None, 12, made.token + "x", "é" * 10):
        with pytest.raises(AuthenticationFailed):
            submit(engine, made, ANN, token=token)
    with session_scope(engine) as s, pytest.raises(NotFound):
        submit_form(session=s, form_key="nope", token=made.token, fields=ANN)
    assert table_counts(engine) == before and fired == []


def test_a_rule_on_the_form_fires_once_per_submission(engine, admin):
    made = new_form(engine, admin)
    new_form(engine, admin, key="other")
    with session_scope(engine) as s:
        tag = ensure_tag(session=s, actor=admin, name="Asked for contact")
        create_rule(session=s, actor=admin, data=RuleInput(
            name="Tag contact-us leads", trigger="form_submitted", trigger_params={"form_key": "contact-us"},
            action="add_tag", action_params={"tag_id": tag.id}))
    first, second = submit(engine, made, ANN), submit(engine, made, ANN)
    assert len(first.firings) == len(second.firings) == 1 and first.firings != second.firings
    with read_scope(engine) as s:
        assert [t.name for t in tags_of(session=s, entity="contact", record_id=first.contact_id)] == [tag.name]
        occasions = s.exec(select(AutomationFiring.occasion).order_by(AutomationFiring.id)).all()
    assert occasions == [f"event {first.event_id}", f"event {second.event_id}"]


def test_an_automation_failing_undoes_the_whole_submission(engine, admin, monkeypatch):
    made = new_form(engine, admin)
    before = table_counts(engine)

    def broken(**_):
        raise RuntimeError("rule blew up")

    monkeypatch.setattr(intake, "handle_event", broken)
    with pytest.raises(RuntimeError):
        submit(engine, made, ANN)
    assert table_counts(engine) == before


def test_simultaneous_submissions_of_one_new_email_make_one_contact(engine, admin, fired):
    made = new_form(engine, admin)
    start, results, errors = threading.Barrier(4), [], []

    def post():
        start.wait()
        try:
            results.append(submit(engine, made, ANN))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({r.contact_id for r in results}) == 1 and sum(r.created for r in results) == 1
    with read_scope(engine) as s:
        assert s.exec(select(func.count()).select_from(Contact)).one() == 1
        assert s.exec(select(func.count()).select_from(BehaviorEvent)).one() == 4
