"""The segment builder: groups of conditions edited in place, with the matching count and a sample kept live.

The definition being edited lives in session state as plain data (entity, groups of conditions, each with a stable
id for its widgets' keys). Every run reads the widgets back into it, so the count below always matches what is on
screen; `crm.segments` checks and compiles it, and its errors are shown in words, never as a crash.
"""
import itertools
from datetime import date
from typing import Any

import streamlit as st

from crm.db import read_scope
from crm.errors import CRMError
from crm.permissions import Actor
from crm.segments.definition import DAY_OPS, LIST_OPS, NO_VALUE_OPS, OP_LABELS, OPS_BY_KIND
from crm.segments.fields import Field, catalogue
from crm.segments.options import value_options
from crm.segments.service import count_matching, sample
from ui.directory import version
from ui.forms import describe
from ui.text import md_escape

STATE = "seg_builder"
SAMPLE_LABELS = {"name": "Name", "email": "Email", "company": "Company", "lifecycle_stage": "Lifecycle stage",
                 "country": "Country", "owner": "Owner", "domain": "Domain", "industry": "Industry"}
_ids = itertools.count(1)


@st.cache_resource(ttl=600, max_entries=16, show_spinner=False)  # a resource: its fields hold their SQL builders
def _catalogue(actor: Actor, entity: str, data_version: int) -> dict[str, Field]:
    with read_scope() as s:
        return catalogue(s, actor, entity)


@st.cache_data(ttl=600, max_entries=16, show_spinner=False)
def _options(actor: Actor, data_version: int) -> dict[str, list[tuple[Any, str]]]:
    with read_scope() as s:
        return value_options(s, actor)


@st.cache_data(ttl=600, max_entries=256, show_spinner=False)
def _count(actor: Actor, definition: dict, data_version: int) -> tuple[int, Any]:
    with read_scope() as s:
        return (count_matching(session=s, actor=actor, definition=definition),
                sample(session=s, actor=actor, definition=definition))


def state() -> dict:
    """The definition being built: {"entity", "groups": [[{"uid", "field", …}, …], …]}."""
    if STATE not in st.session_state:
        st.session_state[STATE] = {"entity": "contact", "groups": [[_blank()]]}
    return st.session_state[STATE]


def reset(entity: str = "contact") -> None:
    for key in [k for k in st.session_state if k.startswith("segc_")]:
        del st.session_state[key]
    st.session_state[STATE] = {"entity": entity, "groups": [[_blank()]]}


def _blank(field: str = "lifecycle_stage") -> dict:
    return {"uid": next(_ids), "field": field}


def definition() -> dict:
    """What is on screen as a definition for crm.segments (conditions without a field chosen are left out)."""
    built = state()
    groups = [{"conditions": [{k: v for k, v in c.items() if k != "uid" and v is not None} for c in group
                              if c.get("field")]} for group in built["groups"]]
    return {"entity": built["entity"], "groups": [g for g in groups if g["conditions"]]}


def builder(actor: Actor) -> dict:
    """Draw the groups and return the definition they make."""
    built = state()
    fields = _catalogue(actor, built["entity"], version())
    options = _options(actor, version())
    keys = sorted(fields, key=lambda k: (fields[k].group, fields[k].label))
    for g, group in enumerate(built["groups"]):
        with st.container(border=True):
            st.markdown(f"**Group {g + 1}** · all of these" + ("" if g == 0 else " (or)"))
            for condition in list(group):
                _condition_row(condition, group, fields, keys, options)
            if st.button("Add a condition", key=f"segc_add_{g}_{group[0]['uid'] if group else g}",
                         icon=":material/add:"):
                group.append(_blank())
                st.rerun()
    if st.button("Add a group (matches either)", key="segc_add_group", icon=":material/alt_route:"):
        built["groups"].append([_blank()])
        st.rerun()
    built["groups"] = [g for g in built["groups"] if g] or [[_blank()]]
    return definition()


