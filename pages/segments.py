"""Segments for marketers: build one from conditions with a live count, save it dynamic or static, and act on a saved
one — export (do-not-contact left out unless chosen), tag, tasks for reps, add to a list — with every use
snapshotted so two uses can be compared. RFM groups and clusters become segments in one click."""
from datetime import datetime, time, timedelta

import streamlit as st

from crm.clock import today, utcnow
from crm.db import read_scope
from crm.errors import CRMError
from crm.exporting import FORMATS, export_filename, frame_to_bytes
from crm.segments import actions, service
from crm.segments.options import describe as in_words
from crm.tags import list_tags
from crm.users import list_teams
from ui import segment_analytics, segment_builder, session
from ui.directory import version
from ui.forms import act, describe
from ui.text import md_escape

actor = session.current_actor()
st.title("Segments")
if not actor.can("segments.manage"):
    st.info("Segments are built by marketers and admins.", icon=":material/lock:")
    st.stop()


@st.cache_data(ttl=600, max_entries=64, show_spinner=False)
def _saved(actor_id: int, data_version: int) -> list[service.SegmentView]:
    with read_scope() as s:
        return service.list_segments(session=s, actor=actor)


def _build() -> None:
    built = segment_builder.state()
    entity = st.radio("Segment of", ["contact", "company"], horizontal=True, key="seg_entity",
                      index=0 if built["entity"] == "contact" else 1,
                      format_func=lambda e: "Contacts" if e == "contact" else "Companies")
    if entity != built["entity"]:
        segment_builder.reset(entity)
        st.rerun()
    definition = segment_builder.builder(actor)
    complete = segment_builder.live_count(actor, definition)
    with st.form("seg_save", border=True):
        st.markdown("**Save this segment**")
        name = st.text_input("Name", max_chars=120, key="seg_save_name")
        kind = st.radio("Kind", ["dynamic", "static"], horizontal=True, key="seg_save_kind",
                        format_func=lambda k: {"dynamic": "Dynamic (re-evaluated on each use)",
                                               "static": "Static (members frozen now)"}[k])
        note = st.text_area("Description (optional)", max_chars=1000, key="seg_save_description")
        if st.form_submit_button("Save segment", type="primary", disabled=not complete):
            act(lambda s, who: _saved_message(service.create_segment(
                session=s, actor=who, name=name, definition=definition, kind=kind, description=note)))


@st.cache_data(ttl=600, max_entries=64, show_spinner=False)
def _overview(actor_id: int, segment: service.SegmentView, data_version: int):
    """Members now, the definition in words, and the snapshots: read once per segment and data version, not on
    every run of the page (a dynamic segment's count is a full evaluation)."""
    with read_scope() as s:
        return (service.count_segment(session=s, actor=actor, segment=segment), _in_words(s, segment),
                service.list_snapshots(session=s, actor=actor, segment_id=segment.id))


def _saved_message(view: service.SegmentView) -> str:
    return f"Segment {view.name} saved ({view.kind})"


def _manage() -> None:
    segments = _saved(actor.id, version())
    if not segments:
        st.caption("No saved segments yet: build one in the first tab.")
        return
    by_id = {s.id: s for s in segments}
    chosen = by_id[st.selectbox("Segment", list(by_id), key="seg_pick", format_func=lambda i: by_id[i].name)]
    members, words, snapshots = _overview(actor.id, chosen, version())
    left, right = st.columns([1, 3])
    left.metric("Members now", f"{members:,}")
    right.markdown(f"**{chosen.kind.capitalize()} {chosen.entity} segment.** {md_escape(words)}")
    if chosen.description:
        right.caption(md_escape(chosen.description))
    export_tab, tag_tab, task_tab, owner_tab, list_tab, history_tab = st.tabs(
        ["Export", "Tag", "Tasks for reps", "Assign owners", "Add to a list", "Snapshots"])
    with export_tab:
        _export(chosen)
    with tag_tab:
        _tag(chosen)
    with task_tab:
        _tasks(chosen)
    with owner_tab:
        _assign(chosen)
    with list_tab:
        _add_to_list(chosen, segments)
    with history_tab:
        _history(snapshots)


def _in_words(s, segment: service.SegmentView) -> str:
    """Conditions in words; a list saved from a model or an analysis says where it came from."""
    try:
        return in_words(s, actor, segment.definition)
    except CRMError:
        return "From " + ", ".join(f"{k}: {v}" for k, v in segment.definition.items()) + "."


def _export(segment: service.SegmentView) -> None:
    if not actor.can("data.export"):
        st.caption("Exporting needs the data export right.")
        return
    include = segment.entity == "contact" and st.checkbox(
        "Include contacts marked do-not-contact", key="seg_export_dnc",
        help="Left out by default. Including them is recorded on the export's snapshot.")
    if include:
        st.warning("Do-not-contact contacts will be in the file. Use it only for purposes they have not objected to.",
                   icon=":material/warning:")
    fmt = st.radio("Format", list(FORMATS), horizontal=True, key="seg_export_fmt", format_func=str.upper)
    if st.button("Prepare the export", key="seg_export_go", icon=":material/inventory:"):
        result = act(lambda s, who: actions.export_segment(session=s, actor=who, segment=segment,
                                                            include_do_not_contact=include))
        if result is not None:
            st.session_state["seg_export_file"] = (segment.id, frame_to_bytes(result.frame, fmt),
                                                   export_filename(segment.name, fmt), FORMATS[fmt],
                                                   len(result.frame), result.excluded_do_not_contact)
    prepared = st.session_state.get("seg_export_file")
    if prepared and prepared[0] == segment.id:  # a file prepared for another segment is not offered here
        _, data, filename, mime, rows, left_out = prepared
        st.caption(f"{rows:,} records" + (f"; {left_out:,} do-not-contact left out" if left_out else "") +
                   ". The export is snapshotted and audited.")
        st.download_button(f"Download {filename}", data=data, file_name=filename, mime=mime, key="seg_export_dl",
                           icon=":material/download:", on_click="ignore")


