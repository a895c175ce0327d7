"""Bulk writes for imports: rows, their audit trail and the before-state a revert needs, a chunk at a time.

On PostgreSQL inserts go through SQLAlchemy Core with RETURNING (insertmanyvalues batches them). On SQLite the
per-row parameter handling of Core costs three times the insert itself, so values are converted once by each
column type's own bind processor and sent to the driver's executemany; ids are allocated as MAX(id)+1.., which
is safe because a write transaction on SQLite holds the database's write lock (BEGIN IMMEDIATE, see crm.db).
Updates are executemany by primary key; the audit_log and import_change rows of a chunk are one executemany
each. Nothing is written in a dry run: created records get placeholder ids so later rows can refer to them.
"""
import json
from datetime import date, datetime
from typing import Any

from pydantic_core import PydanticUndefined
from sqlalchemy import Table, bindparam, insert, update
from sqlmodel import Session, SQLModel

from crm.db import is_sqlite
from crm.kpis.upkeep import note_rows

from crm.imports.context import Context
from crm.models import AuditLog, ImportChange

_BOOKKEEPING = {"id", "created_at", "updated_at", "version"}


def jsonable(value: Any) -> Any:
    """A column value as JSON (dates as ISO text), for import_change.before."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def audit_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def model_defaults(model: type[SQLModel]) -> dict[str, Any]:
    """Every column's default as the model declares it (SQLModel defaults are Python-side, not in the table)."""
    defaults = {}
    for name, info in model.model_fields.items():
        if name == "id" or name not in model.__table__.c:
            continue
        if info.default_factory is not None:
            defaults[name] = info.default_factory()
        elif info.default is not PydanticUndefined:
            defaults[name] = info.default
    return defaults


class Writer:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._changes: list[dict] = []
        self._audits: list[dict] = []
        self._defaults: dict[type, dict] = {}

    def insert(self, model: type[SQLModel], rows: list[dict], *, entity: str, audited: bool = True) -> list[int]:
        """Insert new records (version 1), note each as created by this import and audit its creation."""
        if not rows:
            return []
        if self.ctx.dry_run:
            return [self.ctx.placeholder() for _ in rows]
        base = self._defaults.setdefault(model, model_defaults(model))
        now = self.ctx.now
        full = [{**base, "created_at": now, "updated_at": now, "version": 1, **r} for r in rows]
        ids = bulk_insert(self.ctx.session, model.__table__, full, returning=True)
        for record_id in ids:
            self.change(entity, record_id, "created", None, 1)
            if audited:
                self._audit(entity, record_id, "create", None, 1)
        return ids

    def update(self, model: type[SQLModel], entity: str, updates: list[tuple[dict, dict, int]],
               *, audited: bool = True, skip_audit: frozenset[str] = frozenset()) -> None:
        """updates: (existing row, {field: new value}, new version). Records the before-state and per-field audit."""
        if not updates or self.ctx.dry_run:
            return
        table = model.__table__
        groups: dict[tuple[str, ...], list[dict]] = {}
        for existing, changes, version in updates:
            params = {**changes, "version": version, "updated_at": self.ctx.now}
            groups.setdefault(tuple(sorted(params)), []).append({"_id": existing["id"], **params})
            before = {f: jsonable(existing[f]) for f in changes}
            self.change(entity, existing["id"], "updated", {"fields": before, "version": existing["version"]}, version)
            if audited:
                for f, new in changes.items():
                    if f not in skip_audit:
                        self._audit(entity, existing["id"], "update", (f, existing[f], new), version)
        for columns, params in groups.items():
            stmt = update(table).where(table.c.id == bindparam("_id")).values({c: bindparam(c) for c in columns})
            self.ctx.session.execute(stmt, params)

    def audit_field(self, entity: str, record_id: int, field: str, old: Any, new: Any, version: int | None) -> None:
        if not self.ctx.dry_run:
            self._audit(entity, record_id, "update", (field, old, new), version)

    def change(self, entity: str, record_id: int, action: str, before: dict | None, version_after: int | None) -> None:
        if not self.ctx.dry_run:
            self._changes.append({"job_id": self.ctx.job_id, "entity": entity, "record_id": record_id,
                                  "action": action, "before": before, "version_after": version_after})

    def _audit(self, entity: str, record_id: int, action: str, change: tuple | None, version: int | None) -> None:
        field, old, new = change or (None, None, None)
        self._audits.append({"at": self.ctx.now, "actor_id": self.ctx.actor_id, "entity": entity,
                             "record_id": record_id, "action": action, "field": field, "old_value": audit_text(old),
                             "new_value": audit_text(new), "record_version": version, "context": self.ctx.context})

    def flush(self) -> None:
        """Write the chunk's import_change and audit_log rows."""
        if self._changes:
            bulk_insert(self.ctx.session, ImportChange.__table__, self._changes)
        if self._audits:
            bulk_insert(self.ctx.session, AuditLog.__table__, self._audits)
        self._changes, self._audits = [], []


def bulk_insert(session: Session, table: Table, rows: list[dict], *, returning: bool = False) -> list[int]:
    """Insert rows (dicts with the same keys); returns their new ids when asked."""
    if not rows:
        return []
    if not is_sqlite(session):  # through the session: crm.kpis.upkeep sees the statement
        if returning:
            stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
            return list(session.execute(stmt, rows).scalars())
        session.execute(insert(table), rows)
        return []
    conn = session.connection()
    ids: list[int] = []
    if returning:
        first = conn.exec_driver_sql(f'SELECT COALESCE(MAX(id), 0) + 1 FROM "{table.name}"').scalar()
        ids = list(range(first, first + len(rows)))
        rows = [{**r, "id": i} for r, i in zip(rows, ids)]
    note_rows(session, table.name, rows)  # the driver-level insert below bypasses the session's events
    columns = [c for c in table.columns if c.name in rows[0]]
    dialect = conn.dialect
    values = []  # column by column: one type processor call per value, and no per-row generator
    for column in columns:
        name, process = column.name, column.type.dialect_impl(dialect).bind_processor(dialect)
        cells = [r.get(name) for r in rows]
        values.append(_processed(process, cells) if process else cells)
    params = list(zip(*values))
    names = [c.name for c in columns]
    quote = dialect.identifier_preparer.quote
    conn.exec_driver_sql(f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
                         f"VALUES ({', '.join('?' * len(names))})", params)
    return ids


def _processed(process, cells: list) -> list:
    """Each distinct object converted once: a chunk's rows share their timestamps and empty JSON values."""
    done: dict[int, Any] = {}
    out = []
    for v in cells:
        if v is None:
            out.append(None)
            continue
        key = id(v)
        if key not in done:
            done[key] = process(v)
        out.append(done[key])
    return out
