"""The inputs of each trigger's and action's parameters, generated from a small spec per parameter, and the way
back: widget values to the parameters crm.automations checks, and its errors named as the inputs are labelled.

Widgets are keyed through a FormKeys (ui/forms.py) by `<slot>_<trigger or action>_<parameter>`, so switching the
trigger or an action's kind gives fresh inputs instead of a value of the wrong kind."""
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import streamlit as st

from crm.automations.actions import CUSTOM, SETTABLE
from crm.errors import ValidationFailed
from crm.models import FieldType, ForecastCategory, Lifecycle
from crm.imports.values import parse_list
from ui.automation_choices import Choices


@dataclass(frozen=True)
class Param:
    name: str
    label: str  # lower case after the first letter: errors show it as "<Label>: reason"
    kind: str  # how it is picked: see _widget
    lo: int = 0
    hi: int = 0
    default: Any = None
    optional: bool = False


TRIGGER_PARAMS: dict[str, list[Param]] = {
    "deal_enters_stage": [Param("stage_id", "Stage", "stage")],
    "deal_idle": [Param("days", "Idle for (days)", "whole", 1, 3650, 14),
                  Param("pipeline_id", "Pipeline", "pipeline", optional=True)],
    "contact_created": [],
    "lead_score_crosses": [Param("threshold", "Lead score reaches", "score", default=80.0)],
    # The date field itself is picked above the form (it decides the kind of record); see date_field_picker.
    "date_approaching": [Param("days", "Days before the date", "whole", 0, 3650, 30)],
    "form_submitted": [Param("form_key", "Web form", "form", optional=True)],
    "ticket_open": [Param("hours", "Open for (hours)", "whole", 1, 24 * 365, 24)],
}
ACTION_PARAMS: dict[str, list[Param]] = {
    "create_task": [Param("subject", "Task subject", "text", hi=200), Param("due_in_days", "Due after (days)",
                                                                            "whole", 0, 365, 1),
                    Param("assignee", "Task for", "assignee")],
    "assign_round_robin": [Param("team_id", "Team", "team")],
    "add_tag": [Param("tag_id", "Tag", "tag")],
    "remove_tag": [Param("tag_id", "Tag", "tag")],
    "add_to_segment": [Param("segment_id", "Static segment", "list")],
    "set_field": [],  # the field is picked above the form, its value by the field's own kind (set_value_input)
    "notify_owner": [Param("message", "Message", "text", hi=300)],
}
OTHER_LABELS = {"entity": "Date field", "field": "Field to set", "value": "Value"}
# set_field targets the form leaves out: ids of other records (no picker for thousands of companies) and a mapping.
NOT_OFFERED = {"company_id", "parent_id", "social_profiles"}
FIELD_KINDS = {"do_not_contact": "flag", "email_opt_in": "flag", "interests": "items", "owner_id": "user",
               "employees": "whole", "annual_revenue": "number", "amount": "number", "rep_probability": "number",
               "expected_close": "date", "lifecycle_stage": "lifecycle", "forecast_category": "forecast"}
CUSTOM_KINDS = {FieldType.TEXT: "text", FieldType.NUMBER: "number", FieldType.CHECKBOX: "flag",
                FieldType.DROPDOWN: "options", FieldType.DATE: "date"}


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", text.lower())


def _options(kind: str, choices: Choices, entity: str) -> dict:
    return {"stage": choices.stages, "pipeline": choices.pipelines, "team": choices.teams, "tag": choices.tags,
            "user": choices.users, "form": choices.forms,
            "assignee": {"owner": "The record's owner", **choices.users},
            "list": {i: name for i, (name, of) in choices.lists.items() if of == entity},
            "lifecycle": {v.value: v.value for v in Lifecycle},
            "forecast": {v.value: v.value.replace("_", " ") for v in ForecastCategory}}.get(kind, {})


