"""Bulk writes for the demo: column frames with explicit ids, chunked inserts, one transaction.

Every foreign key in a frame is checked against the ids already written (or already in the database) before
its rows go in. On SQLite the load then switches off what costs most per row, and checks it once instead:
foreign keys are not looked up row by row (the frames were checked above); CHECK constraints are skipped
while inserting, because SQLite builds a temporary table for every `IN (...)` list on every row, and each
CHECK is verified once over the whole table before the commit; and secondary indexes are dropped and rebuilt
at the end, because a sorted build is several times faster than a b-tree insert per row. Values go to the
driver already in SQLAlchemy's storage format, since per-value type processing costs more than the insert.
On PostgreSQL the ordinary typed Core insert is used, and the id sequences are moved past the explicit ids.
"""
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC

import numpy as np
from sqlalchemy import JSON, CheckConstraint, Connection, Engine, Table, select, text

from crm.demo.context import DAY, Progress, as_datetime

Frame = dict[str, object]  # column -> numpy array (datetime64 for times, masked for NULLs), list, or a constant
CHUNK = 50_000
_LOAD_PRAGMAS = {"synchronous": "OFF", "cache_size": "-524288", "temp_store": "MEMORY",
                 "ignore_check_constraints": "ON", "foreign_keys": "OFF"}


def stamp(frame: Frame, created: np.ndarray, updated: np.ndarray | None = None) -> Frame:
    """Add the columns every table shares."""
    frame["created_at"] = as_datetime(created)
    frame["updated_at"] = frame["created_at"] if updated is None else as_datetime(updated)
    frame["version"] = 1
    return frame


class BulkWriter:
    """Inserts frames table by table and counts what it wrote."""

    def __init__(self, conn: Connection, progress: Progress | None):
        self.conn = conn
        self.progress = progress
        self.sqlite = conn.dialect.name == "sqlite"
        self.counts: dict[str, int] = {}
        self.tables: list[Table] = []
        self.ids: dict[str, np.ndarray] = {}  # sorted ids per table, for the foreign-key checks
        self.dropped: list[str] = []  # CREATE INDEX statements to run once everything is in

    def write(self, table: Table, frame: Frame) -> None:
        """Insert every row of the frame, in chunks, reporting progress per chunk."""
        columns = _columns(table, frame)
        self._check_references(table, frame)
        before = self._known_ids(table)
        if self.sqlite and table not in self.tables:
            self.dropped += _drop_indexes(self.conn, table)
        n = len(frame["id"])
        statement = _insert_sql(self.conn, table, columns) if self.sqlite else table.insert()
        for lo in range(0, n, CHUNK):
            hi = min(lo + CHUNK, n)
            rows = list(zip(*self._chunk(table, frame, columns, lo, hi)))
            if self.sqlite:
                self.conn.exec_driver_sql(statement, rows)
            else:
                self.conn.execute(statement, [dict(zip(columns, row)) for row in rows])
            if self.progress is not None:
                self.progress(table.name, hi, n)
        self.counts[table.name] = self.counts.get(table.name, 0) + n
        self.ids[table.name] = np.union1d(before, np.asarray(frame["id"]))
        if table not in self.tables:
            self.tables.append(table)

    def _check_references(self, table: Table, frame: Frame) -> None:
        """Every foreign key in the frame must name a row that exists (or, for self-references, is in the frame)."""
        for key in table.foreign_keys:
            values = frame.get(key.parent.name)
            if not isinstance(values, np.ndarray):
                continue
            present = values.compressed() if np.ma.isMaskedArray(values) else values
            target = key.column.table
            known = self._known_ids(target)
            if target is table:
                known = np.union1d(known, np.asarray(frame["id"]))
            at = np.minimum(np.searchsorted(known, present), max(len(known) - 1, 0))
            missing = int(np.count_nonzero(known[at] != present)) if len(known) else len(present)
            if missing:
                raise RuntimeError(f"{table.name}.{key.parent.name}: {missing} values name no {target.name} row")

    def _known_ids(self, table: Table) -> np.ndarray:
        if table.name not in self.ids:
            stored = self.conn.execute(select(table.c.id)).scalars().all() if "id" in table.c else []
            self.ids[table.name] = np.sort(np.array(stored, dtype=np.int64))
        return self.ids[table.name]

    def _chunk(self, table: Table, frame: Frame, columns: list[str], lo: int, hi: int) -> list[list]:
        converted: dict[int, list] = {}  # created_at and updated_at are often one array: convert it once
        out = []
        for name in columns:
            values = frame[name]
            if id(values) not in converted:
                converted[id(values)] = self._convert(table.c[name].type, values, lo, hi)
            out.append(converted[id(values)])
        return out

    def _convert(self, column_type, values, lo: int, hi: int) -> list:
        if not isinstance(values, (np.ndarray, list)):
            return [values] * (hi - lo)
        part = values[lo:hi]
        if isinstance(part, np.ndarray) and part.dtype.kind == "M":
            return _sqlite_times(part) if self.sqlite else _python_times(part)
        out = part.tolist() if isinstance(part, np.ndarray) else list(part)
        if self.sqlite and isinstance(column_type, JSON):
            out = _dump_json(column_type.dialect_impl(self.conn.dialect).bind_processor(self.conn.dialect), out)
        return out


def _dump_json(dump, values: list) -> list:
    """SQLAlchemy's own serialiser, run once per distinct object (frames share lists such as interests)."""
    done: dict[int, str] = {}
    out = []
    for value in values:
        text_value = done.get(id(value))
        if text_value is None:
            text_value = done[id(value)] = dump(value)
        out.append(text_value)
    return out


