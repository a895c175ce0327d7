"""Saved segments and what is done with them: dynamic and static, snapshots and their differences, consent on
export, tags, tasks, lists, rights, version conflicts and audit; and the CLI."""
import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import select

from crm.db import read_scope, session_scope
from crm.errors import EditConflict, PermissionDenied, ValidationFailed
from crm.exporting import frame_to_csv
from crm.models import Activity, AuditLog, Contact, ContactTag, SegmentSnapshot, Tag, User
from crm.permissions import load_actor
from crm.segments.actions import add_to_static, assign_owners, create_tasks, export_segment, tag_segment
from crm.segments.service import (
    compare_snapshots, count_matching, count_segment, create_segment, delete_segment, get_segment, list_segments,
    sample, snapshot_members, take_snapshot, update_segment,
)
from tests.factories import make_user
from tests.test_cli import crm  # noqa: F401 - the CLI fixture
from tests.test_segments_compiler import NOW, one, world  # noqa: F401 - the shared hand-made data set

CUSTOMERS = one("lifecycle_stage", "equals", "customer")


def names(engine, ids) -> set[str]:
    with read_scope(engine) as s:
        return set(s.exec(select(Contact.first_name).where(Contact.id.in_(list(ids)))).all())


def test_count_and_sample_follow_the_definition(world):
    engine, who, _ = world
    with read_scope(engine) as s:
        assert count_matching(session=s, actor=who, definition=CUSTOMERS) == 2
        rows = sample(session=s, actor=who, definition=CUSTOMERS, n=1)
    assert len(rows) == 1 and rows["name"].iloc[0] in ("Ann Archer", "Cara Cole")
    assert list(rows.columns) == ["id", "name", "email", "company", "lifecycle_stage", "country", "owner"]


def test_dynamic_follows_the_data_and_static_stays_frozen(world):
    engine, who, ids = world
    with session_scope(engine) as s:
        dynamic = create_segment(session=s, actor=who, name="Customers", definition=CUSTOMERS)
        frozen = create_segment(session=s, actor=who, name="Customers in May", definition=CUSTOMERS, kind="static")
    with session_scope(engine) as s:
        s.execute(update(Contact).where(Contact.id == ids["contacts"]["Dan"]).values(lifecycle_stage="customer"))
    with read_scope(engine) as s:
        assert count_segment(session=s, actor=who, segment=dynamic) == 3
        assert count_segment(session=s, actor=who, segment=frozen) == 2
        assert [x.name for x in list_segments(session=s, actor=who)] == ["Customers", "Customers in May"]
        assert get_segment(session=s, actor=who, segment="customers in may").id == frozen.id


def test_snapshots_compare_who_joined_and_who_left(world):
    engine, who, ids = world
    c = ids["contacts"]
    with session_scope(engine) as s:
        segment = create_segment(session=s, actor=who, name="Customers", definition=CUSTOMERS)
        first = take_snapshot(session=s, actor=who, segment=segment, purpose="export")
    with session_scope(engine) as s:
        s.execute(update(Contact).where(Contact.id == c["Dan"]).values(lifecycle_stage="customer"))
        s.execute(update(Contact).where(Contact.id == c["Ann"]).values(lifecycle_stage="churned"))
    with session_scope(engine) as s:
        second = take_snapshot(session=s, actor=who, segment=segment, purpose="export")
        difference = compare_snapshots(session=s, actor=who, earlier=first.id, later=second.id)
        assert names(engine, snapshot_members(session=s, snapshot_id=first.id)) == {"Ann", "Cara"}
    assert names(engine, difference.joined) == {"Dan"} and names(engine, difference.left) == {"Ann"}
    assert difference.stayed == 1 and first.member_count == 2 and second.member_count == 2


def test_export_leaves_out_do_not_contact_unless_asked_and_records_the_choice(world):
    engine, who, _ = world
    everyone = {"groups": []}
    with session_scope(engine) as s:
        segment = create_segment(session=s, actor=who, name="All", definition=everyone)
        plain = export_segment(session=s, actor=who, segment=segment)
        with_dnc = export_segment(session=s, actor=who, segment=segment, include_do_not_contact=True)
    assert set(plain.frame["first_name"]) == {"Ann", "Cara", "Dan"} and plain.excluded_do_not_contact == 1
    assert set(with_dnc.frame["first_name"]) == {"Ann", "Bob", "Cara", "Dan"}
    with read_scope(engine) as s:
        snaps = {x.id: x for x in s.exec(select(SegmentSnapshot)).all()}
        assert not snaps[plain.snapshot.id].include_do_not_contact and snaps[plain.snapshot.id].member_count == 3
        assert snaps[with_dnc.snapshot.id].include_do_not_contact and snaps[with_dnc.snapshot.id].member_count == 4
        exported = s.exec(select(AuditLog).where(AuditLog.entity == "segment", AuditLog.action == "export",
                                                 AuditLog.field == "include_do_not_contact")).all()
    assert sorted(a.new_value for a in exported) == ["False", "True"]


def test_exported_file_neutralises_formulas(world):
    engine, who, ids = world
    with session_scope(engine) as s:
        s.execute(update(Contact).where(Contact.id == ids["contacts"]["Ann"]).values(
            first_name='=HYPERLINK("http://evil","x")'))
        segment = create_segment(session=s, actor=who, name="Customers", definition=CUSTOMERS)
        frame = export_segment(session=s, actor=who, segment=segment).frame
    rows = list(csv.DictReader(io.StringIO(frame_to_csv(frame).decode("utf-8-sig"))))
    assert any(r["first_name"] == "'=HYPERLINK(\"http://evil\",\"x\")" for r in rows)
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values() if v)


