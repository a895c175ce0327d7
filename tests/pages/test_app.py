"""The frame: login gate, sign-outs, role-based navigation, and a smoke test of every page for every role."""
import importlib.util
import sys
import types
from datetime import timedelta

import pytest
from streamlit.testing.v1 import AppTest

from crm import db
from crm.config import get_settings
from crm.models import Role, UserUpdate
from crm.permissions import load_actor
from crm.users import update_user
from tests.pages.apptest import EMAILS, ROOT, PASSWORD, login, new_app, no_exception, signed_in
from ui.navigation import ADMIN, HOME, LOGIN, pages_for
from ui.session import USER_ID


def test_signed_out_users_see_only_the_login_page(people):
    at = new_app().run()
    no_exception(at)
    assert [t.value for t in at.title] == ["Sign in"]
    assert not at.dataframe and not at.metric
    for page in (HOME, ADMIN):
        with pytest.raises(ValueError, match="navigation page"):
            at.switch_page(page.path)


def test_wrong_password_shows_an_error(people):
    at = login(new_app().run(), EMAILS[Role.REP], "not the password at all")
    no_exception(at)
    assert [e.value for e in at.error] == ["Email or password is wrong."]
    assert USER_ID not in at.session_state


def test_five_failures_lock_the_account(people):
    at = new_app().run()
    for _ in range(5):
        at = login(at, EMAILS[Role.REP], "not the password at all")
    at = login(at, EMAILS[Role.REP], PASSWORD)  # the right password no longer helps
    assert "locked" in at.error[0].value
    assert "15 more minute(s)" in at.error[0].value
    assert USER_ID not in at.session_state


def only_auth_state(at) -> set[str]:
    """Session keys that are not widget values: the rule is that only these two exist."""
    return {k for k in at.session_state if not k.startswith(("login_", "nav_", "admin_", "home_"))}


@pytest.mark.parametrize("role, marker", [
    (Role.ADMIN, "Active users"), (Role.MANAGER, "Open pipeline"), (Role.REP, "Open amount"),
    (Role.MARKETER, "Opted in to email"),
])
def test_login_lands_on_the_roles_home(people, role, marker):
    at = login(new_app().run(), EMAILS[role].upper(), PASSWORD)  # emails match case-insensitively
    no_exception(at)
    assert [t.value for t in at.title] == ["Home"]
    assert marker in [m.label for m in at.metric]
    assert at.session_state[USER_ID] == people[role]
    assert only_auth_state(at) == {USER_ID, "auth_last_seen"}


def test_a_deactivated_user_is_signed_out_on_the_next_run(people):
    at = signed_in(people[Role.REP]).run()
    assert [t.value for t in at.title] == ["Home"]
    with db.session_scope() as s:
        update_user(session=s, actor=load_actor(s, people[Role.ADMIN]), user_id=people[Role.REP],
                    changes=UserUpdate(active=False), seen_version=1)
    at.run()
    no_exception(at)
    assert [t.value for t in at.title] == ["Sign in"]
    assert "not active any more" in at.info[0].value
    assert USER_ID not in at.session_state


def test_idle_timeout_signs_out(people):
    at = signed_in(people[Role.MANAGER], idle=timedelta(minutes=31)).run()
    no_exception(at)
    assert [t.value for t in at.title] == ["Sign in"]
    assert at.info[0].value == "You were signed out after 30 minutes without activity\\."
    assert USER_ID not in at.session_state


def test_activity_within_the_timeout_keeps_the_session(people):
    at = signed_in(people[Role.MANAGER], idle=timedelta(minutes=29)).run()
    assert [t.value for t in at.title] == ["Home"]


def test_logout(people):
    at = signed_in(people[Role.MARKETER]).run()
    at.button(key="nav_logout").click().run()
    no_exception(at)
    assert [t.value for t in at.title] == ["Sign in"]
    assert USER_ID not in at.session_state
    at.run()  # and it stays signed out
    assert [t.value for t in at.title] == ["Sign in"]


@pytest.fixture
def fake_demo(monkeypatch, people):
    """crm.demo as the login page sees it, pointing at this test's users (the real generator is not needed)."""
    module = types.ModuleType("crm.demo")
    module.DEMO_PASSWORD = PASSWORD
    module.DEMO_LOGINS = {role.value: EMAILS[role] for role in Role}
    monkeypatch.setitem(sys.modules, "crm.demo", module)
    return module


