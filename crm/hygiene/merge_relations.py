"""What points at a contact or a company, and how a merge moves it to the survivor and an undo moves it back.

Every foreign key to `contact` or `company` and every `record_id` that can name one is either a Relation below or
listed in STAYS with the reason (tests/test_hygiene_merge.py checks that nothing is left out).

A move re-points rows with one UPDATE per relation. It is the merge's bookkeeping, audited row by row with the
merge's context, not an edit of those rows: their version and updated_at stay, so nobody's open form turns stale
and the undo is exact. Where the pointer is part of a unique key (a tag link, a deal's contact link, a static
segment membership, a model score), a row whose key the survivor already holds is deleted instead, kept whole in
the merge log, and put back by the undo with its id.
"""
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, delete, exists, func, insert, literal, select, update
from sqlalchemy.sql.schema import Column
from sqlmodel import Session

from crm.imports.revert import from_json
from crm.imports.writing import jsonable
from crm.models import (
    Activity, AuditLog, BehaviorEvent, Company, CompanyTag, Contact, ContactTag, Deal, DealContact,
    ListSubscriptionEvent, Notification, Order, PredictionScore, Segment, SegmentMember, SurveyResponse, Ticket,
)
from crm.sqlfuncs import unindexed

CHUNK = 500  # ids per IN list
_AUDIT = AuditLog.__table__
_AUDIT_COLUMNS = ["at", "actor_id", "entity", "record_id", "action", "field", "old_value", "new_value",
                  "record_version", "context"]


@dataclass(frozen=True)
class Stamp:
    """Who, when and under which audit context the rows of one merge (or its undo) are written."""
    actor_id: int | None
    at: datetime
    context: str


@dataclass(frozen=True)
class Relation:
    """Rows of one table that point at a contact or company through `column`."""
    label: str  # what the preview calls them: "deals"
    column: Column
    audit_entity: str  # the entity name their audit rows carry
    unique: tuple[str, ...] = ()  # the other columns of a unique key the pointer is part of
    scope: Callable[[Table], ColumnElement] | None = None  # for a polymorphic record_id: which rows are of this kind
    derived: bool = False  # recomputed data: an undo restores what is still there and never refuses over it

    @property
    def table(self) -> Table:
        return self.column.table

    @property
    def key(self) -> str:
        return f"{self.table.name}.{self.column.name}"

    def pointing(self, table: Table, record_id: int) -> ColumnElement:
        """Rows of `table` (this relation's table or an alias of it) that point at `record_id`."""
        points = table.c[self.column.name] == record_id
        return and_(points, self.scope(table)) if self.scope is not None else points

    def among(self, ids: list[int], record_id: int) -> ColumnElement:
        """Rows with these ids that point at `record_id`. The pointer is hidden from SQLite's planner, which would
        otherwise walk all of the record's rows in the pointer's index once per chunk of ids (measured: 1.1 s of an
        undo that moved 26,000 rows)."""
        table = self.table
        points = unindexed(table.c[self.column.name]) == record_id
        return and_(table.c.id.in_(ids), points, *([self.scope(table)] if self.scope is not None else []))

    def clash(self, survivor_id: int) -> ColumnElement | None:
        """Rows whose unique key the survivor already holds (NULLs compare equal: a NULL product is one score)."""
        if not self.unique:
            return None
        theirs = self.table.alias("survivor_rows")
        same = [theirs.c[name].is_not_distinct_from(self.table.c[name]) for name in self.unique]
        return exists().where(self.pointing(theirs, survivor_id), *same)


def _of(entity: str) -> Callable[[Table], ColumnElement]:
    return lambda table: table.c.entity == entity


def _segments_of(entity: str) -> Callable[[Table], ColumnElement]:
    return lambda table: table.c.segment_id.in_(select(Segment.id).where(Segment.entity == entity))


def _c(model, name: str) -> Column:
    return model.__table__.c[name]


