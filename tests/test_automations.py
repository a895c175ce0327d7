"""Automation rules: configuring them (checked parameters, rights, versions, audit), the event triggers in the
event's transaction, each action, the round-robin turn, and the failure policy; on both databases."""
import json
from datetime import timedelta

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import update
from sqlmodel import select

from crm.automations import actions
from crm.automations.actions import ACTIONS
from crm.automations.engine import handle_event
from crm.automations.rules import (
    RuleInput, clean_rule, create_rule, delete_rule, firing_log, get_rule, list_rules, set_rule_active, update_rule,
)
from crm.automations.triggers import TRIGGERS
from crm.clock import utcnow
from crm.contacts import create_contact
from crm.customfields import create_field_def, get_values
from crm.db import read_scope, session_scope
from crm.deals import DealInput, create_deal, move_deal
from crm.errors import EditConflict, PermissionDenied, ValidationFailed
from crm.models import (
    Activity, AuditLog, AutomationFiring, AutomationRule, Contact, ContactInput, CustomFieldDefBase, Deal, Notification,
    Segment, SegmentMember, Tag, Team, User, WebForm,
)
from crm.ml.lead import scoring
from crm.ml.lead.scoring import update_lead_scores
from crm.tags import change_tags, ensure_tag, tags_of
from tests.factories import actor, make_user, stage_named


@pytest.fixture
def people(engine):
    """An admin; reps of the East team created out of name order (ids 2, 3, 4 are Cid, Ann, Bob), so that turn
    order by name differs from order by id; and a manager of East."""
    ids = {"admin": make_user(engine, "admin", name="Ada Admin", password=None)}
    for name in ("Cid East", "Ann East", "Bob East"):
        ids[name] = make_user(engine, "rep", team="East", name=name, password=None)
    ids["manager"] = make_user(engine, "manager", team="East", name="Meg Manager", password=None)
    return ids


def rule(engine, admin_id, name, trigger, trigger_params, action, action_params):
    with session_scope(engine) as s:
        return create_rule(session=s, actor=actor(engine, admin_id), data=RuleInput(
            name=name, trigger=trigger, trigger_params=trigger_params, action=action, action_params=action_params))


def new_contact(engine, owner_id, first="Nia", **fields) -> int:
    with session_scope(engine) as s:
        return create_contact(session=s, actor=actor(engine, owner_id),
                              data=ContactInput(first_name=first, last_name="Lee", **fields)).id


def firings(engine, rule_id=None):
    with read_scope(engine) as s:
        stmt = select(AutomationFiring).order_by(AutomationFiring.id)
        if rule_id is not None:
            stmt = stmt.where(AutomationFiring.rule_id == rule_id)
        return s.exec(stmt).all()


# --- configuring rules --------------------------------------------------------------------------------------------

def test_rules_are_created_edited_switched_and_deleted_with_audit_and_versions(engine, people):
    admin = actor(engine, people["admin"])
    with session_scope(engine) as s:
        stage = stage_named(s, "Proposal")
        view = create_rule(session=s, actor=admin, data=RuleInput(
            name="Proposal follow-up", trigger="deal_enters_stage", trigger_params={"stage_id": stage.id},
            action="create_task", action_params={"subject": "Send the proposal", "due_in_days": 2}))
    assert (view.entity, view.summary) == ("deal", "A deal enters a stage → Create a task")
    assert view.action_params == {"subject": "Send the proposal", "due_in_days": 2, "assignee": "owner"}
    with session_scope(engine) as s:
        edited = update_rule(session=s, actor=admin, rule_id=view.id, seen_version=1, data=RuleInput(
            name="Proposal follow-up", trigger="deal_enters_stage", trigger_params={"stage_id": stage.id},
            action="create_task", action_params={"subject": "Call after the proposal", "due_in_days": 3}))
    assert edited.version == 2
    with pytest.raises(EditConflict), session_scope(engine) as s:  # the admin's form still shows version 1
        set_rule_active(session=s, actor=admin, rule_id=view.id, active=False, seen_version=1)
    with session_scope(engine) as s:
        assert set_rule_active(session=s, actor=admin, rule_id=view.id, active=False, seen_version=2).active is False
        delete_rule(session=s, actor=admin, rule_id=view.id, seen_version=3)
    with read_scope(engine) as s:
        assert list_rules(session=s, actor=admin) == []
        actions_audited = s.exec(select(AuditLog.action, AuditLog.field).where(
            AuditLog.entity == "automation_rule", AuditLog.record_id == view.id, AuditLog.action != "create")
            .order_by(AuditLog.id)).all()
    assert actions_audited == [("update", "action_params"), ("update", "active"), ("delete", "deleted_at")]


