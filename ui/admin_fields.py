"""Admin page, Custom fields tab: per entity, list, create, edit and archive; changes go through crm.customfields."""
import re

import pandas as pd
import streamlit as st

from crm import customfields
from crm.models import CustomFieldDefBase, CustomFieldDefView, Entity, FieldType, Role
from ui.forms import FormKeys, show_outcome, submit_button

ROLES = [r.value for r in Role]
TYPES = [t.value for t in FieldType]
DEFAULT_EDITORS = [Role.ADMIN.value, Role.MANAGER.value, Role.REP.value]
RULES = ("required", "regex", "min_value", "max_value", "options", "view_roles", "edit_roles")


def key_from_label(label: str) -> str:
    """A field key such as `renewal_date` from a label such as 'Renewal date' (keys start with a letter)."""
    key = re.sub(r"[^a-z0-9]+", "_", label.strip().lower()).strip("_")
    return key if key[:1].isalpha() else f"field_{key}".rstrip("_")


def fields_tab(defs: dict[str, list[CustomFieldDefView]], generation: int) -> None:
    entity = st.radio("Record type", [e.value for e in Entity], horizontal=True, key="admin_field_entity",
                      format_func=str.capitalize)
    fields = defs[entity]
    st.dataframe(pd.DataFrame([{
        "Label": f.label, "Key": f.key, "Type": f.field_type, "Required": f.required, "Pattern": f.regex or "",
        "Min": f.min_value, "Max": f.max_value, "Options": ", ".join(f.options),
        "Viewed by": ", ".join(f.view_roles), "Edited by": ", ".join(f.edit_roles),
    } for f in fields], columns=["Label", "Key", "Type", "Required", "Pattern", "Min", "Max", "Options", "Viewed by",
                                 "Edited by"]), hide_index=True)
    with st.expander(f"Add a {entity} field", icon=":material/add:"):
        _create_form(entity, generation)
    if fields:
        labels = {f.id: f"{f.label} ({f.key})" for f in fields}
        picked = st.selectbox("Edit a field", list(labels), key=f"admin_field_pick_{entity}", format_func=labels.get)
        _edit_form(next(f for f in fields if f.id == picked))


def _rule_inputs(key: FormKeys, field: CustomFieldDefView | None = None) -> None:
    """Inputs shared by the create and edit forms; each applies to some types only, and the domain checks which."""
    left, right = st.columns(2)
    left.checkbox("Required", value=field.required if field else False, key=key("required"))
    left.text_input("Pattern (regex, text fields)", value=(field.regex or "") if field else "", key=key("regex"))
    right.number_input("Minimum (number fields)", value=field.min_value if field else None, key=key("min_value"))
    right.number_input("Maximum (number fields)", value=field.max_value if field else None, key=key("max_value"))
    st.text_area("Options (dropdown fields, one per line)", value="\n".join(field.options) if field else "",
                 key=key("options"))
    viewers = [str(r) for r in field.view_roles] if field else ROLES
    editors = [str(r) for r in field.edit_roles] if field else DEFAULT_EDITORS
    st.multiselect("Roles that may view", ROLES, default=viewers, key=key("view_roles"))
    st.multiselect("Roles that may edit", ROLES, default=editors, key=key("edit_roles"))


def _rules(v: dict) -> dict:
    return {**{name: v[name] for name in RULES}, "regex": (v["regex"] or "").strip() or None,
            "options": [o.strip() for o in (v["options"] or "").splitlines() if o.strip()]}


def _create_form(entity: str, generation: int) -> None:
    key = FormKeys("admin_field_new_", generation)
    with st.form(f"admin_field_create_form_{entity}"):
        left, right = st.columns(2)
        left.text_input("Label", key=key("label"))
        right.text_input("Key", key=key("key"), help="Lower-case letters, digits and _; made from the label if empty.")
        st.selectbox("Type", TYPES, key=key("field_type"))
        _rule_inputs(key)

        def create(s, actor, v) -> str:
            label = (v["label"] or "").strip()
            created = customfields.create_field_def(session=s, actor=actor, data=CustomFieldDefBase(
                entity=entity, key=(v["key"] or "").strip() or key_from_label(label), label=label,
                field_type=v["field_type"], **_rules(v)))
            return f"Added field {created.label}"

        submitted = submit_button("Add field", key="admin_field_create", form=key, action=create, type="primary")
    show_outcome("admin_field_create", submitted)


def _edit_form(field: CustomFieldDefView) -> None:
    key = FormKeys(f"admin_field_edit_{field.id}_", field.version)
    with st.form(f"admin_field_edit_{field.id}_form"):
        st.text(f"{field.entity.value.capitalize()} field {field.key!r} of type {field.field_type.value}: "
                "these cannot change.")
        st.text_input("Label", value=field.label, key=key("label"))
        _rule_inputs(key, field)
        st.caption(f"Editing version {key.generation}")

        def save(s, actor, v) -> str:
            saved = customfields.update_field_def(
                session=s, actor=actor, field_id=field.id, seen_version=key.generation, data=CustomFieldDefBase(
                    entity=field.entity, key=field.key, field_type=field.field_type, label=(v["label"] or "").strip(),
                    **_rules(v)))
            return f"Saved field {saved.label}"

        def archive(s, actor, v) -> str:
            customfields.archive_field_def(session=s, actor=actor, field_id=field.id, seen_version=key.generation)
            return f"Archived field {field.label}"

        saved = submit_button("Save field", key=f"admin_field_edit_{field.id}_save", form=key, action=save,
                              type="primary")
        archived = submit_button("Archive field", key=f"admin_field_edit_{field.id}_archive", form=key,
                                 action=archive)
    show_outcome(f"admin_field_edit_{field.id}_save", saved)
    show_outcome(f"admin_field_edit_{field.id}_archive", archived)
