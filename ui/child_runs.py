"""Long work a page starts in a child process (`python -m crm …`), never in a page render: model training and
duplicate scans. The server keeps each run in memory; pages poll it on their reruns and read what it printed."""
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from crm.clock import utcnow
from crm.config import ROOT

R = TypeVar("R", bound="ChildRun")


@dataclass
class ChildRun:
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
        """Seconds since the start, or the run time of a finished run."""
        return (self.ended or time.monotonic()) - self.started

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def printed_json(self, opener: str) -> Any | None:
        """The JSON the command printed last, from the first `opener` ("{" or "["), once it succeeded."""
        if self.running or self.process.returncode != 0:
            return None
        text = self.output()
        start = text.find(opener)
        try:
            return json.loads(text[start:]) if start >= 0 else None
        except json.JSONDecodeError:
            return None

    def failure(self) -> str | None:
        """The last line the command wrote, if it failed."""
        if self.running or self.process.returncode == 0:
            return None
        return (self.output().strip().splitlines() or [f"exit code {self.process.returncode}"])[-1][:300]


def launch(kind: type[R], args: list[str], *, env: dict[str, str], name: str, **fields) -> R:
    """Start `python -m crm ARGS` with these environment variables added, its output in a temporary log."""
    log = Path(tempfile.mkdtemp(prefix=f"crm-{name}-")) / "run.log"
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen([sys.executable, "-m", "crm", *args], stdout=out, stderr=subprocess.STDOUT,
                                   cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env})
    return kind(process=process, log=log, **fields)
