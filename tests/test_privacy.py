"""Data-subject requests: a full JSON export, and an erasure that leaves no personal trace but keeps aggregates."""
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import JSON, String, Text, TypeDecorator, func, select as sa_select
from sqlmodel import select

from crm.audit import audit, created_fields, data_version
from crm.clock import utcnow
from crm.contacts import create_contact, get_contact, update_contact
from crm.customfields import create_field_def
from crm.db import read_scope, session_scope
from crm.errors import EditConflict, NotFound, PermissionDenied
from crm.models import (
    Activity, AuditLog, BehaviorEvent, Company, Contact, ContactInput, ContactTag, CustomFieldDefBase,
    CustomFieldValue, Deal, DealContact, ImportChange, ImportJob, ListSubscriptionEvent, MergeLog, Notification,
    Order, OrderLine, PredictionScore, Product, SearchToken, Segment, SegmentMember, SegmentSnapshot,
    SegmentSnapshotMember, SurveyResponse, Tag, Ticket, metadata,
)
from crm.privacy import ERASED, erase_contact, export_contact_data, is_erased
from tests.factories import actor, make_user, stage_named

ROOT = Path(__file__).resolve().parent.parent

# Every string below belongs to Zephyrine and must be gone from every table after the erasure.
SECRETS = ["Zephyrine", "Quillfeather", "zephyrine.q@mail.example", "+66897654321", "897654321",
           "12 Soi Lantern", "Chiang Mai", "Lampang Lanterns", "Chief Lantern Officer", "linkedin.example/in/zqf",
           "orchids", "EXT-ZQ-77", "quillwort", "98765", "1980-02-29", "greenhouse", "zq-winback", "shop.example/?u="]


def _field(session, me, key, field_type, **roles):
    create_field_def(session=session, actor=me, data=CustomFieldDefBase(
        entity="contact", key=key, label=key.title(), field_type=field_type, **roles))


def build_subject(engine) -> dict:
    """Zephyrine with data in every table that can hold something about her, and Bob, who must stay untouched."""
    admin = make_user(engine, "admin")
    me = actor(engine, admin)
    now = utcnow()
    with session_scope(engine) as s:
        _field(s, me, "secret_note", "text", view_roles=["admin"], edit_roles=["admin"])  # admins only
        _field(s, me, "income", "number")
        _field(s, me, "birthday", "date")
        company = Company(name="Lantern Works")
        product = Product(name="Lantern Kit", list_price=125)
        tag = Tag(name="VIP")
        s.add_all([company, product, tag])
        s.flush()
        z = create_contact(session=s, actor=me, data=ContactInput(
            first_name="Zephyrine", last_name="Quillfeather", email="zephyrine.q@mail.example",
            phone="+66 89 765 4321", address="12 Soi Lantern", city="Chiang Mai", job_title="Chief Lantern Officer",
            country="TH", company_id=company.id, social_profiles={"linkedin": "https://linkedin.example/in/zqf"},
            interests=["orchids"], external_id="EXT-ZQ-77", email_opt_in=True, source="webinar"),
            custom={"secret_note": "allergic to quillwort", "income": 98765, "birthday": "1980-02-29"})
        bob = create_contact(session=s, actor=me, data=ContactInput(first_name="Bob", last_name="Bystander",
                                                                    email="bob@mail.example", city="Oslo"))
    with session_scope(engine) as s:  # an edit, so the audit log holds old and new values
        update_contact(session=s, actor=me, contact_id=z.id, seen_version=1,
                       data=ContactInput(city="Lampang Lanterns"))
    with session_scope(engine) as s:
        zid = z.id
        s.add(ContactTag(contact_id=zid, tag_id=tag.id))
        won, other = stage_named(s, "Closed won"), stage_named(s, "Proposal")
        deal = Deal(title="Lantern order", pipeline_id=won.pipeline_id, stage_id=won.id, amount=1200, contact_id=zid)
        linked = Deal(title="Second order", pipeline_id=other.pipeline_id, stage_id=other.id, amount=800)
        s.add_all([deal, linked])
        s.flush()
        s.add(DealContact(deal_id=linked.id, contact_id=zid, role="Champion"))
        activities = [Activity(kind="call", subject="Lunch with Zephyrine", body="Talked about her greenhouse",
                               contact_id=zid, occurred_at=now),
                      Activity(kind="note", subject="Quillfeather follow-up", contact_id=zid, occurred_at=now)]
        s.add_all(activities)
        s.add(BehaviorEvent(contact_id=zid, kind="web_visit", occurred_at=now, offer="Spring sale",
                            url="https://shop.example/?u=zephyrine.q", campaign="zq-winback-spring",
                            properties={"typed_name": "Zephyrine Quillfeather"}))
        order = Order(contact_id=zid, ordered_at=now, total=250.0)
        s.add(order)
        s.flush()
        s.add(OrderLine(order_id=order.id, product_id=product.id, quantity=2, unit_price=125))
        s.add(Ticket(contact_id=zid, subject="Refund for Zephyrine", opened_at=now - timedelta(days=2),
                     resolved_at=now, status="resolved"))
        s.add(SurveyResponse(contact_id=zid, kind="nps", score=9, comment="The Quillfeather family loves it",
                             answered_at=now))
        s.add(ListSubscriptionEvent(contact_id=zid, list_name="Newsletter", action="subscribe", occurred_at=now))
        segment = Segment(name="Orchid fans", kind="static")
        s.add(segment)
        s.flush()
        snapshot = SegmentSnapshot(segment_id=segment.id, purpose="export")
        s.add_all([SegmentMember(segment_id=segment.id, record_id=zid), snapshot])
        s.flush()
        s.add(SegmentSnapshotMember(snapshot_id=snapshot.id, record_id=zid))
        s.add(PredictionScore(model="lead", model_version="1", entity="contact", record_id=zid, probability=0.7))
        s.add(Notification(user_id=admin, message="Call Zephyrine Quillfeather back", entity="contact", record_id=zid))
        s.add(MergeLog(entity="contact", survivor_id=zid, merged_id=bob.id + 1000,
                       snapshot={"merged": {"first_name": "Zephyrine", "email": "zephyrine.q@mail.example"}}))
        job = ImportJob(entity="contact", filename="leads.csv")
        s.add(job)
        s.flush()
        s.add(ImportChange(job_id=job.id, entity="contact", record_id=zid, action="updated",
                           before={"job_title": "Chief Lantern Officer"}))
        s.flush()
        for a in activities:  # what crm.activities writes when an activity is logged
            audit(s, actor_id=admin, entity="activity", record_id=a.id, action="create", changes=created_fields(a))
    return {"admin": admin, "id": zid, "bob": bob.id, "deals": [deal.id, linked.id], "order": order.id}


