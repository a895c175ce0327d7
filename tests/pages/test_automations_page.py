"""The Automations page: rules created and changed through the UI land in the database, errors name the input,
and the firing log shows what rules did."""
import pytest
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from crm import db
from crm.automations.rules import RuleInput, create_rule, update_rule
from crm.contacts import create_contact
from crm.models import AutomationRule, ContactInput, Notification, Role
from crm.permissions import load_actor
from crm.tags import ensure_tag
from crm.webforms.intake import FORM_ACTOR
from tests.factories import stage_named
from tests.pages.apptest import ROOT, no_exception, signed_in
from tests.pages.test_admin import _run_page_as, _widget, errors, fill, submit
from ui.navigation import AUTOMATIONS


@pytest.fixture
def page(people):
    at = signed_in(people[Role.ADMIN]).run()
    at.switch_page(AUTOMATIONS.path).run()
    no_exception(at)
    return at


def admin(people):
    with db.read_scope() as s:
        return load_actor(s, people[Role.ADMIN])


def make_rule(people, name="Greet", trigger="contact_created", trigger_params=None, action="notify_owner",
              action_params=None) -> int:
    with db.session_scope() as s:
        return create_rule(session=s, actor=admin(people), data=RuleInput(
            name=name, trigger=trigger, trigger_params=trigger_params or {}, action=action,
            action_params=action_params or {"message": "New contact"})).id


def stored_rules() -> list[AutomationRule]:
    with db.read_scope() as s:
        return list(s.exec(select(AutomationRule).order_by(AutomationRule.id)).all())


def choose(at, key, value):
    """Pick in a select box above a form (it reruns the page, as a click in the browser does)."""
    _widget(at, key).set_value(value)
    return at.run()


def test_admin_creates_a_rule_with_pickers(page, people):
    with db.read_scope() as s:
        proposal = stage_named(s, "Proposal").id
    at = choose(page, "auto_new_trigger", "deal_enters_stage")
    fill(at, auto_new_name="Proposal follow-up", auto_new_trigger_deal_enters_stage_stage_id=proposal,
         auto_new_first_create_task_subject="Send the proposal", auto_new_first_create_task_due_in_days=3,
         auto_new_first_create_task_assignee=people[Role.REP])
    at = submit(at, "auto_new_save")
    no_exception(at)
    assert errors(at) == []
    [rule] = stored_rules()
    assert (rule.name, rule.trigger, rule.trigger_params, rule.action, rule.action_params, rule.active) == (
        "Proposal follow-up", "deal_enters_stage", {"stage_id": proposal}, "create_task",
        {"subject": "Send the proposal", "due_in_days": 3, "assignee": people[Role.REP]}, True)
    assert [t.value for t in at.toast] == ["Created the rule Proposal follow\\-up"]
    shown = next(df.value for df in at.dataframe if "When" in df.value.columns)
    assert list(shown["When"]) == ["A deal enters a stage: New business · Proposal"]
    assert list(shown["Then"]) == ["Create a task: “Send the proposal” due in 3 days for Rita Rep"]


def test_several_actions_become_one_rule_each(page, people):
    with db.session_scope() as s:
        vip = ensure_tag(session=s, actor=admin(people), name="Web lead").id
    at = choose(page, "auto_new_trigger", "form_submitted")
    at = choose(at, "auto_new_action_count", 2)
    at = choose(at, "auto_new_first_action_for_contact", "notify_owner")
    at = choose(at, "auto_new_second_action_for_contact", "add_tag")
    fill(at, auto_new_name="Web leads", auto_new_first_notify_owner_message="Came in from the site",
         auto_new_second_add_tag_tag_id=vip)
    at = submit(at, "auto_new_save")
    no_exception(at)
    assert errors(at) == []
    assert [(r.name, r.trigger, r.trigger_params, r.action, r.action_params) for r in stored_rules()] == [
        ("Web leads (1)", "form_submitted", {}, "notify_owner", {"message": "Came in from the site"}),
        ("Web leads (2)", "form_submitted", {}, "add_tag", {"tag_id": vip})]


def test_a_validation_error_names_the_input_and_saves_nothing(page):
    at = choose(page, "auto_new_action_count", 2)
    fill(at, auto_new_name="Half done", auto_new_first_create_task_subject="Call")  # the second subject left empty
    at = submit(at, "auto_new_save")
    no_exception(at)
    assert errors(at) == ["**Task subject \\(second action\\):** is required"]
    assert stored_rules() == []  # the first rule was not kept either: one transaction
    assert _widget(at, "auto_new_name").value == "Half done"  # what was typed stays


