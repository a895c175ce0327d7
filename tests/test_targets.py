"""A model's top buyers become a static segment and round-robin follow-up tasks for the owners' teams."""
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from crm.contacts import create_contact
from crm.db import read_scope, session_scope
from crm.errors import PermissionDenied, ValidationFailed
from crm.models import Activity, AuditLog, ContactInput, SegmentMember, SegmentSnapshotMember
from crm.targets import assign_follow_up_tasks, save_static_segment
from tests.factories import actor, make_user

DUE = datetime(2030, 1, 15, 17, tzinfo=UTC)


def _contacts(engine, owner: int, n: int) -> list[int]:
    with session_scope(engine) as s:
        who = actor(engine, owner)
        return [create_contact(session=s, actor=who, data=ContactInput(first_name=f"C{i}", last_name="Target")).id
                for i in range(n)]


def test_top_buyers_become_a_static_segment_with_a_snapshot(engine):
    marketer = make_user(engine, "marketer")
    rep = make_user(engine, "rep", team="East")
    ids = _contacts(engine, rep, 3)
    with session_scope(engine) as s:
        made = save_static_segment(session=s, actor=actor(engine, marketer), name="Likely buyers of Pro",
                                   contact_ids=[*ids, 999_999], definition={"model": "cross-sell", "product": "Pro"})
    assert (made.members, made.skipped) == (3, 1)  # an id that is no contact is left out, and counted
    with read_scope(engine) as s:
        assert sorted(s.exec(select(SegmentMember.record_id)).all()) == ids
        assert sorted(s.exec(select(SegmentSnapshotMember.record_id)).all()) == ids
        assert s.exec(select(AuditLog).where(AuditLog.entity == "segment")).first() is not None
    with session_scope(engine) as s, pytest.raises(ValidationFailed, match="name"):
        save_static_segment(session=s, actor=actor(engine, marketer), name="likely buyers of pro", contact_ids=ids,
                            definition={})


def test_tasks_go_round_robin_to_the_reps_of_each_owners_team(engine):
    marketer = make_user(engine, "marketer")
    anna = make_user(engine, "rep", team="East", name="Anna")
    make_user(engine, "rep", team="East", name="Bert")
    west = make_user(engine, "rep", team="West", name="Wes")
    loner = make_user(engine, "manager", name="No Team")
    east_ids, west_ids, orphan = _contacts(engine, anna, 5), _contacts(engine, west, 2), _contacts(engine, loner, 1)
    with session_scope(engine) as s:
        done = assign_follow_up_tasks(session=s, actor=actor(engine, marketer), contact_ids=east_ids + west_ids + orphan,
                                      subject="Offer Pro", due_at=DUE)
    assert done.by_rep == {"Anna": 3, "Bert": 2, "Wes": 2} and done.created == 7
    assert done.unassigned == orphan
    with read_scope(engine) as s:
        tasks = s.exec(select(Activity).where(Activity.kind == "task")).all()
    assert len(tasks) == 7 and {t.subject for t in tasks} == {"Offer Pro"}


def test_reps_cannot_build_target_lists(engine):
    rep = make_user(engine, "rep", team="East")
    ids = _contacts(engine, rep, 1)
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        save_static_segment(session=s, actor=actor(engine, rep), name="Mine", contact_ids=ids, definition={})
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        assign_follow_up_tasks(session=s, actor=actor(engine, rep), contact_ids=ids, subject="x", due_at=DUE)