def _base_type(column_type):
    """SQLModel's AutoString is a TypeDecorator over String, not a String itself."""
    return column_type.impl if isinstance(column_type, TypeDecorator) else column_type


def _cells(engine):
    """Every value of every text or JSON column of every table, as text."""
    with read_scope(engine) as s:
        for table in metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(_base_type(c.type), (String, Text, JSON))]
            for row in s.execute(sa_select(*columns)).all() if columns else []:
                for value in row:
                    if value is not None:
                        yield table.name, json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) \
                            else str(value)


def test_export_holds_every_kind_of_related_data(engine):
    subject = build_subject(engine)
    with session_scope(engine) as s:
        data = export_contact_data(session=s, actor=actor(engine, subject["admin"]), contact_id=subject["id"])
    data = json.loads(json.dumps(data))  # serialisable as it is
    assert data["contact"]["email"] == "zephyrine.q@mail.example" and data["contact"]["city"] == "Lampang Lanterns"
    assert {f["key"]: f["value"] for f in data["custom_fields"]} == {
        "secret_note": "allergic to quillwort", "income": 98765, "birthday": "1980-02-29"}  # admin-only field too
    assert data["tags"] == ["VIP"] and data["company"] == {"name": "Lantern Works"}
    assert {(d["title"], d["amount"], d["role"]) for d in data["deals"]} == {
        ("Lantern order", 1200, None), ("Second order", 800, "Champion")}
    assert {a["subject"] for a in data["activities"]} == {"Lunch with Zephyrine", "Quillfeather follow-up"}
    assert data["behavior_events"][0]["properties"] == {"typed_name": "Zephyrine Quillfeather"}
    assert data["orders"][0]["total"] == 250 and data["orders"][0]["lines"] == [
        {"product": "Lantern Kit", "quantity": 2, "unit_price": 125}]
    assert data["tickets"][0]["subject"] == "Refund for Zephyrine"
    assert data["survey_responses"][0]["score"] == 9
    assert data["list_subscriptions"][0]["list_name"] == "Newsletter"
    assert data["segments"]["static"][0]["segment"] == "Orchid fans"
    assert data["segments"]["snapshots"][0]["purpose"] == "export"
    assert data["scores"][0]["probability"] == 0.7
    history = {(r["action"], r["field"], r["old_value"], r["new_value"]) for r in data["audit_history"]}
    assert ("update", "city", "Chiang Mai", "Lampang Lanterns") in history
    assert ("update", "cf.secret_note", None, "allergic to quillwort") in history  # set_values says update
    with read_scope(engine) as s:
        exports = s.exec(select(AuditLog).where(AuditLog.action == "privacy_export")).all()
    assert [(e.entity, e.record_id, e.actor_id, e.old_value, e.new_value) for e in exports] == [
        ("contact", subject["id"], subject["admin"], None, None)]


