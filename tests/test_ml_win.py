"""The win-probability model: no leakage, the cold-start ladder, calibration, invariances, the registry round trip."""
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import update
from sqlmodel import select

from crm.db import read_scope, session_scope
from crm.errors import NotFound, ValidationFailed
from crm.ml import registry, win
from crm.ml.win import (
    WinExplanation, evaluate_win, explain_deal, load_champion, score_open_deals, train_win, win_card,
)
from crm.ml.win.data import load_data
from crm.ml.win.features import DAY, features, open_snapshots, training_snapshots
from crm.ml.win.model import TIER_BASE, TIER_GB, TIER_NB, split
from crm.models import Activity, BehaviorEvent, Company, Contact, Deal, Pipeline, Stage
from tests.factories import make_user

START = datetime(2025, 1, 1, tzinfo=UTC)


def _stages(session) -> dict[str, Stage]:
    rows = session.exec(select(Stage).join(Pipeline).where(Pipeline.name == "New business")).all()
    return {s.name: s for s in rows}


def seed(engine, *, closed: int, open_: int = 0, signal: str = "amount", seed: int = 0) -> dict[int, float]:
    """Closed deals over 2025 (each closed 30 days after creation) whose odds of winning follow `signal`, plus open
    deals created ten days ago. Returns each closed deal's true probability of winning."""
    rng = np.random.default_rng(seed)
    owner = make_user(engine)
    truth = {}
    with session_scope(engine) as s:
        stages = _stages(s)
        company = Company(name="Acme", industry="Retail", employees=120, country="US")
        contact = Contact(first_name="Ann", last_name="Lee")
        s.add_all([company, contact])
        s.flush()
        deals, activities = [], []
        for i in range(closed + open_):
            is_open = i >= closed
            created = (datetime.now(UTC) - timedelta(days=10)) if is_open else \
                START + timedelta(days=300 * i / max(closed, 1))
            amount = float(np.exp(rng.normal(np.log(5000), 1.0)))
            engaged = int(rng.poisson(3))
            if signal == "amount":
                p = 1 / (1 + np.exp(-2.0 * (np.log(amount) - np.log(5000))))
            elif signal == "engagement":
                p = 1 / (1 + np.exp(-1.2 * (engaged - 3)))
            elif signal == "none":  # a coin flip: nothing predicts it
                p = 0.5
            else:  # source: perfectly predictive
                p = float(i % 2)
            won = rng.random() < p
            source = ("referral" if won else "cold call") if signal == "source" else "web"
            stage = stages["Qualification"] if is_open else stages["Closed won" if won else "Closed lost"]
            deal = Deal(title=f"Deal {i}", pipeline_id=stage.pipeline_id, stage_id=stage.id,
                        status="open" if is_open else ("won" if won else "lost"), amount=round(amount, 2),
                        owner_id=owner, company_id=company.id, contact_id=contact.id, source=source,
                        created_at=created, closed_at=None if is_open else created + timedelta(days=30),
                        stage_entered_at=created, expected_close=(created + timedelta(days=30)).date())
            deals.append((deal, engaged, p))
        s.add_all([d for d, _, _ in deals])
        s.flush()
        for deal, engaged, p in deals:
            if deal.status != "open":
                truth[deal.id] = p
            for k in range(engaged):
                at = deal.created_at + timedelta(days=float(rng.uniform(0, 9 if deal.status == "open" else 13)))
                activities.append(Activity(kind="meeting" if k % 2 else "call", subject="Touch", deal_id=deal.id,
                                           contact_id=contact.id, occurred_at=at, created_at=at))
        s.add_all(activities)
    return truth


# --- features: pure, and blind to the future ---------------------------------------------------------------------