def test_tag_tasks_and_add_to_list_act_on_the_members(world):
    engine, who, ids = world
    with session_scope(engine) as s:
        customers = create_segment(session=s, actor=who, name="Customers", definition=CUSTOMERS)
        churned = s.exec(select(Tag).where(Tag.name == "Churn risk")).one()
        assert tag_segment(session=s, actor=who, segment=customers, tag_id=churned.id) == 1  # Cara had it
        tasks = create_tasks(session=s, actor=who, segment=customers, subject="Call about renewal",
                             due_at=NOW + timedelta(days=3))
        target = create_segment(session=s, actor=who, name="Campaign list", kind="static",
                                definition=one("lifecycle_stage", "equals", "mql"))
        assert add_to_static(session=s, actor=who, segment=customers, target=target.id) == 2
        assert add_to_static(session=s, actor=who, segment=customers, target="Campaign list") == 0  # already in
        assert count_segment(session=s, actor=who, segment=target) == 3
        with pytest.raises(ValidationFailed):
            add_to_static(session=s, actor=who, segment=target, target=customers.id)  # a dynamic one is no list
    assert tasks.created == 2 and set(tasks.by_rep) == {"Rep East", "Rep West"}
    with read_scope(engine) as s:
        tagged = s.exec(select(ContactTag.contact_id).where(ContactTag.tag_id == churned.id)).all()
        assert names(engine, tagged) == {"Ann", "Cara"}
        assert len(s.exec(select(Activity).where(Activity.subject == "Call about renewal")).all()) == 2
        purposes = sorted(x.purpose for x in s.exec(select(SegmentSnapshot)).all())
    assert purposes == ["add to list", "add to list", "tag", "tasks"]


def test_owners_are_assigned_round_robin_within_a_team_by_those_who_may_edit(world, engine):
    engine, who, ids = world
    second = make_user(engine, "rep", team="East", name="Abe East")  # sorts before "Rep East"
    admin = make_user(engine, "admin", name="Ada Admin")
    everyone = {"groups": []}
    with session_scope(engine) as s:
        segment = create_segment(session=s, actor=who, name="All", definition=everyone)
        with pytest.raises(PermissionDenied):  # a marketer reads every contact but may not edit them
            assign_owners(session=s, actor=who, segment=segment, team_id=team_of(s, ids["east"]))
    with session_scope(engine) as s:
        given = assign_owners(session=s, actor=load_actor(s, admin), segment=segment,
                              team_id=team_of(s, ids["east"]))
        owners = dict(s.exec(select(Contact.first_name, Contact.owner_id).where(Contact.deleted_at.is_(None))).all())
    # members by id (Ann, Bob, Cara, Dan) to the reps by name (Abe East, Rep East) in turn
    assert given == {"Abe East": 2, "Rep East": 2}
    assert owners == {"Ann": second, "Bob": ids["east"], "Cara": second, "Dan": ids["east"]}


def team_of(s, user_id: int) -> int:
    return s.get(User, user_id).team_id


def test_rights_conflicts_and_audit(world):
    engine, who, ids = world
    with read_scope(engine) as s:
        rep = load_actor(s, ids["east"])
    with session_scope(engine) as s:
        with pytest.raises(PermissionDenied):
            create_segment(session=s, actor=rep, name="Mine", definition=CUSTOMERS)
        segment = create_segment(session=s, actor=who, name="Customers", definition=CUSTOMERS)
        with pytest.raises(PermissionDenied):
            export_segment(session=s, actor=rep, segment=segment)
        with pytest.raises(ValidationFailed, match="name"):
            create_segment(session=s, actor=who, name="customers", definition=CUSTOMERS)
        with pytest.raises(ValidationFailed, match="groups\\[0\\].conditions\\[0\\].value"):
            create_segment(session=s, actor=who, name="Bad", definition=one("lead_score", "gte", "many"))
        renamed = update_segment(session=s, actor=who, segment_id=segment.id, version=segment.version,
                                 name="Paying customers")
        with pytest.raises(EditConflict):
            update_segment(session=s, actor=who, segment_id=segment.id, version=segment.version, name="Stale")
        delete_segment(session=s, actor=who, segment_id=segment.id, version=renamed.version)
        actions = [a.action for a in s.exec(select(AuditLog).where(AuditLog.entity == "segment",
                                                                   AuditLog.record_id == segment.id)).all()]
    assert {"create", "update", "delete"} <= set(actions)


def test_cli_lists_counts_and_exports(world, crm, tmp_path):
    engine, who, _ = world
    if engine.dialect.name != "sqlite":
        pytest.skip("the CLI runs on the test's SQLite file; the service layer above runs on both databases")
    assert str(crm.db) in str(engine.url)  # the CLI and the fixture share one database file
    with session_scope(engine) as s:
        create_segment(session=s, actor=who, name="Customers", definition=CUSTOMERS)
        create_segment(session=s, actor=who, name="Everyone", definition={"groups": []})
        email = s.get(User, who.id).email
    listed = crm("segment", "list", "--as", email)
    assert "Customers\tcontact\tdynamic\t2" in listed.stdout and "Everyone\tcontact\tdynamic\t4" in listed.stdout
    assert crm("segment", "count", "everyone", "--as", email).stdout.strip() == "4"
    out = tmp_path / "everyone.csv"
    done = crm("export", "segment", "Everyone", str(out), "--as", email)
    assert "Exported 3 records" in done.stderr and "1 do-not-contact left out" in done.stderr, done.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert sorted(r["first_name"] for r in rows) == ["Ann", "Cara", "Dan"]
    missing = crm("segment", "count", "Nope", "--as", email)
    assert missing.returncode == 1 and "no segment named 'Nope'" in missing.stderr