def test_a_date_trigger_without_date_fields_explains_itself(page):
    at = choose(page, "auto_new_trigger", "date_approaching")
    at = choose(at, "auto_new_first_action_for_contact", "notify_owner")
    fill(at, auto_new_name="Renewals", auto_new_first_notify_owner_message="Renewal soon")
    at = submit(at, "auto_new_save")
    assert errors(at) == ["**Date field:** choose one of contact, company, deal"]
    assert stored_rules() == []


def test_switching_a_rule_off_and_on(page, people):
    rule_id = make_rule(people)
    at = page.run()
    at = submit(at, f"auto_edit_{rule_id}_switch")
    no_exception(at)
    assert [r.active for r in stored_rules()] == [False]
    assert at.button(key=f"auto_edit_{rule_id}_switch").label == "Switch on"
    at = submit(at, f"auto_edit_{rule_id}_switch")
    assert [r.active for r in stored_rules()] == [True]


def test_editing_a_rule_and_the_conflict_of_a_stale_edit(page, people):
    rule_id = make_rule(people)
    at = page.run()
    fill(at, **{f"auto_edit_{rule_id}_first_notify_owner_message": "A new face"})
    at = submit(at, f"auto_edit_{rule_id}_save")
    assert errors(at) == []
    assert stored_rules()[0].action_params == {"message": "A new face"}
    with db.session_scope() as s:  # another admin saves while this one edits version 2
        update_rule(session=s, actor=admin(people), rule_id=rule_id, seen_version=2, data=RuleInput(
            name="Greet", trigger="contact_created", action="notify_owner", action_params={"message": "Theirs"}))
    fill(at, **{f"auto_edit_{rule_id}_first_notify_owner_message": "Mine"})
    at = submit(at, f"auto_edit_{rule_id}_save")
    no_exception(at)
    assert len(errors(at)) == 1 and "Ada Admin" in errors(at)[0]
    assert stored_rules()[0].action_params == {"message": "Theirs"}
    at = at.button(key=f"auto_edit_{rule_id}_save_reload").click().run()
    assert _widget(at, f"auto_edit_{rule_id}_first_notify_owner_message").value == "Theirs"


def test_deleting_a_rule_keeps_it_out_of_the_list(page, people):
    rule_id = make_rule(people)
    at = submit(page.run(), f"auto_edit_{rule_id}_delete")
    assert stored_rules()[0].deleted_at is not None
    assert not any("When" in df.value.columns for df in at.dataframe)


def test_the_firing_log_shows_firings_of_contacts_created_through_crm(page, people):
    rule_id = make_rule(people, name="Greet new contacts")
    with db.session_scope() as s:
        rep = load_actor(s, people[Role.REP])
        owned = create_contact(session=s, actor=rep, data=ContactInput(first_name="Nia", last_name="Lee",
                                                                        owner_id=people[Role.REP])).id
        # A web lead has no owner (the form acts as no user), so notifying its owner fails.
        orphan = create_contact(session=s, actor=FORM_ACTOR, data=ContactInput(first_name="Oz", last_name="Nobody")).id
    with db.read_scope() as s:
        assert s.exec(select(Notification.user_id)).all() == [people[Role.REP]]
    at = page.run()
    log = next(df.value for df in at.dataframe if "Occasion" in df.value.columns)
    assert list(log["Record"]) == [f"contact {orphan}: Oz Nobody", f"contact {owned}: Nia Lee"]
    assert list(log["Rule"]) == ["Greet new contacts"] * 2
    assert list(log["Status"]) == ["failed", "ok"]
    assert list(log["What it did, or the error"]) == ["owner: the contact has no active owner to notify",
                                                      "notified Rita Rep"]
    rules = next(df.value for df in at.dataframe if "Firings" in df.value.columns)
    assert (list(rules["Firings"]), list(rules["Failed"])) == ([2], [1])
    at.toggle(key="auto_log_failed").set_value(True).run()
    log = next(df.value for df in at.dataframe if "Occasion" in df.value.columns)
    assert list(log["Record"]) == [f"contact {orphan}: Oz Nobody"]
    at.selectbox(key="auto_log_rule").set_value(rule_id).run()
    no_exception(at)
    assert len(next(df.value for df in at.dataframe if "Occasion" in df.value.columns)) == 1


@pytest.mark.parametrize("role", [Role.MANAGER, Role.REP, Role.MARKETER])
def test_non_admins_are_refused(people, role):
    at = signed_in(people[role]).run()
    with pytest.raises(ValueError, match="navigation page"):
        at.switch_page(AUTOMATIONS.path)
    with db.read_scope() as s:  # run the page for them anyway, as after a navigation bug
        someone = load_actor(s, people[role])
    at = AppTest.from_function(_run_page_as, args=(someone, str(ROOT / AUTOMATIONS.path)), default_timeout=30).run()
    no_exception(at)
    assert errors(at) == ["Only admins can open the automations page."]
    assert not at.tabs and not at.selectbox
