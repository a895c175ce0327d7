"""The one engine, session scopes, and the SQLite pragmas that make concurrent writers queue."""
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session, create_engine

from crm.config import get_settings

_READ_ONLY = "crm_read_only"


def make_engine(url: str, *, echo: bool = False, connect_args: dict | None = None) -> Engine:
    """Build an engine; SQLite gets WAL, a busy timeout, foreign keys and IMMEDIATE write transactions."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, connect_args=connect_args or {})
    in_memory = parsed.database in (None, "", ":memory:")
    kwargs: dict = {"connect_args": {"check_same_thread": False, "timeout": get_settings().sqlite_busy_timeout_ms / 1000}}
    if in_memory:
        from sqlalchemy.pool import StaticPool

        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, echo=echo, **kwargs)
    _install_sqlite_hooks(engine, wal=not in_memory)
    return engine


def _install_sqlite_hooks(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Take transaction control away from pysqlite so that we decide how each one begins.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {get_settings().sqlite_busy_timeout_ms}")
        cur.execute("PRAGMA foreign_keys = ON")
        if wal:
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # Writers take the write lock up front, so they queue on busy_timeout instead of failing
        # later with "database is locked" when a read transaction tries to upgrade.
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


@lru_cache
def get_engine() -> Engine:
    return make_engine(get_settings().database_url)


def reset_engine() -> None:
    """Forget the cached engine (tests and the CLI switch databases)."""
    if get_engine.cache_info().currsize:
        get_engine().dispose()
    get_engine.cache_clear()


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A write transaction: commits on success, rolls back on any error."""
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        with session.begin():
            yield session


@contextmanager
def read_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A read-only transaction; on SQLite it does not take the write lock."""
    bind = (engine or get_engine()).execution_options(**{_READ_ONLY: True})
    # Closing the session ends the transaction without expiring what was loaded, so values stay readable.
    with Session(bind, expire_on_commit=False) as session:
        yield session


@contextmanager
def write_scope_beside(session: Session) -> Iterator[Session]:
    """A write transaction of its own on the database `session` reads (for derived data a read finds stale)."""
    with session_scope(session.get_bind().execution_options(**{_READ_ONLY: False})) as writer:
        yield writer


def is_sqlite(session_or_engine) -> bool:
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, Session) else session_or_engine
    return bind.dialect.name == "sqlite"


# Every session keeps the KPI cube up to date in its own transaction (crm/kpis/upkeep.py registers the listeners).
import crm.kpis.upkeep  # noqa: E402,F401  (imported for its listeners)
