"""What sets a rule off: the trigger catalogue, each trigger's parameters, and the occasion a firing answers to.

A rule fires at most once per record and occasion (the unique key of automation_firing). The occasions:
- deal_enters_stage: the stage entry (its deal_stage_history row), so re-entering a stage later fires again;
- contact_created: the creation;
- lead_score_crosses: the scoring run that took the score from below X (or from none) to X or more;
- form_submitted: the submission (its behaviour event when the caller names it, else its time);
- deal_idle: the idle streak, named by when it began (the deal's last touch); a touch starts a new streak;
- date_approaching: the date's value, so a renewal moved to next year is a new occasion;
- ticket_open: the ticket's opening.
Event triggers are answered where the event happens (crm.automations.engine); time triggers find their due records
in SQL, without those already fired on their current occasion (`scan` and `due`, run by crm.automations.runner).
"""
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import ColumnElement, Select, String, cast, exists, func, literal, or_, select as sa_select, union_all
from sqlalchemy.sql import FromClause
from sqlalchemy.sql.expression import Exists
from sqlmodel import Session, select

from crm.automations.params import live_row, only_keys, text, whole_number
from crm.clock import as_utc, utcnow
from crm.errors import ValidationFailed
from crm.models import (
    Activity, AuditLog, AutomationFiring, AutomationRule, Company, Contact, CustomFieldDef, CustomFieldValue, Deal,
    DealStageHistory, DealStatus, FieldType, Pipeline, Stage, Ticket, TicketStatus, WebForm,
)
from crm.sqlfuncs import unindexed

P = "trigger_params"
DATED = {"contact": Contact, "company": Company, "deal": Deal}  # records that carry date custom fields


class Due(NamedTuple):
    """A record a time trigger found due, the occasion's name, and when the occasion began (None for a date)."""
    record_id: int
    occasion: str
    began: datetime | None = None


@dataclass(frozen=True)
class Trigger:
    label: str  # what the admin page calls it
    clean: Callable[[Session, dict], dict]  # the checked parameters, or ValidationFailed naming one
    entity: Callable[[dict], str]  # the kind of record a firing acts on
    # An event trigger says whether an event on a record concerns the rule, and on which occasion (None: it does
    # not). A time trigger's `scan` is the query of the records that may be due at `now` (their id first), in one
    # set-based pass; `due` takes a batch of those ids and returns the ones due and not fired on for their
    # current occasion, checked again in the batch's own transaction.
    occasion: Callable[[Session, dict, int, dict], str | None] | None = None
    scan: Callable[[Session, AutomationRule, datetime], Select] | None = None
    due: Callable[[Session, AutomationRule, datetime, list[int]], list[Due]] | None = None

    @property
    def kind(self) -> str:
        return "time" if self.scan else "event"


# --- parameters ---------------------------------------------------------------------------------------------------

def _stage(session: Session, params: dict) -> dict:
    params = only_keys(params, {"stage_id"}, P)
    return {"stage_id": live_row(session, Stage, params, "stage_id", P, "stage").id}


def _idle(session: Session, params: dict) -> dict:
    params = only_keys(params, {"days", "pipeline_id"}, P)
    out = {"days": whole_number(params, "days", P, lo=1, hi=3650)}
    if params.get("pipeline_id") is not None:
        out["pipeline_id"] = live_row(session, Pipeline, params, "pipeline_id", P, "pipeline").id
    return out


def _no_params(session: Session, params: dict) -> dict:
    only_keys(params, set(), P)
    return {}


def _threshold(session: Session, params: dict) -> dict:
    value = only_keys(params, {"threshold"}, P).get("threshold")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 100:
        raise ValidationFailed(f"{P}.threshold", "give a lead score above 0 and at most 100")
    return {"threshold": float(value)}


def _dated(session: Session, params: dict) -> dict:
    params = only_keys(params, {"entity", "field", "days"}, P)
    if not isinstance(params.get("entity"), str) or params["entity"] not in DATED:
        raise ValidationFailed(f"{P}.entity", f"choose one of {', '.join(DATED)}")
    field = date_field(session, params["entity"], text(params, "field", P, max_length=60))
    return {"entity": params["entity"], "field": field.key, "days": whole_number(params, "days", P, lo=0, hi=3650)}


def date_field(session: Session, entity: str, key: str | None) -> CustomFieldDef:
    """The live date custom field `key` of the entity (a renewal or contract end date)."""
    found = session.exec(select(CustomFieldDef).where(CustomFieldDef.entity == entity, CustomFieldDef.key == key,
                                                      CustomFieldDef.deleted_at.is_(None))).first()
    if found is None or found.field_type != FieldType.DATE:
        raise ValidationFailed(f"{P}.field", f"the {entity} has no date field {key!r}")
    return found


