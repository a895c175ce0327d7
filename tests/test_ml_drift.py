"""Input drift: the shared population stability index, and the lead card's drift rows end to end."""
import json
from datetime import timedelta

import numpy as np
import pandas as pd
from sqlalchemy import insert

from crm.db import read_scope, session_scope
from crm.ml import registry
from crm.ml.drift import DRIFT_FLAG, DRIFT_SAMPLE, drift_rows, psi, sample_step, summarise
from crm.ml.lead import card as lead_card_module
from crm.ml.lead import lead_card, train_lead
from crm.ml.lead.features import snapshot
from crm.ml.lead.model import readable
from crm.ml.lead.train import DRIFT_FEATURES
from crm.models import BehaviorEvent
from tests.test_ml_lead_model import NOW, world

RNG = np.random.default_rng(7)


def frame(values) -> pd.DataFrame:
    return pd.DataFrame({"x": np.asarray(values, dtype=float)})


def shift_of(train, now) -> dict:
    [row] = drift_rows(summarise(frame(train), ["x"]), frame(now), str.upper)
    return row


# --- the shared helper ----------------------------------------------------------------------------------------------

def test_the_same_population_does_not_drift():
    train = RNG.normal(50, 10, 20_000)
    same = shift_of(train, train)
    assert same == {"feature": "X", "train": round(train.mean(), 3), "now": round(train.mean(), 3), "shift": 0.0,
                    "flag": False}
    another_sample = shift_of(train, RNG.normal(50, 10, DRIFT_SAMPLE))
    assert another_sample["shift"] < 0.02 and not another_sample["flag"]


def test_a_shifted_population_is_flagged_and_a_nudged_one_is_not():
    train = RNG.normal(50, 10, 20_000)
    moved = shift_of(train, RNG.normal(60, 10, DRIFT_SAMPLE))  # one standard deviation up
    assert moved["shift"] > DRIFT_FLAG and moved["flag"] and moved["now"] > moved["train"] + 9
    nudged = shift_of(train, RNG.normal(51, 10, DRIFT_SAMPLE))  # a tenth of one
    assert nudged["shift"] < 0.05 and not nudged["flag"]
    assert shift_of(train, RNG.normal(50, 25, DRIFT_SAMPLE))["flag"]  # same mean, wider: the shape moved


def test_a_mostly_zero_count_that_rises_is_flagged():
    # 92 % zero: every decile is 0, so without an edge above it all values would share one bin.
    def counts(n):
        return np.where(RNG.random(n) < 0.92, 0, RNG.integers(1, 3, n))
    train = counts(20_000)
    assert not shift_of(train, counts(DRIFT_SAMPLE))["flag"]
    assert shift_of(train, np.full(DRIFT_SAMPLE, 5))["flag"]


def test_missing_values_are_a_bin_of_their_own():
    train = np.where(RNG.random(20_000) < 0.2, np.nan, RNG.normal(0, 1, 20_000))
    summary = summarise(frame(train), ["x"])["x"]
    assert abs(summary["shares"][-1] - 0.2) < 0.01 and np.isfinite(summary["mean"])
    assert not shift_of(train, np.where(RNG.random(DRIFT_SAMPLE) < 0.2, np.nan, RNG.normal(0, 1, DRIFT_SAMPLE)))["flag"]
    mostly_missing = shift_of(train, np.where(RNG.random(DRIFT_SAMPLE) < 0.8, np.nan, RNG.normal(0, 1, DRIFT_SAMPLE)))
    assert mostly_missing["flag"] and np.isfinite(mostly_missing["now"])
    all_missing = shift_of(train, np.full(DRIFT_SAMPLE, np.nan))
    assert all_missing["flag"] and all_missing["now"] is None
    assert summarise(frame(np.full(10, np.nan)), ["x"]) == {}  # nothing known at training: nothing to compare


def test_no_rows_today_or_a_column_gone_give_no_drift_rows():
    summary = summarise(frame(RNG.normal(0, 1, 1_000)), ["x", "not a column"])
    assert list(summary) == ["x"]
    assert drift_rows(summary, frame([]), str) == []
    assert drift_rows(summary, pd.DataFrame({"y": [1.0]}), str) == []


