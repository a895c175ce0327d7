"""Small row rules shared by configuration use cases: unique names and the next position."""
from sqlalchemy import func
from sqlmodel import Session, SQLModel, select

from crm.errors import ValidationFailed
from crm.validation import require_text


def unique_name(session: Session, model: type[SQLModel], name: str | None, *, what: str,
                record_id: int | None = None, max_length: int = 120) -> str:
    """The trimmed name, if no other row of `model` has it, ignoring case; otherwise ValidationFailed('name')."""
    name = require_text(name, field="name", max_length=max_length)
    clash = session.exec(select(model).where(func.lower(model.name) == name.lower())).first()
    if clash is not None and clash.id != record_id:
        raise ValidationFailed("name", f"{what} called {clash.name!r} already exists")
    return name


def next_position(session: Session, model: type[SQLModel]) -> int:
    return session.exec(select(func.coalesce(func.max(model.position), -1))).one() + 1
