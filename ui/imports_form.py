"""Import page: the mapping form (a target per file column, new custom fields and their type, the date order,
explicit value fixes and options) and the saved mappings."""
import json

import streamlit as st

from crm import imports
from crm.db import read_scope, session_scope
from crm.errors import CRMError
from crm.imports import CUSTOM, FilePreview, Mapping
from crm.models import FieldType
from crm.permissions import Actor
from ui.text import md_escape

NEW = "new custom field"
ORDERS = {"auto": "Detect from the file", "ymd": "Year-month-day (ISO)", "dmy": "Day/month/year",
          "mdy": "Month/day/year"}
TYPES = [t.value for t in FieldType if t != FieldType.DROPDOWN]
EXTRA_HELP = ('Optional JSON, e.g. {"values": {"Country": {"Holland": "NL"}}, "scale": {"Revenue": 1000000}, '
              '"options": {"match_company_by_name": true}}. See docs/import.md.')


def _set(key: str, value) -> None:
    st.session_state[key] = value


def _selectbox(label: str, options: list, default, *, key: str, **kwargs):
    """A selectbox whose first default comes from the suggestion, later ones from what the user (or a load) chose."""
    if key not in st.session_state:
        kwargs["index"] = options.index(default) if default in options else 0
    return st.selectbox(label, options, key=key, **kwargs)


def mapping_form(entity: str, preview: FilePreview) -> Mapping | None:
    """The mapping the user sees and edits; None while the extra JSON does not parse."""
    columns = imports.canonical_columns(entity)
    labels = {"": "(ignore)", NEW: "New custom field …",
              **{c["name"]: c["name"] + (" (required)" if c["required"] else "") for c in columns},
              **{CUSTOM + k: f"Custom field: {label}" for k, label in preview.custom_fields.items()}}
    options = ["", *[c["name"] for c in columns], *[CUSTOM + k for k in preview.custom_fields]]
    if entity in ("contacts", "companies", "deals"):
        options.append(NEW)
    mapped, custom = {}, {}
    st.caption(f"{preview.rows:,} rows. Each column of the file goes into one field, or is ignored.")
    for i, header in enumerate(preview.headers):
        left, right = st.columns([3, 2])
        with left:
            # Widget labels and help render markdown: the file's own text is escaped.
            target = _selectbox(md_escape(header), options, preview.suggestion.columns.get(header) or "",
                                key=f"import_map_{i}", format_func=labels.get, help=md_escape(_sample(preview, i)))
        if target == NEW:
            with right:
                kind = _selectbox("Type", TYPES, preview.inferred[header], key=f"import_type_{i}",
                                  help="Inferred from the column's values; change it if you know better.")
            key = imports.custom_key(header)
            mapped[header] = CUSTOM + key
            custom[key] = {"label": header[:120], "type": kind}
        else:
            mapped[header] = target or None
    kinds = {c["name"]: c["kind"] for c in columns}
    dated = [h for h, t in mapped.items() if t and (kinds.get(t) in ("date", "datetime") or (
        t.startswith(CUSTOM) and (custom.get(t.removeprefix(CUSTOM), {}).get("type") == FieldType.DATE)))]
    found = preview.detected_order(dated)
    detected = ORDERS[found] if found else "ambiguous, please choose"
    order = _selectbox(f"Date order (detected: {detected})", list(ORDERS), "auto", key="import_date_order",
                       format_func=ORDERS.get)
    extra_text = st.text_area("Value fixes and options (JSON)", key="import_extra", help=EXTRA_HELP)
    try:
        extra = json.loads(extra_text) if extra_text and extra_text.strip() else {}
        return Mapping.model_validate({**extra, "entity": entity, "columns": mapped, "date_order": order,
                                       "custom_fields": {**extra.get("custom_fields", {}), **custom}})
    except (ValueError, TypeError, AttributeError) as exc:
        st.error(f"**Value fixes and options:** {md_escape(str(exc).splitlines()[0])}", icon=":material/error:")
        return None


def _sample(preview: FilePreview, index: int) -> str:
    values = [row[index] for row in preview.sample if row[index]]
    return "Sample: " + ", ".join(values[:3]) if values else "No values in the first rows."


def saved_mappings(actor: Actor, entity: str, headers: list[str], current: Mapping | None) -> None:
    """Load a saved mapping into the form, or save the current one under a name."""
    with read_scope() as s:
        saved = dict(imports.list_mappings(session=s, entity=entity))
    left, right = st.columns(2)
    with left:
        if saved:
            picked = st.selectbox("Saved mapping", list(saved), key="import_saved", format_func=saved.get)
            st.button("Load", key="import_load", on_click=_load, args=(picked, headers), icon=":material/upload:")
        else:
            st.caption("No saved mappings for this kind of file yet.")
    with right:
        name = st.text_input("Save this mapping as", key="import_save_name")
        if st.button("Save mapping", key="import_save", disabled=current is None, icon=":material/save:"):
            try:
                with session_scope() as s:
                    imports.save_mapping(session=s, actor=actor, name=name or "", mapping=current)
                st.toast(f"Saved the mapping {md_escape(name)}", icon=":material/check_circle:")
            except CRMError as exc:
                st.error(md_escape(exc.message), icon=":material/error:")


def _load(mapping_id: int, headers: list[str]) -> None:
    with read_scope() as s:
        mapping = imports.load_mapping(session=s, mapping_id=mapping_id)
    for i, header in enumerate(headers):
        target = mapping.columns.get(header) or ""
        key = target.removeprefix(CUSTOM)
        if target.startswith(CUSTOM) and key in mapping.custom_fields:
            _set(f"import_map_{i}", NEW)
            _set(f"import_type_{i}", str(mapping.custom_fields[key].type))
        else:
            _set(f"import_map_{i}", target)
    _set("import_date_order", str(mapping.date_order))
    extra = {k: v for k, v in mapping.model_dump(mode="json").items() if k in ("values", "scale", "options") and v}
    _set("import_extra", json.dumps(extra, indent=1) if extra else "")
