"""Undoing an import: delete what it created and restore what it updated, all in one transaction, audited.

A revert refuses, naming the records and who changed them, when anything the import wrote has changed since
(its version moved on) or when other records now refer to what it created. It never overwrites later work.
"""
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Date, DateTime, bindparam, delete, func, insert, select, update
from sqlmodel import Session

from crm.audit import bump_data_version
from crm.clock import utcnow
from crm.errors import EditConflict, NotFound, ValidationFailed
from crm.imports.writing import audit_text
from crm.models import (
    Activity, AuditLog, Company, CompanyTag, Contact, ContactTag, CustomFieldDef, CustomFieldValue, Deal, DealLineItem,
    DealStageHistory, ImportChange, ImportJob, Order, OrderLine, Pipeline, Product, Stage, Tag, Team, Ticket, User,
    metadata,
)
from crm.permissions import Actor, require
from crm.search import reindex

# Dependants first, so nothing is deleted while something else still points at it.
MODELS = {
    "custom_field_value": CustomFieldValue, "contact_tag": ContactTag, "company_tag": CompanyTag,
    "deal_line_item": DealLineItem, "deal_stage_history": DealStageHistory, "order_line": OrderLine,
    "activity": Activity, "ticket": Ticket, "order": Order, "deal": Deal, "contact": Contact, "company": Company,
    "product": Product, "user": User, "team": Team, "tag": Tag, "custom_field_def": CustomFieldDef, "stage": Stage,
    "pipeline": Pipeline,
}
AUDITED = {"activity", "ticket", "order", "deal", "contact", "company", "product", "user", "team", "tag",
           "custom_field_def", "stage", "pipeline"}
_SHOWN = 10


@dataclass
class RevertSummary:
    job_id: int
    deleted: int
    restored: int


def revert_import(*, session: Session, actor: Actor | None, job_id: int) -> RevertSummary:
    """Restore exactly the state before import `job_id`, or raise EditConflict saying what changed since."""
    job = session.execute(select(ImportJob).where(ImportJob.id == job_id).with_for_update()).scalar()
    if job is None:
        raise NotFound(f"Import {job_id} does not exist")
    if actor is not None:
        require(actor, "data.import", "revert imports")
        if job.entity == "users":
            require(actor, "users.manage", "revert an import of users")
    if job.dry_run or job.status != "done":
        raise ValidationFailed("job", f"import {job_id} is {'a dry run' if job.dry_run else job.status}; "
                                      "only a finished import can be reverted")
    changes = defaultdict(list)
    for change in session.execute(select(ImportChange).where(ImportChange.job_id == job_id)).scalars():
        changes[change.entity].append(change)
    current = {entity: _versions(session, MODELS[entity], [c.record_id for c in rows])
               for entity, rows in changes.items()}
    _refuse_if_changed(session, job_id, changes, current)
    deleting = {e: {c.record_id for c in rows if c.action == "created"} for e, rows in changes.items()}
    _refuse_if_referenced(session, job_id, deleting)
    context, now, audits = f"import:{job_id}:revert", utcnow(), []
    restored = _restore(session, changes, current, now, audits, actor, context)
    deleted = _delete(session, deleting, current, now, audits, actor, context)
    if audits:
        session.execute(insert(AuditLog.__table__), audits)
    for entity in ("contact", "company"):
        touched = [c.record_id for c in changes.get(entity, ())]
        if touched:
            reindex(session, entity, touched)
    job.status, job.reverted_at, job.version = "reverted", now, job.version + 1
    bump_data_version(session)
    return RevertSummary(job_id=job_id, deleted=deleted, restored=restored)


def _versions(session: Session, model, ids: list[int]) -> dict[int, int]:
    table, found = model.__table__, {}
    for lo in range(0, len(ids), 500):
        stmt = select(table.c.id, table.c.version).where(table.c.id.in_(ids[lo:lo + 500]))
        found.update(dict(session.execute(stmt).all()))
    return found


def _refuse_if_changed(session: Session, job_id: int, changes: dict, current: dict) -> None:
    moved = []
    for entity, rows in changes.items():
        for c in rows:
            now = current[entity].get(c.record_id)
            if now is None and c.action == "updated":
                moved.append((entity, c.record_id, c.version_after, "deleted"))
            elif now is not None and now != c.version_after:
                moved.append((entity, c.record_id, c.version_after, "changed"))
    if not moved:
        return
    lines = [f"{entity} {record_id} was {how} by {_who(session, entity, record_id, after)}"
             for entity, record_id, after, how in moved[:_SHOWN]]
    more = f"; and {len(moved) - _SHOWN} more records" if len(moved) > _SHOWN else ""
    raise EditConflict(f"Import {job_id} cannot be reverted: records it wrote have changed since. "
                       + "; ".join(lines) + more + ". Revert or undo those changes first; nothing was reverted.",
                       current_version=0, changes=[{"entity": e, "record_id": r, "how": h} for e, r, _, h in moved])


