"""The migrations, the models and the SQLite settings agree."""
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import select

from crm.db import make_engine, read_scope, session_scope
from crm.models import Pipeline, Stage, metadata
from crm.schema import seed_reference_data, upgrade_schema
from tests.conftest import NO_POSTGRES, POSTGRES_URL

# Tables without the shared timestamps/version, and why: append-only facts and pure link rows are never edited.
UNVERSIONED = {"audit_log": "append-only", "data_version": "a counter", "import_change": "append-only",
               "segment_snapshot_member": "an immutable link row",
               "search_token": "derived from the contact or company it indexes",
               "kpi_cube": "derived sums, kept by crm/kpis/cube.py", "hygiene_change": "append-only, like import_change"}


def test_every_editable_table_has_timestamps_and_version():
    missing = {t.name: sorted({"created_at", "updated_at", "version"} - set(t.c.keys()))
               for t in metadata.sorted_tables if t.name not in UNVERSIONED}
    assert {k: v for k, v in missing.items() if v} == {}


def _migrated_matches_models(engine) -> list:
    upgrade_schema(engine)
    upgrade_schema(engine)  # a second run is a no-op
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), metadata)


def test_migrations_build_exactly_the_models_on_sqlite(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    assert _migrated_matches_models(engine) == []
    assert len(inspect(engine).get_table_names()) == len(metadata.tables) + 1  # + alembic_version


@pytest.mark.skipif(not POSTGRES_URL, reason=NO_POSTGRES)
def test_migrations_build_exactly_the_models_on_postgres():
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS crm_migration_test CASCADE; CREATE SCHEMA crm_migration_test"))
    engine = make_engine(POSTGRES_URL, connect_args={"options": "-csearch_path=crm_migration_test"})
    try:
        assert _migrated_matches_models(engine) == []
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text("DROP SCHEMA crm_migration_test CASCADE"))


def test_sqlite_runs_with_wal_busy_timeout_and_foreign_keys(sqlite_engine):
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_sqlite_write_transactions_begin_immediate(sqlite_engine):
    """A write scope holds the write lock from its first statement; a read scope does not."""
    statements = []

    def capture(conn, cursor, statement, *args):
        statements.append(statement)

    from sqlalchemy import event
    event.listen(sqlite_engine, "before_cursor_execute", capture)
    with session_scope(sqlite_engine) as s:
        s.exec(text("SELECT 1"))
    with read_scope(sqlite_engine) as s:
        s.exec(text("SELECT 1"))
    event.remove(sqlite_engine, "before_cursor_execute", capture)
    assert "BEGIN IMMEDIATE" in statements
    assert statements.count("BEGIN") == 1


def test_foreign_keys_are_enforced(sqlite_engine):
    from sqlalchemy.exc import IntegrityError

    from crm.models import Contact
    with pytest.raises(IntegrityError):
        with session_scope(sqlite_engine) as s:
            s.add(Contact(first_name="Orphan", company_id=999))


def test_reference_data_seeds_once(engine):
    with session_scope(engine) as s:
        assert seed_reference_data(s) is False  # the fixture already seeded
        pipelines = s.exec(text("SELECT count(*) FROM pipeline")).scalar()
        assert pipelines >= 2
        for pipeline in s.exec(select(Pipeline)).all():
            stages = s.exec(select(Stage).where(Stage.pipeline_id == pipeline.id)).all()
            assert sum(st.is_won for st in stages) == 1 and sum(st.is_lost for st in stages) == 1
        assert s.exec(text("SELECT count(*) FROM lost_reason")).scalar() >= 5
        roles = set(s.exec(text("SELECT DISTINCT role FROM role_right")).scalars())
        assert roles == {"admin", "manager", "rep", "marketer"}
