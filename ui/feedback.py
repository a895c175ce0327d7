"""How a failed action reads on the page: the error under its form, naming the field, in the user's words."""
from collections.abc import Callable

import streamlit as st
from pydantic import ValidationError

from crm.errors import CRMError, EditConflict, ValidationFailed
from ui.text import md_escape

# How the domain's field names read on the forms.
FIELD_LABELS = {
    "email": "Email", "full_name": "Full name", "password": "Password", "role": "Role", "team_id": "Team",
    "name": "Name", "stages": "Stages", "stage": "Stage", "stage_ids": "Stage order", "probability": "Probability",
    "is_won": "Kind", "is_lost": "Kind", "key": "Key", "label": "Label", "field_type": "Type",
    "regex": "Pattern (regex)", "min_value": "Minimum", "max_value": "Maximum", "options": "Options",
    "view_roles": "Roles that may view", "edit_roles": "Roles that may edit",
    "lost_reason_id": "Lost reason", "rep_probability": "My probability", "stage_id": "Stage",
    # data hygiene
    "merged_ids": "Tags to merge", "tag_ids": "Tags", "merged_id": "List to merge", "days": "Days",
    "fields": "Fields", "proposals": "Changes", "company_id": "Company", "owner_id": "Owner",
}


def field_label(field: str) -> str:
    return FIELD_LABELS.get(field, field.replace("_", " ").capitalize())


def show_validation(field: str, reason: str) -> None:
    st.error(f"**{md_escape(field_label(field))}:** {md_escape(reason)}", icon=":material/error:")


def show_failure(exc: Exception, *, key: str, reload: Callable[[], None]) -> None:
    """Render what went wrong with an action; an edit conflict also offers to reload the stored values."""
    if isinstance(exc, ValidationFailed):
        show_validation(exc.field, exc.reason)
    elif isinstance(exc, ValidationError):  # a pydantic input model refused a value before the use case ran
        error = exc.errors()[0]
        show_validation(str(error["loc"][0]) if error["loc"] else "input", error["msg"])
    elif isinstance(exc, EditConflict):
        st.error(md_escape(exc.message), icon=":material/sync_problem:")
        st.button("Reload the current values", key=f"{key}_reload", on_click=reload, icon=":material/refresh:")
    elif isinstance(exc, CRMError):  # PermissionDenied, NotFound
        st.error(md_escape(exc.message), icon=":material/block:")
    else:
        raise exc