def _tag(segment: service.SegmentView) -> None:
    with read_scope() as s:
        tags = {t.id: t.name for t in list_tags(session=s)}
    if not tags:
        st.caption("No tags yet.")
        return
    with st.form("seg_tag_form"):
        tag = st.selectbox("Tag", list(tags), format_func=tags.get, key="seg_tag")
        remove = st.radio("Do", [False, True], horizontal=True, key="seg_tag_remove",
                          format_func=lambda r: "Remove it from every member" if r else "Add it to every member")
        if st.form_submit_button("Apply"):
            act(lambda s, who: f"{actions.tag_segment(session=s, actor=who, segment=segment, tag_id=tag, remove=remove):,}"
                                f" records changed")


def _tasks(segment: service.SegmentView) -> None:
    if segment.entity != "contact":
        st.caption("Tasks are created for contact segments.")
        return
    with st.form("seg_tasks_form"):
        subject = st.text_input("Task", value=f"Follow up: {segment.name}"[:200], max_chars=200, key="seg_task_subject")
        due = st.date_input("Due", value=today() + timedelta(days=7), key="seg_task_due")
        st.caption("One task per member, for the reps of the contact owner's team in turn.")
        if st.form_submit_button("Create tasks"):
            due_at = datetime.combine(due, time(17, 0)).replace(tzinfo=utcnow().tzinfo)
            act(lambda s, who: _task_message(actions.create_tasks(session=s, actor=who, segment=segment,
                                                                   subject=subject, due_at=due_at)))


def _task_message(done) -> str:
    skipped = f"; {len(done.unassigned):,} contacts have no team with reps" if done.unassigned else ""
    return f"{done.created:,} tasks created for {len(done.by_rep)} reps{skipped}"


def _assign(segment: service.SegmentView) -> None:
    if segment.entity != "contact":
        st.caption("Owners are assigned for contact segments.")
        return
    if not actor.can("contacts.edit_all"):
        st.caption("Handing contacts to new owners needs the right to edit every contact (admins). "
                   "Tasks for reps leave the owners as they are.")
        return
    with read_scope() as s:
        teams = {t.id: t.name for t in list_teams(session=s, actor=actor)}
    if not teams:
        st.caption("No teams yet.")
        return
    with st.form("seg_assign_form"):
        team = st.selectbox("Team", list(teams), format_func=teams.get, key="seg_assign_team")
        st.caption("The members go to the team's active reps in turn; every change is audited.")
        if st.form_submit_button("Assign owners"):
            act(lambda s, who: "Assigned: " + ", ".join(
                f"{name} {n:,}" for name, n in actions.assign_owners(session=s, actor=who, segment=segment,
                                                                     team_id=team).items()))


def _add_to_list(segment: service.SegmentView, segments: list[service.SegmentView]) -> None:
    lists = {s.id: s.name for s in segments if s.kind == "static" and s.entity == segment.entity and s.id != segment.id}
    if not lists:
        st.caption(f"No other static {segment.entity} segment to add to: save one as static first.")
        return
    with st.form("seg_list_form"):
        target = st.selectbox("Static segment", list(lists), format_func=lists.get, key="seg_list_target")
        if st.form_submit_button("Add the members"):
            act(lambda s, who: f"{actions.add_to_static(session=s, actor=who, segment=segment, target=target):,} "
                                f"added to {lists[target]}")


def _history(snapshots: list[service.SnapshotView]) -> None:
    if not snapshots:
        st.caption("No uses yet. Each export, tagging, task run or list addition records who was in the segment.")
        return
    st.dataframe([{"id": s.id, "taken": s.taken_at, "use": s.purpose, "members": s.member_count,
                   "do-not-contact included": s.include_do_not_contact, "by": s.taken_by} for s in snapshots],
                 hide_index=True, key="seg_snapshots")
    if len(snapshots) < 2:
        return
    ids = [s.id for s in snapshots]
    left, right = st.columns(2)
    later = left.selectbox("Later snapshot", ids, index=0, key="seg_cmp_later")
    earlier = right.selectbox("Earlier snapshot", ids, index=1, key="seg_cmp_earlier")
    with read_scope() as s:
        try:
            difference = service.compare_snapshots(session=s, actor=actor, earlier=earlier, later=later)
        except CRMError as exc:
            st.error(md_escape(describe(exc)), icon=":material/error:")
            return
    st.markdown(f"**{len(difference.joined):,} joined**, **{len(difference.left):,} left**, "
                f"{difference.stayed:,} stayed.")


build_tab, saved_tab, rfm_tab, cluster_tab = st.tabs(["Build", "Saved segments", "RFM", "Clusters"])
with build_tab:
    _build()
with saved_tab:
    _manage()
with rfm_tab:
    segment_analytics.rfm(actor)
with cluster_tab:
    segment_analytics.clusters(actor)
