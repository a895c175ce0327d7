"""Tag clean-up: which tags nobody uses, which are near-duplicates ("VIP", "vip ", "V.I.P."), merging and deleting.

A tag's use is its links to live contacts and companies. Two tags are near-duplicates when their keys (the name
normalised as search does, with everything but letters and digits removed) are equal, or, for keys of five or
more characters, at least 90 % alike (rapidfuzz's ratio: "customer" and "customers"). Tags are a vocabulary
shared by everyone, so merging relinks every record, whoever owns it; tags never bump a record's version (as in
crm.tags), and every relinked record gets an audit row naming the old and the new tag. Saved segments that test a
merged tag, and automation rules that add or remove one, are made to use the survivor.
"""
import re
from dataclasses import dataclass
from datetime import datetime

from rapidfuzz import fuzz
from sqlalchemy import Integer, delete, exists, func, insert, literal, select
from sqlmodel import Session

from crm.audit import audit
from crm.clock import utcnow
from crm.errors import NotFound, ValidationFailed
from crm.hygiene.jobs import require_hygiene, retarget_rules
from crm.models import AuditLog, Company, CompanyTag, Contact, ContactTag, Segment, Tag
from crm.permissions import Actor
from crm.text import normalize_name

SIMILAR = 90  # rapidfuzz ratio from which two keys are near-duplicates
_FUZZY_MIN = 5  # shorter keys must be equal: "vip" and "vips" are not merged by guess
_LINKS = (("contact", Contact, ContactTag, ContactTag.contact_id), ("company", Company, CompanyTag,
                                                                      CompanyTag.company_id))


@dataclass
class TagUse:
    id: int
    name: str
    contacts: int
    companies: int
    created_at: datetime
    version: int

    @property
    def uses(self) -> int:
        return self.contacts + self.companies


def tag_key(name: str) -> str:
    """What near-duplicate names share: "V.I.P." and "vip " are both "vip"."""
    return re.sub(r"[\W_]+", "", normalize_name(name))


def tag_usage(*, session: Session, actor: Actor) -> list[TagUse]:
    """Every live tag with how many live contacts and companies carry it, by name."""
    require_hygiene(actor, "review tags")
    counts = {}
    for entity, model, link, key in _LINKS:
        # All links, less those of deleted records: two index-only counts, where joining every link to its record
        # reads a million rows (4.7 s against 0.5 s on the large demo).
        every = dict(session.execute(select(link.tag_id, func.count()).group_by(link.tag_id)).all())
        gone = select(model.id).where(model.deleted_at.is_not(None))
        for tag_id, n in session.execute(select(link.tag_id, func.count()).where(key.in_(gone))
                                         .group_by(link.tag_id)):
            every[tag_id] -= n
        counts[entity] = every
    tags = session.execute(select(Tag).where(Tag.deleted_at.is_(None)).order_by(func.lower(Tag.name), Tag.id))
    return [TagUse(id=t.id, name=t.name, contacts=counts["contact"].get(t.id, 0),
                   companies=counts["company"].get(t.id, 0), created_at=t.created_at, version=t.version)
            for t in tags.scalars()]


def unused_tags(*, session: Session, actor: Actor) -> list[TagUse]:
    return [t for t in tag_usage(session=session, actor=actor) if t.uses == 0]


