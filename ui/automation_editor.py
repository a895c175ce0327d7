"""The rule forms of the Automations page: create a rule (a trigger, then one to three actions) and edit, switch
on or off, or delete one. Every write goes through crm.automations.rules inside ui.forms' submit buttons.

What decides which inputs exist (the trigger, its date field, each action and the field it sets) is picked above
the form, since a form's inputs cannot change until it is submitted; the parameters are filled in the form.
A rule is one trigger and one action: several actions picked together become one rule each, saved in one
transaction, so either all of them are created or none."""
from dataclasses import dataclass

import streamlit as st

from crm.automations import rules
from crm.automations.actions import ACTIONS
from crm.automations.rules import RuleInput, RuleView
from crm.automations.triggers import TRIGGERS
from ui.automation_choices import Choices
from ui.automation_params import (
    ACTION_PARAMS, TRIGGER_PARAMS, named_errors, params_from, settable, value_of, value_param, widget, widget_name,
)
from ui.forms import FormKeys, show_outcome, submit_button

ORDINALS = ("first", "second", "third")


@dataclass(frozen=True)
class Plan:
    """The shape of the rule being written: what the inputs of the form are for."""
    trigger: str
    entity: str  # the kind of record it fires on
    date_field: str | None  # "company.renewal" for date_approaching
    actions: tuple[tuple[str, str | None], ...]  # (action, the field set_field sets)


def create_form(choices: Choices, generation: int) -> None:
    key = FormKeys("auto_new_", generation)
    st.caption("A rule is one trigger and one action. Choose several actions and each becomes a rule of its own "
               "with the same trigger, named after the first with its number.")
    plan = _plan(key, choices, None, many=True)
    with st.form("auto_new_form"):
        st.text_input("Name", max_chars=120, key=key("name"))
        _details(key, plan, choices, None)
        st.checkbox("Active (fires from now on)", value=True, key=key("active"))
        submitted = submit_button("Create rule", key="auto_new_save", form=key, type="primary",
                                  action=lambda s, actor, v: _create(s, actor, v, plan, choices))
    show_outcome("auto_new_save", submitted)


def _create(s, actor, v: dict, plan: Plan, choices: Choices) -> str:
    inputs = _inputs(plan, v, choices)
    created = []
    for ordinal, data in inputs:
        with named_errors(plan.trigger, data.action, ordinal):
            created.append(rules.create_rule(session=s, actor=actor, data=data).name)
    return f"Created the rule{'s' if len(created) > 1 else ''} {', '.join(created)}"


def edit_form(rule: RuleView, choices: Choices) -> None:
    key = FormKeys(f"auto_edit_{rule.id}_", rule.version)
    plan = _plan(key, choices, rule, many=False)
    with st.form(f"auto_edit_{rule.id}_form"):
        st.text_input("Name", value=rule.name, max_chars=120, key=key("name"))
        _details(key, plan, choices, rule)
        st.caption(f"{'Active' if rule.active else 'Switched off'}; editing version {key.generation}")

        def save(s, actor, v) -> str:
            (_, data), = _inputs(plan, {**v, "active": rule.active}, choices)
            with named_errors(plan.trigger, data.action):
                saved = rules.update_rule(session=s, actor=actor, rule_id=rule.id, data=data,
                                          seen_version=key.generation)
            return f"Saved the rule {saved.name}"

        def switch(s, actor, v) -> str:
            with named_errors(rule.trigger, rule.action):
                rules.set_rule_active(session=s, actor=actor, rule_id=rule.id, active=not rule.active,
                                      seen_version=key.generation)
            return f"{'Switched off' if rule.active else 'Switched on'} {rule.name}"

        def delete(s, actor, v) -> str:
            rules.delete_rule(session=s, actor=actor, rule_id=rule.id, seen_version=key.generation)
            return f"Deleted the rule {rule.name}; its firings stay in the log"

        buttons = st.columns(3)
        with buttons[0]:
            saved = submit_button("Save rule", key=f"auto_edit_{rule.id}_save", form=key, action=save, type="primary")
        with buttons[1]:
            switched = submit_button("Switch off" if rule.active else "Switch on", key=f"auto_edit_{rule.id}_switch",
                                     form=key, action=switch)
        with buttons[2]:
            deleted = submit_button("Delete rule", key=f"auto_edit_{rule.id}_delete", form=key, action=delete)
    for name, submitted in (("save", saved), ("switch", switched), ("delete", deleted)):
        show_outcome(f"auto_edit_{rule.id}_{name}", submitted)


# --- above the form: the rule's shape -----------------------------------------------------------------------------

