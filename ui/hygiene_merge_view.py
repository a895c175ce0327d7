"""The side-by-side merge of two contacts or two companies: which record survives, one choice per field that
differs, what related rows will move, and the Merge button (crm.hygiene.merge.merge_records with the versions the
user saw). A success names the survivor with a link to it; a conflict says who changed what since."""
from datetime import datetime
from typing import Any

import streamlit as st

from crm.companies import get_company
from crm.db import read_scope
from crm.errors import CRMError
from crm.hygiene.merge import MergePreview, merge_preview, merge_records
from crm.hygiene.merge_fields import FieldChoice
from crm.permissions import Actor
from ui.directory import lookups, version
from ui.forms import FormKeys, describe, show_outcome, submit_button
from ui.navigation import COMPANY, CONTACT
from ui.text import md_escape

DONE = "hyg_merge_done"  # the latest merge, shown once under the form with a link to the survivor
SIDES = ["survivor", "merged"]
_COMPANY_FIELDS = ("company_id", "parent_id")


@st.cache_data(ttl=600, max_entries=64, show_spinner=False)
def _preview(actor: Actor, entity: str, survivor_id: int, merged_id: int,
             data_version: int) -> tuple[MergePreview, dict[int, str]]:
    """The preview, and the names of the companies its fields point at (a contact's company, a parent)."""
    with read_scope() as s:
        preview = merge_preview(session=s, actor=actor, entity=entity, survivor_id=survivor_id, merged_id=merged_id)
        ids = {v for f in preview.fields if f.field in _COMPANY_FIELDS for v in (f.survivor, f.merged) if v}
        return preview, {i: _company_name(s, actor, i) for i in ids}


def _company_name(s, actor: Actor, company_id: int) -> str:
    try:
        return get_company(session=s, actor=actor, company_id=company_id, include_deleted=True).name
    except CRMError:
        return f"company #{company_id}"


def _text(f: FieldChoice, side: str, names: dict[int, str], owners: dict[int, str]) -> str:
    """One field's value as the radio option shows it (escaped: it is markdown)."""
    value: Any = getattr(f, side)
    if value is None or value == "" or value == [] or value == {}:
        return "(empty)"
    if f.field == "owner_id":
        value = owners.get(value, f"user #{value}")
    elif f.field in _COMPANY_FIELDS:
        value = names.get(value, f"company #{value}")
    elif isinstance(value, bool):
        value = "yes" if value else "no"
    elif isinstance(value, datetime):
        value = f"{value:%Y-%m-%d %H:%M}"
    elif isinstance(value, list):
        value = ", ".join(map(str, value))
    elif isinstance(value, dict):
        value = ", ".join(f"{k}: {v}" for k, v in value.items())
    return md_escape(value)


def _widget_name(field: str) -> str:
    """A field as a FormKeys name (letters and underscores): custom field `cf.key` becomes `cf__key`."""
    return field.replace(".", "__")


def merge_view(actor: Actor, entity: str, ids: tuple[int, int], labels: dict[int, str], *,
               slot: str = "merge") -> None:
    """Choose the survivor and each differing field's value, then merge; ids are the two records, lower first.

    Widget keys start with `hyg_<slot>_`, so a listed pair and two records typed by id can be on the page at once."""
    keep = st.radio("Record that survives", list(ids), key=f"hyg_{slot}_keep_{entity}_{ids[0]}_{ids[1]}",
                    horizontal=True, format_func=lambda i: md_escape(labels.get(i, f"#{i}")),
                    help="The other record is merged into it and deleted (the merge log can undo it).")
    other = ids[1] if keep == ids[0] else ids[0]
    try:
        preview, names = _preview(actor, entity, keep, other, version())
    except CRMError as exc:
        st.error(md_escape(describe(exc)), icon=":material/block:")
        return
    _related(preview, slot)
    _merge_form(actor, preview, names, slot)


def _merge_form(actor: Actor, preview: MergePreview, names: dict[int, str], slot: str) -> None:
    owners = lookups(actor).readers
    prefix = f"hyg_{slot}_{preview.entity}_{preview.survivor_id}_{preview.merged_id}_"
    key = FormKeys(prefix, version())
    differing = [f for f in preview.fields if f.survivor != f.merged]
    fields = {_widget_name(f.field): f.field for f in differing}
    with st.form(f"{prefix}form"):
        st.markdown(f"Left: **#{preview.survivor_id} {md_escape(preview.survivor_name)}** (survives) · "
                    f"right: **#{preview.merged_id} {md_escape(preview.merged_name)}** (merged into it)")
        for f in differing:
            _field_row(f, key, names, owners)
        st.caption(f"{len(preview.fields) - len(differing)} other fields are the same in both records.")

        def merge(s, who, values) -> str:
            done = merge_records(session=s, actor=who, entity=preview.entity, survivor_id=preview.survivor_id,
                                 merged_id=preview.merged_id, seen_versions=preview.seen_versions,
                                 choices={fields[name]: side for name, side in values.items() if side})
            st.session_state[DONE] = (preview.entity, done.survivor_id, preview.survivor_name, done.merged_id,
                                      done.merge_id, sum(done.moved.values()))
            return f"Merged #{done.merged_id} into #{done.survivor_id} {preview.survivor_name}"

        # After a merge the ids typed under "Merge two records by id" start afresh: one of them is gone.
        submitted = submit_button("Merge", key=f"hyg_{slot}_go", form=key, action=merge, type="primary",
                                  icon=":material/merge:", reset=["hyg_merge_first", "hyg_merge_second"])
    show_outcome(f"hyg_{slot}_go", submitted)


def _field_row(f: FieldChoice, key: FormKeys, names: dict[int, str], owners: dict[int, str]) -> None:
    """One differing field: its label, then the survivor's value (left) and the merged record's (right)."""
    label, choice = st.columns([1, 3], vertical_alignment="center")
    label.markdown(f"**{md_escape(f.label)}**")
    choice.radio(f.label, SIDES, index=SIDES.index(f.default), key=key(_widget_name(f.field)), horizontal=True,
                 label_visibility="collapsed", disabled=not f.editable,
                 format_func=lambda side: _text(f, side, names, owners),
                 help=None if f.editable else "Your role may not edit this field: the survivor keeps its value.")


def _related(preview: MergePreview, slot: str) -> None:
    rows = [{"Related records": r.label, "Move to the survivor": r.moving,
             "Dropped (the survivor already has them)": r.dropped} for r in preview.related if r.moving or r.dropped]
    if rows:
        st.dataframe(rows, hide_index=True, key=f"hyg_{slot}_related")
    else:
        st.caption("Nothing else points at the merged record: only its fields are merged.")


def show_done() -> None:
    """The merge that just succeeded, once, with a link to the survivor."""
    done = st.session_state.pop(DONE, None)
    if done is None:
        return
    entity, survivor_id, name, merged_id, merge_id, moved = done
    st.success(f"Merge {merge_id}: #{merged_id} is now part of #{survivor_id} {md_escape(name)}; {moved} related "
               f"records moved. The merge log can undo it.", icon=":material/check_circle:")
    page = CONTACT if entity == "contact" else COMPANY
    st.page_link(page.path, label=f"Open {md_escape(name)}", icon=":material/open_in_new:",
                 query_params={"id": str(survivor_id)})
