"""Hygiene page, Tags tab: near-duplicate tags ("VIP", "vip ", "V.I.P.") merged into a chosen survivor, and unused
tags deleted. Tags are one vocabulary for everybody, so a merge relinks every record that carries them."""
import pandas as pd
import streamlit as st

from crm.db import read_scope
from crm.hygiene.tag_cleanup import TagMerge, TagUse, delete_tags, merge_tags, near_duplicate_tags, unused_tags
from crm.permissions import Actor
from ui.directory import version
from ui.forms import FormKeys, field_error, show_outcome, submit_button
from ui.hygiene_shared import count_words
from ui.text import md_escape

SHOWN_GROUPS = 25


@st.cache_data(ttl=600, max_entries=32, show_spinner=False)
def _tags(actor: Actor, data_version: int) -> tuple[list[list[TagUse]], list[TagUse]]:
    with read_scope() as s:
        return near_duplicate_tags(session=s, actor=actor), unused_tags(session=s, actor=actor)


def tags_tab(actor: Actor) -> None:
    generation = version()
    groups, unused = _tags(actor, generation)
    st.subheader("Near-duplicate tags")
    if not groups:
        st.caption("No tags look alike.")
    for group in groups[:SHOWN_GROUPS]:
        _group_form(group, generation)
    if len(groups) > SHOWN_GROUPS:
        st.caption(f"{len(groups) - SHOWN_GROUPS:,} more groups: merge these first.")
    st.subheader("Unused tags")
    if not unused:
        st.caption("Every tag is on at least one contact or company.")
        return
    _unused_form(unused, generation)


def _uses(tag: TagUse) -> str:
    return f"{tag.name} ({tag.contacts:,} contacts, {tag.companies:,} companies)"


def _group_form(group: list[TagUse], generation: int) -> None:
    ids = "_".join(str(t.id) for t in sorted(group, key=lambda t: t.id))
    prefix, save = f"hyg_tag_group_{ids}_", f"hyg_tag_group_{ids}_merge"
    names = {t.id: _uses(t) for t in group}
    key = FormKeys(prefix, generation)
    with st.form(f"{prefix}form"):
        # Quoted, not in code spans, where markdown would show md_escape's backslashes (V\.I\.P\.).
        st.markdown(" · ".join(f"“{md_escape(t.name)}”" for t in group))
        st.selectbox("Keep", list(names), key=key("survivor"), format_func=names.get,
                     help="Suggested: the most used, then the oldest.")
        st.multiselect("Merge into it", list(names), default=[t.id for t in group[1:]], key=key("merged"),
                       format_func=names.get)
        field_error(save, "merged_ids")
        done = submit_button("Merge", key=save, form=key, icon=":material/merge:",
                             action=lambda s, who, v: _merge(s, who, v, {t.id: t.name for t in group}))
    show_outcome(save, done)


def _merge(s, actor: Actor, v, names: dict[int, str]) -> str:
    done = merge_tags(session=s, actor=actor, survivor_id=v["survivor"], merged_ids=list(v["merged"] or []))
    return _merged(done, names[done.survivor_id])


def _merged(result: TagMerge, survivor: str) -> str:
    relinked = ", ".join(f"{count_words(n, entity)}" for entity, n in result.relinked.items())
    extra = "".join(f"; {count_words(n, what)} updated" for what, n in
                    (("saved segment", result.segments), ("automation rule", result.rules)) if n)
    merged = ", ".join(f'"{name}"' for name in result.merged)
    return f'Merged {merged} into "{survivor}": {relinked} relinked{extra}'


def _unused_form(unused: list[TagUse], generation: int) -> None:
    st.dataframe(pd.DataFrame([{"tag": t.name, "created": t.created_at} for t in unused]), hide_index=True,
                 key="hyg_tag_unused_table",
                 column_config={"created": st.column_config.DatetimeColumn(format="YYYY-MM-DD")})
    names = {t.id: t.name for t in unused}
    key = FormKeys("hyg_tag_unused_", generation)
    with st.form("hyg_tag_unused_form"):
        st.multiselect("Tags to delete", list(names), key=key("tag_ids"), format_func=names.get)
        st.caption("Deleted tags leave every list and picker; naming one again (by hand or in an import) restores it.")
        field_error("hyg_tag_delete", "tag_ids")
        done = submit_button("Delete the chosen tags", key="hyg_tag_delete", form=key, icon=":material/delete:",
                             action=_delete)
    show_outcome("hyg_tag_delete", done)


def _delete(s, actor: Actor, v) -> str:
    return f"Deleted {count_words(delete_tags(session=s, actor=actor, tag_ids=list(v['tag_ids'] or [])), 'tag')}"
