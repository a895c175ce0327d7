"""Caching for pages: results are keyed on the data-version counter, which every audited write bumps."""
from datetime import date

import streamlit as st

from crm import home
from crm.audit import data_version
from crm.clock import today
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