def test_psi_is_zero_for_equal_shares_and_finite_for_an_emptied_bin():
    assert psi([0.5, 0.5, 0.0], [0.5, 0.5, 0.0]) == 0.0
    assert np.isfinite(psi([0.5, 0.5, 0.0], [1.0, 0.0, 0.0])) and psi([0.5, 0.5, 0.0], [1.0, 0.0, 0.0]) > DRIFT_FLAG


def test_the_sample_step_keeps_at_most_the_sample():
    assert [sample_step(n) for n in (0, 1, DRIFT_SAMPLE, DRIFT_SAMPLE + 1, 1_000_000)] == [1, 1, 1, 2, 200]
    assert all(n // sample_step(n) <= DRIFT_SAMPLE for n in (4_999, 5_001, 9_999, 10_001, 1_234_567))


# --- the lead card, end to end --------------------------------------------------------------------------------------

def current_leads(engine) -> pd.DataFrame:
    with read_scope(engine) as s:
        return snapshot(s.connection(), NOW)[0]


def drift_by_feature(engine, root) -> dict[str, dict]:
    return {row["feature"]: row for row in lead_card(engine, root=root, now=NOW).drift}


def test_the_lead_card_flags_the_input_that_moved_since_training(engine, tmp_path):
    world(engine)
    assert train_lead(engine, root=tmp_path, now=NOW)["version"]
    before = drift_by_feature(engine, tmp_path)
    assert set(before) == {readable(f) for f in DRIFT_FEATURES}
    assert not before["web visit (30 d)"]["flag"] and not before["company size"]["flag"]
    assert lead_card(engine, root=tmp_path, now=NOW, drift=False).drift == []  # the page's default: no read

    leads = current_leads(engine)
    visits = [dict(contact_id=int(i), kind="web_visit", occurred_at=NOW - timedelta(days=d), properties={},
                   created_at=NOW, updated_at=NOW, version=1) for i in leads.index for d in (1, 4, 9, 16, 25)]
    with session_scope(engine) as s:
        s.execute(insert(BehaviorEvent), visits)
    after = drift_by_feature(engine, tmp_path)
    assert after["web visit (30 d)"]["flag"] and after["days since last web visit"]["flag"]
    assert after["web visit (30 d)"]["now"] == round(current_leads(engine)["web_visit_30d"].mean(), 3)
    assert after["web visit (30 d)"]["now"] >= before["web visit (30 d)"]["now"] + 5  # today's leads, none converted
    untouched = [f for f in before if "web visit" not in f]
    assert [after[f] for f in untouched] == [before[f] for f in untouched]


def test_the_lead_card_reads_a_fixed_sample_of_at_most_the_sample_size(engine, tmp_path, monkeypatch):
    world(engine)
    train_lead(engine, root=tmp_path, now=NOW)
    read, real = [], lead_card_module.lead_features

    def spy(conn, as_of, *, contact_ids):
        read.append(contact_ids)
        return real(conn, as_of, contact_ids=contact_ids)
    monkeypatch.setattr(lead_card_module, "lead_features", spy)
    monkeypatch.setattr("crm.ml.drift.DRIFT_SAMPLE", 100)
    monkeypatch.setattr(lead_card_module, "DRIFT_SAMPLE", 100)
    assert lead_card(engine, root=tmp_path, now=NOW).drift
    assert lead_card(engine, root=tmp_path, now=NOW).drift
    first, second = read
    assert first == second and len(first) == 100 and all(i % 7 == 0 for i in first)  # 700 contacts: every 7th id


def test_a_model_trained_without_a_summary_shows_no_drift(engine, tmp_path):
    world(engine)
    train_lead(engine, root=tmp_path, now=NOW)
    champion = registry.champion("lead", root=tmp_path)
    older = {k: v for k, v in champion.metadata.items() if k != "training_summary"}
    (champion.path / "metadata.json").write_text(json.dumps(older), encoding="utf-8")
    card = lead_card(engine, root=tmp_path, now=NOW)
    assert card.version == champion.version and card.importance and card.drift == []
