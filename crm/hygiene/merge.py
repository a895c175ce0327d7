"""Merging two contacts (or two companies) into one, and undoing a merge exactly.

A merge keeps the survivor, gives it the value the user picked for each field (custom fields included), moves
everything that pointed at the merged record to it (crm.hygiene.merge_relations), and soft-deletes the merged
record. The merge log keeps both rows, the survivor's replaced custom values and every moved or dropped row, so
`undo_merge` can put back ids, values, versions and links exactly, and refuses, saying what, once anything the
merge wrote has changed since. Everything is audited with the context `merge:<id>` (`merge:<id>:undo`).
"""
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, or_
from sqlmodel import Session, SQLModel, select

from crm.audit import apply_changes, audit, bump_data_version, check_version, load_for_update
from crm.clock import utcnow
from crm.companies import _check_parent
from crm.errors import EditConflict, NotFound, ValidationFailed
from crm.hygiene import merge_relations as relations
from crm.hygiene.duplicates import mark_merged, mark_unmerged
from crm.hygiene.jobs import changed_since, require_hygiene
from crm.hygiene.merge_fields import (
    KINDS, FieldChoice, Kind, apply_fields, chosen_values, custom_rows, field_choices, kind_of,
)
from crm.hygiene.merge_relations import Stamp, json_row, row_from_json
from crm.models import CustomFieldValue, Entity, MergeLog, User
from crm.permissions import Actor, readable_owner_ids, require_edit
from crm.search import reindex

_BOOKKEEPING = ("id", "created_at", "updated_at", "version")
_SHOWN = 10  # reasons named in a refused undo


@dataclass
class RelatedCount:
    label: str
    moving: int
    dropped: int  # links the survivor already has: removed with the merged record, put back by an undo


@dataclass
class MergePreview:
    entity: str
    survivor_id: int
    merged_id: int
    survivor_name: str
    merged_name: str
    seen_versions: tuple[int, int]
    fields: list[FieldChoice]
    related: list[RelatedCount]


@dataclass
class MergeResult:
    merge_id: int
    entity: str
    survivor_id: int
    merged_id: int
    survivor_version: int
    changed_fields: list[str]
    moved: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)


@dataclass
class UndoResult:
    merge_id: int
    survivor_id: int
    merged_id: int
    rows_restored: int


@dataclass
class MergeLogEntry:
    id: int
    entity: str
    survivor_id: int
    survivor_name: str
    merged_id: int
    merged_name: str
    merged_by: str | None
    merged_at: datetime
    undone_at: datetime | None
    undone_by: str | None


def _pair(session: Session, kind: Kind, survivor_id: int, merged_id: int, *, lock: bool = True,
          include_deleted: bool = False) -> tuple[Any, Any]:
    """Both records; for a write, locked in id order (two merges of the same pair cannot deadlock)."""
    if survivor_id == merged_id:
        raise ValidationFailed("merged_id", f"a {kind.entity} cannot be merged into itself")
    label = str(kind.entity).capitalize()
    rows = {}
    for record_id in sorted((survivor_id, merged_id)):
        record = load_for_update(session, kind.model, record_id, label=label, include_deleted=include_deleted) \
            if lock else session.get(kind.model, record_id)
        if record is None or (record.deleted_at is not None and not include_deleted):
            raise NotFound(f"{label} {record_id} does not exist (or was deleted)")
        rows[record_id] = record
    return rows[survivor_id], rows[merged_id]


def _require_edit_both(session: Session, actor: Actor, kind: Kind, records: tuple[Any, Any]) -> None:
    for record in records:
        require_edit(session, actor, "contacts", record.owner_id, f"{kind.entity} {record.id}")


def merge_preview(*, session: Session, actor: Actor, entity: str, survivor_id: int, merged_id: int) -> MergePreview:
    """Both records side by side: every field with both values and the default choice, and how many related rows of
    each kind will move to the survivor (or be dropped as links it already has)."""
    kind = kind_of(entity)
    require_hygiene(actor, f"merge {entity} records")
    survivor, merged = _pair(session, kind, survivor_id, merged_id, lock=False)
    _require_edit_both(session, actor, kind, (survivor, merged))
    related = []
    for rel in kind.relations:
        moving, dropped = relations.count(session, rel, survivor_id=survivor.id, merged_id=merged.id)
        related.append(RelatedCount(rel.label, moving, dropped))
    return MergePreview(entity=entity, survivor_id=survivor.id, merged_id=merged.id,
                        survivor_name=kind.name(survivor), merged_name=kind.name(merged),
                        seen_versions=(survivor.version, merged.version),
                        fields=field_choices(session, actor, kind, survivor, merged), related=related)


def _dump(session: Session, record: SQLModel) -> dict[str, Any]:
    table = type(record).__table__
    return json_row(session.execute(select(table).where(table.c.id == record.id)).mappings().one())


