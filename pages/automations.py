"""Automations (admins): the rules with what they do in words and how often they fired, a form to create one, one
to edit, switch or delete a rule, and the firing log. Every change goes through crm.automations.rules."""
import streamlit as st

from crm.models import Role
from ui import session
from ui.automation_choices import page_data
from ui.automation_editor import create_form, edit_form
from ui.automation_log import firing_log_panel, rule_table

actor = session.current_actor()
st.title("Automations")
# Navigation offers this page to admins only; the page refuses everyone else as well, and every use case
# behind its forms checks the actor's rights again.
if actor.role is not Role.ADMIN:
    st.error("Only admins can open the automations page.", icon=":material/block:")
    st.stop()

data = page_data(actor)
rules_tab, new_tab, log_tab = st.tabs(["Rules", "New rule", "Firing log"])
with rules_tab:
    if not data.rules:
        st.caption("No rules yet: create one in the New rule tab.")
    else:
        rule_table(data.rules, data.activity, data.choices)
        st.subheader("Edit a rule")
        names = {r.id: r.name for r in data.rules}
        picked = st.selectbox("Rule", list(names), key="auto_rule_pick", format_func=names.get)
        with st.container(border=True):
            edit_form(next(r for r in data.rules if r.id == picked), data.choices)
with new_tab:
    create_form(data.choices, data.generation)
with log_tab:
    firing_log_panel(actor, data.rules)
