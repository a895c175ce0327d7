"""Admin page, Pipelines & stages and Lost reasons tabs; every change goes through crm.pipelines."""
import pandas as pd
import streamlit as st

from crm import pipelines
from crm.errors import ValidationFailed
from crm.models import LostReasonView, PipelineView, StageInput, StageView
from ui.forms import FormKeys, show_outcome, submit_button

KINDS = ["open", "won", "lost"]
DEFAULT_STAGES = "Qualification, 10\nProposal, 40\nNegotiation, 70\nClosed won, 100, won\nClosed lost, 0, lost"


def parse_stages(text: str) -> list[StageInput]:
    """One stage per line: `name, probability in %` and optionally `, won` or `, lost`."""
    stages = []
    for n, line in enumerate(text.splitlines(), start=1):
        parts = [p.strip() for p in line.split(",")]
        if not any(parts):
            continue
        if not parts[0] or len(parts) > 3:
            raise ValidationFailed("stages", f"line {n}: write `name, probability %` (and `, won` or `, lost`)")
        try:
            percent = float(parts[1].rstrip("%")) if len(parts) > 1 and parts[1] else 0.0
        except ValueError:
            raise ValidationFailed("stages", f"line {n}: {parts[1]!r} is not a percentage") from None
        kind = parts[2].lower() if len(parts) > 2 else "open"
        if not 0 <= percent <= 100 or kind not in KINDS:
            raise ValidationFailed("stages", f"line {n}: the probability must be 0–100 and the kind open, won or lost")
        stages.append(_stage(parts[0], percent, kind))
    return stages


def _stage(name: str | None, percent: float | None, kind: str) -> StageInput:
    return StageInput(name=(name or "").strip(), probability=(percent or 0) / 100, is_won=kind == "won",
                      is_lost=kind == "lost")


def _kind(stage: StageView) -> str:
    return "won" if stage.is_won else "lost" if stage.is_lost else "open"


def pipelines_tab(all_pipelines: list[PipelineView], generation: int) -> None:
    if all_pipelines:
        names = {p.id: p.name for p in all_pipelines}
        picked = st.selectbox("Pipeline", list(names), key="admin_pipeline_pick", format_func=names.get)
        pipeline = next(p for p in all_pipelines if p.id == picked)
        st.dataframe(pd.DataFrame([{"Position": s.position + 1, "Stage": s.name, "Probability": s.probability,
                                    "Kind": _kind(s)} for s in pipeline.stages]),
                     hide_index=True, column_config={"Probability": st.column_config.NumberColumn(format="percent")})
        left, right = st.columns(2)
        with left:
            _edit_stage_form(pipeline)
        with right:
            _reorder_form(pipeline)
            _add_stage_form(pipeline, generation)
    with st.expander("Create a pipeline", icon=":material/add:"):
        _create_pipeline_form(generation)


def _edit_stage_form(pipeline: PipelineView) -> None:
    names = {s.id: s.name for s in pipeline.stages}
    picked = st.selectbox("Edit a stage", list(names), key=f"admin_stage_pick_{pipeline.id}", format_func=names.get)
    stage = next(s for s in pipeline.stages if s.id == picked)
    key = FormKeys(f"admin_stage_edit_{stage.id}_", stage.version)
    with st.form(f"admin_stage_edit_{stage.id}_form"):
        st.text_input("Name", value=stage.name, key=key("name"))
        st.number_input("Probability %", 0.0, 100.0, value=stage.probability * 100, step=5.0, key=key("percent"))
        st.radio("Kind", KINDS, index=KINDS.index(_kind(stage)), horizontal=True, key=key("kind"))
        st.caption(f"Editing version {key.generation}")

        def save(s, actor, v) -> str:
            saved = pipelines.update_stage(session=s, actor=actor, stage_id=stage.id, seen_version=key.generation,
                                           spec=_stage(v["name"], v["percent"], v["kind"]))
            return f"Saved stage {saved.name}"

        def archive(s, actor, v) -> str:
            pipelines.archive_stage(session=s, actor=actor, stage_id=stage.id, seen_version=key.generation)
            return f"Archived stage {stage.name}"

        saved = submit_button("Save stage", key=f"admin_stage_edit_{stage.id}_save", form=key, action=save,
                              type="primary")
        archived = submit_button("Archive stage", key=f"admin_stage_edit_{stage.id}_archive", form=key, action=archive)
    show_outcome(f"admin_stage_edit_{stage.id}_save", saved)
    show_outcome(f"admin_stage_edit_{stage.id}_archive", archived)