def merge_records(*, session: Session, actor: Actor, entity: str, survivor_id: int, merged_id: int,
                  choices: dict[str, str], seen_versions: tuple[int, int]) -> MergeResult:
    """Merge `merged_id` into `survivor_id`: the survivor takes each field's chosen value, everything that pointed at
    the merged record moves to the survivor, and the merged record is soft-deleted, marked as merged into it. Both
    records must still be at `seen_versions` (survivor, merged)."""
    kind = kind_of(entity)
    require_hygiene(actor, f"merge {entity} records")
    survivor, merged = _pair(session, kind, survivor_id, merged_id)
    _require_edit_both(session, actor, kind, (survivor, merged))
    chosen = chosen_values(kind, field_choices(session, actor, kind, survivor, merged), choices)
    if len(seen_versions) != 2:
        raise ValidationFailed("seen_versions", "give the versions of both records: (survivor, merged)")
    for record, seen in zip((survivor, merged), seen_versions):
        check_version(session, entity=str(kind.entity), record=record, seen_version=seen)
    log = MergeLog(entity=entity, survivor_id=survivor.id, merged_id=merged.id, actor_id=actor.id)
    session.add(log)
    session.flush()
    stamp = Stamp(actor.id, utcnow(), f"merge:{log.id}")
    before = {"survivor": _dump(session, survivor), "merged": _dump(session, merged)}
    changed, custom_before = apply_fields(session, actor, kind, survivor, chosen, stamp.context)
    session.flush()
    moved = {rel.key: relations.move(session, rel, survivor_id=survivor.id, merged_id=merged.id, stamp=stamp)
             for rel in kind.relations}
    session.flush()
    if kind.entity == Entity.COMPANY:  # a child company moved under the survivor may be one of its ancestors
        _check_parent(session, survivor.id, survivor.parent_id)
    _retire(session, actor, kind, survivor, merged, stamp)
    mark_merged(session, entity, survivor.id, merged.id, actor=actor, context=stamp.context)  # a found pair is settled
    log.snapshot = {**before, "custom": custom_before, "relations": moved,
                    "after": {"survivor": survivor.version, "merged": merged.version,
                              "custom": _custom_state(session, kind, survivor.id, custom_before["keys"])}}
    return MergeResult(merge_id=log.id, entity=entity, survivor_id=survivor.id, merged_id=merged.id,
                       survivor_version=survivor.version, changed_fields=changed,
                       moved={rel.label: len(moved[rel.key]["moved"]) for rel in kind.relations},
                       dropped={rel.label: len(moved[rel.key]["dropped"]) for rel in kind.relations})


def _retire(session: Session, actor: Actor, kind: Kind, survivor: Any, merged: Any, stamp: Stamp) -> None:
    """Soft-delete the merged record, marked (in the audit trail and the merge log) as merged into the survivor."""
    diff = apply_changes(merged, {"deleted_at": stamp.at})
    entity = str(kind.entity)
    audit(session, actor_id=actor.id, entity=entity, record_id=merged.id, action="merge",
          changes={**diff, "merged_into": (None, survivor.id)}, record_version=merged.version, context=stamp.context)
    audit(session, actor_id=actor.id, entity=entity, record_id=survivor.id, action="merge",
          changes={"merged_from": (None, merged.id)}, record_version=survivor.version, context=stamp.context)


def _custom_state(session: Session, kind: Kind, record_id: int, keys: list[str]) -> list[list[int]]:
    """(id, version) of the record's custom values for these keys: what an undo expects to find."""
    return [[row["id"], row["version"]] for row in custom_rows(session, kind, record_id, keys)]


def _refusals(session: Session, kind: Kind, log: MergeLog, survivor: Any, merged: Any) -> list[str]:
    """Everything that changed since the merge and stops an exact undo."""
    snap, entity, out = log.snapshot, str(kind.entity), []
    for record, version in ((survivor, snap["after"]["survivor"]), (merged, snap["after"]["merged"])):
        if record.version != version:
            out.append(f"{entity} {record.id} was {changed_since(session, entity, record.id, version)} after the merge")
    if _custom_state(session, kind, survivor.id, snap["custom"]["keys"]) != snap["after"]["custom"]:
        out.append(f"the custom fields of {entity} {survivor.id} the merge set were changed since")
    for rel in kind.relations:
        out += relations.problems(session, rel, snap["relations"][rel.key], survivor_id=survivor.id,
                                  merged_id=merged.id)
    return out


def _undoable(log: MergeLog) -> None:
    if log.undone_at is not None:
        raise ValidationFailed("merge", f"merge {log.id} was already undone on {log.undone_at:%Y-%m-%d %H:%M}")
    if not log.snapshot or log.snapshot.get("erased"):
        raise ValidationFailed("merge", f"merge {log.id} cannot be undone: the personal data of one of its records "
                                        "was erased since, so there is nothing to restore")


