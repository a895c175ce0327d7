"""Custom-field widgets in forms: one input per field the role may see, typed by the field's definition."""
from datetime import date
from typing import Any

import streamlit as st

from crm.models import CustomFieldDefView, FieldType, Role
from ui.forms import FormKeys, field_error


def custom_inputs(key: FormKeys, fields: list[CustomFieldDefView], submit_key: str, *, editable_by: Role,
                  current: dict[str, Any] | None = None) -> None:
    """Inputs for the fields; those the role may only view are shown disabled."""
    if not fields:
        return
    st.markdown("**More fields**")
    current = current or {}
    columns = st.columns(2)
    for i, field in enumerate(fields):
        with columns[i % 2]:
            _input(key, field, current.get(field.key), disabled=editable_by not in field.edit_roles)
            field_error(submit_key, field.key)


def _input(key: FormKeys, field: CustomFieldDefView, value: Any, *, disabled: bool) -> None:
    label = field.label + (" *" if field.required else "")
    name = f"cf_{field.key}"
    kind = FieldType(field.field_type)
    if kind == FieldType.NUMBER:
        hint = " to ".join(f"{b:g}" for b in (field.min_value, field.max_value) if b is not None)
        st.number_input(label, value=value, key=key(name), disabled=disabled, help=f"Range: {hint}" if hint else None)
    elif kind == FieldType.CHECKBOX:
        st.checkbox(label, value=bool(value), key=key(name), disabled=disabled)
    elif kind == FieldType.DATE:
        st.date_input(label, value=value if isinstance(value, date) else None, key=key(name), disabled=disabled)
    elif kind == FieldType.DROPDOWN:
        options = [None, *field.options]
        st.selectbox(label, options, index=options.index(value) if value in options else 0, key=key(name),
                     disabled=disabled, format_func=lambda o: "—" if o is None else o)
    else:
        st.text_input(label, value=value or "", key=key(name), disabled=disabled,
                      help=f"Must match {field.regex}" if field.regex else None)


def custom_values(values: dict[str, Any], fields: list[CustomFieldDefView], role: Role,
                  current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The submitted custom values the role may edit; on an edit form only those that changed."""
    out = {}
    for field in fields:
        name = f"cf_{field.key}"
        if role not in field.edit_roles or name not in values:
            continue
        value = values[name]
        if isinstance(value, str):
            value = value.strip() or None
        if current is None or value != current.get(field.key):
            out[field.key] = value
    return out
