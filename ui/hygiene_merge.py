"""Data hygiene page, Duplicates and Merge log tabs: the pairs a scan stored (scan in a child process), dismiss and
reopen, the side-by-side merge (ui/hygiene_merge_view.py), and the merge log with an undo per merge. Every change
goes through crm.hygiene, which checks the rights again; reads are cached on the data version."""
from collections.abc import Callable
from datetime import datetime
from typing import Any

import streamlit as st

from crm.db import read_scope
from crm.errors import CRMError
from crm.hygiene.duplicates import DuplicatePage, dismiss_duplicate, list_duplicates, reopen_duplicate
from crm.hygiene.merge import MergeLogEntry, list_merges, undo_merge
from crm.models import DuplicatePairView, PairStatus
from crm.permissions import Actor
from ui import hygiene_merge_scan as scans
from ui.directory import version
from ui.forms import describe, run_action
from ui.hygiene_merge_view import merge_view, show_done
from ui.text import md_escape

PAGE_SIZE = 20
ENTITIES = {"contact": "Contacts", "company": "Companies"}
_PAIR_FAILED = "hyg_dup_failed"  # what went wrong with the latest dismiss or reopen, shown once
_UNDO_FAILED = "hyg_log_failed"


@st.cache_data(ttl=600, max_entries=128, show_spinner=False)
def _pairs(actor: Actor, entity: str, status: str, page: int, data_version: int) -> DuplicatePage:
    with read_scope() as s:
        return list_duplicates(session=s, actor=actor, entity=entity, status=PairStatus(status), limit=PAGE_SIZE,
                               offset=page * PAGE_SIZE)


@st.cache_data(ttl=600, max_entries=64, show_spinner=False)
def _merges(actor: Actor, data_version: int) -> list[MergeLogEntry]:
    with read_scope() as s:
        return list_merges(session=s, actor=actor, limit=50)


def _act(failed_key: str, action: Callable[[Any, Actor], Any], message: Callable[[Any], str]) -> None:
    """A button's callback: run the use case; toast its success, or keep its error for the body to show."""
    result = run_action(action)
    if isinstance(result, CRMError):
        st.session_state[failed_key] = describe(result)
    elif result is not None:
        st.session_state.pop(failed_key, None)
        st.toast(md_escape(message(result)), icon=":material/check_circle:")


def _show_failure(failed_key: str) -> None:
    if reason := st.session_state.pop(failed_key, None):
        st.error(md_escape(reason), icon=":material/error:")


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at else "never"


def duplicates_tab(actor: Actor) -> None:
    left, right = st.columns(2)
    entity = left.radio("Records", list(ENTITIES), format_func=ENTITIES.get, horizontal=True, key="hyg_dup_entity",
                        on_change=_first_page)
    status = right.radio("Pairs", [s.value for s in PairStatus], horizontal=True, key="hyg_dup_status",
                         format_func=str.capitalize, on_change=_first_page)
    page = st.session_state.get("hyg_dup_page", 1) - 1
    listed = _pairs(actor, entity, status, page, version())
    if page and not listed.rows:  # the last page emptied (pairs merged or dismissed): back to the first
        _first_page()
        st.rerun()
    _scan_panel(actor, entity, listed.scanned_at)
    show_done()
    _show_failure(_PAIR_FAILED)
    if not listed.rows:
        st.caption(f"No {status} pairs of {ENTITIES[entity].lower()}." +
                   (" Scan for duplicates to find some." if status == PairStatus.OPEN else ""))
    else:
        _pair_table(listed, page)
        _pair_actions(actor, entity, listed.rows)
    with st.expander("Merge two records by id", icon=":material/merge:"):
        _merge_by_id(actor, entity)


def _first_page() -> None:
    st.session_state.pop("hyg_dup_page", None)


def _scan_panel(actor: Actor, entity: str, scanned_at: datetime | None) -> None:
    scan = scans.current(entity)
    running = scan is not None and scan.running
    left, right = st.columns([1, 3], vertical_alignment="center")
    if left.button("Scan for duplicates", key="hyg_dup_scan", icon=":material/search:", disabled=running):
        scans.start(entity, actor)
        st.rerun()
    if running:
        with right:
            _scan_progress(entity)
        return
    summary = scan.summary() if scan else None
    if summary:
        right.success(f"Scan done in {scan.elapsed:.0f} s: {_pairs_found(summary['found'])}, {summary['new']:,} new, "
                      f"{summary['removed']:,} gone.", icon=":material/check_circle:")
    elif scan and scan.failure():
        right.error(f"The scan failed: {md_escape(scan.failure())}", icon=":material/error:")
    right.caption(f"Last scan of {ENTITIES[entity].lower()}: {_when(scanned_at)}. A scan runs in the background: "
                  "at a million contacts it takes about a minute.")


def _pairs_found(n: int) -> str:
    return f"{n:,} pair" + ("" if n == 1 else "s")


