"""Cached reads for the pipeline and deal pages, keyed on the data version so every write shows at once."""
from dataclasses import dataclass

import streamlit as st

from crm import board, pipelines, users
from crm.db import read_scope
from crm.models import LostReasonView, PipelineView, TeamView
from crm.permissions import Actor
from ui.directory import version


@dataclass(frozen=True)
class PipelineLookups:
    pipelines: list[PipelineView]
    lost_reasons: list[LostReasonView]
    owners: dict[int, str]  # people whose deals the actor may see
    teams: list[TeamView]


@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def _lookups(actor: Actor, data_version: int) -> PipelineLookups:
    with read_scope() as s:
        return PipelineLookups(pipelines=pipelines.list_pipelines(session=s),
                               lost_reasons=pipelines.list_lost_reasons(session=s),
                               owners=dict(users.reader_choices(session=s, actor=actor, area="deals")),
                               teams=users.list_teams(session=s, actor=actor))


def lookups(actor: Actor) -> PipelineLookups:
    return _lookups(actor, version())


@st.cache_data(ttl=600, max_entries=128, show_spinner=False)
def _board(actor: Actor, flt: board.BoardFilter, per_column: int, data_version: int) -> board.Board:
    with read_scope() as s:
        return board.pipeline_board(session=s, actor=actor, flt=flt, per_column=per_column)


def pipeline_board(actor: Actor, flt: board.BoardFilter, per_column: int) -> board.Board:
    return _board(actor, flt, per_column, version())


@st.cache_data(ttl=600, max_entries=128, show_spinner=False)
def _table(actor: Actor, flt: board.BoardFilter, limit: int, data_version: int):
    with read_scope() as s:
        return board.deal_table(session=s, actor=actor, flt=flt, limit=limit)


def deal_table(actor: Actor, flt: board.BoardFilter, limit: int):
    return _table(actor, flt, limit, version())