CONTACT_RELATIONS = (
    Relation("deals", _c(Deal, "contact_id"), "deal"),
    Relation("deal contact links", _c(DealContact, "contact_id"), "deal_contact", unique=("deal_id",)),
    Relation("activities", _c(Activity, "contact_id"), "activity"),
    Relation("orders", _c(Order, "contact_id"), "order"),
    Relation("tickets", _c(Ticket, "contact_id"), "ticket"),
    Relation("tags", _c(ContactTag, "contact_id"), "contact_tag", unique=("tag_id",)),
    Relation("static segment memberships", _c(SegmentMember, "record_id"), "segment_member", unique=("segment_id",),
             scope=_segments_of("contact")),
    Relation("behaviour events", _c(BehaviorEvent, "contact_id"), "behavior_event"),
    Relation("list subscription events", _c(ListSubscriptionEvent, "contact_id"), "list_subscription_event"),
    Relation("survey responses", _c(SurveyResponse, "contact_id"), "survey_response"),
    Relation("prediction scores", _c(PredictionScore, "record_id"), "prediction_score",
             unique=("model", "entity", "product_id"), scope=_of("contact"), derived=True),
    Relation("notifications", _c(Notification, "record_id"), "notification", scope=_of("contact")),
)

COMPANY_RELATIONS = (
    Relation("contacts", _c(Contact, "company_id"), "contact"),
    Relation("child companies", _c(Company, "parent_id"), "company"),
    Relation("deals", _c(Deal, "company_id"), "deal"),
    Relation("activities", _c(Activity, "company_id"), "activity"),
    Relation("orders", _c(Order, "company_id"), "order"),
    Relation("tickets", _c(Ticket, "company_id"), "ticket"),
    Relation("tags", _c(CompanyTag, "company_id"), "company_tag", unique=("tag_id",)),
    Relation("static segment memberships", _c(SegmentMember, "record_id"), "segment_member", unique=("segment_id",),
             scope=_segments_of("company")),
    Relation("prediction scores", _c(PredictionScore, "record_id"), "prediction_score",
             unique=("model", "entity", "product_id"), scope=_of("company"), derived=True),
    Relation("notifications", _c(Notification, "record_id"), "notification", scope=_of("company")),
)

# Columns that name a contact or company and deliberately stay with the record they were written about.
STAYS = {
    "contact.company_id": "a contact's own field: the merge's field choices decide it",
    "company.parent_id": "for the survivor, its own field (chosen); other companies' parents move (child companies)",
    "custom_field_value.record_id": "the record's own fields: the merge's field choices decide them",
    "audit_log.record_id": "history: what happened to which record",
    "import_change.record_id": "history: an import's before-states; its revert refuses once the record moved on",
    "segment_snapshot_member.record_id": "history: who a segment action acted on",
    "automation_firing.record_id": "history: which rule fired for which record and occasion",
    "hygiene_change.record_id": "history: what a hygiene job did to which record",
    "search_token.record_id": "derived: rebuilt by crm.search.reindex for the survivor",
    "merge_log.survivor_id": "the merge log itself",
    "merge_log.merged_id": "the merge log itself",
}


def chunks(ids: list[int]) -> Iterator[list[int]]:
    for lo in range(0, len(ids), CHUNK):
        yield ids[lo:lo + CHUNK]


def count(session: Session, rel: Relation, *, survivor_id: int, merged_id: int) -> tuple[int, int]:
    """(rows that will move, rows that will be dropped because the survivor already holds their key)."""
    table = rel.table
    mine = rel.pointing(table, merged_id)
    total = session.execute(select(func.count()).select_from(table).where(mine)).scalar_one()
    clash = rel.clash(survivor_id)
    dropped = session.execute(select(func.count()).select_from(table).where(mine, clash)).scalar_one() \
        if clash is not None else 0
    return total - dropped, dropped


def move(session: Session, rel: Relation, *, survivor_id: int, merged_id: int, stamp: Stamp) -> dict[str, list]:
    """Re-point the merged record's rows to the survivor; returns what the undo needs: moved ids, dropped rows."""
    table = rel.table
    mine = rel.pointing(table, merged_id)
    dropped = []
    if (clash := rel.clash(survivor_id)) is not None:
        stmt = select(table).where(mine, clash).order_by(table.c.id)
        dropped = [dict(row) for row in session.execute(stmt).mappings()]
        for ids in chunks([row["id"] for row in dropped]):
            _audit_rows(session, rel, table.c.id.in_(ids), stamp, "delete", merged_id, None)
            session.execute(delete(table).where(table.c.id.in_(ids)))
    moved = list(session.execute(select(table.c.id).where(mine).order_by(table.c.id)).scalars())
    if moved:
        _audit_rows(session, rel, mine, stamp, "update", merged_id, survivor_id)
        session.execute(_repoint(rel, mine, survivor_id))
    return {"moved": moved, "dropped": [json_row(row) for row in dropped]}


