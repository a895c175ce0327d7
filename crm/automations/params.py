"""Checks shared by the trigger and action catalogues: each raises ValidationFailed naming the parameter, as
`trigger_params.days` or `action_params.subject`, so the admin page can show the error under that input."""
from typing import Any

from sqlmodel import Session, SQLModel

from crm.errors import ValidationFailed
from crm.validation import require_text


def only_keys(params: Any, allowed: set[str], prefix: str) -> dict:
    """The parameters as a dict, refusing a key the trigger or action does not know (a typo would be ignored)."""
    if not isinstance(params, dict):
        raise ValidationFailed(prefix, "must be a mapping of parameter names to values")
    if extra := sorted(set(params) - allowed):
        known = ", ".join(sorted(allowed)) or "none"
        raise ValidationFailed(f"{prefix}.{extra[0]}", f"is not a parameter here (it takes: {known})")
    return params


def whole_number(params: dict, key: str, prefix: str, *, lo: int, hi: int, required: bool = True) -> int | None:
    """An integer parameter between lo and hi (inclusive)."""
    value = params.get(key)
    if value is None:
        if required:
            raise ValidationFailed(f"{prefix}.{key}", "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(f"{prefix}.{key}", "must be a whole number")
    if not lo <= value <= hi:
        raise ValidationFailed(f"{prefix}.{key}", f"must be between {lo} and {hi}")
    return value


def text(params: dict, key: str, prefix: str, *, max_length: int, required: bool = True) -> str | None:
    value = params.get(key)
    if value is not None and not isinstance(value, str):
        raise ValidationFailed(f"{prefix}.{key}", "must be text")
    return require_text(value, field=f"{prefix}.{key}", max_length=max_length, required=required)


def live_row(session: Session, model: type[SQLModel], params: dict, key: str, prefix: str, what: str) -> SQLModel:
    """The live row whose id the parameter holds: `what` is "stage", "team", "tag", "segment" or "user"."""
    value = params.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(f"{prefix}.{key}", f"give the id of a {what}")
    row = session.get(model, value)
    if row is None or getattr(row, "deleted_at", None) is not None or getattr(row, "active", True) is False:
        raise ValidationFailed(f"{prefix}.{key}", f"{what} {value} does not exist (or was deleted or deactivated)")
    return row
