"""What a marketer does with a segment's members: export, tag, hand to reps, add to a static list.

Each action records a snapshot of exactly the members it acted on (`take_snapshot`) and an audit row on the
segment, in the action's transaction, and is limited by role: the rights are checked here, not only in the page.

Consent: a do-not-contact contact is never exported for outreach unless the marketer explicitly includes them;
that choice is stored on the snapshot and in the audit row.
"""
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import and_, insert, literal
from sqlmodel import Session, select

from crm.audit import audit
from crm.errors import ValidationFailed
from crm.listing import export_companies, export_contacts
from crm.contacts import assign_owner
from crm.models import Contact, SegmentMember
from crm.permissions import Actor, require
from crm.segments.compiler import entity_table
from crm.segments.service import (
    SegmentView, SnapshotView, count_where, get_segment, members_condition, static_size, take_snapshot,
)
from crm.tags import change_tags
from crm.targets import TaskAssignment, assign_follow_up_tasks, team_reps

MAX_ACTION_MEMBERS = 50_000  # tagging and tasks touch each record with its own audit row


@dataclass(frozen=True)
class ExportResult:
    frame: pd.DataFrame  # for the safe exporter (crm.exporting), which neutralises formulas
    snapshot: SnapshotView
    excluded_do_not_contact: int


def export_segment(*, session: Session, actor: Actor, segment: SegmentView,
                   include_do_not_contact: bool = False) -> ExportResult:
    """The members as a table for the safe exporter (which neutralises formulas). Needs data.export."""
    require(actor, "data.export", "export segments")
    condition = members_condition(session=session, actor=actor, segment=segment)
    excluded = 0
    if segment.entity == "contact" and not include_do_not_contact:
        excluded = count_where(session, segment.entity, and_(condition, Contact.do_not_contact.is_(True)))
        condition = and_(condition, Contact.do_not_contact.is_(False))
    snapshot = take_snapshot(session=session, actor=actor, segment=segment, purpose="export", condition=condition,
                             include_do_not_contact=include_do_not_contact)
    exporter = export_contacts if segment.entity == "contact" else export_companies
    frame = exporter(session=session, actor=actor, where=condition)
    audit(session, actor_id=actor.id, entity="segment", record_id=segment.id, action="export",
          changes={"members": (None, len(frame)), "include_do_not_contact": (None, include_do_not_contact),
                   "snapshot": (None, snapshot.id)}, record_version=segment.version)
    return ExportResult(frame=frame, snapshot=snapshot, excluded_do_not_contact=excluded)


def tag_segment(*, session: Session, actor: Actor, segment: SegmentView, tag_id: int, remove: bool = False) -> int:
    """Add (or remove) a tag on every member; returns how many records changed. Each is audited by change_tags,
    which also checks the actor may tag each record."""
    require(actor, "segments.manage", "tag a segment's members")
    snapshot, ids = _acted_on(session, actor, segment, "untag" if remove else "tag")
    changed = change_tags(session=session, actor=actor, entity=segment.entity, record_ids=ids,
                          add=[] if remove else [tag_id], remove=[tag_id] if remove else [])
    audit(session, actor_id=actor.id, entity="segment", record_id=segment.id, action="untag" if remove else "tag",
          changes={"tag": (None, tag_id), "changed": (None, changed), "snapshot": (None, snapshot.id)},
          record_version=segment.version)
    return changed


def create_tasks(*, session: Session, actor: Actor, segment: SegmentView, subject: str,
                 due_at: datetime) -> TaskAssignment:
    """One follow-up task per member contact, for the reps of the contact owner's team in turn."""
    if segment.entity != "contact":
        raise ValidationFailed("segment", "tasks are created for contact segments")
    snapshot, ids = _acted_on(session, actor, segment, "tasks")
    result = assign_follow_up_tasks(session=session, actor=actor, contact_ids=ids, subject=subject, due_at=due_at)
    audit(session, actor_id=actor.id, entity="segment", record_id=segment.id, action="tasks",
          changes={"created": (None, result.created), "unassigned": (None, len(result.unassigned)),
                   "snapshot": (None, snapshot.id)}, record_version=segment.version)
    return result


def assign_owners(*, session: Session, actor: Actor, segment: SegmentView, team_id: int) -> dict[str, int]:
    """Give the member contacts to the active reps of a team in turn (by name, members by id), through
    crm.contacts.assign_owner: each change is audited and needs the right to edit those contacts (admins; a
    marketer reads every contact but edits none). Returns contacts per rep."""
    require(actor, "segments.manage", "assign a segment's members")
    if segment.entity != "contact":
        raise ValidationFailed("segment", "owners are assigned for contact segments")
    reps = session.exec(team_reps(team_id)).all()
    if not reps:
        raise ValidationFailed("team_id", "that team has no active reps")
    snapshot, ids = _acted_on(session, actor, segment, "assign owners")
    given = {}
    for turn, (rep_id, rep_name) in enumerate(reps):
        chunk = ids[turn::len(reps)]
        if chunk:
            assign_owner(session=session, actor=actor, contact_ids=chunk, owner_id=rep_id)
        given[rep_name] = len(chunk)
    audit(session, actor_id=actor.id, entity="segment", record_id=segment.id, action="assign owners",
          changes={"team": (None, team_id), "contacts": (None, len(ids)), "snapshot": (None, snapshot.id)},
          record_version=segment.version)
    return given


def add_to_static(*, session: Session, actor: Actor, segment: SegmentView, target: int | str) -> int:
    """Add the members to a static segment of the same kind of record; returns how many were new there."""
    require(actor, "segments.manage", "add to a list")
    into = get_segment(session=session, actor=actor, segment=target)
    if into.kind != "static" or into.entity != segment.entity:
        raise ValidationFailed("target", f"{into.name!r} is not a static {segment.entity} segment")
    if into.id == segment.id:
        raise ValidationFailed("target", "a segment cannot be added to itself")
    table = entity_table(segment.entity)
    condition = members_condition(session=session, actor=actor, segment=segment)
    snapshot = take_snapshot(session=session, actor=actor, segment=segment, purpose="add to list",
                             condition=condition)
    already = select(SegmentMember.record_id).where(SegmentMember.segment_id == into.id)
    before = static_size(session, into.id)
    session.execute(insert(SegmentMember).from_select(
        ["segment_id", "record_id"], select(literal(into.id), table.id).where(condition, table.id.not_in(already))))
    added = static_size(session, into.id) - before
    audit(session, actor_id=actor.id, entity="segment", record_id=into.id, action="add members",
          changes={"members": (None, added), "from": (None, segment.name), "snapshot": (None, snapshot.id)},
          record_version=into.version)
    return added


def _acted_on(session: Session, actor: Actor, segment: SegmentView, purpose: str) -> tuple[SnapshotView, list[int]]:
    condition = members_condition(session=session, actor=actor, segment=segment)
    table = entity_table(segment.entity)
    ids = list(session.exec(select(table.id).where(condition).order_by(table.id).limit(MAX_ACTION_MEMBERS + 1)))
    if len(ids) > MAX_ACTION_MEMBERS:
        raise ValidationFailed("segment", f"more than {MAX_ACTION_MEMBERS:,} members; narrow the segment first")
    snapshot = take_snapshot(session=session, actor=actor, segment=segment, purpose=purpose,
                             condition=condition)
    return snapshot, ids
