"""Saved segments: create, count, sample, snapshot, compare, and act on their members.

A dynamic segment is its definition, evaluated on each use; a static one freezes its members when it is created
(and grows only by "add to list"). Every use that acts on members (export, tagging, tasks, adding to a list)
first records a snapshot of the definition and of exactly the members it acted on, so an old campaign list can be
reproduced and two uses compared: who joined, who left.
"""
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, func, insert, literal
from sqlmodel import Session, select

from crm.audit import audit
from crm.errors import EditConflict, NotFound, ValidationFailed
from crm.models import Company, Contact, Segment, SegmentMember, SegmentSnapshot, SegmentSnapshotMember, User
from crm.permissions import Actor, require
from crm.rows import unique_name
from crm.segments.compiler import compile_definition, entity_table
from crm.segments.definition import Definition

SAMPLE_SIZE = 10
KINDS = ("dynamic", "static")


class SegmentView(BaseModel):
    id: int
    name: str
    entity: str
    kind: str
    definition: dict
    description: str | None
    owner_id: int | None
    version: int
    updated_at: datetime


class SnapshotView(BaseModel):
    id: int
    segment_id: int
    taken_at: datetime
    purpose: str
    member_count: int
    include_do_not_contact: bool
    taken_by: str | None


@dataclass(frozen=True)
class Difference:
    """Between an earlier and a later snapshot: who joined, who left, and how many stayed."""
    joined: list[int]
    left: list[int]
    stayed: int


def _view(segment: Segment) -> SegmentView:
    return SegmentView(id=segment.id, name=segment.name, entity=segment.entity, kind=segment.kind,
                       definition=segment.definition or {}, description=segment.description,
                       owner_id=segment.owner_id, version=segment.version, updated_at=segment.updated_at)


# --- evaluating definitions ---------------------------------------------------------------------------------------

def count_matching(*, session: Session, actor: Actor, definition: Definition | dict) -> int:
    """How many records the definition matches among those the actor may read (exact)."""
    definition = Definition.parse(definition) if isinstance(definition, dict) else definition
    return count_where(session, definition.entity, compile_definition(session, actor, definition))


def count_where(session: Session, entity: str, condition: ColumnElement) -> int:
    """How many records of the entity meet a (compiled) condition."""
    return session.exec(select(func.count()).select_from(entity_table(entity)).where(condition)).one()


def sample(*, session: Session, actor: Actor, definition: Definition | dict, n: int = SAMPLE_SIZE) -> pd.DataFrame:
    """A few matching records, most recently updated first: what the builder shows under the live count."""
    definition = Definition.parse(definition) if isinstance(definition, dict) else definition
    return _rows(session, definition.entity, compile_definition(session, actor, definition), limit=n)


def _rows(session: Session, entity: str, condition: ColumnElement, *, limit: int | None) -> pd.DataFrame:
    if entity == "contact":
        stmt = (select(Contact.id, (Contact.first_name + " " + Contact.last_name).label("name"), Contact.email,
                       Company.name.label("company"), Contact.lifecycle_stage, Contact.country,
                       User.full_name.label("owner"))
                .join(Company, Company.id == Contact.company_id, isouter=True))
        table = Contact
    else:
        stmt = select(Company.id, Company.name, Company.domain, Company.industry, Company.country,
                      User.full_name.label("owner"))
        table = Company
    stmt = (stmt.join(User, User.id == table.owner_id, isouter=True).where(condition)
            .order_by(table.updated_at.desc(), table.id.desc()))
    result = session.exec(stmt.limit(limit) if limit else stmt)
    return pd.DataFrame(result.all(), columns=list(result.keys()))


# --- saved segments -----------------------------------------------------------------------------------------------

