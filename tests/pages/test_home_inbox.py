"""The home page's tasks inbox and notifications: each click changes the database through crm.tasks and
crm.notifications, a stale row reports a conflict, and nobody sees another user's notifications."""
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlmodel import select

from crm import db, tasks
from crm.clock import utcnow
from crm.models import Activity, ActivityKind, Contact, Deal, Notification, Pipeline, Role, Stage
from crm.notifications import notify
from crm.permissions import load_actor
from crm.tasks import snooze_task
from tests.pages.apptest import no_exception, sections, signed_in

NOW = utcnow()
TODAY = datetime.combine(NOW.date(), time.min, tzinfo=UTC)
MAXS = "Max's own task"


@pytest.fixture
def inbox(people) -> dict[str, int]:
    """Rita's tasks, one per bucket (and a done one, and Max's), on Ana Lima and the Acme renewal; subject -> id."""
    rep = people[Role.REP]
    with db.session_scope() as s:
        ana = Contact(first_name="Ana", last_name="Lima", owner_id=rep)
        stage = s.exec(select(Stage).join(Pipeline).where(Stage.name == "Proposal")).first()
        s.add(ana)
        s.flush()
        deal = Deal(title="Acme renewal", amount=1000, stage_id=stage.id, pipeline_id=stage.pipeline_id, owner_id=rep)
        s.add(deal)
        s.flush()
        specs = {
            "Call Ana back": {"due_at": NOW - timedelta(days=2)},  # overdue
            "Send the *proposal* <b>now</b>": {"due_at": TODAY + timedelta(minutes=1)},  # due today; markup stays text
            "Prepare the QBR": {"due_at": TODAY + timedelta(days=3)},  # upcoming
            "Chase the invoice": {"due_at": NOW - timedelta(days=1), "snoozed_until": NOW + timedelta(days=2)},
            "Already done": {"due_at": NOW - timedelta(days=1), "done_at": NOW},
            "Max's own task": {"due_at": NOW - timedelta(days=1), "assignee_id": people[Role.MANAGER]},
        }
        rows = {subject: Activity(**{"kind": ActivityKind.TASK, "subject": subject, "assignee_id": rep,
                                     "owner_id": rep, "contact_id": ana.id, "deal_id": deal.id, **spec})
                for subject, spec in specs.items()}
        s.add_all(rows.values())
        s.flush()
        return {subject: row.id for subject, row in rows.items()}


def task(task_id: int) -> Activity:
    with db.session_scope() as s:
        row = s.get(Activity, task_id)
        s.expunge(row)
        return row


def home(user_id: int):
    at = signed_in(user_id).run()
    no_exception(at)
    return at


def click(at, key: str):
    at.button(key=key).click().run()
    no_exception(at)
    return at


def test_each_bucket_lists_its_tasks_with_links(inbox, people):
    at = home(people[Role.REP])
    assert sections(at) == {"Overdue": ["Call Ana back"], "Due today": [r"Send the \*proposal\* \<b\>now\</b\>"],
                            "Next 7 days": ["Prepare the QBR"], "Snoozed": ["Chase the invoice"]}
    assert {m.label: m.value for m in at.metric}["Open tasks"] == "3"
    links = [(link.proto.label, link.proto.page) for link in at.get("page_link")]
    assert ("Ana Lima", "contact-360") in [(label, page.rsplit("/", 1)[-1]) for label, page in links]
    assert any(label == "Acme renewal" for label, _ in links)
    keys = {b.key for b in at.button}
    assert f"home_task_done_{inbox['Already done']}" not in keys  # done tasks are not listed
    assert f"home_task_done_{inbox[MAXS]}" not in keys  # nor anyone else's


def test_done_marks_the_task_done_and_undo_reopens_it(inbox, people):
    at = home(people[Role.REP])
    click(at, f"home_task_done_{inbox['Call Ana back']}")
    assert task(inbox["Call Ana back"]).done_at is not None
    assert "Overdue" not in sections(at) or sections(at)["Overdue"] == []
    assert f"home_task_done_{inbox['Call Ana back']}" not in {b.key for b in at.button}
    assert [t.value for t in at.toast] == ["Done: Call Ana back"]
    click(at, "home_task_undo")
    assert task(inbox["Call Ana back"]).done_at is None
    assert sections(at)["Overdue"] == ["Call Ana back"]
    assert "home_task_undo" not in {b.key for b in at.button}


def _monday_morning() -> datetime:
    today = utcnow().date()
    return datetime.combine(today + timedelta(days=7 - today.weekday()), tasks.MORNING, tzinfo=UTC)


@pytest.mark.parametrize("choice, ends", [
    ("hour", lambda: utcnow() + timedelta(hours=1)),
    ("tomorrow", lambda: datetime.combine(utcnow().date() + timedelta(days=1), tasks.MORNING, tzinfo=UTC)),
    ("next_week", _monday_morning),  # a Monday snoozes to the Monday after
])
def test_snooze_moves_the_task_to_snoozed(inbox, people, choice, ends):
    at = home(people[Role.REP])
    click(at, f"home_task_snooze_{inbox['Prepare the QBR']}_{choice}")
    assert abs(task(inbox["Prepare the QBR"]).snoozed_until - ends()) < timedelta(minutes=1)
    assert "Prepare the QBR" in sections(at)["Snoozed"]
    assert sections(at)["Next 7 days"] == []
    assert [t.value for t in at.toast][0].startswith("Snoozed until ")


