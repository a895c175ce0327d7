"""Download buttons for tables; every file goes through crm.exporting, which neutralises spreadsheet formulas."""
from collections.abc import Callable

import pandas as pd
import streamlit as st

from crm.db import read_scope
from crm.exporting import FORMATS, export_filename, frame_to_bytes


def export_buttons(make_frame: Callable[..., pd.DataFrame], *, stem: str, key: str, label: str = "Export") -> None:
    """CSV and XLSX buttons; the file is built only when one is clicked. make_frame(session) returns the table."""
    def build(fmt: str) -> Callable[[], bytes]:
        def data() -> bytes:
            with read_scope() as s:
                return frame_to_bytes(make_frame(s), fmt)
        return data

    cols = st.columns(len(FORMATS))
    for col, fmt in zip(cols, FORMATS):
        col.download_button(f"{label} {fmt.upper()}", data=build(fmt), file_name=export_filename(stem, fmt),
                            mime=FORMATS[fmt], key=f"{key}_{fmt}", icon=":material/download:", on_click="ignore")
