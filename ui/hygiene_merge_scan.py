"""Duplicate scans started from the data-hygiene page: `python -m crm hygiene find-duplicates` in a child process,
as model training runs, because a scan of the large demo's million contacts takes about a minute and 1.4 GB
(docs/hygiene.md). A page run only starts the child and looks at it; one scan per database and entity at a time
in this server."""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from crm.clock import utcnow
from crm.config import ROOT, get_settings
from crm.permissions import Actor


@dataclass
class Scan:
    entity: str
    process: subprocess.Popen
    log: Path
    started_at: datetime = field(default_factory=utcnow)
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None  # when a page first saw the process finished

    @property
    def running(self) -> bool:
        if self.process.poll() is None:
            return True
        self.ended = self.ended or time.monotonic()
        return False

    @property
    def elapsed(self) -> float:
        """Seconds since the start, or the run time of a finished scan."""
        return (self.ended or time.monotonic()) - self.started

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def summary(self) -> dict | None:
        """What the command printed for this entity (crm.hygiene.duplicates.ScanSummary), once it succeeded."""
        if self.running or self.process.returncode != 0:
            return None
        text = self.output()
        start = text.find("[")
        try:
            summaries = json.loads(text[start:]) if start >= 0 else []
        except json.JSONDecodeError:
            return None
        return next((s for s in summaries if s.get("entity") == self.entity), None)

    def failure(self) -> str | None:
        """The last line the command wrote, if it failed."""
        if self.running or self.process.returncode == 0:
            return None
        return (self.output().strip().splitlines() or [f"exit code {self.process.returncode}"])[-1][:300]


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
        log = Path(tempfile.mkdtemp(prefix=f"crm-duplicates-{entity}-")) / "scan.log"
        env = {**os.environ, "CRM_DATABASE_URL": get_settings().database_url, "PYTHONPATH": str(ROOT)}
        with log.open("w", encoding="utf-8") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "crm", "hygiene", "find-duplicates", "--entity", entity, "--as", actor.email],
                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        _scans[_key(entity)] = scan = Scan(entity, process, log)
        return scan


def current(entity: str) -> Scan | None:
    """The latest scan of `entity` this server started on the current database, running or finished."""
    return _scans.get(_key(entity))