def test_snooze_until_a_chosen_date(inbox, people):
    call = inbox["Call Ana back"]
    at = home(people[Role.REP])
    on = utcnow().date() + timedelta(days=10)
    at.date_input(key=f"home_task_snooze_on_{call}_v1").set_value(on)
    click(at, f"home_task_snooze_{call}_date")
    assert task(call).snoozed_until == datetime.combine(on, tasks.MORNING, tzinfo=UTC)
    assert "Call Ana back" in sections(at)["Snoozed"]


def test_a_snooze_in_the_past_names_the_field_and_changes_nothing(inbox, people, monkeypatch):
    monkeypatch.setattr(tasks, "MORNING", time(0, 0))  # today's "morning" is then always over
    call = inbox["Call Ana back"]
    at = home(people[Role.REP])
    at.date_input(key=f"home_task_snooze_on_{call}_v1").set_value(utcnow().date())
    click(at, f"home_task_snooze_{call}_date")
    assert [e.value for e in at.error] == ["Call Ana back: Snoozed until: choose a moment in the future"]
    assert task(call).snoozed_until is None and task(call).version == 1


def test_a_stale_row_reports_the_conflict_and_saves_nothing(inbox, people):
    call = inbox["Call Ana back"]
    at = home(people[Role.REP])
    with db.session_scope() as s:  # meanwhile, in another tab, Rita snoozes it
        snooze_task(session=s, actor=load_actor(s, people[Role.REP]), task_id=call,
                    until=utcnow() + timedelta(hours=3), seen_version=1)
    click(at, f"home_task_done_{call}")
    (error,) = [e.value for e in at.error]
    assert error.startswith("Call Ana back: This activity was changed after you opened it: Rita Rep changed "
                            "snoozed\\_until")
    assert task(call).done_at is None and task(call).version == 2
    assert "Call Ana back" in sections(at)["Snoozed"]  # the list shows the task as it is now


def notes(at) -> list[str]:
    """The notification messages as listed (unread ones bold), newest first."""
    keep = ("New lead", "Deal idle", "For Max", "For Mia")
    return [m.value.strip("*") for m in at.markdown if m.value.strip("*").startswith(keep)]


def test_notifications_are_listed_newest_first_and_marked_read(people):
    rep = people[Role.REP]
    with db.session_scope() as s:
        first = notify(s, user_id=rep, message="Deal idle: Acme [click](http://evil.example)")
        second = notify(s, user_id=rep, message="New lead: Zoe")
        notify(s, user_id=people[Role.MANAGER], message="For Max only")
    at = home(rep)
    assert notes(at) == ["New lead: Zoe", r"Deal idle: Acme \[click\]\(http://evil\.example\)"]
    assert ":red-badge[:material/notifications: 2 unread]" in [m.value for m in at.markdown]
    click(at, f"home_note_read_{first}")
    with db.session_scope() as s:
        assert {n.id: n.read_at is not None for n in s.exec(select(Notification).where(
            Notification.user_id == rep)).all()} == {first: True, second: False}
    assert f"home_note_read_{first}" not in {b.key for b in at.button}
    click(at, "home_notes_read_all")
    with db.session_scope() as s:
        assert s.exec(select(Notification).where(Notification.user_id == rep, Notification.read_at.is_(None))
                      ).all() == []
        assert s.exec(select(Notification).where(Notification.user_id == people[Role.MANAGER])).one().read_at is None
    assert ":gray-badge[:material/notifications: 0 unread]" in [m.value for m in at.markdown]


def test_each_role_sees_only_its_own_notifications(people):
    with db.session_scope() as s:
        notify(s, user_id=people[Role.MANAGER], message="For Max: deal idle")
        notify(s, user_id=people[Role.MARKETER], message="For Mia: form submitted")
    assert notes(home(people[Role.REP])) == []
    assert notes(home(people[Role.MANAGER])) == ["For Max: deal idle"]
    assert notes(home(people[Role.MARKETER])) == ["For Mia: form submitted"]
    admin = home(people[Role.ADMIN])
    assert notes(admin) == [] and "home_notes_read_all" in {b.key for b in admin.button}


def test_a_manager_with_a_task_gets_the_inbox_and_a_marketer_without_does_not(inbox, people):
    manager = home(people[Role.MANAGER])
    assert sections(manager)["Overdue"] == ["Max's own task"]
    click(manager, f"home_task_done_{inbox[MAXS]}")
    assert task(inbox[MAXS]).done_at is not None
    assert "home_task_undo" in {b.key for b in manager.button}  # the inbox stays for the Undo
    assert sections(home(people[Role.MARKETER])) == {}
