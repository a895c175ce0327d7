"""Model versions on disk, and which one is live.

Each trained model is a folder `<models_dir>/<name>/<version>/` holding `model.joblib` (the fitted object) and
`metadata.json`: library versions, data window and row counts, features, the split used, metrics against
baselines, the data hash, and whether it became the champion (and why, or why not). `<name>/champion.json` names
the live version. A new version is promoted only if it is at least as good as the champion on the new version's
own holdout; otherwise it stays a challenger and its metadata says why.

Only this application writes these folders; joblib files are pickles, so never point models_dir at files from
anyone else.
"""
import hashlib
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import joblib

from crm.config import get_settings
from crm.errors import NotFound, ValidationFailed

LIBRARIES = ("scikit-learn", "numpy", "pandas", "scipy", "joblib")
NAMES = ("win", "cross-sell", "lead")


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    path: Path
    metadata: dict

    def load(self) -> Any:
        return joblib.load(self.path / "model.joblib")


@dataclass(frozen=True)
class Promotion:
    promoted: bool
    reason: str
    champion_score: float | None  # the old champion on the new version's holdout (None: there was none)
    candidate_score: float


def _root(name: str, root: Path | None) -> Path:
    if name not in NAMES:
        raise ValidationFailed("model", f"unknown model {name!r}; use one of {', '.join(NAMES)}")
    return (root or get_settings().models_dir) / name


def data_hash(*parts: Any) -> str:
    """A short fingerprint of the training data (pass arrays or frames' bytes, or their repr)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else repr(part).encode())
    return digest.hexdigest()[:16]


def library_versions() -> dict[str, str]:
    return {"python": platform.python_version(), **{lib: package_version(lib) for lib in LIBRARIES}}


def register(name: str, model: Any, metadata: dict, *, root: Path | None = None,
             now: datetime | None = None) -> ModelVersion:
    """Store a trained model as a new version (not yet promoted)."""
    now = now or datetime.now(UTC)
    folder = _root(name, root)
    version = f"{now:%Y%m%dT%H%M%S%f}"
    path = folder / version
    path.mkdir(parents=True, exist_ok=False)
    joblib.dump(model, path / "model.joblib")
    full = {"name": name, "version": version, "trained_at": now.isoformat(), "libraries": library_versions(),
            "status": "challenger", **metadata}
    (path / "metadata.json").write_text(json.dumps(full, indent=2, default=str), encoding="utf-8")
    return ModelVersion(name, version, path, full)


def versions(name: str, *, root: Path | None = None) -> list[ModelVersion]:
    """Every stored version, newest first."""
    folder = _root(name, root)
    if not folder.exists():
        return []
    found = [ModelVersion(name, p.name, p, json.loads((p / "metadata.json").read_text(encoding="utf-8")))
             for p in folder.iterdir() if (p / "metadata.json").is_file()]
    return sorted(found, key=lambda v: v.version, reverse=True)


def champion(name: str, *, root: Path | None = None) -> ModelVersion | None:
    pointer = _root(name, root) / "champion.json"
    if not pointer.is_file():
        return None
    live = json.loads(pointer.read_text(encoding="utf-8"))["version"]
    found = [v for v in versions(name, root=root) if v.version == live]
    if not found:
        raise NotFound(f"champion.json of {name!r} names version {live}, which is not on disk")
    return found[0]


def promote_if_better(candidate: ModelVersion, *, metric: str, candidate_score: float,
                      score_champion: Callable[[Any], float], higher_is_better: bool = True,
                      root: Path | None = None) -> Promotion:
    """Promote `candidate` if there is no champion, or if it scores at least as well as the champion does on the
    candidate's holdout (`score_champion(champion_model)` computes that). Records the outcome in its metadata."""
    current = champion(candidate.name, root=root)
    if current is None:
        result = Promotion(True, "no champion yet", None, candidate_score)
    else:
        old = score_champion(current.load())
        better = candidate_score >= old if higher_is_better else candidate_score <= old
        verdict = "at least as good as" if better else "worse than"
        result = Promotion(better, f"{metric} {candidate_score:.4f} is {verdict} the champion's {old:.4f} "
                                   f"({current.version}) on the same holdout", old, candidate_score)
    _record(candidate, result, metric)
    if result.promoted:
        pointer = _root(candidate.name, root) / "champion.json"
        pointer.write_text(json.dumps({"version": candidate.version, "promoted_at": datetime.now(UTC).isoformat(),
                                       "reason": result.reason}, indent=2), encoding="utf-8")
    return result


def _record(candidate: ModelVersion, result: Promotion, metric: str) -> None:
    candidate.metadata.update(status="champion" if result.promoted else "challenger",
                              promotion={"metric": metric, "reason": result.reason,
                                         "champion_score": result.champion_score,
                                         "candidate_score": result.candidate_score})
    (candidate.path / "metadata.json").write_text(json.dumps(candidate.metadata, indent=2, default=str),
                                                  encoding="utf-8")
