"""What the automation rule forms offer to pick from (stages, users, teams, tags, lists, date fields, forms), read
once per data version, and how a rule's parameters read in words."""
from dataclasses import dataclass, field

import streamlit as st

from crm import customfields, pipelines, tags, users
from crm.audit import data_version
from crm.automations import rules
from crm.automations.actions import ACTIONS
from crm.automations.triggers import TRIGGERS
from crm.db import read_scope
from crm.models import CustomFieldDefView, Entity, FieldType
from crm.permissions import Actor
from crm.segments import service as segments
from crm.webforms import forms


@dataclass(frozen=True)
class Choices:
    stages: dict[int, str] = field(default_factory=dict)  # "New business · Proposal"
    pipelines: dict[int, str] = field(default_factory=dict)
    users: dict[int, str] = field(default_factory=dict)  # active users
    teams: dict[int, str] = field(default_factory=dict)
    tags: dict[int, str] = field(default_factory=dict)
    lists: dict[int, tuple[str, str]] = field(default_factory=dict)  # static segments: id -> (name, entity)
    date_fields: dict[str, str] = field(default_factory=dict)  # "company.renewal" -> "Company · Renewal"
    custom: dict[str, list[CustomFieldDefView]] = field(default_factory=dict)  # fields an admin (so a rule) may edit
    forms: dict[str, str] = field(default_factory=dict)  # key -> name


@dataclass(frozen=True)
class PageData:
    rules: list[rules.RuleView]
    activity: dict[int, rules.RuleActivity]
    choices: Choices
    generation: int  # the data version: create forms start afresh after any write


def page_data(actor: Actor) -> PageData:
    with read_scope() as s:
        version = data_version(s)
    return _page_data(actor, version)


@st.cache_data(ttl=600, max_entries=32, show_spinner=False)
def _page_data(actor: Actor, version: int) -> PageData:
    with read_scope() as s:
        return PageData(rules=rules.list_rules(session=s, actor=actor),
                        activity=rules.rule_activity(session=s, actor=actor), choices=_choices(s, actor),
                        generation=version)


def _choices(s, actor: Actor) -> Choices:
    all_pipelines = pipelines.list_pipelines(session=s)
    editable = {e.value: customfields.list_field_defs(session=s, actor=actor, entity=e, editable_only=True)
                for e in Entity}
    dates = {f"{e.value}.{f.key}": f"{e.value.capitalize()} · {f.label}"
             for e in Entity for f in customfields.all_field_defs(session=s, actor=actor, entity=e)
             if f.field_type == FieldType.DATE}
    return Choices(
        stages={stage.id: f"{p.name} · {stage.name}" for p in all_pipelines for stage in p.stages},
        pipelines={p.id: p.name for p in all_pipelines},
        users={u.id: u.full_name for u in users.list_users(session=s, actor=actor, include_inactive=False)},
        teams={t.id: t.name for t in users.list_teams(session=s, actor=actor)},
        tags={t.id: t.name for t in tags.list_tags(session=s)},
        lists={g.id: (g.name, g.entity) for g in segments.list_segments(session=s, actor=actor) if g.kind == "static"},
        date_fields=dates, custom={e: editable[e] for e in ("contact", "company")},
        forms={f.key: f.name for f in forms.list_forms(session=s, actor=actor)})


# --- in words ----------------------------------------------------------------------------------------------------

def _named(names: dict, value) -> str:
    return names.get(value) or f"#{value} (gone)"


def _date_field(choices: Choices, params: dict) -> str:
    return _named(choices.date_fields, f"{params.get('entity')}.{params.get('field')}")


def trigger_words(rule: rules.RuleView, choices: Choices) -> str:
    p = rule.trigger_params
    detail = {
        "deal_enters_stage": lambda: _named(choices.stages, p.get("stage_id")),
        "deal_idle": lambda: f"{p.get('days')} days" + (
            f" in {_named(choices.pipelines, p['pipeline_id'])}" if "pipeline_id" in p else ""),
        "lead_score_crosses": lambda: f"{p.get('threshold'):g}",
        "date_approaching": lambda: f"{_date_field(choices, p)} within {p.get('days')} days",
        "form_submitted": lambda: _named(choices.forms, p["form_key"]) if "form_key" in p else "any form",
        "ticket_open": lambda: f"{p.get('hours')} hours",
    }.get(rule.trigger)
    label = TRIGGERS[rule.trigger].label
    return f"{label}: {detail()}" if detail else label


def action_words(rule: rules.RuleView, choices: Choices) -> str:
    p = rule.action_params
    detail = {
        "create_task": lambda: f"“{p.get('subject')}” due in {p.get('due_in_days')} days for " + (
            "the owner" if p.get("assignee") == "owner" else _named(choices.users, p.get("assignee"))),
        "assign_round_robin": lambda: _named(choices.teams, p.get("team_id")),
        "add_tag": lambda: _named(choices.tags, p.get("tag_id")),
        "remove_tag": lambda: _named(choices.tags, p.get("tag_id")),
        "add_to_segment": lambda: choices.lists.get(p.get("segment_id"), (f"#{p.get('segment_id')} (gone)",))[0],
        "set_field": lambda: f"{p.get('field')} = {p.get('value')!r}",
        "notify_owner": lambda: f"“{p.get('message')}”",
    }.get(rule.action)
    label = ACTIONS[rule.action].label
    return f"{label}: {detail()}" if detail else label