def test_demo_logins_are_shown_only_in_demo_mode(fake_demo, monkeypatch):
    at = new_app().run()
    assert not at.dataframe
    monkeypatch.setenv("CRM_DEMO_MODE", "1")
    get_settings.cache_clear()
    at = new_app().run()
    no_exception(at)
    shown = at.dataframe[0].value
    assert list(shown["Email"]) == [EMAILS[r] for r in Role]
    assert set(shown["Password"]) == {PASSWORD}


def test_demo_logins_are_hidden_when_the_demo_users_are_missing(fake_demo, monkeypatch):
    fake_demo.DEMO_LOGINS = {"admin": "nobody@example.com"}
    monkeypatch.setenv("CRM_DEMO_MODE", "1")
    get_settings.cache_clear()
    at = new_app().run()
    no_exception(at)
    assert not at.dataframe


@pytest.mark.parametrize("role", list(Role))
def test_every_page_opens_for_every_role(people, role):
    at = signed_in(people[role]).run()
    no_exception(at)
    for page in pages_for(role):
        at.switch_page(page.path).run()
        no_exception(at)
        assert at.title[0].value == page.title
        assert not at.error, [e.value for e in at.error]


@pytest.mark.parametrize("role", [Role.MANAGER, Role.REP, Role.MARKETER])
def test_non_admins_cannot_reach_the_admin_page(people, role):
    assert ADMIN not in pages_for(role)
    at = signed_in(people[role]).run()
    with pytest.raises(ValueError, match="navigation page"):
        at.switch_page(ADMIN.path)


def test_the_admin_page_refuses_non_admins_itself(people):
    """Even if the page ran for a rep (say a navigation bug), it stops before showing or changing anything."""
    with db.read_scope() as s:
        rep = load_actor(s, people[Role.REP])
    at = AppTest.from_function(_run_admin_as, args=(rep, str(ROOT / ADMIN.path)), default_timeout=30).run()
    no_exception(at)
    assert [e.value for e in at.error] == ["Only admins can open the admin page."]
    assert not at.tabs


def _run_admin_as(actor, path):
    import runpy

    from ui import session

    session._run.actor = actor
    runpy.run_path(path)


def test_login_page_is_the_only_page_when_signed_out():
    assert pages_for(None) == [LOGIN]


@pytest.mark.parametrize("page", [HOME, ADMIN])
def test_a_page_run_without_the_login_gate_shows_nothing(people, page):
    """Streamlit's legacy folder mode can run pages/<name>.py straight from its URL; it must not show data."""
    at = AppTest.from_file(str(ROOT / page.path), default_timeout=30).run()
    no_exception(at)
    assert "Please sign in first" in at.warning[0].value
    assert not at.title and not at.metric and not at.dataframe


SSO_SECRETS = {"auth": {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                        "client_id": "crm", "client_secret": "secret",
                        "server_metadata_url": "https://idp.example.com/.well-known/openid-configuration"}}


def test_without_auth_secrets_there_is_no_single_sign_on(people):
    at = new_app().run()
    assert not [b for b in at.button if b.key == "login_sso"]


def test_with_auth_secrets_the_login_page_offers_single_sign_on(people):
    at = new_app()
    at.secrets = SSO_SECRETS
    at.run()
    no_exception(at)
    assert at.button(key="login_sso").label == "Sign in with single sign-on"


def test_a_broken_single_sign_on_setup_shows_an_error(people):
    at = new_app()
    at.secrets = SSO_SECRETS
    at.run().button(key="login_sso").click().run()
    no_exception(at)
    if importlib.util.find_spec("authlib") is None:
        assert "Single sign-on is not set up correctly" in at.error[0].value


def test_a_single_sign_on_identity_maps_to_the_crm_user(people):
    at = new_app()
    at.secrets = SSO_SECRETS
    at.user = {"is_logged_in": True, "email": EMAILS[Role.REP], "email_verified": True}
    at.run()
    no_exception(at)
    assert [t.value for t in at.title] == ["Home"]
    assert at.session_state[USER_ID] == people[Role.REP]


@pytest.mark.parametrize("identity, message", [
    ({"email": "stranger@example.com", "email_verified": True}, "No active CRM user has the email"),
    ({"email": EMAILS[Role.REP], "email_verified": False}, "did not give a verified email address"),
])
def test_an_unknown_or_unverified_identity_is_refused(people, identity, message):
    at = new_app()
    at.secrets = SSO_SECRETS
    at.user = {"is_logged_in": True, **identity}
    at.run()
    no_exception(at)
    assert [t.value for t in at.title] == ["Sign in"]
    assert message in at.info[0].value
    assert USER_ID not in at.session_state
    assert at.button(key="login_sso_logout")
