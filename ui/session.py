"""Who is signed in. st.session_state keeps only the user id and a last-seen time; the actor is re-read every run."""
import threading

import streamlit as st

from crm import auth, permissions
from crm.clock import utcnow
from crm.config import get_settings
from crm.db import read_scope, session_scope
from crm.errors import AuthenticationFailed
from crm.permissions import Actor

USER_ID = "auth_user_id"
LAST_SEEN = "auth_last_seen"

# Per script run, never kept between runs: the actor loaded by app.py and the reason for a sign-out
# that happened at the start of this run (shown by the login page in the same run).
_run = threading.local()


def idle_message() -> str:
    return f"You were signed out after {get_settings().idle_timeout_minutes} minutes without activity."


def authenticate() -> Actor | None:
    """Re-check the signed-in user for this run; sign out after idle time or if the account was deactivated."""
    _run.actor, _run.notice = None, None
    user_id = st.session_state.get(USER_ID)
    if user_id is not None and auth.is_idle_expired(st.session_state.get(LAST_SEEN)):
        sign_out(notice=idle_message())
        return None
    if user_id is None:
        user_id = _user_from_sso()
        if user_id is None:
            return None
    try:
        with read_scope() as session:
            actor = permissions.load_actor(session, user_id)
    except AuthenticationFailed as exc:
        sign_out(notice=exc.message)
        return None
    st.session_state[USER_ID], st.session_state[LAST_SEEN] = actor.id, utcnow()
    _run.actor = actor
    return actor


def sign_in(user_id: int) -> None:
    st.session_state[USER_ID], st.session_state[LAST_SEEN] = user_id, utcnow()


def sign_out(*, notice: str | None = None) -> None:
    """Forget the user (and end the single sign-on session, which would otherwise sign them straight back in)."""
    st.session_state.clear()
    _run.actor, _run.notice = None, notice
    if sso_logged_in():
        st.logout()


def current_actor() -> Actor:
    """The actor app.py loaded for this run; pages call this instead of touching session state."""
    actor = getattr(_run, "actor", None)
    if actor is None:  # the page ran without app.py's gate (legacy pages/ URL on a fresh server)
        st.warning("Please sign in first: open the app's start page.", icon=":material/lock:")
        st.stop()
    return actor


def take_notice() -> str | None:
    """Why the user was just signed out, if they were (login page only)."""
    notice, _run.notice = getattr(_run, "notice", None), None
    return notice


def sso_configured() -> bool:
    """True when .streamlit/secrets.toml has an [auth] section; without it nothing OIDC-related runs."""
    try:
        return bool(st.secrets.load_if_toml_exists() and st.secrets.get("auth"))
    except Exception:  # an unreadable secrets file must not break password login
        return False


def sso_logged_in() -> bool:
    return sso_configured() and bool(getattr(st.user, "is_logged_in", False))


def _user_from_sso() -> int | None:
    """Map an identity-provider login to an active CRM user by verified email."""
    if not sso_logged_in():
        return None
    try:
        with session_scope() as session:
            user_id = auth.user_id_for_oidc(session, email=getattr(st.user, "email", None),
                                            email_verified=bool(getattr(st.user, "email_verified", False)))
    except AuthenticationFailed as exc:
        _run.notice = exc.message
        return None
    sign_in(user_id)
    return user_id


def sidebar(actor: Actor) -> None:
    """Who is signed in, and the sign-out button."""
    with st.sidebar:
        st.text(f"{actor.full_name}\n{actor.role.value.capitalize()}")
        if st.button("Sign out", key="nav_logout", icon=":material/logout:"):
            sign_out()
            st.rerun()
