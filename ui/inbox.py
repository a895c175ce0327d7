"""The home page's tasks inbox and notifications.

Each open task is a row: subject, links to its contact and deal, when it is due, and Done and Snooze. The task
just done can be reopened for a few minutes (Undo). Notifications are listed newest first, with mark read.
Every click runs one crm use case in the button's callback (so its toast survives and the body shows the
changed data); task clicks carry the version the row showed, so a change made meanwhile elsewhere (another tab,
a manager) is reported as a conflict instead of being overwritten.
"""
from datetime import datetime, timedelta

import streamlit as st

from crm import notifications, tasks
from crm.clock import today, utcnow
from crm.errors import CRMError, EditConflict
from crm.notifications import NotificationView
from crm.permissions import Actor
from crm.tasks import SNOOZE_CHOICES, TaskInbox, TaskItem
from ui.forms import describe, run_action
from ui.navigation import COMPANY, CONTACT, DEAL, pages_for
from ui.text import md_escape

BUCKETS = {"overdue": ":red[Overdue]", "due_today": "Due today", "upcoming": "Next 7 days", "snoozed": "Snoozed"}
OPEN_BUCKETS = ("overdue", "due_today", "upcoming")
ERROR = "home_inbox_error"  # (message, is a conflict) of the task click that just failed, shown once
NOTE_ERROR = "home_notes_error"  # the same for the notifications
UNDO = "home_inbox_undo"  # (task id, version, subject, done at) of the task just done
UNDO_WINDOW = timedelta(minutes=10)
COMPACT_NOTES = 5  # notifications listed on the home of roles whose page is about something else


def worth_listing(inbox: TaskInbox) -> bool:
    """Whether to show the task inbox to someone whose home is about something else: they have tasks, or a click
    in it just did something (the Undo of their last task, or an error)."""
    return any(inbox.counts.values()) or UNDO in st.session_state or ERROR in st.session_state


def when(moment: datetime | None) -> str:
    return f"{moment:%a %d %b, %H:%M} UTC" if moment else "no due date"


# --- actions (button callbacks) ---------------------------------------------------------------------------------

def _run(action, what: str, error_key: str = ERROR):
    """Run a use case as the signed-in user; a failure is kept for the body to show. Returns what it returned."""
    result = run_action(action)
    if isinstance(result, CRMError):
        st.session_state[error_key] = (f"{what}: {describe(result)}", isinstance(result, EditConflict))
        return None
    return result


def _done(item: TaskItem) -> None:
    done = _run(lambda s, who: tasks.complete_task(session=s, actor=who, task_id=item.id, seen_version=item.version),
                item.subject)
    if done is not None:
        st.session_state[UNDO] = (done.id, done.version, done.subject, utcnow())
        st.toast(f"Done: {md_escape(done.subject)}", icon=":material/task_alt:")


def _undo() -> None:
    task_id, version, subject, _ = st.session_state.pop(UNDO)
    if _run(lambda s, who: tasks.reopen_task(session=s, actor=who, task_id=task_id, seen_version=version), subject):
        st.toast(f"Reopened: {md_escape(subject)}", icon=":material/undo:")


def _snooze(item: TaskItem, choice: str, date_key: str | None = None) -> None:
    on = st.session_state.get(date_key) if date_key else None
    snoozed = _run(lambda s, who: tasks.snooze_task(session=s, actor=who, task_id=item.id, seen_version=item.version,
                                                    until=tasks.snooze_moment(choice, utcnow(), on)), item.subject)
    if snoozed is not None:
        st.toast(f"Snoozed until {when(snoozed.snoozed_until)}: {md_escape(snoozed.subject)}",
                 icon=":material/snooze:")


def _mark_read(ids: list[int] | None) -> None:
    marked = _run(lambda s, who: notifications.mark_read(session=s, actor=who, notification_ids=ids), "Notifications",
                  NOTE_ERROR)
    if marked:
        st.toast(f"{marked:,} notification{'s' if marked != 1 else ''} marked read", icon=":material/done_all:")


# --- the task inbox ---------------------------------------------------------------------------------------------

def show_tasks(actor: Actor, inbox: TaskInbox, *, compact: bool = False) -> None:
    """The buckets with a row per task (compact: only buckets with tasks); the outcome of the last click above."""
    _show_error(ERROR)
    _offer_undo()
    if not any(inbox.counts[b] for b in OPEN_BUCKETS) and not inbox.counts["snoozed"]:
        st.success("No open tasks — nice.")
        return
    deals = DEAL in pages_for(actor.role)
    for bucket, label in BUCKETS.items():
        items, total = getattr(inbox, bucket), inbox.counts[bucket]
        if not total and (compact or bucket == "snoozed"):
            continue
        shown = f"{total:,}" if total <= len(items) else f"first {len(items)} of {total:,}"
        st.markdown(f"**{label}** ({shown})")
        if not items:
            st.caption("Nothing here.")
        for item in items:
            _task_row(item, deals=deals, snoozed=bucket == "snoozed")


