"""`automations run`: the time triggers (idle deals, dates N days away, open tickets) at their boundaries, run twice
and at once without firing twice, failures logged once, and the CLI end to end."""
import json
import threading
from datetime import timedelta

import pytest
from sqlmodel import select

from crm.activities import ActivityInput, log_activity
from crm.automations.rules import RuleInput, create_rule, set_rule_active
from crm.automations.runner import run_automations
from crm.clock import utcnow
from crm.customfields import archive_field_def, create_field_def, set_values
from crm.db import read_scope, session_scope
from crm.deals import DealChanges, update_deal
from crm.models import (
    Activity, AutomationFiring, Contact, CustomFieldDefBase, Deal, DealStatus, Pipeline, Stage, Ticket, User,
)
from tests.factories import actor, make_user, stage_named
from tests.test_cli import crm  # noqa: F401 - the CLI fixture

NOW = utcnow()  # real time: the idle test's "edit" writes audit rows at the real now


@pytest.fixture
def people(engine):
    return {"admin": make_user(engine, "admin", name="Ada Admin", password=None),
            "ann": make_user(engine, "rep", team="East", name="Ann East", password=None)}


def rule(engine, admin_id, name, trigger, trigger_params, action, action_params) -> int:
    with session_scope(engine) as s:
        return create_rule(session=s, actor=actor(engine, admin_id), data=RuleInput(
            name=name, trigger=trigger, trigger_params=trigger_params, action=action, action_params=action_params)).id


def fired(engine, rule_id) -> list[tuple[int, str]]:
    with read_scope(engine) as s:
        return s.exec(select(AutomationFiring.record_id, AutomationFiring.occasion)
                      .where(AutomationFiring.rule_id == rule_id).order_by(AutomationFiring.id)).all()


def deals(engine, owner, specs: dict[str, dict]) -> dict[str, int]:
    """Deals written straight (no audit rows), each {field: value} on top of an open Discovery deal."""
    with session_scope(engine) as s:
        stage = stage_named(s, "Discovery")
        rows = {title: Deal(title=title, pipeline_id=stage.pipeline_id, stage_id=stage.id, owner_id=owner, **spec)
                for title, spec in specs.items()}
        s.add_all(rows.values())
        s.flush()
        return {title: row.id for title, row in rows.items()}


def test_idle_deals_fire_once_per_idle_streak(engine, people):
    ann = people["ann"]
    rule_id = rule(engine, people["admin"], "Chase idle deals", "deal_idle", {"days": 14}, "create_task",
                   {"subject": "Chase this deal", "due_in_days": 1})
    ago = lambda **kw: NOW - timedelta(**kw)  # noqa: E731
    ids = deals(engine, ann, {
        "Stale": {"stage_entered_at": ago(days=20)},
        "Boundary": {"stage_entered_at": ago(days=14)},  # exactly 14 days: idle
        "Fresh": {"stage_entered_at": ago(days=14) + timedelta(seconds=1)},  # a second short
        "Called": {"stage_entered_at": ago(days=30)},  # a call 3 days ago
        "Old call": {"stage_entered_at": ago(days=30)},  # a call 16 days ago: idle since the call
        "Task done": {"stage_entered_at": ago(days=30)},  # a task done 2 days ago
        "Task open": {"stage_entered_at": ago(days=30)},  # a task scheduled is not a touch
        "Edited": {"stage_entered_at": ago(days=30)},  # its amount is edited below
        "Won": {"stage_entered_at": ago(days=30), "status": DealStatus.WON},
        "Deleted": {"stage_entered_at": ago(days=30), "deleted_at": ago(days=1)},
    })
    with session_scope(engine) as s:
        s.add_all([Activity(kind="call", subject="c", deal_id=ids["Called"], occurred_at=ago(days=3),
                            done_at=ago(days=3)),
                   Activity(kind="call", subject="c", deal_id=ids["Old call"], occurred_at=ago(days=16),
                            done_at=ago(days=16)),
                   Activity(kind="task", subject="t", deal_id=ids["Task done"], due_at=ago(days=3),
                            done_at=ago(days=2)),
                   Activity(kind="task", subject="t", deal_id=ids["Task open"], due_at=NOW + timedelta(days=1),
                            assignee_id=ann)])
        update_deal(session=s, actor=actor(engine, ann), deal_id=ids["Edited"], seen_version=1,
                    changes=DealChanges(amount=5000))
    summary = run_automations(engine, now=NOW)
    by_title = {v: k for k, v in ids.items()}
    assert sorted(by_title[d] for d, _ in fired(engine, rule_id)) == ["Boundary", "Old call", "Stale", "Task open"]
    assert (ids["Stale"], f"idle since {ago(days=20).isoformat()}") in fired(engine, rule_id)
    assert (ids["Old call"], f"idle since {ago(days=16).isoformat()}") in fired(engine, rule_id)
    assert summary["fired"] == 4 and summary["rules"][0]["rule"] == "Chase idle deals"
    with read_scope(engine) as s:
        tasks = s.exec(select(Activity.deal_id).where(Activity.subject == "Chase this deal")).all()
    assert sorted(tasks) == sorted(d for d, _ in fired(engine, rule_id))  # one task on each idle deal

    assert run_automations(engine, now=NOW)["fired"] == 0  # run twice: nothing fires twice
    with session_scope(engine) as s:  # Stale is called today: a new streak, which is idle again 14 days later
        log_activity(session=s, actor=actor(engine, ann), data=ActivityInput(kind="call", subject="Caught up",
                                                                             deal_id=ids["Stale"]))
    run_automations(engine, now=NOW + timedelta(days=13))  # 14 days after the touches of 1 to 3 days ago
    assert sorted(by_title[d] for d, _ in fired(engine, rule_id)[4:]) == ["Called", "Fresh", "Task done"]
    run_automations(engine, now=NOW + timedelta(days=15))  # 14 days after today's edit and call
    assert sorted(by_title[d] for d, _ in fired(engine, rule_id)[7:]) == ["Edited", "Stale"]
    assert len({o for d, o in fired(engine, rule_id) if d == ids["Stale"]}) == 2  # two streaks, two occasions


