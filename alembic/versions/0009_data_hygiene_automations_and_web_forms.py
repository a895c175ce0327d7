"""data hygiene, automations and web forms: duplicate candidates, reversible hygiene jobs, automation bookkeeping,
merge undo by whom, lookups by record, and the data.hygiene right for admins and managers

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 04:00:01
"""
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('duplicate_candidate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('entity', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('a_id', sa.Integer(), nullable=False),
    sa.Column('b_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('scanned_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.CheckConstraint("entity IN ('contact', 'company')", name=op.f('ck_duplicate_candidate_entity')),
    sa.CheckConstraint("status IN ('open', 'dismissed', 'merged')", name=op.f('ck_duplicate_candidate_status')),
    sa.CheckConstraint('a_id < b_id', name=op.f('ck_duplicate_candidate_canonical')),
    sa.CheckConstraint('score >= 0 AND score <= 1', name=op.f('ck_duplicate_candidate_score')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['app_user.id'], name=op.f('fk_duplicate_candidate_decided_by_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_duplicate_candidate')),
    sa.UniqueConstraint('entity', 'a_id', 'b_id', name='uq_duplicate_pair')
    )
    with op.batch_alter_table('duplicate_candidate', schema=None) as batch_op:
        batch_op.create_index('ix_duplicate_candidate_list', ['entity', 'status', 'score'], unique=False)

    op.create_table('hygiene_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('params', sa.JSON(), nullable=True),
    sa.Column('record_count', sa.Integer(), nullable=False),
    sa.Column('reverted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('reverted_by_id', sa.Integer(), nullable=True),
    sa.Column('summary', sa.JSON(), nullable=True),
    sa.CheckConstraint("kind IN ('archive', 'format', 'list_merge')", name=op.f('ck_hygiene_job_kind')),
    sa.CheckConstraint("status IN ('done', 'reverted')", name=op.f('ck_hygiene_job_status')),
    sa.ForeignKeyConstraint(['actor_id'], ['app_user.id'], name=op.f('fk_hygiene_job_actor_id_app_user')),
    sa.ForeignKeyConstraint(['reverted_by_id'], ['app_user.id'], name=op.f('fk_hygiene_job_reverted_by_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hygiene_job'))
    )
    with op.batch_alter_table('hygiene_job', schema=None) as batch_op:
        batch_op.create_index('ix_hygiene_job_kind', ['kind', 'id'], unique=False)

    op.create_table('hygiene_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('entity', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('version_after', sa.Integer(), nullable=True),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['hygiene_job.id'], name=op.f('fk_hygiene_change_job_id_hygiene_job')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hygiene_change'))
    )
    with op.batch_alter_table('hygiene_change', schema=None) as batch_op:
        batch_op.create_index('ix_hygiene_change_job_record', ['job_id', 'record_id'], unique=False)
        batch_op.create_index('ix_hygiene_change_record', ['entity', 'record_id'], unique=False)

    with op.batch_alter_table('automation_firing', schema=None) as batch_op:
        batch_op.add_column(sa.Column('occasion_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))

    with op.batch_alter_table('automation_rule', schema=None) as batch_op:
        batch_op.add_column(sa.Column('round_robin_cursor', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_automation_rule_round_robin_cursor_app_user'), 'app_user', ['round_robin_cursor'], ['id'])

    with op.batch_alter_table('company', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_company_parent_id'), ['parent_id'], unique=False)

    with op.batch_alter_table('merge_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('undone_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_merge_log_undone_by_id_app_user'), 'app_user', ['undone_by_id'], ['id'])

    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index('ix_notification_record', ['entity', 'record_id'], unique=False)

    with op.batch_alter_table('prediction_score', schema=None) as batch_op:
        batch_op.create_index('ix_prediction_record', ['entity', 'record_id'], unique=False)

    rights = _rights()
    now = datetime.now(UTC)
    # What data/reference/role_rights.json now seeds, for databases seeded before it (an empty role_right is left
    # to the seeding, which fills it only when it is empty).
    for role in ('admin', 'manager'):
        missing = sa.and_(~sa.exists().where(rights.c.role == role, rights.c.name == 'data.hygiene'),
                          sa.exists().where(rights.c.role == role))
        op.execute(rights.insert().from_select(
            ['role', 'name', 'created_at', 'updated_at', 'version'],
            sa.select(sa.literal(role), sa.literal('data.hygiene'), sa.literal(now, sa.DateTime(timezone=True)),
                      sa.literal(now, sa.DateTime(timezone=True)), sa.literal(1)).where(missing)))


def _rights() -> sa.Table:
    return sa.table('role_right', sa.column('role', sa.String), sa.column('name', sa.String),
                    sa.column('created_at', sa.DateTime(timezone=True)),
                    sa.column('updated_at', sa.DateTime(timezone=True)), sa.column('version', sa.Integer))


def downgrade() -> None:
    rights = _rights()
    op.execute(rights.delete().where(rights.c.name == 'data.hygiene'))
    with op.batch_alter_table('prediction_score', schema=None) as batch_op:
        batch_op.drop_index('ix_prediction_record')

    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_record')

    with op.batch_alter_table('merge_log', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_merge_log_undone_by_id_app_user'), type_='foreignkey')
        batch_op.drop_column('undone_by_id')

    with op.batch_alter_table('company', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_company_parent_id'))

    with op.batch_alter_table('automation_rule', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_automation_rule_round_robin_cursor_app_user'), type_='foreignkey')
        batch_op.drop_column('round_robin_cursor')

    with op.batch_alter_table('automation_firing', schema=None) as batch_op:
        batch_op.drop_column('detail')
        batch_op.drop_column('occasion_at')

    with op.batch_alter_table('hygiene_change', schema=None) as batch_op:
        batch_op.drop_index('ix_hygiene_change_record')
        batch_op.drop_index('ix_hygiene_change_job_record')

    op.drop_table('hygiene_change')
    with op.batch_alter_table('hygiene_job', schema=None) as batch_op:
        batch_op.drop_index('ix_hygiene_job_kind')

    op.drop_table('hygiene_job')
    with op.batch_alter_table('duplicate_candidate', schema=None) as batch_op:
        batch_op.drop_index('ix_duplicate_candidate_list')

    op.drop_table('duplicate_candidate')
