"""Consistent formatting: the rules (name casing, E.164 phones, ISO countries, lower-case emails), the preview, the
apply of the chosen fixes, and the exact revert, checked by full table dumps; edits since, rights and erasure."""
import pytest
from sqlalchemy import select

from crm.audit import data_version
from crm.contacts import ContactInput, update_contact
from crm.db import read_scope, session_scope
from crm.errors import EditConflict, PermissionDenied, ValidationFailed
from crm.hygiene.formatting import apply_formatting, preview_formatting
from crm.hygiene.formatting_rules import Proposal, country_code, name_case
from crm.hygiene.jobs import revert_job
from crm.listing import ContactFilter, list_contacts
from crm.models import AuditLog, Contact, HygieneChange, SearchToken
from crm.privacy import erase_contact
from crm.search import reindex
from tests.factories import actor, make_user


@pytest.mark.parametrize(("raw", "last", "expected"), [
    ("JOHN", False, "John"),
    ("mary ann", False, "Mary Ann"),
    ("O'BRIEN", True, "O'Brien"),
    ("d'angelo", True, "D'Angelo"),
    ("mcdonald", True, "McDonald"),
    ("MACDONALD", True, "Macdonald"),  # Mac is left alone: Mack, Macy
    ("van der berg", True, "van der Berg"),  # particles stay small inside a surname
    ("VAN", True, "Van"),  # ... but not when they are the whole name
    ("van morrison", False, "Van Morrison"),  # ... nor as a first name's first word
    ("MARIA DEL CARMEN", False, "Maria del Carmen"),
    ("JEAN-PIERRE", False, "Jean-Pierre"),
    ("SMITH III", True, "Smith III"),
    ("JOHN'S", False, "John's"),  # a possessive, not an O' prefix
    ("ÉMILE", False, "Émile"),
    ("  john   smith ", False, "John Smith"),
    ("AJ", False, "AJ"),  # two capitals may be initials
    # Cased on purpose, or not in the Latin script: untouched.
    ("McDonald", True, "McDonald"), ("DeVito", True, "DeVito"), ("van Gogh", True, "van Gogh"),
    ("สมชาย", False, "สมชาย"), ("محمد", False, "محمد"), ("王", True, "王"), ("ΑΛΈΞΑΝΔΡΟΣ", False, "ΑΛΈΞΑΝΔΡΟΣ"),
    ("JOSÉ 王", False, "JOSÉ 王"),
])
def test_name_casing(raw, last, expected):
    assert name_case(raw, last_name=last) == expected


@pytest.mark.parametrize(("raw", "code"), [
    ("th", "TH"), (" gb ", "GB"), ("Thailand", "TH"), ("UK", "GB"), ("U.S.A.", "US"), ("Deutschland", "DE"),
    ("泰国", "TH"), ("ประเทศไทย", "TH"), ("", None), (None, None),
])
def test_country_codes(raw, code):
    assert country_code(raw) == code


def test_unknown_country_is_refused():
    with pytest.raises(ValueError, match="not a country"):
        country_code("XX")


# --- preview, apply, revert ---------------------------------------------------------------------------------------

MESSY = {  # first, last, email, phone, country
    "john": ("JOHN", "O'BRIEN", " John.OBrien@Example.COM", "081 234 5678", "th"),
    "mary": ("mary", "van der berg", None, "(201) 555-0123", "US"),
    "thai": ("สมชาย", "ใจดี", "somchai@example.co.th", "+66812345678", "TH"),  # nothing to do
    "ann": ("Ann", "McDonald", "ann@example.com", None, "uk"),
    "bad": ("Bad", "PHONE", None, "12", "US"),  # the phone cannot be fixed
    "lost": ("Lost", "Place", None, None, "XX"),  # nor the country
}


def messy_world(engine, owner_id=None) -> dict[str, int]:
    """Contacts stored as an old bulk load left them (the forms would have cleaned them), with search tokens."""
    with session_scope(engine) as s:
        rows = {k: Contact(first_name=f, last_name=la, email=e, phone=p, country=c, owner_id=owner_id,
                           name_key=f"{f} {la}".lower()) for k, (f, la, e, p, c) in MESSY.items()}
        rows["gone"] = Contact(first_name="GONE", last_name="AWAY", deleted_at=rows["john"].created_at)
        s.add_all(rows.values())
        s.flush()
        reindex(s, "contact", [r.id for r in rows.values()])
        return {k: r.id for k, r in rows.items()}


def fixes(preview) -> set[tuple]:
    return {(p.contact_id, p.field, p.before, p.after) for p in preview.proposals}


