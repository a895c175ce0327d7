"""Moving, editing, winning and losing deals: stage history, audit, rights, conflicts, and the probability rule."""
from datetime import date, timedelta

import pytest
from sqlmodel import delete, select

from crm.clock import utcnow
from crm.db import read_scope, session_scope
from crm.deals import (
    DealChanges, DealInput, create_deal, get_deal, lose_deal, move_deal, record_model_scores,
    restore_model_probability, update_deal, update_deals, win_deal,
)
from crm.deal_detail import stage_history
from crm.errors import EditConflict, PermissionDenied, ValidationFailed
from crm.models import AuditLog, DealStageHistory, LostReason, RoleRight
from tests.factories import actor, make_user, stage_named


def _deal(engine, owner: int, title: str = "Acme renewal", amount: float = 1000.0) -> int:
    with session_scope(engine) as s:
        return create_deal(session=s, actor=actor(engine, owner), data=DealInput(
            title=title, amount=amount, expected_close=date.today() + timedelta(days=30))).id


def _reason(engine, name: str = "Price") -> int:
    with read_scope(engine) as s:
        return s.exec(select(LostReason.id).where(LostReason.name == name)).one()


def _stage(engine, name: str) -> int:
    with read_scope(engine) as s:
        return stage_named(s, name).id


def test_a_stage_move_writes_history_and_audit(engine):
    rep = make_user(engine, "rep")
    deal_id = _deal(engine, rep)
    with session_scope(engine) as s:
        view = move_deal(session=s, actor=actor(engine, rep), deal_id=deal_id, stage_id=_stage(engine, "Proposal"),
                         seen_version=1)
    assert (view.stage, view.version, view.status) == ("Proposal", 2, "open")
    with read_scope(engine) as s:
        history = s.exec(select(DealStageHistory).where(DealStageHistory.deal_id == deal_id)
                         .order_by(DealStageHistory.id)).all()
        audit = s.exec(select(AuditLog).where(AuditLog.entity == "deal", AuditLog.record_id == deal_id,
                                              AuditLog.action == "update")).all()
        frame = stage_history(session=s, deal_id=deal_id)
    assert [h.stage_id for h in history] == [_stage(engine, "Qualification"), _stage(engine, "Proposal")]
    assert history[0].exited_at is not None and history[1].exited_at is None
    assert history[1].changed_by_id == rep
    assert {a.field for a in audit} == {"stage_id", "stage_entered_at"}
    assert list(frame["stage"]) == ["Qualification", "Proposal"] and list(frame["current"]) == [False, True]


def test_moving_to_a_stage_of_another_pipeline_is_refused(engine):
    rep = make_user(engine, "rep")
    deal_id = _deal(engine, rep)
    with read_scope(engine) as s:
        other = stage_named(s, "Quoted", pipeline="Renewals & upsell").id
    with session_scope(engine) as s, pytest.raises(ValidationFailed, match="stage_id"):
        move_deal(session=s, actor=actor(engine, rep), deal_id=deal_id, stage_id=other, seen_version=1)


def test_winning_sets_status_close_date_and_category(engine):
    rep = make_user(engine, "rep")
    deal_id = _deal(engine, rep)
    with session_scope(engine) as s:
        view = win_deal(session=s, actor=actor(engine, rep), deal_id=deal_id, seen_version=1)
    assert (view.status, view.stage, view.forecast_category) == ("won", "Closed won", "closed")
    assert view.closed_at is not None and abs((utcnow() - view.closed_at.replace(tzinfo=utcnow().tzinfo))
                                              .total_seconds()) < 60


def test_losing_requires_a_reason(engine):
    rep = make_user(engine, "rep")
    deal_id = _deal(engine, rep)
    with session_scope(engine) as s, pytest.raises(ValidationFailed, match="lost_reason_id"):
        lose_deal(session=s, actor=actor(engine, rep), deal_id=deal_id, seen_version=1, lost_reason_id=None)
    with session_scope(engine) as s:
        view = lose_deal(session=s, actor=actor(engine, rep), deal_id=deal_id, seen_version=1,
                         lost_reason_id=_reason(engine))
    assert (view.status, view.lost_reason) == ("lost", "Price")
    with read_scope(engine) as s:
        fields = {a.field: a.new_value for a in s.exec(select(AuditLog).where(
            AuditLog.entity == "deal", AuditLog.record_id == deal_id, AuditLog.action == "update")).all()}
    assert fields["status"] == "lost" and fields["lost_reason_id"] == str(_reason(engine))


def test_an_archived_lost_reason_is_refused(engine):
    rep = make_user(engine, "rep")
    deal_id = _deal(engine, rep)
    with session_scope(engine) as s:
        s.get(LostReason, _reason(engine, "Timing")).deleted_at = utcnow()
    with session_scope(engine) as s, pytest.raises(ValidationFailed, match="lost reasons"):
        lose_deal(session=s, actor=actor(engine, rep), deal_id=deal_id, seen_version=1,
                  lost_reason_id=_reason(engine, "Timing"))


def test_closing_needs_the_close_right(engine):
    rep = make_user(engine, "rep")
    deal_id = _deal(engine, rep)
    with session_scope(engine) as s:  # an admin took deals.close away from reps: rights are rows
        s.exec(delete(RoleRight).where(RoleRight.role == "rep", RoleRight.name == "deals.close"))
    with session_scope(engine) as s, pytest.raises(PermissionDenied, match="close"):
        win_deal(session=s, actor=actor(engine, rep), deal_id=deal_id, seen_version=1)
    with session_scope(engine) as s, pytest.raises(PermissionDenied, match="close"):
        lose_deal(session=s, actor=actor(engine, rep), deal_id=deal_id, seen_version=1, lost_reason_id=_reason(engine))
    with session_scope(engine) as s:  # moving between open stages is still fine
        assert move_deal(session=s, actor=actor(engine, rep), deal_id=deal_id, stage_id=_stage(engine, "Discovery"),
                         seen_version=1).stage == "Discovery"