def _reorder_form(pipeline: PipelineView) -> None:
    names = {s.id: s.name for s in pipeline.stages}
    key = FormKeys(f"admin_stage_order_{pipeline.id}_", 0)

    def move(step: int):
        def action(s, actor, v) -> str:
            order = list(names)
            i = order.index(v["stage"])
            j = min(max(i + step, 0), len(order) - 1)
            order[i], order[j] = order[j], order[i]
            pipelines.reorder_stages(session=s, actor=actor, pipeline_id=pipeline.id, stage_ids=order)
            return f"Moved {names[v['stage']]}"
        return action

    with st.form(f"admin_stage_order_{pipeline.id}_form"):
        st.selectbox("Move a stage", list(names), key=key("stage"), format_func=names.get)
        up_col, down_col = st.columns(2)
        with up_col:  # every stage's version moves on, so the stage edit forms reload
            up = submit_button("Move up", key=f"admin_stage_order_{pipeline.id}_up", form=key, action=move(-1),
                               reset=["admin_stage_edit_"], keep_values=True, icon=":material/arrow_upward:")
        with down_col:
            down = submit_button("Move down", key=f"admin_stage_order_{pipeline.id}_down", form=key, action=move(1),
                                 reset=["admin_stage_edit_"], keep_values=True, icon=":material/arrow_downward:")
    show_outcome(f"admin_stage_order_{pipeline.id}_up", up)
    show_outcome(f"admin_stage_order_{pipeline.id}_down", down)


def _add_stage_form(pipeline: PipelineView, generation: int) -> None:
    key = FormKeys(f"admin_stage_new_{pipeline.id}_", generation)
    with st.form(f"admin_stage_new_{pipeline.id}_form"):
        st.markdown("**Add a stage**")
        st.text_input("Name", key=key("name"))
        st.number_input("Probability %", 0.0, 100.0, value=20.0, step=5.0, key=key("percent"))
        st.radio("Kind", KINDS, horizontal=True, key=key("kind"))

        def add(s, actor, v) -> str:
            added = pipelines.add_stage(session=s, actor=actor, pipeline_id=pipeline.id,
                                        spec=_stage(v["name"], v["percent"], v["kind"]))
            return f"Added stage {added.name}"

        submitted = submit_button("Add stage", key=f"admin_stage_new_{pipeline.id}_add", form=key, action=add)
    show_outcome(f"admin_stage_new_{pipeline.id}_add", submitted)


def _create_pipeline_form(generation: int) -> None:
    key = FormKeys("admin_pipeline_new_", generation)
    with st.form("admin_pipeline_create_form"):
        st.text_input("Name", key=key("name"))
        st.text_area("Stages", value=DEFAULT_STAGES, height=150, key=key("stages"),
                     help="One stage per line: name, probability in %, and `won` or `lost` for closing stages.")
        submitted = submit_button("Create pipeline", key="admin_pipeline_create", form=key, action=_create_pipeline,
                                  type="primary")
    show_outcome("admin_pipeline_create", submitted)


def _create_pipeline(s, actor, v) -> str:
    created = pipelines.create_pipeline(session=s, actor=actor, name=v["name"] or "",
                                        stages=parse_stages(v["stages"] or ""))
    return f"Created pipeline {created.name}"


def lost_reasons_tab(reasons: list[LostReasonView], generation: int) -> None:
    st.dataframe(pd.DataFrame([{"Reason": r.name, "Status": "archived" if r.deleted_at else "active"}
                               for r in reasons], columns=["Reason", "Status"]), hide_index=True)
    left, right = st.columns(2)
    with left:
        key = FormKeys("admin_reason_new_", generation)
        with st.form("admin_reason_create_form"):
            st.markdown("**New lost reason**")
            st.text_input("Name", key=key("name"))
            added = submit_button("Add reason", key="admin_reason_add", form=key, action=_add_reason, type="primary")
        show_outcome("admin_reason_add", added)
    if reasons:
        with right:
            _edit_reason_form(reasons)


def _add_reason(s, actor, v) -> str:
    return f"Added lost reason {pipelines.save_lost_reason(session=s, actor=actor, name=v['name'] or '').name}"


def _edit_reason_form(reasons: list[LostReasonView]) -> None:
    names = {r.id: r.name + (" (archived)" if r.deleted_at else "") for r in reasons}
    picked = st.selectbox("Edit a lost reason", list(names), key="admin_reason_pick", format_func=names.get)
    reason = next(r for r in reasons if r.id == picked)
    key = FormKeys(f"admin_reason_edit_{reason.id}_", reason.version)
    with st.form(f"admin_reason_edit_{reason.id}_form"):
        st.text_input("Name", value=reason.name, key=key("name"))
        st.checkbox("Archived (not offered when closing deals)", value=reason.deleted_at is not None,
                    key=key("archived"))

        def save(s, actor, v) -> str:
            saved = pipelines.save_lost_reason(session=s, actor=actor, name=v["name"] or "", reason_id=reason.id,
                                               seen_version=key.generation, archived=v["archived"])
            return f"Saved lost reason {saved.name}"

        submitted = submit_button("Save reason", key=f"admin_reason_edit_{reason.id}_save", form=key, action=save)
    show_outcome(f"admin_reason_edit_{reason.id}_save", submitted)