def _plan(key: FormKeys, choices: Choices, rule: RuleView | None, *, many: bool) -> Plan:
    left, right = st.columns(2)
    triggers = list(TRIGGERS)
    trigger = left.selectbox("When", triggers, index=triggers.index(rule.trigger) if rule else 0, key=key("trigger"),
                             format_func=lambda t: TRIGGERS[t].label)
    date_field = _date_field_picker(key, choices, rule, right) if trigger == "date_approaching" else None
    entity = (date_field or "contact.").partition(".")[0] if trigger == "date_approaching" else \
        TRIGGERS[trigger].entity({})
    count = int(right.number_input("Actions", min_value=1, max_value=len(ORDINALS), value=1, step=1,
                                   key=key("action_count"))) if many else 1
    actions = tuple(_action_picker(key, choices, rule, entity, ORDINALS[i], many) for i in range(count))
    return Plan(trigger=trigger, entity=entity, date_field=date_field, actions=actions)


def _date_field_picker(key: FormKeys, choices: Choices, rule: RuleView | None, where) -> str | None:
    fields = list(choices.date_fields)
    if not fields:
        where.caption("No date custom fields yet: add one on the Admin page, under Custom fields.")
        return None
    current = f"{rule.trigger_params.get('entity')}.{rule.trigger_params.get('field')}" if rule else None
    return where.selectbox("Date field", fields, index=fields.index(current) if current in fields else 0,
                           format_func=choices.date_fields.get, key=key("date_field"))


def _action_picker(key: FormKeys, choices: Choices, rule: RuleView | None, entity: str, ordinal: str,
                   many: bool) -> tuple[str, str | None]:
    fitting = [a for a, spec in ACTIONS.items() if entity in spec.entities]
    current = rule.action if rule else None
    left, right = st.columns(2)
    kind = left.selectbox(f"Then ({ordinal} action)" if many else "Then", fitting,
                          index=fitting.index(current) if current in fitting else 0,
                          format_func=lambda a: ACTIONS[a].label, key=key(f"{ordinal}_action_for_{entity}"))
    if kind != "set_field":
        return kind, None
    fields = settable(entity, choices)
    stored = rule.action_params.get("field") if rule else None
    field = right.selectbox("Field to set", list(fields), index=list(fields).index(stored) if stored in fields else 0,
                            format_func=fields.get, key=key(f"{ordinal}_field_for_{entity}"))
    return kind, field


# --- in the form: the parameters ----------------------------------------------------------------------------------

def _details(key: FormKeys, plan: Plan, choices: Choices, rule: RuleView | None) -> None:
    stored = rule.trigger_params if rule and rule.trigger == plan.trigger else {}
    for param in TRIGGER_PARAMS[plan.trigger]:
        widget(param, key(widget_name(f"trigger_{plan.trigger}", param.name)), choices, plan.entity,
               stored.get(param.name))
    for ordinal, (kind, field) in zip(ORDINALS, plan.actions):
        st.markdown(f"**{ACTIONS[kind].label}**" + (f" ({ordinal} action)" if len(plan.actions) > 1 else ""))
        stored = rule.action_params if rule and rule.action == kind else {}
        for param in ACTION_PARAMS[kind]:
            widget(param, key(widget_name(f"{ordinal}_{kind}", param.name)), choices, plan.entity,
                   stored.get(param.name))
        if field is not None:
            param, options = value_param(plan.entity, field, choices)
            widget(param, key(widget_name(f"{ordinal}_{kind}_{field}", "value")), choices, plan.entity,
                   stored.get("value") if stored.get("field") == field else None, options=options)
    if not TRIGGER_PARAMS[plan.trigger] and not any(ACTION_PARAMS[k] or f for k, f in plan.actions):
        st.caption("Nothing more to fill in.")


def _inputs(plan: Plan, v: dict, choices: Choices) -> list[tuple[str | None, RuleInput]]:
    """One RuleInput per action, with the ordinal that names its action in errors (None when there is one)."""
    trigger_params = params_from(TRIGGER_PARAMS[plan.trigger], v, f"trigger_{plan.trigger}")
    if plan.trigger == "date_approaching":
        entity, _, field = (plan.date_field or "").partition(".")
        trigger_params |= {"entity": entity or None, "field": field or None}
    name = (v.get("name") or "").strip()
    many = len(plan.actions) > 1
    out = []
    for number, (ordinal, (kind, field)) in enumerate(zip(ORDINALS, plan.actions), start=1):
        action_params = params_from(ACTION_PARAMS[kind], v, f"{ordinal}_{kind}")
        if field is not None:  # set_field always sends a value: None empties the field
            param, _ = value_param(plan.entity, field, choices)
            action_params = {"field": field,
                             "value": value_of(param, v.get(widget_name(f"{ordinal}_{kind}_{field}", "value")))}
        out.append((ordinal if many else None, RuleInput(
            name=f"{name} ({number})" if many and name else name, trigger=plan.trigger,
            trigger_params=trigger_params, action=kind, action_params=action_params, active=bool(v.get("active")))))
    return out
