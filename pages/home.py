"""Home: what each role sees first, read from the database through crm.home and crm.tasks.

Reps get their numbers, notifications, tasks inbox (done, snooze, undo) and open deals; every other role gets its
notifications and, if it has any, its tasks above its own overview (ui.inbox draws both)."""
import pandas as pd
import plotly.express as px
import streamlit as st

from crm.models import Role
from crm.permissions import Actor
from ui import inbox as inbox_view
from ui import session
from ui.cache import home_data, inbox_data


def money(value: float) -> str:
    return f"{value:,.0f}"


def amount(label: str):
    return st.column_config.NumberColumn(label, format="localized")


def when(label: str):
    return st.column_config.DatetimeColumn(label, format="D MMM YYYY, HH:mm")


def table(frame: pd.DataFrame, **columns) -> None:
    """A read-only table whose headers read as words ("open_amount" -> "Open amount") unless given."""
    config = {c: c.replace("_", " ").capitalize() for c in frame.columns} | columns
    st.dataframe(frame, hide_index=True, column_config=config)


def rep(actor: Actor) -> None:
    data, inbox = home_data("rep_home", actor), inbox_data(actor)
    open_tasks = sum(inbox.counts[bucket] for bucket in inbox_view.OPEN_BUCKETS)
    cols = st.columns(4)
    cols[0].metric("Open deals", f"{data.open_deal_count:,}")
    cols[1].metric("Open amount", money(data.open_amount))
    cols[2].metric("Weighted amount", money(data.weighted_amount),
                   help="Amount × probability: yours if you set one, else the model's, else the stage's.")
    cols[3].metric("Open tasks", f"{open_tasks:,}",
                   help="Overdue, due today and due in the next 7 days.")

    inbox_view.show_notifications(actor, inbox)
    st.subheader("My tasks")
    inbox_view.show_tasks(actor, inbox)

    st.subheader("My open deals")
    if data.open_deals.empty:
        st.info("No open deals yet.")
    else:
        table(data.open_deals.drop(columns="id"), title="Deal", amount=amount("Amount"),
              probability=st.column_config.NumberColumn("Probability", format="percent"),
              expected_close=st.column_config.DateColumn("Expected close", format="D MMM YYYY"))


def inbox_first(actor: Actor) -> None:
    """Every other role: their notifications (rules notify any owner), and their tasks if they have some."""
    inbox = inbox_data(actor)
    inbox_view.show_notifications(actor, inbox, compact=True)
    if inbox_view.worth_listing(inbox):
        st.subheader("My tasks")
        inbox_view.show_tasks(actor, inbox, compact=True)
    st.divider()


def manager(actor: Actor) -> None:
    pipeline, reps = home_data("team_pipeline", actor), home_data("team_reps", actor)
    who = "everyone's" if actor.can("deals.read_all") else "your team's"
    st.caption(f"Open pipeline: {who} open deals.")
    cols = st.columns(3)
    cols[0].metric("Open deals", f"{int(pipeline['deals'].sum()) if not pipeline.empty else 0:,}")
    cols[1].metric("Open pipeline", money(pipeline["amount"].sum() if not pipeline.empty else 0))
    cols[2].metric("Weighted pipeline", money(pipeline["weighted"].sum() if not pipeline.empty else 0))

    st.subheader("Open pipeline by stage")
    if pipeline.empty:
        st.info("Your team has no open deals.")
    else:
        fig = px.bar(pipeline, x="stage", y="amount", color="pipeline", facet_col="pipeline",
                     hover_data={"deals": True, "weighted": ":,.0f", "pipeline": False},
                     labels={"amount": "Open amount", "stage": ""})
        fig.update_xaxes(matches=None)
        fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
        fig.update_layout(showlegend=False, margin=dict(t=40, b=10), height=360)
        st.plotly_chart(fig)
        table(pipeline.round({"amount": 0, "weighted": 0}), amount=amount("Open amount"), weighted=amount("Weighted"))

    st.subheader("Reps")
    if reps.empty:
        st.info("No rep on your team owns a deal yet.")
    else:
        table(reps.round({"open_amount": 0, "weighted": 0, "won_this_quarter": 0}),
              open_amount=amount("Open amount"), weighted=amount("Weighted"),
              won_this_quarter=amount("Won this quarter"))


def marketer(actor: Actor) -> None:
    data = home_data("marketer_home", actor)
    cols = st.columns(4)
    cols[0].metric("Contacts", f"{data.total:,}")
    cols[1].metric("Opted in to email", f"{data.opted_in:,}")
    cols[2].metric("Do not contact", f"{data.do_not_contact:,}")
    cols[3].metric("New in the last 30 days", f"{data.new_last_30_days:,}")

    st.subheader("Contacts by lifecycle stage")
    if data.by_stage.empty:
        st.info("No contacts yet.")
    else:
        fig = px.bar(data.by_stage, x="stage", y="contacts", labels={"stage": "", "contacts": "Contacts"})
        fig.update_layout(margin=dict(t=10, b=10), height=320)
        st.plotly_chart(fig)

    st.subheader("Segments")
    if not data.segments:
        st.info("No segments yet.")
    else:
        cols = st.columns(max(len(data.segments), 2))
        for col, (kind, n) in zip(cols, sorted(data.segments.items())):
            col.metric(f"{kind.capitalize()} segments", f"{n:,}")


def admin(actor: Actor) -> None:
    data = home_data("admin_home", actor)
    cols = st.columns(len(data.counts))
    for col, (label, count) in zip(cols, data.counts.items()):
        col.metric(label.capitalize(), f"{count:,}")
    st.subheader("Recent changes")
    if data.recent_changes.empty:
        st.info("Nothing in the audit trail yet.")
    else:
        table(data.recent_changes, at=when("When"), record_id=st.column_config.NumberColumn("Record", format="plain"))


VIEWS = {Role.REP: rep, Role.MANAGER: manager, Role.MARKETER: marketer, Role.ADMIN: admin}

actor = session.current_actor()
st.title("Home")
st.text(f"Welcome, {actor.full_name}.")
if actor.role != Role.REP:
    inbox_first(actor)
VIEWS[actor.role](actor)