def test_erase_leaves_no_trace_of_the_person_anywhere(engine):
    subject = build_subject(engine)
    before = list(_cells(engine))
    # Not vacuous: each secret is somewhere before (the custom number and date in the audit log as text).
    assert [x for x in SECRETS if not any(x.casefold() in text.casefold() for _, text in before)] == []
    assert {"search_token", "audit_log", "merge_log", "import_change", "notification"} <= {t for t, _ in before}
    with session_scope(engine) as s:
        erase_contact(session=s, actor=actor(engine, subject["admin"]), contact_id=subject["id"])
    traces = [(table, text) for table, text in _cells(engine)
              for secret in SECRETS if secret.casefold() in text.casefold()]
    assert traces == []
    with read_scope(engine) as s:  # Bob is not Zephyrine: nothing of his changed
        bob = s.get(Contact, subject["bob"])
        assert (bob.first_name, bob.email, bob.city, bob.deleted_at) == ("Bob", "bob@mail.example", "Oslo", None)
        assert s.exec(select(AuditLog.new_value).where(AuditLog.record_id == bob.id, AuditLog.entity == "contact",
                                                       AuditLog.field == "email")).one() == "bob@mail.example"
        assert s.exec(select(SearchToken.token).where(SearchToken.record_id == bob.id, SearchToken.entity == "contact",
                                                      SearchToken.token == "bob")).all()


def _aggregates(engine, subject) -> dict:
    zid = subject["id"]
    with read_scope(engine) as s:
        def count(model):
            return s.exec(select(func.count()).select_from(model).where(model.contact_id == zid)).one()
        return {
            "deal_amounts": sorted(s.exec(select(Deal.amount).where(Deal.id.in_(subject["deals"]))).all()),
            "deal_links": count(DealContact),
            "order_total": s.get(Order, subject["order"]).total,
            "order_lines": [(x.quantity, x.unit_price) for x in s.exec(select(OrderLine)).all()],
            "activities": count(Activity), "events": s.exec(select(BehaviorEvent.kind, BehaviorEvent.offer)).all(),
            "tickets": s.exec(select(Ticket.status, Ticket.opened_at, Ticket.resolved_at)).all(),
            "surveys": s.exec(select(SurveyResponse.kind, SurveyResponse.score)).all(),
            "subscriptions": count(ListSubscriptionEvent), "tags": count(ContactTag),
            "contact": s.exec(select(Contact.country, Contact.lifecycle_stage, Contact.source, Contact.company_id)
                              .where(Contact.id == zid)).one(),
        }


def test_erase_keeps_amounts_totals_counts_and_scores(engine):
    subject = build_subject(engine)
    kept = _aggregates(engine, subject)
    with session_scope(engine) as s:
        report = erase_contact(session=s, actor=actor(engine, subject["admin"]), contact_id=subject["id"])
    assert _aggregates(engine, subject) == kept
    assert kept["deal_amounts"] == [800, 1200] and kept["order_total"] == 250 and kept["activities"] == 2
    assert report.rows_anonymised == {"activity": 2, "behavior_event": 1, "survey_response": 1, "ticket": 1,
                                      "bookkeeping": 3}
    assert report.custom_values_deleted == 3 and not report.already_erased
    with read_scope(engine) as s:
        assert {a.subject for a in s.exec(select(Activity)).all()} == {ERASED}
        assert s.exec(select(CustomFieldValue)).all() == []


def test_the_erased_contact_is_anonymous_hidden_and_recognisable(engine):
    subject = build_subject(engine)
    me = actor(engine, subject["admin"])
    with session_scope(engine) as s:
        erase_contact(session=s, actor=me, contact_id=subject["id"])
    with read_scope(engine) as s:
        with pytest.raises(NotFound):
            get_contact(session=s, actor=me, contact_id=subject["id"])  # gone from lists, search and forms
        view = get_contact(session=s, actor=me, contact_id=subject["id"], include_deleted=True)
    assert view.full_name == f"Erased contact #{subject['id']}" and is_erased(view)
    assert (view.email, view.phone, view.address, view.city, view.job_title, view.external_id) == (None,) * 6
    assert (view.social_profiles, view.interests, view.do_not_contact, view.email_opt_in) == ({}, [], True, False)


