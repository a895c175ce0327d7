"""Password login with lockout, idle timeout, and mapping an OIDC identity to a user."""
from datetime import datetime, timedelta

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from crm.audit import audit
from crm.clock import utcnow
from crm.config import get_settings
from crm.db import session_scope
from crm.errors import AuthenticationFailed
from crm.models import User
from crm.security import DUMMY_HASH, hash_password, needs_rehash, verify_password

_GENERIC = "Email or password is wrong."


def find_user_by_email(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(func.lower(User.email) == email.strip().lower())).first()


def login(*, email: str, password: str, engine: Engine | None = None, now: datetime | None = None) -> int:
    """Check a password and return the user id. Failures are counted (and committed) before raising."""
    with session_scope(engine) as session:
        outcome = _check_password(session, email or "", password or "", now or utcnow())
    if isinstance(outcome, str):
        raise AuthenticationFailed(outcome)
    return outcome


def _check_password(session: Session, email: str, password: str, now: datetime) -> int | str:
    """The user id on success, or the message to show; lockout state is written either way."""
    settings = get_settings()
    user = find_user_by_email(session, email)
    if user is None:
        verify_password(DUMMY_HASH, password)  # same work as a real check: no timing oracle on emails
        return _GENERIC
    if user.locked_until and user.locked_until > now:
        minutes = int((user.locked_until - now).total_seconds() // 60) + 1
        return f"Too many failed attempts: this account is locked for {minutes} more minute(s)."
    if not user.active or not verify_password(user.password_hash, password):
        user.failed_logins += 1
        action = "login_failed"
        if user.failed_logins >= settings.max_failed_logins:
            user.locked_until = now + timedelta(minutes=settings.lockout_minutes)
            user.failed_logins, action = 0, "locked"
        audit(session, actor_id=None, entity="user", record_id=user.id, action=action)
        return _GENERIC
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
    audit(session, actor_id=user.id, entity="user", record_id=user.id, action="login")
    return user.id


def is_idle_expired(last_seen: datetime | None, now: datetime | None = None) -> bool:
    """True when a browser session has been idle longer than the configured timeout."""
    if last_seen is None:
        return True
    limit = timedelta(minutes=get_settings().idle_timeout_minutes)
    return (now or utcnow()) - last_seen > limit


def user_id_for_oidc(session: Session, *, email: str | None, email_verified: bool = True) -> int:
    """Map an identity-provider login to an existing, active user by email (no self sign-up)."""
    if not email or not email_verified:
        raise AuthenticationFailed("The identity provider did not give a verified email address.")
    user = find_user_by_email(session, email)
    if user is None or not user.active:
        raise AuthenticationFailed(f"No active CRM user has the email {email}. Ask an admin to add you.")
    user.last_login_at = utcnow()
    audit(session, actor_id=user.id, entity="user", record_id=user.id, action="login", context="oidc")
    return user.id