def create_segment(*, session: Session, actor: Actor, name: str, definition: Definition | dict,
                   kind: str = "dynamic", description: str | None = None) -> SegmentView:
    """Save a definition. A static segment freezes the records it matches now. Needs segments.manage."""
    require(actor, "segments.manage", "save segments")
    if kind not in KINDS:
        raise ValidationFailed("kind", f"{kind!r} is not dynamic or static")
    definition = Definition.parse(definition) if isinstance(definition, dict) else definition
    condition = compile_definition(session, actor, definition)  # checks every condition before anything is saved
    name = unique_name(session, Segment, name, what="a segment")
    segment = Segment(name=name, entity=definition.entity, kind=kind, definition=definition.to_json(),
                      description=(description or "").strip() or None, owner_id=actor.id)
    session.add(segment)
    session.flush()
    members = 0
    if kind == "static":
        table = entity_table(definition.entity)
        session.execute(insert(SegmentMember).from_select(
            ["segment_id", "record_id"], select(literal(segment.id), table.id).where(condition)))
        members = static_size(session, segment.id)
    audit(session, actor_id=actor.id, entity="segment", record_id=segment.id, action="create",
          changes={"name": (None, name), "kind": (None, kind), "conditions": (None, definition.condition_count),
                   **({"members": (None, members)} if kind == "static" else {})}, record_version=segment.version)
    return _view(segment)


def update_segment(*, session: Session, actor: Actor, segment_id: int, version: int, name: str | None = None,
                   definition: Definition | dict | None = None, description: str | None = None) -> SegmentView:
    """Rename, redefine or describe a segment, refusing if someone saved it since `version`. A static segment's
    members do not follow a new definition (its members are what was frozen)."""
    require(actor, "segments.manage", "change segments")
    segment = _live(session, segment_id)
    if segment.version != version:
        raise EditConflict(f"segment {segment.name!r} was changed by someone else; reload it",
                           current_version=segment.version)
    changes = {}
    if name is not None and name.strip() != segment.name:
        new_name = unique_name(session, Segment, name, what="a segment", record_id=segment.id)
        changes["name"], segment.name = (segment.name, new_name), new_name
    if definition is not None:
        parsed = Definition.parse(definition) if isinstance(definition, dict) else definition
        if parsed.entity != segment.entity:
            raise ValidationFailed("definition.entity", f"this segment holds {segment.entity} records")
        compile_definition(session, actor, parsed)
        if parsed.to_json() != segment.definition:
            changes["definition"] = (segment.definition, parsed.to_json())
            segment.definition = parsed.to_json()
    if description is not None and (description.strip() or None) != segment.description:
        changes["description"] = (segment.description, description.strip() or None)
        segment.description = description.strip() or None
    if changes:
        segment.version += 1
        segment.updated_at = datetime.now(segment.updated_at.tzinfo)
        session.add(segment)
        audit(session, actor_id=actor.id, entity="segment", record_id=segment.id, action="update", changes=changes,
              record_version=segment.version)
    return _view(segment)


def delete_segment(*, session: Session, actor: Actor, segment_id: int, version: int) -> None:
    require(actor, "segments.manage", "delete segments")
    segment = _live(session, segment_id)
    if segment.version != version:
        raise EditConflict(f"segment {segment.name!r} was changed by someone else; reload it",
                           current_version=segment.version)
    segment.deleted_at = datetime.now(segment.updated_at.tzinfo)
    segment.version += 1
    session.add(segment)
    audit(session, actor_id=actor.id, entity="segment", record_id=segment.id, action="delete",
          record_version=segment.version)


def list_segments(*, session: Session, actor: Actor, entity: str | None = None) -> list[SegmentView]:
    stmt = select(Segment).where(Segment.deleted_at.is_(None)).order_by(func.lower(Segment.name))
    if entity:
        stmt = stmt.where(Segment.entity == entity)
    return [_view(s) for s in session.exec(stmt)]


def get_segment(*, session: Session, actor: Actor, segment: int | str) -> SegmentView:
    """By id, or by name (ignoring case): how the CLI names them."""
    if isinstance(segment, int) or str(segment).isdigit():
        return _view(_live(session, int(segment)))
    found = session.exec(select(Segment).where(func.lower(Segment.name) == str(segment).strip().lower(),
                                               Segment.deleted_at.is_(None))).first()
    if found is None:
        raise NotFound(f"no segment named {segment!r}")
    return _view(found)


