"""Import use cases: run an import (or a dry run), list the job history, fetch a job's error file."""
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import select
from sqlmodel import Session

from crm.audit import bump_data_version
from crm.config import ROOT
from crm.db import is_sqlite
from crm.errors import NotFound, ValidationFailed
from crm.exporting import frame_to_csv
from crm.imports.columns import COLUMNS
from crm.imports.context import Context, Problem, Row
from crm.imports.customvalues import prepare_custom_fields
from crm.imports.dates import DateOrder, combine_orders, detect_date_order
from crm.imports.engine import Pipeline, Progress, importer_for
from crm.imports.lookups import Lookups
from crm.imports.mapping import (
    Mapping, check_mapping, custom_field_choices, detect_order, existing_custom_fields, infer_type, suggest_mapping,
)
from crm.imports.reading import Table, read_table
from crm.imports.rows import RowParser
from crm.imports.writing import Writer
from crm.clock import utcnow
from crm.models import ImportJob, User
from crm.permissions import Actor, require

ERROR_DIR = ROOT / "data" / "imports"
ERROR_COLUMNS = ["row", "column", "value", "reason"]
_NEEDS_EXTERNAL_ID = {"deals", "orders", "activities", "tickets"}


@dataclass
class ImportSummary:
    """What an import did (or, for a dry run, would do). `problems` lists every rejected row's reasons."""
    job_id: int
    entity: str
    filename: str
    dry_run: bool
    rows: int
    created: int
    updated: int
    unchanged: int
    rejected: int
    error_file: str | None
    problems: list[Problem] = field(default_factory=list)
    preview: list[dict] = field(default_factory=list)
    also_created: dict[str, int] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    date_order: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_json(self) -> dict:
        """The CLI's summary: counts, the job id and the error file, without the per-row lists."""
        data = asdict(self)
        data.pop("problems"), data.pop("preview")
        return {"job_id": self.job_id, **data}

    def problems_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(p) for p in self.problems], columns=ERROR_COLUMNS)


def preview_mapping(*, session: Session, entity: str, source: Path | str | bytes, filename: str | None = None
                    ) -> tuple[Table, Mapping]:
    """Read a file and suggest its mapping (what the page shows before anything is imported)."""
    table = read_table(source, filename=filename)
    importer_for(entity)
    fields = existing_custom_fields(session, entity)
    return table, suggest_mapping(entity, table.headers, custom_keys={k: f.label for k, f in fields.items()})


@dataclass
class FilePreview:
    """What the page needs to show a file's mapping form: its columns, a sample, and the suggestions."""
    rows: int
    headers: list[str]
    sample: list[list[str]]
    suggestion: Mapping
    inferred: dict[str, str]  # column -> the custom field type its values fit
    date_order: str | None  # detected for the suggested mapping; None when the dates are ambiguous
    custom_fields: dict[str, str]  # key -> label of the fields this actor may fill
    column_orders: dict[str, str | None] = field(default_factory=dict)  # date order each column's values show

    def detected_order(self, date_columns: list[str]) -> str | None:
        """The date order these columns show together (ISO when there are none); None when undecidable."""
        orders = [DateOrder(o) if o else None for o in (self.column_orders.get(c) for c in date_columns)]
        found = combine_orders(orders)
        return str(found) if found else None


def preview_file(*, session: Session, actor: Actor, entity: str, source: Path | str | bytes,
                 filename: str | None = None) -> FilePreview:
    require(actor, "data.import", f"import {entity}")
    table, suggestion = preview_mapping(session=session, entity=entity, source=source, filename=filename)
    order = detect_order(suggestion, table)
    return FilePreview(rows=len(table), headers=table.headers, sample=table.rows[:5], suggestion=suggestion,
                       inferred={h: str(infer_type(table.column(h))) for h in table.headers},
                       date_order=str(order) if order else None,
                       custom_fields=custom_field_choices(session=session, actor=actor, entity=entity),
                       column_orders={h: _order_text(detect_date_order(table.column(h))) for h in table.headers})