@pytest.mark.parametrize("trigger, trigger_params, action, action_params, field", [
    ("deal_rots", {}, "notify_owner", {"message": "x"}, "trigger"),
    ("deal_idle", {"days": 0}, "notify_owner", {"message": "x"}, "trigger_params.days"),
    ("deal_idle", {"days": 14, "dayz": 3}, "notify_owner", {"message": "x"}, "trigger_params.dayz"),
    ("deal_idle", {"days": "14"}, "notify_owner", {"message": "x"}, "trigger_params.days"),
    ("deal_enters_stage", {}, "notify_owner", {"message": "x"}, "trigger_params.stage_id"),
    ("deal_enters_stage", {"stage_id": 999}, "notify_owner", {"message": "x"}, "trigger_params.stage_id"),
    ("lead_score_crosses", {"threshold": 150}, "notify_owner", {"message": "x"}, "trigger_params.threshold"),
    ("date_approaching", {"entity": "contact", "field": "nickname", "days": 30}, "notify_owner", {"message": "x"},
     "trigger_params.field"),  # a text field, not a date
    ("date_approaching", {"entity": "contact", "field": [], "days": 30}, "notify_owner", {"message": "x"},
     "trigger_params.field"),  # not text at all (hypothesis found it reaching the SQL as a list)
    ("form_submitted", {"form_key": "no-such-form"}, "notify_owner", {"message": "x"}, "trigger_params.form_key"),
    ("ticket_open", {"hours": 0}, "notify_owner", {"message": "x"}, "trigger_params.hours"),
    ("contact_created", {}, "send_fax", {}, "action"),
    ("contact_created", {}, "create_task", {"due_in_days": 1}, "action_params.subject"),
    ("contact_created", {}, "create_task", {"subject": "Call", "due_in_days": 400}, "action_params.due_in_days"),
    ("contact_created", {}, "create_task", {"subject": "Call", "due_in_days": 1, "assignee": 999},
     "action_params.assignee"),
    ("deal_idle", {"days": 14}, "assign_round_robin", {"team_id": 1}, "action"),  # contacts only
    ("contact_created", {}, "assign_round_robin", {"team_id": 999}, "action_params.team_id"),
    ("contact_created", {}, "add_tag", {"tag_id": 999}, "action_params.tag_id"),
    ("contact_created", {}, "set_field", {"field": "email", "value": "a@b.co"}, "action_params.field"),
    ("contact_created", {}, "set_field", {"field": "country", "value": "XX"}, "action_params.value"),
    ("contact_created", {}, "set_field", {"field": "lifecycle_stage", "value": "hot"}, "action_params.value"),
    ("contact_created", {}, "set_field", {"field": "custom.nickname"}, "action_params.value"),
    ("deal_idle", {"days": 14}, "set_field", {"field": "stage_id", "value": 3}, "action_params.field"),
    ("deal_idle", {"days": 14}, "set_field", {"field": "amount", "value": -5}, "action_params.value"),
    ("contact_created", {}, "notify_owner", {}, "action_params.message"),
])
def test_rule_settings_are_checked_and_the_error_names_the_field(engine, people, trigger, trigger_params, action,
                                                                 action_params, field):
    admin = actor(engine, people["admin"])
    with session_scope(engine) as s:
        create_field_def(session=s, actor=admin, data=CustomFieldDefBase(
            entity="contact", key="nickname", label="Nickname", field_type="text"))
    with pytest.raises(ValidationFailed) as caught, session_scope(engine) as s:
        create_rule(session=s, actor=admin, data=RuleInput(name="Bad", trigger=trigger, trigger_params=trigger_params,
                                                           action=action, action_params=action_params))
    assert caught.value.field == field, caught.value.message