def _live(session: Session, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None or segment.deleted_at is not None:
        raise NotFound(f"segment {segment_id} does not exist")
    return segment


def members_condition(*, session: Session, actor: Actor, segment: SegmentView) -> ColumnElement:
    """The segment's current members the actor may read: its definition now, or its frozen members."""
    if segment.kind == "dynamic":
        return compile_definition(session, actor, segment.definition)
    table = entity_table(segment.entity)
    frozen = table.id.in_(select(SegmentMember.record_id).where(SegmentMember.segment_id == segment.id))
    return and_(compile_definition(session, actor, Definition(entity=segment.entity)), frozen)


def static_size(session: Session, segment_id: int) -> int:
    """Frozen members of a static segment, whether or not anyone may read them now."""
    return session.exec(select(func.count()).where(SegmentMember.segment_id == segment_id)).one()


def count_segment(*, session: Session, actor: Actor, segment: SegmentView) -> int:
    return count_where(session, segment.entity, members_condition(session=session, actor=actor, segment=segment))


# --- snapshots ----------------------------------------------------------------------------------------------------

def take_snapshot(*, session: Session, actor: Actor, segment: SegmentView, purpose: str,
                  condition: ColumnElement | None = None, include_do_not_contact: bool = False) -> SnapshotView:
    """Record the definition and exactly the members a use acts on (`condition`, else all current members)."""
    table = entity_table(segment.entity)
    condition = condition if condition is not None else members_condition(session=session, actor=actor,
                                                                           segment=segment)
    snapshot = SegmentSnapshot(segment_id=segment.id, taken_by_id=actor.id, purpose=purpose,
                               definition={**segment.definition, "kind": segment.kind},
                               include_do_not_contact=include_do_not_contact)
    session.add(snapshot)
    session.flush()
    session.execute(insert(SegmentSnapshotMember).from_select(
        ["snapshot_id", "record_id"], select(literal(snapshot.id), table.id).where(condition)))
    # Counted, not taken from the insert's rowcount: psycopg reports -1 for INSERT … SELECT.
    snapshot.member_count = session.exec(select(func.count()).where(
        SegmentSnapshotMember.snapshot_id == snapshot.id)).one()
    session.add(snapshot)
    return _snapshot_view(session, snapshot)


def _snapshot_view(session: Session, s: SegmentSnapshot) -> SnapshotView:
    taker = session.get(User, s.taken_by_id) if s.taken_by_id else None
    return SnapshotView(id=s.id, segment_id=s.segment_id, taken_at=s.taken_at, purpose=s.purpose,
                        member_count=s.member_count, include_do_not_contact=s.include_do_not_contact,
                        taken_by=taker.full_name if taker else None)


def list_snapshots(*, session: Session, actor: Actor, segment_id: int) -> list[SnapshotView]:
    rows = session.exec(select(SegmentSnapshot).where(SegmentSnapshot.segment_id == segment_id)
                        .order_by(SegmentSnapshot.taken_at.desc(), SegmentSnapshot.id.desc()))
    return [_snapshot_view(session, s) for s in rows]


def snapshot_members(*, session: Session, snapshot_id: int) -> list[int]:
    return list(session.exec(select(SegmentSnapshotMember.record_id).where(
        SegmentSnapshotMember.snapshot_id == snapshot_id).order_by(SegmentSnapshotMember.record_id)))


def compare_snapshots(*, session: Session, actor: Actor, earlier: int, later: int) -> Difference:
    """Who joined and who left between two snapshots of the same segment."""
    first, second = session.get(SegmentSnapshot, earlier), session.get(SegmentSnapshot, later)
    if first is None or second is None:
        raise NotFound(f"snapshot {earlier if first is None else later} does not exist")
    if first.segment_id != second.segment_id:
        raise ValidationFailed("later", "both snapshots must be of the same segment")
    a = set(snapshot_members(session=session, snapshot_id=earlier))
    b = set(snapshot_members(session=session, snapshot_id=later))
    return Difference(joined=sorted(b - a), left=sorted(a - b), stayed=len(a & b))
