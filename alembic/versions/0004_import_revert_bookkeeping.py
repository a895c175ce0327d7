"""import change version after; job unchanged count and summary

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 19:16:59.931399
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('import_change', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version_after', sa.Integer(), nullable=True))

    # Existing jobs get 0 unchanged rows; the default is dropped again, as the model sets the value.
    with op.batch_alter_table('import_job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unchanged_count', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('summary', sa.JSON(), nullable=True))
    with op.batch_alter_table('import_job', schema=None) as batch_op:
        batch_op.alter_column('unchanged_count', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('import_job', schema=None) as batch_op:
        batch_op.drop_column('summary')
        batch_op.drop_column('unchanged_count')

    with op.batch_alter_table('import_change', schema=None) as batch_op:
        batch_op.drop_column('version_after')