def test_a_static_segment_of_the_same_records_and_a_unique_name_are_required(engine, people):
    admin = actor(engine, people["admin"])
    with session_scope(engine) as s:
        s.add_all([Segment(name="Dynamic", kind="dynamic"), Segment(name="Companies", kind="static", entity="company")])
    rule(engine, people["admin"], "Welcome", "contact_created", {}, "notify_owner", {"message": "New contact"})
    with session_scope(engine) as s:
        dynamic, companies = (s.exec(select(Segment.id).where(Segment.name == n)).one()
                              for n in ("Dynamic", "Companies"))
    for segment_id in (dynamic, companies):
        with pytest.raises(ValidationFailed, match="is not a static contact segment"), session_scope(engine) as s:
            create_rule(session=s, actor=admin, data=RuleInput(name="List", trigger="contact_created",
                                                               action="add_to_segment",
                                                               action_params={"segment_id": segment_id}))
    with pytest.raises(ValidationFailed) as caught, session_scope(engine) as s:
        create_rule(session=s, actor=admin, data=RuleInput(name="WELCOME", trigger="contact_created",
                                                           action="notify_owner", action_params={"message": "Hi"}))
    assert caught.value.field == "name"


def test_only_admins_configure_rules_and_read_the_log(engine, people):
    manager, rep = actor(engine, people["manager"]), actor(engine, people["Ann East"])
    for who in (manager, rep):
        with pytest.raises(PermissionDenied), session_scope(engine) as s:
            create_rule(session=s, actor=who, data=RuleInput(name="Mine", trigger="contact_created",
                                                             action="notify_owner", action_params={"message": "x"}))
        with pytest.raises(PermissionDenied), read_scope(engine) as s:
            firing_log(session=s, actor=who)
        with pytest.raises(PermissionDenied), read_scope(engine) as s:
            list_rules(session=s, actor=who)


def test_switching_a_rule_on_checks_its_settings_again(engine, people):
    admin = actor(engine, people["admin"])
    with session_scope(engine) as s:
        tag = ensure_tag(session=s, actor=admin, name="Fresh")
    view = rule(engine, people["admin"], "Tag new", "contact_created", {}, "add_tag", {"tag_id": tag.id})
    with session_scope(engine) as s:
        set_rule_active(session=s, actor=admin, rule_id=view.id, active=False, seen_version=1)
        s.execute(update(Tag).where(Tag.id == tag.id).values(deleted_at=utcnow()))
    with pytest.raises(ValidationFailed) as caught, session_scope(engine) as s:
        set_rule_active(session=s, actor=admin, rule_id=view.id, active=True, seen_version=2)
    assert caught.value.field == "action_params.tag_id"


# --- event triggers -----------------------------------------------------------------------------------------------

def test_contact_created_fires_in_the_same_transaction_and_the_task_is_audited_as_the_automation(engine, people):
    view = rule(engine, people["admin"], "Call new contacts", "contact_created", {}, "create_task",
                {"subject": "Introductory call", "due_in_days": 2})
    ann = people["Ann East"]
    before = utcnow()
    contact_id = new_contact(engine, ann)
    with read_scope(engine) as s:
        task = s.exec(select(Activity).where(Activity.contact_id == contact_id)).one()
        (firing,) = firings(engine)
        audited = s.exec(select(AuditLog).where(AuditLog.entity == "activity", AuditLog.record_id == task.id)).all()
        creation = s.exec(select(AuditLog).where(AuditLog.entity == "contact", AuditLog.record_id == contact_id)).all()
    assert (task.kind, task.subject, task.assignee_id) == ("task", "Introductory call", ann)  # the owner
    assert before + timedelta(days=2) <= task.due_at.replace(tzinfo=before.tzinfo) <= utcnow() + timedelta(days=2)
    assert (firing.rule_id, firing.entity, firing.record_id, firing.occasion, firing.outcome) == \
        (view.id, "contact", contact_id, "created", "ok")
    assert firing.detail.startswith(f"task {task.id} for Ann East, due ")
    # The task's audit rows name no user and say which firing wrote them; the rep's own creation is theirs.
    assert {(a.actor_id, a.context) for a in audited} == {(None, f"automation {view.id}, firing {firing.id}")}
    assert {(a.actor_id, a.context) for a in creation} == {(ann, None)}


def test_an_event_rolled_back_leaves_no_firing_and_no_action(engine, people):
    rule(engine, people["admin"], "Call new contacts", "contact_created", {}, "create_task",
         {"subject": "Introductory call", "due_in_days": 2})
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        create_contact(session=s, actor=actor(engine, people["Ann East"]), data=ContactInput(first_name="Gone"))
        assert len(s.exec(select(AutomationFiring)).all()) == 1  # it fired inside the transaction ...
        raise RuntimeError("the page crashed after saving")
    with read_scope(engine) as s:  # ... and went with it
        assert s.exec(select(Contact)).all() == [] and s.exec(select(Activity)).all() == []
    assert firings(engine) == []