def test_adding_events_after_a_snapshot_never_changes_its_features(sqlite_engine):
    seed(sqlite_engine, closed=60, signal="engagement", seed=3)
    with read_scope(sqlite_engine) as s:
        data = load_data(s.connection(), Deal.status.in_(["won", "lost"]))
    snaps = training_snapshots(data)
    assert set(snaps.groupby("deal_id").size()) == {2}  # creation (imported without history) and 14 days in
    before = features(snaps, data)
    rng = np.random.default_rng(0)
    for _ in range(5):
        cutoff = float(rng.choice(snaps["time"]))
        n = 300
        deals = rng.choice(data.deals["id"], n)
        later = cutoff + rng.uniform(1, 200 * DAY, n)
        future = data.with_rows(
            activities=pd.DataFrame({"deal_id": deals, "kind": rng.choice(["meeting", "call", "email"], n),
                                     "time": later}),
            events=pd.DataFrame({"contact_id": data.deals["contact_id"].iloc[0], "kind": "web_visit", "time": later}),
            outcomes=pd.DataFrame({"company_id": data.deals["company_id"].iloc[0], "closed": later, "won": 1}),
            custom=pd.DataFrame({"entity": "deal", "record_id": deals, "key": "competitor", "field_type": "text",
                                 "text": "Rival", "number": np.nan, "since": later}).drop_duplicates("record_id"))
        after = features(snaps, future)
        upto = (snaps["time"] <= cutoff).to_numpy()
        pd.testing.assert_frame_equal(before[upto], after[upto][before.columns])
        assert after.loc[upto, "cf_deal_competitor"].isna().all()
        assert (after.loc[~upto, "activities"] >= before.loc[~upto, "activities"]).all()


def test_deals_imported_with_only_an_outcome_still_train(sqlite_engine, tmp_path):
    seed(sqlite_engine, closed=40, signal="source")
    with read_scope(sqlite_engine) as s:
        data = load_data(s.connection(), Deal.status.in_(["won", "lost"]))
    assert data.history.empty
    snaps = training_snapshots(data)
    assert snaps["deal_id"].nunique() == 40
    X = features(snaps, data)
    assert (X["stage"] == X["stage"].iloc[0]).all()  # the pipeline's first open stage at creation
    assert X["source"].notna().all()


def test_scoring_summarises_rows_without_changing_features(engine):
    """Scoring reads counts and last times instead of rows; the features come out exactly the same, also for rows
    on, just before and just after the edges of the recent window and of now (whole seconds, where they fall)."""
    seed(engine, closed=50, open_=20, signal="engagement", seed=5)
    now = datetime.now(UTC)
    second = datetime.fromtimestamp(int(now.timestamp()), UTC)
    edges = [edge + timedelta(microseconds=d) for edge in (second - timedelta(days=30), second) for d in (-1, 0, 1)]
    with session_scope(engine) as s:
        deals = s.exec(select(Deal).where(Deal.status == "open")).all()
        for i, deal in enumerate(deals):
            moments = [now - timedelta(days=days + i / 10) for days in (400, 200, 45, 31, 29, 2, -1)]
            for j, moment in enumerate(moments + edges):
                s.add(Activity(kind=("meeting", "call", "email", "note")[(i + j) % 4], subject="Old", deal_id=deal.id,
                               occurred_at=moment))
                s.add(BehaviorEvent(contact_id=deal.contact_id, kind=("web_visit", "email_click")[j % 2],
                                    occurred_at=moment))
    as_of = now.timestamp()
    with read_scope(engine) as s:
        raw = load_data(s.connection(), Deal.status == "open")
    folded = load_data(engine, Deal.status == "open", as_of=as_of)
    assert len(folded.activities) < len(raw.activities) and len(folded.outcomes) < len(raw.outcomes)
    snaps = open_snapshots(raw, as_of)
    pd.testing.assert_frame_equal(features(snaps, raw), features(snaps, folded))


# --- the ladder --------------------------------------------------------------------------------------------------

def test_ladder_with_no_closed_deals_uses_stage_defaults(engine, tmp_path):
    seed(engine, closed=0, open_=5)
    summary = train_win(engine, root=tmp_path)
    assert summary["tier"] == TIER_BASE and summary["promoted"]
    assert "no closed deals" in summary["tier_reason"]
    scores = score_open_deals(engine, root=tmp_path, write=False)
    with read_scope(engine) as s:
        default = _stages(s)["Qualification"].probability
    assert np.allclose(scores["probability"], default)


def test_ladder_with_twenty_closed_deals_uses_naive_bayes(engine, tmp_path):
    seed(engine, closed=20, signal="source")
    summary = train_win(engine, root=tmp_path)
    assert summary["tier"] == TIER_NB, summary["tier_reason"]
    assert "stratified random" in summary["split"]  # too few deals for a time split with both outcomes each side
    assert "needs 200" in str(load_champion(tmp_path).metadata["ladder"])