def test_a_rep_cannot_move_a_teammates_deal(engine):
    owner = make_user(engine, "rep", team="East")
    other = make_user(engine, "rep", team="East")
    deal_id = _deal(engine, owner)
    with session_scope(engine) as s:
        assert get_deal(session=s, actor=actor(engine, other), deal_id=deal_id).id == deal_id  # may read
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        move_deal(session=s, actor=actor(engine, other), deal_id=deal_id, stage_id=_stage(engine, "Proposal"),
                  seen_version=1)


def test_a_stale_edit_is_refused_and_says_who_changed_what(engine):
    rep = make_user(engine, "rep", name="Rita Rep")
    deal_id = _deal(engine, rep)
    with session_scope(engine) as s:
        update_deal(session=s, actor=actor(engine, rep), deal_id=deal_id, seen_version=1,
                    changes=DealChanges(amount=2000))
    with session_scope(engine) as s, pytest.raises(EditConflict, match="Rita Rep changed amount"):
        update_deal(session=s, actor=actor(engine, rep), deal_id=deal_id, seen_version=1,
                    changes=DealChanges(next_step="Call back"))


def test_reopening_a_lost_deal_clears_the_reason(engine):
    rep = make_user(engine, "rep")
    deal_id = _deal(engine, rep)
    with session_scope(engine) as s:
        lose_deal(session=s, actor=actor(engine, rep), deal_id=deal_id, seen_version=1, lost_reason_id=_reason(engine))
    with session_scope(engine) as s:
        view = move_deal(session=s, actor=actor(engine, rep), deal_id=deal_id, stage_id=_stage(engine, "Negotiation"),
                         seen_version=2)
    assert (view.status, view.closed_at, view.lost_reason_id, view.forecast_category) == ("open", None, None,
                                                                                          "pipeline")


def test_rescoring_changes_only_what_the_rep_has_not_overridden(engine):
    rep = make_user(engine, "rep")
    mine, model_only = _deal(engine, rep, "Overridden"), _deal(engine, rep, "Model's")
    with session_scope(engine) as s:
        update_deal(session=s, actor=actor(engine, rep), deal_id=mine, seen_version=1,
                    changes=DealChanges(rep_probability=0.9))
    with session_scope(engine) as s:
        record_model_scores(session=s, scores={mine: 0.2, model_only: 0.35}, model="win-v1")
    with read_scope(engine) as s:
        a, b = get_deal(session=s, actor=actor(engine, rep), deal_id=mine), get_deal(
            session=s, actor=actor(engine, rep), deal_id=model_only)
    assert (a.probability, a.model_probability, a.version) == (0.9, 0.2, 2)  # the rep's figure stays shown
    assert (b.probability, b.version) == (0.35, 1)  # scoring is not an edit: no open form goes stale
    with session_scope(engine) as s:
        restored = restore_model_probability(session=s, actor=actor(engine, rep), deal_id=mine, seen_version=2)
    assert (restored.rep_probability, restored.probability) == (None, 0.2)


def test_without_rep_or_model_the_stage_default_is_shown(engine):
    rep = make_user(engine, "rep")
    deal_id = _deal(engine, rep)
    with read_scope(engine) as s:
        assert get_deal(session=s, actor=actor(engine, rep), deal_id=deal_id).probability == 0.10


@pytest.mark.parametrize("changes, field", [
    (DealChanges(amount=-5), "amount"), (DealChanges(rep_probability=1.5), "rep_probability"),
    (DealChanges(forecast_category="closed"), "forecast_category"), (DealChanges(title=" "), "title"),
])
def test_bad_values_name_the_field(engine, changes, field):
    rep = make_user(engine, "rep")
    deal_id = _deal(engine, rep)
    with session_scope(engine) as s, pytest.raises(ValidationFailed, match=field):
        update_deal(session=s, actor=actor(engine, rep), deal_id=deal_id, seen_version=1, changes=changes)


def test_a_table_save_reports_a_conflict_on_its_row_and_saves_the_others(engine):
    rep = make_user(engine, "rep")
    first, second, third = (_deal(engine, rep, t) for t in ("First", "Second", "Third"))
    with session_scope(engine) as s:  # someone else saves the second deal first
        update_deal(session=s, actor=actor(engine, rep), deal_id=second, seen_version=1,
                    changes=DealChanges(amount=5))
    with session_scope(engine) as s:
        results = update_deals(session=s, actor=actor(engine, rep), edits=[
            (first, 1, DealChanges(amount=111, forecast_category="commit")),
            (second, 1, DealChanges(amount=222)),
            (third, 1, DealChanges(next_step="Send the proposal", amount=-1)),
        ])
    assert [r.ok for r in results] == [True, False, False]
    assert "changed after you opened it" in results[1].message and "amount" in results[2].message
    with read_scope(engine) as s:
        rep_actor = actor(engine, rep)
        saved = {d: get_deal(session=s, actor=rep_actor, deal_id=d) for d in (first, second, third)}
    assert (saved[first].amount, saved[first].forecast_category) == (111, "commit")
    assert saved[second].amount == 5 and saved[third].next_step is None  # nothing of the failed rows landed
