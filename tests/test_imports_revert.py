"""Reverting an import restores exactly the state before it, or refuses and says who changed what since."""
import pytest
from sqlalchemy import select

from crm.contacts import update_contact
from crm.db import read_scope, session_scope
from crm.errors import EditConflict, PermissionDenied, ValidationFailed
from crm.imports import list_jobs, revert_import
from crm.models import (
    AuditLog, Company, Contact, ContactInput, ContactTag, CustomFieldDef, CustomFieldValue, Deal, DealLineItem,
    DealStageHistory, ImportJob, SearchToken, Tag, Team, User,
)
from tests.factories import actor, make_user
from tests.test_imports import csv, run, table_state

_BOOKKEEPING = {"version", "updated_at"}
TABLES = (Contact, Company, CustomFieldDef, CustomFieldValue, Tag, ContactTag, SearchToken)


def revert(engine, job_id, who):
    with session_scope(engine) as s:
        return revert_import(session=s, actor=who, job_id=job_id)


def values_only(state: dict) -> dict:
    """Table contents without the version and updated_at, which a revert moves forward on restored rows."""
    return {t: sorted(tuple(kv for kv in row if kv[0] not in _BOOKKEEPING) for row in rows)
            for t, rows in state.items()}


CUSTOM = {"columns": {"Email": "email", "First name": "first_name", "Title": "job_title", "Size": "custom:size",
                      "Tags": "tags", "Company": "company"},
          "custom_fields": {"size": {"label": "Size", "type": "number"}}}


def test_revert_restores_updates_and_deletes_creations_with_their_dependants(engine, admin, tmp_path):
    run(engine, "companies", csv("Name", "Acme"), who=admin, tmp=tmp_path)
    run(engine, "contacts", csv("Email,First name,Title,Size,Tags,Company", "a@example.com,Ann,CTO,40,VIP,Acme"),
        who=admin, tmp=tmp_path, mapping=CUSTOM)
    before = table_state(engine, *TABLES)
    second = run(engine, "contacts", csv("Email,First name,Title,Size,Tags,Company",
                                         "a@example.com,Anne,CEO,41,Partner,",
                                         "b@example.com,Bo,,7,VIP;New tag,Acme"),
                 who=admin, tmp=tmp_path, mapping=CUSTOM)
    assert (second.created, second.updated) == (1, 1)
    summary = revert(engine, second.job_id, admin)
    # Deleted: Bo, his size, the tags Partner and "New tag", three tag links; restored: Ann and her size.
    assert (summary.deleted, summary.restored) == (7, 2)
    after = table_state(engine, *TABLES)
    assert values_only(after) == values_only(before)
    with read_scope(engine) as s:
        ann = s.execute(select(Contact).where(Contact.email == "a@example.com")).scalar_one()
        job = s.get(ImportJob, second.job_id)
        trail = s.execute(select(AuditLog.entity, AuditLog.action, AuditLog.field)
                          .where(AuditLog.context == f"import:{second.job_id}:revert").order_by(AuditLog.id)).all()
    assert (ann.first_name, ann.job_title, ann.version) == ("Ann", "CTO", 3)  # versions only move forward
    assert (job.status, job.reverted_at is not None) == ("reverted", True)
    assert ("contact", "update", "first_name") in trail and ("contact", "delete", None) in trail
    assert ("tag", "delete", None) in trail


def test_a_record_changed_after_the_import_blocks_the_revert_and_names_who(engine, admin, tmp_path):
    job = run(engine, "contacts", csv("Email,First name", "a@example.com,Ann", "b@example.com,Bo"), who=admin,
              tmp=tmp_path)
    rita = make_user(engine, "admin", name="Rita Editor")
    with session_scope(engine) as s:
        ann = s.execute(select(Contact).where(Contact.email == "a@example.com")).scalar_one()
        update_contact(session=s, actor=actor(engine, rita), contact_id=ann.id, seen_version=1,
                       data=ContactInput(job_title="Boss"))
    before = table_state(engine, Contact, SearchToken)
    with pytest.raises(EditConflict) as caught:
        revert(engine, job.job_id, admin)
    assert f"contact {ann.id} was changed by Rita Editor (job_title)" in caught.value.message
    assert "nothing was reverted" in caught.value.message
    assert table_state(engine, Contact, SearchToken) == before