def _form(session: Session, params: dict) -> dict:
    key = text(only_keys(params, {"form_key"}, P), "form_key", P, max_length=60, required=False)
    if key is None:
        return {}  # any form
    if session.exec(select(WebForm.id).where(WebForm.key == key, WebForm.deleted_at.is_(None))).first() is None:
        raise ValidationFailed(f"{P}.form_key", f"there is no web form {key!r}")
    return {"form_key": key}


def _hours(session: Session, params: dict) -> dict:
    return {"hours": whole_number(only_keys(params, {"hours"}, P), "hours", P, lo=1, hi=24 * 365)}


# --- event occasions ----------------------------------------------------------------------------------------------

def _stage_entry(session: Session, params: dict, deal_id: int, context: dict) -> str | None:
    """The deal's current stage entry, if it is the rule's stage."""
    entry = session.exec(select(DealStageHistory).where(DealStageHistory.deal_id == deal_id,
                                                        DealStageHistory.exited_at.is_(None))
                         .order_by(DealStageHistory.id.desc()).limit(1)).first()
    if entry is None or entry.stage_id != params["stage_id"]:
        return None
    return f"stage entry {entry.id}"


def _creation(session: Session, params: dict, record_id: int, context: dict) -> str:
    return "created"


def _submission(session: Session, params: dict, contact_id: int, context: dict) -> str | None:
    """The submission, if the rule takes any form or this one."""
    if params.get("form_key") not in (None, context.get("form_key")):
        return None
    if context.get("event_id") is not None:
        return f"event {context['event_id']}"
    return f"submitted {utcnow().isoformat()}"


def lead_score_crossings(session: Session, rule: AutomationRule, scores: FromClause) -> list[tuple[int, float]]:
    """(contact id, new score) for the live contacts whose stored score is below the rule's threshold (or none)
    and whose new score in `scores` (columns id, score) reaches it: an upward crossing. One query, in bulk."""
    x = rule.trigger_params["threshold"]
    stmt = (sa_select(scores.c.id, scores.c.score).join(Contact, Contact.id == scores.c.id)
            .where(scores.c.score >= x, or_(Contact.lead_score.is_(None), Contact.lead_score < x),
                   Contact.deleted_at.is_(None))
            .order_by(scores.c.id))
    return [(int(cid), float(score)) for cid, score in session.execute(stmt).all()]


# --- time triggers: what is due -----------------------------------------------------------------------------------

def _fired_on(rule_id: int, entity: str, record_id, began) -> Exists:
    """The rule fired on the record for the occasion that began at `began` (both read from the same stored
    column, so they compare equal to the microsecond on either database)."""
    return exists().where(AutomationFiring.rule_id == rule_id, AutomationFiring.entity == entity,
                          AutomationFiring.record_id == record_id, AutomationFiring.occasion_at == began)


def _started() -> ColumnElement:
    return func.coalesce(Deal.stage_entered_at, Deal.created_at)


def _open_deals(rule: AutomationRule, status: ColumnElement = Deal.status) -> tuple:
    """The rule's deals: open, live, of its pipeline if it names one."""
    conditions = (status == DealStatus.OPEN, Deal.deleted_at.is_(None))
    if "pipeline_id" in rule.trigger_params:
        conditions += (Deal.pipeline_id == rule.trigger_params["pipeline_id"],)
    return conditions


def _idle_scan(session: Session, rule: AutomationRule, now: datetime) -> Select:
    """Open deals untouched for the rule's days. A touch is entering a stage, an activity logged on the deal
    (its occurred_at), a task on it done (done_at), or any audited change to the deal (an edit, a custom value)."""
    cutoff = now - timedelta(days=rule.trigger_params["days"])
    stmt = select(Deal.id).where(*_open_deals(rule), _started() <= cutoff,
                                 ~exists().where(Activity.deal_id == Deal.id, Activity.deleted_at.is_(None),
                                                 or_(Activity.occurred_at > cutoff, Activity.done_at > cutoff)))
    # Audit ids grow with time, so "no audit row since the cutoff" is "none from the first id written since", which
    # ix_audit_record answers from the index alone (it may count a row of just before the cutoff: never early).
    first_recent = session.exec(select(func.min(AuditLog.id)).where(AuditLog.at > cutoff)).one()
    if first_recent is not None:
        stmt = stmt.where(~exists().where(AuditLog.entity == "deal", AuditLog.record_id == Deal.id,
                                          AuditLog.id >= first_recent))
    return stmt