def _columns(table: Table, frame: Frame) -> list[str]:
    unknown = set(frame) - set(table.c.keys())
    missing = [c.name for c in table.columns if not c.nullable and c.name not in frame]
    if unknown or missing:
        raise ValueError(f"{table.name}: unknown columns {sorted(unknown)}, missing required columns {missing}")
    return [c.name for c in table.columns if c.name in frame]


def _insert_sql(conn: Connection, table: Table, columns: list[str]) -> str:
    quote = conn.dialect.identifier_preparer.quote
    return (f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join('?' * len(columns))})")


def _python_times(values: np.ndarray) -> list:
    if values.dtype == np.dtype("datetime64[D]"):
        return values.tolist()  # date objects, None for NaT
    return [None if v is None else v.replace(tzinfo=UTC) for v in values.astype("datetime64[us]").tolist()]


_TENS = (48 + np.arange(100) // 10).astype(np.uint8)
_ONES = (48 + np.arange(100) % 10).astype(np.uint8)
_TEMPLATE = np.frombuffer(b"0000-00-00 00:00:00.000000\n", dtype=np.uint8)


def _sqlite_times(values: np.ndarray) -> list:
    """Text exactly as SQLAlchemy's SQLite DATE/DATETIME write it, so string comparisons in SQL keep working."""
    missing = np.isnat(values)
    if missing.all():
        return [None] * len(values)
    days, clock = np.divmod(np.where(missing, 0, values.astype("datetime64[s]").astype(np.int64)), DAY)
    day = days.astype("datetime64[D]")
    month = day.astype("datetime64[M]")
    year = day.astype("datetime64[Y]").astype(np.int64) + 1970
    fields = [(0, year // 100), (2, year % 100), (5, month.astype(np.int64) % 12 + 1),
              (8, (day - month).astype(np.int64) + 1), (11, clock // 3600), (14, clock // 60 % 60), (17, clock % 60)]
    width = 10 if values.dtype == np.dtype("datetime64[D]") else 26
    template = np.r_[_TEMPLATE[:width], _TEMPLATE[-1:]]
    # One row per character, so every write below is contiguous; a newline ends each value for the split.
    out = np.repeat(template[:, None], len(values), axis=1)
    for at, value in fields[:4] if width == 10 else fields:
        out[at], out[at + 1] = _TENS[value], _ONES[value]
    result: list = out.T.tobytes().decode("ascii").split("\n")[:-1]
    for i in np.flatnonzero(missing).tolist():
        result[i] = None
    return result


@contextmanager
def bulk_load(engine: Engine, progress: Progress | None) -> Iterator[BulkWriter]:
    """One transaction for the whole load; commits only if every row and every constraint is good."""
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        saved = _set_pragmas(conn, _LOAD_PRAGMAS) if sqlite else {}
        try:
            with conn.begin():
                writer = BulkWriter(conn, progress)
                yield writer
                _rebuild_indexes(conn, writer.dropped, progress)
                if sqlite:
                    _verify_checks(conn, writer.tables)
                else:
                    _advance_sequences(conn, writer.tables)
        finally:
            if sqlite:
                _set_pragmas(conn, saved)


def _set_pragmas(conn: Connection, pragmas: dict[str, str]) -> dict[str, str]:
    """Set connection pragmas outside any transaction; returns the previous values."""
    raw = conn.connection.driver_connection
    before = {name: str(raw.execute(f"PRAGMA {name}").fetchone()[0]) for name in pragmas}
    for name, value in pragmas.items():
        raw.execute(f"PRAGMA {name} = {value}")
    return before


def _drop_indexes(conn: Connection, table: Table) -> list[str]:
    """Drop the table's secondary indexes; returns their CREATE statements for the rebuild.

    Even an index whose keys arrive in order costs a b-tree insert per row; rebuilding it later is cheaper.
    """
    quote = conn.dialect.identifier_preparer.quote
    rows = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                                "AND tbl_name = ? ORDER BY name", (table.name,)).all()
    for name, _ in rows:
        conn.exec_driver_sql(f"DROP INDEX {quote(name)}")
    return [sql for _, sql in rows]


def _rebuild_indexes(conn: Connection, statements: list[str], progress: Progress | None) -> None:
    for done, statement in enumerate(statements, start=1):
        conn.exec_driver_sql(statement)
        if progress is not None:
            progress("indexes", done, len(statements))


def _verify_checks(conn: Connection, tables: list[Table]) -> None:
    """Evaluate every CHECK constraint over its whole table, one scan per table."""
    quote = conn.dialect.identifier_preparer.quote
    for table in tables:
        checks = [c for c in table.constraints if isinstance(c, CheckConstraint)]
        if not checks:
            continue
        counts = ", ".join(f"sum(CASE WHEN NOT ({c.sqltext.text}) THEN 1 ELSE 0 END)" for c in checks)
        broken = conn.exec_driver_sql(f"SELECT {counts} FROM {quote(table.name)}").one()
        for check, bad in zip(checks, broken):
            if bad:
                raise RuntimeError(f"demo data breaks CHECK {check.name} on {table.name} in {bad} rows")


def _advance_sequences(conn: Connection, tables: list[Table]) -> None:
    """Explicit ids leave PostgreSQL's sequences behind; move each past its table's largest id."""
    for table in (t for t in tables if "id" in t.c and t.c.id.autoincrement):
        conn.execute(text(f"SELECT setval(pg_get_serial_sequence(:name, 'id'), m) "
                          f"FROM (SELECT max(id) AS m FROM {conn.dialect.identifier_preparer.quote(table.name)}) s "
                          f"WHERE m IS NOT NULL"), {"name": table.name})