def _condition_row(condition: dict, group: list, fields: dict[str, Field], keys: list[str],
                   options: dict) -> None:
    uid = condition["uid"]
    left, middle, right, remove = st.columns([3, 2, 4, 0.6], vertical_alignment="bottom")
    current = condition.get("field") if condition.get("field") in fields else keys[0]
    field_key = left.selectbox("Field", keys, index=keys.index(current), key=f"segc_{uid}_field",
                               format_func=lambda k: f"{fields[k].group} · {fields[k].label}",
                               on_change=_forget_values, args=(uid,))
    field = fields[field_key]
    ops = list(OPS_BY_KIND[field.kind])
    op = middle.selectbox("Test", ops, key=f"segc_{uid}_op", format_func=lambda o: OP_LABELS[o],
                          on_change=_forget_values, args=(uid, True))
    condition.clear()
    condition.update({"uid": uid, "field": field_key, "op": op})
    with right:
        condition.update(_value_widgets(uid, field, op, options))
    if remove.button("Remove", key=f"segc_{uid}_remove", icon=":material/close:", help="Remove this condition"):
        group.remove(condition)
        st.rerun()


def _forget_values(uid: int, keep_op: bool = False) -> None:
    """A new field (or test) starts its values afresh: the old ones may not fit it."""
    parts = ("value", "upper", "days", "param") + (() if keep_op else ("op",))
    for part in parts:
        st.session_state.pop(f"segc_{uid}_{part}", None)


def _value_widgets(uid: int, field: Field, op: str, options: dict) -> dict:
    out: dict[str, Any] = {}
    if field.param:
        products = options.get("products", [])
        out["param"] = st.selectbox("Product", [p for p, _ in products], key=f"segc_{uid}_param",
                                    format_func=dict(products).get) if products else None
    if field.needs_days or field.key == "offer_viewed":
        days = st.number_input("Over the last N days" + (" (0: any time)" if not field.needs_days else ""),
                               min_value=0 if not field.needs_days else 1, max_value=36_500,
                               value=30 if field.needs_days else 0, key=f"segc_{uid}_days")
        out["days"] = int(days) or None
    if op in NO_VALUE_OPS:
        return out
    if op in DAY_OPS:
        out["days"] = int(st.number_input("Days", min_value=1, max_value=36_500, value=30, key=f"segc_{uid}_value"))
        return out
    many = op in LIST_OPS
    choices = _choices(field, options)
    if choices is not None:
        labels = dict(choices)
        values = [v for v, _ in choices]
        if many:
            out["value"] = st.multiselect("Values", values, key=f"segc_{uid}_value", format_func=labels.get,
                                          accept_new_options=field.values in ("countries", "offers"))
        else:
            out["value"] = st.selectbox("Value", values, key=f"segc_{uid}_value", format_func=labels.get,
                                        accept_new_options=field.values == "countries")
        return out
    if field.kind == "bool":
        out["value"] = st.radio("Value", [True, False], key=f"segc_{uid}_value", horizontal=True,
                                format_func=lambda b: "yes" if b else "no")
        return out
    if field.kind == "date":
        out["value"] = _iso(st.date_input("From" if op == "between" else "Date", key=f"segc_{uid}_value"))
        if op == "between":
            out["upper"] = _iso(st.date_input("Through", key=f"segc_{uid}_upper"))
        return out
    if field.kind in ("number", "count", "days_since"):
        out["value"] = st.number_input("Value", value=0.0, key=f"segc_{uid}_value", format="%g")
        if op == "between":
            out["upper"] = st.number_input("And", value=0.0, key=f"segc_{uid}_upper", format="%g")
        return out
    text = st.text_input("Values, separated by commas" if many else "Value", key=f"segc_{uid}_value",
                         max_chars=500)
    out["value"] = [t.strip() for t in text.split(",") if t.strip()] if many else text
    return out


def _choices(field: Field, options: dict) -> list[tuple[Any, str]] | None:
    if field.choices:
        return [(c, c) for c in field.choices]
    if field.values in options:
        return options[field.values]
    return None


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def live_count(actor: Actor, built: dict) -> bool:
    """The number of matching records and a sample; False (with the reason in words) if the definition is not
    complete yet."""
    try:
        found, rows = _count(actor, built, version())
    except CRMError as exc:
        st.info(md_escape(describe(exc)), icon=":material/edit_note:")
        return False
    noun = "contacts" if built["entity"] == "contact" else "companies"
    st.metric(f"Matching {noun}", f"{found:,}")
    if len(rows):
        st.caption("A few of them, most recently updated first")
        st.dataframe(rows.drop(columns=["id"]).rename(columns=SAMPLE_LABELS), hide_index=True, key="segc_sample")
    return True