def _order_text(order: DateOrder | None) -> str | None:
    return str(order) if order else None


def run_import(*, session: Session, actor: Actor | None, entity: str, source: Path | str | bytes,
               filename: str | None = None, mapping: Mapping | None = None, dry_run: bool = False,
               progress: Progress | None = None, error_dir: Path | None = None) -> ImportSummary:
    """Import a CSV/XLSX file into `entity` in the caller's transaction. actor None is the CLI operator."""
    started = time.perf_counter()
    if actor is not None:
        require(actor, "data.import", f"import {entity}")
    importer = importer_for(entity)
    name = Path(filename or (source if not isinstance(source, bytes) else "upload.csv")).name
    table = read_table(source, filename=name)
    if mapping is None:
        mapping = suggest_mapping(entity, table.headers, custom_keys={
            k: f.label for k, f in existing_custom_fields(session, entity).items()})
    _check(mapping, entity, table, importer.required)
    job = ImportJob(entity=entity, filename=name[:300], dry_run=dry_run, actor_id=actor.id if actor else None,
                    mapping=mapping.model_dump(mode="json"), total_rows=len(table))
    session.add(job)
    session.flush()
    ctx = Context(session=session, actor=actor, mapping=mapping, order=detect_order(mapping, table),
                  lookups=Lookups(session), job_id=job.id, dry_run=dry_run, now=utcnow())
    ctx.writer = writer = Writer(ctx)
    importer.prepare(ctx, writer)
    prepare_custom_fields(ctx, writer, table)
    parser = RowParser(ctx, table.headers, importer)
    rows = _rows(ctx, parser, table, importer)
    with _page_cache(session):
        Pipeline(ctx, importer, parser, writer).run(rows, progress)
        writer.flush()
    summary = _summary(ctx, job, table, mapping, entity, name, started)
    summary.error_file = _write_errors(summary, error_dir or ERROR_DIR)
    _finish(session, job, summary)
    return summary


@contextmanager
def _page_cache(session: Session):
    """On SQLite, a page cache large enough for a big import's index pages (256 MiB at most, allocated as used);
    the default 2 MiB makes every index insert of a 100k-row import read pages from disk again."""
    if not is_sqlite(session):
        yield
        return
    conn = session.connection()
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql("PRAGMA cache_size = -262144")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(before)}")


def _check(mapping: Mapping, entity: str, table: Table, required: tuple[str, ...]) -> None:
    if mapping.entity != entity:
        raise ValidationFailed("mapping", f"this mapping is for {mapping.entity}, not {entity}")
    check_mapping(mapping, table.headers)
    mapped = set(mapping.targets().values())
    missing = [c for c in required if c not in mapped]
    if missing:
        raise ValidationFailed("mapping", f"{entity} need a column for {', '.join(missing)}; map one of the file's "
                                          f"columns ({', '.join(table.headers)}) to it")


def _rows(ctx: Context, parser: RowParser, table: Table, importer) -> list[Row]:
    rows = []
    for raw, number in zip(table.rows, table.numbers):
        row = parser.cells(raw, number)
        if number in table.ragged:
            ctx.reject(row, [("", f"has {table.ragged[number]} cells but the header has {len(table.headers)} "
                                  "columns (a stray delimiter?)")])
            continue
        rows.append(row)
    if importer.self_reference:
        ctx.lookups.pending[importer.self_reference] = {k for r in rows for k in importer.pending_keys(ctx, r)}
    return rows


