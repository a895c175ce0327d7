"""The pipeline page's parts: the filters, the kanban board (move a card with one choice) and the editable table."""
from datetime import date, timedelta

import pandas as pd
import streamlit as st

from crm.board import Board, BoardFilter, Card
from crm.clock import today
from crm.db import session_scope
from crm.deals import DealChanges, move_deal, update_deals
from crm.errors import CRMError
from crm.models import ForecastCategory, PipelineView
from crm.permissions import Actor
from ui.forms import callback_actor, describe, run_action
from ui.navigation import DEAL
from ui.pipeline_data import PipelineLookups
from ui.text import md_escape

CLOSE_PERIODS = ["Any time", "Overdue", "This month", "Next month", "This quarter", "Next quarter"]
CATEGORIES = [c.value for c in ForecastCategory if c is not ForecastCategory.CLOSED]
LOSING = "board_losing"  # (deal id, version, title, stage id) of a card dropped on a lost stage, awaiting its reason
MESSAGE = "board_message"


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _month_after(day: date, months: int) -> date:
    month = day.month - 1 + months
    return date(day.year + month // 12, month % 12 + 1, 1)


def close_window(choice: str, day: date) -> tuple[date | None, date | None]:
    """The expected-close range a period choice stands for (inclusive)."""
    month, quarter = day.replace(day=1), _quarter_start(day)
    windows = {
        "Overdue": (None, day - timedelta(days=1)),
        "This month": (month, _month_after(month, 1) - timedelta(days=1)),
        "Next month": (_month_after(month, 1), _month_after(month, 2) - timedelta(days=1)),
        "This quarter": (quarter, _month_after(quarter, 3) - timedelta(days=1)),
        "Next quarter": (_month_after(quarter, 3), _month_after(quarter, 6) - timedelta(days=1)),
    }
    return windows.get(choice, (None, None))


def board_filter(actor: Actor, known: PipelineLookups) -> BoardFilter | None:
    """The filter row; reps start on their own deals, managers on everything they may see."""
    if not known.pipelines:
        st.info("No pipeline is set up yet. An admin can add one on the Admin page.")
        return None
    by_id = {p.id: p for p in known.pipelines}
    default = next((p.id for p in known.pipelines if p.is_default), known.pipelines[0].id)
    cols = st.columns([2, 2, 2, 2, 1, 1])
    pipeline_id = cols[0].selectbox("Pipeline", list(by_id), index=list(by_id).index(default),
                                    format_func=lambda i: by_id[i].name, key="pipe_pipeline")
    owners = [None, *known.owners]
    mine = actor.role == "rep" and actor.id in known.owners
    owner_id = cols[1].selectbox("Owner", owners, index=owners.index(actor.id) if mine else 0, key="pipe_owner",
                                 format_func=lambda i: "Everyone I can see" if i is None else known.owners[i])
    team_id = None
    if actor.can("deals.read_all") and known.teams:
        teams = {t.id: t.name for t in known.teams}
        team_id = cols[2].selectbox("Team", [None, *teams], key="pipe_team",
                                    format_func=lambda i: "All teams" if i is None else teams[i])
    period = cols[3].selectbox("Expected close", CLOSE_PERIODS, key="pipe_close")
    low = cols[4].number_input("Min amount", min_value=0.0, value=0.0, step=1000.0, key="pipe_min")
    high = cols[5].number_input("Max amount", min_value=0.0, value=0.0, step=1000.0, key="pipe_max",
                                help="0 means no upper limit")
    close_from, close_to = close_window(period, today())
    return BoardFilter(pipeline_id=pipeline_id, owner_id=owner_id, team_id=team_id, close_from=close_from,
                       close_to=close_to, min_amount=low or None, max_amount=high or None)


def _money(amount: float, currency: str = "") -> str:
    return f"{amount:,.0f} {md_escape(currency)}".strip()


def _run(action) -> None:
    """Run a board action in its own transaction; its error is shown above the board on this run."""
    result = run_action(action)
    if isinstance(result, CRMError):
        st.session_state[MESSAGE] = describe(result)
    elif result is not None:
        st.toast(md_escape(result), icon=":material/check_circle:")


def _moved(card: Card, key: str, closing: dict[int, tuple[str, bool]]) -> None:
    stage_id = st.session_state.get(key)
    if stage_id in closing and not closing[stage_id][1]:  # a lost stage: ask why first
        st.session_state[LOSING] = (card.id, card.version, card.title, stage_id)
        return
    _run(lambda s, actor: f"{card.title} → " + move_deal(session=s, actor=actor, deal_id=card.id, stage_id=stage_id,
                                                          seen_version=card.version).stage)


def show_board(board: Board, known: PipelineLookups) -> None:
    if message := st.session_state.pop(MESSAGE, None):
        st.error(md_escape(message), icon=":material/sync_problem:")
    _lost_reason_form(known)
    names = {c.stage_id: c.name for c in board.columns}
    closing = {sid: (name, won) for sid, name, won in board.closing}
    targets = {**names, **{sid: ("✔ " if won else "✖ ") + name for sid, (name, won) in closing.items()}}
    if not board.columns:
        st.info("This pipeline has no open stages.")
        return
    for column, slot in zip(board.columns, st.columns(len(board.columns))):
        with slot:
            st.markdown(f"**{md_escape(column.name)}** · {column.probability:.0%}")
            st.caption(f"{column.count:,} deals · {_money(column.amount)}")
            for card in column.cards:
                _card(card, column.stage_id, targets, closing)
            if column.count > len(column.cards):
                st.caption(f"+ {column.count - len(column.cards):,} more: narrow the filters or use the table.")


def _card(card: Card, stage_id: int, targets: dict[int, str], closing: dict[int, tuple[str, bool]]) -> None:
    with st.container(border=True):
        st.page_link(DEAL.path, label=md_escape(card.title), query_params={"id": str(card.id)})
        st.caption(" · ".join(md_escape(x) for x in (card.company, card.owner) if x) or "—")
        close = f"close {card.expected_close:%d %b %Y}" if card.expected_close else "no close date"
        stuck = f" · :red[stuck {card.days_in_stage:.0f} d]" if card.stuck else ""
        st.markdown(f"**{_money(card.amount, card.currency)}** · {close} · {card.probability:.0%}{stuck}")
        key = f"board_move_{card.id}_v{card.version}"
        options = list(targets)
        st.selectbox("Move to", options, index=options.index(stage_id), key=key, format_func=targets.get,
                     label_visibility="collapsed", on_change=_moved, args=(card, key, closing))


def _lost_reason_form(known: PipelineLookups) -> None:
    losing = st.session_state.get(LOSING)
    if losing is None:
        return
    deal_id, version, title, stage_id = losing
    reasons = {r.id: r.name for r in known.lost_reasons}
    with st.form("board_lost_form"):
        st.markdown(f"Why was **{md_escape(title)}** lost?")
        reason = st.selectbox("Lost reason", [None, *reasons], format_func=lambda i: "Choose…" if i is None
                              else reasons[i], key="board_lost_reason")
        mark, cancel = st.columns(2)
        confirmed = mark.form_submit_button("Mark lost", type="primary")
        cancelled = cancel.form_submit_button("Cancel")
    if cancelled:
        del st.session_state[LOSING]
        st.rerun()
    if confirmed:
        failed = []

        def lose(s, actor):
            try:
                view = move_deal(session=s, actor=actor, deal_id=deal_id, stage_id=stage_id, seen_version=version,
                                 lost_reason_id=reason)
            except CRMError:
                failed.append(True)
                raise
            return f"{view.title} marked lost ({view.lost_reason})"

        _run(lose)
        if not failed:
            del st.session_state[LOSING]
        st.rerun()


EDITOR, BASE, OUTCOME = "deal_table_editor", "deal_table_base", "deal_table_outcome"
EDITABLE = ["stage", "amount", "expected_close", "rep_probability", "forecast_category", "next_step"]


def show_table(frame: pd.DataFrame, total: int, pipeline: PipelineView, flt: BoardFilter) -> None:
    """The deals as rows; edited cells are saved together, each row on its own, conflicts reported per row.

    While edits are pending, the table keeps showing the rows (and versions) it showed when editing began, even
    if the data changed meanwhile: the editor's edits are row positions, and each save must carry the version
    the user saw, so that someone else's save in between is reported instead of overwritten."""
    pending = st.session_state.get(EDITOR, {}).get("edited_rows")
    base = st.session_state.get(BASE)
    if not pending or base is None or base[0] != flt:
        st.session_state[BASE] = base = (flt, frame)
    frame = base[1]
    open_stages = {s.name: s.id for s in pipeline.stages if not (s.is_won or s.is_lost)}
    shown = frame.assign(rep_probability=frame["rep_probability"] * 100)
    st.caption(f"{total:,} open deals match; the first {len(frame):,} by expected close are shown. Probability is "
               "the rep's figure if set, else the model's, else the stage default; clear Rep % to fall back.")
    st.data_editor(shown, key=EDITOR, hide_index=True, disabled=[c for c in shown if c not in EDITABLE],
                   column_order=["title", "company", "owner", *EDITABLE, "probability", "model_probability",
                                 "days_in_stage", "stuck"],
                   column_config={
                       "title": st.column_config.TextColumn("Deal"),
                       "stage": st.column_config.SelectboxColumn("Stage", options=list(open_stages), required=True),
                       "amount": st.column_config.NumberColumn("Amount", min_value=0, format="localized"),
                       "expected_close": st.column_config.DateColumn("Close"),
                       "rep_probability": st.column_config.NumberColumn("Rep %", min_value=0, max_value=100,
                                                                        format="%.0f"),
                       "forecast_category": st.column_config.SelectboxColumn("Forecast", options=CATEGORIES,
                                                                             required=True),
                       "next_step": st.column_config.TextColumn("Next step", max_chars=300),
                       "probability": st.column_config.NumberColumn("Shown %", format="percent"),
                       "model_probability": st.column_config.NumberColumn("Model %", format="percent"),
                       "days_in_stage": st.column_config.NumberColumn("Days in stage", format="%.0f"),
                       "stuck": st.column_config.CheckboxColumn("Stuck"),
                   })
    edits = table_edits(frame, st.session_state.get(EDITOR, {}).get("edited_rows", {}), open_stages)
    save_col, discard_col = st.columns([1, 4])
    if save_col.button(f"Save {len(edits)} changed row(s)", type="primary", disabled=not edits, key="deal_table_save"):
        with session_scope() as s:
            actor = callback_actor(s)
            results = update_deals(session=s, actor=actor, edits=edits) if actor else []
        titles = dict(zip(frame["id"], frame["title"]))
        failed = [{"deal": titles[r.deal_id], "problem": r.message} for r in results if not r.ok]
        st.session_state[OUTCOME] = (len(results) - len(failed), failed)
        _forget_edits()
        st.rerun()
    if discard_col.button("Discard changes", disabled=not edits, key="deal_table_discard"):
        _forget_edits()
        st.rerun()
    if outcome := st.session_state.pop(OUTCOME, None):
        saved, failed = outcome
        if saved:
            st.success(f"Saved {saved} row(s).", icon=":material/check_circle:")
        if failed:
            st.error(f"{len(failed)} row(s) were not saved; the others were. The table shows the current values "
                     "now: edit those rows again.", icon=":material/sync_problem:")
            st.dataframe(pd.DataFrame(failed), hide_index=True, key="deal_table_failures")


def _forget_edits() -> None:
    for key in (EDITOR, BASE):
        st.session_state.pop(key, None)


def table_edits(frame: pd.DataFrame, edited_rows: dict, open_stages: dict[str, int]) -> list[tuple[int, int, DealChanges]]:
    """The data editor's edited cells as (deal id, version seen, changes) for crm.deals.update_deals."""
    edits = []
    for position, cells in sorted(edited_rows.items(), key=lambda kv: int(kv[0])):
        row = frame.iloc[int(position)]
        values = {}
        for column, value in cells.items():
            if column == "stage":
                values["stage_id"] = open_stages.get(value)
            elif column == "rep_probability":
                values["rep_probability"] = None if value is None or pd.isna(value) else float(value) / 100
            elif column == "expected_close":
                values["expected_close"] = pd.Timestamp(value).date() if value else None
            elif column in EDITABLE:
                values[column] = value
        if values:
            edits.append((int(row["id"]), int(row["version"]), DealChanges(**values)))
    return edits
