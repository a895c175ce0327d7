"""The tasks inbox: buckets at their boundaries, snooze hiding a task until it ends, done and reopen with versions,
audit and rights; notifications read and marked; and a task a rule created, completed by its rep."""
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from crm.automations.rules import RuleInput, create_rule
from crm.clock import utcnow
from crm.contacts import create_contact
from crm.db import read_scope, session_scope
from crm.errors import EditConflict, NotFound, PermissionDenied, ValidationFailed
from crm.home import rep_home
from crm.models import Activity, AuditLog, Contact, ContactInput
from crm.notifications import list_notifications, mark_read, notify, unread_count
from crm.tasks import complete_task, reopen_task, snooze_task, task_inbox
from tests.factories import actor, make_user

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
MIDNIGHT = NOW.replace(hour=0)


@pytest.fixture
def team(engine):
    return {"ann": make_user(engine, "rep", team="East", name="Ann East", password=None),
            "bob": make_user(engine, "rep", team="East", name="Bob East", password=None),
            "wes": make_user(engine, "rep", team="West", name="Wes West", password=None),
            "meg": make_user(engine, "manager", team="East", name="Meg Manager", password=None),
            "mia": make_user(engine, "marketer", name="Mia Marketer", password=None)}


def tasks(engine, assignee, specs: dict[str, dict]) -> dict[str, int]:
    """Open tasks by subject, each {field: value} (due_at, snoozed_until, done_at, ...)."""
    with session_scope(engine) as s:
        rows = {subject: Activity(kind="task", subject=subject, assignee_id=assignee, owner_id=assignee, **spec)
                for subject, spec in specs.items()}
        s.add_all(rows.values())
        s.flush()
        return {subject: row.id for subject, row in rows.items()}


def subjects(items) -> list[str]:
    return [t.subject for t in items]


def test_inbox_buckets_at_their_boundaries(engine, team):
    tasks(engine, team["ann"], {
        "3 days late": {"due_at": NOW - timedelta(days=3)},
        "23:59:59 yesterday": {"due_at": MIDNIGHT - timedelta(seconds=1)},  # overdue
        "midnight today": {"due_at": MIDNIGHT},  # due today
        "23:59:59 today": {"due_at": MIDNIGHT + timedelta(days=1, seconds=-1)},  # due today
        "midnight tomorrow": {"due_at": MIDNIGHT + timedelta(days=1)},  # upcoming
        "last upcoming second": {"due_at": MIDNIGHT + timedelta(days=8, seconds=-1)},  # upcoming: 7 days after today
        "eight days on": {"due_at": MIDNIGHT + timedelta(days=8)},  # beyond the inbox
        "done": {"due_at": NOW - timedelta(days=1), "done_at": NOW},
        "snoozed late one": {"due_at": NOW - timedelta(days=2), "snoozed_until": NOW + timedelta(hours=1)},
        "snooze ended": {"due_at": NOW - timedelta(days=2), "snoozed_until": NOW - timedelta(hours=1)},
        "snoozed till noon, ended": {"due_at": NOW - timedelta(days=5), "snoozed_until": NOW},
    })
    tasks(engine, team["bob"], {"Bob's": {"due_at": NOW}})
    with read_scope(engine) as s:
        inbox = task_inbox(session=s, actor=actor(engine, team["ann"]), now=NOW)
    assert subjects(inbox.overdue) == ["3 days late", "23:59:59 yesterday"]
    # A snooze that ended today counts from its end: the overdue task is today's now, after the ones due earlier.
    assert subjects(inbox.due_today) == ["midnight today", "snooze ended", "snoozed till noon, ended",
                                         "23:59:59 today"]
    assert subjects(inbox.upcoming) == ["midnight tomorrow", "last upcoming second"]
    assert subjects(inbox.snoozed) == ["snoozed late one"]
    assert inbox.counts == {"overdue": 2, "due_today": 4, "upcoming": 2, "snoozed": 1}
    with read_scope(engine) as s:  # an hour later the snooze is over: back among today's tasks
        later = task_inbox(session=s, actor=actor(engine, team["ann"]), now=NOW + timedelta(hours=1), limit=2)
    assert later.counts["due_today"] == 5 and later.counts["snoozed"] == 0
    assert len(later.due_today) == 2  # lists are capped at the limit, counts are not


def test_home_page_lists_follow_the_same_buckets(engine, team):
    tasks(engine, team["ann"], {
        "late": {"due_at": NOW - timedelta(days=1)},
        "snoozed": {"due_at": NOW - timedelta(days=1), "snoozed_until": NOW + timedelta(days=2)}})
    with read_scope(engine) as s:
        home = rep_home(session=s, actor=actor(engine, team["ann"]), now=NOW)
    assert list(home.overdue["subject"]) == ["late"] and home.upcoming.empty  # the snoozed one waits, hidden


def test_done_and_reopen_are_version_checked_and_audited(engine, team):
    ids = tasks(engine, team["ann"], {"Call": {"due_at": NOW, "snoozed_until": utcnow() + timedelta(days=1)}})
    ann = actor(engine, team["ann"])
    with session_scope(engine) as s:
        done = complete_task(session=s, actor=ann, task_id=ids["Call"], seen_version=1)
    assert done.done_at is not None and done.snoozed_until is None and done.version == 2
    with pytest.raises(EditConflict), session_scope(engine) as s:  # a second tab still shows version 1
        complete_task(session=s, actor=ann, task_id=ids["Call"], seen_version=1)
    with pytest.raises(ValidationFailed) as caught, session_scope(engine) as s:
        complete_task(session=s, actor=ann, task_id=ids["Call"], seen_version=2)
    assert caught.value.field == "done_at"
    with session_scope(engine) as s:
        reopened = reopen_task(session=s, actor=ann, task_id=ids["Call"], seen_version=2)
    assert reopened.done_at is None and reopened.version == 3
    with read_scope(engine) as s:
        rows = s.exec(select(AuditLog.actor_id, AuditLog.field, AuditLog.record_version).where(
            AuditLog.entity == "activity", AuditLog.record_id == ids["Call"]).order_by(AuditLog.id)).all()
    assert rows == [(team["ann"], "done_at", 2), (team["ann"], "snoozed_until", 2), (team["ann"], "done_at", 3)]


