"""The pipeline: a kanban board per pipeline (a deal moves with one choice) and a table for inline edits."""
import streamlit as st

from crm.errors import CRMError
from ui import session
from ui.deal_board import board_filter, show_board, show_table
from ui.pipeline_data import deal_table, lookups, pipeline_board
from ui.text import md_escape

CARDS_PER_COLUMN = 20
TABLE_ROWS = 200

actor = session.current_actor()
st.title("Pipeline")
known = lookups(actor)
flt = board_filter(actor, known)
if flt is None:
    st.stop()
pipeline = next(p for p in known.pipelines if p.id == flt.pipeline_id)
board_tab, table_tab = st.tabs(["Board", "Table"])
try:
    with board_tab:
        show_board(pipeline_board(actor, flt, CARDS_PER_COLUMN), known)
    with table_tab:
        frame, total = deal_table(actor, flt, TABLE_ROWS)
        show_table(frame, total, pipeline, flt)
except CRMError as exc:
    st.error(md_escape(exc.message), icon=":material/block:")