def test_ladder_with_two_thousand_closed_deals_uses_gradient_boosting(engine, tmp_path):
    seed(engine, closed=2000, signal="amount")
    summary = train_win(engine, root=tmp_path)
    assert summary["tier"] == TIER_GB, summary["tier_reason"]
    assert summary["split"].startswith("time:")
    model, default = summary["metrics"]["model"], summary["metrics"]["stage_default"]
    assert model["log_loss"] < default["log_loss"] and model["brier"] < default["brier"]
    assert model["auc"] > 0.75 and model["beats_chance"]


@pytest.mark.parametrize("selection_min_deals, selected_on", [(1_000, "5-fold cross-validation by deal"),
                                                               (10, "the calibration deals")])
def test_the_ladder_chooses_without_looking_at_the_holdout(sqlite_engine, monkeypatch, selection_min_deals,
                                                           selected_on):
    """Flipping every holdout outcome changes the holdout losses the ladder records, never its choice."""
    monkeypatch.setattr(win, "SELECTION_MIN_DEALS", selection_min_deals)
    seed(sqlite_engine, closed=600, signal="amount")
    with read_scope(sqlite_engine) as s:
        data = load_data(s.connection(), Deal.status.in_(["won", "lost"]))
    snaps = training_snapshots(data)
    X, y = features(snaps, data), snaps["won"].to_numpy()
    sp = split(snaps, data.deals.set_index("id")["closed"])
    flipped = np.where(sp.holdout, 1 - y, y)
    first, _, tried = win._walk_ladder(X, y, sp, 600, int(snaps.groupby("deal_id")["won"].first().sum()))
    second, _, tried_flipped = win._walk_ladder(X, flipped, sp, 600, 300)
    assert first["tier"] == second["tier"] == TIER_GB
    assert [t["selection_log_loss"] for t in tried] == [t["selection_log_loss"] for t in tried_flipped]
    assert [t["holdout_log_loss"] for t in tried] != [t["holdout_log_loss"] for t in tried_flipped]
    assert all(t["selected_on"] == selected_on for t in tried)


def test_a_tier_no_better_than_chance_does_not_climb(sqlite_engine, tmp_path):
    """With outcomes unrelated to every feature, naive Bayes and boosting may fit noise; neither is chosen."""
    seed(sqlite_engine, closed=400, signal="none", seed=3)
    summary = train_win(sqlite_engine, root=tmp_path)
    assert summary["tier"] == TIER_BASE, summary["tier_reason"]
    assert "not chosen" in summary["tier_reason"]


# --- calibration ---------------------------------------------------------------------------------------------------

def test_calibration_on_a_synthetic_holdout_with_known_probabilities(sqlite_engine, tmp_path):
    truth = seed(sqlite_engine, closed=6000, signal="amount", seed=7)
    summary = train_win(sqlite_engine, root=tmp_path)
    meta = load_champion(tmp_path).metadata
    assert meta["calibrated"] and summary["metrics"]["model"]["ece"] <= 0.05
    # Against the known probabilities: no sampling noise from drawing outcomes.
    with read_scope(sqlite_engine) as s:
        data = load_data(s.connection(), Deal.status.in_(["won", "lost"]))
    snaps = training_snapshots(data)
    late = snaps["deal_id"] > 4500
    p = load_champion(tmp_path).predict(features(snaps[late], data))
    known = snaps.loc[late, "deal_id"].map(truth).to_numpy()
    assert abs(p.mean() - known.mean()) < 0.03
    assert float(np.mean(np.abs(p - known))) < 0.08
    assert meta["reliability"] and sum(r["count"] for r in meta["reliability"]) == summary["rows"]["holdout"]


# --- invariances -------------------------------------------------------------------------------------------------

@pytest.fixture
def trained(engine, tmp_path):
    seed(engine, closed=400, open_=30, signal="engagement", seed=1)
    summary = train_win(engine, root=tmp_path)
    return engine, tmp_path, summary


def test_renaming_a_contact_or_deal_leaves_scores_unchanged(trained):
    engine, root, _ = trained
    before = score_open_deals(engine, root=root, write=False)
    with session_scope(engine) as s:
        s.execute(update(Deal).values(title="Renamed"))
        s.execute(update(Contact).values(first_name="Zed", last_name="Quux"))
    after = score_open_deals(engine, root=root, write=False)
    pd.testing.assert_frame_equal(before, after)


