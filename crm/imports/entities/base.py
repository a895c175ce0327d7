"""What every entity importer provides; the engine (crm.imports.engine) drives them all the same way."""
from typing import Any, ClassVar

from sqlalchemy import select
from sqlmodel import SQLModel

from crm.imports.context import Context, Row
from crm.imports.entities.tagging import Tagging
from crm.imports.writing import Writer


class Importer:
    entity: ClassVar[str]  # the import's name: "contacts"
    record: ClassVar[str]  # the audit entity of one record: "contact"
    model: ClassVar[type[SQLModel]]
    required: ClassVar[tuple[str, ...]] = ()  # canonical columns the mapping must map
    self_reference: ClassVar[str | None] = None  # a lookup kind rows of the same file may refer to
    skip_audit: ClassVar[frozenset[str]] = frozenset({"name_key"})  # derived columns, audited through their source
    search: ClassVar[str | None] = None  # crm.search entity to reindex after writes
    tags: Tagging | None = None  # set by importers whose files may carry a tags column

    def prepare(self, ctx: Context, writer: Writer) -> None:
        """Once before the rows: read options, create what the mapping explicitly asks for."""

    def pending_keys(self, ctx: Context, row: Row) -> list[str]:
        """The folded identifiers other rows could use to refer to this row (self_reference only)."""
        return []

    def load_related(self, ctx: Context, record_ids: list[int]) -> None:
        """Load, for a chunk's matched records, what build needs besides their own columns (their tags, if the
        file has a tags column)."""
        if self.tags is not None and "tags" in ctx.mapping.targets().values():
            self.tags.load_links(ctx, record_ids)

    @staticmethod
    def merged(row: Row, fields: tuple[str, ...], defaults: dict[str, Any]) -> dict[str, Any]:
        """The record's input fields after this row: the stored values (or the defaults), with the row's over them."""
        current = {f: row.existing[f] for f in fields} if row.existing else defaults
        return {**current, **{f: v for f, v in row.values.items() if f in fields}}

    def parse_cell(self, ctx: Context, column, text: str) -> Any:
        """A cell of a kind only this entity knows; by default passed on as text for build to resolve."""
        return text

    def keys(self, ctx: Context, row: Row) -> list[tuple[str, str]]:
        """Upsert keys in priority order, as (kind, normalised value)."""
        ext = row.values.get("external_id")
        return [("external_id", ext)] if ext else []

    def match(self, ctx: Context, wanted: dict[str, set[str]]) -> dict[tuple[str, str], int]:
        """Stored live records for these keys: {(kind, value): id}. Default: by external_id."""
        values = sorted(wanted.get("external_id", ()))
        found = {}
        table = self.model.__table__
        for lo in range(0, len(values), 500):
            part = values[lo:lo + 500]
            stmt = select(table.c.id, table.c.external_id).where(table.c.external_id.in_(part),
                                                                  table.c.deleted_at.is_(None))
            for record_id, ext in ctx.session.execute(stmt):
                found.setdefault(("external_id", ext), record_id)
        return found

    def build(self, ctx: Context, row: Row) -> dict[str, Any]:
        """The record's column values after this row (row.existing is the stored record, or None). Validates."""
        raise NotImplementedError

    def label(self, values: dict[str, Any]) -> str:
        return str(values.get("name") or values.get("title") or values.get("subject") or values.get("external_id"))

    def register(self, ctx: Context, row: Row) -> None:
        """Tell the lookups about a record this import created, so later rows can refer to it."""

    def dependants(self, ctx: Context, writer: Writer, created: list[Row], updated: list[Row]) -> None:
        """Write what hangs off the records (stage history, line items, tags) once their ids are known."""


def merged(row: Row, fields: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Stored values overlaid with the row's non-empty cells: an import edits like a patch, blanks change nothing."""
    base = {f: row.existing.get(f) for f in fields} if row.existing else {f: None for f in fields}
    return {**base, **{f: v for f, v in row.values.items() if f in base}}
