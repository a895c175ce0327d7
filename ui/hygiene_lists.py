"""Hygiene page, Lists tab: two static segments kept for the same purpose merged into one, after seeing both member
counts; one job that Job history can revert."""
import pandas as pd
import streamlit as st

from crm.db import read_scope
from crm.hygiene.lists import merge_lists
from crm.permissions import Actor
from crm.segments.service import SegmentView, list_segments, static_size
from ui.directory import version
from ui.hygiene_shared import action_button, count_words, show_result
from ui.text import md_escape


@st.cache_data(ttl=600, max_entries=32, show_spinner=False)
def _lists(actor: Actor, data_version: int) -> list[tuple[SegmentView, int]]:
    """The static segments with their member counts, as the person sees them (the versions a merge checks)."""
    with read_scope() as s:
        return [(seg, static_size(s, seg.id)) for seg in list_segments(session=s, actor=actor) if seg.kind == "static"]


def lists_tab(actor: Actor) -> None:
    st.caption("Merging adds the members of one static segment to another (nobody twice) and deletes the first; "
               "automations that added to it add to the kept one.")
    show_result("hyg_list_merge")
    lists = _lists(actor, version())
    if len(lists) < 2:
        st.caption("Fewer than two static segments: nothing to merge.")
        return
    st.dataframe(pd.DataFrame([{"list": seg.name, "of": seg.entity, "members": n, "updated": seg.updated_at}
                               for seg, n in lists]), hide_index=True, key="hyg_list_table")
    by_id = {seg.id: (seg, n) for seg, n in lists}
    label = {i: f"{seg.name} ({count_words(n, 'member')})" for i, (seg, n) in by_id.items()}
    keep_col, merged_col = st.columns(2)
    keep_id = keep_col.selectbox("Keep", list(by_id), key="hyg_list_keep", format_func=label.get)
    keep, kept_members = by_id[keep_id]
    others = [i for i, (seg, _) in by_id.items() if i != keep_id and seg.entity == keep.entity]
    if not others:
        merged_col.caption(f"No other static {keep.entity} segment.")
        return
    merged_id = merged_col.selectbox("Merge into it, then delete", others, key="hyg_list_merged",
                                     format_func=label.get)
    merged, merged_members = by_id[merged_id]
    st.markdown(f"**{md_escape(keep.name)}** has {count_words(kept_members, 'member')}; "
                f"**{md_escape(merged.name)}** has {count_words(merged_members, 'member')}. "
                f"Members of both are counted once.")
    seen = (keep.version, merged.version)
    action_button(f"Merge {md_escape(merged.name)} into {md_escape(keep.name)}", key="hyg_list_merge", icon=":material/merge:",
                  action=lambda s, who: _merge(s, who, keep, merged, seen))


def _merge(s, actor: Actor, keep: SegmentView, merged: SegmentView, seen: tuple[int, int]) -> str:
    done = merge_lists(session=s, actor=actor, keep_id=keep.id, merged_id=merged.id, seen_versions=seen)
    return (f"List merge job #{done.job_id}: {count_words(done.added, 'member')} of {merged.name} added to "
            f"{keep.name}, which now has {done.members:,}. Revert it from Job history.")
