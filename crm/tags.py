"""Tags on contacts and companies: pick existing ones, create new ones inline, add and remove in bulk."""
from pydantic import BaseModel
from sqlalchemy import delete, func
from sqlmodel import Session, select

from crm.audit import apply_changes, audit, created_fields
from crm.errors import ValidationFailed
from crm.models import Company, CompanyTag, Contact, ContactTag, Tag
from crm.permissions import Actor, can_read, require_edit
from crm.validation import require_text

_LINKS = {"contact": (Contact, ContactTag, ContactTag.contact_id), "company": (Company, CompanyTag, CompanyTag.company_id)}


class TagView(BaseModel):
    id: int
    name: str
    color: str | None = None


def list_tags(*, session: Session) -> list[TagView]:
    rows = session.exec(select(Tag).where(Tag.deleted_at.is_(None)).order_by(func.lower(Tag.name))).all()
    return [TagView(id=t.id, name=t.name, color=t.color) for t in rows]


def ensure_tag(*, session: Session, actor: Actor, name: str) -> TagView:
    """The live tag with this name (ignoring case and extra spaces), created if there is none.

    A deleted tag of that name is restored (audited) rather than blocking the name for good: deletion is soft and
    keeps its links, so the tag comes back as it was. An import naming it, or a rep typing it, means it is wanted."""
    clean = " ".join((require_text(name, field="tag", max_length=60) or "").split())
    existing = session.exec(select(Tag).where(func.lower(Tag.name) == clean.lower())).first()
    if existing is not None:
        if existing.deleted_at is not None:
            audit(session, actor_id=actor.id, entity="tag", record_id=existing.id, action="restore",
                  changes=apply_changes(existing, {"deleted_at": None}), record_version=existing.version)
        return TagView(id=existing.id, name=existing.name, color=existing.color)
    tag = Tag(name=clean)
    session.add(tag)
    session.flush()
    audit(session, actor_id=actor.id, entity="tag", record_id=tag.id, action="create", changes=created_fields(tag),
          record_version=tag.version)
    return TagView(id=tag.id, name=tag.name)


def tags_of(*, session: Session, entity: str, record_id: int) -> list[TagView]:
    _, link, key = _LINKS[entity]
    rows = session.exec(select(Tag).join(link, link.tag_id == Tag.id)
                        .where(key == record_id, Tag.deleted_at.is_(None)).order_by(func.lower(Tag.name))).all()
    return [TagView(id=t.id, name=t.name, color=t.color) for t in rows]


def change_tags(*, session: Session, actor: Actor, entity: str, record_ids: list[int], add: list[int] = (),
                remove: list[int] = ()) -> int:
    """Add and remove tags on each record, all or none; the actor must be able to edit every record.

    Tags are a set, so adding and removing never conflict with other edits and do not bump the record's version.
    Each record whose tags changed gets one audit row with its tags before and after. Returns that count.
    """
    model, link, key = _LINKS[entity]
    add, remove = set(add), set(remove)
    if add & remove:
        raise ValidationFailed("tags", "a tag cannot be added and removed at once")
    names = dict(session.exec(select(Tag.id, Tag.name).where(Tag.id.in_(add | remove or {-1}),
                                                             Tag.deleted_at.is_(None))).all())
    if missing := (add | remove) - names.keys():
        raise ValidationFailed("tags", f"no such tag: {sorted(missing)}")
    changed = 0
    for record_id in sorted(set(record_ids)):
        record = session.get(model, record_id)
        if record is None or record.deleted_at is not None:
            raise ValidationFailed("record_ids", f"{entity} {record_id} does not exist (or was deleted)")
        # Marketers tag contacts they may read (tags.manage); everyone else tags what they may edit.
        if not (actor.can("tags.manage") and can_read(session, actor, "contacts", record.owner_id)):
            require_edit(session, actor, "contacts", record.owner_id, f"{entity} {record_id}")
        before = set(session.exec(select(link.tag_id).where(key == record_id)).all())
        after = (before | add) - remove
        if after == before:
            continue
        if to_remove := before - after:
            session.execute(delete(link).where(key == record_id, link.tag_id.in_(to_remove)))
        session.add_all(link(**{key.key: record_id, "tag_id": t}) for t in after - before)
        audit(session, actor_id=actor.id, entity=entity, record_id=record_id, action="update",
              changes={"tags": (_names(session, before), _names(session, after))}, record_version=record.version)
        changed += 1
    return changed


def _names(session: Session, ids: set[int]) -> str:
    if not ids:
        return ""
    return ", ".join(sorted(session.exec(select(Tag.name).where(Tag.id.in_(ids))).all(), key=str.lower))
