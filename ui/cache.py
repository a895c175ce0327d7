"""Caching for pages: results are keyed on the data-version counter, which every audited write bumps."""
from datetime import date

import streamlit as st

from crm import home, tasks
from crm.audit import data_version
from crm.clock import today, utcnow
from crm.db import read_scope
from crm.permissions import Actor


@st.cache_data(ttl=3600, max_entries=256, show_spinner=False)
def _home(view: str, actor: Actor, version: int, day: date):
    with read_scope() as session:
        return getattr(home, view)(session=session, actor=actor)


def home_data(view: str, actor: Actor):
    """A crm.home view for this actor; recomputed after any write, and each new day (due-today lists move)."""
    with read_scope() as session:
        version = data_version(session)
    return _home(view, actor, version, today())


SNOOZE_TICK_MINUTES = 5  # a snooze that ends shows its task again within this many minutes
INBOX_ROWS = 10  # tasks per bucket and notifications the home page lists; the counts are always complete


@st.cache_data(ttl=600, max_entries=256, show_spinner=False)
def _inbox(actor: Actor, version: int, day: date, tick: int) -> tasks.TaskInbox:
    with read_scope() as session:
        return tasks.task_inbox(session=session, actor=actor, limit=INBOX_ROWS)


def inbox_data(actor: Actor) -> tasks.TaskInbox:
    """The actor's tasks inbox and notifications; recomputed after any write, each new day, and every few minutes
    (snoozes end by the clock, not by a write)."""
    with read_scope() as session:
        version = data_version(session)
    now = utcnow()
    return _inbox(actor, version, now.date(), (now.hour * 60 + now.minute) // SNOOZE_TICK_MINUTES)
