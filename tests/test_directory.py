"""Lists, companies, tags, soft delete, bulk assignment, quick actions and the 360° timeline."""
from datetime import timedelta

import pytest

from crm.activities import ActivityInput, log_activity
from crm.clock import utcnow
from crm.companies import create_company, delete_company, get_company, restore_company, update_company
from crm.contacts import assign_owner, create_contact, delete_contact, get_contact, restore_contact
from crm.customfields import create_field_def
from crm.db import read_scope, session_scope
from crm.deals import DealInput, create_deal, deals_around
from crm.errors import EditConflict, NotFound, PermissionDenied, ValidationFailed
from crm.listing import (
    COUNT_CAP, CompanyFilter, ContactFilter, CustomCondition, export_contacts, list_companies, list_contacts,
)
from crm.models import (
    ActivityKind, AuditLog, BehaviorEvent, CompanyInput, ContactInput, CustomFieldDefBase, Entity, FieldType,
    Lifecycle, Order, SurveyResponse, Ticket,
)
from crm.tags import change_tags, ensure_tag, tags_of
from crm.timeline import company_timeline, contact_timeline
from tests.factories import actor, make_user


@pytest.fixture
def team(engine):
    ids = {"admin": make_user(engine, "admin"), "manager": make_user(engine, "manager", team="East"),
           "rep": make_user(engine, "rep", team="East", name="Rita Rep"),
           "peer": make_user(engine, "rep", team="East", name="Pete Peer"),
           "west": make_user(engine, "rep", team="West"), "marketer": make_user(engine, "marketer")}
    return {role: actor(engine, uid) for role, uid in ids.items()}


def _contact(s, who, first, **kw):
    return create_contact(session=s, actor=who, data=ContactInput(first_name=first, last_name="Test", **kw))


def test_filters_sorting_and_pages(engine, team):
    rep, admin = team["rep"], team["admin"]
    with session_scope(engine) as s:
        vip = ensure_tag(session=s, actor=admin, name="VIP")
        create_field_def(session=s, actor=admin, data=CustomFieldDefBase(
            entity=Entity.CONTACT, key="plan", label="Plan", field_type=FieldType.DROPDOWN, options=["gold", "free"]))
        for i in range(12):
            c = create_contact(session=s, actor=rep, data=ContactInput(
                first_name=f"P{i:02d}", last_name="Test", country="TH" if i % 2 else "DE", lead_score=i * 8,
                lifecycle_stage=Lifecycle.CUSTOMER if i < 4 else Lifecycle.LEAD),
                custom={"plan": "gold" if i % 3 == 0 else "free"})
            if i in (1, 2):
                change_tags(session=s, actor=rep, entity="contact", record_ids=[c.id], add=[vip.id])
        _contact(s, team["west"], "Elsewhere")
    with read_scope(engine) as s:
        def names(**kw):
            page = list_contacts(session=s, actor=rep, **kw)
            return [r.name.split()[0] for r in page.rows], page.total

        assert names(page_size=5) == (["P00", "P01", "P02", "P03", "P04"], 12)  # the West contact is out of scope
        assert names(page_size=5, page=3) == (["P10", "P11"], 12)
        assert names(filters=ContactFilter(countries=("TH",), lifecycle=(Lifecycle.CUSTOMER,))) == (["P01", "P03"], 2)
        assert names(filters=ContactFilter(score_min=40, score_max=56)) == (["P05", "P06", "P07"], 3)
        assert names(filters=ContactFilter(tag_ids=(vip.id,)))[0] == ["P01", "P02"]
        gold = ContactFilter(custom=(CustomCondition(key="plan", op="equals", value="gold"),))
        assert names(filters=gold)[0] == ["P00", "P03", "P06", "P09"]
        assert names(sort="-lead_score", page_size=2)[0] == ["P11", "P10"]
        row = list_contacts(session=s, actor=rep, filters=ContactFilter(tag_ids=(vip.id,))).rows[0]
        assert row.tags == ["VIP"] and row.owner == "Rita Rep"
        assert list_contacts(session=s, actor=admin).total == 13
        with pytest.raises(ValidationFailed) as err:
            list_contacts(session=s, actor=rep, filters=ContactFilter(
                custom=(CustomCondition(key="secret", op="equals", value="x"),)))
        assert err.value.field == "secret"


