"""The deal page's forms: move, win or lose; the probability (the rep's, or back to the model's); edit; log."""
import streamlit as st

from crm import deals
from crm.deals import DealChanges, DealView
from crm.models import DealStatus, ForecastCategory, PipelineView
from crm.permissions import Actor
from ui.activity_forms import log_popover, task_popover
from ui.forms import FormKeys, field_error, show_outcome, submit_button
from ui.model_data import explain_deal
from ui.pipeline_data import PipelineLookups
from ui.text import md_escape

CATEGORIES = [c for c in ForecastCategory if c is not ForecastCategory.CLOSED]


def probability_panel(deal: DealView) -> None:
    """Model beside rep (Odoo's pattern): the model re-scores only where the rep has not set a figure."""
    model = f"{deal.model_probability:.0%}" if deal.model_probability is not None else "not scored yet"
    rep = f"{deal.rep_probability:.0%}" if deal.rep_probability is not None else "not set"
    cols = st.columns(4)
    cols[0].metric("Shown probability", f"{deal.probability:.0%}")
    cols[1].metric("Model", model)
    cols[2].metric("Rep", rep)
    cols[3].metric("Stage default", f"{deal.stage_probability:.0%}")
    if deal.status != DealStatus.OPEN:
        return
    key = FormKeys(f"deal_prob_{deal.id}_", deal.version)
    with st.form(f"deal_prob_{deal.id}_form"):
        st.number_input("My probability (%)", min_value=0, max_value=100, step=5, key=key("percent"),
                        value=round(deal.probability * 100))
        field_error(f"deal_prob_{deal.id}_save", "rep_probability")

        def override(s, who, v) -> str:
            deals.update_deal(session=s, actor=who, deal_id=deal.id, seen_version=key.generation,
                              changes=DealChanges(rep_probability=v["percent"] / 100))
            return "Your probability is shown now; the model keeps scoring beside it"

        done = submit_button("Use my probability", key=f"deal_prob_{deal.id}_save", form=key, action=override)
    show_outcome(f"deal_prob_{deal.id}_save", done)
    if deal.rep_probability is not None:
        with st.form(f"deal_prob_reset_{deal.id}_form"):
            reset = FormKeys(f"deal_prob_reset_{deal.id}_", deal.version)

            def restore(s, who, v) -> str:
                deals.restore_model_probability(session=s, actor=who, deal_id=deal.id, seen_version=deal.version)
                return "Back to the model's probability"

            label = "Restore the model's probability" if deal.model_probability is not None \
                else "Restore the stage default"
            done = submit_button(label, key=f"deal_prob_reset_{deal.id}", form=reset, action=restore)
        show_outcome(f"deal_prob_reset_{deal.id}", done)


def stage_actions(actor: Actor, deal: DealView, pipeline: PipelineView, known: PipelineLookups) -> None:
    """Move to another stage, win, or lose with a reason (closing needs the deals.close right)."""
    open_stages = {s.id: s.name for s in pipeline.stages if not (s.is_won or s.is_lost)}
    move_col, win_col, lose_col = st.columns(3)
    with move_col, st.form(f"deal_move_{deal.id}_form"):
        key = FormKeys(f"deal_move_{deal.id}_", deal.version)
        options = list(open_stages)
        st.selectbox("Stage", options, index=options.index(deal.stage_id) if deal.stage_id in options else 0,
                     format_func=open_stages.get, key=key("stage"))

        def move(s, who, v) -> str:
            view = deals.move_deal(session=s, actor=who, deal_id=deal.id, stage_id=v["stage"],
                                   seen_version=key.generation)
            return f"Moved to {view.stage}"

        label = "Reopen in this stage" if deal.status != DealStatus.OPEN else "Move"
        done = submit_button(label, key=f"deal_move_{deal.id}_save", form=key, action=move)
    with move_col:
        show_outcome(f"deal_move_{deal.id}_save", done)
    if deal.status != DealStatus.OPEN or not actor.can("deals.close"):
        return
    with win_col, st.form(f"deal_win_{deal.id}_form"):
        key = FormKeys(f"deal_win_{deal.id}_", deal.version)
        st.caption("Closes the deal as won today.")

        def win(s, who, v) -> str:
            deals.win_deal(session=s, actor=who, deal_id=deal.id, seen_version=key.generation)
            return "Deal won"

        done = submit_button("Mark won", key=f"deal_win_{deal.id}_save", form=key, action=win, type="primary")
    with win_col:
        show_outcome(f"deal_win_{deal.id}_save", done)
    with lose_col, st.form(f"deal_lose_{deal.id}_form"):
        key = FormKeys(f"deal_lose_{deal.id}_", deal.version)
        reasons = {r.id: r.name for r in known.lost_reasons}
        st.selectbox("Lost reason", [None, *reasons], format_func=lambda i: "Choose…" if i is None else reasons[i],
                     key=key("reason"))
        field_error(f"deal_lose_{deal.id}_save", "lost_reason_id")

        def lose(s, who, v) -> str:
            view = deals.lose_deal(session=s, actor=who, deal_id=deal.id, seen_version=key.generation,
                                   lost_reason_id=v["reason"])
            return f"Deal lost ({view.lost_reason})"

        done = submit_button("Mark lost", key=f"deal_lose_{deal.id}_save", form=key, action=lose)
    with lose_col:
        show_outcome(f"deal_lose_{deal.id}_save", done)