def _who(session: Session, entity: str, record_id: int, after: int | None) -> str:
    stmt = (select(func.coalesce(User.full_name, "the command line"), AuditLog.field)
            .join(User, User.id == AuditLog.actor_id, isouter=True)
            .where(AuditLog.entity == entity, AuditLog.record_id == record_id,
                   AuditLog.record_version > (after or 0)).order_by(AuditLog.id))
    rows = session.execute(stmt).all()
    if not rows:
        return "someone (no audit trail)"
    people = ", ".join(dict.fromkeys(name for name, _ in rows))
    fields = ", ".join(dict.fromkeys(f for _, f in rows if f))
    return f"{people}" + (f" ({fields})" if fields else "")


def _refuse_if_referenced(session: Session, job_id: int, deleting: dict[str, set[int]]) -> None:
    """Records created by the import that other, later records now point at cannot be deleted."""
    by_table = {MODELS[e].__tablename__: ids for e, ids in deleting.items()}
    found = []
    for entity, ids in deleting.items():
        target, wanted = MODELS[entity].__table__, sorted(ids)
        for table in metadata.sorted_tables:
            if "id" not in table.c:
                continue
            mine = by_table.get(table.name, set())
            for fk in (fk for fk in table.foreign_keys if fk.column.table is target):
                for lo in range(0, len(wanted), 500):
                    stmt = select(table.c.id, fk.parent).where(fk.parent.in_(wanted[lo:lo + 500]))
                    found += [(table.name, rid, entity, ref) for rid, ref in session.execute(stmt) if rid not in mine]
    if found:
        shown = "; ".join(f"{t} {rid} refers to {e} {ref}" for t, rid, e, ref in found[:_SHOWN])
        raise EditConflict(f"Import {job_id} cannot be reverted: later records refer to records it created "
                           f"({shown}{'; ...' if len(found) > _SHOWN else ''}). Revert or change those first; "
                           "nothing was reverted.", current_version=0)


def _restore(session, changes, current, now, audits, actor, context) -> int:
    count = 0
    for entity, rows in changes.items():
        model = MODELS[entity]
        table = model.__table__
        groups: dict[tuple, list[dict]] = defaultdict(list)
        for c in rows:
            if c.action != "updated":
                continue
            fields = {f: from_json(table.c[f], v) for f, v in c.before["fields"].items()}
            version = current[entity][c.record_id] + 1
            groups[tuple(sorted(fields))].append({"_id": c.record_id, **fields, "version": version, "updated_at": now})
            if entity in AUDITED:
                old = session.execute(select(*[table.c[f] for f in fields]).where(table.c.id == c.record_id)).one() \
                    if fields else ()
                for (f, value), was in zip(fields.items(), old):
                    audits.append(_audit(actor, entity, c.record_id, "update", f, was, value, version, context, now))
                if not fields:
                    audits.append(_audit(actor, entity, c.record_id, "update", None, None, None, version, context, now))
            count += 1
        for columns, params in groups.items():
            values = {c: bindparam(c) for c in (*columns, "version", "updated_at")}
            session.execute(update(table).where(table.c.id == bindparam("_id")).values(values), params)
    return count


def _delete(session, deleting, current, now, audits, actor, context) -> int:
    count = 0
    if ids := sorted(deleting.get("company", ())):
        for lo in range(0, len(ids), 500):  # companies created together may be each other's parents
            session.execute(update(Company.__table__).where(Company.id.in_(ids[lo:lo + 500])).values(parent_id=None))
    for entity, model in MODELS.items():
        ids = sorted(i for i in deleting.get(entity, ()) if i in current.get(entity, {}))
        for lo in range(0, len(ids), 500):
            session.execute(delete(model.__table__).where(model.__table__.c.id.in_(ids[lo:lo + 500])))
        if entity in AUDITED:
            audits += [_audit(actor, entity, i, "delete", None, None, None, current[entity][i] + 1, context, now)
                       for i in ids]
        count += len(ids)
    return count


def _audit(actor, entity, record_id, action, field, old, new, version, context, now) -> dict:
    return {"at": now, "actor_id": actor.id if actor else None, "entity": entity, "record_id": record_id,
            "action": action, "field": field, "old_value": audit_text(old), "new_value": audit_text(new),
            "record_version": version, "context": context}


def from_json(column, value):
    """import_change.before holds JSON; dates and times come back as their column's type."""
    if not isinstance(value, str):
        return value
    kind = getattr(column.type, "impl", column.type)  # SQLModel wraps DateTime in a TypeDecorator
    if isinstance(kind, DateTime):
        return datetime.fromisoformat(value)
    if isinstance(kind, Date):
        return date.fromisoformat(value)
    return value
