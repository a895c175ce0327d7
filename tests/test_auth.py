"""Login: argon2id, generic failures, lockout and its expiry, idle timeout, OIDC mapping, all audited."""
from datetime import timedelta

import pytest
from sqlmodel import select

from crm.auth import is_idle_expired, login, user_id_for_oidc
from crm.clock import utcnow
from crm.db import read_scope, session_scope
from crm.errors import AuthenticationFailed
from crm.models import AuditLog, User, UserUpdate
from crm.security import hash_password, verify_password
from crm.users import update_user
from tests.factories import PASSWORD, actor, make_user


def _email(engine, user_id):
    with read_scope(engine) as s:
        return s.get(User, user_id).email


def test_passwords_are_argon2id_with_owasp_parameters():
    stored = hash_password("a long enough secret")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password(stored, "a long enough secret")
    assert not verify_password(stored, "a long enough secreT")
    assert not verify_password("not-a-hash", "anything")


def test_login_returns_the_user_and_is_case_insensitive_on_email(engine):
    rep = make_user(engine, "rep", team="East")
    assert login(email=_email(engine, rep).upper(), password=PASSWORD, engine=engine) == rep
    with session_scope(engine) as s:
        assert s.get(User, rep).last_login_at is not None
        assert s.exec(select(AuditLog).where(AuditLog.action == "login", AuditLog.record_id == rep)).first()


def test_wrong_password_and_unknown_email_get_the_same_message(engine):
    rep = make_user(engine, "rep")
    with pytest.raises(AuthenticationFailed) as wrong:
        login(email=_email(engine, rep), password="nope", engine=engine)
    with pytest.raises(AuthenticationFailed) as unknown:
        login(email="nobody@example.com", password="nope", engine=engine)
    assert wrong.value.message == unknown.value.message == "Email or password is wrong."


def test_five_failures_lock_the_account_even_for_the_right_password(engine):
    rep = make_user(engine, "rep")
    email = _email(engine, rep)
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            login(email=email, password="wrong", engine=engine)
    with pytest.raises(AuthenticationFailed, match="locked for 15 more minute"):
        login(email=email, password=PASSWORD, engine=engine)
    with session_scope(engine) as s:
        actions = s.exec(select(AuditLog.action).where(AuditLog.record_id == rep, AuditLog.entity == "user")).all()
    assert actions.count("login_failed") == 4 and actions.count("locked") == 1


def test_lockout_expires(engine):
    rep = make_user(engine, "rep")
    email = _email(engine, rep)
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            login(email=email, password="wrong", engine=engine)
    later = utcnow() + timedelta(minutes=16)
    assert login(email=email, password=PASSWORD, engine=engine, now=later) == rep


def test_four_failures_then_success_resets_the_count(engine):
    rep = make_user(engine, "rep")
    email = _email(engine, rep)
    for _ in range(4):
        with pytest.raises(AuthenticationFailed):
            login(email=email, password="wrong", engine=engine)
    login(email=email, password=PASSWORD, engine=engine)
    for _ in range(4):
        with pytest.raises(AuthenticationFailed):
            login(email=email, password="wrong", engine=engine)
    assert login(email=email, password=PASSWORD, engine=engine) == rep


def test_deactivated_user_cannot_sign_in(engine):
    admin, rep = make_user(engine, "admin"), make_user(engine, "rep")
    with session_scope(engine) as s:
        update_user(session=s, actor=actor(engine, admin), user_id=rep, changes=UserUpdate(active=False), seen_version=1)
    with pytest.raises(AuthenticationFailed):
        login(email=_email(engine, rep), password=PASSWORD, engine=engine)


def test_user_without_a_password_cannot_sign_in(engine):
    rep = make_user(engine, "rep", password=None)
    with pytest.raises(AuthenticationFailed):
        login(email=_email(engine, rep), password="", engine=engine)


def test_idle_timeout_is_thirty_minutes():
    now = utcnow()
    assert not is_idle_expired(now - timedelta(minutes=29, seconds=59), now)
    assert is_idle_expired(now - timedelta(minutes=30, seconds=1), now)
    assert is_idle_expired(None, now)


def test_oidc_maps_a_verified_email_to_an_active_user(engine):
    rep = make_user(engine, "rep")
    with session_scope(engine) as s:
        assert user_id_for_oidc(s, email=_email(engine, rep).title()) == rep
        with pytest.raises(AuthenticationFailed, match="No active CRM user"):
            user_id_for_oidc(s, email="stranger@example.com")
        with pytest.raises(AuthenticationFailed, match="verified"):
            user_id_for_oidc(s, email=_email(engine, rep), email_verified=False)
