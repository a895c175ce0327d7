"""Row rules shared by use cases: unique names, positions, saving contacts and companies, soft delete."""
from typing import Any, TypeVar

from sqlalchemy import func
from sqlmodel import Session, SQLModel, select

from crm.audit import apply_changes, audit, check_version, created_fields, load_for_update
from crm.clock import utcnow
from crm.customfields import set_values
from crm.errors import ValidationFailed
from crm.models import Entity
from crm.permissions import Actor, require_edit
from crm.search import reindex
from crm.validation import require_text

T = TypeVar("T", bound=SQLModel)


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


def set_deleted(session: Session, actor: Actor, model: type[T], record_id: int, *, deleted: bool,
                seen_version: int, entity: str, area: str = "contacts") -> T:
    """Soft-delete or restore one owned record (rights over its owner, version check, audit); returns the row."""
    label = entity.capitalize()
    record = load_for_update(session, model, record_id, label=label, include_deleted=not deleted)
    require_edit(session, actor, area, record.owner_id, f"this {entity}")
    check_version(session, entity=entity, record=record, seen_version=seen_version)
    if not deleted and record.deleted_at is None:
        raise ValidationFailed("deleted_at", f"this {entity} is not deleted")
    diff = apply_changes(record, {"deleted_at": utcnow() if deleted else None})
    audit(session, actor_id=actor.id, entity=entity, record_id=record.id, action="delete" if deleted else "restore",
          changes=diff, record_version=record.version)
    return record


def insert_record(session: Session, actor: Actor, record: T, *, entity: Entity,
                  custom: dict[str, Any] | None) -> T:
    """Store a new contact or company with its custom values (required ones enforced), audit and search tokens."""
    session.add(record)
    session.flush()
    audit(session, actor_id=actor.id, entity=str(entity), record_id=record.id, action="create",
          changes=created_fields(record), record_version=record.version)
    set_values(session=session, actor=actor, entity=entity, record_id=record.id, values=custom or {},
               check_required=True, record_version=record.version)
    reindex(session, str(entity), [record.id])
    return record


def save_record(session: Session, actor: Actor, record: T, values: dict[str, Any], *, entity: Entity,
                custom: dict[str, Any] | None, searched: set[str], context: str | None = None) -> None:
    """Apply cleaned values and custom values to a locked record as one edit: one version, one audit entry per
    field (with `context`, e.g. "merge:3"), and fresh search tokens when a `searched` field changed."""
    diff = apply_changes(record, values)
    diff.pop("name_key", None)  # derived from the names, which are audited themselves
    # Custom values share the record's version: one edit, one version, whichever fields it touched.
    next_version = record.version if diff else record.version + 1
    custom_diff = set_values(session=session, actor=actor, entity=entity, record_id=record.id, values=custom,
                             context=context, record_version=next_version) if custom else {}
    if custom_diff and not diff:
        record.version += 1
        record.updated_at = utcnow()
    if diff:
        audit(session, actor_id=actor.id, entity=str(entity), record_id=record.id, action="update", changes=diff,
              record_version=record.version, context=context)
        if diff.keys() & searched:
            reindex(session, str(entity), [record.id])
