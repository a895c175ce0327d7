"""Merging two static segments (lists) kept for the same purpose: the members of one join the other, which is then
deleted, and automation rules adding to the deleted one add to the kept one; a job records the members it added,
so reverting it takes exactly those out and brings the other back (and the rules to it)."""
from dataclasses import dataclass

from sqlalchemy import delete, insert, literal, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from crm.audit import apply_changes, audit
from crm.clock import utcnow
from crm.errors import EditConflict, NotFound, ValidationFailed
from crm.hygiene.jobs import (
    RevertResult, Skipped, changed_since, context_of, require_hygiene, retarget_rules, start_job,
)
from crm.models import AutomationRule, HygieneChange, HygieneJob, Segment, SegmentMember
from crm.permissions import Actor
from crm.segments.service import static_size


@dataclass
class ListMerge:
    job_id: int
    keep_id: int
    added: int  # members of the merged list the kept one did not have
    members: int  # the kept list's members now


def _segment(session: Session, segment_id: int, *, deleted: bool = False) -> Segment:
    segment = session.execute(select(Segment).where(Segment.id == segment_id).with_for_update()).scalar()
    if segment is None or (segment.deleted_at is not None) != deleted:
        raise NotFound(f"segment {segment_id} does not exist" + (" (or was not merged)" if deleted else ""))
    return segment


def _new_members(job_id: int, keep_id: int, merged_id: int):
    """SELECT the job's change rows: members of the merged list that the kept one lacks."""
    kept = aliased(SegmentMember)
    return select(literal(job_id), literal("segment_member"), SegmentMember.record_id).where(
        SegmentMember.segment_id == merged_id,
        SegmentMember.record_id.not_in(select(kept.record_id).where(kept.segment_id == keep_id)))


def _check_version(segment: Segment, seen: int) -> None:
    if segment.version != seen:
        raise EditConflict(f"segment {segment.name!r} was changed by someone else; reload it and merge again",
                           current_version=segment.version)


def merge_lists(*, session: Session, actor: Actor, keep_id: int, merged_id: int,
                seen_versions: tuple[int, int]) -> ListMerge:
    """Add the members of static segment `merged_id` to static segment `keep_id` (no member twice), then delete
    `merged_id` (soft; its own members stay with it). `seen_versions` are the two segments' versions as shown."""
    require_hygiene(actor, "merge lists")
    if keep_id == merged_id:
        raise ValidationFailed("merged_id", "choose two different lists")
    keep, merged = _segment(session, keep_id), _segment(session, merged_id)
    for segment, seen in zip((keep, merged), seen_versions):
        _check_version(segment, seen)
    if keep.kind != "static" or merged.kind != "static":
        raise ValidationFailed("merged_id", "only static segments (lists) can be merged; a dynamic one is a rule")
    if keep.entity != merged.entity:
        raise ValidationFailed("merged_id", f"{keep.name!r} holds {keep.entity} records, {merged.name!r} "
                                            f"{merged.entity} records")
    before = static_size(session, keep.id)
    job = start_job(session, actor, "list_merge", {"keep_id": keep.id, "merged_id": merged.id,
                                                   "keep": keep.name, "merged": merged.name})
    new = _new_members(job.id, keep.id, merged.id)
    session.execute(insert(HygieneChange).from_select(["job_id", "entity", "record_id"], new))
    session.execute(insert(SegmentMember).from_select(
        ["segment_id", "record_id"],
        select(literal(keep.id), HygieneChange.record_id).where(HygieneChange.job_id == job.id)))
    members = static_size(session, keep.id)
    job.record_count = members - before
    now = utcnow()
    merged.deleted_at, merged.version, merged.updated_at = now, merged.version + 1, now
    rules = retarget_rules(session, actor, actions=("add_to_segment",), key="segment_id", old_ids={merged.id},
                           new_id=keep.id, context=context_of(job.id))
    job.params = {**job.params, "merged_version": merged.version, "rules": {str(r): v for r, v in rules.items()}}
    audit(session, actor_id=actor.id, entity="segment", record_id=keep.id, action="merge",
          changes={"members": (before, members), "merged_from": (None, merged.name)}, record_version=keep.version,
          context=context_of(job.id))
    audit(session, actor_id=actor.id, entity="segment", record_id=merged.id, action="delete",
          changes={"merged_into": (None, keep.name)}, record_version=merged.version, context=context_of(job.id))
    return ListMerge(job_id=job.id, keep_id=keep.id, added=job.record_count, members=members)


def revert_list_merge(*, session: Session, actor: Actor, job: HygieneJob, skip_edited: bool) -> RevertResult:
    """Take out of the kept list exactly the members the merge added (those still there) and restore the merged
    list. Refused, whatever `skip_edited`, if the merged list changed since or the kept one was deleted: half a
    list merge is not an undo."""
    keep_id, merged_id = job.params["keep_id"], job.params["merged_id"]
    merged = _segment(session, merged_id, deleted=True)
    if merged.version != job.params["merged_version"]:
        why = changed_since(session, "segment", merged.id, job.params["merged_version"])
        raise EditConflict(f"List {merged.name!r} was {why} after the merge; it cannot be undone.",
                           current_version=merged.version)
    keep = _segment(session, keep_id)
    added = select(HygieneChange.record_id).where(HygieneChange.job_id == job.id)
    before = static_size(session, keep.id)
    session.execute(delete(SegmentMember).where(SegmentMember.segment_id == keep.id,
                                                SegmentMember.record_id.in_(added)))
    members, now, deleted_at = static_size(session, keep.id), utcnow(), merged.deleted_at
    merged.deleted_at, merged.version, merged.updated_at = None, merged.version + 1, now
    audit(session, actor_id=actor.id, entity="segment", record_id=keep.id, action="unmerge",
          changes={"members": (before, members), "merged_from": (merged.name, None)}, record_version=keep.version,
          context=context_of(job.id, revert=True))
    audit(session, actor_id=actor.id, entity="segment", record_id=merged.id, action="restore",
          changes={"deleted_at": (deleted_at, None)}, record_version=merged.version,
          context=context_of(job.id, revert=True))
    skipped = _restore_rules(session, actor, job, merged.id)
    return RevertResult(job_id=job.id, kind=job.kind, restored=before - members, skipped_count=len(skipped),
                        skipped=skipped)


def _restore_rules(session: Session, actor: Actor, job: HygieneJob, merged_id: int) -> list[Skipped]:
    """Rules the merge pointed at the kept list point at the restored one again, unless edited since."""
    skipped = []
    for rule_id, version in ((int(r), v) for r, v in job.params.get("rules", {}).items()):
        rule = session.execute(select(AutomationRule).where(AutomationRule.id == rule_id).with_for_update()).scalar()
        if rule is None or rule.version != version:
            reason = changed_since(session, "automation_rule", rule_id, version) if rule else "deleted"
            skipped.append(Skipped("automation_rule", rule_id, reason))
            continue
        diff = apply_changes(rule, {"action_params": {**rule.action_params, "segment_id": merged_id}})
        audit(session, actor_id=actor.id, entity="automation_rule", record_id=rule.id, action="update",
              changes=diff, record_version=rule.version, context=context_of(job.id, revert=True))
    return skipped