def edit_form(deal: DealView) -> None:
    save_key = f"deal_edit_{deal.id}_save"
    key = FormKeys(f"deal_edit_{deal.id}_", deal.version)
    with st.form(f"deal_edit_{deal.id}_form"):
        st.text_input("Title", value=deal.title, key=key("title"), max_chars=200)
        field_error(save_key, "title")
        st.number_input("Amount", min_value=0.0, value=float(deal.amount), step=100.0, key=key("amount"))
        field_error(save_key, "amount")
        st.date_input("Expected close", value=deal.expected_close, key=key("expected_close"))
        if deal.status == DealStatus.OPEN:
            st.selectbox("Forecast category", CATEGORIES, index=CATEGORIES.index(deal.forecast_category)
                         if deal.forecast_category in CATEGORIES else 0, key=key("forecast_category"),
                         format_func=lambda c: c.value.replace("_", " ").capitalize())
        st.text_input("Next step", value=deal.next_step or "", key=key("next_step"), max_chars=300)
        st.caption(f"Editing version {key.generation}. If someone saves in between, you will be told who changed "
                   "what, and nothing is overwritten.")

        def save(s, who, v) -> str:
            changes = {name: value for name, value in v.items() if value != getattr(deal, name)}
            if "next_step" in changes:
                changes["next_step"] = changes["next_step"].strip() or None
            deals.update_deal(session=s, actor=who, deal_id=deal.id, seen_version=key.generation,
                              changes=DealChanges(**changes))
            return "Deal saved"

        done = submit_button("Save", key=save_key, form=key, action=save, type="primary")
    show_outcome(save_key, done)


def log_forms(actor: Actor, deal: DealView) -> None:
    log_col, task_col = st.columns(2)
    links = {"deal_id": deal.id, "contact_id": deal.contact_id}
    log_popover(log_col, f"deal_log_{deal.id}", links)
    task_popover(task_col, f"deal_task_{deal.id}", {"deal_id": deal.id}, actor)


def heading(deal: DealView) -> str:
    status = {DealStatus.WON: "won", DealStatus.LOST: f"lost ({deal.lost_reason or 'no reason'})"}.get(
        deal.status, "open")
    return " · ".join(md_escape(x) for x in (deal.pipeline, deal.stage, status, deal.owner) if x)


def explanation_panel(deal: DealView) -> None:
    """Why the model says what it says: the factors raising and lowering it, and what-ifs, in a rep's words."""
    why = explain_deal(deal.id, deal.version)
    if why is None:
        st.caption("No win model is live yet: an admin can train one on the Models page. Until then the stage "
                   "default is shown.")
        return
    with st.expander(f"Why the model says {why.probability:.0%} ({md_escape(why.tier)})", icon=":material/psychology:"):
        if deal.model_probability is None:
            st.caption("The live model's figure for this deal now. It is stored on the deal (the Model figure "
                       "above) by the next scoring run, `python -m crm score win`.")
        up, down = st.columns(2)
        with up:
            st.markdown("**Raising it**")
            for reason in why.raising or ["nothing stands out"]:
                st.markdown(f"- {md_escape(reason)}")
        with down:
            st.markdown("**Lowering it**")
            for reason in why.lowering or ["nothing stands out"]:
                st.markdown(f"- {md_escape(reason)}")
        if why.what_if:
            st.markdown("**What if…**")
            for scenario, probability in why.what_if:
                change = probability - why.probability
                st.markdown(f"- {md_escape(scenario)}: {probability:.0%} ({change:+.0%})")
