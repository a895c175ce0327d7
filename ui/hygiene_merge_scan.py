"""Duplicate scans started from the data-hygiene page: `python -m crm hygiene find-duplicates` in a child process,
as model training runs, because a scan of the large demo's million contacts takes about a minute and 1.4 GB
(docs/hygiene.md). A page run only starts the child and looks at it; one scan per database and entity at a time
in this server."""
import threading
from dataclasses import dataclass

from crm.config import get_settings
from crm.permissions import Actor
from ui.child_runs import ChildRun, launch


@dataclass
class Scan(ChildRun):
    entity: str = "contact"

    def summary(self) -> dict | None:
        """What the command printed for this entity (crm.hygiene.duplicates.ScanSummary), once it succeeded."""
        return next((s for s in self.printed_json("[") or [] if s.get("entity") == self.entity), None)


_scans: dict[tuple[str, str], Scan] = {}
_lock = threading.Lock()


def _key(entity: str) -> tuple[str, str]:
    return get_settings().database_url, entity


def start(entity: str, actor: Actor) -> Scan:
    """Start scanning `entity` as `actor` unless a scan of it is already running; returns the scan."""
    with _lock:
        current = _scans.get(_key(entity))
        if current is not None and current.running:
            return current
        _scans[_key(entity)] = scan = launch(
            Scan, ["hygiene", "find-duplicates", "--entity", entity, "--as", actor.email], entity=entity,
            name=f"duplicates-{entity}", env={"CRM_DATABASE_URL": get_settings().database_url})
        return scan


def current(entity: str) -> Scan | None:
    """The latest scan of `entity` this server started on the current database, running or finished."""
    return _scans.get(_key(entity))
