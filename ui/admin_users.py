"""Admin page, Users and Teams tabs: lists and forms; every change goes through crm.users."""
import pandas as pd
import streamlit as st

from crm import users
from crm.errors import ValidationFailed
from crm.models import Role, TeamView, UserCreate, UserUpdate, UserView
from ui.forms import FormKeys, show_outcome, submit_button

ROLES = [r.value for r in Role]


def _team_picker(label: str, teams: list[TeamView], *, key: str, current: int | None = None) -> int | None:
    options: list[int | None] = [None, *(t.id for t in teams)]
    names = {t.id: t.name for t in teams}
    index = options.index(current) if current in options else 0
    return st.selectbox(label, options, index=index, key=key, format_func=lambda i: names.get(i, "No team"))


def users_tab(people: list[UserView], teams: list[TeamView], generation: int) -> None:
    st.dataframe(pd.DataFrame([{
        "Name": u.full_name, "Email": u.email, "Role": u.role.value, "Team": u.team_name or "",
        "Active": u.active, "Locked": u.locked, "Last login": u.last_login_at,
    } for u in people]), hide_index=True)
    with st.expander("Add a user", icon=":material/person_add:"):
        _create_user_form(teams, generation)
    if not people:
        return
    st.subheader("Edit a user")
    labels = {u.id: f"{u.full_name} <{u.email}>" for u in people}
    picked = st.selectbox("User", list(labels), key="admin_user_pick", format_func=labels.get)
    user = next(u for u in people if u.id == picked)
    left, right = st.columns(2)
    with left:
        _edit_user_form(user, teams)
    with right:
        _password_form(user)


def _create_user_form(teams: list[TeamView], generation: int) -> None:
    key = FormKeys("admin_user_new_", generation)
    with st.form("admin_user_create_form"):
        st.text_input("Email", key=key("email"))
        st.text_input("Full name", key=key("full_name"))
        st.selectbox("Role", ROLES, index=ROLES.index(Role.REP), key=key("role"))
        _team_picker("Team", teams, key=key("team_id"))
        st.text_input("Password", type="password", key=key("password"),
                      help="At least 12 characters. Leave empty for an account that signs in with single sign-on only.")
        submitted = submit_button("Add user", key="admin_user_create", form=key, action=_create_user, type="primary")
    show_outcome("admin_user_create", submitted)


def _create_user(s, actor, v) -> str:
    user = users.create_user(session=s, actor=actor, data=UserCreate(
        email=(v["email"] or "").strip(), full_name=v["full_name"] or "", role=v["role"], team_id=v["team_id"],
        password=v["password"] or None))
    return f"Added {user.full_name}"


def _edit_user_form(user: UserView, teams: list[TeamView]) -> None:
    key = FormKeys(f"admin_user_edit_{user.id}_", user.version)
    with st.form(f"admin_user_edit_{user.id}_form"):
        st.text_input("Full name", value=user.full_name, key=key("full_name"))
        st.selectbox("Role", ROLES, index=ROLES.index(user.role), key=key("role"))
        _team_picker("Team", teams, key=key("team_id"), current=user.team_id)
        st.checkbox("Active (may sign in)", value=user.active, key=key("active"))
        st.caption(f"Editing version {key.generation}")

        def save(s, actor, v) -> str:
            users.update_user(session=s, actor=actor, user_id=user.id, seen_version=key.generation,
                              changes=UserUpdate(**v))
            return f"Saved {v['full_name']}"

        submitted = submit_button("Save user", key=f"admin_user_edit_{user.id}_save", form=key, action=save,
                                  type="primary")
    show_outcome(f"admin_user_edit_{user.id}_save", submitted)


def _password_form(user: UserView) -> None:
    key = FormKeys(f"admin_user_pw_{user.id}_", user.version)
    with st.form(f"admin_user_pw_{user.id}_form"):
        st.text_input("New password", type="password", key=key("password"))
        st.text_input("New password again", type="password", key=key("again"))

        def set_password(s, actor, v) -> str:
            if v["password"] != v["again"]:
                raise ValidationFailed("password", "the two entries differ")
            users.set_password(session=s, actor=actor, user_id=user.id, password=v["password"] or "")
            return f"Password set for {user.full_name}"

        # Setting a password bumps the user's version, so the edit form beside it reloads too.
        submitted = submit_button("Set password", key=f"admin_user_pw_{user.id}_save", form=key,
                                  action=set_password, reset=[f"admin_user_edit_{user.id}_"])
    show_outcome(f"admin_user_pw_{user.id}_save", submitted)


def teams_tab(teams: list[TeamView], generation: int) -> None:
    st.dataframe(pd.DataFrame([{"Team": t.name, "Members": t.member_count} for t in teams],
                              columns=["Team", "Members"]), hide_index=True)
    left, right = st.columns(2)
    with left:
        key = FormKeys("admin_team_new_", generation)
        with st.form("admin_team_create_form"):
            st.markdown("**New team**")
            st.text_input("Name", key=key("name"))
            created = submit_button("Create team", key="admin_team_create", form=key, action=_create_team,
                                    type="primary")
        show_outcome("admin_team_create", created)
    if teams:
        with right:
            _rename_team_form(teams)


def _create_team(s, actor, v) -> str:
    return f"Created team {users.save_team(session=s, actor=actor, name=v['name'] or '').name}"


def _rename_team_form(teams: list[TeamView]) -> None:
    names = {t.id: t.name for t in teams}
    picked = st.selectbox("Rename a team", list(names), key="admin_team_pick", format_func=names.get)
    team = next(t for t in teams if t.id == picked)
    key = FormKeys(f"admin_team_edit_{team.id}_", team.version)
    with st.form(f"admin_team_edit_{team.id}_form"):
        st.text_input("New name", value=team.name, key=key("name"))

        def rename(s, actor, v) -> str:
            saved = users.save_team(session=s, actor=actor, name=v["name"] or "", team_id=team.id,
                                    seen_version=key.generation)
            return f"Renamed to {saved.name}"

        renamed = submit_button("Rename", key=f"admin_team_edit_{team.id}_save", form=key, action=rename)
    show_outcome(f"admin_team_edit_{team.id}_save", renamed)