def widget(param: Param, key: str, choices: Choices, entity: str, current: Any = None, *, options=None) -> None:
    """The input for one parameter, showing `current` (the stored value) or the parameter's default."""
    value = param.default if current is None else current
    if param.kind in ("whole", "score", "number"):
        whole = param.kind == "whole"
        st.number_input(param.label, key=key, value=(int(value) if whole else float(value)) if value is not None
                        else None, step=1 if whole else 1.0, min_value=param.lo if whole and param.hi else None,
                        max_value=param.hi if whole and param.hi else None)
    elif param.kind == "text":
        st.text_input(param.label, value=value or "", max_chars=param.hi or None, key=key)
    elif param.kind == "items":
        st.text_input(param.label, value="; ".join(value or []), key=key, help="Separate the items with ';'.")
    elif param.kind == "flag":
        st.checkbox(param.label, value=bool(value), key=key)
    elif param.kind == "date":
        st.date_input(param.label, value=date.fromisoformat(value) if isinstance(value, str) else None, key=key)
    else:
        _choice(param, key, options if options is not None else _options(param.kind, choices, entity), value)


def _choice(param: Param, key: str, names: dict, value: Any) -> None:
    ids = [None, *names] if param.optional else list(names)
    if not ids:
        st.caption(f"{param.label}: there is nothing to choose from yet.")
    index = ids.index(value) if value in ids else 0
    st.selectbox(param.label, ids, index=index if ids else None, key=key,
                 format_func=lambda i: f"Any {param.label.lower()}" if i is None else str(names.get(i, i)))


def value_of(param: Param, raw: Any) -> Any:
    """A widget's value as the parameter the domain expects (None: leave the parameter out)."""
    if raw is None:
        return None
    if param.kind == "whole":
        return int(raw)
    if param.kind in ("score", "number"):
        return float(raw)
    if param.kind == "text":
        return raw.strip() or None
    if param.kind == "items":
        return parse_list(raw)
    if isinstance(raw, date):
        return raw.isoformat()
    return raw


def params_from(specs: list[Param], values: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The parameters from the widget values of `<prefix>_<param>` (see widget_name); unset ones left out."""
    out = {p.name: value_of(p, values.get(widget_name(prefix, p.name))) for p in specs}
    return {k: v for k, v in out.items() if v is not None}


# --- set a field --------------------------------------------------------------------------------------------------

def settable(entity: str, choices: Choices) -> dict[str, str]:
    """The fields a rule may set on this kind of record, by the name the domain takes, with their labels."""
    plain = {f: f.replace("_", " ").capitalize() for f in SETTABLE.get(entity, []) if f not in NOT_OFFERED}
    custom = {CUSTOM + f.key: f"{f.label} (custom)" for f in choices.custom.get(entity, [])}
    return {**plain, **custom}


def value_param(entity: str, field: str, choices: Choices) -> tuple[Param, dict | None]:
    """The Param for a set_field value: its kind follows the field (and a dropdown offers the field's options)."""
    if field.startswith(CUSTOM):
        definition = next((f for f in choices.custom.get(entity, []) if CUSTOM + f.key == field), None)
        kind = CUSTOM_KINDS.get(definition.field_type, "text") if definition else "text"
        options = {o: o for o in definition.options} if definition and kind == "options" else None
        return Param("value", "Value", kind, optional=kind == "options"), options
    return Param("value", "Value", FIELD_KINDS.get(field, "text"), optional=field == "owner_id"), None


# --- errors -------------------------------------------------------------------------------------------------------

def label_for(field: str, trigger: str, action: str, ordinal: str | None) -> str:
    """The input a domain error is about, as the form labels it (and which action, when there are several)."""
    where = f" ({ordinal} action)" if ordinal else ""
    prefix, _, name = field.partition(".")
    if prefix == "trigger_params":
        found = next((p.label for p in TRIGGER_PARAMS.get(trigger, []) if p.name == name), None)
        return found or OTHER_LABELS.get(name, name.replace("_", " "))
    if prefix == "action_params" or field in OTHER_LABELS or field in ("owner", "assignee", "team_id", "segment_id"):
        name = name or field
        found = next((p.label for p in ACTION_PARAMS.get(action, []) if p.name == name), None)
        return (found or OTHER_LABELS.get(name, name.replace("_", " "))) + where
    return field + where if field == "action" else field


@contextmanager
def named_errors(trigger: str, action: str, ordinal: str | None = None) -> Iterator[None]:
    try:
        yield
    except ValidationFailed as exc:
        raise ValidationFailed(label_for(exc.field, trigger, action, ordinal), exc.reason) from None


def widget_name(prefix: str, param: str) -> str:
    """A parameter's widget name within its form (`<slot>_<kind>_<param>`, letters and _ only)."""
    return slug(f"{prefix}_{param}")