def _restore_row(record: Any, saved: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Put a record back exactly as saved, version and updated_at included; returns the audit diff."""
    values = row_from_json(type(record).__table__, saved)
    diff = apply_changes(record, {k: v for k, v in values.items() if k not in _BOOKKEEPING})
    record.version, record.updated_at = values["version"], values["updated_at"]
    diff.pop("name_key", None)
    return diff


def _restore_custom(session: Session, kind: Kind, survivor_id: int, saved: dict[str, Any]) -> None:
    table = CustomFieldValue.__table__
    ids = [row["id"] for row in custom_rows(session, kind, survivor_id, saved["keys"])]
    if ids:
        session.execute(delete(table).where(table.c.id.in_(ids)))
    if saved["rows"]:
        session.execute(insert(table), [row_from_json(table, row) for row in saved["rows"]])


def undo_merge(*, session: Session, actor: Actor, merge_id: int) -> UndoResult:
    """Restore both records and everything the merge moved exactly as they were, or raise EditConflict naming what
    changed since (later merges of the same records are undone newest first)."""
    require_hygiene(actor, "undo merges")
    log = session.exec(select(MergeLog).where(MergeLog.id == merge_id).with_for_update()).first()
    if log is None:
        raise NotFound(f"Merge {merge_id} does not exist")
    _undoable(log)
    kind = kind_of(log.entity)
    survivor, merged = _pair(session, kind, log.survivor_id, log.merged_id, include_deleted=True)
    _require_edit_both(session, actor, kind, (survivor, merged))
    if reasons := _refusals(session, kind, log, survivor, merged):
        more = f"; and {len(reasons) - _SHOWN} more" if len(reasons) > _SHOWN else ""
        raise EditConflict(f"Merge {merge_id} cannot be undone exactly: " + "; ".join(reasons[:_SHOWN]) + more
                           + ". Undo those changes first (later merges newest first); nothing was changed.",
                           current_version=log.version, changes=[{"reason": r} for r in reasons])
    snap, stamp = log.snapshot, Stamp(actor.id, utcnow(), f"merge:{merge_id}:undo")
    restored = sum(relations.restore(session, rel, snap["relations"][rel.key], survivor_id=survivor.id,
                                     merged_id=merged.id, stamp=stamp) for rel in reversed(kind.relations))
    custom = {name: (new, old) for name, (old, new) in snap["custom"]["changes"].items()}
    _restore_custom(session, kind, survivor.id, snap["custom"])
    entity = str(kind.entity)
    survivor_diff = {**_restore_row(survivor, snap["survivor"]), **custom, "merged_from": (merged.id, None)}
    merged_diff = {**_restore_row(merged, snap["merged"]), "merged_into": (survivor.id, None)}
    for record, diff in ((survivor, survivor_diff), (merged, merged_diff)):
        audit(session, actor_id=actor.id, entity=entity, record_id=record.id, action="unmerge", changes=diff,
              record_version=record.version, context=stamp.context)
    mark_unmerged(session, entity, survivor.id, merged.id, actor=actor, context=stamp.context)  # open again
    session.flush()
    reindex(session, entity, [survivor.id, merged.id])
    log.undone_at, log.undone_by_id, log.version = stamp.at, actor.id, log.version + 1
    bump_data_version(session)
    return UndoResult(merge_id=merge_id, survivor_id=survivor.id, merged_id=merged.id, rows_restored=restored)


def list_merges(*, session: Session, actor: Actor, entity: str | None = None, limit: int = 50) -> list[MergeLogEntry]:
    """The newest merges first, of records whose survivor the actor may read: the page's merge log."""
    require_hygiene(actor, "see the merge log")
    stmt = select(MergeLog).order_by(MergeLog.id.desc()).limit(limit)
    if entity is not None:
        stmt = stmt.where(MergeLog.entity == kind_of(entity).entity)
    owners = readable_owner_ids(session, actor, "contacts")
    if owners is not None:
        stmt = stmt.where(or_(*[(MergeLog.entity == name) & MergeLog.survivor_id.in_(
            select(k.model.id).where(k.model.owner_id.in_(owners))) for name, k in KINDS.items()]))
    logs = session.exec(stmt).all()
    people = dict(session.exec(select(User.id, User.full_name).where(
        User.id.in_({i for log in logs for i in (log.actor_id, log.undone_by_id) if i} or {-1}))).all())
    names = {name: _names(session, k, {i for log in logs if log.entity == name
                                       for i in (log.survivor_id, log.merged_id)}) for name, k in KINDS.items()}
    return [MergeLogEntry(id=log.id, entity=log.entity, survivor_id=log.survivor_id,
                          survivor_name=names[log.entity].get(log.survivor_id, "?"), merged_id=log.merged_id,
                          merged_name=names[log.entity].get(log.merged_id, "?"), merged_by=people.get(log.actor_id),
                          merged_at=log.created_at, undone_at=log.undone_at, undone_by=people.get(log.undone_by_id))
            for log in logs]


def _names(session: Session, kind: Kind, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {r.id: kind.name(r) for r in session.exec(select(kind.model).where(kind.model.id.in_(ids))).all()}