def test_idle_deals_of_one_pipeline(engine, people):
    with session_scope(engine) as s:
        renewals = s.exec(select(Pipeline).where(Pipeline.name == "Renewals & upsell")).one()
        quoted = s.exec(select(Stage).where(Stage.pipeline_id == renewals.id, Stage.name == "Quoted")).one()
    rule_id = rule(engine, people["admin"], "Idle renewals", "deal_idle", {"days": 7, "pipeline_id": renewals.id},
                   "notify_owner", {"message": "A renewal is idle"})
    ids = deals(engine, people["ann"], {"New": {"stage_entered_at": NOW - timedelta(days=9)}})
    with session_scope(engine) as s:
        renewal = Deal(title="Renewal", pipeline_id=renewals.id, stage_id=quoted.id, owner_id=people["ann"],
                       stage_entered_at=NOW - timedelta(days=9))
        s.add(renewal)
        s.flush()
        ids["Renewal"] = renewal.id
    run_automations(engine, now=NOW)
    assert [d for d, _ in fired(engine, rule_id)] == [ids["Renewal"]]


def test_a_date_field_fires_within_n_days_once_per_date(engine, people):
    admin = actor(engine, people["admin"])
    with session_scope(engine) as s:
        create_field_def(session=s, actor=admin, data=CustomFieldDefBase(
            entity="contact", key="renewal_date", label="Renewal date", field_type="date"))
        contacts = {name: Contact(first_name=name, owner_id=people["ann"]) for name in
                    ("In30", "In31", "Today", "Yesterday", "Gone")}
        contacts["Gone"].deleted_at = NOW
        s.add_all(contacts.values())
        s.flush()
        ids = {name: c.id for name, c in contacts.items()}
        today = NOW.date()
        for name, days in {"In30": 30, "In31": 31, "Today": 0, "Yesterday": -1, "Gone": 5}.items():
            set_values(session=s, actor=admin, entity="contact", record_id=ids[name],
                       values={"renewal_date": today + timedelta(days=days)})
    rule_id = rule(engine, people["admin"], "Renewal in 30 days", "date_approaching",
                   {"entity": "contact", "field": "renewal_date", "days": 30}, "create_task",
                   {"subject": "Prepare the renewal", "due_in_days": 7})
    run_automations(engine, now=NOW)
    assert fired(engine, rule_id) == [(ids["In30"], f"date {today + timedelta(days=30)}"),
                                      (ids["Today"], f"date {today}")]
    assert run_automations(engine, now=NOW)["fired"] == 0
    with session_scope(engine) as s:  # the renewal was moved: a new date, a new occasion
        set_values(session=s, actor=admin, entity="contact", record_id=ids["Today"],
                   values={"renewal_date": today + timedelta(days=3)})
    assert run_automations(engine, now=NOW)["fired"] == 1
    assert fired(engine, rule_id)[-1] == (ids["Today"], f"date {today + timedelta(days=3)}")


