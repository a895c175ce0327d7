"""Page-test fixtures: a file SQLite CRM per test (copied from one migrated template), users per role, AppTest."""
import shutil
from pathlib import Path

import pytest
import streamlit as st

from crm import db, schema
from crm.config import get_settings
from crm.models import Role, Team, UserCreate
from crm.permissions import load_actor
from crm.users import create_user
from tests.pages.apptest import EMAILS, PASSWORD, no_exception, signed_in
from ui.navigation import ADMIN


def use_database(monkeypatch, url: str) -> None:
    monkeypatch.setenv("CRM_DATABASE_URL", url)
    get_settings.cache_clear()
    db.reset_engine()


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory) -> Path:
    """Migrate and seed once; each test copies the file (alembic per test would dominate the run time)."""
    path = tmp_path_factory.mktemp("template") / "crm.db"
    engine = db.make_engine(f"sqlite:///{path}")
    schema.upgrade_schema(engine)
    with db.session_scope(engine) as s:
        schema.seed_reference_data(s)
    engine.dispose()
    return path


@pytest.fixture
def crm_db(_template_db, tmp_path, monkeypatch):
    """The app's engine points at a fresh CRM with reference data; Streamlit caches start empty."""
    path = tmp_path / "crm.db"
    shutil.copy(_template_db, path)
    monkeypatch.delenv("CRM_DEMO_MODE", raising=False)
    use_database(monkeypatch, f"sqlite:///{path}")
    st.cache_data.clear()
    st.cache_resource.clear()
    yield db.get_engine()
    db.reset_engine()
    get_settings.cache_clear()


@pytest.fixture
def people(crm_db) -> dict[Role, int]:
    """One user per role; the manager and the rep share the 'East' team. Returns role -> user id."""
    with db.session_scope() as s:
        team = Team(name="East")
        s.add(team)
        s.flush()
        admin = create_user(session=s, actor=None, data=UserCreate(
            email=EMAILS[Role.ADMIN], full_name="Ada Admin", role=Role.ADMIN, password=PASSWORD))
        actor = load_actor(s, admin.id)
        ids = {Role.ADMIN: admin.id}
        for role, name in [(Role.MANAGER, "Max Manager"), (Role.REP, "Rita Rep"), (Role.MARKETER, "Mia Marketer")]:
            team_id = team.id if role in (Role.MANAGER, Role.REP) else None
            ids[role] = create_user(session=s, actor=actor, data=UserCreate(
                email=EMAILS[role], full_name=name, role=role, team_id=team_id, password=PASSWORD)).id
    return ids


@pytest.fixture
def admin_page(people):
    """The admin page, signed in as the admin."""
    at = signed_in(people[Role.ADMIN]).run()
    at.switch_page(ADMIN.path).run()
    no_exception(at)
    return at