def test_deal_entering_a_stage_fires_once_per_entry(engine, people):
    ann = people["Ann East"]
    with session_scope(engine) as s:
        discovery, proposal = stage_named(s, "Discovery").id, stage_named(s, "Proposal").id
    view = rule(engine, people["admin"], "Proposal sent", "deal_enters_stage", {"stage_id": proposal}, "notify_owner",
                {"message": "Proposal stage reached"})
    rep = actor(engine, ann)
    with session_scope(engine) as s:
        deal = create_deal(session=s, actor=rep, data=DealInput(title="Acme renewal", stage_id=discovery))
        direct = create_deal(session=s, actor=rep, data=DealInput(title="Straight in", stage_id=proposal))
    assert [f.record_id for f in firings(engine)] == [direct.id]  # created in Proposal: it entered it
    with session_scope(engine) as s:
        moved = move_deal(session=s, actor=rep, deal_id=deal.id, stage_id=proposal, seen_version=deal.version)
        moved = move_deal(session=s, actor=rep, deal_id=deal.id, stage_id=discovery, seen_version=moved.version)
        move_deal(session=s, actor=rep, deal_id=deal.id, stage_id=proposal, seen_version=moved.version)
    mine = [f for f in firings(engine, view.id) if f.record_id == deal.id]
    assert len(mine) == 2 and len({f.occasion for f in mine}) == 2  # two entries into Proposal, two occasions
    with read_scope(engine) as s:
        notes = s.exec(select(Notification.message).where(Notification.user_id == ann).order_by(Notification.id)).all()
    assert notes == ["Proposal stage reached: Straight in"] + ["Proposal stage reached: Acme renewal"] * 2


def test_form_submitted_fires_the_rules_of_that_form_once_per_submission(engine, people):
    with session_scope(engine) as s:
        s.add_all([WebForm(key="demo", name="Demo request", token_hash="x"),
                   WebForm(key="newsletter", name="Newsletter", token_hash="y")])
    admin = people["admin"]
    with session_scope(engine) as s:
        tag = ensure_tag(session=s, actor=actor(engine, admin), name="Demo asked")
    demo = rule(engine, admin, "Demo requests", "form_submitted", {"form_key": "demo"}, "add_tag", {"tag_id": tag.id})
    anyform = rule(engine, admin, "Any form", "form_submitted", {}, "notify_owner", {"message": "Form sent"})
    contact_id = new_contact(engine, people["Bob East"])
    with session_scope(engine) as s:
        first = handle_event(session=s, event="form_submitted", entity="contact", record_id=contact_id,
                             context={"form_key": "demo", "event_id": 7})
        again = handle_event(session=s, event="form_submitted", entity="contact", record_id=contact_id,
                             context={"form_key": "demo", "event_id": 7})  # the same submission twice
        other = handle_event(session=s, event="form_submitted", entity="contact", record_id=contact_id,
                             context={"form_key": "newsletter"})
    assert len(first) == 2 and again == [] and len(other) == 1
    assert [(f.rule_id, f.occasion) for f in firings(engine)][:2] == [(demo.id, "event 7"), (anyform.id, "event 7")]
    assert firings(engine)[2].rule_id == anyform.id and firings(engine)[2].occasion.startswith("submitted ")
    with read_scope(engine) as s:
        assert [t.name for t in tags_of(session=s, entity="contact", record_id=contact_id)] == ["Demo asked"]


