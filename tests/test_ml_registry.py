"""The model registry: versions on disk with their metadata, the champion pointer, and the promotion rule."""
from datetime import UTC, datetime

import pytest

from crm.errors import ValidationFailed
from crm.ml.registry import champion, promote_if_better, register, versions


def test_a_registered_version_round_trips_with_its_metadata(tmp_path):
    saved = register("win", {"weights": [1, 2, 3]}, {"rows": 10, "split": "time"}, root=tmp_path,
                     now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert (tmp_path / "win" / saved.version / "model.joblib").is_file()
    [again] = versions("win", root=tmp_path)
    assert again.load() == {"weights": [1, 2, 3]}
    assert again.metadata["rows"] == 10 and again.metadata["status"] == "challenger"
    assert set(again.metadata["libraries"]) >= {"python", "scikit-learn", "numpy", "pandas"}
    assert champion("win", root=tmp_path) is None


def test_promotion_needs_at_least_the_champions_score_on_the_same_holdout(tmp_path):
    first = register("win", "model A", {}, root=tmp_path, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert promote_if_better(first, metric="auc", candidate_score=0.70, score_champion=lambda m: 0.0,
                             root=tmp_path).promoted
    assert champion("win", root=tmp_path).version == first.version

    worse = register("win", "model B", {}, root=tmp_path, now=datetime(2026, 1, 2, tzinfo=UTC))
    seen = []
    result = promote_if_better(worse, metric="auc", candidate_score=0.65,
                               score_champion=lambda m: seen.append(m) or 0.72, root=tmp_path)
    assert seen == ["model A"]  # the champion itself was scored on the candidate's holdout
    assert not result.promoted and "worse than the champion's 0.7200" in result.reason
    assert champion("win", root=tmp_path).version == first.version
    assert versions("win", root=tmp_path)[0].metadata["status"] == "challenger"

    tie = register("win", "model C", {}, root=tmp_path, now=datetime(2026, 1, 3, tzinfo=UTC))
    assert promote_if_better(tie, metric="brier", candidate_score=0.20, score_champion=lambda m: 0.20,
                             higher_is_better=False, root=tmp_path).promoted  # as good is good enough
    assert champion("win", root=tmp_path).version == tie.version
    assert versions("win", root=tmp_path)[0].metadata["promotion"]["champion_score"] == 0.20


def test_unknown_model_names_are_refused(tmp_path):
    with pytest.raises(ValidationFailed, match="unknown model"):
        register("churn", object(), {}, root=tmp_path)
