"""Alembic environment: the database comes from crm settings (or a connection handed in by crm.schema)."""
from alembic import context

from crm.db import get_engine
from crm.models import metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    with get_engine().connect() as conn:
        _migrate(conn)
        conn.commit()


def _migrate(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite can't ALTER most things; batch mode copies the table instead
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
