"""The other hygiene tools: incomplete records ranked by value, tag clean-up (unused, near-duplicates, merge,
delete) and merging two lists, with their rights, audit and (for lists) the exact revert."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from crm.clock import utcnow
from crm.contacts import ContactInput, update_contact
from crm.db import read_scope, session_scope
from crm.errors import EditConflict, NotFound, PermissionDenied, ValidationFailed
from crm.hygiene.completeness import incomplete_records
from crm.hygiene.jobs import revert_job
from crm.hygiene.lists import merge_lists
from crm.hygiene.tag_cleanup import (
    delete_tags, merge_tags, near_duplicate_tags, tag_key, unused_tags,
)
from crm.models import (
    AuditLog, AutomationRule, Company, CompanyTag, Contact, ContactTag, CustomFieldDef, CustomFieldValue, Deal, Order,
    Segment, SegmentMember, Tag,
)
from crm.segments.service import count_segment, create_segment, get_segment
from crm.tags import ensure_tag, list_tags
from tests.factories import actor, make_user, stage_named
from tests.test_hygiene_formatting import table_state, values_only

# --- incomplete records -------------------------------------------------------------------------------------------

FULL = dict(first_name="Fay", last_name="Full", email="fay@example.com", phone="+12015550123", job_title="CTO",
            country="US")


@pytest.fixture
def ledger(engine, admin):
    """Contacts and companies with what is missing and what they are worth written next to each."""
    with session_scope(engine) as s:
        acme, beta = Company(name="Acme", industry="Retail", country="US"), Company(name="Beta", domain="beta.io")
        whole = Company(name="Whole", domain="whole.io", industry="Software", country="DE", employees=5,
                        owner_id=admin.id)
        plan = CustomFieldDef(entity="contact", key="plan", label="Plan", field_type="text", required=True,
                              view_roles=["admin"], edit_roles=["admin"])
        s.add_all([acme, beta, whole, plan])
        s.flush()
        full = dict(FULL, company_id=whole.id, owner_id=admin.id)
        people = {
            # value = open deals + completed orders + lead score
            "Rich": Contact(**{**full, "first_name": "Rich", "phone": None, "job_title": None}, lead_score=50),
            "Mid": Contact(**{**full, "first_name": "Mid", "email": None}, lead_score=10),  # 300 + 10
            "Low": Contact(**{**full, "first_name": "Low", "owner_id": None}, lead_score=80),  # 80
            "Lost": Contact(first_name="Lost", last_name=""),  # a lost deal is worth nothing: 0
            "Full": Contact(**{**full, "first_name": "Full"}, lead_score=99),  # complete, with its plan: not listed
            "Gone": Contact(first_name="Gone", deleted_at=utcnow()),
        }
        s.add_all(people.values())
        s.flush()
        ids = {k: v.id for k, v in people.items()}
        s.add_all(CustomFieldValue(field_id=plan.id, record_id=ids[n], value_text="Gold") for n in ("Mid", "Full"))
        open_stage, lost_stage = stage_named(s, "Proposal"), stage_named(s, "Closed lost")
        s.add_all([Deal(title="Big", pipeline_id=open_stage.pipeline_id, stage_id=open_stage.id, amount=1000,
                        contact_id=ids["Rich"], company_id=acme.id),
                   Deal(title="Gone", pipeline_id=lost_stage.pipeline_id, stage_id=lost_stage.id, status="lost",
                        amount=5000, contact_id=ids["Lost"], company_id=beta.id),
                   Order(contact_id=ids["Rich"], total=500), Order(contact_id=ids["Mid"], total=300),
                   Order(contact_id=ids["Mid"], total=999, status="cancelled"),
                   Order(contact_id=ids["Mid"], total=50, deleted_at=utcnow()),
                   Order(company_id=beta.id, total=100)])
    return ids, {"acme": acme.id, "beta": beta.id}


def test_incomplete_contacts_ranked_by_value_with_what_each_lacks(engine, admin, ledger):
    ids, _ = ledger
    with read_scope(engine) as s:
        report = incomplete_records(session=s, actor=admin)
    rows = report.rows.set_index("name")
    assert list(report.rows["name"]) == ["Rich Full", "Mid Full", "Low Full", "Lost"] and report.total == 4
    assert rows.loc["Rich Full", ["open_deals", "revenue", "lead_score", "value"]].tolist() == [1000, 500, 50, 1550]
    assert rows.loc["Mid Full", "value"] == 310 and rows.loc["Lost", "value"] == 0
    assert rows.loc["Rich Full", "missing"] == ["Phone", "Job title", "Plan"]
    assert rows.loc["Low Full", "missing"] == ["Owner", "Plan"]
    assert rows.loc["Lost", "missing"] == ["Last name", "Email", "Phone", "Company", "Job title", "Country", "Owner",
                                           "Plan"]
    assert report.missing_counts["Plan"] == 3 and report.missing_counts["Email"] == 2  # Mid, Lost
    assert rows.loc["Rich Full", "version"] == 1


def test_fill_in_goes_through_the_edit_use_case_with_the_rows_version(engine, admin, ledger):
    ids, _ = ledger
    with read_scope(engine) as s:
        row = incomplete_records(session=s, actor=admin).rows.iloc[0]
    with session_scope(engine) as s:
        update_contact(session=s, actor=admin, contact_id=int(row["id"]), data=ContactInput(job_title="CEO"),
                       seen_version=int(row["version"]))
    with session_scope(engine) as s, pytest.raises(EditConflict):  # a second form still showing the old version
        update_contact(session=s, actor=admin, contact_id=int(row["id"]), data=ContactInput(phone="+12015550100"),
                       seen_version=int(row["version"]))
    with read_scope(engine) as s:
        again = incomplete_records(session=s, actor=admin).rows.set_index("name")
    assert again.loc["Rich Full", "missing"] == ["Phone", "Plan"]


def test_incomplete_companies_and_scope(engine, admin, ledger):
    _, companies = ledger
    with read_scope(engine) as s:
        report = incomplete_records(session=s, actor=admin, entity="company")
    assert list(report.rows["name"]) == ["Acme", "Beta"]  # 1,000 of open deals, then 100 of orders; Whole is full
    assert report.rows["missing"].tolist() == [["Domain", "Employees", "Owner"],
                                               ["Industry", "Country", "Employees", "Owner"]]
    manager = actor(engine, make_user(engine, "manager", team="East"))
    with read_scope(engine) as s:
        assert incomplete_records(session=s, actor=manager).total == 0  # none of these is the team's
        with pytest.raises(ValidationFailed, match="entity"):
            incomplete_records(session=s, actor=admin, entity="deal")
        with pytest.raises(PermissionDenied):
            incomplete_records(session=s, actor=actor(engine, make_user(engine, "rep")))


# --- tags ---------------------------------------------------------------------------------------------------------

@pytest.fixture
def tagged(engine):
    """VIP on Ann, Bob and Acme; V.I.P. on Ann (twice tagged) and Cat; "vip " on Acme; Customer(s); unused Lead and
    Old (on a deleted contact only)."""
    with session_scope(engine) as s:
        names = ["VIP", "V.I.P.", "vip ", "Customer", "Customers", "Lead", "Old", "Cust"]
        tags = {n: Tag(name=n, created_at=utcnow() + timedelta(seconds=i)) for i, n in enumerate(names)}
        people = {n: Contact(first_name=n) for n in ("Ann", "Bob", "Cat", "Dead")}
        people["Dead"].deleted_at = utcnow()
        acme = Company(name="Acme")
        s.add_all([*tags.values(), *people.values(), acme])
        s.flush()
        t, c = {k: v.id for k, v in tags.items()}, {k: v.id for k, v in people.items()}
        links = [("Ann", "VIP"), ("Bob", "VIP"), ("Ann", "V.I.P."), ("Cat", "V.I.P."), ("Ann", "Customer"),
                 ("Bob", "Customers"), ("Dead", "Old"), ("Cat", "Cust")]
        s.add_all(ContactTag(contact_id=c[p], tag_id=t[n]) for p, n in links)
        s.add_all([CompanyTag(company_id=acme.id, tag_id=t["VIP"]), CompanyTag(company_id=acme.id, tag_id=t["vip "])])
    return t, c, acme.id


def test_tag_keys_and_near_duplicates(engine, admin, tagged):
    assert {tag_key(n) for n in ("VIP", "vip ", "V.I.P.", "v-i-p")} == {"vip"}
    with read_scope(engine) as s:
        groups = near_duplicate_tags(session=s, actor=admin)
        unused = unused_tags(session=s, actor=admin)
    # Most used first, the survivor leads; "Cust" is too short to be matched by likeness to "Customer".
    assert [[(t.name, t.contacts, t.companies) for t in g] for g in groups] == [
        [("VIP", 2, 1), ("V.I.P.", 2, 0), ("vip ", 0, 1)], [("Customer", 1, 0), ("Customers", 1, 0)]]
    assert [t.name for t in unused] == ["Lead", "Old"]  # Old is only on a deleted contact


def test_merge_tags_relinks_without_duplicates_and_audits(engine, admin, tagged):
    t, c, acme = tagged
    by_name = {"groups": [{"conditions": [{"field": "tags", "op": "has_any", "value": ["v.i.p.", "Lead"]}]}]}
    by_id = {"groups": [{"conditions": [{"field": "tags", "op": "has_none", "value": [t["V.I.P."]]}]}]}
    with session_scope(engine) as s:
        named = create_segment(session=s, actor=admin, name="Dotted VIPs", definition=by_name)
        numbered = create_segment(session=s, actor=admin, name="No dotted VIPs", definition=by_id)
        rule = AutomationRule(name="Tag new people", trigger="contact_created", action="add_tag",
                              action_params={"tag_id": t["vip "]})
        other = AutomationRule(name="Tag customers", trigger="contact_created", action="add_tag",
                               action_params={"tag_id": t["Customer"]})
        s.add_all([rule, other])
        s.flush()
        merged = merge_tags(session=s, actor=admin, survivor_id=t["VIP"], merged_ids=[t["V.I.P."], t["vip "]])
    assert merged.relinked == {"contact": 2, "company": 1} and merged.merged == ["V.I.P.", "vip "]
    assert (merged.segments, merged.rules) == (2, 1)
    with read_scope(engine) as s:  # the rule adding "vip " adds the survivor now; the other is untouched
        assert (s.get(AutomationRule, rule.id).action_params, s.get(AutomationRule, rule.id).version) == (
            {"tag_id": t["VIP"]}, 2)
        assert s.get(AutomationRule, other.id).version == 1
    with read_scope(engine) as s:  # the saved segments now test the survivor, and still compile
        first, second = (get_segment(session=s, actor=admin, segment=x.id) for x in (named, numbered))
        assert first.definition["groups"][0]["conditions"][0]["value"] == ["VIP", "Lead"]
        assert second.definition["groups"][0]["conditions"][0]["value"] == ["VIP"] and second.version == 2
        assert count_segment(session=s, actor=admin, segment=first) == 3  # Ann, Bob and Cat carry VIP now
    with read_scope(engine) as s:
        links = s.execute(select(ContactTag.contact_id, ContactTag.tag_id).order_by(ContactTag.contact_id)).all()
        company_links = s.execute(select(CompanyTag.company_id, CompanyTag.tag_id)).all()
        names = [x.name for x in list_tags(session=s)]
        trail = s.execute(select(AuditLog.entity, AuditLog.record_id, AuditLog.old_value, AuditLog.new_value)
                          .where(AuditLog.context == f"tag_merge:{t['VIP']}", AuditLog.field == "tags")).all()
    vip_holders = sorted(cid for cid, tid in links if tid == t["VIP"])
    assert vip_holders == sorted([c["Ann"], c["Bob"], c["Cat"]])  # Ann had both: one link, not two
    assert not {tid for _, tid in links} & {t["V.I.P."], t["vip "]} and company_links == [(acme, t["VIP"])]
    assert "V.I.P." not in names and "vip " not in names and "VIP" in names
    assert sorted(trail) == sorted([("contact", c["Ann"], "V.I.P.", "VIP"), ("contact", c["Cat"], "V.I.P.", "VIP"),
                                    ("company", acme, "vip ", "VIP")])
    with session_scope(engine) as s, pytest.raises(NotFound):  # a merged tag is gone
        merge_tags(session=s, actor=admin, survivor_id=t["VIP"], merged_ids=[t["V.I.P."]])
    with session_scope(engine) as s:  # ... for good: its name is free, and "vip" finds the survivor
        assert s.execute(select(func.count()).where(Tag.id.in_([t["V.I.P."], t["vip "]]))).scalar() == 0
        assert ensure_tag(session=s, actor=admin, name="vip").id == t["VIP"]
        assert ensure_tag(session=s, actor=admin, name="V.I.P.").id not in t.values()


def test_delete_tags_and_rights(engine, admin, tagged):
    t, _, _ = tagged
    with session_scope(engine) as s:
        assert delete_tags(session=s, actor=admin, tag_ids=[t["Lead"], t["Old"]]) == 2
    with read_scope(engine) as s:
        assert [x.name for x in unused_tags(session=s, actor=admin)] == []
        actions = s.execute(select(AuditLog.action).where(AuditLog.entity == "tag")).all()
        links = s.execute(select(func.count()).where(ContactTag.tag_id == t["Old"])).scalar()
    assert actions == [("delete",), ("delete",)] and links == 1  # soft: the link stays for a restore
    with session_scope(engine) as s:  # naming a deleted tag again restores it, link and all, rather than failing
        assert ensure_tag(session=s, actor=admin, name=" old ").id == t["Old"]
    with read_scope(engine) as s:
        restored = s.get(Tag, t["Old"])
        last = s.execute(select(AuditLog.action, AuditLog.field, AuditLog.new_value).where(AuditLog.entity == "tag")
                         .order_by(AuditLog.id.desc())).first()
    assert restored.deleted_at is None and tuple(last) == ("restore", "deleted_at", None)
    rep = actor(engine, make_user(engine, "rep"))
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        merge_tags(session=s, actor=rep, survivor_id=t["VIP"], merged_ids=[t["vip "]])
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        delete_tags(session=s, actor=rep, tag_ids=[t["VIP"]])
    with session_scope(engine) as s, pytest.raises(ValidationFailed):
        merge_tags(session=s, actor=admin, survivor_id=t["VIP"], merged_ids=[t["VIP"]])


# --- lists --------------------------------------------------------------------------------------------------------

@pytest.fixture
def lists(engine):
    """Two static contact lists for the same newsletter: A = {1, 2, 3}, B = {3, 4}; and a dynamic segment."""
    with session_scope(engine) as s:
        people = [Contact(first_name=f"P{i}") for i in range(1, 6)]
        a, b = Segment(name="Newsletter A", kind="static"), Segment(name="Newsletter B", kind="static")
        rule = Segment(name="Customers", kind="dynamic", definition={"groups": []})
        firms = Segment(name="Firms", kind="static", entity="company")
        s.add_all([*people, a, b, rule, firms])
        s.flush()
        p = [x.id for x in people]
        s.add_all(SegmentMember(segment_id=a.id, record_id=r) for r in p[:3])
        s.add_all(SegmentMember(segment_id=b.id, record_id=r) for r in p[2:4])
    return {"a": a.id, "b": b.id, "rule": rule.id, "firms": firms.id, "people": p}


def members(engine, segment_id) -> set[int]:
    with read_scope(engine) as s:
        return set(s.execute(select(SegmentMember.record_id).where(SegmentMember.segment_id == segment_id))
                   .scalars())


def test_merge_lists_then_revert_exactly(engine, admin, lists):
    p = lists["people"]
    with session_scope(engine) as s:
        rule = AutomationRule(name="Sign-ups to B", trigger="form_submitted", action="add_to_segment",
                              action_params={"segment_id": lists["b"]})
        s.add(rule)
    before = table_state(engine, Segment, SegmentMember)
    with session_scope(engine) as s:
        result = merge_lists(session=s, actor=admin, keep_id=lists["a"], merged_id=lists["b"], seen_versions=(1, 1))
    assert (result.added, result.members) == (1, 4)  # only P4 is new to A; P3 is in both
    with read_scope(engine) as s:  # the rule adding to B adds to A now
        assert s.get(AutomationRule, rule.id).action_params == {"segment_id": lists["a"]}
    assert members(engine, lists["a"]) == set(p[:4])
    with read_scope(engine) as s:
        b = s.get(Segment, lists["b"])
        trail = s.execute(select(AuditLog.entity, AuditLog.record_id, AuditLog.field, AuditLog.old_value,
                                 AuditLog.new_value)
                          .where(AuditLog.context == f"hygiene:{result.job_id}").order_by(AuditLog.id)).all()
    assert b.deleted_at is not None and members(engine, lists["b"]) == set(p[2:4])  # its own members stay
    assert sorted(trail) == sorted([
        ("segment", lists["a"], "members", "3", "4"), ("segment", lists["a"], "merged_from", None, "Newsletter B"),
        ("segment", lists["b"], "merged_into", None, "Newsletter A"),
        ("automation_rule", rule.id, "action_params", f"{{'segment_id': {lists['b']}}}",
         f"{{'segment_id': {lists['a']}}}")])
    with session_scope(engine) as s:
        assert revert_job(session=s, actor=admin, job_id=result.job_id).restored == 1
    with read_scope(engine) as s:
        assert (s.get(AutomationRule, rule.id).action_params, s.get(AutomationRule, rule.id).version) == (
            {"segment_id": lists["b"]}, 3)
    after = table_state(engine, Segment, SegmentMember)
    assert values_only(strip_segment_bookkeeping(after)) == values_only(strip_segment_bookkeeping(before))


def strip_segment_bookkeeping(state: dict) -> dict:
    """Segments without version and updated_at, which a merge and its revert move forward on the merged one."""
    return {**state, "segment": [tuple(kv for kv in row if kv[0] not in ("version", "updated_at"))
                                 for row in state["segment"]]}


def test_revert_keeps_members_added_to_the_list_since(engine, admin, lists):
    p = lists["people"]
    with session_scope(engine) as s:
        job_id = merge_lists(session=s, actor=admin, keep_id=lists["a"], merged_id=lists["b"],
                             seen_versions=(1, 1)).job_id
    with session_scope(engine) as s:
        s.add(SegmentMember(segment_id=lists["a"], record_id=p[4]))
    with session_scope(engine) as s:
        revert_job(session=s, actor=admin, job_id=job_id)
    assert members(engine, lists["a"]) == {p[0], p[1], p[2], p[4]}  # P4 (from B) out, P5 (added later) kept


def test_merge_lists_refusals(engine, admin, lists):
    cases = [
        (dict(keep_id=lists["a"], merged_id=lists["a"], seen_versions=(1, 1)), ValidationFailed, "different"),
        (dict(keep_id=lists["a"], merged_id=lists["rule"], seen_versions=(1, 1)), ValidationFailed, "static"),
        (dict(keep_id=lists["a"], merged_id=lists["firms"], seen_versions=(1, 1)), ValidationFailed, "company"),
        (dict(keep_id=lists["a"], merged_id=lists["b"], seen_versions=(1, 0)), EditConflict, "Newsletter B"),
        (dict(keep_id=lists["a"], merged_id=999, seen_versions=(1, 1)), NotFound, "999"),
    ]
    for kwargs, error, words in cases:
        with session_scope(engine) as s, pytest.raises(error, match=words):
            merge_lists(session=s, actor=admin, **kwargs)
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        merge_lists(session=s, actor=actor(engine, make_user(engine, "marketer")), keep_id=lists["a"],
                    merged_id=lists["b"], seen_versions=(1, 1))
    assert members(engine, lists["a"]) == set(lists["people"][:3])  # nothing was merged
