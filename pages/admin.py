"""Admin: users, teams, pipelines and stages, lost reasons, custom fields, quotas and web forms. Every change goes
through crm/."""
import streamlit as st

from crm import customfields, pipelines, users
from crm.audit import data_version
from crm.db import read_scope
from crm.models import Entity, Role
from crm.webforms import forms as webforms
from ui import session
from ui.admin_fields import fields_tab
from ui.admin_pipelines import lost_reasons_tab, pipelines_tab
from ui.admin_quotas import quotas_tab
from ui.admin_users import teams_tab, users_tab
from ui.admin_webforms import webforms_tab

actor = session.current_actor()
st.title("Admin")
# Navigation offers this page to admins only; the page refuses everyone else as well, and every use case
# behind its forms checks the actor's rights again.
if actor.role is not Role.ADMIN:
    st.error("Only admins can open the admin page.", icon=":material/block:")
    st.stop()

with read_scope() as s:
    people = users.list_users(session=s, actor=actor)
    teams = users.list_teams(session=s, actor=actor)
    all_pipelines = pipelines.list_pipelines(session=s)
    reasons = pipelines.list_lost_reasons(session=s, include_archived=True)
    field_defs = {e.value: customfields.all_field_defs(session=s, actor=actor, entity=e) for e in Entity}
    web_forms = webforms.list_forms(session=s, actor=actor)
    # Create forms start afresh whenever data changed (see ui/forms.py).
    generation = data_version(s)

users_tab_, teams_tab_, pipelines_tab_, reasons_tab_, fields_tab_, quotas_tab_, forms_tab_ = st.tabs(
    ["Users", "Teams", "Pipelines & stages", "Lost reasons", "Custom fields", "Quotas", "Web forms"])
with users_tab_:
    users_tab(people, teams, generation)
with teams_tab_:
    teams_tab(teams, generation)
with pipelines_tab_:
    pipelines_tab(all_pipelines, generation)
with reasons_tab_:
    lost_reasons_tab(reasons, generation)
with fields_tab_:
    fields_tab(field_defs, generation)
with quotas_tab_:  # reads its own rows: they depend on the tab's year and owner filters
    quotas_tab(people, teams, generation)
with forms_tab_:
    webforms_tab(actor, web_forms, field_defs["contact"], generation)