def _idle_due(session: Session, rule: AutomationRule, now: datetime, ids: list[int]) -> list[Due]:
    """Of these deals, the ones still open and idle, each with when its idle streak began: its last touch."""
    cutoff = now - timedelta(days=rule.trigger_params["days"])
    # By primary key: SQLite would otherwise walk every open deal in ix_deal_status_close for a batch of 500.
    live = session.exec(select(Deal.id).where(Deal.id.in_(ids), *_open_deals(rule, unindexed(Deal.status)))).all()
    if not live:
        return []
    activities = (Activity.deal_id.in_(live), Activity.deleted_at.is_(None))
    touches = union_all(
        sa_select(Deal.id.label("deal_id"), _started().label("at")).where(Deal.id.in_(live)),
        sa_select(Activity.deal_id, Activity.occurred_at).where(*activities),
        sa_select(Activity.deal_id, Activity.done_at).where(*activities),
        sa_select(AuditLog.record_id, AuditLog.at).where(AuditLog.entity == "deal", AuditLog.record_id.in_(live)),
    ).subquery()
    last = (sa_select(touches.c.deal_id, func.max(touches.c.at).label("touched"))
            .group_by(touches.c.deal_id).subquery())
    rows = session.execute(sa_select(last.c.deal_id, last.c.touched)
                           .where(last.c.touched <= cutoff, ~_fired_on(rule.id, "deal", last.c.deal_id, last.c.touched))
                           .order_by(last.c.deal_id)).all()
    return [Due(deal_id, f"idle since {as_utc(touched).isoformat()}", as_utc(touched)) for deal_id, touched in rows]


def _dates(session: Session, rule: AutomationRule, now: datetime) -> Select:
    """Live records whose date field falls within the next `days` days (today included; UTC days) and that the
    rule has not fired on for that date."""
    entity, days = rule.trigger_params["entity"], rule.trigger_params["days"]
    field = date_field(session, entity, rule.trigger_params["field"])  # archived since: the run reports it
    table = DATED[entity]
    today = now.date()
    occasion = literal("date ") + cast(CustomFieldValue.value_date, String)
    fired = exists().where(AutomationFiring.rule_id == rule.id, AutomationFiring.entity == entity,
                           AutomationFiring.record_id == CustomFieldValue.record_id,
                           AutomationFiring.occasion == occasion)
    return (select(CustomFieldValue.record_id, CustomFieldValue.value_date)
            .join(table, table.id == CustomFieldValue.record_id)
            .where(CustomFieldValue.field_id == field.id, CustomFieldValue.value_date >= today,
                   CustomFieldValue.value_date <= today + timedelta(days=days), table.deleted_at.is_(None), ~fired))


def _dates_due(session: Session, rule: AutomationRule, now: datetime, ids: list[int]) -> list[Due]:
    rows = session.exec(_dates(session, rule, now).where(CustomFieldValue.record_id.in_(ids))
                        .order_by(CustomFieldValue.record_id)).all()
    return [Due(record_id, f"date {value.isoformat()}") for record_id, value in rows]


def _tickets(session: Session, rule: AutomationRule, now: datetime) -> Select:
    """Tickets not resolved (open or pending), opened at least the rule's hours ago, not fired on yet."""
    cutoff = now - timedelta(hours=rule.trigger_params["hours"])
    return select(Ticket.id, Ticket.opened_at).where(
        Ticket.status.in_([TicketStatus.OPEN, TicketStatus.PENDING]), Ticket.resolved_at.is_(None),
        Ticket.deleted_at.is_(None), Ticket.opened_at <= cutoff,
        ~_fired_on(rule.id, "ticket", Ticket.id, Ticket.opened_at))


def _tickets_due(session: Session, rule: AutomationRule, now: datetime, ids: list[int]) -> list[Due]:
    rows = session.exec(_tickets(session, rule, now).where(Ticket.id.in_(ids)).order_by(Ticket.id)).all()
    return [Due(ticket_id, f"opened {as_utc(opened).isoformat()}", as_utc(opened)) for ticket_id, opened in rows]


TRIGGERS: dict[str, Trigger] = {
    "deal_enters_stage": Trigger("A deal enters a stage", _stage, lambda p: "deal", occasion=_stage_entry),
    "deal_idle": Trigger("A deal has been idle for N days", _idle, lambda p: "deal", scan=_idle_scan, due=_idle_due),
    "contact_created": Trigger("A contact is created", _no_params, lambda p: "contact", occasion=_creation),
    "lead_score_crosses": Trigger("A contact's lead score crosses X", _threshold, lambda p: "contact"),
    "date_approaching": Trigger("A date field is N days away", _dated, lambda p: p["entity"], scan=_dates,
                                due=_dates_due),
    "form_submitted": Trigger("A web form is submitted", _form, lambda p: "contact", occasion=_submission),
    "ticket_open": Trigger("A ticket has been open for N hours", _hours, lambda p: "ticket", scan=_tickets,
                           due=_tickets_due),
}
