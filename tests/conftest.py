"""Shared fixtures: a clean database per test, on SQLite and (when configured) PostgreSQL."""
import os
import uuid

import pytest
from sqlalchemy import text

from crm.db import make_engine, session_scope
from crm.models import metadata
from crm.schema import create_all_for_tests, seed_reference_data
from tests.factories import new_sqlite_crm

POSTGRES_URL = os.environ.get("CRM_TEST_POSTGRES_URL")
NO_POSTGRES = "CRM_TEST_POSTGRES_URL is not set, so the PostgreSQL half of the domain suite is skipped"


@pytest.fixture(scope="session")
def _postgres_engine():
    """One private schema per test run, dropped at the end; tables are emptied between tests."""
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    schema = f"crm_test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    create_all_for_tests(engine)
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _truncate(engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path):
    """An empty CRM database with reference data seeded. File-backed SQLite, so WAL and locking are real."""
    if request.param == "sqlite":
        eng = new_sqlite_crm(tmp_path / "crm.db")
    else:
        eng = request.getfixturevalue("_postgres_engine")
        _truncate(eng)
        with session_scope(eng) as session:
            seed_reference_data(session)
    yield eng
    if request.param == "sqlite":
        eng.dispose()


@pytest.fixture
def sqlite_engine(tmp_path):
    """SQLite only, for tests about SQLite behaviour or that would be slow twice."""
    eng = new_sqlite_crm(tmp_path / "crm.db")
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine):
    with session_scope(engine) as s:
        yield s


@pytest.fixture
def admin(engine):
    """An admin actor on the test database."""
    from tests.factories import actor, make_user

    return actor(engine, make_user(engine, "admin"))


@pytest.fixture(autouse=True)
def _models_dir(tmp_path, monkeypatch):
    """Models a test trains land in its own folder, never in data/models."""
    from crm.config import get_settings

    monkeypatch.setenv("CRM_MODELS_DIR", str(tmp_path / "models"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(params=["kpi cube", "base tables"])
def kpi_source(request, monkeypatch):
    """Run a KPI test twice: reading the pre-aggregated cube (crm/kpis/cube.py), and computing from the base
    tables, so both give the hand-computed numbers."""
    from crm.kpis import cube

    monkeypatch.setattr(cube, "ENABLED", request.param == "kpi cube")
    return request.param
