"""Tags on imported contacts and companies: named in one cell, created when new (with tags.manage), only ever added."""
from sqlalchemy import select

from crm.errors import ValidationFailed
from crm.imports.context import Context, Row
from crm.imports.values import fold
from crm.imports.writing import Writer
from crm.models import CompanyTag, ContactTag, Tag

_LINKS = {"contact": (ContactTag, "contact_id", "contact_tag"), "company": (CompanyTag, "company_id", "company_tag")}


class Tagging:
    def __init__(self, record: str):
        self.record = record
        self.by_name: dict[str, int] | None = None
        self.names: dict[int, str] = {}
        self.linked: dict[int, set[int]] = {}  # record id -> tag ids it has
        self.deleted: dict = {}  # folded name -> the deleted tag's row

    def _load(self, ctx: Context) -> None:
        if self.by_name is None:
            rows = ctx.session.execute(select(Tag.id, Tag.name, Tag.deleted_at, Tag.version)).all()
            live = [r for r in rows if r.deleted_at is None]
            self.by_name = {fold(r.name): r.id for r in live}
            self.names = {r.id: r.name for r in live}
            # Deleted tags keep their name (and links): one the file names is restored, as crm.tags.ensure_tag does.
            self.deleted = {fold(r.name): r for r in rows if r.deleted_at is not None}

    def _restore(self, ctx: Context, tag) -> None:
        ctx.writer.update(Tag, "tag", [({"id": tag.id, "deleted_at": tag.deleted_at, "version": tag.version},
                                        {"deleted_at": None}, tag.version + 1)])
        self.by_name[fold(tag.name)], self.names[tag.id] = tag.id, tag.name

    def load_links(self, ctx: Context, record_ids: list[int]) -> None:
        link, column, _ = _LINKS[self.record]
        table = link.__table__
        for lo in range(0, len(record_ids), 500):
            stmt = select(table.c[column], table.c.tag_id).where(table.c[column].in_(record_ids[lo:lo + 500]))
            for record_id, tag_id in ctx.session.execute(stmt):
                self.linked.setdefault(record_id, set()).add(tag_id)

    def resolve(self, ctx: Context, row: Row) -> bool:
        """Put the tag ids to add in row.extra["tags"]; True when that adds any. New tags are created here."""
        names = row.values.get("tags")
        if not names:
            return False
        self._load(ctx)
        ids = []
        for name in names:
            clean = " ".join(name.split())
            if len(clean) > 60:
                raise ValidationFailed("tags", f"the tag {clean[:20]!r}... is longer than 60 characters")
            if fold(clean) not in self.by_name:
                if ctx.actor is not None and not ctx.actor.can("tags.manage"):
                    raise ValidationFailed("tags", f"unknown tag {clean!r}, and your role may not create tags")
                if fold(clean) in self.deleted:
                    self._restore(ctx, self.deleted.pop(fold(clean)))
                else:
                    [tag_id] = ctx.writer.insert(Tag, [{"name": clean}], entity="tag")
                    self.by_name[fold(clean)], self.names[tag_id] = tag_id, clean
                    ctx.also_created["tag"] += 1
            ids.append(self.by_name[fold(clean)])
        have = self.linked.get(row.existing["id"], set()) if row.existing else set()
        row.extra["tags"] = [i for i in dict.fromkeys(ids) if i not in have]
        return bool(row.extra["tags"]) and row.existing is not None

    def write(self, ctx: Context, writer: Writer, rows: list[Row]) -> None:
        link, column, entity = _LINKS[self.record]
        new = [{column: r.record_id, "tag_id": t} for r in rows for t in r.extra.get("tags", ())]
        writer.insert(link, new, entity=entity, audited=False)
        for row in rows:
            if row.existing and row.extra.get("tags"):
                before = sorted(self.names.get(t, str(t)) for t in self.linked.get(row.record_id, ()))
                after = sorted(before + [self.names[t] for t in row.extra["tags"]])
                writer.audit_field(self.record, row.record_id, "tags", before, after, row.existing["version"] + 1)
