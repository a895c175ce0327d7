"""Import: upload a CSV or XLSX file, check the suggested mapping, dry run, import with progress, revert.

Tests cannot upload through st.file_uploader, so the page also reads a file from session state:
st.session_state["import_test_file"] = {"name": "people.csv", "data": b"..."} (TEST_FILE below).
"""
import hashlib

import streamlit as st

from crm import imports
from crm.db import read_scope, session_scope
from crm.errors import CRMError
from ui import session
from ui.forms import clear_widgets
from ui.imports_form import mapping_form, saved_mappings
from ui.imports_results import history, reverted_notice, show_summary
from ui.text import md_escape

TEST_FILE = "import_test_file"
RESULT = "import_result"

actor = session.current_actor()
st.title("Import")
if not actor.can("data.import"):
    st.error("Your role may not import data.", icon=":material/block:")
    st.stop()
reverted_notice()

entities = [e for e in imports.ENTITIES if e != "users" or actor.can("users.manage")]
entity = st.selectbox("What the file holds", entities, key="import_entity", format_func=str.capitalize)
upload = st.file_uploader("CSV or XLSX file", type=["csv", "xlsx"], key="import_upload",
                          help="The first row names the columns. docs/import.md lists the columns of each kind.")
source = (upload.name, upload.getvalue()) if upload else (
    (st.session_state[TEST_FILE]["name"], st.session_state[TEST_FILE]["data"]) if TEST_FILE in st.session_state
    else None)


@st.cache_data(ttl=3600, max_entries=4, show_spinner="Reading the file …")
def _preview(_data: bytes, digest: str, name: str, entity: str, user_id: int):
    """The file's columns, sample and suggested mapping; keyed on the file's digest, not its bytes."""
    with read_scope() as s:
        return imports.preview_file(session=s, actor=actor, entity=entity, source=_data, filename=name)


def _progress(bar):
    def report(done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=f"{done:,} of {total:,} rows")
    return report


def _run(name: str, data: bytes, mapping, *, dry_run: bool):
    bar = st.progress(0.0, text="Starting …")
    try:
        with session_scope() as s:
            summary = imports.run_import(session=s, actor=actor, entity=entity, source=data, filename=name,
                                         mapping=mapping, dry_run=dry_run, progress=_progress(bar))
    except CRMError as exc:
        bar.empty()
        st.error(md_escape(exc.message), icon=":material/error:")
        return
    bar.empty()
    st.session_state[RESULT] = summary
    if not dry_run:
        _preview.clear()  # a new custom field changes the form's choices; other pages follow the data version
        st.toast(md_escape(f"Imported {summary.filename}: {summary.created:,} created, {summary.updated:,} "
                           f"updated, {summary.rejected:,} rejected"), icon=":material/check_circle:")


if source is None:
    st.info("Choose a file to see its columns and the suggested mapping.", icon=":material/upload_file:")
else:
    name, data = source
    digest = hashlib.sha256(data).hexdigest()
    if st.session_state.get("import_file_id") != (digest, entity):  # a new file or kind: a fresh form
        clear_widgets("import_map_", "import_type_", "import_date_order", "import_extra")
        st.session_state.pop(RESULT, None)
        st.session_state["import_file_id"] = (digest, entity)
    try:
        preview = _preview(data, digest, name, entity, actor.id)
    except CRMError as exc:
        st.error(md_escape(exc.message), icon=":material/error:")
        st.stop()
    with st.expander("Mapping", expanded=True, icon=":material/swap_horiz:"):
        mapping = mapping_form(entity, preview)
        saved_mappings(actor, entity, preview.headers, mapping)
    left, right = st.columns(2)
    dry = left.button("Dry run", key="import_dry_run", disabled=mapping is None, icon=":material/preview:",
                      help="Check every row and show what would change; nothing is saved.")
    commit = right.button("Import", key="import_commit", type="primary", disabled=mapping is None,
                          icon=":material/file_upload:")
    if dry or commit:
        _run(name, data, mapping, dry_run=dry)
    if RESULT in st.session_state:
        show_summary(st.session_state[RESULT])

st.divider()
history(actor)
