"""stage_stat table (time in stage per outcome); the board's indexes replace ix_deal_owner_status and widen
ix_deal_pipeline_stage

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 22:05:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'stage_stat',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('stage_id', sa.Integer(), nullable=False),
        sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column('deals', sa.Integer(), nullable=False),
        sa.Column('median_days', sa.Float(), nullable=False),
        sa.Column('p75_days', sa.Float(), nullable=False),
        sa.Column('closed_deals', sa.Integer(), nullable=False),
        sa.Column('computed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['stage_id'], ['stage.id'], name=op.f('fk_stage_stat_stage_id_stage')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stage_stat')),
        sa.UniqueConstraint('stage_id', 'outcome', name='uq_stage_stat'),
    )
    with op.batch_alter_table('deal', schema=None) as batch_op:
        batch_op.create_index('ix_deal_owner_board', ['owner_id', 'status', 'pipeline_id', 'stage_id',
                                                      'expected_close'], unique=False)
        batch_op.drop_index('ix_deal_owner_status')
        batch_op.drop_index('ix_deal_pipeline_stage')
        batch_op.create_index('ix_deal_pipeline_stage', ['pipeline_id', 'stage_id', 'status', 'expected_close',
                                                         'amount'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('deal', schema=None) as batch_op:
        batch_op.drop_index('ix_deal_pipeline_stage')
        batch_op.create_index('ix_deal_pipeline_stage', ['pipeline_id', 'stage_id'], unique=False)
        batch_op.create_index('ix_deal_owner_status', ['owner_id', 'status'], unique=False)
        batch_op.drop_index('ix_deal_owner_board')
    op.drop_table('stage_stat')