def test_records_others_now_refer_to_block_the_revert(engine, admin, tmp_path):
    companies = run(engine, "companies", csv("Name", "Acme"), who=admin, tmp=tmp_path)
    contacts = run(engine, "contacts", csv("Email,First name,Company", "a@example.com,Ann,Acme"), who=admin,
                   tmp=tmp_path)
    with pytest.raises(EditConflict, match=r"contact \d+ refers to company \d+"):
        revert(engine, companies.job_id, admin)
    revert(engine, contacts.job_id, admin)
    revert(engine, companies.job_id, admin)
    with read_scope(engine) as s:
        assert s.execute(select(Company.id)).all() == [] and s.execute(select(SearchToken.token)).all() == []


def test_only_a_finished_import_can_be_reverted_once(engine, admin, tmp_path):
    dry = run(engine, "contacts", csv("Email,First name", "a@example.com,Ann"), who=admin, tmp=tmp_path, dry_run=True)
    with pytest.raises(ValidationFailed, match="a dry run"):
        revert(engine, dry.job_id, admin)
    real = run(engine, "contacts", csv("Email,First name", "a@example.com,Ann"), who=admin, tmp=tmp_path)
    revert(engine, real.job_id, admin)
    with pytest.raises(ValidationFailed, match="is reverted"):
        revert(engine, real.job_id, admin)


def test_reverting_deals_removes_history_and_lines_and_restores_a_moved_deal(engine, admin, tmp_path):
    from tests.test_imports_entities import DEALS

    run(engine, "products", csv("Name,Price", "GTX Pro,4821", "MG Special,55"), who=admin, tmp=tmp_path)
    run(engine, "companies", csv("Name,Domain", "Acme,acme.example"), who=admin, tmp=tmp_path)
    run(engine, "users", csv("Name,Email", "Rita Rep,rita@example.com"), who=admin, tmp=tmp_path)
    run(engine, "deals", DEALS, who=admin, tmp=tmp_path)
    tables = (Deal, DealLineItem, DealStageHistory)
    before = table_state(engine, *tables)
    moved = run(engine, "deals", csv("ID,Stage,Closed,Product,Qty", "D2,Closed won,2024-04-01,GTX Pro,2",
                                     "D10,Discovery,,,"), who=admin, tmp=tmp_path)
    assert (moved.created, moved.updated) == (1, 1)
    revert(engine, moved.job_id, admin)
    assert values_only(table_state(engine, *tables)) == values_only(before)


def test_reverting_users_removes_teams_and_managers_it_created(engine, admin, tmp_path):
    from tests.test_imports_entities import TEAMS, USER_MAPPING

    users_before = table_state(engine, User, Team)
    job = run(engine, "users", TEAMS, who=admin, tmp=tmp_path, mapping=USER_MAPPING)
    marketer = actor(engine, make_user(engine, "marketer"))
    with pytest.raises(PermissionDenied, match="may not revert an import of users"):
        revert(engine, job.job_id, marketer)
    revert(engine, job.job_id, admin)
    after = table_state(engine, User, Team)
    marketer_row = [r for r in after["app_user"] if ("id", marketer.id) in r]
    after["app_user"] = [r for r in after["app_user"] if ("id", marketer.id) not in r]
    assert after == users_before and len(marketer_row) == 1


def test_job_history_lists_imports_newest_first(engine, admin, tmp_path):
    first = run(engine, "contacts", csv("Email,First name", "a@example.com,Ann"), who=admin, tmp=tmp_path)
    run(engine, "contacts", csv("Email,First name", "b@example.com,Bo"), who=admin, tmp=tmp_path, dry_run=True)
    second = run(engine, "contacts", csv("Email,First name", "x,Bo"), who=admin, tmp=tmp_path)
    with read_scope(engine) as s:
        jobs = list_jobs(session=s, actor=admin)
    assert [(j.id, j.created, j.rejected, j.has_error_file, j.revertable) for j in jobs] == [
        (second.job_id, 0, 1, True, False), (first.job_id, 1, 0, False, True)]
    assert jobs[0].actor == admin.full_name
