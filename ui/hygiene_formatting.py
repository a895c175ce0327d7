"""Hygiene page, Formatting tab: preview the fixes (names, emails, phones, countries) as a before → after table the
person can untick, then apply the ticked ones as one job that Job history can revert."""
import pandas as pd
import streamlit as st

from crm.db import read_scope
from crm.errors import CRMError
from crm.hygiene.formatting import FormattingPreview, FormattingResult, apply_formatting, preview_formatting
from crm.hygiene.formatting_rules import FIELDS
from crm.permissions import Actor
from ui.forms import describe
from ui.hygiene_shared import action_button, count_words, forget, show_result
from ui.text import md_escape

PREVIEW, EDITOR = "hyg_fmt_preview_result", "hyg_fmt_editor"
LABELS = {"first_name": "First name", "last_name": "Last name", "email": "Email", "phone": "Phone",
          "country": "Country"}


def formatting_tab(actor: Actor) -> None:
    st.caption("Names in all capitals or all small letters are re-cased, emails lower-cased, phones written in E.164 "
               "and countries as ISO codes. Preview first; untick what you want to keep; apply as one job.")
    st.multiselect("Fields", list(FIELDS), default=list(FIELDS), key="hyg_fmt_fields", format_func=LABELS.get)
    if st.button("Preview the changes", key="hyg_fmt_preview", icon=":material/preview:"):
        _preview(actor)
    show_result("hyg_fmt_apply")
    shown = st.session_state.get(PREVIEW)
    if shown is not None:
        _show(shown)


def _preview(actor: Actor) -> None:
    fields = tuple(st.session_state["hyg_fmt_fields"])
    forget(PREVIEW, EDITOR)
    try:
        with st.spinner("Reading contacts…"), read_scope() as s:
            st.session_state[PREVIEW] = preview_formatting(session=s, actor=actor, fields=fields)
    except CRMError as exc:
        st.error(md_escape(describe(exc)), icon=":material/error:")


def _show(preview: FormattingPreview) -> None:
    if not preview.proposals and not preview.problems:
        st.success("Nothing to fix in the contacts you may edit.", icon=":material/check_circle:")
        return
    if preview.proposals:
        table = _table(preview)
        st.data_editor(table, key=EDITOR, hide_index=True, disabled=[c for c in table if c != "apply"],
                       column_order=["apply", "contact", "field", "before", "after"],
                       column_config={"apply": st.column_config.CheckboxColumn("Apply"),
                                      "contact": st.column_config.TextColumn("Contact"),
                                      "field": st.column_config.TextColumn("Field"),
                                      "before": st.column_config.TextColumn("Now"),
                                      "after": st.column_config.TextColumn("Formatted")})
        if preview.more:
            st.caption("Only the first 5,000 contacts with fixes are listed: apply these, then preview again.")
        chosen = _chosen(preview)
        action_button(f"Apply {count_words(len(chosen), 'change')}", key="hyg_fmt_apply", type="primary",
                      disabled=not chosen, icon=":material/auto_fix_high:",
                      action=lambda s, who: _applied(apply_formatting(session=s, actor=who, proposals=_chosen(preview))),
                      after=lambda: forget(PREVIEW, EDITOR))
    if preview.problems:
        st.markdown(f"**{count_words(len(preview.problems), 'value')} cannot be fixed** and stay as they are:")
        st.dataframe(pd.DataFrame([{"contact": p.contact_id, "field": LABELS[p.field], "value": p.value,
                                    "problem": p.reason} for p in preview.problems]),
                     hide_index=True, key="hyg_fmt_problems")


def _table(preview: FormattingPreview) -> pd.DataFrame:
    return pd.DataFrame([{"apply": True, "contact": preview.names.get(p.contact_id, f"#{p.contact_id}"),
                          "field": LABELS[p.field], "before": p.before, "after": p.after, "id": p.contact_id}
                         for p in preview.proposals])


def _chosen(preview: FormattingPreview) -> list:
    """The proposals still ticked in the table."""
    edits = st.session_state.get(EDITOR, {}).get("edited_rows", {})
    unticked = {int(i) for i, cells in edits.items() if cells.get("apply") is False}
    return [p for i, p in enumerate(preview.proposals) if i not in unticked]


def _applied(result: FormattingResult) -> str:
    message = (f"Formatting job #{result.job_id}: {count_words(result.fields, 'value')} changed on "
               f"{count_words(result.contacts, 'contact')}. Revert it from Job history.")
    if result.skipped_count:
        named = "; ".join(f"contact {s.record_id}: {s.reason}" for s in result.skipped[:5])
        message += f" {count_words(result.skipped_count, 'contact')} skipped ({named})."
    return message