def test_preview_shows_before_and_after_per_record_and_field(engine, admin):
    ids = messy_world(engine)
    with read_scope(engine) as s:
        preview = preview_formatting(session=s, actor=admin)
    john, mary, ann, bad = ids["john"], ids["mary"], ids["ann"], ids["bad"]
    assert fixes(preview) == {
        (john, "first_name", "JOHN", "John"), (john, "last_name", "O'BRIEN", "O'Brien"),
        (john, "email", " John.OBrien@Example.COM", "john.obrien@example.com"),
        (john, "phone", "081 234 5678", "+66812345678"),  # read with the contact's country, TH
        (john, "country", "th", "TH"),
        (mary, "first_name", "mary", "Mary"), (mary, "last_name", "van der berg", "van der Berg"),
        (mary, "phone", "(201) 555-0123", "+12015550123"),
        (ann, "country", "uk", "GB"),
        (bad, "last_name", "PHONE", "Phone"),
    }  # the Thai contact, the deleted one and everything cased on purpose are left out
    assert {(p.contact_id, p.field) for p in preview.problems} == {(bad, "phone"), (ids["lost"], "country")}
    assert preview.names[john] == "JOHN O'BRIEN" and not preview.more
    with read_scope(engine) as s:
        only_names = preview_formatting(session=s, actor=admin, fields=("first_name",), limit=1)
    assert fixes(only_names) == {(john, "first_name", "JOHN", "John")} and only_names.more


TABLES = (Contact, SearchToken)


def table_state(engine, *models) -> dict[str, list]:
    """Every row of these tables, all columns, in a stable order (NULLs included), for before/after comparisons."""
    with read_scope(engine) as s:
        return {m.__tablename__: sorted((tuple(sorted(r._mapping.items())) for r in s.execute(select(m.__table__))),
                                        key=repr) for m in models}


def values_only(state: dict) -> dict:
    """Every value but a contact's version and updated_at, which a revert moves forward."""
    return {t: [tuple(kv for kv in row if not (t == "contact" and kv[0] in ("version", "updated_at")))
                for row in rows] for t, rows in state.items()}


def search(engine, who, text) -> list[str]:
    with read_scope(engine) as s:
        return [r.name for r in list_contacts(session=s, actor=who, filters=ContactFilter(query=text)).rows]


def test_apply_then_revert_restores_both_tables_exactly(engine, admin):
    ids = messy_world(engine)
    before = table_state(engine, *TABLES)
    assert search(engine, admin, "+1 201 555") == []  # "(201) 555-0123" has no country code yet
    with read_scope(engine) as s:
        preview = preview_formatting(session=s, actor=admin)
        cached = data_version(s)
    with session_scope(engine) as s:
        result = apply_formatting(session=s, actor=admin, proposals=preview.proposals)
    assert (result.contacts, result.fields, result.skipped_count) == (4, 10, 0)
    with read_scope(engine) as s:
        assert data_version(s) > cached
    with read_scope(engine) as s:
        john = s.get(Contact, ids["john"])
        trail = s.execute(select(AuditLog.field, AuditLog.old_value, AuditLog.new_value, AuditLog.record_version)
                          .where(AuditLog.record_id == john.id, AuditLog.context == f"hygiene:{result.job_id}")
                          .order_by(AuditLog.field)).all()
    assert (john.first_name, john.last_name, john.email, john.phone, john.country, john.version) == (
        "John", "O'Brien", "john.obrien@example.com", "+66812345678", "TH", 2)
    assert john.name_key == "john o'brien"
    assert trail[0] == ("country", "th", "TH", 2) and [t[0] for t in trail] == [
        "country", "email", "first_name", "last_name", "phone"]  # one audit row per field, name_key is derived
    assert search(engine, admin, "+1 201 555") == ["Mary van der Berg"]  # the search index follows the new phone
    with session_scope(engine) as s:
        back = revert_job(session=s, actor=admin, job_id=result.job_id)
    assert (back.restored, back.skipped_count) == (4, 0)
    assert values_only(table_state(engine, *TABLES)) == values_only(before)
    with read_scope(engine) as s:
        assert s.get(Contact, ids["john"]).version == 3


def test_apply_takes_only_the_chosen_fixes(engine, admin):
    ids = messy_world(engine)
    with read_scope(engine) as s:
        preview = preview_formatting(session=s, actor=admin)
    chosen = [p for p in preview.proposals if p.field in ("first_name", "country") and p.contact_id == ids["john"]]
    with session_scope(engine) as s:
        result = apply_formatting(session=s, actor=admin, proposals=chosen)
    with read_scope(engine) as s:
        john, mary = s.get(Contact, ids["john"]), s.get(Contact, ids["mary"])
    assert (result.contacts, result.fields) == (1, 2)
    assert (john.first_name, john.last_name, john.email, john.country) == (
        "John", "O'BRIEN", " John.OBrien@Example.COM", "TH")
    assert john.name_key == "john o'brien" and mary.first_name == "mary"