def near_duplicate_tags(*, session: Session, actor: Actor) -> list[list[TagUse]]:
    """Groups of tags that look like one, each led by the suggested survivor (most used, then oldest); the groups
    with the most uses first. Tags are few (hundreds), so every pair of keys is compared."""
    tags = tag_usage(session=session, actor=actor)
    keys = [tag_key(t.name) for t in tags]
    parent = list(range(len(tags)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(tags)):
        for j in range(i + 1, len(tags)):
            if _alike(keys[i], keys[j]):
                parent[root(j)] = root(i)
    groups: dict[int, list[TagUse]] = {}
    for i, tag in enumerate(tags):
        groups.setdefault(root(i), []).append(tag)
    found = [sorted(g, key=lambda t: (-t.uses, t.created_at, t.id)) for g in groups.values() if len(g) > 1]
    return sorted(found, key=lambda g: (-sum(t.uses for t in g), g[0].name.lower()))


def _alike(a: str, b: str) -> bool:
    if a == b:
        return bool(a)
    return min(len(a), len(b)) >= _FUZZY_MIN and fuzz.ratio(a, b) >= SIMILAR


@dataclass
class TagMerge:
    survivor_id: int
    merged: list[str]
    relinked: dict[str, int]  # entity -> records that now carry the survivor instead
    segments: int  # saved segments whose conditions now name the survivor
    rules: int  # automation rules that now add or remove the survivor


def _live_tags(session: Session, ids: set[int]) -> dict[int, Tag]:
    tags = {t.id: t for t in session.execute(select(Tag).where(Tag.id.in_(ids), Tag.deleted_at.is_(None))
                                             .with_for_update()).scalars()}
    if missing := ids - tags.keys():
        raise NotFound(f"no live tag with id {', '.join(map(str, sorted(missing)))}")
    return tags


def merge_tags(*, session: Session, actor: Actor, survivor_id: int, merged_ids: list[int]) -> TagMerge:
    """Move every link of the merged tags to the survivor (a record that has both keeps one link), audit each
    relinked record and each merged tag, and delete the merged tags."""
    require_hygiene(actor, "merge tags")
    merged = set(merged_ids) - {survivor_id}
    if not merged:
        raise ValidationFailed("merged_ids", "choose at least one tag to merge into the survivor")
    tags = _live_tags(session, merged | {survivor_id})
    survivor, now, relinked = tags[survivor_id], utcnow(), {}
    for entity, model, link, key in _LINKS:
        relinked[entity] = _relink(session, actor, entity, model, link, key, merged, survivor, now)
    for tag_id in sorted(merged):
        audit(session, actor_id=actor.id, entity="tag", record_id=tag_id, action="merge",
              changes={"name": (tags[tag_id].name, None), "merged_into": (None, survivor.name)},
              record_version=tags[tag_id].version + 1, context=f"tag_merge:{survivor_id}")
    # Gone for good, not soft-deleted: a deleted row would keep its name taken, and the next import or form that
    # names it would find a deleted tag instead of making (or matching) a live one. The audit keeps the story.
    session.execute(delete(Tag).where(Tag.id.in_(merged)))
    segments = _retarget_segments(session, actor, {i: tags[i].name for i in merged}, survivor)
    rules = retarget_rules(session, actor, actions=("add_tag", "remove_tag"), key="tag_id", old_ids=merged,
                           new_id=survivor_id, context=f"tag_merge:{survivor_id}")
    return TagMerge(survivor_id=survivor_id, merged=[tags[i].name for i in sorted(merged)], relinked=relinked,
                    segments=segments, rules=len(rules))


def _retarget_segments(session: Session, actor: Actor, merged: dict[int, str], survivor: Tag) -> int:
    """Saved segments whose tag conditions name a merged tag (by id or name) name the survivor instead, so they
    keep matching what they matched. Segments are few; each changed one is versioned and audited."""
    gone = {str(i) for i in merged} | {name.strip().lower() for name in merged.values()}
    changed = 0
    for segment in session.execute(select(Segment).where(Segment.deleted_at.is_(None)).with_for_update()).scalars():
        definition = _retargeted(segment.definition or {}, gone, survivor.name)
        if definition != (segment.definition or {}):
            before, segment.definition = segment.definition, definition
            segment.version, segment.updated_at = segment.version + 1, utcnow()
            audit(session, actor_id=actor.id, entity="segment", record_id=segment.id, action="update",
                  changes={"definition": (before, definition)}, record_version=segment.version,
                  context=f"tag_merge:{survivor.id}")
            changed += 1
    return changed


def _retargeted(definition: dict, gone: set[str], name: str) -> dict:
    groups = []
    for group in definition.get("groups", []):
        conditions = []
        for c in group.get("conditions", []):
            if c.get("field") == "tags" and isinstance(c.get("value"), list):
                values = [name if str(v).strip().lower() in gone else v for v in c["value"]]
                c = {**c, "value": list(dict.fromkeys(values))}
            conditions.append(c)
        groups.append({**group, "conditions": conditions})
    return {**definition, "groups": groups} if groups else definition


def _relink(session: Session, actor: Actor, entity: str, model, link, key, merged: set[int], survivor: Tag,
            now: datetime) -> int:
    """Set-based: audit, add the survivor where missing, drop the merged links. Returns the records relinked."""
    session.execute(insert(AuditLog).from_select(
        ["at", "actor_id", "entity", "record_id", "action", "field", "old_value", "new_value", "record_version",
         "context"],
        select(literal(now), literal(actor.id, Integer), literal(entity), key, literal("update"), literal("tags"),
               Tag.name, literal(survivor.name), model.version, literal(f"tag_merge:{survivor.id}"))
        .join(Tag, Tag.id == link.tag_id).join(model, model.id == key).where(link.tag_id.in_(merged))))
    holders = select(key).where(link.tag_id.in_(merged)).distinct().subquery()
    add = select(holders.c[key.key], literal(survivor.id), literal(now), literal(now), literal(1)).where(
        ~exists().where(link.tag_id == survivor.id, key == holders.c[key.key]))
    session.execute(insert(link).from_select([key.key, "tag_id", "created_at", "updated_at", "version"], add))
    count = session.execute(select(func.count()).select_from(holders)).scalar_one()
    session.execute(delete(link).where(link.tag_id.in_(merged)))
    return count


def delete_tags(*, session: Session, actor: Actor, tag_ids: list[int]) -> int:
    """Delete tags (soft: an admin can restore one with its links, which stay but are no longer shown)."""
    require_hygiene(actor, "delete tags")
    if not tag_ids:
        raise ValidationFailed("tag_ids", "choose at least one tag")
    now = utcnow()
    for tag in _live_tags(session, set(tag_ids)).values():
        tag.deleted_at, tag.version, tag.updated_at = now, tag.version + 1, now
        audit(session, actor_id=actor.id, entity="tag", record_id=tag.id, action="delete",
              changes={"deleted_at": (None, now)}, record_version=tag.version)
    return len(set(tag_ids))
