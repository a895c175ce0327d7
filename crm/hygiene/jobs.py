"""What the hygiene tools share: their right, the contacts an actor may clean, and the bookkeeping of bulk jobs that
can be reverted (hygiene_job, hygiene_change).

A job records, per record it changed, the version it left. A revert restores only records still at that version:
anything edited since is skipped (or, unless asked to skip, the revert refuses) and named with who changed what.
"""
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, false, func, true
from sqlmodel import Session, select

from crm.audit import apply_changes, audit, bump_data_version
from crm.clock import utcnow
from crm.errors import EditConflict, NotFound, PermissionDenied, ValidationFailed
from crm.models import AuditLog, AutomationRule, HygieneJob, User
from crm.permissions import Actor, require

RIGHT = "data.hygiene"
SHOWN = 20  # skipped records named one by one; the rest are counted


def require_hygiene(actor: Actor, doing: str) -> None:
    """The data-hygiene tools are for admins and managers (the `data.hygiene` right)."""
    require(actor, RIGHT, doing)


def editable_owner_ids(session: Session, actor: Actor) -> list[int] | None:
    """Owner ids whose contacts the actor may edit, or None for everyone's (ownerless contacts included)."""
    if actor.can("contacts.edit_all"):
        return None
    owners: set[int] = set()
    if actor.can("contacts.edit_team") and actor.team_id is not None:
        owners |= set(session.exec(select(User.id).where(User.team_id == actor.team_id)).all())
    if actor.can("contacts.edit_own"):
        owners.add(actor.id)
    return sorted(owners)


def editable(session: Session, actor: Actor, owner_column) -> ColumnElement:
    """SQL: the record's owner is one whose contacts (and companies) the actor may edit."""
    owners = editable_owner_ids(session, actor)
    if owners is None:
        return true()
    return owner_column.in_(owners) if owners else false()


def start_job(session: Session, actor: Actor, kind: str, params: dict) -> HygieneJob:
    job = HygieneJob(kind=kind, actor_id=actor.id, params=params)
    session.add(job)
    session.flush()
    return job


def context_of(job_id: int, *, revert: bool = False) -> str:
    """The audit context of a job's writes (and of its revert's)."""
    return f"hygiene:{job_id}" + (":revert" if revert else "")


@dataclass
class Skipped:
    entity: str
    record_id: int
    reason: str


@dataclass
class RevertResult:
    job_id: int
    kind: str
    restored: int
    skipped_count: int = 0
    skipped: list[Skipped] = field(default_factory=list)  # the first SHOWN of them, with reasons


@dataclass
class JobView:
    id: int
    kind: str
    status: str
    actor: str | None
    params: dict
    record_count: int
    created_at: datetime
    reverted_at: datetime | None
    summary: dict
    actor_id: int | None = None  # who ran it: they (or an admin) may revert it


def list_jobs(*, session: Session, actor: Actor, kind: str | None = None, limit: int = 50) -> list[JobView]:
    """The newest hygiene jobs first, for the page's history and its revert buttons."""
    require_hygiene(actor, "see data-hygiene jobs")
    stmt = select(HygieneJob, User.full_name).join(User, User.id == HygieneJob.actor_id, isouter=True)
    if kind:
        stmt = stmt.where(HygieneJob.kind == kind)
    rows = session.exec(stmt.order_by(HygieneJob.id.desc()).limit(limit)).all()
    return [JobView(id=j.id, kind=j.kind, status=j.status, actor=name, params=j.params or {},
                    record_count=j.record_count, created_at=j.created_at, reverted_at=j.reverted_at,
                    summary=j.summary or {}, actor_id=j.actor_id) for j, name in rows]


def revert_job(*, session: Session, actor: Actor, job_id: int, skip_edited: bool = False) -> RevertResult:
    """Undo a hygiene job. Records edited since the job are skipped when `skip_edited`, else nothing is reverted
    and EditConflict names them. Each kind's module restores its own records."""
    from crm.hygiene import formatting, lists, stale  # they import this module for its bookkeeping

    require_hygiene(actor, "revert data-hygiene jobs")
    job = session.exec(select(HygieneJob).where(HygieneJob.id == job_id).with_for_update()).first()
    if job is None:
        raise NotFound(f"Hygiene job {job_id} does not exist")
    if job.actor_id != actor.id and not actor.can("contacts.edit_all"):
        raise PermissionDenied("Only the person who ran a hygiene job, or an admin, may revert it.")
    if job.status != "done":
        raise ValidationFailed("job", f"job {job_id} was already reverted on {job.reverted_at:%Y-%m-%d %H:%M}")
    revert = {"archive": stale.revert_archive, "format": formatting.revert_formatting,
              "list_merge": lists.revert_list_merge}[job.kind]
    result = revert(session=session, actor=actor, job=job, skip_edited=skip_edited)
    job.status, job.reverted_at, job.reverted_by_id = "reverted", utcnow(), actor.id
    job.summary = {"restored": result.restored, "skipped": result.skipped_count}
    job.version += 1
    bump_data_version(session)
    return result


def refuse_or_skip(job: HygieneJob, skipped: list[Skipped], total: int, *, skip_edited: bool) -> None:
    """Raise EditConflict naming the records edited since the job, unless the caller chose to skip them."""
    if not total or skip_edited:
        return
    shown = "; ".join(f"{s.entity} {s.record_id}: {s.reason}" for s in skipped)
    more = f"; and {total - len(skipped)} more" if total > len(skipped) else ""
    raise EditConflict(f"Job {job.id} cannot be reverted exactly: {total} records changed since it ran ({shown}{more})."
                       " Nothing was reverted; revert again skipping them to restore the others.",
                       current_version=job.version,
                       changes=[{"entity": s.entity, "record_id": s.record_id, "how": s.reason} for s in skipped])


def changed_since(session: Session, entity: str, record_id: int, version_after: int | None) -> str:
    """Who changed a record after a job left it at `version_after`, and which fields: "edited by Ann (email)"."""
    rows = session.exec(
        select(func.coalesce(User.full_name, "the command line"), AuditLog.field)
        .join(User, User.id == AuditLog.actor_id, isouter=True)
        .where(AuditLog.entity == entity, AuditLog.record_id == record_id,
               AuditLog.record_version > (version_after or 0))
        .order_by(AuditLog.id)).all()
    if not rows:
        return "changed since (no audit trail)"
    people = ", ".join(dict.fromkeys(name for name, _ in rows))
    fields = ", ".join(dict.fromkeys(f for _, f in rows if f))
    return f"edited by {people}" + (f" ({fields})" if fields else "")


def retarget_rules(session: Session, actor: Actor, *, actions: tuple[str, ...], key: str, old_ids: set[int],
                   new_id: int, context: str) -> dict[int, int]:
    """Live automation rules whose action points at one of `old_ids` (a merged tag or list) point at `new_id`
    instead, so they keep working; each is versioned and audited. Returns {rule id: its version after}."""
    moved = {}
    rules = session.execute(select(AutomationRule).where(AutomationRule.action.in_(actions),
                                                         AutomationRule.deleted_at.is_(None)).with_for_update())
    for rule in rules.scalars():
        if (rule.action_params or {}).get(key) in old_ids:
            diff = apply_changes(rule, {"action_params": {**rule.action_params, key: new_id}})
            audit(session, actor_id=actor.id, entity="automation_rule", record_id=rule.id, action="update",
                  changes=diff, record_version=rule.version, context=context)
            moved[rule.id] = rule.version
    return moved
