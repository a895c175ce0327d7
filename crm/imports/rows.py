"""Parsing one row's cells into typed values, column by column, collecting every problem of the row at once."""
from typing import Any

from crm.customfields import parse_value
from crm.errors import ValidationFailed
from crm.imports.columns import Column, columns_of
from crm.imports.context import Context, Row, RowRejected
from crm.imports.dates import DateError, parse_date, parse_datetime
from crm.imports.lookups import Deferred
from crm.imports.mapping import CUSTOM
from crm.imports.values import fold, parse_bool, parse_country, parse_list, parse_number, unknown
from crm.models import FieldType


class RowParser:
    """Built once per import: the mapped columns, their value fixes and scales, and how each is read."""

    def __init__(self, ctx: Context, headers: list[str], importer):
        self.ctx, self.importer = ctx, importer
        self.columns = columns_of(ctx.mapping.entity)
        targets = ctx.mapping.targets()
        self.plan = [(headers.index(source), source, target) for source, target in targets.items()]
        self.fixes = {source: self._fixes(source, target) for source, target in targets.items()}
        self.choices = {c.name: {fold(v): v for v in c.choices} for c in self.columns.values() if c.choices}

    def _fixes(self, source: str, target: str) -> dict[str, str]:
        """The explicit value map for a column: keyed by the file column, or by what it maps to."""
        values = self.ctx.mapping.values
        fixes = {**values.get(target, {}), **values.get(source, {})}
        return {**{fold(k): v for k, v in fixes.items()}, **fixes}

    def cells(self, raw: list[str], number: int) -> Row:
        cells = {}
        for index, source, _target in self.plan:
            text = raw[index].strip()
            fixes = self.fixes[source]
            if fixes and text:
                text = fixes.get(text, fixes.get(fold(text), text)).strip()
            cells[source] = text
        return Row(number=number, cells=cells)

    def parse(self, row: Row) -> Row:
        """Fill row.values and row.custom; raise RowRejected listing every bad cell (Deferred passes through)."""
        problems = []
        for _index, source, target in self.plan:
            text = row.cells[source]
            if not text:
                continue
            if "\x00" in text:  # PostgreSQL cannot store it, and no real value holds one
                problems.append((source, "contains a NUL character (is the file binary or UTF-16?)"))
                continue
            try:
                if target.startswith(CUSTOM):
                    key = target.removeprefix(CUSTOM)
                    row.custom[key] = self._custom(key, source, text)
                else:
                    row.values[target] = self._cell(self.columns[target], source, text)
            except Deferred:
                raise
            except ValidationFailed as exc:
                problems.append((source, exc.reason))
            except (ValueError, DateError) as exc:
                problems.append((source, str(exc)))
        if problems:
            raise RowRejected(problems)
        return row

    def _scaled(self, source: str, value: float) -> float:
        scale = self.ctx.mapping.scale.get(source)
        return value * scale if scale is not None else value

    def _cell(self, column: Column, source: str, text: str) -> Any:
        kind, lookups = column.kind, self.ctx.lookups
        if kind == "text":
            if column.max_length and len(text) > column.max_length:
                raise ValueError(f"is longer than {column.max_length} characters")
            return text
        if kind in ("int", "number"):
            value = self._scaled(source, parse_number(text))
            if kind == "int":
                if not value.is_integer():
                    raise ValueError(f"{text!r} is not a whole number")
                value = int(value)
            if column.minimum is not None and value < column.minimum:
                raise ValueError(f"must be at least {column.minimum:g}")
            return value
        if kind == "bool":
            return parse_bool(text)
        if kind == "date":
            return parse_date(text, self.ctx.order)
        if kind == "datetime":
            return parse_datetime(text, self.ctx.order)
        if kind == "country":
            return parse_country(text)
        if kind == "choice":
            found = self.choices[column.name].get(fold(text))
            if found is None:
                raise unknown(column.name.replace("_", " "), text, column.choices)
            return found
        if kind == "list":
            return parse_list(text)
        if kind == "user":
            return lookups.user(text)
        if kind in ("company", "contact", "deal", "product", "lost_reason", "pipeline"):
            return getattr(lookups, kind)(text)
        return self.importer.parse_cell(self.ctx, column, text)  # the entity's own kinds (industry, team, stage)

    def _custom(self, key: str, source: str, text: str) -> Any:
        field = self.ctx.custom_fields[key]
        kind = FieldType(field.field_type)
        if kind == FieldType.DATE:
            return parse_value(field, parse_date(text, self.ctx.order))
        if kind == FieldType.NUMBER:
            return parse_value(field, self._scaled(source, parse_number(text)))
        return parse_value(field, text)
