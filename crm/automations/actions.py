"""What a rule does when it fires: the action catalogue, each action's parameters, and how it is carried out.

Each action goes through the use case a person would use (log_activity, update_contact, change_tags, ...), so it is
validated, rights-checked and audited the same way, as the automation (crm.automations.engine). It returns a line
for the firing log, or raises a CRMError, which the engine records as a failed firing.
"""
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy import and_, or_, update
from sqlmodel import Session, SQLModel, select

from crm.activities import ActivityInput, log_activity
from crm.audit import audit, load_for_update
from crm.automations.params import live_row, only_keys, text, whole_number
from crm.companies import clean_company, update_company
from crm.contacts import clean_contact, update_contact
from crm.customfields import parse_value
from crm.deals import DealChanges, edited_values, update_deal
from crm.errors import NotFound, ValidationFailed, from_pydantic
from crm.models import (
    ActivityKind, AutomationRule, Company, CompanyInput, Contact, ContactInput, CustomFieldDef, CustomFieldDefView,
    Deal, Role, Segment, SegmentMember, Tag, Team, Ticket, User,
)
from crm.notifications import notify
from crm.permissions import Actor, require
from crm.tags import change_tags
from crm.targets import team_reps

A = "action_params"
OWNED = {"contact": Contact, "company": Company, "deal": Deal, "ticket": Ticket}  # records with an owner_id
# What set_field may change: the fields of each record's edit form, less what identifies the record (a rule
# that rewrote names or emails would merge people by accident), derived scores, and deal stages (a stage move is
# the pipeline's own event, and a rule moving stages could set off itself).
SETTABLE = {
    "contact": sorted(set(ContactInput.model_fields) - {"first_name", "last_name", "email", "phone", "external_id",
                                                        "lead_score"}),
    "company": sorted(set(CompanyInput.model_fields) - {"name", "domain", "external_id"}),
    "deal": sorted(set(DealChanges.model_fields) - {"stage_id", "lost_reason_id"}),
}
CUSTOM = "custom."  # set_field's prefix for a custom field of a contact or company


@dataclass(frozen=True)
class Firing:
    """One firing being carried out: the rule, the record it fires on, when, and who acts."""
    session: Session
    actor: Actor
    rule: AutomationRule
    entity: str
    record_id: int
    now: datetime

    @property
    def params(self) -> dict:
        return self.rule.action_params


@dataclass(frozen=True)
class Action:
    label: str  # what the admin page calls it
    entities: tuple[str, ...]  # the records it can act on
    clean: Callable[[Session, dict, str], dict]  # (session, params, entity) -> checked params
    perform: Callable[[Firing], str]  # -> a line for the firing log


def _record(f: Firing) -> SQLModel:
    row = f.session.get(OWNED[f.entity], f.record_id)
    if row is None or row.deleted_at is not None:
        raise NotFound(f"{f.entity.capitalize()} {f.record_id} does not exist (or was deleted)")
    return row


def record_label(entity: str, row: SQLModel) -> str:
    """How a notification and the firing log name the record."""
    if entity == "contact":
        return f"{row.first_name} {row.last_name}".strip()
    return row.name if entity == "company" else row.title if entity == "deal" else row.subject


# --- create a task ------------------------------------------------------------------------------------------------

def _task_params(session: Session, params: dict, entity: str) -> dict:
    params = only_keys(params, {"subject", "due_in_days", "assignee"}, A)
    out = {"subject": text(params, "subject", A, max_length=200),
           "due_in_days": whole_number(params, "due_in_days", A, lo=0, hi=365)}
    # "owner" (the record's owner when the rule fires) or a named user's id.
    out["assignee"] = "owner" if params.get("assignee", "owner") == "owner" else \
        live_row(session, User, params, "assignee", A, "user").id
    return out


def _task_links(entity: str, row: SQLModel) -> dict:
    """Where the task is filed: on the record itself; a ticket's task goes on its contact (or company)."""
    if entity == "ticket":
        return {"contact_id": row.contact_id} if row.contact_id is not None else {"company_id": row.company_id}
    return {"deal_id": row.id, "company_id": row.company_id} if entity == "deal" else {f"{entity}_id": row.id}


def _create_task(f: Firing) -> str:
    row = _record(f)
    assignee = row.owner_id if f.params["assignee"] == "owner" else f.params["assignee"]
    if assignee is None:
        raise ValidationFailed("assignee", f"the {f.entity} has no owner to give the task to")
    task = log_activity(session=f.session, actor=f.actor, data=ActivityInput(
        kind=ActivityKind.TASK, subject=f.params["subject"], due_at=f.now + timedelta(days=f.params["due_in_days"]),
        assignee_id=assignee, **_task_links(f.entity, row)))
    return f"task {task.id} for {f.session.get(User, assignee).full_name}, due {task.due_at:%Y-%m-%d}"