def test_count_is_capped_but_says_so(sqlite_engine, monkeypatch):
    import crm.listing

    monkeypatch.setattr(crm.listing, "COUNT_CAP", 3)
    admin = actor(sqlite_engine, make_user(sqlite_engine, "admin"))
    with session_scope(sqlite_engine) as s:
        for i in range(5):
            _contact(s, admin, f"C{i}")
    with read_scope(sqlite_engine) as s:
        page = list_contacts(session=s, actor=admin)
    assert (page.total, page.capped, len(page.rows)) == (3, True, 5)
    assert COUNT_CAP == 10_000


def test_soft_delete_and_restore(engine, team):
    rep = team["rep"]
    with session_scope(engine) as s:
        c = _contact(s, rep, "Gone")
    with session_scope(engine) as s:
        deleted = delete_contact(session=s, actor=rep, contact_id=c.id, seen_version=c.version)
    with read_scope(engine) as s:
        assert list_contacts(session=s, actor=rep).total == 0
        assert [r.id for r in list_contacts(session=s, actor=rep, filters=ContactFilter(deleted=True)).rows] == [c.id]
        with pytest.raises(NotFound):
            get_contact(session=s, actor=rep, contact_id=c.id)
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        restore_contact(session=s, actor=team["peer"], contact_id=c.id, seen_version=deleted.version)
    with session_scope(engine) as s:
        restored = restore_contact(session=s, actor=rep, contact_id=c.id, seen_version=deleted.version)
    assert restored.deleted_at is None and restored.version == c.version + 2
    with read_scope(engine) as s:
        actions = s.exec(AuditLog.__table__.select().where(AuditLog.record_id == c.id, AuditLog.entity == "contact")
                         .with_only_columns(AuditLog.action)).scalars().all()
    assert actions.count("delete") == 1 and actions.count("restore") == 1


def test_bulk_assign_is_all_or_nothing_and_audited(engine, team):
    rep, manager, peer = team["rep"], team["manager"], team["peer"]
    with session_scope(engine) as s:
        mine = [_contact(s, rep, f"M{i}").id for i in range(3)]
        theirs = _contact(s, peer, "Theirs").id
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        assign_owner(session=s, actor=rep, contact_ids=mine, owner_id=peer.id)  # reps edit only their own
    with session_scope(engine) as s:
        assert assign_owner(session=s, actor=manager, contact_ids=mine + [theirs], owner_id=peer.id) == 3
    with read_scope(engine) as s:
        assert {r.owner for r in list_contacts(session=s, actor=manager).rows} == {"Pete Peer"}
        assert s.exec(AuditLog.__table__.select().where(AuditLog.context == "bulk_assign")
                      .with_only_columns(AuditLog.record_id)).scalars().all() == sorted(mine)


def test_tags_inline_create_bulk_add_remove(engine, team):
    rep, marketer = team["rep"], team["marketer"]
    with session_scope(engine) as s:
        ids = [_contact(s, rep, f"T{i}").id for i in range(3)]
        vip = ensure_tag(session=s, actor=rep, name="  VIP  ")
        assert ensure_tag(session=s, actor=rep, name="vip").id == vip.id  # no near-duplicate created
        hot = ensure_tag(session=s, actor=marketer, name="Hot lead")
        assert change_tags(session=s, actor=marketer, entity="contact", record_ids=ids, add=[vip.id, hot.id]) == 3
        assert change_tags(session=s, actor=marketer, entity="contact", record_ids=ids, add=[vip.id]) == 0
        assert change_tags(session=s, actor=rep, entity="contact", record_ids=ids[:1], remove=[hot.id]) == 1
        assert [t.name for t in tags_of(session=s, entity="contact", record_id=ids[0])] == ["VIP"]
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        change_tags(session=s, actor=team["west"], entity="contact", record_ids=ids, add=[hot.id])


