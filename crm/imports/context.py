"""What one import run carries from row to row: the mapping, the lookups, the problems found and the counts."""
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count
from typing import Any

from sqlmodel import Session

from crm.imports.dates import DateOrder
from crm.imports.lookups import Lookups
from crm.imports.mapping import CUSTOM, Mapping
from crm.models import CustomFieldDefView
from crm.permissions import Actor

# Fields named by validators, as the canonical column a file maps onto them.
_FIELD_COLUMN = {"owner_id": "owner", "company_id": "company", "parent_id": "parent", "contact_id": "contact",
                 "deal_id": "deal", "team_id": "team", "lost_reason_id": "lost_reason", "stage_id": "stage",
                 "pipeline_id": "pipeline", "product_id": "product", "name_key": "name"}


@dataclass(frozen=True)
class Problem:
    """One reason a row was rejected: what the error file holds."""
    row: int
    column: str
    value: str
    reason: str


class RowRejected(Exception):
    """A row cannot be imported; `problems` are (field or file column, reason) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(f"{f}: {r}" for f, r in problems))
        self.problems = problems


@dataclass
class Row:
    """One data row on its way in: the cells as mapped, the parsed values, and what it will do."""
    number: int
    cells: dict[str, str]  # file column -> cell text (after the mapping's value fixes)
    values: dict[str, Any] = field(default_factory=dict)  # canonical column -> parsed value, for non-empty cells
    custom: dict[str, Any] = field(default_factory=dict)  # custom field key -> parsed value
    keys: list[tuple[str, str]] = field(default_factory=list)  # upsert keys, in priority order
    existing: dict | None = None  # the stored record it matches, as column -> value
    final: dict[str, Any] = field(default_factory=dict)  # the record's column values after this row
    extra: dict[str, Any] = field(default_factory=dict)  # entity-specific (a product line, tags ...)
    record_id: int | None = None


@dataclass
class Context:
    session: Session
    actor: Actor | None
    mapping: Mapping
    order: DateOrder | None
    lookups: Lookups
    job_id: int
    dry_run: bool
    now: datetime
    custom_fields: dict[str, CustomFieldDefView] = field(default_factory=dict)  # key -> definition (mapped ones)
    problems: list[Problem] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    also_created: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    preview: list[dict] = field(default_factory=list)
    notes: dict[str, list[int]] = field(default_factory=dict)  # a default the import applied -> the rows
    writer: Any = None  # the run's crm.imports.writing.Writer, for records a row creates on the way (tags, teams)
    phones: Any = None  # phone numbers checked ahead in another process (crm.imports.phones), for large files
    _placeholders: Any = field(default_factory=lambda: count(-1, -1))

    @property
    def actor_id(self) -> int | None:
        return self.actor.id if self.actor else None

    @property
    def context(self) -> str:
        """The audit context of every row this import writes."""
        return f"import:{self.job_id}"

    def placeholder(self) -> int:
        """A stand-in id for a record a dry run would create, so later rows can refer to it."""
        return next(self._placeholders)

    def option(self, name: str, default: Any = None) -> Any:
        return self.mapping.options.get(name, default)

    def column_for(self, field_name: str) -> str:
        """The file column behind a canonical field (or custom field key), for the error file."""
        name = _FIELD_COLUMN.get(field_name, field_name)
        return (self.mapping.source_of(name) or self.mapping.source_of(CUSTOM + name)
                or self.mapping.source_of(CUSTOM + field_name.removeprefix("cf.")) or name)

    def note(self, row: Row, text: str) -> None:
        """Say that a row landed with a documented default instead of a value it lacked (reported, never silent)."""
        self.notes.setdefault(text, []).append(row.number)

    def reject(self, row: Row, problems: list[tuple[str, str]]) -> None:
        for column, reason in problems:
            source = column if column in row.cells else self.column_for(column)
            self.problems.append(Problem(row.number, source, row.cells.get(source, ""), reason))
        self.counts["rejected"] += 1
