"""Hygiene page, Stale contacts tab: who has not engaged for N days, computed on request (it takes seconds on a big
CRM), and archived in bulk after a confirmation, as one job that Job history can revert."""
import pandas as pd
import streamlit as st

from crm.db import read_scope
from crm.hygiene.stale import MAX_DAYS, StaleReport, archive_stale_contacts, stale_contacts
from crm.permissions import Actor
from ui.hygiene_shared import action_button, ask, asked, count_words, forget, freshness_note, pager, show_result

ASKED, CONFIRM, PAGE = "hyg_stale_asked", "hyg_stale_confirm", "hyg_stale_page"
PAGE_SIZE = 50
COLUMNS = {"name": "Name", "email": "Email", "owner": "Owner", "lifecycle_stage": "Stage", "created_at": "Created",
           "last_engaged_at": "Last engagement"}


@st.cache_data(ttl=1800, max_entries=32, show_spinner=False)
def _report(actor: Actor, days: int, page: int, data_version: int) -> StaleReport:
    with read_scope() as s:
        return stale_contacts(session=s, actor=actor, days=days, page=page, page_size=PAGE_SIZE)


def stale_tab(actor: Actor) -> None:
    st.caption("A contact is stale when nothing happened with it for N days: no call, email, meeting or note, web "
               "visit, order, ticket, survey answer or closed deal, and no open deal, ticket or task. Archiving "
               "hides them like a delete, as one job you can revert from Job history.")
    with st.form("hyg_stale_form", border=False):
        st.number_input("No engagement for (days)", min_value=1, max_value=MAX_DAYS, value=365, step=1,
                        key="hyg_stale_days")
        st.form_submit_button("Find stale contacts", key="hyg_stale_find", icon=":material/search:", on_click=_ask)
    show_result("hyg_stale_archive_yes")
    request = asked(ASKED)
    if request is None:
        return
    with st.spinner("Looking for stale contacts…"):
        report = _report(actor, request["days"], pager_value(), request["version"])
    freshness_note(request)
    _summary(report)
    if report.total:
        _rows(report)
        _archive(report)


def _ask() -> None:
    ask(ASKED, days=int(st.session_state["hyg_stale_days"]))
    forget(CONFIRM, PAGE)


def pager_value() -> int:
    return int(st.session_state.get(PAGE, 1))


def _summary(report: StaleReport) -> None:
    st.metric(f"Stale for {report.days:,} days", f"{report.total:,}",
              help=f"No engagement since {report.cutoff:%Y-%m-%d %H:%M} UTC, among the contacts you may edit.")
    if not report.total:
        st.success("No stale contacts among those you may edit.", icon=":material/check_circle:")
        return
    by_owner, by_stage = st.columns(2)
    by_owner.dataframe(pd.DataFrame(list(report.by_owner.items()), columns=["Owner", "Stale"]), hide_index=True,
                       key="hyg_stale_by_owner")
    by_stage.dataframe(pd.DataFrame(list(report.by_stage.items()), columns=["Stage", "Stale"]), hide_index=True,
                       key="hyg_stale_by_stage")


def _rows(report: StaleReport) -> None:
    pager(report.total, PAGE_SIZE, key=PAGE)
    st.dataframe(report.rows[list(COLUMNS)].rename(columns=COLUMNS), hide_index=True, key="hyg_stale_rows",
                 column_config={"Created": st.column_config.DatetimeColumn(format="YYYY-MM-DD"),
                                "Last engagement": st.column_config.DatetimeColumn(format="YYYY-MM-DD")})
    st.caption("Last engagement is the latest of any kind, ever (None: there never was one).")


def _archive(report: StaleReport) -> None:
    noun = count_words(report.total, "contact")
    if not st.session_state.get(CONFIRM):
        st.button(f"Archive these {noun}", key="hyg_stale_archive", icon=":material/archive:",
                  on_click=lambda: st.session_state.update({CONFIRM: True}))
        return
    st.warning(f"Archive {noun} stale for {report.days:,} days? They leave lists, search, segments and KPIs. "
               "Job history can bring them all back.", icon=":material/warning:")
    yes, no = st.columns([1, 4])
    with yes:
        action_button(f"Yes, archive {noun}", key="hyg_stale_archive_yes", type="primary",
                      action=lambda s, who: _archived(s, who, report), after=lambda: forget(ASKED, CONFIRM, PAGE))
    no.button("Cancel", key="hyg_stale_archive_no", on_click=lambda: forget(CONFIRM))


def _archived(s, actor: Actor, report: StaleReport) -> str:
    """Archive every contact stale now (the data may have moved since the list was computed)."""
    done = archive_stale_contacts(session=s, actor=actor, days=report.days)
    moved = "" if done.archived == report.total else f" (the list counted {report.total:,}; the data changed since)"
    return (f"Archived {count_words(done.archived, 'contact')} as job #{done.job_id}{moved}. "
            "Revert it from Job history to bring them back.")
