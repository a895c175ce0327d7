"""Pipeline configuration: pipelines, their stages (as rows) and lost reasons. Admin use cases."""
from sqlalchemy import func
from sqlmodel import Session, select

from crm.audit import apply_changes, audit, check_version, created_fields, load_for_update
from crm.clock import utcnow
from crm.errors import ValidationFailed
from crm.models import Deal, DealStatus, LostReason, LostReasonView, Pipeline, PipelineView, Stage, StageInput, StageView
from crm.permissions import Actor, require
from crm.rows import next_position, unique_name
from crm.validation import require_text


def list_pipelines(*, session: Session) -> list[PipelineView]:
    """Every active pipeline with its stages in order (readable by every signed-in role)."""
    pipelines = session.exec(select(Pipeline).where(Pipeline.deleted_at.is_(None)).order_by(Pipeline.position)).all()
    stages = session.exec(select(Stage).where(Stage.deleted_at.is_(None)).order_by(Stage.position)).all()
    by_pipeline: dict[int, list[StageView]] = {}
    for stage in stages:
        by_pipeline.setdefault(stage.pipeline_id, []).append(StageView.model_validate(stage, from_attributes=True))
    return [PipelineView(id=p.id, name=p.name, position=p.position, is_default=p.is_default, version=p.version,
                         stages=by_pipeline.get(p.id, [])) for p in pipelines]


def create_pipeline(*, session: Session, actor: Actor, name: str, stages: list[StageInput]) -> PipelineView:
    """A new pipeline needs at least one open stage, one won stage and one lost stage."""
    require(actor, "admin.configure", "configure pipelines")
    name = unique_name(session, Pipeline, name, what="a pipeline")
    _check_stage_set(stages)
    pipeline = Pipeline(name=name, position=next_position(session, Pipeline))
    session.add(pipeline)
    session.flush()
    audit(session, actor_id=actor.id, entity="pipeline", record_id=pipeline.id, action="create",
          changes={"name": (None, name)}, record_version=1)
    for i, spec in enumerate(stages):
        _insert_stage(session, actor, pipeline.id, spec, i)
    return next(p for p in list_pipelines(session=session) if p.id == pipeline.id)


def _check_stage_set(stages: list[StageInput]) -> None:
    names = [s.name.strip().lower() for s in stages]
    if len(set(names)) != len(names):
        raise ValidationFailed("stages", "stage names must be unique within a pipeline")
    if not any(s.is_won for s in stages) or not any(s.is_lost for s in stages):
        raise ValidationFailed("stages", "a pipeline needs one won stage and one lost stage")
    if not any(not (s.is_won or s.is_lost) for s in stages):
        raise ValidationFailed("stages", "a pipeline needs at least one open stage")
    for s in stages:
        if s.is_won and s.is_lost:
            raise ValidationFailed("stages", f"stage {s.name!r} cannot be both won and lost")


def _insert_stage(session: Session, actor: Actor, pipeline_id: int, spec: StageInput, position: int) -> Stage:
    stage = Stage(pipeline_id=pipeline_id, position=position, name=require_text(spec.name, field="name", max_length=120),
                  probability=spec.probability, is_won=spec.is_won, is_lost=spec.is_lost)
    session.add(stage)
    session.flush()
    audit(session, actor_id=actor.id, entity="stage", record_id=stage.id, action="create",
          changes=created_fields(stage), record_version=stage.version)
    return stage


def add_stage(*, session: Session, actor: Actor, pipeline_id: int, spec: StageInput) -> StageView:
    require(actor, "admin.configure", "configure stages")
    load_for_update(session, Pipeline, pipeline_id, label="Pipeline")
    existing = _stages(session, pipeline_id)
    if any(s.name.lower() == spec.name.strip().lower() for s in existing):
        raise ValidationFailed("name", f"this pipeline already has a stage called {spec.name!r}")
    # New open stages go before the won/lost stages; closing stages go last.
    closing = [s for s in existing if s.is_won or s.is_lost]
    position = len(existing) if (spec.is_won or spec.is_lost) else len(existing) - len(closing)
    for s in existing[position:]:
        s.position += 1
    return StageView.model_validate(_insert_stage(session, actor, pipeline_id, spec, position), from_attributes=True)


def _stages(session: Session, pipeline_id: int) -> list[Stage]:
    return list(session.exec(select(Stage).where(Stage.pipeline_id == pipeline_id, Stage.deleted_at.is_(None))
                             .order_by(Stage.position)).all())


