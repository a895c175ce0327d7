"""Audit rows, optimistic version checks and the data-version counter, shared by every use case."""
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import update
from sqlmodel import Session, SQLModel, select

from crm.clock import utcnow
from crm.errors import EditConflict, NotFound
from crm.models import AuditLog, DataVersion, User

T = TypeVar("T", bound=SQLModel)
_BOOKKEEPING = {"id", "created_at", "updated_at", "version"}
_CONTEXT = "audit_context"  # the session.info key audit_context sets


def load_for_update(session: Session, model: type[T], record_id: int, *, label: str | None = None,
                    include_deleted: bool = False) -> T:
    """Fetch a row and lock it for this transaction (FOR UPDATE on PostgreSQL; SQLite already holds the write lock)."""
    stmt = select(model).where(model.id == record_id).with_for_update().execution_options(populate_existing=True)
    record = session.exec(stmt).first()
    if record is None or (not include_deleted and getattr(record, "deleted_at", None) is not None):
        raise NotFound(f"{label or model.__name__} {record_id} does not exist (or was deleted)")
    return record


def check_version(session: Session, *, entity: str, record: SQLModel, seen_version: int) -> None:
    """Raise EditConflict naming who changed which fields since the version the user saw."""
    if record.version == seen_version:
        return
    rows = session.exec(
        select(AuditLog, User.full_name)
        .join(User, User.id == AuditLog.actor_id, isouter=True)
        .where(AuditLog.entity == entity, AuditLog.record_id == record.id, AuditLog.record_version > seen_version)
        .order_by(AuditLog.id)
    ).all()
    changes = [
        {"by": name or "system", "at": row.at, "field": row.field, "old": row.old_value, "new": row.new_value}
        for row, name in rows
    ]
    who = sorted({c["by"] for c in changes}) or ["someone"]
    fields = sorted({c["field"] for c in changes if c["field"]})
    what = f" changed {', '.join(fields)}" if fields else " saved it"
    raise EditConflict(
        f"This {entity} was changed after you opened it: {', '.join(who)}{what}. "
        f"Reload to see the current values; your edit was not saved.",
        current_version=record.version,
        changes=changes,
    )


def apply_changes(record: SQLModel, values: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Set the fields that differ and return {field: (old, new)}; bumps the version if anything changed."""
    diff = {}
    for field, new in values.items():
        old = getattr(record, field)
        if old != new:
            diff[field] = (old, new)
            setattr(record, field, new)
    if diff:
        record.version += 1
        record.updated_at = utcnow()
    return diff


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


@contextmanager
def audit_context(session: Session, context: str) -> Iterator[None]:
    """Label the audit rows written inside the block that name no context of their own (an automation's firing),
    so that a change made on someone's behalf says whose behalf, whichever use case wrote it."""
    previous = session.info.get(_CONTEXT)
    session.info[_CONTEXT] = context
    try:
        yield
    finally:
        session.info[_CONTEXT] = previous


def audit(session: Session, *, actor_id: int | None, entity: str, record_id: int, action: str,
          changes: dict[str, tuple[Any, Any]] | None = None, record_version: int | None = None,
          context: str | None = None) -> None:
    """Write one audit row per changed field (or one row for the action), and bump the data version."""
    base = dict(actor_id=actor_id, entity=entity, record_id=record_id, action=action,
                record_version=record_version, context=context or session.info.get(_CONTEXT), at=utcnow())
    if changes:
        session.add_all(AuditLog(**base, field=f, old_value=_text(o), new_value=_text(n)) for f, (o, n) in changes.items())
    else:
        session.add(AuditLog(**base))
    bump_data_version(session)


def created_fields(record: SQLModel) -> dict[str, tuple[None, Any]]:
    """The audit diff of a newly created record: every non-empty field, from nothing."""
    return {k: (None, v) for k, v in record.model_dump().items() if k not in _BOOKKEEPING and v not in (None, "", [], {})}


def bump_data_version(session: Session, name: str = "global") -> None:
    updated = session.execute(update(DataVersion).where(DataVersion.name == name).values(value=DataVersion.value + 1))
    if updated.rowcount == 0:
        session.add(DataVersion(name=name, value=1))


def data_version(session: Session, name: str = "global") -> int:
    row = session.get(DataVersion, name)
    return row.value if row else 0
