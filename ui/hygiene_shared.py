"""What the hygiene tool tabs share: buttons whose action runs in their callback (so the page body shows the changed
data), the outcome shown under them, and "computed on request" snapshots for the slow reports.

A slow report (stale contacts, incomplete records) is computed only when the person asks, and cached on the data
version at that moment: later runs of the page reuse it, however many writes happen elsewhere, and say so when
the data has moved on since."""
from collections.abc import Callable
from typing import Any

import streamlit as st

from crm.errors import CRMError
from crm.permissions import Actor
from ui.directory import version
from ui.forms import describe, run_action
from ui.text import md_escape

_OUTCOME = "__outcome"


def action_button(label: str, *, key: str, action: Callable[[Any, Actor], str],
                  after: Callable[[], None] | None = None, **kwargs) -> None:
    """A button that runs `action(session, actor)` in its callback, in one transaction; `after` runs on success.
    The message or error is kept for show_result(key)."""
    st.button(label, key=key, on_click=_run, args=(key, action, after), **kwargs)


def _run(key: str, action: Callable[[Any, Actor], str], after: Callable[[], None] | None) -> None:
    result = run_action(action)
    if result is None:
        return  # signed out: app.py's gate handles it
    st.session_state[key + _OUTCOME] = result
    if isinstance(result, str):
        st.toast(md_escape(result.split("\n")[0]), icon=":material/check_circle:")
        if after is not None:
            after()


def show_result(key: str) -> str | CRMError | None:
    """Under a button: what its action just did, or the error naming the field; shown once."""
    result = st.session_state.pop(key + _OUTCOME, None)
    if isinstance(result, CRMError):
        st.error(md_escape(describe(result)), icon=":material/error:")
    elif result:
        st.success(md_escape(result), icon=":material/check_circle:")
    return result


def ask(state_key: str, **params) -> None:
    """Remember that the person asked for a report with these parameters, at the current data version."""
    st.session_state[state_key] = {**params, "version": version()}


def asked(state_key: str) -> dict | None:
    return st.session_state.get(state_key)


def forget(*keys: str) -> None:
    for key in keys:
        st.session_state.pop(key, None)


def freshness_note(request: dict) -> None:
    """Say when the shown report predates writes made since (by anyone)."""
    if version() != request["version"]:
        st.caption("The data has changed since this list was computed; compute it again to see the changes.")


def pager(total: int, page_size: int, *, key: str) -> int:
    """A page number input when there is more than one page; returns the page (from 1)."""
    pages = max(1, -(-total // page_size))
    if pages == 1:
        return 1
    if st.session_state.get(key, 1) > pages:  # the list shrank since the page was chosen
        st.session_state[key] = pages
    return int(st.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, step=1, key=key))


def count_words(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")
