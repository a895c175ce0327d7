"""Web forms as an admin configures them: key, name, field mapping, rate limit and a secret token shown once.

Only a SHA-256 hash of the token is stored. The token is 256 random bits, so a fast hash is enough: nobody can
guess their way back from it, and unlike a password hash (argon2id, crm.security) it costs microseconds on every
submission. Tokens are compared with hmac.compare_digest, in constant time.
"""
import hashlib
import hmac
import re
import secrets
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import Session, select

from crm.audit import apply_changes, audit, check_version, created_fields, load_for_update
from crm.errors import AuthenticationFailed, NotFound, ValidationFailed
from crm.models import BehaviorEvent, EventKind, WebForm
from crm.permissions import Actor, require
from crm.rows import unique_name
from crm.webforms.fields import check_mapping

_KEY = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")  # it goes in a URL and in contacts' source ("form:<key>")
_HASH_PREFIX = "sha256$"
MAX_RATE_PER_MINUTE = 10_000
MAX_TOKEN_LENGTH = 200  # ours are 43 characters; anything far longer is not worth hashing


class WebFormView(BaseModel):
    id: int
    key: str
    name: str
    mapping: dict[str, str]
    rate_limit_per_minute: int
    active: bool
    token_fingerprint: str  # the first characters of the token's hash: which token is live, without revealing it
    version: int
    created_at: datetime
    updated_at: datetime


class FormToken(BaseModel):
    """A form with its new secret token: the only time the token is ever shown."""
    form: WebFormView
    token: str


def hash_token(token: str) -> str:
    return _HASH_PREFIX + hashlib.sha256(token.encode("utf-8")).hexdigest()


def _fingerprint(token_hash: str) -> str:
    return token_hash.removeprefix(_HASH_PREFIX)[:8]


def _view(form: WebForm) -> WebFormView:
    return WebFormView(**form.model_dump(exclude={"token_hash"}), token_fingerprint=_fingerprint(form.token_hash))


