"""the KPI cube (additive measures per day and contact owner) and covering indexes for the period-local KPIs

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 03:15:00

The cube is filled by crm.schema.seed_reference_data (run by `python -m crm init`) or `python -m crm kpis rebuild`;
until then the KPIs compute from the base tables.
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'kpi_cube',
        sa.Column('measure', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('owner_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column('value', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('measure', 'owner_id', 'day', 'key'),
    )

    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.create_index('ix_contact_deleted', ['id'], unique=False, sqlite_where=sa.text('deleted_at IS NOT NULL'), postgresql_where=sa.text('deleted_at IS NOT NULL'))

    with op.batch_alter_table('deal', schema=None) as batch_op:
        batch_op.create_index('ix_deal_closed_cover', ['closed_at', 'status', 'owner_id', 'pipeline_id', 'created_at', 'amount', 'deleted_at', 'lost_reason_id', 'source'], unique=False)
        batch_op.create_index('ix_deal_created_cover', ['created_at', 'status', 'owner_id', 'pipeline_id', 'deleted_at'], unique=False)
        batch_op.create_index('ix_deal_owner_closed', ['owner_id', 'status', 'closed_at', 'pipeline_id', 'created_at', 'amount', 'deleted_at', 'lost_reason_id', 'source'], unique=False)

    with op.batch_alter_table('deal_line_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deal_line_item_deal_id'))
        batch_op.create_index('ix_deal_line_item_deal_product', ['deal_id', 'product_id'], unique=False)

    with op.batch_alter_table('deal_stage_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dsh_deal_entered'))
        batch_op.create_index('ix_dsh_deal_entered', ['deal_id', 'entered_at', 'stage_id', 'exited_at'], unique=False)

    with op.batch_alter_table('survey_response', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_kind_when'))
        batch_op.create_index('ix_survey_kind_when', ['kind', 'answered_at', 'contact_id', 'score'], unique=False)

    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_status_resolved', ['status', 'resolved_at', 'opened_at', 'deleted_at', 'contact_id', 'owner_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_status_resolved')

    with op.batch_alter_table('survey_response', schema=None) as batch_op:
        batch_op.drop_index('ix_survey_kind_when')
        batch_op.create_index(batch_op.f('ix_survey_kind_when'), ['kind', 'answered_at'], unique=False)

    with op.batch_alter_table('deal_stage_history', schema=None) as batch_op:
        batch_op.drop_index('ix_dsh_deal_entered')
        batch_op.create_index(batch_op.f('ix_dsh_deal_entered'), ['deal_id', 'entered_at'], unique=False)

    with op.batch_alter_table('deal_line_item', schema=None) as batch_op:
        batch_op.drop_index('ix_deal_line_item_deal_product')
        batch_op.create_index(batch_op.f('ix_deal_line_item_deal_id'), ['deal_id'], unique=False)

    with op.batch_alter_table('deal', schema=None) as batch_op:
        batch_op.drop_index('ix_deal_owner_closed')
        batch_op.drop_index('ix_deal_created_cover')
        batch_op.drop_index('ix_deal_closed_cover')

    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.drop_index('ix_contact_deleted', sqlite_where=sa.text('deleted_at IS NOT NULL'), postgresql_where=sa.text('deleted_at IS NOT NULL'))

    op.drop_table('kpi_cube')