def _show_error(key: str) -> None:
    if failure := st.session_state.pop(key, None):
        message, conflict = failure
        st.error(md_escape(message), icon=":material/sync_problem:" if conflict else ":material/error:")
        if conflict:
            st.caption("The list below shows the task as it is now.")


def _offer_undo() -> None:
    undo = st.session_state.get(UNDO)
    if undo is None or utcnow() - undo[3] > UNDO_WINDOW:
        st.session_state.pop(UNDO, None)
        return
    text, button = st.columns([5, 1], vertical_alignment="center")
    text.markdown(f":material/task_alt: Done: **{md_escape(undo[2])}**")
    button.button("Undo", key="home_task_undo", on_click=_undo, icon=":material/undo:")


def _task_row(item: TaskItem, *, deals: bool, snoozed: bool) -> None:
    with st.container(border=True):
        subject, links, done, snooze = st.columns([5, 4, 1.4, 1.7], vertical_alignment="center")
        subject.markdown(f"**{md_escape(item.subject)}**")
        subject.caption(f"Snoozed until {when(item.snoozed_until)}" if snoozed else f"Due {when(item.due_at)}")
        with links:
            _links(item, deals=deals)
        done.button("Done", key=f"home_task_done_{item.id}", on_click=_done, args=(item,),
                    icon=":material/check:", type="primary")
        with snooze.popover("Snooze", icon=":material/snooze:", key=f"home_task_snooze_{item.id}"):
            _snooze_choices(item)


def _links(item: TaskItem, *, deals: bool) -> None:
    if item.contact_id is not None:
        st.page_link(CONTACT.path, label=md_escape(item.contact or "Contact"), icon=":material/person:",
                     query_params={"id": str(item.contact_id)})
    if item.deal_id is not None and deals:
        st.page_link(DEAL.path, label=md_escape(item.deal or "Deal"), icon=":material/handshake:",
                     query_params={"id": str(item.deal_id)})
    elif item.deal_id is not None:
        st.caption(md_escape(item.deal or "Deal"))
    if item.contact_id is None and item.deal_id is None:
        st.caption("—")


def _snooze_choices(item: TaskItem) -> None:
    for choice, label in SNOOZE_CHOICES.items():
        if choice != "date":
            st.button(label, key=f"home_task_snooze_{item.id}_{choice}", on_click=_snooze, args=(item, choice),
                      width="stretch")
    date_key = f"home_task_snooze_on_{item.id}_v{item.version}"
    st.date_input("Or until the morning of", value=today() + timedelta(days=2), min_value=today(),
                  max_value=today() + timedelta(days=365), key=date_key, format="DD/MM/YYYY")
    st.button("Snooze until then", key=f"home_task_snooze_{item.id}_date", on_click=_snooze,
              args=(item, "date", date_key), width="stretch")


# --- notifications ----------------------------------------------------------------------------------------------

def show_notifications(actor: Actor, inbox: TaskInbox, *, compact: bool = False) -> None:
    """The actor's notifications, newest first, with an unread badge; compact lists fewer under a bold line."""
    title, badge, everything = st.columns([4, 1.2, 1.6], vertical_alignment="center")
    if compact:
        title.markdown("**Notifications**")
    else:
        title.subheader("Notifications")
    unread = inbox.unread_notifications
    badge.badge(f"{unread:,} unread", color="red" if unread else "gray", icon=":material/notifications:")
    everything.button("Mark all read", key="home_notes_read_all", on_click=_mark_read, args=(None,),
                      disabled=not unread, icon=":material/done_all:")
    _show_error(NOTE_ERROR)
    notes = inbox.notifications[:COMPACT_NOTES] if compact else inbox.notifications
    if not notes:
        st.caption("No notifications yet. Automation rules leave them here (a new lead of yours, an idle deal).")
    pages = pages_for(actor.role)
    for note in notes:
        _note_row(note, pages)
    if unread > sum(n.read_at is None for n in notes):
        st.caption(f"The latest {len(notes)} are listed; {unread:,} unread in all.")


def _note_row(note: NotificationView, pages) -> None:
    message, link, stamp, read = st.columns([6, 2, 2.5, 1.6], vertical_alignment="center")
    message.markdown(f"**{md_escape(note.message)}**" if note.read_at is None else md_escape(note.message))
    target = {"contact": CONTACT, "company": COMPANY, "deal": DEAL}.get(note.entity or "")
    if target in pages and note.record_id is not None:
        link.page_link(target.path, label=f"Open the {note.entity}", icon=":material/open_in_new:",
                       query_params={"id": str(note.record_id)})
    stamp.caption(when(note.created_at))
    if note.read_at is None:
        read.button("Mark read", key=f"home_note_read_{note.id}", on_click=_mark_read, args=([note.id],))
