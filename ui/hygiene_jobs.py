"""Hygiene page, Job history tab: every bulk job (archive, formatting, list merge) with who ran it and what it
changed, and its revert; when records were edited since, the refusal says which, and the person may revert the
others, skipping those."""
import pandas as pd
import streamlit as st

from crm.db import read_scope
from crm.errors import EditConflict
from crm.hygiene.jobs import JobView, RevertResult, list_jobs, revert_job
from crm.permissions import Actor
from ui.directory import version
from ui.hygiene_shared import action_button, count_words, forget, show_result

REFUSED = "hyg_jobs_refused"
KINDS = {"archive": "Archive stale contacts", "format": "Formatting", "list_merge": "List merge"}


@st.cache_data(ttl=600, max_entries=32, show_spinner=False)
def _jobs(actor: Actor, data_version: int) -> list[JobView]:
    with read_scope() as s:
        return list_jobs(session=s, actor=actor, limit=100)


def jobs_tab(actor: Actor) -> None:
    for key in ("hyg_jobs_revert", "hyg_jobs_revert_skip"):
        if isinstance(show_result(key), EditConflict):
            st.session_state[REFUSED] = st.session_state.get("hyg_jobs_pick")
    jobs = _jobs(actor, version())
    if not jobs:
        st.caption("No clean-up jobs yet. Archiving stale contacts, applying formatting and merging lists each make "
                   "one, which can be reverted here.")
        return
    st.dataframe(pd.DataFrame([_row(j) for j in jobs]), hide_index=True, key="hyg_jobs_table",
                 column_config={"when": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
                                "reverted": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})
    _revert(actor, jobs)


def _row(job: JobView) -> dict:
    return {"job": job.id, "kind": KINDS.get(job.kind, job.kind), "details": _details(job), "when": job.created_at,
            "by": job.actor or "", "records": job.record_count, "reverted": job.reverted_at,
            "restored": job.summary.get("restored"), "skipped": job.summary.get("skipped")}


def _details(job: JobView) -> str:
    p = job.params
    if job.kind == "archive":
        chosen = f", {p['selected']:,} chosen" if p.get("selected") is not None else ""
        return f"no engagement for {p.get('days', '?')} days{chosen}"
    if job.kind == "format":
        return ", ".join(p.get("fields", []))
    if job.kind == "list_merge":
        return f"{p.get('merged', '?')} into {p.get('keep', '?')}"
    return ""


def _revert(actor: Actor, jobs: list[JobView]) -> None:
    """Jobs still in effect that this person may revert: their own, or anyone's for an admin."""
    mine = [j for j in jobs if j.status == "done" and (j.actor_id == actor.id or actor.can("contacts.edit_all"))]
    if not mine:
        st.caption("No job you ran is left to revert." if not actor.can("contacts.edit_all") else
                   "Every job has been reverted.")
        return
    label = {j.id: f"#{j.id} {KINDS.get(j.kind, j.kind)} ({_details(j)}), {j.created_at:%Y-%m-%d %H:%M}"
             for j in mine}
    job_id = st.selectbox("Job", list(label), key="hyg_jobs_pick", format_func=label.get)
    action_button(f"Revert job #{job_id}", key="hyg_jobs_revert", icon=":material/undo:",
                  action=lambda s, who: _reverted(revert_job(session=s, actor=who, job_id=job_id)),
                  after=lambda: forget(REFUSED))
    if st.session_state.get(REFUSED) == job_id:
        st.caption("Nothing was reverted. You may restore the records nobody has edited since and leave the "
                   "edited ones as they are now.")
        action_button(f"Revert job #{job_id}, skipping the records edited since", key="hyg_jobs_revert_skip",
                      icon=":material/undo:", after=lambda: forget(REFUSED),
                      action=lambda s, who: _reverted(revert_job(session=s, actor=who, job_id=job_id,
                                                                 skip_edited=True)))


def _reverted(result: RevertResult) -> str:
    message = f"Job #{result.job_id} reverted: {count_words(result.restored, 'record')} restored."
    if result.skipped_count:
        named = "; ".join(f"{s.entity} {s.record_id}: {s.reason}" for s in result.skipped[:10])
        more = f"; and {result.skipped_count - 10:,} more" if result.skipped_count > 10 else ""
        message += f" {count_words(result.skipped_count, 'record')} skipped, left as they are now ({named}{more})."
    return message
