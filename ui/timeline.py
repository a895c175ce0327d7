"""The 360° timeline: newest first, filterable by kind; user text is shown as plain text."""
import pandas as pd
import streamlit as st

from crm.timeline import GROUPS, TimelineItem

def show_timeline(items: list[TimelineItem], *, key: str) -> None:
    st.subheader("Timeline")
    st.multiselect("Show", GROUPS, default=GROUPS, key=key, format_func=str.capitalize)
    if not items:
        st.caption("Nothing to show yet.")
        return
    # A dataframe shows every value as text: names and notes typed by anyone can never become markup.
    st.dataframe(pd.DataFrame([{
        "When": i.at, "Kind": i.kind.replace("_", " "), "What": i.title,
        "Details": i.detail or "", "By": i.by or "",
    } for i in items]), hide_index=True, key=f"{key}_table", height=min(800, 35 * (len(items) + 1) + 3),
        column_config={"When": st.column_config.DatetimeColumn(format="D MMM YYYY, HH:mm"),
                       "Details": st.column_config.TextColumn(width="large")})
