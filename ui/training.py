"""Retraining from the models page: `python -m crm train NAME` in a child process, never in a page render. The page
polls the child and shows its progress; one run per model at a time in this server."""
import threading
from dataclasses import dataclass

from crm.config import get_settings
from ui.child_runs import ChildRun, launch


@dataclass
class Run(ChildRun):
    def summary(self) -> dict | None:
        """The JSON summary the command printed, once it has finished successfully."""
        return self.printed_json("{")


_runs: dict[str, Run] = {}
_lock = threading.Lock()


def start(model: str) -> Run:
    """Start training `model` unless a run of it is already going; returns the run."""
    with _lock:
        current = _runs.get(model)
        if current is not None and current.running:
            return current
        settings = get_settings()
        _runs[model] = run = launch(Run, ["train", model], name=f"train-{model}", env={
            "CRM_DATABASE_URL": settings.database_url, "CRM_MODELS_DIR": str(settings.models_dir)})
        return run


def current(model: str) -> Run | None:
    return _runs.get(model)
