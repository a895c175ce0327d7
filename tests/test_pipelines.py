"""Pipeline configuration: stages as rows, lost reasons, with rights, validation and conflicts."""
import pytest
from sqlmodel import select

from crm.db import read_scope, session_scope
from crm.errors import EditConflict, PermissionDenied, ValidationFailed
from crm.models import AuditLog, Deal, StageInput
from crm.pipelines import (
    add_stage, archive_stage, create_pipeline, list_lost_reasons, list_pipelines, reorder_stages, save_lost_reason,
    update_stage,
)
from tests.factories import actor, make_user, stage_named

THREE = [StageInput(name="Open", probability=0.3), StageInput(name="Won", probability=1, is_won=True),
         StageInput(name="Lost", probability=0, is_lost=True)]


def test_admin_creates_a_pipeline_with_stages_in_order(engine):
    admin = make_user(engine, "admin")
    with session_scope(engine) as s:
        view = create_pipeline(session=s, actor=actor(engine, admin), name="Partners", stages=THREE)
    assert [st.name for st in view.stages] == ["Open", "Won", "Lost"]
    assert [st.position for st in view.stages] == [0, 1, 2]


@pytest.mark.parametrize("stages, message", [
    (THREE[:1], "won stage"),
    (THREE[1:], "open stage"),
    ([*THREE, StageInput(name="open", probability=0.5)], "unique"),
])
def test_a_pipeline_needs_open_won_and_lost_stages(engine, stages, message):
    admin = make_user(engine, "admin")
    with session_scope(engine) as s, pytest.raises(ValidationFailed, match=message):
        create_pipeline(session=s, actor=actor(engine, admin), name="Broken", stages=stages)


def test_stage_probability_is_a_probability():
    with pytest.raises(ValueError):
        StageInput(name="Odd", probability=1.5)


def test_new_open_stage_goes_before_the_closing_stages(engine):
    admin = make_user(engine, "admin")
    with session_scope(engine) as s:
        pipeline = list_pipelines(session=s)[0]
        add_stage(session=s, actor=actor(engine, admin), pipeline_id=pipeline.id,
                  spec=StageInput(name="Legal review", probability=0.8))
    with read_scope(engine) as s:
        names = [st.name for st in list_pipelines(session=s)[0].stages]
    assert names[-3:] == ["Legal review", "Closed won", "Closed lost"]


def test_stage_edit_conflict_and_audit(engine):
    admin = make_user(engine, "admin", name="Ada")
    with session_scope(engine) as s:
        stage = stage_named(s, "Proposal")
        update_stage(session=s, actor=actor(engine, admin), stage_id=stage.id, seen_version=1,
                     spec=StageInput(name="Proposal sent", probability=0.45))
    with session_scope(engine) as s, pytest.raises(EditConflict, match="Ada changed name, probability"):
        update_stage(session=s, actor=actor(engine, admin), stage_id=stage.id, seen_version=1,
                     spec=StageInput(name="Proposal", probability=0.5))
    with read_scope(engine) as s:
        rows = s.exec(select(AuditLog).where(AuditLog.entity == "stage", AuditLog.record_id == stage.id)).all()
    assert {(r.field, r.old_value, r.new_value) for r in rows} == {
        ("name", "Proposal", "Proposal sent"), ("probability", "0.4", "0.45")}


def test_reorder_needs_every_stage_once(engine):
    admin = make_user(engine, "admin")
    with session_scope(engine) as s:
        pipeline = list_pipelines(session=s)[0]
        ids = [st.id for st in pipeline.stages]
        with pytest.raises(ValidationFailed):
            reorder_stages(session=s, actor=actor(engine, admin), pipeline_id=pipeline.id, stage_ids=ids[:-1])
        reordered = reorder_stages(session=s, actor=actor(engine, admin), pipeline_id=pipeline.id,
                                   stage_ids=[ids[1], ids[0], *ids[2:]])
    assert [st.position for st in reordered] == list(range(len(ids)))


def test_a_stage_holding_open_deals_cannot_be_archived(engine):
    admin = make_user(engine, "admin")
    with session_scope(engine) as s:
        stage = stage_named(s, "Discovery")
        s.add(Deal(title="Big one", pipeline_id=stage.pipeline_id, stage_id=stage.id, amount=10))
    with session_scope(engine) as s, pytest.raises(ValidationFailed, match="open deals"):
        archive_stage(session=s, actor=actor(engine, admin), stage_id=stage.id, seen_version=1)
    with session_scope(engine) as s:
        empty = stage_named(s, "Qualification")
        archive_stage(session=s, actor=actor(engine, admin), stage_id=empty.id, seen_version=1)
    with read_scope(engine) as s:
        assert "Qualification" not in [st.name for st in list_pipelines(session=s)[0].stages]


def test_lost_reasons_add_rename_archive_restore(engine):
    admin = make_user(engine, "admin")
    me = actor(engine, admin)
    with session_scope(engine) as s:
        reason = save_lost_reason(session=s, actor=me, name="Legal blocked")
        with pytest.raises(ValidationFailed, match="already exists"):
            save_lost_reason(session=s, actor=me, name="price")
    with session_scope(engine) as s:
        reason = save_lost_reason(session=s, actor=me, name="Legal", reason_id=reason.id, seen_version=1, archived=True)
    with read_scope(engine) as s:
        assert "Legal" not in [r.name for r in list_lost_reasons(session=s)]
    with session_scope(engine) as s:
        save_lost_reason(session=s, actor=me, name="Legal", reason_id=reason.id, seen_version=reason.version)
    with read_scope(engine) as s:
        assert "Legal" in [r.name for r in list_lost_reasons(session=s)]


@pytest.mark.parametrize("role", ["manager", "rep", "marketer"])
def test_only_admins_configure_pipelines(engine, role):
    someone = make_user(engine, role)
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        create_pipeline(session=s, actor=actor(engine, someone), name="Mine", stages=THREE)
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        save_lost_reason(session=s, actor=actor(engine, someone), name="Because")