def test_erase_is_audited_without_values_and_bumps_the_data_version(engine):
    subject = build_subject(engine)
    with read_scope(engine) as s:
        version_before = data_version(s)
        rows_before = {r.id: (r.at, r.field, r.action) for r in s.exec(select(AuditLog)).all()}
    with session_scope(engine) as s:
        erase_contact(session=s, actor=actor(engine, subject["admin"]), contact_id=subject["id"])
    with read_scope(engine) as s:
        assert data_version(s) > version_before
        rows = s.exec(select(AuditLog)).all()
        erase = [r for r in rows if r.action == "erase"]
        contact_rows = [r for r in rows if r.entity == "contact" and r.record_id == subject["id"]]
    assert [(r.record_id, r.actor_id, r.field, r.old_value, r.new_value) for r in erase] == [
        (subject["id"], subject["admin"], None, None, None)]
    # Who, when, which field and what happened are kept; only the values are gone.
    assert {r.id: (r.at, r.field, r.action) for r in rows if r.id in rows_before} == rows_before
    assert {r.new_value for r in contact_rows if r.action != "erase"} == {ERASED}
    assert ("city", ERASED, ERASED) in {(r.field, r.old_value, r.new_value) for r in contact_rows}
    assert ("first_name", None, ERASED) in {(r.field, r.old_value, r.new_value) for r in contact_rows}


def test_a_second_erase_is_harmless(engine):
    subject = build_subject(engine)
    me = actor(engine, subject["admin"])
    with session_scope(engine) as s:
        first = erase_contact(session=s, actor=me, contact_id=subject["id"])
    with session_scope(engine) as s:
        second = erase_contact(session=s, actor=me, contact_id=subject["id"], seen_version=first.contact_version)
    assert second.already_erased and second.contact_version == first.contact_version
    assert second.custom_values_deleted == 0 and set(second.rows_anonymised.values()) == {0}
    with read_scope(engine) as s:
        assert len(s.exec(select(AuditLog).where(AuditLog.action == "erase")).all()) == 1


def test_a_stale_erase_is_refused(engine):
    subject = build_subject(engine)
    with session_scope(engine) as s, pytest.raises(EditConflict):
        erase_contact(session=s, actor=actor(engine, subject["admin"]), contact_id=subject["id"], seen_version=1)


@pytest.mark.parametrize("role", ["manager", "rep", "marketer"])
def test_only_admins_may_export_or_erase(engine, role):
    subject = build_subject(engine)
    someone = actor(engine, make_user(engine, role))
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        export_contact_data(session=s, actor=someone, contact_id=subject["id"])
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        erase_contact(session=s, actor=someone, contact_id=subject["id"])
    with read_scope(engine) as s:
        assert s.get(Contact, subject["id"]).first_name == "Zephyrine"
        assert s.exec(select(AuditLog).where(AuditLog.action.in_(["erase", "privacy_export"]))).all() == []


def test_unknown_contacts_are_not_found(engine):
    me = actor(engine, make_user(engine, "admin"))
    with session_scope(engine) as s, pytest.raises(NotFound):
        export_contact_data(session=s, actor=me, contact_id=404)
    with session_scope(engine) as s, pytest.raises(NotFound):
        erase_contact(session=s, actor=me, contact_id=404)


def test_the_cli_exports_and_erases_as_a_named_admin(tmp_path):
    env = {**os.environ, "CRM_DATABASE_URL": f"sqlite:///{tmp_path / 'crm.db'}", "PYTHONPATH": str(ROOT)}

    def crm(*args, stdin=""):
        return subprocess.run([sys.executable, "-m", "crm", *args], input=stdin, capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=300)

    assert crm("init").returncode == 0
    crm("users", "add", "boss@example.com", "--role", "admin", stdin="a long passphrase\n")
    crm("users", "add", "rep@example.com", "--role", "rep", stdin="a long passphrase\n")
    from crm.db import make_engine
    from crm.permissions import load_actor
    engine = make_engine(env["CRM_DATABASE_URL"])
    with session_scope(engine) as s:
        boss = load_actor(s, 1)
        zid = create_contact(session=s, actor=boss,
                             data=ContactInput(first_name="Zephyrine", email="z@mail.example")).id
    engine.dispose()

    out = tmp_path / "z.json"
    done = crm("privacy", "export", str(zid), "--output", str(out), "--as", "boss@example.com")
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text(encoding="utf-8"))["contact"]["email"] == "z@mail.example"
    printed = crm("privacy", "export", str(zid), "--as", "boss@example.com")
    assert json.loads(printed.stdout)["contact"]["first_name"] == "Zephyrine"

    refused = crm("privacy", "erase", str(zid), "--yes", "--as", "rep@example.com")
    assert refused.returncode == 1 and refused.stderr.startswith("error: Your role (rep) may not erase")
    unconfirmed = crm("privacy", "erase", str(zid), "--as", "boss@example.com")
    assert unconfirmed.returncode == 1 and "--yes" in unconfirmed.stderr
    erased = crm("privacy", "erase", str(zid), "--yes", "--as", "boss@example.com")
    assert erased.returncode == 0, erased.stderr
    after = json.loads(crm("privacy", "export", str(zid), "--as", "boss@example.com").stdout)
    assert after["contact"]["first_name"] == "Erased" and after["contact"]["email"] is None
