"""Browser journey of a rep: an automation rule gives them a task (and a notification) when a contact of theirs is
created; they see both on their home page and mark the task done there, or snooze it, and the database agrees."""
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from crm.automations.rules import RuleInput, create_rule, firing_log, get_rule, set_rule_active
from crm.contacts import create_contact
from crm.clock import utcnow
from crm.db import session_scope
from crm.models import Activity, ContactInput, User
from crm.permissions import load_actor
from crm.tasks import MORNING
from tests.e2e.conftest import CHROMIUM, DOCS_SHOTS, SHOTS, expect, full_screenshot, settle, sign_in

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}: browser journeys need it"),
]

WAIT = 60_000
SUBJECT = "Browser journey: introductory call"
NOTICE = "A new contact is yours"


def _user_id(db, email: str) -> int:
    with session_scope(db) as s:
        return s.exec(select(User.id).where(User.email == email)).one()


def _rules(db, admin_id: int) -> list[int]:
    """An admin's two rules on "a contact is created": a task for its owner, due today, and a notification."""
    with session_scope(db) as s:
        admin = load_actor(s, admin_id)
        return [create_rule(session=s, actor=admin, data=data).id for data in (
            RuleInput(name="Browser: call new contacts", trigger="contact_created", action="create_task",
                      action_params={"subject": SUBJECT, "due_in_days": 0, "assignee": "owner"}),
            RuleInput(name="Browser: tell the owner", trigger="contact_created", action="notify_owner",
                      action_params={"message": NOTICE}))]


def _switch_off(db, admin_id: int, rule_ids: list[int]) -> None:
    """The server is shared by every journey: later ones must not get tasks from these rules."""
    with session_scope(db) as s:
        admin = load_actor(s, admin_id)
        for rule_id in rule_ids:
            version = get_rule(session=s, actor=admin, rule_id=rule_id).version
            set_rule_active(session=s, actor=admin, rule_id=rule_id, active=False, seen_version=version)


def _rule_made_task(db, admin_id: int, rule_id: int, contact_id: int) -> Activity:
    """The task on the new contact, and the rule's logged firing that made it."""
    with session_scope(db) as s:
        task = s.exec(select(Activity).where(Activity.contact_id == contact_id, Activity.subject == SUBJECT)).one()
        s.expunge(task)
        log = firing_log(session=s, actor=load_actor(s, admin_id), rule_id=rule_id)
    (firing,) = [f for f in log.to_dict("records") if (f["entity"], f["record_id"]) == ("contact", contact_id)]
    assert firing["outcome"] == "ok"
    assert firing["detail"].startswith(f"task {task.id} for ")
    return task


def _new_contact(db, admin_id: int, rep_id: int, first: str, last: str) -> int:
    """An admin enters a contact for the demo rep, through the use case that fires the rules."""
    with session_scope(db) as s:
        return create_contact(session=s, actor=load_actor(s, admin_id), data=ContactInput(
            first_name=first, last_name=last, email=f"{last.lower()}@example.com", owner_id=rep_id)).id


@pytest.fixture(scope="module")
def rules(db, server):
    """The admin's two rules for this module's journeys (the admin's id, the rule ids)."""
    admin_id = _user_id(db, server.logins["admin"])
    rule_ids = _rules(db, admin_id)
    yield admin_id, rule_ids
    _switch_off(db, admin_id, rule_ids)


def _home_as_rep(page, server) -> None:
    sign_in(page, server, "rep")
    page.get_by_role("heading", name="Home").wait_for(timeout=WAIT)
    settle(page)


def test_a_rep_completes_a_task_a_rule_created(page, server, db, rules):
    admin_id, rule_ids = rules
    rep_id = _user_id(db, server.logins["rep"])
    contact_id = _new_contact(db, admin_id, rep_id, "Zoë", "Browserova")
    task = _rule_made_task(db, admin_id, rule_ids[0], contact_id)
    assert (task.assignee_id, task.done_at) == (rep_id, None)

    _home_as_rep(page, server)
    done = page.locator(f".st-key-home_task_done_{task.id}")
    done.wait_for(timeout=WAIT)
    expect(page.get_by_text(f"{NOTICE}: Zoë Browserova")).to_be_visible()
    expect(page.get_by_role("link", name="Zoë Browserova").first).to_be_visible()
    shot = SHOTS / "home_inbox_rep.png"
    full_screenshot(page, shot)
    shutil.copy(shot, DOCS_SHOTS / shot.name)

    done.get_by_role("button", name="Done").click()
    settle(page)
    page.locator(".st-key-home_task_undo").wait_for(timeout=WAIT)
    expect(done).to_have_count(0)
    with session_scope(db) as s:
        assert s.get(Activity, task.id).done_at is not None
    full_screenshot(page, SHOTS / "home_inbox_rep_done.png")


def test_a_rep_snoozes_a_rule_task_until_tomorrow_morning(page, server, db, rules):
    admin_id, rule_ids = rules
    contact_id = _new_contact(db, admin_id, _user_id(db, server.logins["rep"]), "Yusuf", "Snoozewell")
    task = _rule_made_task(db, admin_id, rule_ids[0], contact_id)
    _home_as_rep(page, server)
    page.locator(f".st-key-home_task_snooze_{task.id}").get_by_role("button", name="Snooze").click()
    settle(page)
    choice = page.locator(f".st-key-home_task_snooze_{task.id}_tomorrow").get_by_role("button")
    choice.wait_for(timeout=WAIT)
    page.get_by_role("group", name="Or until the morning of").wait_for(timeout=WAIT)
    expect(page.get_by_role("link", name="Yusuf Snoozewell")).to_be_visible()
    shot = SHOTS / "home_inbox_snooze.png"
    page.screenshot(path=str(shot))
    shutil.copy(shot, DOCS_SHOTS / shot.name)
    choice.click()
    settle(page)
    page.get_by_text("Snoozed until").first.wait_for(timeout=WAIT)
    tomorrow = datetime.combine(utcnow().date() + timedelta(days=1), MORNING, tzinfo=UTC)
    with session_scope(db) as s:
        assert s.get(Activity, task.id).snoozed_until == tomorrow
