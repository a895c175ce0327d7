"""Turning a model's "top N likely buyers" into work: a static segment of them, and follow-up tasks for reps,
round-robin within each contact owner's team."""
from collections import defaultdict
from datetime import datetime

from pydantic import BaseModel
from sqlmodel import Session, select

from crm.activities import ActivityInput, log_activity
from crm.audit import audit
from crm.errors import ValidationFailed
from crm.models import ActivityKind, Contact, Segment, SegmentMember, SegmentSnapshot, SegmentSnapshotMember, User
from crm.permissions import Actor, can_read, require
from crm.rows import unique_name


class TargetList(BaseModel):
    segment_id: int
    name: str
    members: int
    skipped: int  # ids the actor may not read, or that are deleted


def save_static_segment(*, session: Session, actor: Actor, name: str, contact_ids: list[int], definition: dict,
                        description: str | None = None) -> TargetList:
    """A static contact segment with exactly these members (the ones the actor may read), with a snapshot of the
    definition and members for later comparison. Needs segments.manage."""
    require(actor, "segments.manage", "create segments")
    name = unique_name(session, Segment, name, what="a segment")
    if not contact_ids:
        raise ValidationFailed("contact_ids", "a segment needs at least one contact")
    readable = _readable_contacts(session, actor, contact_ids)
    segment = Segment(name=name, entity="contact", kind="static", definition=definition, description=description,
                      owner_id=actor.id)
    session.add(segment)
    session.flush()
    session.add_all(SegmentMember(segment_id=segment.id, record_id=cid) for cid in readable)
    snapshot = SegmentSnapshot(segment_id=segment.id, taken_by_id=actor.id, purpose="create", definition=definition,
                               member_count=len(readable))
    session.add(snapshot)
    session.flush()
    session.add_all(SegmentSnapshotMember(snapshot_id=snapshot.id, record_id=cid) for cid in readable)
    audit(session, actor_id=actor.id, entity="segment", record_id=segment.id, action="create",
          changes={"name": (None, name), "kind": (None, "static"), "members": (None, len(readable))},
          record_version=segment.version)
    return TargetList(segment_id=segment.id, name=name, members=len(readable),
                      skipped=len(set(contact_ids)) - len(readable))


def _readable_contacts(session: Session, actor: Actor, contact_ids: list[int]) -> list[int]:
    wanted = sorted(set(contact_ids))
    rows = []
    for lo in range(0, len(wanted), 500):
        rows += session.exec(select(Contact.id, Contact.owner_id).where(
            Contact.id.in_(wanted[lo:lo + 500]), Contact.deleted_at.is_(None))).all()
    return [cid for cid, owner in rows if can_read(session, actor, "contacts", owner)]


def team_reps(team_id: int):
    """The query of a team's active reps in turn order (by name, then id): whom round-robin assignments take in
    turn (`crm.segments.actions.assign_owners`, the automations' round-robin)."""
    return (select(User.id, User.full_name).where(User.team_id == team_id, User.role == "rep", User.active)
            .order_by(User.full_name, User.id))


class TaskAssignment(BaseModel):
    created: int
    by_rep: dict[str, int]  # rep name -> tasks
    unassigned: list[int]  # contacts with no owner in a team with active reps


def assign_follow_up_tasks(*, session: Session, actor: Actor, contact_ids: list[int], subject: str,
                           due_at: datetime) -> TaskAssignment:
    """One task per contact, for a rep of the contact owner's team, taking the team's active reps in turn (by name,
    continuing across teams' lists independently). Contacts whose owner has no team, or whose team has no active
    rep, are returned as unassigned. Needs segments.manage; each task is audited by log_activity."""
    require(actor, "segments.manage", "hand targets to reps")
    readable = _readable_contacts(session, actor, contact_ids)
    owners = dict(session.exec(select(Contact.id, Contact.owner_id).where(Contact.id.in_(readable))).all()) \
        if readable else {}
    teams = dict(session.exec(select(User.id, User.team_id).where(User.id.in_(set(owners.values()) - {None})))
                 .all()) if owners else {}
    reps: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for uid, name, team in session.exec(select(User.id, User.full_name, User.team_id).where(
            User.role == "rep", User.active, User.team_id.in_(set(teams.values()) - {None})).order_by(User.full_name)):
        reps[team].append((uid, name))
    turn: dict[int, int] = defaultdict(int)
    by_rep: dict[str, int] = defaultdict(int)
    unassigned = []
    for cid in readable:
        team = teams.get(owners.get(cid))
        if not reps.get(team):
            unassigned.append(cid)
            continue
        rep_id, rep_name = reps[team][turn[team] % len(reps[team])]
        turn[team] += 1
        log_activity(session=session, actor=actor, data=ActivityInput(
            kind=ActivityKind.TASK, subject=subject, contact_id=cid, due_at=due_at, assignee_id=rep_id))
        by_rep[rep_name] += 1
    return TaskAssignment(created=sum(by_rep.values()), by_rep=dict(by_rep), unassigned=unassigned)