def test_snooze_hides_a_task_until_it_ends_and_must_be_in_the_future(engine, team):
    ids = tasks(engine, team["ann"], {"Call": {"due_at": utcnow() - timedelta(days=1)}})
    ann = actor(engine, team["ann"])
    for until in (utcnow() - timedelta(minutes=1), utcnow() + timedelta(days=366)):
        with pytest.raises(ValidationFailed) as caught, session_scope(engine) as s:
            snooze_task(session=s, actor=ann, task_id=ids["Call"], until=until, seen_version=1)
        assert caught.value.field == "snoozed_until"
    until = utcnow() + timedelta(days=2)
    with session_scope(engine) as s:
        assert snooze_task(session=s, actor=ann, task_id=ids["Call"], until=until, seen_version=1).version == 2
    with read_scope(engine) as s:
        now = task_inbox(session=s, actor=ann)
        back = task_inbox(session=s, actor=ann, now=until + timedelta(minutes=1))
    assert (now.counts["overdue"], subjects(now.snoozed)) == (0, ["Call"])
    assert subjects(back.due_today) == ["Call"] and back.snoozed == []  # due at the snooze's end: that day's task


def test_who_may_complete_a_task(engine, team):
    ids = tasks(engine, team["ann"], {"A": {"due_at": NOW}, "B": {"due_at": NOW}})
    for who in ("bob", "wes", "mia"):  # a teammate rep, another team's rep, a marketer
        with pytest.raises(PermissionDenied), session_scope(engine) as s:
            complete_task(session=s, actor=actor(engine, team[who]), task_id=ids["A"], seen_version=1)
    with session_scope(engine) as s:  # Ann's manager may
        assert complete_task(session=s, actor=actor(engine, team["meg"]), task_id=ids["B"], seen_version=1).done_at
    with session_scope(engine) as s:
        note = Activity(kind="note", subject="Not a task", owner_id=team["ann"], occurred_at=NOW)
        s.add(note)
        s.flush()
        note_id = note.id
    with pytest.raises(NotFound), session_scope(engine) as s:
        complete_task(session=s, actor=actor(engine, team["ann"]), task_id=note_id, seen_version=1)


def test_notifications_are_listed_and_marked_read_by_their_user_only(engine, team):
    ann, bob = actor(engine, team["ann"]), actor(engine, team["bob"])
    with session_scope(engine) as s:
        first = notify(s, user_id=team["ann"], message="Deal idle: Acme")
        second = notify(s, user_id=team["ann"], message="New lead: Zoe")
        bobs = notify(s, user_id=team["bob"], message="For Bob")
    with read_scope(engine) as s:
        assert [n.message for n in list_notifications(session=s, actor=ann)] == ["New lead: Zoe", "Deal idle: Acme"]
        assert unread_count(session=s, actor=ann) == 2
    with pytest.raises(NotFound), session_scope(engine) as s:
        mark_read(session=s, actor=ann, notification_ids=[first, bobs])  # Bob's is not Ann's to mark
    with session_scope(engine) as s:
        assert mark_read(session=s, actor=ann, notification_ids=[first]) == 1
        assert mark_read(session=s, actor=ann, notification_ids=[first]) == 0  # already read
    with read_scope(engine) as s:
        assert [n.id for n in list_notifications(session=s, actor=ann, unread_only=True)] == [second]
        inbox = task_inbox(session=s, actor=ann)
    assert inbox.unread_notifications == 1 and [n.id for n in inbox.notifications] == [second, first]
    with session_scope(engine) as s:
        assert mark_read(session=s, actor=ann) == 1  # all the rest
        assert unread_count(session=s, actor=bob) == 1
        audited = s.exec(select(AuditLog.action).where(AuditLog.entity == "notification",
                                                       AuditLog.record_id == first)).all()
    assert audited == ["create", "read"]


def test_a_task_created_by_a_rule_reaches_the_reps_inbox_and_is_done_there(engine, team):
    admin = make_user(engine, "admin", name="Ada Admin", password=None)
    with session_scope(engine) as s:
        create_rule(session=s, actor=actor(engine, admin), data=RuleInput(
            name="Call new contacts", trigger="contact_created", action="create_task",
            action_params={"subject": "Introductory call", "due_in_days": 0}))
        create_rule(session=s, actor=actor(engine, admin), data=RuleInput(
            name="Tell the owner", trigger="contact_created", action="notify_owner",
            action_params={"message": "A new contact is yours"}))
    ann = actor(engine, team["ann"])
    with session_scope(engine) as s:
        contact = create_contact(session=s, actor=ann, data=ContactInput(first_name="Zoe", last_name="Lane"))
    with read_scope(engine) as s:
        inbox = task_inbox(session=s, actor=ann)
    (task,) = inbox.due_today
    assert (task.subject, task.contact, task.contact_id) == ("Introductory call", "Zoe Lane", contact.id)
    assert [n.message for n in inbox.notifications] == ["A new contact is yours: Zoe Lane"]
    with session_scope(engine) as s:
        complete_task(session=s, actor=ann, task_id=task.id, seen_version=task.version)
    with read_scope(engine) as s:
        assert task_inbox(session=s, actor=ann).counts["due_today"] == 0
        assert s.get(Contact, contact.id) is not None
