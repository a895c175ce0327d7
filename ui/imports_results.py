"""Import page: what a run did (counts, warnings, rejected rows, the error file) and the job history with revert."""
import pandas as pd
import streamlit as st

from crm import imports
from crm.db import read_scope, session_scope
from crm.errors import CRMError
from crm.exporting import FORMATS, frame_to_csv
from crm.imports import ImportSummary
from crm.permissions import Actor
from ui.text import md_escape


def show_summary(summary: ImportSummary) -> None:
    """Counts, warnings, the planned changes (dry run) and every rejected row, with the error file to download."""
    verb = "would be" if summary.dry_run else "were"
    what = "Dry run" if summary.dry_run else "Import"
    st.subheader(f"{what} of {md_escape(summary.filename)} ({summary.rows:,} rows)")
    cols = st.columns(4)
    for col, (label, value) in zip(cols, [("Created", summary.created), ("Updated", summary.updated),
                                           ("Unchanged", summary.unchanged), ("Rejected", summary.rejected)]):
        col.metric(f"{label}", f"{value:,}", help=f"Rows that {verb} {label.lower()}.")
    if summary.also_created:
        st.caption("Also " + ("to be " if summary.dry_run else "") + "created: "
                   + md_escape(", ".join(f"{n} {what}" for what, n in summary.also_created.items())))
    if summary.ignored_columns:
        st.caption("Ignored columns: " + md_escape(", ".join(summary.ignored_columns)))
    for warning in summary.warnings:
        st.warning(md_escape(warning), icon=":material/info:")
    if summary.dry_run and summary.preview:
        st.markdown("**What would change** (first rows)")
        st.dataframe(pd.DataFrame(summary.preview), hide_index=True, key="import_preview_table")
    if summary.problems:
        st.markdown(f"**Rejected rows** ({summary.rejected:,}): nothing from them was imported.")
        frame = summary.problems_frame()
        st.dataframe(frame, hide_index=True, key="import_problems_table",
                     column_config={"row": st.column_config.NumberColumn("Row", format="%d"),
                                    "column": "Column", "value": "Value", "reason": "Reason"})
        st.download_button("Download the error file (CSV)", data=frame_to_csv(frame), mime=FORMATS["csv"],
                           file_name=f"import-{summary.job_id}-errors.csv", key="import_errors_download",
                           icon=":material/download:", on_click="ignore")


def history(actor: Actor) -> None:
    """The import jobs, newest first, and a revert for each finished one."""
    st.subheader("Import history")
    with read_scope() as s:
        jobs = imports.list_jobs(session=s, actor=actor)
    if not jobs:
        st.caption("No imports yet.")
        return
    st.dataframe(pd.DataFrame([{
        "Job": j.id, "What": j.entity, "File": j.filename, "By": j.actor or "", "Started": j.started_at,
        "Created": j.created, "Updated": j.updated, "Unchanged": j.unchanged, "Rejected": j.rejected,
        "Status": j.status, "Reverted": j.reverted_at,
    } for j in jobs]), hide_index=True, key="import_history_table",
        column_config={"Started": st.column_config.DatetimeColumn(format="D MMM YYYY, HH:mm"),
                       "Reverted": st.column_config.DatetimeColumn(format="D MMM YYYY, HH:mm")})
    revertable = {j.id: f"Job {j.id}: {j.entity} from {j.filename}" for j in jobs if j.revertable}
    if not revertable:
        return
    left, right = st.columns([3, 1])
    picked = left.selectbox("Revert an import", list(revertable), key="import_revert_pick", format_func=revertable.get,
                            help="Deletes what the import created and restores what it updated, as they were.")
    if right.button("Revert", key="import_revert", icon=":material/undo:"):
        try:
            with session_scope() as s:
                done = imports.revert_import(session=s, actor=actor, job_id=picked)
        except CRMError as exc:
            st.error(md_escape(exc.message), icon=":material/sync_problem:")
            return
        st.session_state["import_reverted"] = (done.job_id, done.deleted, done.restored)
        st.rerun()


def reverted_notice() -> None:
    """After a revert (and the rerun that refreshes the history), say what it did."""
    if done := st.session_state.pop("import_reverted", None):
        job_id, deleted, restored = done
        st.success(f"Reverted import {job_id}: {deleted:,} records deleted, {restored:,} restored.",
                   icon=":material/check_circle:")