def test_open_tickets_fire_after_n_hours_and_a_failure_is_logged_once(engine, people):
    ann = people["ann"]
    rule_id = rule(engine, people["admin"], "Escalate", "ticket_open", {"hours": 24}, "notify_owner",
                   {"message": "Open for a day"})
    with session_scope(engine) as s:
        tickets = {
            "Late": Ticket(subject="Late", opened_at=NOW - timedelta(hours=24), owner_id=ann),  # exactly 24 hours
            "Early": Ticket(subject="Early", opened_at=NOW - timedelta(hours=23, minutes=59), owner_id=ann),
            "Pending": Ticket(subject="Pending", status="pending", opened_at=NOW - timedelta(hours=30), owner_id=ann),
            "Resolved": Ticket(subject="Resolved", status="resolved", opened_at=NOW - timedelta(hours=30),
                               resolved_at=NOW, owner_id=ann),
            "Nobody's": Ticket(subject="Nobody's", opened_at=NOW - timedelta(hours=48)),  # no owner to notify
        }
        s.add_all(tickets.values())
        s.flush()
        ids = {name: t.id for name, t in tickets.items()}
    first = run_automations(engine, now=NOW)
    assert sorted(d for d, _ in fired(engine, rule_id)) == sorted([ids["Late"], ids["Pending"], ids["Nobody's"]])
    assert (first["fired"], first["failed"]) == (2, 1)
    second = run_automations(engine, now=NOW + timedelta(hours=1))  # Early is due now; the failure is not retried
    assert (second["fired"], second["failed"]) == (1, 0)
    with read_scope(engine) as s:
        failed = s.exec(select(AutomationFiring).where(AutomationFiring.outcome == "failed")).one()
    assert (failed.record_id, failed.detail) == (ids["Nobody's"], "owner: the ticket has no active owner to notify")


def test_a_rule_whose_date_field_was_archived_is_reported_and_the_others_run(engine, people):
    admin = actor(engine, people["admin"])
    with session_scope(engine) as s:
        field = create_field_def(session=s, actor=admin, data=CustomFieldDefBase(
            entity="deal", key="contract_end", label="Contract end", field_type="date"))
    rule(engine, people["admin"], "Contract ends", "date_approaching",
         {"entity": "deal", "field": "contract_end", "days": 60}, "notify_owner", {"message": "Contract ends soon"})
    ticket_rule = rule(engine, people["admin"], "Escalate", "ticket_open", {"hours": 1}, "notify_owner",
                       {"message": "Open"})
    with session_scope(engine) as s:
        archive_field_def(session=s, actor=admin, field_id=field.id, seen_version=field.version)
        s.add(Ticket(subject="Help", opened_at=NOW - timedelta(hours=2), owner_id=people["ann"]))
    summary = run_automations(engine, now=NOW)
    assert summary["rules"][0]["error"] == "trigger_params.field: the deal has no date field 'contract_end'"
    assert summary["rules"][1]["fired"] == 1 and len(fired(engine, ticket_rule)) == 1


def test_batches_and_concurrent_runs_fire_each_occasion_once(engine, people):
    rule_id = rule(engine, people["admin"], "Escalate", "ticket_open", {"hours": 1}, "notify_owner",
                   {"message": "Open"})
    with session_scope(engine) as s:
        s.add_all(Ticket(subject=f"T{i}", opened_at=NOW - timedelta(hours=2), owner_id=people["ann"])
                  for i in range(30))
    results, errors = [], []

    def run():
        try:
            results.append(run_automations(engine, now=NOW, batch=4))  # many small transactions, interleaving
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r["fired"] for r in results) == 30  # between them, each ticket once
    records = [d for d, _ in fired(engine, rule_id)]
    assert len(records) == 30 and len(set(records)) == 30


def test_the_cli_runs_the_time_rules_and_is_idempotent(engine, people, crm):  # noqa: F811 - the fixture
    if engine.dialect.name != "sqlite":
        pytest.skip("the CLI runs on the test's SQLite file; the runner above runs on both databases")
    assert str(crm.db) in str(engine.url)
    rule(engine, people["admin"], "Escalate", "ticket_open", {"hours": 4}, "create_task",
         {"subject": "Call the customer", "due_in_days": 0})
    with session_scope(engine) as s:
        contact = Contact(first_name="Tia", owner_id=people["ann"])
        s.add(contact)
        s.flush()
        s.add(Ticket(subject="Broken", opened_at=utcnow() - timedelta(hours=5), owner_id=people["ann"],
                     contact_id=contact.id))
    first, second = crm("automations", "run"), crm("automations", "run")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert (json.loads(first.stdout)["fired"], json.loads(second.stdout)["fired"]) == (1, 0)
    with read_scope(engine) as s:
        task = s.exec(select(Activity).where(Activity.kind == "task")).one()
        assignee = s.get(User, task.assignee_id).full_name
    assert (task.subject, task.contact_id, assignee) == ("Call the customer", contact.id, "Ann East")


def test_inactive_rules_do_not_run(engine, people):
    rule_id = rule(engine, people["admin"], "Escalate", "ticket_open", {"hours": 1}, "notify_owner",
                   {"message": "Open"})
    with session_scope(engine) as s:
        set_rule_active(session=s, actor=actor(engine, people["admin"]), rule_id=rule_id, active=False, seen_version=1)
        s.add(Ticket(subject="Help", opened_at=NOW - timedelta(hours=2), owner_id=people["ann"]))
    assert run_automations(engine, now=NOW)["rules"] == []
    assert fired(engine, rule_id) == []
