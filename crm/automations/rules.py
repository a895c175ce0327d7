"""Automation rules as an admin configures them: create, edit, switch on and off, delete, list, and the firing log.

A rule is data: a trigger with its parameters and an action with its parameters (crm.automations.triggers and
.actions hold the catalogues and check the parameters). Every change needs admin.configure, is version-checked
and audited.
"""
from datetime import datetime

import pandas as pd
from pydantic import BaseModel, Field
from sqlalchemy import case, func
from sqlmodel import Session, select

from crm.audit import apply_changes, audit, check_version, created_fields, load_for_update
from crm.automations.actions import ACTIONS, OWNED, record_label
from crm.automations.triggers import TRIGGERS
from crm.clock import utcnow
from crm.errors import NotFound, ValidationFailed
from crm.frames import result_frame
from crm.models import AutomationFiring, AutomationRule
from crm.permissions import Actor, require
from crm.rows import unique_name


class RuleInput(BaseModel):
    name: str = ""
    trigger: str = ""
    trigger_params: dict = Field(default_factory=dict)
    action: str = ""
    action_params: dict = Field(default_factory=dict)
    active: bool = True


class RuleView(BaseModel):
    id: int
    name: str
    trigger: str
    trigger_params: dict
    action: str
    action_params: dict
    active: bool
    entity: str  # the kind of record it acts on
    summary: str  # "A deal enters a stage → Create a task"
    version: int
    updated_at: datetime
    deleted_at: datetime | None


def _view(rule: AutomationRule) -> RuleView:
    trigger = TRIGGERS[rule.trigger]
    return RuleView(id=rule.id, name=rule.name, trigger=rule.trigger, trigger_params=rule.trigger_params,
                    action=rule.action, action_params=rule.action_params, active=rule.active,
                    entity=trigger.entity(rule.trigger_params),
                    summary=f"{trigger.label} → {ACTIONS[rule.action].label}", version=rule.version,
                    updated_at=rule.updated_at, deleted_at=rule.deleted_at)


def clean_rule(session: Session, data: RuleInput, *, rule_id: int | None = None) -> dict:
    """The rule's stored values, or ValidationFailed naming the field (`trigger_params.days`, ...)."""
    name = unique_name(session, AutomationRule, data.name, what="an automation rule", record_id=rule_id)
    if data.trigger not in TRIGGERS:
        raise ValidationFailed("trigger", f"{data.trigger!r} is not a trigger; choose one of {', '.join(TRIGGERS)}")
    if data.action not in ACTIONS:
        raise ValidationFailed("action", f"{data.action!r} is not an action; choose one of {', '.join(ACTIONS)}")
    trigger, action = TRIGGERS[data.trigger], ACTIONS[data.action]
    trigger_params = trigger.clean(session, data.trigger_params)
    entity = trigger.entity(trigger_params)
    if entity not in action.entities:
        raise ValidationFailed("action", f"{action.label.lower()} does not apply to a {entity}; "
                                         f"it applies to a {' or a '.join(action.entities)}")
    return dict(name=name, trigger=data.trigger, trigger_params=trigger_params, action=data.action,
                action_params=action.clean(session, data.action_params, entity), active=bool(data.active))


def create_rule(*, session: Session, actor: Actor, data: RuleInput) -> RuleView:
    require(actor, "admin.configure", "configure automation rules")
    rule = AutomationRule(**clean_rule(session, data))
    session.add(rule)
    session.flush()
    audit(session, actor_id=actor.id, entity="automation_rule", record_id=rule.id, action="create",
          changes=created_fields(rule), record_version=rule.version)
    return _view(rule)


def update_rule(*, session: Session, actor: Actor, rule_id: int, data: RuleInput, seen_version: int) -> RuleView:
    """Replace the rule's definition (the version the admin edited must still be current). Its firings stay: an
    occasion a rule already fired on does not fire again after an edit."""
    require(actor, "admin.configure", "configure automation rules")
    rule = load_for_update(session, AutomationRule, rule_id, label="Automation rule")
    check_version(session, entity="automation_rule", record=rule, seen_version=seen_version)
    return _save(session, actor, rule, clean_rule(session, data, rule_id=rule.id))


def set_rule_active(*, session: Session, actor: Actor, rule_id: int, active: bool, seen_version: int) -> RuleView:
    """Switch a rule on or off; an inactive rule keeps its settings and its log. Switching on checks the settings
    again, so a rule whose tag, stage or team was deleted meanwhile says so instead of failing at every firing."""
    require(actor, "admin.configure", "configure automation rules")
    rule = load_for_update(session, AutomationRule, rule_id, label="Automation rule")
    check_version(session, entity="automation_rule", record=rule, seen_version=seen_version)
    if active:
        clean_rule(session, RuleInput.model_validate(rule, from_attributes=True), rule_id=rule.id)
    return _save(session, actor, rule, {"active": bool(active)})


