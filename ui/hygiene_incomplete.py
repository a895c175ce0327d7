"""Hygiene page, Incomplete records tab: contacts or companies lacking important or required fields, most valuable
first, computed on request; the missing values are filled in right in the table and each row is saved through the
normal edit use case (update_contact / update_company) with the version the list showed."""
from typing import Any

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from crm import companies, contacts
from crm.customfields import list_field_defs
from crm.db import read_scope
from crm.errors import CRMError, ValidationFailed, from_pydantic
from crm.hygiene.completeness import IMPORTANT, IncompleteReport, incomplete_records
from crm.models import CompanyInput, ContactInput, Entity
from crm.permissions import Actor
from ui.directory import lookups
from ui.feedback import field_label
from ui.forms import run_action
from ui.hygiene_shared import ask, asked, count_words, forget, freshness_note, pager

ASKED, PAGE, EDITOR, BASE, OUTCOME = ("hyg_inc_asked", "hyg_inc_page", "hyg_inc_editor", "hyg_inc_base",
                                      "hyg_inc_outcome")
PAGE_SIZE = 50
NAMES = {"contact": "contacts", "company": "companies"}


@st.cache_data(ttl=1800, max_entries=32, show_spinner=False)
def _report(actor: Actor, entity: str, page: int, data_version: int) -> tuple[IncompleteReport, dict, dict]:
    """The ranked page, the current values of its records' fields (the editor's cells), and the required custom
    fields the actor may fill in (label in the report -> key)."""
    with read_scope() as s:
        report = incomplete_records(session=s, actor=actor, entity=entity, page=page, page_size=PAGE_SIZE)
        custom = _custom_columns(s, actor, entity)
        values = {int(i): _values(s, actor, entity, int(i), custom) for i in report.rows.get("id", [])}
    return report, values, custom


def _custom_columns(s, actor: Actor, entity: str) -> dict[str, str]:
    """Label (as the report names it) -> key, for the required custom fields this actor's role may edit."""
    labels, out = set(IMPORTANT[entity].values()), {}
    for field in list_field_defs(session=s, actor=actor, entity=Entity(entity)):
        if not field.required:
            continue
        label = field.label if field.label not in labels else f"{field.label} ({field.key})"
        labels.add(label)
        if actor.role in field.edit_roles:
            out[label] = field.key
    return out


def _values(s, actor: Actor, entity: str, record_id: int, custom: dict[str, str]) -> dict[str, Any]:
    if entity == "contact":
        view = contacts.get_contact(session=s, actor=actor, contact_id=record_id)
        extra = contacts.contact_custom_values(session=s, actor=actor, contact_id=record_id) if custom else {}
        company = companies.get_company(session=s, actor=actor, company_id=view.company_id,
                                        include_deleted=True).name if view.company_id else None
    else:
        view = companies.get_company(session=s, actor=actor, company_id=record_id)
        extra = companies.company_custom_values(session=s, actor=actor, company_id=record_id) if custom else {}
        company = None
    values = {name: getattr(view, name) for name in IMPORTANT[entity]} | {"company_id": company}
    return values | {f"cf_{key}": None if extra.get(key) is None else str(extra[key]) for key in custom.values()}


def incomplete_tab(actor: Actor) -> None:
    st.caption("Records missing an important field or a required custom field, those with the most at stake first "
               "(open deals + order revenue, + lead score for contacts). Fill the gaps in the table and save.")
    with st.form("hyg_inc_form", border=False):
        st.radio("Records", ["contact", "company"], horizontal=True, key="hyg_inc_entity",
                 format_func=lambda e: NAMES[e].capitalize())
        st.form_submit_button("List incomplete records", key="hyg_inc_find", icon=":material/search:",
                              on_click=_ask)
    request = asked(ASKED)
    if request is None:
        return
    entity, page = request["entity"], int(st.session_state.get(PAGE, 1))
    with st.spinner("Ranking incomplete records…"):
        report, values, custom = _report(actor, entity, page, request["version"])
    freshness_note(request)
    _outcome()
    st.metric(f"Incomplete {NAMES[entity]}", f"{report.total:,}")
    if not report.total:
        return
    counts = {k: v for k, v in report.missing_counts.items() if v}
    st.dataframe(pd.DataFrame(list(counts.items()), columns=["Missing", "Records"]), hide_index=True,
                 key="hyg_inc_counts")
    pager(report.total, PAGE_SIZE, key=PAGE)
    _editor(actor, entity, report, values, custom, base=(entity, page, request["version"]))


def _ask() -> None:
    ask(ASKED, entity=st.session_state["hyg_inc_entity"])
    forget(PAGE, EDITOR, OUTCOME)


def _columns(entity: str, report: IncompleteReport, custom: dict[str, str]) -> dict[str, str]:
    """The editable columns: field or cf_<key> -> label, for what any row of this page lacks."""
    missing = {label for labels in report.rows["missing"] for label in labels}
    out = {name: label for name, label in IMPORTANT[entity].items() if label in missing}
    return out | {f"cf_{key}": label for label, key in custom.items() if label in missing}