# --- assign an owner round-robin ----------------------------------------------------------------------------------

def _team_params(session: Session, params: dict, entity: str) -> dict:
    team = live_row(session, Team, only_keys(params, {"team_id"}, A), "team_id", A, "team")
    if session.exec(team_reps(team.id).limit(1)).first() is None:
        raise ValidationFailed(f"{A}.team_id", f"the team {team.name!r} has no active reps")
    return {"team_id": team.id}


def _next_rep(session: Session, team_id: int, after_id: int | None):
    """The team's rep after `after_id` in turn order (by name, then id, compared in SQL so that the database's
    collation orders both), or the first one: past the last rep, or when there is no turn yet."""
    reps = team_reps(team_id)
    last = session.get(User, after_id) if after_id is not None else None
    if last is not None:
        later = or_(User.full_name > last.full_name, and_(User.full_name == last.full_name, User.id > last.id))
        if (rep := session.exec(reps.where(later).limit(1)).first()) is not None:
            return rep
    return session.exec(reps.limit(1)).first()


def _assign_round_robin(f: Firing) -> str:
    """The contact goes to the team's next rep after the one this rule chose last (the stored cursor), so the
    turn continues across firings and runs; a rep who joins or leaves the team takes or leaves their place."""
    rule = load_for_update(f.session, AutomationRule, f.rule.id, label="Automation rule")  # one turn at a time
    rep = _next_rep(f.session, f.params["team_id"], rule.round_robin_cursor)
    if rep is None:
        raise ValidationFailed("team_id", "the team has no active reps")
    contact = _record(f)
    update_contact(session=f.session, actor=f.actor, contact_id=contact.id, data=ContactInput(owner_id=rep.id),
                   seen_version=contact.version)
    f.session.execute(update(AutomationRule).where(AutomationRule.id == rule.id)
                      .values(round_robin_cursor=rep.id, updated_at=AutomationRule.updated_at))
    return f"owner: {rep.full_name}"


# --- tags and static segments -------------------------------------------------------------------------------------

def _tag_params(session: Session, params: dict, entity: str) -> dict:
    return {"tag_id": live_row(session, Tag, only_keys(params, {"tag_id"}, A), "tag_id", A, "tag").id}


def _tagger(*, remove: bool) -> Callable[[Firing], str]:
    def perform(f: Firing) -> str:
        tag_id = f.params["tag_id"]
        changed = change_tags(session=f.session, actor=f.actor, entity=f.entity, record_ids=[f.record_id],
                              **{"remove" if remove else "add": [tag_id]})
        name = f.session.get(Tag, tag_id).name
        if not changed:
            return f"tag {name!r} was {'not there' if remove else 'there already'}"
        return f"tag {name!r} {'removed' if remove else 'added'}"
    return perform


def _segment_params(session: Session, params: dict, entity: str) -> dict:
    segment = live_row(session, Segment, only_keys(params, {"segment_id"}, A), "segment_id", A, "segment")
    if segment.kind != "static" or segment.entity != entity:
        raise ValidationFailed(f"{A}.segment_id", f"{segment.name!r} is not a static {entity} segment")
    return {"segment_id": segment.id}


def _add_to_segment(f: Firing) -> str:
    require(f.actor, "segments.manage", "add to a list")
    segment = f.session.get(Segment, f.params["segment_id"])
    if segment is None or segment.deleted_at is not None:
        raise ValidationFailed("segment_id", f"segment {f.params['segment_id']} was deleted")
    _record(f)
    member = select(SegmentMember.id).where(SegmentMember.segment_id == segment.id,
                                            SegmentMember.record_id == f.record_id)
    if f.session.exec(member).first() is not None:
        return f"already in {segment.name!r}"
    f.session.add(SegmentMember(segment_id=segment.id, record_id=f.record_id))
    audit(f.session, actor_id=f.actor.id, entity="segment", record_id=segment.id, action="add members",
          changes={"members": (None, 1), "record": (None, f"{f.entity} {f.record_id}")},
          record_version=segment.version)
    return f"added to {segment.name!r}"


# --- set a field --------------------------------------------------------------------------------------------------