def test_lead_score_crossing_fires_on_the_way_up_once_per_crossing(engine, people, monkeypatch):
    view = rule(engine, people["admin"], "Hot lead", "lead_score_crosses", {"threshold": 50}, "notify_owner",
                {"message": "Lead score passed 50"})
    ids = {name: new_contact(engine, people["Ann East"], first=name) for name in "ABCDEF"}
    with session_scope(engine) as s:
        for name, score in {"B": 40, "C": 60, "D": 45, "E": 30, "F": 50}.items():  # A has no score yet
            s.execute(update(Contact).where(Contact.id == ids[name]).values(lead_score=score))

    def score(values):
        monkeypatch.setattr(scoring, "current_scores", lambda engine, now=None, root=None: (
            pd.Series({ids[n]: float(v) for n, v in values.items()}), "test"))
        update_lead_scores(engine)
        return sorted(name for name, cid in ids.items() for f in firings(engine, view.id) if f.record_id == cid)

    # A: none -> 60 and B: 40 -> 55 cross; E: 30 -> 50 reaches X exactly, which counts; C was above already and
    # F was at X already; D stays below.
    assert score({"A": 60, "B": 55, "C": 70, "D": 49, "E": 50, "F": 70}) == ["A", "B", "E"]
    assert score({"A": 40, "B": 56, "C": 70, "D": 49, "E": 50, "F": 70}) == ["A", "B", "E"]  # A fell: no firing
    assert score({"A": 65, "B": 56, "C": 70, "D": 49, "E": 50, "F": 70}) == ["A", "A", "B", "E"]  # A crossed again
    with read_scope(engine) as s:
        assert s.exec(select(Contact.lead_score).where(Contact.id == ids["A"])).one() == 65  # the scores were saved


# --- actions ------------------------------------------------------------------------------------------------------

def test_round_robin_takes_the_team_in_name_order_and_continues_across_firings(engine, people):
    view = rule(engine, people["admin"], "Share new leads", "contact_created", {}, "assign_round_robin",
                {"team_id": _team(engine, "East")})
    creator = people["manager"]

    def owners(n):
        made = [new_contact(engine, creator, first=f"Lead{i}") for i in range(n)]  # each in its own transaction
        with read_scope(engine) as s:
            by_id = dict(s.exec(select(Contact.id, User.full_name).join(User, User.id == Contact.owner_id)
                                .where(Contact.id.in_(made))).all())
        return [by_id[c] for c in made]

    assert owners(4) == ["Ann East", "Bob East", "Cid East", "Ann East"]
    with session_scope(engine) as s:  # Bob leaves; Abe joins: the turn goes on from Ann
        s.execute(update(User).where(User.id == people["Bob East"]).values(active=False))
    make_user(engine, "rep", team="East", name="Abe East", password=None)
    assert owners(4) == ["Cid East", "Abe East", "Ann East", "Cid East"]
    with read_scope(engine) as s:
        stored = s.get(AutomationRule, view.id)
        assert (stored.round_robin_cursor, stored.version) == (people["Cid East"], 1)  # bookkeeping, not an edit


def _team(engine, name):
    with read_scope(engine) as s:
        return s.exec(select(Team.id).where(Team.name == name)).one()


def test_tags_segments_and_fields_are_set_through_the_use_cases(engine, people):
    admin = actor(engine, people["admin"])
    with session_scope(engine) as s:
        tag = ensure_tag(session=s, actor=admin, name="Inbound")
        s.add(Segment(name="New this month", kind="static", entity="contact"))
        create_field_def(session=s, actor=admin, data=CustomFieldDefBase(
            entity="contact", key="tier", label="Tier", field_type="dropdown", options=["gold", "silver"]))
    with read_scope(engine) as s:
        segment_id = s.exec(select(Segment.id)).one()
    rule(engine, people["admin"], "1 tag", "contact_created", {}, "add_tag", {"tag_id": tag.id})
    rule(engine, people["admin"], "2 list", "contact_created", {}, "add_to_segment", {"segment_id": segment_id})
    rule(engine, people["admin"], "3 stage", "contact_created", {}, "set_field",
         {"field": "lifecycle_stage", "value": "mql"})
    rule(engine, people["admin"], "4 tier", "contact_created", {}, "set_field",
         {"field": "custom.tier", "value": "gold"})
    contact_id = new_contact(engine, people["Ann East"])
    with read_scope(engine) as s:
        contact = s.get(Contact, contact_id)
        assert [t.name for t in tags_of(session=s, entity="contact", record_id=contact_id)] == ["Inbound"]
        members = s.exec(select(SegmentMember.record_id).where(SegmentMember.segment_id == segment_id)).all()
        assert members == [contact_id]
        assert contact.lifecycle_stage == "mql" and contact.version == 3  # created, then two edits
        assert get_values(session=s, actor=admin, entity="contact", record_id=contact_id) == {"tier": "gold"}
        contexts = s.exec(select(AuditLog.entity, AuditLog.field, AuditLog.context).where(
            AuditLog.actor_id.is_(None), AuditLog.context.like("automation %")).order_by(AuditLog.id)).all()
    assert [(e, f) for e, f, _ in contexts] == [("contact", "tags"), ("segment", "members"), ("segment", "record"),
                                                ("contact", "lifecycle_stage"), ("contact", "cf.tier")]
    assert [f.outcome for f in firings(engine)] == ["ok"] * 4


