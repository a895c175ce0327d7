"""The two quick actions every record page offers: log what happened, and create a task."""
from datetime import datetime, time, timedelta

import streamlit as st

from crm.activities import ActivityInput, log_activity
from crm.clock import utcnow
from crm.models import ActivityKind
from crm.permissions import Actor
from ui.directory import version
from ui.forms import FormKeys, field_error, show_outcome, submit_button

LOGGED = [ActivityKind.CALL, ActivityKind.EMAIL, ActivityKind.MEETING, ActivityKind.NOTE]


def log_popover(slot, stem: str, links: dict[str, int | None]) -> None:
    """A call, email, meeting or note on the record that `links` names (contact_id, company_id, deal_id); `stem`
    starts every widget key."""
    with slot.popover("Log a call, email, meeting or note", icon=":material/call:"):
        key = FormKeys(f"{stem}_", version())
        with st.form(f"{stem}_form"):
            st.radio("Kind", LOGGED, format_func=lambda k: k.value.capitalize(), horizontal=True, key=key("kind"))
            st.text_input("Subject", key=key("subject"), max_chars=200)
            field_error(f"{stem}_save", "subject")
            st.text_area("Notes", key=key("body"), max_chars=10_000)

            def log(s, who, v) -> str:
                log_activity(session=s, actor=who, data=ActivityInput(
                    kind=v["kind"], subject=v["subject"] or "", body=v["body"], **links))
                return f"{v['kind'].value.capitalize()} logged"

            done = submit_button("Log it", key=f"{stem}_save", form=key, action=log, type="primary")
        show_outcome(f"{stem}_save", done)


def task_popover(slot, stem: str, links: dict[str, int | None], actor: Actor,
                 assignable: dict[int, str] | None = None) -> None:
    """A task due on a day (5 pm UTC), for the actor or, given `assignable`, someone they may hand work to."""
    with slot.popover("Create a task", icon=":material/task_alt:"):
        key = FormKeys(f"{stem}_", version())
        with st.form(f"{stem}_form"):
            st.text_input("Task", key=key("subject"), max_chars=200)
            field_error(f"{stem}_save", "subject")
            st.date_input("Due", value=utcnow().date() + timedelta(days=1), key=key("due"))
            if assignable:
                people = list(assignable)
                st.selectbox("For", people, index=people.index(actor.id) if actor.id in people else 0,
                             format_func=lambda i: assignable.get(i, actor.full_name), key=key("assignee"))

            def task(s, who, v) -> str:
                due = datetime.combine(v["due"], time(17, 0)).replace(tzinfo=utcnow().tzinfo) if v["due"] else None
                log_activity(session=s, actor=who, data=ActivityInput(
                    kind=ActivityKind.TASK, subject=v["subject"] or "", due_at=due, assignee_id=v.get("assignee"),
                    **links))
                return "Task created"

            done = submit_button("Create task", key=f"{stem}_save", form=key, action=task)
        show_outcome(f"{stem}_save", done)