def update_stage(*, session: Session, actor: Actor, stage_id: int, spec: StageInput, seen_version: int) -> StageView:
    require(actor, "admin.configure", "configure stages")
    stage = load_for_update(session, Stage, stage_id, label="Stage")
    check_version(session, entity="stage", record=stage, seen_version=seen_version)
    if (stage.is_won, stage.is_lost) != (spec.is_won, spec.is_lost) and _open_deals_in(session, stage.id):
        raise ValidationFailed("is_won", "cannot change whether a stage closes deals while open deals sit in it")
    others = [s for s in _stages(session, stage.pipeline_id) if s.id != stage.id]
    if any(s.name.lower() == spec.name.strip().lower() for s in others):
        raise ValidationFailed("name", f"this pipeline already has a stage called {spec.name!r}")
    diff = apply_changes(stage, {"name": spec.name.strip(), "probability": spec.probability,
                                 "is_won": spec.is_won, "is_lost": spec.is_lost})
    _check_stage_set([StageInput.model_validate(s, from_attributes=True) for s in [*others, stage]])
    if diff:
        audit(session, actor_id=actor.id, entity="stage", record_id=stage.id, action="update", changes=diff,
              record_version=stage.version)
    return StageView.model_validate(stage, from_attributes=True)


def _open_deals_in(session: Session, stage_id: int) -> int:
    return session.exec(select(func.count()).select_from(Deal)
                        .where(Deal.stage_id == stage_id, Deal.status == DealStatus.OPEN, Deal.deleted_at.is_(None))).one()


def reorder_stages(*, session: Session, actor: Actor, pipeline_id: int, stage_ids: list[int]) -> list[StageView]:
    require(actor, "admin.configure", "configure stages")
    load_for_update(session, Pipeline, pipeline_id, label="Pipeline")
    stages = {s.id: s for s in _stages(session, pipeline_id)}
    if sorted(stage_ids) != sorted(stages):
        raise ValidationFailed("stage_ids", "give every stage of the pipeline exactly once")
    for position, sid in enumerate(stage_ids):
        diff = apply_changes(stages[sid], {"position": position})
        if diff:
            audit(session, actor_id=actor.id, entity="stage", record_id=sid, action="update", changes=diff,
                  record_version=stages[sid].version)
    return [StageView.model_validate(stages[sid], from_attributes=True) for sid in stage_ids]


def archive_stage(*, session: Session, actor: Actor, stage_id: int, seen_version: int) -> None:
    """Soft-delete a stage that no deal uses any more; the pipeline must keep an open, won and lost stage."""
    require(actor, "admin.configure", "configure stages")
    stage = load_for_update(session, Stage, stage_id, label="Stage")
    check_version(session, entity="stage", record=stage, seen_version=seen_version)
    if _open_deals_in(session, stage.id):
        raise ValidationFailed("stage", f"{stage.name!r} still holds open deals; move them first")
    others = [s for s in _stages(session, stage.pipeline_id) if s.id != stage.id]
    _check_stage_set([StageInput.model_validate(s, from_attributes=True) for s in others])
    diff = apply_changes(stage, {"deleted_at": utcnow()})
    audit(session, actor_id=actor.id, entity="stage", record_id=stage.id, action="delete", changes=diff,
          record_version=stage.version)


def list_lost_reasons(*, session: Session, include_archived: bool = False) -> list[LostReasonView]:
    stmt = select(LostReason).order_by(LostReason.position, LostReason.name)
    if not include_archived:
        stmt = stmt.where(LostReason.deleted_at.is_(None))
    return [LostReasonView.model_validate(r, from_attributes=True) for r in session.exec(stmt).all()]


def save_lost_reason(*, session: Session, actor: Actor, name: str, reason_id: int | None = None,
                     seen_version: int | None = None, archived: bool = False) -> LostReasonView:
    """Create a lost reason, or rename / archive / restore one."""
    require(actor, "admin.configure", "configure lost reasons")
    name = unique_name(session, LostReason, name, what="a lost reason", record_id=reason_id)
    if reason_id is None:
        reason = LostReason(name=name, position=next_position(session, LostReason))
        session.add(reason)
        session.flush()
        audit(session, actor_id=actor.id, entity="lost_reason", record_id=reason.id, action="create",
              changes={"name": (None, name)}, record_version=1)
    else:
        reason = load_for_update(session, LostReason, reason_id, label="Lost reason", include_deleted=True)
        check_version(session, entity="lost_reason", record=reason, seen_version=seen_version)
        deleted_at = (reason.deleted_at or utcnow()) if archived else None
        diff = apply_changes(reason, {"name": name, "deleted_at": deleted_at})
        if diff:
            audit(session, actor_id=actor.id, entity="lost_reason", record_id=reason.id, action="update",
                  changes=diff, record_version=reason.version)
    return LostReasonView.model_validate(reason, from_attributes=True)