def test_more_recent_engagement_never_lowers_the_probability(trained):
    engine, root, _ = trained
    model = load_champion(root)
    with read_scope(engine) as s:
        data = load_data(s.connection(), Deal.status == "open")
    now = datetime.now(UTC).timestamp()
    snaps = open_snapshots(data, now)
    base = model.predict(features(snaps, data))
    ids = data.deals["id"].to_numpy()
    for kind in ("meeting", "call", "email"):
        more = data.with_rows(activities=pd.DataFrame({"deal_id": ids, "kind": kind, "time": now - 3600.0}),
                              events=pd.DataFrame({"contact_id": data.deals["contact_id"], "kind": "web_visit",
                                                   "time": now - 3600.0}))
        assert (model.predict(features(snaps, more)) >= base - 1e-9).all()
    # The same activities, but more recent, do not lower it either.
    acts = data.activities[data.activities["deal_id"].isin(ids)]
    recent = pd.concat([data.activities[~data.activities["deal_id"].isin(ids)],
                        acts.assign(time=np.maximum(acts["time"], now - 2 * DAY))], ignore_index=True)
    assert (model.predict(features(snaps, data.__class__(**{**data.__dict__, "activities": recent})))
            >= base - 1e-9).all()


# --- the registry round trip, scoring, explanations and the card -------------------------------------------------

def test_train_register_score_explain_and_card(trained):
    engine, root, summary = trained
    assert summary["promoted"] and summary["reason"] == "no champion yet"
    assert set(summary["metrics"]) == {"model", "stage_default"}
    stored = evaluate_win(root=root)
    assert stored["version"] == summary["version"] and stored["metrics"]["model"] == summary["metrics"]["model"]
    meta = registry.champion("win", root=root).metadata
    for key in ("data_window", "rows", "features", "split", "metrics", "data_hash", "tier", "tier_reason",
                "minimums", "reliability", "importance", "training_summary"):
        assert meta[key] not in (None, "", [], {}), key

    scores = score_open_deals(engine, root=root)
    assert list(scores.columns) == ["id", "external_id", "probability"] and len(scores) == 30
    with read_scope(engine) as s:
        stored_p = dict(s.execute(select(Deal.id, Deal.model_probability).where(Deal.status == "open")).all())
    assert all(abs(stored_p[i] - p) < 1e-9 for i, p in zip(scores["id"], scores["probability"]))

    why = explain_deal(engine, int(scores["id"].iloc[0]), root=root)
    assert isinstance(why, WinExplanation) and why.version == summary["version"]
    assert abs(why.probability - scores["probability"].iloc[0]) < 1e-6
    assert why.raising or why.lowering
    assert all(s.endswith(("win more)", "win less)")) for s in why.raising + why.lowering)
    labels = [label for label, _ in why.what_if]
    assert labels[0] == "log a meeting today" and why.what_if[0][1] >= why.probability - 1e-9
    assert any("close date" in label for label in labels) and any("amount" in label for label in labels)

    with read_scope(engine) as s:
        closed_id = s.execute(select(Deal.id).where(Deal.status != "open")).scalars().first()
    with pytest.raises(ValidationFailed, match="is closed"):
        explain_deal(engine, closed_id, root=root)
    with pytest.raises(NotFound, match="does not exist"):
        explain_deal(engine, 10**9, root=root)

    card = win_card(engine, root=root)
    assert card.version == summary["version"] and card.status == "champion" and card.minimums and card.drift
    assert {"feature", "train", "now", "shift", "flag"} <= set(card.drift[0])

    second = train_win(engine, root=root)  # the same data: at least as good as the champion on its holdout
    assert second["promoted"] and "at least as good as" in second["reason"]


def test_untrained_model_says_so(engine, tmp_path):
    with pytest.raises(NotFound, match="no win-probability model"):
        evaluate_win(root=tmp_path)
    with pytest.raises(NotFound):
        score_open_deals(engine, root=tmp_path)
    assert win_card(engine, root=tmp_path).version is None


def test_one_outcome_only_and_no_open_deals(sqlite_engine, tmp_path):
    seed(sqlite_engine, closed=30, signal="source")
    with session_scope(sqlite_engine) as s:
        s.execute(update(Deal).values(status="won"))
    summary = train_win(sqlite_engine, root=tmp_path)
    assert summary["tier"] == TIER_BASE and "needs 20 closed deals with 5 of each outcome" in \
        str(load_champion(tmp_path).metadata["ladder"])
    assert summary["metrics"]["model"]["auc"] is None and not summary["metrics"]["model"]["beats_chance"]
    scores = score_open_deals(sqlite_engine, root=tmp_path)
    assert scores.empty and list(scores.columns) == ["id", "external_id", "probability"]