def delete_rule(*, session: Session, actor: Actor, rule_id: int, seen_version: int) -> RuleView:
    """Soft delete: the rule stops and leaves the list; its firings stay in the log under its name."""
    require(actor, "admin.configure", "configure automation rules")
    rule = load_for_update(session, AutomationRule, rule_id, label="Automation rule")
    check_version(session, entity="automation_rule", record=rule, seen_version=seen_version)
    diff = apply_changes(rule, {"deleted_at": utcnow(), "active": False})
    audit(session, actor_id=actor.id, entity="automation_rule", record_id=rule.id, action="delete", changes=diff,
          record_version=rule.version)
    return _view(rule)


def _save(session: Session, actor: Actor, rule: AutomationRule, values: dict) -> RuleView:
    diff = apply_changes(rule, values)
    if diff:
        audit(session, actor_id=actor.id, entity="automation_rule", record_id=rule.id, action="update",
              changes=diff, record_version=rule.version)
    return _view(rule)


def list_rules(*, session: Session, actor: Actor) -> list[RuleView]:
    """The live rules by name."""
    require(actor, "admin.configure", "see automation rules")
    rows = session.exec(select(AutomationRule).where(AutomationRule.deleted_at.is_(None))).all()
    return sorted((_view(r) for r in rows), key=lambda r: r.name.lower())


def get_rule(*, session: Session, actor: Actor, rule_id: int) -> RuleView:
    require(actor, "admin.configure", "see automation rules")
    rule = session.get(AutomationRule, rule_id)
    if rule is None or rule.deleted_at is not None:
        raise NotFound(f"Automation rule {rule_id} does not exist (or was deleted)")
    return _view(rule)


def firing_log(*, session: Session, actor: Actor, rule_id: int | None = None, failed_only: bool = False,
               limit: int = 200, names: bool = False) -> pd.DataFrame:
    """The latest firings, newest first: when, which rule, which record, on what occasion, and what came of it;
    with `names`, also a `record` column: what the record is called now (None once it is deleted)."""
    require(actor, "admin.configure", "see the automation log")
    stmt = (select(AutomationFiring.id, AutomationFiring.created_at.label("at"), AutomationRule.name.label("rule"),
                   AutomationFiring.entity, AutomationFiring.record_id, AutomationFiring.occasion,
                   AutomationFiring.outcome, AutomationFiring.detail)
            .join(AutomationRule, AutomationRule.id == AutomationFiring.rule_id)
            .order_by(AutomationFiring.id.desc()).limit(limit))
    if rule_id is not None:
        stmt = stmt.where(AutomationFiring.rule_id == rule_id)
    if failed_only:
        stmt = stmt.where(AutomationFiring.outcome == "failed")
    frame = result_frame(session.exec(stmt))
    if names:
        frame.insert(5, "record", _record_names(session, frame))
    return frame


def _record_names(session: Session, frame: pd.DataFrame) -> list[str | None]:
    """How each firing's record is called now (None once it is gone), one query per kind of record."""
    names: dict[tuple[str, int], str] = {}
    for entity, ids in frame.groupby("entity")["record_id"] if len(frame) else ():
        model = OWNED.get(entity)
        if model is not None:
            for row in session.exec(select(model).where(model.id.in_([int(i) for i in ids.unique()]))):
                names[(entity, row.id)] = None if row.deleted_at is not None else record_label(entity, row)
    return [names.get((e, int(r))) for e, r in zip(frame["entity"], frame["record_id"])]


class RuleActivity(BaseModel):
    firings: int
    failed: int
    last_fired_at: datetime | None


def rule_activity(*, session: Session, actor: Actor) -> dict[int, RuleActivity]:
    """Per rule id: how often it fired, how often that failed, and when it last fired (rules that never fired are
    left out). One aggregate over the log, by the rule_id index."""
    require(actor, "admin.configure", "see the automation log")
    failed = func.sum(case((AutomationFiring.outcome == "failed", 1), else_=0))
    stmt = (select(AutomationFiring.rule_id, func.count(), failed, func.max(AutomationFiring.created_at))
            .group_by(AutomationFiring.rule_id))
    return {rule_id: RuleActivity(firings=n, failed=bad or 0, last_fired_at=last)
            for rule_id, n, bad, last in session.exec(stmt)}
