"""Sign in: email and password (lockout is crm.auth's), optional single sign-on, demo logins in demo mode."""
import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAuthError

from crm import auth
from crm.config import get_settings
from crm.db import read_scope
from crm.errors import AuthenticationFailed
from ui import session
from ui.text import md_escape


def demo_logins() -> pd.DataFrame | None:
    """Demo mode only, and only when the demo users are really in this database."""
    if not get_settings().demo_mode:
        return None
    try:
        from crm.demo import DEMO_LOGINS, DEMO_PASSWORD
    except ImportError:
        return None
    with read_scope() as s:
        rows = [{"Role": role, "Email": email, "Password": DEMO_PASSWORD}
                for role, email in DEMO_LOGINS.items()
                if (user := auth.find_user_by_email(s, email)) is not None and user.active]
    return pd.DataFrame(rows) if rows else None


st.title("Sign in")
if notice := session.take_notice():
    st.info(md_escape(notice), icon=":material/info:")

left, _ = st.columns([2, 3])
with left:
    with st.form("login_form"):
        email = st.text_input("Email", key="login_email", autocomplete="username")
        password = st.text_input("Password", type="password", key="login_password", autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", key="login_submit", type="primary")
    if submitted:
        try:
            user_id = auth.login(email=email, password=password)
        except AuthenticationFailed as exc:
            st.error(exc.message, icon=":material/error:")
        else:
            session.sign_in(user_id)
            st.rerun()

    if session.sso_configured():
        if not session.sso_logged_in():
            if st.button("Sign in with single sign-on", key="login_sso", icon=":material/key:"):
                try:
                    st.login()
                except StreamlitAuthError as exc:  # e.g. Authlib missing or [auth] incomplete
                    st.error(f"Single sign-on is not set up correctly: {md_escape(exc)}", icon=":material/error:")
        elif st.button("Use another single sign-on account", key="login_sso_logout"):
            st.logout()

demo = demo_logins()
if demo is not None:
    st.subheader("Demo logins")
    st.caption("This CRM runs in demo mode with generated data. Sign in as any of these roles.")
    st.dataframe(demo, hide_index=True)