def test_contacts_edited_since_the_preview_are_skipped_and_named(engine, admin):
    ids = messy_world(engine)
    editor = actor(engine, make_user(engine, "admin", name="Eda Editor"))
    with read_scope(engine) as s:
        preview = preview_formatting(session=s, actor=admin)
    with session_scope(engine) as s:
        update_contact(session=s, actor=editor, contact_id=ids["mary"], data=ContactInput(job_title="CEO"),
                       seen_version=1)
    forged = Proposal(ids["ann"], 1, "country", "uk", "FR")  # not what the rules make of "uk"
    kept = [p for p in preview.proposals if p.contact_id != ids["ann"]] + [forged]
    with session_scope(engine) as s:
        result = apply_formatting(session=s, actor=admin, proposals=kept)
    reasons = {x.record_id: x.reason for x in result.skipped}
    assert result.contacts == 2 and result.skipped_count == 2  # John and Bad changed; Mary and Ann skipped
    # The form's save cleaned Mary's phone as well: the validators run on every field of an edit.
    assert reasons[ids["mary"]] == "edited by Eda Editor (phone, job_title) after the preview"
    assert reasons[ids["ann"]] == "its values are not those the preview showed"
    with read_scope(engine) as s:
        assert (s.get(Contact, ids["mary"]).first_name, s.get(Contact, ids["ann"]).country) == ("mary", "uk")


def test_revert_refuses_then_skips_contacts_edited_since(engine, admin):
    ids = messy_world(engine)
    with read_scope(engine) as s:
        preview = preview_formatting(session=s, actor=admin)
    with session_scope(engine) as s:
        job_id = apply_formatting(session=s, actor=admin, proposals=preview.proposals).job_id
    with session_scope(engine) as s:
        update_contact(session=s, actor=admin, contact_id=ids["john"], data=ContactInput(last_name="Brien"),
                       seen_version=2)
    with session_scope(engine) as s, pytest.raises(EditConflict, match=f"contact {ids['john']}: edited by"):
        revert_job(session=s, actor=admin, job_id=job_id)
    with read_scope(engine) as s:
        assert s.get(Contact, ids["mary"]).first_name == "Mary"  # the refused revert changed nothing
    with session_scope(engine) as s:
        result = revert_job(session=s, actor=admin, job_id=job_id, skip_edited=True)
    assert (result.restored, result.skipped_count) == (3, 1) and "last_name" in result.skipped[0].reason
    with read_scope(engine) as s:
        john, mary = s.get(Contact, ids["john"]), s.get(Contact, ids["mary"])
    assert (john.first_name, john.last_name) == ("John", "Brien") and mary.first_name == "mary"


def test_rights_and_scope(engine):
    manager = actor(engine, make_user(engine, "manager", team="East"))
    west = make_user(engine, "rep", team="West")
    messy_world(engine, owner_id=west)
    mine = messy_world(engine, owner_id=manager.id)
    with read_scope(engine) as s:
        preview = preview_formatting(session=s, actor=manager)
    assert {p.contact_id for p in preview.proposals} == {mine["john"], mine["mary"], mine["ann"], mine["bad"]}
    for role in ("rep", "marketer"):
        who = actor(engine, make_user(engine, role))
        with read_scope(engine) as s, pytest.raises(PermissionDenied):
            preview_formatting(session=s, actor=who)
        with session_scope(engine) as s, pytest.raises(PermissionDenied):
            apply_formatting(session=s, actor=who, proposals=preview.proposals)
    with read_scope(engine) as s, pytest.raises(ValidationFailed, match="fields"):
        preview_formatting(session=s, actor=manager, fields=("job_title",))


def test_erasure_clears_the_values_a_job_kept(engine, admin):
    ids = messy_world(engine)
    with read_scope(engine) as s:
        preview = preview_formatting(session=s, actor=admin)
    with session_scope(engine) as s:
        job_id = apply_formatting(session=s, actor=admin, proposals=preview.proposals).job_id
    with session_scope(engine) as s:
        erase_contact(session=s, actor=admin, contact_id=ids["john"])
    with read_scope(engine) as s:
        kept = s.execute(select(HygieneChange.before, HygieneChange.after)
                         .where(HygieneChange.job_id == job_id, HygieneChange.record_id == ids["john"])).one()
    assert kept == ({}, {})
    with session_scope(engine) as s:
        result = revert_job(session=s, actor=admin, job_id=job_id, skip_edited=True)
    assert result.skipped_count == 1 and result.skipped[0].record_id == ids["john"]  # restores nothing personal
