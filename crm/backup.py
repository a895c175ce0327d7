"""Online backup and exact restore of a SQLite CRM, through SQLite's backup API."""
import sqlite3
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from crm.clock import utcnow
from crm.errors import CRMError


def sqlite_path(engine: Engine) -> Path:
    url = make_url(str(engine.url))
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        raise CRMError("backup and restore work on a SQLite file; for PostgreSQL use pg_dump and pg_restore")
    return Path(url.database)


def backup_database(engine: Engine, target: Path) -> Path:
    """Copy the live database to `target` page by page; writers may keep working meanwhile."""
    source = sqlite_path(engine)
    if not source.exists():
        raise CRMError(f"there is no database at {source}; run `python -m crm init` first")
    target = Path(target)
    if target.exists():
        raise CRMError(f"{target} already exists; choose a new file name so no backup is overwritten")
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    dst.close()
    return target


def _check_is_crm_backup(path: Path) -> None:
    if not path.exists():
        raise CRMError(f"no backup file at {path}")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise CRMError(f"{path} is not a SQLite database ({exc})") from None
    if not {"alembic_version", "app_user", "contact"} <= tables:
        raise CRMError(f"{path} is a SQLite file but not a CRM backup (no CRM tables in it)")
    if ok != "ok":
        raise CRMError(f"{path} failed SQLite's integrity check: {ok}")


def restore_database(engine: Engine, source: Path) -> Path | None:
    """Replace the live database with a backup, keeping a safety copy of what was there. Returns that copy."""
    source = Path(source)
    _check_is_crm_backup(source)
    live = sqlite_path(engine)
    safety = None
    if live.exists():
        safety = live.parent / "backups" / f"before-restore-{utcnow():%Y%m%dT%H%M%S%f}.db"
        backup_database(engine, safety)
    engine.dispose()
    live.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(live) as dst:
        src.backup(dst)
    dst.close()
    return safety
