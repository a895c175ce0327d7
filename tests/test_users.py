"""Admin use cases for users and teams: rights, validation, conflicts and audit."""
import pytest
from sqlmodel import select

from crm.db import session_scope
from crm.errors import EditConflict, PermissionDenied, ValidationFailed
from crm.models import AuditLog, Role, UserCreate, UserUpdate
from crm.users import create_user, list_teams, list_users, save_team, set_password, update_user
from tests.factories import PASSWORD, actor, make_user


def _new(email="new.person@example.com", **kw):
    return UserCreate(email=email, full_name=kw.pop("full_name", "New Person"), role=kw.pop("role", Role.REP),
                      password=kw.pop("password", PASSWORD), **kw)


def test_admin_adds_a_user_and_the_audit_log_never_holds_the_password(engine):
    admin = make_user(engine, "admin")
    with session_scope(engine) as s:
        view = create_user(session=s, actor=actor(engine, admin), data=_new(email="Mixed.Case@Example.COM"))
        assert view.email == "mixed.case@example.com" and view.role == Role.REP
        rows = s.exec(select(AuditLog).where(AuditLog.entity == "user", AuditLog.record_id == view.id)).all()
    fields = {r.field for r in rows}
    assert {"email", "full_name", "role"} <= fields
    assert "password_hash" not in fields and not any("argon2" in (r.new_value or "") for r in rows)


@pytest.mark.parametrize("role", ["manager", "rep", "marketer"])
def test_only_admins_manage_users(engine, role):
    someone = make_user(engine, role)
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        create_user(session=s, actor=actor(engine, someone), data=_new())
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        list_users(session=s, actor=actor(engine, someone))


@pytest.mark.parametrize("data, field", [
    (dict(email="rep1@example.com"), "email"),  # taken (factories' first rep), case-insensitively below
    (dict(password="short"), "password"),
    (dict(team_id=999), "team_id"),
    (dict(full_name="   "), "full_name"),
])
def test_user_validation_names_the_field(engine, data, field):
    admin = make_user(engine, "admin")
    with session_scope(engine) as s:
        create_user(session=s, actor=actor(engine, admin), data=_new(email="REP1@example.com"))
    with session_scope(engine) as s, pytest.raises(ValidationFailed) as err:
        payload = _new(**data) if "password" not in data else _new().model_copy(update=data)
        create_user(session=s, actor=actor(engine, admin), data=payload)
    assert err.value.field == field


def test_stale_user_edit_is_refused_and_says_who_changed_what(engine):
    admin = make_user(engine, "admin", name="Ada Admin")
    rep = make_user(engine, "rep")
    with session_scope(engine) as s:
        update_user(session=s, actor=actor(engine, admin), user_id=rep, changes=UserUpdate(full_name="Renamed"),
                    seen_version=1)
    with session_scope(engine) as s, pytest.raises(EditConflict) as err:
        update_user(session=s, actor=actor(engine, admin), user_id=rep, changes=UserUpdate(role=Role.MANAGER),
                    seen_version=1)
    assert "Ada Admin" in err.value.message and "full_name" in err.value.message
    assert err.value.current_version == 2


def test_an_admin_cannot_lock_themselves_out(engine):
    admin = make_user(engine, "admin")
    with session_scope(engine) as s, pytest.raises(ValidationFailed):
        update_user(session=s, actor=actor(engine, admin), user_id=admin, changes=UserUpdate(active=False),
                    seen_version=1)


def test_users_change_their_own_password_but_not_others(engine):
    rep, other = make_user(engine, "rep"), make_user(engine, "rep")
    with session_scope(engine) as s:
        set_password(session=s, actor=actor(engine, rep), user_id=rep, password="a brand new passphrase")
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        set_password(session=s, actor=actor(engine, rep), user_id=other, password="a brand new passphrase")


def test_teams_are_unique_by_name_and_count_members(engine):
    admin = make_user(engine, "admin")
    make_user(engine, "rep", team="North")
    make_user(engine, "rep", team="North")
    with session_scope(engine) as s:
        with pytest.raises(ValidationFailed, match="already exists"):
            save_team(session=s, actor=actor(engine, admin), name="north")
        teams = {t.name: t.member_count for t in list_teams(session=s, actor=actor(engine, admin))}
    assert teams == {"North": 2}