def _field_params(session: Session, params: dict, entity: str) -> dict:
    """The field and its value, checked by the validators a manual edit goes through."""
    params = only_keys(params, {"field", "value"}, A)
    field = params.get("field")
    if "value" not in params:
        raise ValidationFailed(f"{A}.value", "is required (null empties the field)")
    if isinstance(field, str) and field.startswith(CUSTOM) and entity in ("contact", "company"):
        return {"field": field, "value": _custom_value(session, entity, field.removeprefix(CUSTOM), params["value"])}
    if field not in SETTABLE[entity]:
        custom = " or custom.<key>" if entity != "deal" else ""
        raise ValidationFailed(f"{A}.field", f"a rule cannot set the {entity}'s {field!r}; it sets "
                                             f"{', '.join(SETTABLE[entity])}{custom}")
    try:
        if entity == "contact":
            clean_contact(session, ContactInput.model_validate({"first_name": "Example", field: params["value"]}))
        elif entity == "company":
            clean_company(session, CompanyInput.model_validate({"name": "Example", field: params["value"]}))
        else:
            edited_values(DealChanges.model_validate({field: params["value"]}), {field})
    except ValidationError as exc:
        raise ValidationFailed(f"{A}.value", from_pydantic(exc).message) from None
    except ValidationFailed as exc:
        raise ValidationFailed(f"{A}.value", exc.message) from None
    return {"field": field, "value": to_jsonable_python(params["value"])}  # stored as JSON: a date as ISO text


def _custom_value(session: Session, entity: str, key: str, raw: Any) -> Any:
    definition = session.exec(select(CustomFieldDef).where(CustomFieldDef.entity == entity, CustomFieldDef.key == key,
                                                           CustomFieldDef.deleted_at.is_(None))).first()
    if definition is None:
        raise ValidationFailed(f"{A}.field", f"the {entity} has no custom field {key!r}")
    view = CustomFieldDefView.model_validate(definition, from_attributes=True)
    if Role.ADMIN not in view.edit_roles:
        raise ValidationFailed(f"{A}.field", f"admins may not edit {view.label!r}, so a rule may not either")
    try:
        value = parse_value(view, raw)
    except ValidationFailed as exc:
        raise ValidationFailed(f"{A}.value", exc.message) from None
    return to_jsonable_python(value)


def _set_field(f: Firing) -> str:
    """Through the record's update use case, as an edit of the current version: validated, audited, versioned."""
    field, value = f.params["field"], f.params["value"]
    row = _record(f)
    before = row.version
    patch, custom = ({}, {field.removeprefix(CUSTOM): value}) if field.startswith(CUSTOM) else ({field: value}, None)
    common = dict(session=f.session, actor=f.actor, seen_version=row.version)
    if f.entity == "contact":
        update_contact(**common, contact_id=row.id, data=ContactInput(**patch), custom=custom)
    elif f.entity == "company":
        update_company(**common, company_id=row.id, data=CompanyInput(**patch), custom=custom)
    else:
        update_deal(**common, deal_id=row.id, changes=DealChanges(**patch))
    return f"{field} set to {value!r}" if row.version != before else f"{field} was {value!r} already"


# --- notify the owner ---------------------------------------------------------------------------------------------

def _notify_params(session: Session, params: dict, entity: str) -> dict:
    return {"message": text(only_keys(params, {"message"}, A), "message", A, max_length=300)}


def _notify_owner(f: Firing) -> str:
    row = _record(f)
    owner = f.session.get(User, row.owner_id) if row.owner_id is not None else None
    if owner is None or not owner.active:
        raise ValidationFailed("owner", f"the {f.entity} has no active owner to notify")
    notify(f.session, user_id=owner.id, message=f"{f.params['message']}: {record_label(f.entity, row)}",
           entity=f.entity, record_id=f.record_id)
    return f"notified {owner.full_name}"


EVERY = ("contact", "company", "deal", "ticket")
ACTIONS: dict[str, Action] = {
    "create_task": Action("Create a task", EVERY, _task_params, _create_task),
    "assign_round_robin": Action("Assign an owner round-robin within a team", ("contact",), _team_params,
                                 _assign_round_robin),
    "add_tag": Action("Add a tag", ("contact", "company"), _tag_params, _tagger(remove=False)),
    "remove_tag": Action("Remove a tag", ("contact", "company"), _tag_params, _tagger(remove=True)),
    "add_to_segment": Action("Add to a static segment", ("contact", "company"), _segment_params, _add_to_segment),
    "set_field": Action("Set a field", ("contact", "company", "deal"), _field_params, _set_field),
    "notify_owner": Action("Notify the owner", EVERY, _notify_params, _notify_owner),
}
