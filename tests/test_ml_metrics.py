"""The shared model metrics, on cases worked out by hand."""
import numpy as np
import pytest

from crm.ml.metrics import auc, ece, probability_metrics, ranking_metrics, reliability


def test_a_perfectly_calibrated_holdout_has_an_ece_near_zero():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=200_000)
    y = rng.uniform(size=p.size) < p  # each row wins with exactly its stated probability
    assert ece(y, p) < 0.01
    assert ece(y, np.full(p.size, 0.9)) == pytest.approx(0.4, abs=0.01)  # always 90 %, wins half the time


def test_reliability_bins_hold_mean_prediction_observed_rate_and_count():
    rows = reliability([0, 1, 1, 0], [0.05, 0.15, 0.95, 0.92])
    assert rows == [{"bin": 0, "predicted": 0.05, "observed": 0.0, "count": 1},
                    {"bin": 1, "predicted": 0.15, "observed": 1.0, "count": 1},
                    {"bin": 9, "predicted": pytest.approx(0.935), "observed": 0.5, "count": 2}]


def test_auc_is_none_when_the_holdout_has_one_class():
    assert auc([1, 1, 1], [0.2, 0.5, 0.9]) is None
    assert auc([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8]) == 1.0


def test_probability_metrics_by_hand():
    m = probability_metrics([0, 1], [0.2, 0.6])
    assert m["brier"] == pytest.approx((0.2 ** 2 + 0.4 ** 2) / 2)
    assert m["log_loss"] == pytest.approx(-(np.log(0.8) + np.log(0.6)) / 2)
    assert (m["base_rate"], m["mean_predicted"], m["rows"]) == (0.5, pytest.approx(0.4), 2)


def test_ranking_metrics_by_hand():
    y = [1, 0, 1, 0, 0, 0, 0, 0, 0, 1]
    p = [0.9, 0.8, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05]
    m = ranking_metrics(y, p, k=3)
    assert (m["precision_at_k"], m["recall_at_k"]) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert m["lift_top_decile"] == pytest.approx(1 / 0.3)  # the top row (1 of 10) is a buyer; base rate 0.3