@st.fragment(run_every=2)
def _scan_progress(entity: str) -> None:
    """While a scan runs: how long it has been running; when it ends, the whole page runs again to list its pairs."""
    scan = scans.current(entity)
    if scan is None or not scan.running:
        st.rerun()
    st.info(f"Scan running since {scan.started_at:%H:%M:%S} UTC ({scan.elapsed:.0f} s)…",
            icon=":material/hourglass_top:")


def _pair_table(listed: DuplicatePage, page: int) -> None:
    pages = max(1, -(-listed.total // PAGE_SIZE))
    st.dataframe([{"Pair": p.id, "Score": p.score, "Record A": f"#{p.a_id} {p.a_name}", "A details": p.a_detail,
                   "Record B": f"#{p.b_id} {p.b_name}", "B details": p.b_detail, "Reasons": ", ".join(p.reasons)}
                  for p in listed.rows], hide_index=True, key="hyg_dup_table",
                 column_config={"Score": st.column_config.ProgressColumn("Score", min_value=0, max_value=1,
                                                                         format="%.3f")})
    total = f"{listed.total:,}+" if listed.capped else f"{listed.total:,}"
    left, right = st.columns([1, 3], vertical_alignment="center")
    left.number_input("Page", min_value=1, max_value=pages, key="hyg_dup_page")
    right.caption(f"Pairs {page * PAGE_SIZE + 1:,}–{page * PAGE_SIZE + len(listed.rows):,} of {total}, best first.")


def _pair_label(p: DuplicatePairView) -> str:
    return f"{p.score:.3f} · #{p.a_id} {p.a_name} ↔ #{p.b_id} {p.b_name}"


def _pair_actions(actor: Actor, entity: str, rows: list[DuplicatePairView]) -> None:
    by_id = {p.id: p for p in rows}
    if st.session_state.get("hyg_dup_pick") not in by_id:
        st.session_state.pop("hyg_dup_pick", None)  # decided or merged meanwhile: pick from this page afresh
    pair = by_id[st.selectbox("Pair", list(by_id), key="hyg_dup_pick", format_func=lambda i: _pair_label(by_id[i]))]
    if pair.status == PairStatus.DISMISSED:
        st.button("Reopen: maybe a duplicate after all", key="hyg_dup_reopen", icon=":material/undo:",
                  on_click=_act, args=(_PAIR_FAILED, lambda s, who: reopen_duplicate(
                      session=s, actor=who, pair_id=pair.id, seen_version=pair.version),
                                       lambda _: f"Pair {pair.id} is open again"))
        return
    if pair.status == PairStatus.MERGED:
        st.caption("These two were merged: the merge log can undo it.")
        return
    st.button("Not a duplicate", key="hyg_dup_dismiss", icon=":material/do_not_disturb_on:",
              on_click=_act, args=(_PAIR_FAILED, lambda s, who: dismiss_duplicate(
                  session=s, actor=who, pair_id=pair.id, seen_version=pair.version),
                                   lambda _: f"Pair {pair.id} dismissed: later scans leave it alone"))
    st.subheader("Merge them", divider="gray")
    merge_view(actor, entity, (pair.a_id, pair.b_id), {pair.a_id: f"#{pair.a_id} {pair.a_name}",
                                                       pair.b_id: f"#{pair.b_id} {pair.b_name}"})


def _merge_by_id(actor: Actor, entity: str) -> None:
    left, right = st.columns(2)
    first = left.number_input("First record id", min_value=1, value=None, step=1, key="hyg_merge_first")
    second = right.number_input("Second record id", min_value=1, value=None, step=1, key="hyg_merge_second")
    if first is None or second is None:
        st.caption(f"Two {ENTITIES[entity].lower()} that no scan paired can be merged here too.")
        return
    if first == second:
        st.caption("Give two different ids.")
        return
    merge_view(actor, entity, tuple(sorted((int(first), int(second)))), {}, slot="byid")


def merge_log_tab(actor: Actor) -> None:
    _show_failure(_UNDO_FAILED)
    entries = _merges(actor, version())
    if not entries:
        st.caption("No merges yet.")
        return
    st.caption("The latest 50 merges you may see, newest first. An undo puts back both records and every related "
               "record exactly; merges of the same record are undone newest first.")
    for entry in entries:
        _log_row(entry)


def _log_row(e: MergeLogEntry) -> None:
    text, button = st.columns([5, 1], vertical_alignment="center")
    text.markdown(f"**Merge {e.id}** · {_when(e.merged_at)} · by {md_escape(e.merged_by or 'unknown')}  \n"
                  f"{e.entity.capitalize()} #{e.merged_id} {md_escape(e.merged_name)} merged into "
                  f"#{e.survivor_id} {md_escape(e.survivor_name)}")
    if e.undone_at is not None:
        button.caption(f"Undone {_when(e.undone_at)} by {md_escape(e.undone_by or 'unknown')}")
        return
    button.button("Undo", key=f"hyg_log_undo_{e.id}", icon=":material/undo:", on_click=_act, args=(
        _UNDO_FAILED, lambda s, who: undo_merge(session=s, actor=who, merge_id=e.id),
        lambda done: f"Merge {done.merge_id} undone: #{done.survivor_id} and #{done.merged_id} are back "
                     f"({done.rows_restored} related records restored)"))
