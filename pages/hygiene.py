"""Data hygiene for admins and managers: duplicates and their merges (with undo), stale contacts, incomplete
records, consistent formatting, tags and lists, and the history of every clean-up job with its revert.

Each tab's widgets and reads live in ui/hygiene_*.py; every change goes through crm.hygiene, which checks the
`data.hygiene` right and the actor's edit scope again."""
import streamlit as st

from ui import session
from ui.hygiene_merge import duplicates_tab, merge_log_tab
from ui.hygiene_tools import (formatting_tab, incomplete_tab, jobs_tab, lists_tab, stale_tab,
                              tags_tab)

actor = session.current_actor()
st.title("Data hygiene")
if not actor.can("data.hygiene"):
    st.info("Data hygiene is for managers and admins.", icon=":material/lock:")
    st.stop()

tabs = st.tabs(["Duplicates", "Merge log", "Stale contacts", "Incomplete records", "Formatting", "Tags", "Lists",
                "Job history"])
for tab, draw in zip(tabs, [duplicates_tab, merge_log_tab, stale_tab, incomplete_tab, formatting_tab, tags_tab,
                            lists_tab, jobs_tab]):
    with tab:
        draw(actor)
