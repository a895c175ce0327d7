"""The models: each one's card (tier, data minimums, metrics against baselines, reliability, importance, drift),
retraining with progress for admins, and the cross-sell model's top buyers turned into a segment and tasks."""
from contextlib import nullcontext
from datetime import datetime, time, timedelta

import streamlit as st

from crm.clock import today, utcnow
from crm.errors import CRMError
from ui import session, training
from ui.forms import act
from ui.model_cards import show_card
from ui.model_data import card, products, top_buyers
from ui.text import md_escape

MODELS = {"win": "Win probability", "cross-sell": "Cross-sell", "lead": "Lead scoring"}

actor = session.current_actor()
st.title("Models")
st.caption("Every number here is from a holdout the model never saw while fitting. A model goes live only when it "
           "is at least as good as the live one on the same holdout.")


@st.fragment(run_every=2)
def _progress(model: str) -> None:
    run = training.current(model)
    if run is None:
        return
    if run.running:
        last = run.output().strip().splitlines()[-1:] or ["starting…"]
        st.info(f"Training {MODELS[model].lower()}… {run.elapsed:.0f} s · {md_escape(last[0][:200])}",
                icon=":material/hourglass_top:")
        return
    summary = run.summary()
    if summary is None:
        st.error(f"Training failed: {md_escape(run.output().strip().splitlines()[-1:] or ['no output'])}",
                 icon=":material/error:")
    else:
        verdict = "is live now" if summary.get("promoted") else "stayed a challenger"
        st.success(f"Trained version {md_escape(summary.get('version'))} in {run.elapsed:.0f} s: it {verdict}. "
                   f"{md_escape(summary.get('reason', ''))}", icon=":material/check_circle:")
    st.cache_data.clear()
    st.cache_resource.clear()


def _retrain(model: str) -> None:
    if not actor.can("admin.configure"):
        return
    run = training.current(model)
    busy = run is not None and run.running
    if st.button(f"Retrain {MODELS[model].lower()}", key=f"retrain_{model}", disabled=busy,
                 icon=":material/model_training:"):
        training.start(model)
    _progress(model)


def _cross_sell_targets() -> None:
    st.subheader("Likely buyers")
    names = products()
    if not names:
        st.caption("No products yet.")
        return
    product = st.selectbox("Product", names, key="xs_product")
    n = st.number_input("How many", min_value=10, max_value=5000, value=100, step=10, key="xs_n")
    try:
        buyers = top_buyers(actor, product, int(n))
    except CRMError as exc:
        st.info(md_escape(exc.message), icon=":material/info:")
        return
    st.dataframe(buyers, hide_index=True, key="xs_buyers", column_config={
        "probability": st.column_config.NumberColumn("Probability", format="percent"),
        "evidence": st.column_config.TextColumn("Why", width="large")})
    if not actor.can("segments.manage") or buyers.empty:
        return
    ids = [int(i) for i in buyers["id"]]
    left, right = st.columns(2)
    with left.form("xs_segment_form"):
        name = st.text_input("Segment name", value=f"Likely buyers of {product} ({today():%Y-%m-%d})",
                             max_chars=120, key="xs_segment_name")
        if st.form_submit_button("Save as a static segment", type="primary"):
            act(lambda s, who: _segment(s, who, name, product, ids))
    with right.form("xs_tasks_form"):
        subject = st.text_input("Task", value=f"Offer {product}", max_chars=200, key="xs_task_subject")
        due = st.date_input("Due", value=today() + timedelta(days=7), key="xs_task_due")
        if st.form_submit_button("Create follow-up tasks for reps"):
            act(lambda s, who: _tasks(s, who, ids, subject, due))


def _segment(s, who, name: str, product: str, ids: list[int]) -> str:
    from crm.targets import save_static_segment

    made = save_static_segment(session=s, actor=who, name=name, contact_ids=ids,
                               definition={"model": "cross-sell", "product": product, "top": len(ids)})
    return f"Segment {made.name} saved with {made.members:,} contacts"


def _tasks(s, who, ids: list[int], subject: str, due) -> str:
    from crm.targets import assign_follow_up_tasks

    done = assign_follow_up_tasks(session=s, actor=who, contact_ids=ids, subject=subject,
                                  due_at=datetime.combine(due, time(17, 0)).replace(tzinfo=utcnow().tzinfo))
    skipped = f"; {len(done.unassigned)} contacts have no team with reps" if done.unassigned else ""
    return f"{done.created:,} tasks created for {len(done.by_rep)} reps{skipped}"


for tab, model in zip(st.tabs(list(MODELS.values())), MODELS):
    with tab:
        _retrain(model)
        try:
            # Drift compares today's inputs with training's: it reads today's data, so it runs when asked for.
            drift = st.toggle("Check input drift since training", key=f"drift_{model}")
            with st.spinner("Reading today's inputs…") if drift else nullcontext():
                show_card(card(model, drift=drift))
        except CRMError as exc:
            st.error(md_escape(exc.message), icon=":material/error:")
        if model == "cross-sell":
            _cross_sell_targets()