def _rate(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RATE_PER_MINUTE:
        raise ValidationFailed("rate_limit_per_minute", f"must be a whole number from 1 to {MAX_RATE_PER_MINUTE}")
    return value


def _settings(session: Session, *, name: str, mapping: dict, rate_limit_per_minute: int,
              form_id: int | None = None) -> dict[str, Any]:
    return {"name": unique_name(session, WebForm, name, what="a web form", record_id=form_id),
            "mapping": check_mapping(session, mapping), "rate_limit_per_minute": _rate(rate_limit_per_minute)}


def create_form(*, session: Session, actor: Actor, key: str, name: str, mapping: dict[str, str],
                rate_limit_per_minute: int = 30) -> FormToken:
    """Set up a form that posts to /api/forms/<key>; returns its token, which is not stored and not shown again."""
    require(actor, "admin.configure", "set up web forms")
    key = (key or "").strip()
    if not _KEY.fullmatch(key):
        raise ValidationFailed("key", "use 1 to 40 lower-case letters, digits, '-' or '_', starting with a letter "
                                      "or digit (it becomes part of the form's address)")
    if session.exec(select(WebForm.id).where(WebForm.key == key)).first() is not None:
        raise ValidationFailed("key", f"a web form with the key {key!r} already exists")
    token = secrets.token_urlsafe(32)
    form = WebForm(key=key, token_hash=hash_token(token),
                   **_settings(session, name=name, mapping=mapping, rate_limit_per_minute=rate_limit_per_minute))
    session.add(form)
    session.flush()
    changes = created_fields(form)
    changes["token_hash"] = (None, _fingerprint(form.token_hash))  # the audit log holds no secrets, nor their hashes
    audit(session, actor_id=actor.id, entity="web_form", record_id=form.id, action="create", changes=changes,
          record_version=form.version)
    return FormToken(form=_view(form), token=token)


def update_form(*, session: Session, actor: Actor, form_id: int, name: str, mapping: dict[str, str],
                rate_limit_per_minute: int, seen_version: int) -> WebFormView:
    """Change a form's name, mapping or rate limit; its key (its address) and token stay."""
    form = _locked(session, actor, form_id, seen_version, doing="change web forms")
    values = _settings(session, name=name, mapping=mapping, rate_limit_per_minute=rate_limit_per_minute,
                       form_id=form.id)
    diff = apply_changes(form, values)
    if diff:
        audit(session, actor_id=actor.id, entity="web_form", record_id=form.id, action="update", changes=diff,
              record_version=form.version)
    return _view(form)


def rotate_token(*, session: Session, actor: Actor, form_id: int, seen_version: int) -> FormToken:
    """Replace a form's token, say after it leaked: the old one stops working at once."""
    form = _locked(session, actor, form_id, seen_version, doing="rotate web-form tokens")
    token = secrets.token_urlsafe(32)
    old = _fingerprint(form.token_hash)
    apply_changes(form, {"token_hash": hash_token(token)})
    audit(session, actor_id=actor.id, entity="web_form", record_id=form.id, action="update",
          changes={"token_hash": (old, _fingerprint(form.token_hash))}, record_version=form.version)
    return FormToken(form=_view(form), token=token)


def set_form_active(*, session: Session, actor: Actor, form_id: int, active: bool, seen_version: int) -> WebFormView:
    """Deactivate a form (its address answers 404 and nothing is accepted) or bring it back with the same token."""
    form = _locked(session, actor, form_id, seen_version, doing="switch web forms on or off")
    diff = apply_changes(form, {"active": active})
    if diff:
        audit(session, actor_id=actor.id, entity="web_form", record_id=form.id, action="update", changes=diff,
              record_version=form.version)
    return _view(form)


def list_forms(*, session: Session, actor: Actor) -> list[WebFormView]:
    require(actor, "admin.configure", "see web forms")
    rows = session.exec(select(WebForm).where(WebForm.deleted_at.is_(None)).order_by(WebForm.key)).all()
    return [_view(f) for f in rows]



def submission_total(*, session: Session, actor: Actor) -> int:
    """How many form submissions were ever taken, from the event index alone: a cheap key for caching the counts."""
    require(actor, "admin.configure", "see web forms")
    return session.exec(select(func.count()).where(BehaviorEvent.kind == EventKind.FORM_SUBMISSION)).one()


def submission_counts(*, session: Session, actor: Actor) -> dict[str, tuple[int, datetime]]:
    """Per form key: the submissions taken (their form-submission events) and when the last one came. It reads every
    submission's properties (1.7 s for 77,000 on the large demo), so pages cache it on submission_total."""
    require(actor, "admin.configure", "see web forms")
    form = BehaviorEvent.properties["form"].as_string()
    stmt = (select(form, func.count(), func.max(BehaviorEvent.occurred_at))
            .where(BehaviorEvent.kind == EventKind.FORM_SUBMISSION, form.is_not(None)).group_by(form))
    return {key: (n, last) for key, n, last in session.exec(stmt)}


def _locked(session: Session, actor: Actor, form_id: int, seen_version: int, *, doing: str) -> WebForm:
    require(actor, "admin.configure", doing)
    form = load_for_update(session, WebForm, form_id, label="Web form")
    check_version(session, entity="web_form", record=form, seen_version=seen_version)
    return form


def authenticate_form(*, session: Session, form_key: str, token: Any) -> WebForm:
    """The active form with this key, if `token` is its token. NotFound for an unknown or inactive form,
    AuthenticationFailed for a missing or wrong token; nothing is written either way."""
    form = session.exec(select(WebForm).where(WebForm.key == form_key)).first() if _KEY.fullmatch(form_key) else None
    if form is None or not form.active or form.deleted_at is not None:
        raise NotFound(f"There is no active web form {form_key!r}.")
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH or not token.isascii():
        raise AuthenticationFailed("This form needs its token (the X-Form-Token header or the form_token field).")
    if not hmac.compare_digest(hash_token(token), form.token_hash):
        raise AuthenticationFailed("The form token is wrong.")
    return form
