"""The Automations page's rule list and firing log: what each rule does in words, how often it fired, and the
latest firings (filtered by rule, or the failed ones only) with a way to open the record a firing acted on."""
import pandas as pd
import streamlit as st

from crm.audit import data_version
from crm.automations.rules import RuleActivity, RuleView, firing_log
from crm.db import read_scope
from crm.permissions import Actor
from ui.automation_choices import Choices, action_words, trigger_words
from ui.navigation import COMPANY, CONTACT, DEAL
from ui.text import md_escape

PAGES = {"contact": CONTACT, "company": COMPANY, "deal": DEAL}  # tickets have no page of their own yet
LOG_ROWS = 200


def rule_table(rules: list[RuleView], activity: dict[int, RuleActivity], choices: Choices) -> None:
    none = RuleActivity(firings=0, failed=0, last_fired_at=None)
    st.dataframe(pd.DataFrame([{
        "Name": r.name, "When": trigger_words(r, choices), "Then": action_words(r, choices), "Active": r.active,
        "Last fired": activity.get(r.id, none).last_fired_at, "Firings": activity.get(r.id, none).firings,
        "Failed": activity.get(r.id, none).failed,
    } for r in rules], columns=["Name", "When", "Then", "Active", "Last fired", "Firings", "Failed"]),
        hide_index=True, key="auto_rules_table",
        column_config={"Last fired": st.column_config.DatetimeColumn(format="D MMM YYYY, HH:mm")})


@st.cache_data(ttl=600, max_entries=64, show_spinner=False)
def _log(actor: Actor, rule_id: int | None, failed_only: bool, version: int) -> pd.DataFrame:
    with read_scope() as s:
        return firing_log(session=s, actor=actor, rule_id=rule_id, failed_only=failed_only, limit=LOG_ROWS,
                          names=True)


def firing_log_panel(actor: Actor, rules: list[RuleView]) -> None:
    names = {r.id: r.name for r in rules}
    left, right = st.columns([3, 1])
    rule_id = left.selectbox("Rule", [None, *names], key="auto_log_rule",
                             format_func=lambda i: "Every rule (deleted ones too)" if i is None else names[i])
    right.write("")  # lines the toggle up with the select box
    failed_only = right.toggle("Failed only", key="auto_log_failed")
    with read_scope() as s:
        version = data_version(s)
    log = _log(actor, rule_id, failed_only, version)
    if log.empty:
        st.caption("No firings yet." if not failed_only else "No failed firings.")
        return
    st.caption(f"The latest {len(log):,} firings, newest first." if len(log) == LOG_ROWS else
               f"{len(log):,} {'firing' if len(log) == 1 else 'firings'}, newest first.")
    picked = st.dataframe(_shown(log), hide_index=True, on_select="rerun", selection_mode="single-row",
                          key="auto_log_table",
                          column_config={"When": st.column_config.DatetimeColumn(format="D MMM YYYY, HH:mm:ss")})
    rows = [i for i in picked.selection.rows if i < len(log)]
    if rows:
        _open_button(log.iloc[rows[0]])


def _shown(log: pd.DataFrame) -> pd.DataFrame:
    record = [f"{entity} {int(rid)}: {name}" if isinstance(name, str) else f"{entity} {int(rid)} (deleted)"
              for entity, rid, name in zip(log["entity"], log["record_id"], log["record"])]
    return pd.DataFrame({"When": log["at"], "Rule": log["rule"], "Record": record, "Occasion": log["occasion"],
                         "Status": log["outcome"], "What it did, or the error": log["detail"].fillna("")})


def _open_button(firing: pd.Series) -> None:
    page = PAGES.get(firing["entity"])
    if page is None or not isinstance(firing["record"], str):
        st.caption("This record has no page to open.")
        return
    label = f"Open {firing['entity']} {md_escape(firing['record'])}"
    if st.button(label, key="auto_log_open", icon=":material/open_in_new:"):
        st.switch_page(page.path, query_params={"id": str(int(firing["record_id"]))})