def test_remove_tag_and_set_a_deal_field(engine, people):
    admin = actor(engine, people["admin"])
    with session_scope(engine) as s:
        tag = ensure_tag(session=s, actor=admin, name="Cold")
        proposal = stage_named(s, "Proposal").id
    rule(engine, people["admin"], "Warm up", "form_submitted", {}, "remove_tag", {"tag_id": tag.id})
    rule(engine, people["admin"], "Next step", "deal_enters_stage", {"stage_id": proposal}, "set_field",
         {"field": "next_step", "value": "Book the pricing call"})
    contact_id = new_contact(engine, people["Ann East"])
    with session_scope(engine) as s:
        change_tags(session=s, actor=admin, entity="contact", record_ids=[contact_id], add=[tag.id])
        handle_event(session=s, event="form_submitted", entity="contact", record_id=contact_id,
                     context={"form_key": "any"})
        deal = create_deal(session=s, actor=actor(engine, people["Ann East"]),
                           data=DealInput(title="Big one", stage_id=proposal))
    with read_scope(engine) as s:
        assert tags_of(session=s, entity="contact", record_id=contact_id) == []
        assert s.get(Deal, deal.id).next_step == "Book the pricing call"
    assert [f.detail for f in firings(engine)] == ["tag 'Cold' removed", "next_step set to 'Book the pricing call'"]


def test_a_task_for_a_named_user_and_the_owner_notified(engine, people):
    meg = people["manager"]
    rule(engine, people["admin"], "Manager reviews", "contact_created", {}, "create_task",
         {"subject": "Review the new contact", "due_in_days": 0, "assignee": meg})
    rule(engine, people["admin"], "Tell the owner", "contact_created", {}, "notify_owner", {"message": "New contact"})
    contact_id = new_contact(engine, people["Bob East"], first="Zoe")
    with read_scope(engine) as s:
        assert s.exec(select(Activity.assignee_id).where(Activity.contact_id == contact_id)).all() == [meg]
        note = s.exec(select(Notification)).one()
    assert (note.user_id, note.message, note.entity, note.record_id) == \
        (people["Bob East"], "New contact: Zoe Lee", "contact", contact_id)


# --- failures -----------------------------------------------------------------------------------------------------

def test_a_failing_action_is_logged_and_undone_while_the_event_stands(engine, people, monkeypatch):
    admin = actor(engine, people["admin"])
    with session_scope(engine) as s:
        tag = ensure_tag(session=s, actor=admin, name="Gone soon")
    tagging = rule(engine, people["admin"], "Tag", "contact_created", {}, "add_tag", {"tag_id": tag.id})
    rule(engine, people["admin"], "Note", "contact_created", {}, "notify_owner", {"message": "New"})
    rule(engine, people["admin"], "Call", "contact_created", {}, "create_task", {"subject": "Call", "due_in_days": 1})
    with session_scope(engine) as s:
        s.execute(update(Tag).where(Tag.id == tag.id).values(deleted_at=utcnow()))  # deleted after the rule was made

    def half_done(firing):  # writes, then fails: the savepoint must take the write back
        actions._notify_owner(firing)
        raise ValidationFailed("owner", "changed their mind")
    monkeypatch.setitem(actions.ACTIONS, "notify_owner",
                        actions.Action("Notify", actions.EVERY, actions._notify_params, half_done))
    contact_id = new_contact(engine, people["Ann East"])
    with read_scope(engine) as s:
        assert s.get(Contact, contact_id) is not None  # the contact is saved
        assert s.exec(select(Notification)).all() == []  # nothing of the half-done action is left
        assert len(s.exec(select(Activity)).all()) == 1  # the rule after the failures still did its work
        log = firing_log(session=s, actor=admin)
        failed = firing_log(session=s, actor=admin, failed_only=True)
        tagged = firing_log(session=s, actor=admin, rule_id=tagging.id)
    assert [(r["rule"], r["outcome"]) for r in log.to_dict("records")] == [
        ("Call", "ok"), ("Note", "failed"), ("Tag", "failed")]  # newest first
    assert failed[["rule", "detail"]].to_dict("records") == [
        {"rule": "Note", "detail": "owner: changed their mind"},
        {"rule": "Tag", "detail": f"tags: no such tag: [{tag.id}]"}]
    assert list(tagged["rule"]) == ["Tag"]


