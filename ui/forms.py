"""Forms whose submit button runs one use case, and that show the stored values again after a save.

Two Streamlit behaviours shape this module:
- the browser keeps showing, and sends again, what was typed into a widget even after its server-side state
  is deleted, so a form that must show fresh values gets new widget keys: each key carries a *generation*
  (the record's version for edit forms, the data version for create forms);
- a toast followed by st.rerun() is sometimes dropped, so actions run in the submit button's callback,
  before the script body, and the body then renders the changed data without a rerun.
"""
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st
from pydantic import ValidationError

from crm import auth, permissions
from crm.db import session_scope
from crm.errors import AuthenticationFailed, CRMError, ValidationFailed
from crm.permissions import Actor
from ui import session as auth_session
from ui.feedback import field_label, show_failure, show_validation
from ui.text import md_escape

# An action gets a session, the actor re-checked in that session, and the submitted values by field name;
# it returns the toast message.
Action = Callable[[Any, Actor, dict[str, Any]], str]

# Failed actions, by submit-button key, from the callback to the script body of the same run.
_outcomes = threading.local()


def clear_widgets(*prefixes: str) -> None:
    """Forget the widgets whose keys start with any prefix; their forms come back with the stored values."""
    for key in [k for k in st.session_state if k.startswith(prefixes)]:
        del st.session_state[key]


class FormKeys:
    """The widget keys of one form: `<prefix><name>__g<generation>`."""

    def __init__(self, prefix: str, current: int):
        self.prefix = prefix
        self.generation = self._open_generation() or current
        self.names: list[str] = []

    def _open_generation(self) -> int | None:
        """The generation of the widgets the user has open (kept until a save or a reload)."""
        pattern = re.compile(re.escape(self.prefix) + r"[a-z_]+__g(\d+)$")
        for key in st.session_state:
            if match := pattern.match(key):
                return int(match.group(1))
        return None

    def __call__(self, name: str) -> str:
        self.names.append(name)
        return f"{self.prefix}{name}__g{self.generation}"

    def values(self) -> dict[str, Any]:
        return {name: st.session_state.get(f"{self.prefix}{name}__g{self.generation}") for name in self.names}


def submit_button(label: str, *, key: str, form: FormKeys, action: Action, reset: Sequence[str] = (),
                  keep_values: bool = False, **kwargs) -> bool:
    """A form submit button that runs `action` in its callback; show_outcome(key) goes right under the form.

    After a success the form starts afresh (unless keep_values), and so do the forms named by `reset` prefixes.
    """
    reset = tuple(reset) if keep_values else (form.prefix, *reset)
    return st.form_submit_button(label, key=key, on_click=_run, args=(key, form, action, reset), **kwargs)


def _run(key: str, form: FormKeys, action: Action, reset: tuple[str, ...]) -> None:
    _failures().pop(key, None)
    try:
        with session_scope() as s:
            actor = callback_actor(s)
            if actor is None:
                return  # app.py's gate signs the user out in this run's body
            message = action(s, actor, form.values())
    except AuthenticationFailed:
        return
    except (CRMError, ValidationError) as exc:
        _failures()[key] = (exc, form.prefix)
        return
    st.toast(md_escape(message), icon=":material/check_circle:")
    clear_widgets(*reset)


def run_action(action: Callable[[Any, Actor], str]) -> str | CRMError | None:
    """Run `action(session, actor)` in its own transaction as the signed-in user, for buttons and choices outside
    forms. Returns its message, the domain error it raised, or None if nobody is signed in any more."""
    try:
        with session_scope() as s:
            actor = callback_actor(s)
            return None if actor is None else action(s, actor)
    except AuthenticationFailed:
        return None
    except CRMError as exc:
        return exc


def act(action: Callable[[Any, Actor], Any]) -> Any:
    """run_action, then show its outcome: the error in words, or a message it returned. Returns what the action
    returned (None if it failed or nobody is signed in), for actions that hand back more than a message."""
    result = run_action(action)
    if isinstance(result, CRMError):
        st.error(md_escape(describe(result)), icon=":material/error:")
        return None
    if isinstance(result, str):
        st.success(md_escape(result), icon=":material/check_circle:")
    return result


def describe(exc: CRMError) -> str:
    """An error in one line: a validation error names its field as the forms label it."""
    return f"{field_label(exc.field)}: {exc.reason}" if isinstance(exc, ValidationFailed) else exc.message


def callback_actor(s) -> Actor | None:
    """Callbacks run before app.py's gate, so the action re-checks the user inside its own transaction."""
    user_id = st.session_state.get(auth_session.USER_ID)
    if user_id is None or auth.is_idle_expired(st.session_state.get(auth_session.LAST_SEEN)):
        return None
    return permissions.load_actor(s, user_id)


def _failures() -> dict:
    if not hasattr(_outcomes, "failures"):
        _outcomes.failures = {}
    return _outcomes.failures


def field_error(key: str, field: str) -> None:
    """Right under a field: the validation error the action of submit button `key` just raised about it."""
    failure = _failures().get(key)
    if failure is not None and isinstance(failure[0], ValidationFailed) and failure[0].field == field:
        show_validation(field, failure[0].reason)
        _failures()[key] = (*failure[:2], True)


def show_outcome(key: str, submitted: bool) -> None:
    """Under a form: the error of the action its button just ran, if it failed (unless field_error showed it)."""
    failure = _failures().pop(key, None)
    if submitted and failure is not None:
        exc, prefix, *shown = failure
        if shown:
            st.caption("Nothing was saved: correct the field marked above.")
            return
        show_failure(exc, key=key, reload=lambda: clear_widgets(prefix))
