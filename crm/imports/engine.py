"""The import pipeline: read, map, parse and validate each row, upsert in chunks, audit, and report every rejection.

One call is one transaction (the caller's session): a committed import lands whole or not at all, and its
import_change rows let revert_import restore exactly the state before it. A bad row never stops its neighbours:
it is rejected with its row number, column and reason, and everything else lands.
"""
import gc
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select

from crm.errors import ValidationFailed
from crm.imports.context import Context, Row, RowRejected
from crm.imports.customvalues import current_values, write_custom
from crm.imports.entities import IMPORTERS
from crm.imports.entities.base import Importer
from crm.imports.lookups import Deferred
from crm.imports.phones import phone_checks
from crm.imports.rows import RowParser
from crm.imports.writing import Writer, bulk_insert
from crm.models import SearchToken
from crm.search import reindex

Progress = Callable[[int, int], None]
CHUNK = 1000
PREVIEW_ROWS = 200


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, datetime) and isinstance(new, datetime):
        return old == new
    if isinstance(old, float) or isinstance(new, float):
        return old is not None and new is not None and float(old) == float(new)
    if isinstance(old, date) and isinstance(new, date):
        return old == new
    return old == new


class Pipeline:
    """Drives one importer over the rows of one file."""

    def __init__(self, ctx: Context, importer: Importer, parser: RowParser, writer: Writer):
        self.ctx, self.importer, self.parser, self.writer = ctx, importer, parser, writer
        self.seen: dict[tuple[str, str], int] = {}  # upsert key -> the row that used it first
        self.rejected_refs: dict[str, int] = {}  # folded identifier of a rejected row -> its number
        self.created: dict[int, int] = {}  # record id (or dry-run placeholder) -> the row that created it

    def run(self, rows: list[Row], progress: Progress | None) -> None:
        # The cyclic garbage collector would walk the many small dicts a large import makes, again and again,
        # although they form no cycles; it is paused for the run (reference counting still frees everything).
        paused = gc.isenabled()
        gc.disable()
        if self.importer.record == "contact":
            self.ctx.phones = phone_checks(rows, self.ctx.mapping.targets())
        try:
            self._run(rows, progress)
        finally:
            if self.ctx.phones is not None:
                self.ctx.phones.close()
                self.ctx.phones = None
            if paused:
                gc.enable()

    def _run(self, rows: list[Row], progress: Progress | None) -> None:
        total, done, deferred = len(rows), 0, []
        for lo in range(0, total, CHUNK):
            chunk = rows[lo:lo + CHUNK]
            deferred += self.chunk(chunk)
            done += len(chunk)
            if progress:
                progress(done - len(deferred), total)
        while deferred:
            before = len(deferred)
            deferred = self.chunk(deferred)
            if len(deferred) == before:  # no progress: the rows they refer to are not coming
                self.ctx.lookups.pending.clear()
                deferred = self.chunk(deferred)
        if progress:
            progress(total, total)

    def _reject(self, row: Row, problems: list[tuple[str, str]]) -> None:
        self.ctx.reject(row, problems)
        for key in self.importer.pending_keys(self.ctx, row):
            self.rejected_refs.setdefault(key, row.number)

    def chunk(self, rows: list[Row]) -> list[Row]:
        """Import a chunk; returns the rows deferred until the rows they refer to are in."""
        ctx, importer, deferred, ready = self.ctx, self.importer, [], []
        self._prefetch(rows)
        for row in rows:
            row.values, row.custom = {}, {}
            try:
                self.parser.parse(row)
                row.keys = importer.keys(ctx, row)
                ready.append(row)
            except Deferred:
                deferred.append(row)
            except RowRejected as exc:
                self._reject(row, self._explain(exc.problems))
            except ValidationFailed as exc:
                self._reject(row, [(exc.field, exc.reason)])
        matched = self._match(ready)
        creates, updates = [], []
        for row in ready:
            try:
                action = self._plan(row, matched)
            except Deferred:
                deferred.append(row)
                continue
            except RowRejected as exc:
                self._reject(row, self._explain(exc.problems))
                continue
            except ValidationFailed as exc:
                self._reject(row, [(exc.field, exc.reason)])
                continue
            (creates if action == "create" else updates if action == "update" else []).append(row)
        self._write(creates, updates)
        return deferred

    def _explain(self, problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Add why an unknown reference is unknown when the row it names was rejected in this file."""
        out = []
        for column, reason in problems:
            for key, number in self.rejected_refs.items():
                if f"{key!r}" in reason.casefold() and reason.startswith("unknown"):
                    reason += f"; row {number} of this file, which would have created it, was rejected"
                    break
            out.append((column, reason))
        return out

    def _prefetch(self, rows: list[Row]) -> None:
        lookups, targets = self.ctx.lookups, self.ctx.mapping.targets()
        for source, target in targets.items():
            if target in ("contact", "deal"):
                lookups.prefetch(target, (r.cells.get(source, "") for r in rows))

    def _match(self, rows: list[Row]) -> dict[int, dict]:
        """Find the stored records the rows' keys name; rows naming two different records are rejected."""
        wanted: dict[str, set[str]] = {}
        for row in rows:
            for kind, value in row.keys:
                wanted.setdefault(kind, set()).add(value)
        ids = self.importer.match(self.ctx, wanted) if wanted else {}
        table = self.importer.model.__table__
        stored: dict[int, dict] = {}
        wanted_ids = sorted(set(ids.values()) - {i for i in ids.values() if i < 0})
        for lo in range(0, len(wanted_ids), 500):
            stmt = select(table).where(table.c.id.in_(wanted_ids[lo:lo + 500]))
            stored.update({r["id"]: dict(r) for r in self.ctx.session.execute(stmt).mappings()})
        for row in rows:
            found = list(dict.fromkeys(ids[k] for k in row.keys if k in ids))
            row.existing = None
            if len(found) > 1:
                kinds = [k for k, _ in row.keys]
                row.extra["conflict"] = (kinds, found)
            elif found:
                row.existing = stored.get(found[0]) or {"id": found[0], "version": 1}
        self._custom = current_values(self.ctx, list(stored))
        self.importer.load_related(self.ctx, list(stored))
        return stored

    def _plan(self, row: Row, matched: dict[int, dict]) -> str:
        ctx = self.ctx
        if "conflict" in row.extra:
            kinds, found = row.extra.pop("conflict")
            records = ", ".join(map(str, found))
            raise RowRejected([(kinds[0], f"its {' and '.join(kinds)} match different records ({records}); "
                                          "fix the file or the records first")])
        for key in row.keys:
            if key in self.seen:
                raise RowRejected([(key[0], f"same {key[0].replace('_', ' ')} as row {self.seen[key]}; "
                                            "each record may appear once per file")])
        row.final = self.importer.build(ctx, row)
        for key in row.keys:
            self.seen[key] = row.number
        if row.existing is None:
            ctx.counts["created"] += 1
            self._preview(row, "create")
            return "create"
        if row.existing["id"] in self.created:  # another key of a record an earlier row created
            raise RowRejected([(row.keys[0][0], f"names the same record as row {self.created[row.existing['id']]}; "
                                                "each record may appear once per file")])
        row.extra["changes"] = {f: v for f, v in row.final.items() if not _same(row.existing.get(f), v)}
        old = self._custom.get(row.existing["id"], {})
        row.extra["custom_changes"] = {k: v for k, v in row.custom.items() if not _same(old.get(k), v)}
        if row.extra["changes"] or row.extra["custom_changes"] or row.extra.get("dependants_changed"):
            ctx.counts["updated"] += 1
            self._preview(row, "update")
            return "update"
        ctx.counts["unchanged"] += 1
        return "unchanged"

    def _preview(self, row: Row, action: str) -> None:
        if len(self.ctx.preview) >= PREVIEW_ROWS:
            return
        if action == "create":
            what = ", ".join(f"{k}={v}" for k, v in row.final.items()
                             if v not in (None, "", [], {}) and k != "name_key")
        else:
            what = "; ".join(f"{k}: {row.existing.get(k)!r} → {v!r}" for k, v in row.extra["changes"].items()
                             if k not in self.importer.skip_audit)
            what += "".join(f"; {k}: → {v!r}" for k, v in row.extra["custom_changes"].items())
        self.ctx.preview.append({"row": row.number, "action": action, "record": self.importer.label(row.final),
                                 "details": what[:500]})

    def _write(self, creates: list[Row], updates: list[Row]) -> None:
        ctx, importer, writer = self.ctx, self.importer, self.writer
        ids = writer.insert(importer.model, [r.final for r in creates], entity=importer.record)
        for row, record_id in zip(creates, ids):
            row.record_id = record_id
            self.created[record_id] = row.number
            importer.register(ctx, row)
        for row in updates:
            row.record_id = row.existing["id"]
        writer.update(importer.model, importer.record,
                      [(r.existing, r.extra["changes"], r.existing["version"] + 1) for r in updates],
                      skip_audit=importer.skip_audit)
        write_custom(ctx, writer, importer.record, creates, updates, self._custom)
        importer.dependants(ctx, writer, creates, updates)
        writer.flush()
        if importer.search and not ctx.dry_run:
            self._index(creates, updates)

    def _index(self, creates: list[Row], updates: list[Row]) -> None:
        """Search tokens: new records get crm.search's tokens in one bulk insert (reindex would read each row back
        and insert through the ORM, the slowest step of a large import); updated records go through reindex."""
        session, entity = self.ctx.session, self.importer.search
        if creates:
            ids = [r.record_id for r in creates]
            session.execute(delete(SearchToken).where(SearchToken.entity == entity, SearchToken.record_id.in_(ids)))
            # In key order: each B-tree page is then visited once per chunk instead of once per token.
            tokens = sorted((t, r.record_id) for r in creates for t in self.importer.search_tokens(r.final))
            bulk_insert(session, SearchToken.__table__,
                        [{"entity": entity, "record_id": record_id, "token": t} for t, record_id in tokens])
        if updates:
            reindex(session, entity, [r.record_id for r in updates])


def importer_for(entity: str) -> Importer:
    if entity not in IMPORTERS:
        raise ValidationFailed("entity", f"unknown entity {entity!r}; use one of {', '.join(IMPORTERS)}")
    return IMPORTERS[entity]()