def test_an_unexpected_error_in_an_action_rolls_back_the_event(engine, people, monkeypatch):
    rule(engine, people["admin"], "Note", "contact_created", {}, "notify_owner", {"message": "New"})

    def broken(firing):
        raise RuntimeError("a bug")
    monkeypatch.setitem(actions.ACTIONS, "notify_owner",
                        actions.Action("Notify", actions.EVERY, actions._notify_params, broken))
    with pytest.raises(RuntimeError):
        new_contact(engine, people["Ann East"])
    with read_scope(engine) as s:
        assert s.exec(select(Contact)).all() == []
    assert firings(engine) == []


def test_a_task_for_a_contact_without_owner_fails_with_the_reason(engine, people):
    rule(engine, people["admin"], "Follow up", "contact_created", {}, "create_task",
         {"subject": "Call", "due_in_days": 1})
    with session_scope(engine) as s:  # a contact without an owner, as an import may write one
        orphan = Contact(first_name="Orphan")
        s.add(orphan)
        s.flush()
        handle_event(session=s, event="contact_created", entity="contact", record_id=orphan.id)
        again = handle_event(session=s, event="contact_created", entity="contact", record_id=orphan.id)
    (firing,) = firings(engine)
    assert again == []  # a failed firing is final for its occasion
    assert (firing.outcome, firing.detail) == ("failed", "assignee: the contact has no owner to give the task to")
    with read_scope(engine) as s:
        assert s.exec(select(Activity)).all() == []


def test_get_rule_and_the_log_of_one_rule(engine, people):
    admin = actor(engine, people["admin"])
    view = rule(engine, people["admin"], "Note", "contact_created", {}, "notify_owner", {"message": "New"})
    new_contact(engine, people["Ann East"])
    with read_scope(engine) as s:
        assert get_rule(session=s, actor=admin, rule_id=view.id).name == "Note"
        log = firing_log(session=s, actor=admin, rule_id=view.id)
    assert list(log.columns) == ["id", "at", "rule", "entity", "record_id", "occasion", "outcome", "detail"]
    assert log[["outcome", "detail"]].values.tolist() == [["ok", "notified Ann East"]]


# --- any settings: a clean rule or an error naming the field ------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 30), st.integers(), st.floats(allow_nan=True),
              st.text(max_size=30), st.sampled_from(["owner", "2026-12-01", "mql", "custom.tier", "lifecycle_stage",
                                                     "contact", "deal", "next_step", "country", "XX", "US"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6)
KEYS = {"deal_enters_stage": ["stage_id"], "deal_idle": ["days", "pipeline_id"], "contact_created": [],
        "lead_score_crosses": ["threshold"], "date_approaching": ["entity", "field", "days"],
        "form_submitted": ["form_key"], "ticket_open": ["hours"], "create_task": ["subject", "due_in_days", "assignee"],
        "assign_round_robin": ["team_id"], "add_tag": ["tag_id"], "remove_tag": ["tag_id"],
        "add_to_segment": ["segment_id"], "set_field": ["field", "value"], "notify_owner": ["message"]}


def params_of(name: str):
    """Mostly the parameters the trigger or action takes, sometimes one it does not."""
    keys = KEYS.get(name, [])
    return (st.dictionaries(st.sampled_from([*keys, "other"]), json_values, max_size=3)
            | st.fixed_dictionaries({k: json_values for k in keys}))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), trigger=st.sampled_from([*TRIGGERS, "nope"]), action=st.sampled_from([*ACTIONS, "x"]))
def test_any_settings_give_a_rule_or_an_error_naming_the_field(sqlite_engine, data, trigger, action):
    trigger_params, action_params = data.draw(params_of(trigger)), data.draw(params_of(action))
    with session_scope(sqlite_engine) as s:
        try:
            values = clean_rule(s, RuleInput(name="Any", trigger=trigger, trigger_params=trigger_params,
                                             action=action, action_params=action_params))
        except ValidationFailed as exc:
            assert exc.field in {"trigger", "action"} or exc.field.split(".")[0] in {"trigger_params", "action_params"}
        else:
            json.dumps(values)  # storable as JSON
            assert values["trigger"] == trigger and values["action"] == action
