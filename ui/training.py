"""Retraining from the models page: `python -m crm train NAME` in a child process, never in a page render. The page
polls the child and shows its progress; one run per model at a time in this server."""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from crm.config import ROOT, get_settings


@dataclass
class Run:
    model: str
    process: subprocess.Popen
    log: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def summary(self) -> dict | None:
        """The JSON summary the command printed, once it has finished successfully."""
        if self.running or self.process.returncode != 0:
            return None
        text = self.output()
        start = text.find("{")
        try:
            return json.loads(text[start:]) if start >= 0 else None
        except json.JSONDecodeError:
            return None


_runs: dict[str, Run] = {}
_lock = threading.Lock()


def start(model: str) -> Run:
    """Start training `model` unless a run of it is already going; returns the run."""
    with _lock:
        current = _runs.get(model)
        if current is not None and current.running:
            return current
        log = Path(tempfile.mkdtemp(prefix=f"crm-train-{model}-")) / "train.log"
        env = {**os.environ, "CRM_DATABASE_URL": get_settings().database_url,
               "CRM_MODELS_DIR": str(get_settings().models_dir), "PYTHONPATH": str(ROOT)}
        with log.open("w", encoding="utf-8") as out:
            process = subprocess.Popen([sys.executable, "-m", "crm", "train", model], stdout=out,
                                       stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        _runs[model] = run = Run(model, process, log)
        return run


def current(model: str) -> Run | None:
    return _runs.get(model)