def _editor(actor: Actor, entity: str, report: IncompleteReport, values: dict, custom: dict[str, str], *,
            base: tuple) -> None:
    if st.session_state.get(BASE) != base:  # another page or a fresh list: edits of the old one are dropped
        forget(EDITOR)
        st.session_state[BASE] = base
    columns, owners = _columns(entity, report, custom), _owner_names(actor)
    frame = report.rows[["id", "name", "value", "version"]].assign(
        value=report.rows["value"].round(0), missing=[", ".join(m) for m in report.rows["missing"]])
    for name in columns:
        cells = [values[int(i)][name] for i in frame["id"]]
        frame[name] = [owners.get(c, f"user {c}") if c is not None else None for c in cells] \
            if name == "owner_id" else cells
    st.data_editor(frame, key=EDITOR, hide_index=True, column_order=["name", "value", "missing", *columns],
                   disabled=["id", "name", "value", "missing", "version"],
                   column_config=_config(columns, owners))
    edits = st.session_state.get(EDITOR, {}).get("edited_rows", {})
    st.button(f"Save {count_words(len(edits), 'changed row')}", key="hyg_inc_save", type="primary",
              disabled=not edits, on_click=_save_rows, args=(entity, frame, columns, owners))


def _config(columns: dict[str, str], owners: dict[int, str]) -> dict:
    config = {"name": st.column_config.TextColumn("Name"), "missing": st.column_config.TextColumn("Missing"),
              "value": st.column_config.NumberColumn("Value", format="localized",
                                                     help="Open deals + order revenue (+ lead score)")}
    for name, label in columns.items():
        if name == "owner_id":
            config[name] = st.column_config.SelectboxColumn(label, options=list(owners.values()))
        elif name == "employees":
            config[name] = st.column_config.NumberColumn(label, min_value=0, step=1, format="%d")
        else:
            config[name] = st.column_config.TextColumn(label, max_chars=300)
    return config


def _owner_names(actor: Actor) -> dict[int, str]:
    """Owners the actor may hand records to (and others they may read, to show current owners)."""
    known = lookups(actor)
    return {**known.readers, **known.assignable}


def _save_rows(entity: str, frame: pd.DataFrame, columns: dict[str, str], owners: dict[int, str]) -> None:
    """Each edited row in its own transaction with the version the list showed; failures are named by row."""
    edits = st.session_state.get(EDITOR, {}).get("edited_rows", {})
    saved, failed = 0, []
    for position, cells in sorted(edits.items(), key=lambda kv: int(kv[0])):
        row = frame.iloc[int(position)]
        result = run_action(lambda s, who: _save_row(s, who, entity, row, cells, owners))
        if isinstance(result, CRMError):
            failed.append({"record": row["name"] or f"#{row['id']}", **_problem(result, columns)})
        elif result is not None:
            saved += 1
    st.session_state[OUTCOME] = (saved, failed)
    forget(EDITOR)
    if saved:
        ask(ASKED, entity=entity)  # list again, with the saved rows' gaps filled
        st.toast(f"Saved {count_words(saved, 'record')}", icon=":material/check_circle:")


def _problem(exc: CRMError, columns: dict[str, str]) -> dict[str, str]:
    if isinstance(exc, ValidationFailed):
        label = columns.get(exc.field) or columns.get(f"cf_{exc.field}") or field_label(exc.field)
        return {"field": label, "problem": exc.reason}
    return {"field": "", "problem": exc.message}


def _save_row(s, actor: Actor, entity: str, row: pd.Series, cells: dict, owners: dict[int, str]) -> str:
    fields, custom = {}, {}
    for name, value in cells.items():
        value = _clean(value)
        if name.startswith("cf_"):
            custom[name.removeprefix("cf_")] = value
        elif name == "owner_id":
            fields[name] = next((i for i, n in owners.items() if n == value), None)
        elif name == "company_id":
            fields[name] = _company_id(s, value)
        elif name == "employees" and value is not None:
            fields[name] = int(value)
        else:
            fields[name] = value
    try:
        data = ContactInput(**fields) if entity == "contact" else CompanyInput(**fields)
    except ValidationError as exc:
        raise from_pydantic(exc) from None
    update = contacts.update_contact if entity == "contact" else companies.update_company
    update(session=s, actor=actor, data=data, seen_version=int(row["version"]), custom=custom or None,
           **{f"{entity}_id": int(row["id"])})
    return f"Saved {row['name']}"


def _clean(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, str):
        return value.strip() or None
    return value


def _company_id(s, name: str | None) -> int | None:
    """The company a typed name means: exactly one live company of that name (ignoring case)."""
    if name is None:
        return None
    found = [i for i, n in companies.company_choices(session=s, query=name, limit=20) if n.casefold() == name.casefold()]
    if len(found) != 1:
        raise ValidationFailed("company_id", f"no company is named {name!r}" if not found else
                               f"{len(found)} companies are named {name!r}; set it on the contact's page")
    return found[0]


def _outcome() -> None:
    saved, failed = st.session_state.pop(OUTCOME, (0, []))
    if saved:
        st.success(f"Saved {count_words(saved, 'record')}.", icon=":material/check_circle:")
    if failed:
        st.error(f"{count_words(len(failed), 'row')} not saved; the others were. The table shows the stored values: "
                 "edit those rows again.",
                 icon=":material/error:")
        st.dataframe(pd.DataFrame(failed), hide_index=True, key="hyg_inc_failures")
