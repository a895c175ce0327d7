"""Merging contacts and companies, and undoing a merge: every relation moves, choices are respected, stale versions
and missing rights are refused, and an undo restores every table exactly, or refuses and says why."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select as sa_select, update
from sqlmodel import select

from crm.audit import data_version
from crm.clock import utcnow
from crm.companies import create_company
from crm.contacts import create_contact, update_contact
from crm.customfields import create_field_def, get_values
from crm.db import read_scope, session_scope
from crm.errors import EditConflict, NotFound, PermissionDenied, ValidationFailed
from crm.hygiene.merge import list_merges, merge_preview, merge_records, undo_merge
from crm.hygiene.merge_relations import COMPANY_RELATIONS, CONTACT_RELATIONS, STAYS
from crm.models import (
    Activity, AuditLog, BehaviorEvent, Company, CompanyInput, CompanyTag, Contact, ContactInput, ContactTag,
    CustomFieldDefBase, Deal, DealContact, DuplicateCandidate, ListSubscriptionEvent, MergeLog, Notification, Order,
    PredictionScore, Segment, SegmentMember, SurveyResponse, Tag, Ticket, metadata,
)
from crm.privacy import erase_contact
from crm.search import matching_ids, parse_query
from tests.factories import actor, make_user, stage_named
from tests.test_privacy import build_subject

# The merge's own trail, which grows by design: everything else must be back exactly after an undo.
TRAIL = {"audit_log", "data_version", "merge_log"}


def dump(engine) -> dict[str, list[tuple]]:
    """Every row and every column of every table but the trail, in primary-key order."""
    with read_scope(engine) as s:
        return {t.name: [tuple(row) for row in s.execute(sa_select(t).order_by(*t.primary_key.columns)).all()]
                for t in metadata.sorted_tables if t.name not in TRAIL}


def differing(a: dict, b: dict) -> list[str]:
    return sorted(name for name in a if a[name] != b[name])


@pytest.fixture
def world(engine):
    """Zephyrine (from the privacy tests: a row in every table that can point at a contact), Ann, her duplicate
    with links of her own, some shared with Zephyrine, and Bob, who must stay untouched."""
    z = build_subject(engine)
    me = actor(engine, z["admin"])
    with session_scope(engine) as s:
        ann = create_contact(session=s, actor=me, data=ContactInput(
            first_name="Ann", last_name="Archer", email="ann@mail.example", city="London", country="GB",
            email_opt_in=True), custom={"income": 50000})
        vip = s.exec(select(Tag).where(Tag.name == "VIP")).one()
        gold = Tag(name="Gold")
        orchids = s.exec(select(Segment).where(Segment.name == "Orchid fans")).one()
        lanterns = Segment(name="Lantern buyers", kind="static")
        s.add_all([gold, lanterns])
        s.flush()
        linked = s.exec(select(Deal).where(Deal.title == "Second order")).one()
        # Shared with Zephyrine, so hers are dropped: tag VIP, segment Orchid fans, deal link, lead score (no product).
        s.add_all([ContactTag(contact_id=ann.id, tag_id=vip.id),
                   SegmentMember(segment_id=orchids.id, record_id=ann.id),
                   DealContact(deal_id=linked.id, contact_id=ann.id, role="Buyer"),
                   PredictionScore(model="lead", model_version="1", entity="contact", record_id=ann.id,
                                   probability=0.4)])
        # Zephyrine's own, so they move: tag Gold, segment Lantern buyers.
        s.add_all([ContactTag(contact_id=z["id"], tag_id=gold.id),
                   SegmentMember(segment_id=lanterns.id, record_id=z["id"])])
        s.add(Activity(kind="call", subject="Ann's own call", contact_id=ann.id, occurred_at=utcnow()))
    return {**z, "me": me, "ann": ann.id, "z": z["id"]}


def merge(engine, who, survivor, merged, entity="contact", **choices):
    with session_scope(engine) as s:
        preview = merge_preview(session=s, actor=who, entity=entity, survivor_id=survivor, merged_id=merged)
        return merge_records(session=s, actor=who, entity=entity, survivor_id=survivor, merged_id=merged,
                             choices=choices, seen_versions=preview.seen_versions)


def undo(engine, who, merge_id):
    with session_scope(engine) as s:
        return undo_merge(session=s, actor=who, merge_id=merge_id)


def pointing(engine, model, column: str, record_id: int) -> list[int]:
    with read_scope(engine) as s:
        return list(s.exec(select(model.id).where(getattr(model, column) == record_id).order_by(model.id)).all())


def test_merge_then_undo_restores_every_table_exactly(world, engine):
    before = dump(engine)
    done = merge(engine, world["me"], world["ann"], world["z"], first_name="merged")
    merged_state = dump(engine)
    # The merge touched the two contacts, every kind of related row, custom values and search tokens ...
    assert {"contact", "deal", "deal_contact", "activity", "sales_order", "ticket", "contact_tag", "segment_member",
            "behavior_event", "list_subscription_event", "survey_response", "prediction_score", "notification",
            "custom_field_value", "search_token"} <= set(differing(before, merged_state))
    undo(engine, world["me"], done.merge_id)
    # ... and the undo puts back every row and every column: ids, values, versions, timestamps, links.
    after = dump(engine)
    assert differing(before, after) == []
    assert after == before


def test_preview_shows_both_values_defaults_and_what_will_move(world, engine):
    with read_scope(engine) as s:
        p = merge_preview(session=s, actor=world["me"], entity="contact", survivor_id=world["ann"],
                          merged_id=world["z"])
    fields = {f.field: f for f in p.fields}
    assert (p.survivor_name, p.merged_name) == ("Ann Archer", "Zephyrine Quillfeather")
    assert (fields["first_name"].survivor, fields["first_name"].merged, fields["first_name"].default) == \
        ("Ann", "Zephyrine", "survivor")
    assert (fields["phone"].survivor, fields["phone"].merged, fields["phone"].default) == \
        (None, "+66897654321", "merged")  # Ann has no phone: hers is taken by default
    assert (fields["cf.income"].survivor, fields["cf.income"].merged, fields["cf.income"].default) == \
        (50000, 98765, "survivor")
    assert fields["cf.secret_note"].default == "merged" and fields["cf.secret_note"].editable  # admins may edit it
    related = {r.label: (r.moving, r.dropped) for r in p.related}
    # Hand count from build_subject and the world: shared links are dropped, the rest move.
    assert related == {"deals": (1, 0), "deal contact links": (0, 1), "activities": (2, 0), "orders": (1, 0),
                       "tickets": (1, 0), "tags": (1, 1), "static segment memberships": (1, 1),
                       "behaviour events": (1, 0), "list subscription events": (1, 0), "survey responses": (1, 0),
                       "prediction scores": (0, 1), "notifications": (1, 0)}


def test_every_kind_of_related_row_moves_and_shared_links_are_dropped(world, engine):
    z, ann = world["z"], world["ann"]
    models = [(Deal, "contact_id"), (Activity, "contact_id"), (Order, "contact_id"), (Ticket, "contact_id"),
              (BehaviorEvent, "contact_id"), (ListSubscriptionEvent, "contact_id"), (SurveyResponse, "contact_id")]
    hers = {m: pointing(engine, m, c, z) for m, c in models}
    anns = {m: pointing(engine, m, c, ann) for m, c in models}
    assert all(hers.values())  # every kind has at least one row to move
    done = merge(engine, world["me"], ann, z)
    for model, column in models:
        assert pointing(engine, model, column, z) == []
        assert pointing(engine, model, column, ann) == sorted(anns[model] + hers[model]), model
    with read_scope(engine) as s:
        tags = s.exec(select(Tag.name).join(ContactTag).where(ContactTag.contact_id == ann).order_by(Tag.name)).all()
        links = s.exec(select(DealContact.deal_id, DealContact.role).where(DealContact.contact_id.in_([z, ann]))).all()
        segments = s.exec(select(Segment.name).join(SegmentMember, SegmentMember.segment_id == Segment.id)
                          .where(SegmentMember.record_id == ann).order_by(Segment.name)).all()
        scores = s.exec(select(PredictionScore.record_id, PredictionScore.probability)
                        .where(PredictionScore.record_id.in_([z, ann]))).all()
        notes = s.exec(select(Notification.record_id).where(Notification.entity == "contact")).all()
        merged = s.get(Contact, z)
        moved_audit = s.exec(select(AuditLog.entity, func.count()).where(
            AuditLog.context == f"merge:{done.merge_id}", AuditLog.field.in_(["contact_id", "record_id"]))
            .group_by(AuditLog.entity)).all()
    assert list(tags) == ["Gold", "VIP"]  # one VIP link, not two
    assert [(role) for _, role in links] == ["Buyer"]  # Ann's link to the shared deal stays, Zephyrine's went
    assert list(segments) == ["Lantern buyers", "Orchid fans"]
    assert list(scores) == [(ann, 0.4)]  # Ann's own score stays; the duplicate (same model, NULL product) is dropped
    assert list(notes) == [ann]
    assert merged.deleted_at is not None
    assert done.moved["activities"] == 2 and done.dropped["tags"] == 1
    # One audit row per moved or dropped row, under the merge's context (2 activities, 1 of each other kind ...).
    assert dict(moved_audit) == {"deal": 1, "deal_contact": 1, "activity": 2, "order": 1, "ticket": 1,
                                 "contact_tag": 2, "segment_member": 2, "behavior_event": 1,
                                 "list_subscription_event": 1, "survey_response": 1, "prediction_score": 1,
                                 "notification": 1}


def test_choices_are_respected_and_the_merge_is_audited_searchable_and_logged(world, engine):
    z, ann = world["z"], world["ann"]
    with read_scope(engine) as s:
        version_before = s.get(Contact, ann).version
        counter = data_version(s)
    done = merge(engine, world["me"], ann, z, first_name="merged", email="survivor", city="merged",
                 **{"cf.income": "merged", "cf.birthday": "survivor"})
    with read_scope(engine) as s:
        a = s.get(Contact, ann)
        custom = get_values(session=s, actor=world["me"], entity="contact", record_id=ann)
        rows = s.exec(select(AuditLog).where(AuditLog.context == f"merge:{done.merge_id}",
                                             AuditLog.entity == "contact")).all()
        found = set(s.execute(matching_ids("contact", parse_query("zephyrine"))).scalars())
        assert data_version(s) > counter
    assert (a.first_name, a.last_name, a.email, a.city, a.phone) == \
        ("Zephyrine", "Archer", "ann@mail.example", "Lampang Lanterns", "+66897654321")  # phone: the default
    # income chosen from Zephyrine; birthday kept as Ann's (none); the admin-only note taken by default.
    assert custom == {"income": 98765, "secret_note": "allergic to quillwort"}
    assert a.version == version_before + 1  # one edit: fields and custom values share the version
    survivor_fields = {r.field for r in rows if r.record_id == ann}
    assert {"first_name", "city", "phone", "cf.income", "cf.secret_note", "merged_from"} <= survivor_fields
    assert "email" not in survivor_fields
    assert {(r.field, r.new_value) for r in rows if r.record_id == z and r.field == "merged_into"} == {
        ("merged_into", str(ann))}
    assert ann in found  # the survivor's new first name is searchable
    # Ann's empty fields take Zephyrine's values by default; her own email and country stay.
    assert done.changed_fields == ["first_name", "phone", "job_title", "company_id", "address", "city", "source",
                                   "social_profiles", "interests", "external_id", "cf.income", "cf.secret_note"]


def test_default_choices_never_infer_consent_nor_lose_a_do_not_contact(engine):
    me = actor(engine, make_user(engine, "admin"))
    now = utcnow()
    with session_scope(engine) as s:
        keep = create_contact(session=s, actor=me, data=ContactInput(first_name="Kim", email_opt_in=True))
        dupe = create_contact(session=s, actor=me, data=ContactInput(first_name="Kim", email="kim@mail.example",
                                                                     do_not_contact=True))
        s.execute(update(Contact).where(Contact.id == keep.id).values(last_engaged_at=now - timedelta(days=9)))
        s.execute(update(Contact).where(Contact.id == dupe.id).values(last_engaged_at=now - timedelta(days=2)))
    with read_scope(engine) as s:
        fields = {f.field: f.default for f in merge_preview(session=s, actor=me, entity="contact",
                                                           survivor_id=keep.id, merged_id=dupe.id).fields}
    assert fields["email_opt_in"] == "merged"  # the duplicate never opted in: no consent is carried over
    assert fields["do_not_contact"] == "merged"  # one record says "do not contact": that wins
    assert fields["last_engaged_at"] == "merged"  # the later engagement (2 days ago, not 9)
    assert fields["email"] == "merged" and fields["first_name"] == "survivor"
    merge(engine, me, keep.id, dupe.id)
    with read_scope(engine) as s:
        kim = s.get(Contact, keep.id)
    assert (kim.email_opt_in, kim.do_not_contact, kim.email) == (False, True, "kim@mail.example")


def test_a_stale_version_of_either_record_is_refused_and_nothing_is_written(world, engine):
    before = dump(engine)
    with read_scope(engine) as s:
        versions = (s.get(Contact, world["ann"]).version, s.get(Contact, world["z"]).version)
    for stale in ((versions[0] - 1, versions[1]), (versions[0], versions[1] - 1)):
        with pytest.raises(EditConflict, match="changed after you opened it"):
            with session_scope(engine) as s:
                merge_records(session=s, actor=world["me"], entity="contact", survivor_id=world["ann"],
                              merged_id=world["z"], choices={}, seen_versions=stale)
    assert dump(engine) == before
    with read_scope(engine) as s:
        assert s.exec(select(func.count()).select_from(MergeLog).where(MergeLog.merged_id == world["z"])).one() == 0


def test_bad_input_is_refused_naming_the_field(world, engine):
    me, ann, z = world["me"], world["ann"], world["z"]
    cases = [(dict(entity="deal", survivor_id=ann, merged_id=z, choices={}), "entity"),
             (dict(entity="contact", survivor_id=ann, merged_id=ann, choices={}), "merged_id"),
             (dict(entity="contact", survivor_id=ann, merged_id=z, choices={"shoe_size": "merged"}), "shoe_size"),
             (dict(entity="contact", survivor_id=ann, merged_id=z, choices={"email": "both"}), "email")]
    for kwargs, field in cases:
        with pytest.raises(ValidationFailed) as caught, session_scope(engine) as s:
            merge_records(session=s, actor=me, seen_versions=(1, 1), **kwargs)
        assert caught.value.field == field
    with pytest.raises(NotFound, match="does not exist"), session_scope(engine) as s:
        merge_records(session=s, actor=me, entity="contact", survivor_id=ann, merged_id=999_999, choices={},
                      seen_versions=(1, 1))


def test_rights_are_checked_in_the_domain(engine):
    admin = actor(engine, make_user(engine, "admin"))
    rep = actor(engine, make_user(engine, "rep", team="North"))
    boss = actor(engine, make_user(engine, "manager", team="North"))
    outsider = make_user(engine, "rep", team="South")
    with session_scope(engine) as s:
        create_field_def(session=s, actor=admin, data=CustomFieldDefBase(
            entity="contact", key="vetted", label="Vetted", field_type="checkbox",
            view_roles=["admin", "manager"], edit_roles=["admin"]))
        mine = create_contact(session=s, actor=admin, data=ContactInput(first_name="Pat", owner_id=rep.id))
        twin = create_contact(session=s, actor=admin, data=ContactInput(first_name="Pat", owner_id=rep.id),
                              custom={"vetted": True})
        theirs = create_contact(session=s, actor=admin, data=ContactInput(first_name="Pat", owner_id=outsider))
    with pytest.raises(PermissionDenied, match="may not merge"):  # reps do not have the data-hygiene right
        merge(engine, rep, mine.id, twin.id)
    with pytest.raises(PermissionDenied, match="may not edit"):  # the manager may not edit the South rep's contact
        merge(engine, boss, mine.id, theirs.id)
    with pytest.raises(PermissionDenied, match="Vetted"):  # a field the manager may see but not edit
        merge(engine, boss, mine.id, twin.id, **{"cf.vetted": "merged"})
    done = merge(engine, boss, mine.id, twin.id)  # by default the field the manager may not edit stays as it is
    with read_scope(engine) as s:
        assert get_values(session=s, actor=admin, entity="contact", record_id=mine.id) == {}
        with pytest.raises(PermissionDenied):
            undo_merge(session=s, actor=rep, merge_id=done.merge_id)
        assert [m.id for m in list_merges(session=s, actor=boss)] == [done.merge_id]


def test_an_undo_is_refused_after_a_conflicting_change_and_says_what(world, engine):
    me, ann, z = world["me"], world["ann"], world["z"]
    done = merge(engine, me, ann, z)
    with session_scope(engine) as s:  # someone moves a deal the merge moved on to Bob
        deal = s.exec(select(Deal).where(Deal.title == "Lantern order")).one()
        s.execute(update(Deal).where(Deal.id == deal.id).values(contact_id=world["bob"]))
    with pytest.raises(EditConflict, match=r"1 deals the merge moved were moved again or deleted since \(deal \d+\)"):
        undo(engine, me, done.merge_id)
    with session_scope(engine) as s:
        s.execute(update(Deal).where(Deal.id == deal.id).values(contact_id=ann))
        version = s.get(Contact, ann).version
        update_contact(session=s, actor=me, contact_id=ann, data=ContactInput(city="Leeds"), seen_version=version)
    with pytest.raises(EditConflict, match=rf"contact {ann} was edited by .* \(city\) after the merge") as caught:
        undo(engine, me, done.merge_id)
    assert "nothing was changed" in caught.value.message
    with read_scope(engine) as s:
        assert s.get(MergeLog, done.merge_id).undone_at is None and s.get(Contact, z).deleted_at is not None


def test_merges_are_undone_newest_first_and_an_undo_happens_once(world, engine):
    me = world["me"]
    before = dump(engine)
    first = merge(engine, me, world["ann"], world["z"])
    second = merge(engine, me, world["ann"], world["bob"], city="merged")
    with pytest.raises(EditConflict, match="after the merge"):  # the second merge changed Ann since the first
        undo(engine, me, first.merge_id)
    undo(engine, me, second.merge_id)
    undo(engine, me, first.merge_id)
    assert dump(engine) == before
    with pytest.raises(ValidationFailed, match="already undone"):
        undo(engine, me, first.merge_id)
    with read_scope(engine) as s:
        log = list_merges(session=s, actor=me)
    assert [(m.id, m.survivor_name, m.merged_name, m.merged_by is not None, m.undone_at is not None)
            for m in log[:2]] == [(second.merge_id, "Ann Archer", "Bob Bystander", True, True),
                                  (first.merge_id, "Ann Archer", "Zephyrine Quillfeather", True, True)]


def test_erasure_clears_the_merge_snapshot_and_the_undo_then_refuses(world, engine):
    me, ann, z = world["me"], world["ann"], world["z"]
    done = merge(engine, me, ann, z)
    with session_scope(engine) as s:  # erasing the merged-away contact still works
        report = erase_contact(session=s, actor=me, contact_id=z)
    assert report.contact_id == z and not report.already_erased
    with read_scope(engine) as s:
        assert s.get(MergeLog, done.merge_id).snapshot == {"erased": True}  # both rows' values are gone from the log
    with pytest.raises(ValidationFailed, match="erased since, so there is nothing to restore"):
        undo(engine, me, done.merge_id)


def test_a_pair_the_duplicate_finder_found_is_marked_merged_and_reopened_by_the_undo(world, engine):
    low, high = sorted((world["ann"], world["z"]))
    with session_scope(engine) as s:
        pair = DuplicateCandidate(entity="contact", a_id=low, b_id=high, score=0.9, reasons=["same phone"])
        s.add(pair)
        s.flush()
        pair_id = pair.id
    done = merge(engine, world["me"], world["ann"], world["z"])
    with read_scope(engine) as s:
        assert s.get(DuplicateCandidate, pair_id).status == "merged"
    undo(engine, world["me"], done.merge_id)
    with read_scope(engine) as s:
        assert s.get(DuplicateCandidate, pair_id).status == "open"
        contexts = s.exec(select(AuditLog.context).where(AuditLog.entity == "duplicate_candidate",
                                                         AuditLog.record_id == pair_id, AuditLog.field == "status")
                          .order_by(AuditLog.id)).all()
    assert contexts == [f"merge:{done.merge_id}", f"merge:{done.merge_id}:undo"]


@pytest.fixture
def firms(engine):
    """Acme (survivor), ACME Inc (its duplicate) with a child company, contacts, deals, activities, orders,
    tickets, tags, a static company segment and a notification; and Parent Co above Acme."""
    admin = make_user(engine, "admin")
    me = actor(engine, admin)
    with session_scope(engine) as s:
        create_field_def(session=s, actor=me, data=CustomFieldDefBase(entity="company", key="tier", label="Tier",
                                                                      field_type="text"))
        parent = create_company(session=s, actor=me, data=CompanyInput(name="Parent Co"))
        acme = create_company(session=s, actor=me, data=CompanyInput(name="Acme", parent_id=parent.id))
        dupe = create_company(session=s, actor=me, data=CompanyInput(name="ACME Inc", domain="acme.example",
                                                                     industry="Tools"), custom={"tier": "gold"})
        child = create_company(session=s, actor=me, data=CompanyInput(name="Acme Labs", parent_id=dupe.id))
        people = [create_contact(session=s, actor=me, data=ContactInput(first_name=n, company_id=c))
                  for n, c in (("Ada", dupe.id), ("Ben", dupe.id), ("Cy", acme.id))]
        stage = stage_named(s, "Proposal")
        vip, gold = Tag(name="VIP"), Tag(name="Gold")
        segment = Segment(name="Key accounts", kind="static", entity="company")
        s.add_all([vip, gold, segment])
        s.flush()
        now = utcnow()
        s.add_all([Deal(title="Anvils", pipeline_id=stage.pipeline_id, stage_id=stage.id, company_id=dupe.id),
                   Activity(kind="note", subject="Met ACME", company_id=dupe.id, occurred_at=now),
                   Order(company_id=dupe.id, ordered_at=now, total=90.0),
                   Ticket(company_id=dupe.id, subject="Broken anvil", opened_at=now),
                   CompanyTag(company_id=dupe.id, tag_id=vip.id), CompanyTag(company_id=dupe.id, tag_id=gold.id),
                   CompanyTag(company_id=acme.id, tag_id=vip.id),
                   SegmentMember(segment_id=segment.id, record_id=dupe.id),
                   Notification(user_id=admin, message="Renewal", entity="company", record_id=dupe.id)])
    return {"me": me, "acme": acme.id, "dupe": dupe.id, "child": child.id, "parent": parent.id,
            "people": [p.id for p in people]}


def test_merging_a_company_moves_its_contacts_deals_and_the_rest_and_undoes_exactly(firms, engine):
    acme, dupe = firms["acme"], firms["dupe"]
    before = dump(engine)
    done = merge(engine, firms["me"], acme, dupe, "company", name="survivor")
    assert done.moved == {"contacts": 2, "child companies": 1, "deals": 1, "activities": 1, "orders": 1,
                          "tickets": 1, "tags": 1, "static segment memberships": 1, "prediction scores": 0,
                          "notifications": 1}
    assert done.dropped["tags"] == 1  # both had VIP
    with read_scope(engine) as s:
        a = s.get(Company, acme)
        assert (a.name, a.domain, a.industry, a.parent_id) == ("Acme", "acme.example", "Tools", firms["parent"])
        assert get_values(session=s, actor=firms["me"], entity="company", record_id=acme) == {"tier": "gold"}
        assert s.get(Company, firms["child"]).parent_id == acme
        assert s.get(Company, dupe).deleted_at is not None
        assert acme in set(s.execute(matching_ids("company", parse_query("acme.example"))).scalars())
    assert pointing(engine, Contact, "company_id", acme) == sorted(firms["people"])
    for model in (Deal, Activity, Order, Ticket):
        assert pointing(engine, model, "company_id", dupe) == [], model
    undo(engine, firms["me"], done.merge_id)
    assert dump(engine) == before


def test_a_parent_that_is_one_of_the_pair_is_cleared_and_a_loop_is_refused(firms, engine):
    me, acme, dupe, child = firms["me"], firms["acme"], firms["dupe"], firms["child"]
    # Acme Labs (a child of ACME Inc) as the survivor: its parent disappears with the merge.
    done = merge(engine, me, child, dupe, "company")
    with read_scope(engine) as s:
        assert s.get(Company, child).parent_id is None
    undo(engine, me, done.merge_id)
    with session_scope(engine) as s:  # Parent Co under ACME Inc: merging ACME Inc into Acme would make a loop
        s.execute(update(Company).where(Company.id == firms["parent"]).values(parent_id=dupe))
    with pytest.raises(ValidationFailed, match="its own parent"):
        merge(engine, me, acme, dupe, "company")


def test_every_pointer_to_a_contact_or_company_is_moved_or_stays_on_purpose():
    """A new table that points at contacts or companies must be added to the relations or to STAYS."""
    handled = {r.key for r in CONTACT_RELATIONS + COMPANY_RELATIONS} | set(STAYS)
    pointers = {f"{t.name}.{c.name}" for t in metadata.sorted_tables for c in t.columns
                if any(fk.column.table.name in ("contact", "company") for fk in c.foreign_keys)
                or c.name == "record_id"}
    assert pointers - handled == set()
    assert "deal.contact_id" in pointers and "segment_member.record_id" in pointers
