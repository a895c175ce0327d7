"""Imports, on SQLite and PostgreSQL: contacts end to end, upserts, dry runs, error files, custom fields, rights."""
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm.db import read_scope, session_scope
from crm.errors import PermissionDenied, ValidationFailed
from crm.imports import Mapping, run_import
from crm.models import (
    AuditLog, Company, Contact, ContactTag, CustomFieldDef, CustomFieldValue, ImportChange, ImportJob, SearchToken, Tag,
)
from crm.search import reindex
from tests.factories import actor, make_user


def csv(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


def run(engine, entity: str, data: bytes, *, who=None, mapping: dict | None = None, dry_run: bool = False,
        tmp: Path | None = None, filename: str = "file.csv"):
    with session_scope(engine) as s:
        return run_import(session=s, actor=who, entity=entity, source=data, filename=filename, dry_run=dry_run,
                          mapping=Mapping.model_validate({"entity": entity, **mapping}) if mapping else None,
                          error_dir=tmp)


def count(engine, model, *where) -> int:
    with read_scope(engine) as s:
        return s.execute(select(func.count()).select_from(model).where(*where)).scalar()


def table_state(engine, *models) -> dict:
    """Every row of these tables, for before/after comparisons."""
    with read_scope(engine) as s:
        return {m.__tablename__: sorted(tuple(sorted(r._mapping.items())) for r in s.execute(select(m.__table__)))
                for m in models}


PEOPLE = csv(
    "Contact ID,First name,Last name,Email,Phone,Country,Lifecycle stage,Opted in",
    "C1,Anna,Smith,Anna@Example.com,(201) 555-0123,US,lead,yes",
    "C2,Ben,,ben@example.com,,GB,customer,no",
    "C3,,,nobody@example.com,,US,lead,",            # boundary: no name at all
    "C4,Dora,Diaz,not-an-email,,US,lead,",          # bad email
    "C5,Eve,Evans,eve@example.com,12,US,lead,",     # bad phone
    "C6,Finn,Fox,finn@example.com,,Narnia,lead,",  # unknown country
    "C7,Gus,Grey,gus@example.com,,US,vip,",        # unknown lifecycle stage
    "C8,Hana,Ito,hana@example.com,,JP,mql,maybe",  # not yes/no
)


def test_good_rows_land_and_every_bad_row_is_reported(engine, admin, tmp_path):
    summary = run(engine, "contacts", PEOPLE, who=admin, tmp=tmp_path)
    assert (summary.created, summary.updated, summary.unchanged, summary.rejected) == (2, 0, 0, 6)
    reasons = {(p.row, p.column): p.reason for p in summary.problems}
    assert set(reasons) == {(4, "First name"), (5, "Email"), (6, "Phone"), (7, "Country"), (8, "Lifecycle stage"),
                            (9, "Opted in")}
    assert "needs a first or a last name" in reasons[(4, "First name")]
    assert "did you mean" not in reasons[(7, "Country")]
    with read_scope(engine) as s:
        anna = s.execute(select(Contact).where(Contact.external_id == "C1")).scalar_one()
    assert (anna.email, anna.phone, anna.email_opt_in, anna.lifecycle_stage) == (
        "anna@example.com", "+12015550123", True, "lead")
    error_file = Path(summary.error_file)
    assert error_file.parent == tmp_path
    lines = error_file.read_bytes().decode("utf-8-sig").splitlines()
    assert lines[0] == '"row","column","value","reason"'
    assert len(lines) == 1 + 6 and lines[1].startswith('"4","First name",')


def test_rerunning_the_same_file_changes_nothing_and_writes_no_audit(engine, admin, tmp_path):
    run(engine, "contacts", PEOPLE, who=admin, tmp=tmp_path)
    audit_rows = count(engine, AuditLog)
    again = run(engine, "contacts", PEOPLE, who=admin, tmp=tmp_path)
    assert (again.created, again.updated, again.unchanged, again.rejected) == (0, 0, 2, 6)
    assert count(engine, AuditLog) == audit_rows
    assert count(engine, ImportChange, ImportChange.job_id == again.job_id) == 0


def test_created_records_are_audited_with_the_import_context(engine, admin, tmp_path):
    summary = run(engine, "contacts", PEOPLE, who=admin, tmp=tmp_path)
    with read_scope(engine) as s:
        rows = s.execute(select(AuditLog).where(AuditLog.context == f"import:{summary.job_id}")).scalars().all()
    assert [(r.entity, r.action, r.actor_id, r.record_version) for r in rows] == [
        ("contact", "create", admin.id, 1)] * 2


def test_upsert_by_external_id_then_email_patches_only_given_cells(engine, admin, tmp_path):
    run(engine, "contacts", PEOPLE, who=admin, tmp=tmp_path)
    update = csv("Contact ID,Email,Job title,Phone",
                 "C1,,CEO,",                      # by external id; blank cells keep what is stored
                 ",BEN@example.com,Buyer,",      # by email, case-insensitively
                 "C9,new@example.com,Intern,")    # a new contact
    summary = run(engine, "contacts", update, who=admin, tmp=tmp_path)
    assert (summary.created, summary.updated, summary.unchanged, summary.rejected) == (0, 2, 0, 1)
    assert summary.problems[0].reason == "a contact needs a first or a last name"
    with read_scope(engine) as s:
        anna = s.execute(select(Contact).where(Contact.external_id == "C1")).scalar_one()
        changes = s.execute(select(AuditLog.record_id, AuditLog.field, AuditLog.old_value, AuditLog.new_value,
                                   AuditLog.record_version)
                            .where(AuditLog.context == f"import:{summary.job_id}").order_by(AuditLog.id)).all()
    assert (anna.job_title, anna.phone, anna.version) == ("CEO", "+12015550123", 2)
    assert [(f, o, n, v) for _, f, o, n, v in changes] == [("job_title", None, "CEO", 2),
                                                           ("job_title", None, "Buyer", 2)]


def test_two_keys_naming_different_records_are_rejected_not_merged(engine, admin, tmp_path):
    run(engine, "contacts", PEOPLE, who=admin, tmp=tmp_path)
    summary = run(engine, "contacts", csv("Contact ID,Email,First name", "C1,ben@example.com,Mix"), who=admin,
                  tmp=tmp_path)
    assert summary.rejected == 1 and "match different records" in summary.problems[0].reason


def test_a_record_appears_once_per_file(engine, admin, tmp_path):
    data = csv("Email,First name", "a@example.com,One", "A@example.com,Two", "b@example.com,Three")
    summary = run(engine, "contacts", data, who=admin, tmp=tmp_path)
    assert (summary.created, summary.rejected) == (2, 1)
    assert summary.problems[0].row == 3 and "same email as row 2" in summary.problems[0].reason


def test_dry_run_previews_exactly_what_a_commit_does_and_writes_nothing(engine, admin, tmp_path):
    before = table_state(engine, Contact, AuditLog, ImportChange, SearchToken)
    preview = run(engine, "contacts", PEOPLE, who=admin, dry_run=True, tmp=tmp_path)
    assert table_state(engine, Contact, AuditLog, ImportChange, SearchToken) == before
    assert [(p["row"], p["action"]) for p in preview.preview] == [(2, "create"), (3, "create")]
    committed = run(engine, "contacts", PEOPLE, who=admin, tmp=tmp_path)
    assert (preview.created, preview.rejected, preview.problems) == (committed.created, committed.rejected,
                                                                      committed.problems)
    with read_scope(engine) as s:
        assert s.get(ImportJob, preview.job_id).dry_run is True


def test_search_tokens_of_imported_records_are_what_reindex_makes(engine, admin, tmp_path):
    run(engine, "contacts", PEOPLE, who=admin, tmp=tmp_path)
    run(engine, "companies", csv("Name,Domain", "Acme Ltd,https://www.acme.example/"), who=admin, tmp=tmp_path)
    imported = table_state(engine, SearchToken)
    with session_scope(engine) as s:
        for entity, model in (("contact", Contact), ("company", Company)):
            reindex(s, entity, s.execute(select(model.id)).scalars().all())
    assert table_state(engine, SearchToken) == imported
    assert any(t[2] == ("token", "acme.example") for t in imported["search_token"])


def test_explicit_value_maps_fix_values_on_purpose(engine, admin, tmp_path):
    data = csv("Email,First name,Country,Stage", "a@example.com,Ann,Untied States,Lead", "b@example.com,Bo,UK,Client")
    first = run(engine, "contacts", data, who=admin, tmp=tmp_path)
    assert first.rejected == 2
    assert "did you mean 'United States'" in first.problems[0].reason
    fixed = run(engine, "contacts", data, who=admin, tmp=tmp_path, mapping={
        "columns": {"Email": "email", "First name": "first_name", "Country": "country", "Stage": "lifecycle_stage"},
        "values": {"Country": {"Untied States": "US"}, "lifecycle_stage": {"client": "customer"}}})
    assert (fixed.created, fixed.rejected) == (2, 0)


def test_unmapped_columns_are_reported_as_ignored(engine, admin, tmp_path):
    summary = run(engine, "contacts", csv("Email,First name,Shoe size", "a@example.com,Ann,42"), who=admin,
                  tmp=tmp_path)
    assert summary.ignored_columns == ["Shoe size"]


def test_new_custom_field_with_inferred_type_then_unchanged_rerun(engine, admin, tmp_path):
    data = csv("Email,First name,Shoe size,Since", "a@example.com,Ann,42,2020-01-31", "b@example.com,Bo,x,")
    mapping = {"columns": {"Email": "email", "First name": "first_name", "Shoe size": "custom:shoe_size",
                           "Since": "custom:since"},
               "custom_fields": {"since": {"label": "Customer since", "type": "date"}}}
    summary = run(engine, "contacts", data, who=admin, tmp=tmp_path, mapping=mapping)
    assert summary.also_created == {"custom_field_def": 2}
    # The shoe size column holds "x", so its inferred type is text; the explicit date type is kept.
    with read_scope(engine) as s:
        kinds = dict(s.execute(select(CustomFieldDef.key, CustomFieldDef.field_type)).all())
        assert kinds == {"shoe_size": "text", "since": "date"}
        assert count(engine, CustomFieldValue) == 3
    again = run(engine, "contacts", data, who=admin, tmp=tmp_path, mapping=mapping)
    assert (again.created, again.updated, again.unchanged, again.also_created) == (0, 0, 2, {})


def test_custom_values_are_validated_per_row(engine, admin, tmp_path):
    mapping = {"columns": {"Email": "email", "First name": "first_name", "Size": "custom:size"},
               "custom_fields": {"size": {"label": "Size", "type": "number"}}}
    summary = run(engine, "contacts", csv("Email,First name,Size", "a@example.com,Ann,41", "b@example.com,Bo,big"),
                  who=admin, tmp=tmp_path, mapping=mapping)
    assert (summary.created, summary.rejected) == (1, 1)
    assert (summary.problems[0].column, summary.problems[0].reason) == ("Size", "'big' is not a number")


def test_updating_a_custom_value_is_audited_and_bumps_the_version(engine, admin, tmp_path):
    mapping = {"columns": {"Email": "email", "First name": "first_name", "Size": "custom:size"},
               "custom_fields": {"size": {"label": "Size", "type": "number"}}}
    run(engine, "contacts", csv("Email,First name,Size", "a@example.com,Ann,41"), who=admin, tmp=tmp_path,
        mapping=mapping)
    summary = run(engine, "contacts", csv("Email,First name,Size", "a@example.com,Ann,43"), who=admin, tmp=tmp_path,
                  mapping=mapping)
    assert summary.updated == 1
    with read_scope(engine) as s:
        contact = s.execute(select(Contact)).scalar_one()
        audit = s.execute(select(AuditLog.field, AuditLog.old_value, AuditLog.new_value, AuditLog.record_version)
                          .where(AuditLog.context == f"import:{summary.job_id}")).all()
    assert contact.version == 2 and audit == [("cf.size", "41.0", "43.0", 2)]


def test_tags_are_created_and_added_never_removed(engine, admin, tmp_path):
    run(engine, "contacts", csv("Email,First name,Tags", "a@example.com,Ann,VIP; Newsletter"), who=admin, tmp=tmp_path)
    summary = run(engine, "contacts", csv("Email,First name,Tags", "a@example.com,Ann,vip;Partner"), who=admin,
                  tmp=tmp_path)
    assert (summary.updated, summary.also_created) == (1, {"tag": 1})
    with read_scope(engine) as s:
        names = s.execute(select(Tag.name).join(ContactTag, ContactTag.tag_id == Tag.id).order_by(Tag.name)).scalars()
        assert list(names) == ["Newsletter", "Partner", "VIP"]


def test_a_file_naming_a_deleted_tag_restores_it_and_a_revert_deletes_it_again(engine, admin, tmp_path):
    from crm.hygiene.tag_cleanup import delete_tags
    from crm.imports import revert_import
    from crm.tags import ensure_tag
    with session_scope(engine) as s:
        old = ensure_tag(session=s, actor=admin, name="Old").id
        delete_tags(session=s, actor=admin, tag_ids=[old])
    summary = run(engine, "contacts", csv("Email,First name,Tags", "a@example.com,Ann,old"), who=admin, tmp=tmp_path)
    assert summary.also_created == {}  # restored, not created: the name is unique, deleted or not
    with read_scope(engine) as s:
        assert s.get(Tag, old).deleted_at is None
        assert s.execute(select(ContactTag.tag_id)).scalars().all() == [old]
    with session_scope(engine) as s:
        revert_import(session=s, actor=admin, job_id=summary.job_id)
    with read_scope(engine) as s:
        assert s.get(Tag, old).deleted_at is not None and not s.execute(select(ContactTag.tag_id)).all()


def test_references_by_name_are_exact_but_case_and_space_insensitive(engine, admin, tmp_path):
    run(engine, "companies", csv("Name,Domain", "Acme Trading,acme.example"), who=admin, tmp=tmp_path)
    owner = make_user(engine, "rep", name="Rita Rep")
    data = csv("Email,First name,Company,Owner", "a@example.com,Ann,  acme   TRADING ,rita rep",
               "b@example.com,Bo,Acme Tradng,Rita Rep", "c@example.com,Cy,acme.example,")
    summary = run(engine, "contacts", data, who=admin, tmp=tmp_path)
    assert (summary.created, summary.rejected) == (2, 1)
    assert summary.problems[0].reason == "unknown company 'Acme Tradng' (did you mean 'Acme Trading'?)"
    with read_scope(engine) as s:
        rows = s.execute(select(Contact.email, Contact.company_id, Contact.owner_id).order_by(Contact.email)).all()
    assert [(e, c is not None, o) for e, c, o in rows] == [("a@example.com", True, owner),
                                                           ("c@example.com", True, None)]


def test_rights_are_checked_in_the_domain(engine, tmp_path):
    rep = actor(engine, make_user(engine, "rep"))
    with pytest.raises(PermissionDenied, match="may not import contacts"):
        run(engine, "contacts", PEOPLE, who=rep, tmp=tmp_path)
    marketer = actor(engine, make_user(engine, "marketer"))
    assert run(engine, "contacts", PEOPLE, who=marketer, tmp=tmp_path).created == 2
    with pytest.raises(PermissionDenied, match="only admins may create custom fields"):
        run(engine, "contacts", csv("Email,Size", "a@example.com,1"), who=marketer, tmp=tmp_path,
            mapping={"columns": {"Email": "email", "Size": "custom:size"}})
    with pytest.raises(PermissionDenied, match="may not import users"):
        run(engine, "users", csv("Name", "Ann"), who=marketer, tmp=tmp_path)
    assert count(engine, ImportJob, ImportJob.entity == "users") == 0


def test_a_mapping_without_the_required_columns_is_refused(engine, admin, tmp_path):
    with pytest.raises(ValidationFailed, match="companies need a column for name"):
        run(engine, "companies", csv("Domain", "acme.example"), who=admin, tmp=tmp_path)


def test_ragged_rows_are_rejected_and_their_neighbours_land(engine, admin, tmp_path):
    summary = run(engine, "contacts", csv("Email,First name", "a@example.com,Ann", "b@example.com,Bo,extra",
                                          "c@example.com,Cy"), who=admin, tmp=tmp_path)
    assert (summary.created, summary.rejected) == (2, 1)
    assert summary.problems[0].row == 3 and "3 cells but the header has 2" in summary.problems[0].reason


def test_error_file_neutralises_formulas(engine, admin, tmp_path):
    summary = run(engine, "contacts", csv("Email,First name", "=HYPERLINK(\"http://x\"),Ann"), who=admin, tmp=tmp_path)
    text = Path(summary.error_file).read_bytes().decode("utf-8-sig")
    assert "\"'=HYPERLINK" in text


def test_ambiguous_dates_are_rejected_until_the_order_is_chosen(engine, admin, tmp_path):
    data = csv("Subject,Kind,Date,ID", "Call Ann,call,01/02/2024,A1", "Call Bo,call,2024-02-03,A2")
    summary = run(engine, "activities", data, who=admin, tmp=tmp_path)
    assert (summary.created, summary.rejected, summary.date_order) == (1, 1, None)
    assert "ambiguous" in summary.problems[0].reason and any("date order" in w for w in summary.warnings)
    chosen = run(engine, "activities", data, who=admin, tmp=tmp_path, mapping={
        "columns": {"Subject": "subject", "Kind": "kind", "Date": "occurred_at", "ID": "external_id"},
        "date_order": "dmy"})
    assert (chosen.created, chosen.unchanged, chosen.rejected) == (1, 1, 0)


def test_xlsx_imports_like_csv(engine, admin, tmp_path):
    from tests.test_imports_reading import xlsx

    data = xlsx([["Email", "First name", "Lead score"], ["a@example.com", "Ann", 55], ["b@example.com", "Bo", 101]])
    summary = run(engine, "contacts", data, who=admin, tmp=tmp_path, filename="people.xlsx")
    assert (summary.created, summary.rejected) == (1, 1)
    assert summary.problems[0].reason == "must be between 0 and 100"


def test_progress_is_reported_until_done(engine, admin, tmp_path):
    seen = []
    rows = [f"p{i}@example.com,P{i}" for i in range(2500)]
    with session_scope(engine) as s:
        run_import(session=s, actor=admin, entity="contacts", source=csv("Email,First name", *rows),
                   filename="x.csv", error_dir=tmp_path, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (2500, 2500) and len(seen) >= 3
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