def test_company_lifecycle_and_conflict(engine, team):
    rep, peer = team["rep"], team["peer"]
    with session_scope(engine) as s:
        acme = create_company(session=s, actor=rep, data=CompanyInput(
            name="Acme", domain="https://www.ACME.example/about", country="th", employees=40))
        _contact(s, rep, "Ann", company_id=acme.id)
        _contact(s, team["west"], "Wes", company_id=acme.id)
    assert (acme.domain, acme.country) == ("acme.example", "TH")
    with session_scope(engine) as s:
        update_company(session=s, actor=rep, company_id=acme.id, data=CompanyInput(industry="Robotics"),
                       seen_version=acme.version)
    with session_scope(engine) as s, pytest.raises(EditConflict) as conflict:
        update_company(session=s, actor=rep, company_id=acme.id, data=CompanyInput(employees=50),
                       seen_version=acme.version)
    assert "industry" in str(conflict.value)
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        update_company(session=s, actor=peer, company_id=acme.id, data=CompanyInput(employees=50), seen_version=2)
    with session_scope(engine) as s, pytest.raises(ValidationFailed) as bad:
        create_company(session=s, actor=rep, data=CompanyInput(name="X", domain="not a domain"))
    assert bad.value.field == "domain"
    with read_scope(engine) as s:
        row = list_companies(session=s, actor=rep, filters=CompanyFilter(query="acme")).rows[0]
        assert (row.contacts, row.industry) == (1, "Robotics")  # Wes is outside the rep's scope
        assert list_companies(session=s, actor=team["admin"]).rows[0].contacts == 2
    with session_scope(engine) as s:
        gone = delete_company(session=s, actor=rep, company_id=acme.id, seen_version=2)
    with session_scope(engine) as s:
        assert restore_company(session=s, actor=rep, company_id=acme.id, seen_version=gone.version).deleted_at is None
        assert get_company(session=s, actor=team["marketer"], company_id=acme.id).name == "Acme"


def test_quick_actions_and_timeline(engine, team):
    rep = team["rep"]
    now = utcnow()
    with session_scope(engine) as s:
        acme = create_company(session=s, actor=rep, data=CompanyInput(name="Acme"))
        c = _contact(s, rep, "Tim", company_id=acme.id)
        log_activity(session=s, actor=rep, data=ActivityInput(kind=ActivityKind.CALL, subject="Intro call",
                                                              body="<script>x</script>", contact_id=c.id))
        log_activity(session=s, actor=rep, data=ActivityInput(kind=ActivityKind.TASK, subject="Send quote",
                                                              contact_id=c.id, due_at=now + timedelta(days=2)))
        deal = create_deal(session=s, actor=rep, data=DealInput(title="Acme pilot", amount=1200, contact_id=c.id))
        s.add(BehaviorEvent(contact_id=c.id, kind="offer_viewed", offer="Pro plan", occurred_at=now - timedelta(days=3)))
        s.add(Order(contact_id=c.id, company_id=acme.id, ordered_at=now - timedelta(days=5), total=99.5))
        s.add(Ticket(contact_id=c.id, subject="Login broken", opened_at=now - timedelta(days=4)))
        s.add(SurveyResponse(contact_id=c.id, kind="nps", score=9, answered_at=now - timedelta(days=1)))
    assert (deal.stage, deal.pipeline, deal.owner) == ("Qualification", "New business", "Rita Rep")
    with read_scope(engine) as s:
        items = contact_timeline(session=s, contact_id=c.id)
        kinds = [i.kind for i in items]
        assert {"call", "task", "offer_viewed", "order", "ticket", "survey", "change"} <= set(kinds)
        assert [i.at for i in items] == sorted((i.at for i in items), reverse=True)
        assert [i.kind for i in contact_timeline(session=s, contact_id=c.id, kinds={"order", "ticket"})] == \
            ["ticket", "order"]
        assert get_contact(session=s, actor=rep, contact_id=c.id).last_engaged_at is not None
        assert [d.title for d in deals_around(session=s, actor=rep, contact_id=c.id)] == ["Acme pilot"]
        assert [d.title for d in deals_around(session=s, actor=team["marketer"], contact_id=c.id)] == []
        company_kinds = {i.kind for i in company_timeline(session=s, company_id=acme.id)}
        assert {"call", "order", "ticket", "change"} <= company_kinds
    with session_scope(engine) as s, pytest.raises(ValidationFailed) as err:
        log_activity(session=s, actor=rep, data=ActivityInput(kind=ActivityKind.TASK, subject="No date",
                                                              contact_id=c.id))
    assert err.value.field == "due_at"
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        log_activity(session=s, actor=team["west"], data=ActivityInput(kind=ActivityKind.NOTE, subject="Peek",
                                                                       contact_id=c.id))


def test_export_requires_the_right_and_honours_scope(engine, team):
    with session_scope(engine) as s:
        _contact(s, team["rep"], "Mine", email="mine@example.com")
        _contact(s, team["west"], "West")
    with read_scope(engine) as s:
        with pytest.raises(PermissionDenied):
            export_contacts(session=s, actor=team["rep"])
        frame = export_contacts(session=s, actor=team["manager"])
        assert frame["email"].tolist() == ["mine@example.com"]
        assert len(export_contacts(session=s, actor=team["marketer"])) == 2