def problems(session: Session, rel: Relation, saved: dict[str, list], *, survivor_id: int, merged_id: int) -> list[str]:
    """Why this relation cannot be put back exactly: moved rows that were moved again or deleted since, or dropped
    rows whose id or key is taken. Derived rows never stop an undo."""
    if rel.derived:
        return []
    table, found = rel.table, set()
    for ids in chunks(saved["moved"]):
        found |= set(session.execute(select(table.c.id).where(rel.among(ids, survivor_id))).scalars())
    gone = [i for i in saved["moved"] if i not in found]
    taken = [row["id"] for row in saved["dropped"] if not _free(session, rel, row_from_json(table, row), merged_id)]
    out = []
    if gone:
        out.append(f"{len(gone)} {rel.label} the merge moved were moved again or deleted since "
                   f"({rel.audit_entity} {_listed(gone)})")
    if taken:
        out.append(f"{len(taken)} {rel.label} the merge removed cannot be put back: their place is taken "
                   f"({rel.audit_entity} {_listed(taken)})")
    return out


def restore(session: Session, rel: Relation, saved: dict[str, list], *, survivor_id: int, merged_id: int,
            stamp: Stamp) -> int:
    """Move the rows back to the merged record and put the dropped ones back with their ids; returns how many."""
    table, restored = rel.table, 0
    for ids in chunks(saved["moved"]):
        back = rel.among(ids, survivor_id)
        _audit_rows(session, rel, back, stamp, "update", survivor_id, merged_id)
        restored += session.execute(_repoint(rel, back, merged_id)).rowcount
    rows = [row_from_json(table, row) for row in saved["dropped"]]
    rows = [row for row in rows if _free(session, rel, row, merged_id)]  # only derived rows can be taken here
    if rows:
        session.execute(insert(table), rows)
        for ids in chunks([row["id"] for row in rows]):
            _audit_rows(session, rel, table.c.id.in_(ids), stamp, "restore", None, merged_id)
    return restored + len(rows)


def _repoint(rel: Relation, where: ColumnElement, record_id: int):
    table = rel.table
    # updated_at is set to itself, or the column's onupdate default would stamp the move as an edit.
    return update(table).where(where).values({table.c[rel.column.name]: record_id,
                                              table.c.updated_at: table.c.updated_at})


def json_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A whole row as JSON for the merge log (dates and times as ISO text)."""
    return {name: jsonable(value) for name, value in row.items()}


def row_from_json(table: Table, saved: dict[str, Any]) -> dict[str, Any]:
    """A row saved by json_row, with each value back in its column's type."""
    return {name: from_json(table.c[name], value) for name, value in saved.items()}


def _free(session: Session, rel: Relation, row: dict[str, Any], merged_id: int) -> bool:
    """No row has this one's id, nor its unique key on the merged record."""
    table = rel.table
    same_key = [rel.pointing(table, merged_id)] + [table.c[name].is_not_distinct_from(row[name]) for name in rel.unique]
    taken = session.execute(select(table.c.id).where(table.c.id == row["id"]).union(
        select(table.c.id).where(*same_key)).limit(1)).first()
    return taken is None


def _listed(ids: list[int], shown: int = 10) -> str:
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(str(i) for i in ids[:shown]) + more


def _audit_rows(session: Session, rel: Relation, where: ColumnElement, stamp: Stamp, action: str,
                old: int | None, new: int | None) -> None:
    """One audit row per row of the relation matching `where`, written by a single INSERT ... SELECT."""
    table, a = rel.table, _AUDIT.c
    rows = select(literal(stamp.at, a.at.type), literal(stamp.actor_id, a.actor_id.type),
                  literal(rel.audit_entity, a.entity.type), table.c.id, literal(action, a.action.type),
                  literal(rel.column.name, a.field.type), literal(_text(old), a.old_value.type),
                  literal(_text(new), a.new_value.type), table.c.version, literal(stamp.context, a.context.type))
    session.execute(insert(_AUDIT).from_select(_AUDIT_COLUMNS, rows.where(where)))


def _text(record_id: int | None) -> str | None:
    return None if record_id is None else str(record_id)