def _summary(ctx: Context, job: ImportJob, table: Table, mapping: Mapping, entity: str, name: str,
             started: float) -> ImportSummary:
    ignored = [h for h in table.headers if not mapping.columns.get(h)]
    warnings = list(ctx.warnings)
    if entity in _NEEDS_EXTERNAL_ID and "external_id" not in mapping.targets().values():
        warnings.append("no column maps to external_id, so running this file again would create its records again")
    if ctx.order is None:
        warnings.append("the file's dates are ambiguous (day/month or month/day); rows with such dates were "
                        "rejected: set the date order and import again")
    for text, numbers in ctx.notes.items():
        shown = ", ".join(map(str, numbers[:10])) + (", ..." if len(numbers) > 10 else "")
        warnings.append(f"{len(numbers)} rows: {text} (rows {shown})")
    if table.blank_rows:
        warnings.append(f"{table.blank_rows} blank rows were skipped")
    c = ctx.counts
    return ImportSummary(
        job_id=job.id, entity=entity, filename=name, dry_run=ctx.dry_run, rows=len(table), created=c["created"],
        updated=c["updated"], unchanged=c["unchanged"], rejected=c["rejected"], error_file=None,
        problems=sorted(ctx.problems, key=lambda p: p.row), preview=ctx.preview, also_created=dict(ctx.also_created),
        ignored_columns=ignored, date_order=str(ctx.order) if ctx.order else None, warnings=warnings,
        seconds=round(time.perf_counter() - started, 3))


def _write_errors(summary: ImportSummary, folder: Path) -> str | None:
    """The error file: one line per problem (row, column, value, reason), formulas neutralised."""
    if not summary.problems:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"import-{summary.job_id}-errors.csv"
    path.write_bytes(frame_to_csv(summary.problems_frame()))
    return str(path)


def _finish(session: Session, job: ImportJob, summary: ImportSummary) -> None:
    job.created_count, job.updated_count = summary.created, summary.updated
    job.unchanged_count, job.rejected_count = summary.unchanged, summary.rejected
    job.error_file, job.status, job.finished_at = summary.error_file, "done", utcnow()
    job.summary = {k: v for k, v in summary.as_json().items() if k in ("also_created", "ignored_columns",
                                                                       "date_order", "warnings", "seconds")}
    session.flush()
    bump_data_version(session)  # the job history changed, even when no record did


@dataclass
class ImportJobView:
    id: int
    entity: str
    filename: str
    status: str
    dry_run: bool
    actor: str | None
    created: int
    updated: int
    unchanged: int
    rejected: int
    started_at: datetime
    reverted_at: datetime | None
    has_error_file: bool

    @property
    def revertable(self) -> bool:
        return self.status == "done" and not self.dry_run and (self.created or self.updated) > 0


def list_jobs(*, session: Session, actor: Actor, limit: int = 50,
              include_dry_runs: bool = False) -> list[ImportJobView]:
    """The newest import jobs first."""
    require(actor, "data.import", "see the import history")
    stmt = select(ImportJob, User.full_name).join(User, User.id == ImportJob.actor_id, isouter=True)
    if not include_dry_runs:
        stmt = stmt.where(ImportJob.dry_run.is_(False))
    rows = session.execute(stmt.order_by(ImportJob.id.desc()).limit(limit)).all()
    return [ImportJobView(id=j.id, entity=j.entity, filename=j.filename, status=j.status, dry_run=j.dry_run,
                          actor=name or ("command line" if j.actor_id is None else None), created=j.created_count,
                          updated=j.updated_count, unchanged=j.unchanged_count, rejected=j.rejected_count,
                          started_at=j.created_at, reverted_at=j.reverted_at,
                          has_error_file=bool(j.error_file and Path(j.error_file).exists())) for j, name in rows]


def error_file_bytes(*, session: Session, actor: Actor, job_id: int) -> bytes | None:
    """The job's error file (CSV), or None when it rejected nothing."""
    require(actor, "data.import", "download import error files")
    job = session.get(ImportJob, job_id)
    if job is None:
        raise NotFound(f"Import {job_id} does not exist")
    if not job.error_file or not Path(job.error_file).exists():
        return None
    return Path(job.error_file).read_bytes()


def canonical_columns(entity: str) -> list[dict]:
    """The columns an entity accepts, for the page's mapping form and the docs."""
    return [{"name": c.name, "kind": c.kind, "required": c.required, "help": c.help} for c in COLUMNS[entity]]
