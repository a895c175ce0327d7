"""Firing rules: event triggers in the caller's transaction, lead-score crossings in the scoring run's, and the
actor automations act as.

A firing first claims its (rule, record, occasion) row in automation_firing, whose unique key makes a rule fire
once per record and occasion however many runs or events race; then its action runs in a savepoint:
- an action that fails with a CRMError (the owner left, the tag was deleted, a value no longer validates) is rolled
  back to the savepoint, so it leaves nothing half-done, and the firing is logged as failed with the reason. The
  event itself (the contact created, the deal moved, the form submitted) stands: a misconfigured rule must not
  lose a person's work. A failed firing is final for its occasion; the log shows it, and the admin fixes the rule;
- any other error is a bug: it rolls back the whole transaction, event included.
Rules cannot set each other off: no action creates a contact, moves a deal or submits a form.
"""
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import FromClause
from sqlmodel import Session, select

from crm.audit import audit_context, bump_data_version
from crm.automations.actions import ACTIONS, Firing
from crm.automations.triggers import TRIGGERS, lead_score_crossings
from crm.clock import utcnow
from crm.errors import CRMError
from crm.models import AutomationFiring, AutomationRule, Role, RoleRight
from crm.permissions import Actor

_ACTOR = "automation_actor"  # session.info: the automation's actor, read once per session


def automation_actor(session: Session) -> Actor:
    """Automations act as no user (their audit rows show "system", with the firing as context) and with the admin
    role's rights: an admin configured the rule, and it must act alike on every owner's records."""
    if _ACTOR not in session.info:
        rights = session.exec(select(RoleRight.name).where(RoleRight.role == Role.ADMIN)).all()
        session.info[_ACTOR] = Actor(id=None, email="", full_name="Automation",  # type: ignore[arg-type]
                                     role=Role.ADMIN, team_id=None, rights=frozenset(rights))
    return session.info[_ACTOR]


def active_rules(session: Session, trigger: str) -> list[AutomationRule]:
    return list(session.exec(select(AutomationRule).where(AutomationRule.trigger == trigger, AutomationRule.active,
                                                          AutomationRule.deleted_at.is_(None))
                             .order_by(AutomationRule.id)).all())


def handle_event(*, session: Session, event: str, entity: str, record_id: int,
                 context: dict | None = None) -> list[int]:
    """Run every active rule whose trigger is `event` for this record, in the caller's transaction;
    returns the ids of the AutomationFiring rows written."""
    trigger = TRIGGERS.get(event)
    if trigger is None or trigger.occasion is None:
        raise ValueError(f"{event!r} is not an event trigger")
    fired = []
    for rule in active_rules(session, event):
        if trigger.entity(rule.trigger_params) != entity:
            continue
        occasion = trigger.occasion(session, rule.trigger_params, record_id, context or {})
        if occasion is not None and (firing := fire(session, rule=rule, entity=entity, record_id=record_id,
                                                    occasion=occasion)) is not None:
            fired.append(firing.id)
    return fired


def fire(session: Session, *, rule: AutomationRule, entity: str, record_id: int, occasion: str,
         occasion_at: datetime | None = None, now: datetime | None = None) -> AutomationFiring | None:
    """Fire one rule on one record for one occasion: the logged firing, or None if it had fired on it already."""
    firing = _claim(session, AutomationFiring(rule_id=rule.id, entity=entity, record_id=record_id, occasion=occasion,
                                              occasion_at=occasion_at, outcome="running"))
    if firing is None:
        return None
    work = Firing(session=session, actor=automation_actor(session), rule=rule, entity=entity, record_id=record_id,
                  now=now or utcnow())
    savepoint = session.begin_nested()
    try:
        with audit_context(session, f"automation {rule.id}, firing {firing.id}"):
            detail = ACTIONS[rule.action].perform(work)
    except CRMError as exc:
        savepoint.rollback()
        firing.outcome, firing.detail = "failed", exc.message[:500]
    else:
        savepoint.commit()
        firing.outcome, firing.detail = "ok", detail[:500]
    session.flush()
    bump_data_version(session)  # the log changed, even when the action did not
    return firing


def _claim(session: Session, firing: AutomationFiring) -> AutomationFiring | None:
    """Write the firing's row, or None when the unique key says this occasion was taken (by an earlier run, or a
    concurrent one: PostgreSQL makes the second insert wait for the first transaction, then refuses it)."""
    try:
        with session.begin_nested():
            session.add(firing)
            session.flush()
    except IntegrityError:
        return None
    return firing


def score_crossings(session: Session, scores: FromClause) -> list[tuple[AutomationRule, int, float]]:
    """Before a scoring run writes `scores` (columns id, score): each active crossing rule with the contacts whose
    score is about to cross its threshold upwards."""
    return [(rule, contact_id, score) for rule in active_rules(session, "lead_score_crosses")
            for contact_id, score in lead_score_crossings(session, rule, scores)]


def fire_score_crossings(session: Session, crossings: list[tuple[AutomationRule, int, float]]) -> list[int]:
    """After the run wrote the scores: fire each crossing, its occasion being this run's new score."""
    at = utcnow().isoformat()
    fired = (fire(session, rule=rule, entity="contact", record_id=contact_id, occasion=f"score {score:g} at {at}")
             for rule, contact_id, score in crossings)
    return [firing.id for firing in fired if firing is not None]
