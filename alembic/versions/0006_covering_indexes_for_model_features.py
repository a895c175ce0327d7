"""covering indexes for the win model's features: a deal's activities, a company's outcomes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 23:20:00
"""
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.create_index('ix_activity_deal_kind_when', ['deal_id', 'kind', 'occurred_at', 'done_at',
                                                             'deleted_at'], unique=False)
        batch_op.drop_index('ix_activity_deal_id')
    with op.batch_alter_table('deal', schema=None) as batch_op:
        batch_op.create_index('ix_deal_company_outcome', ['company_id', 'status', 'closed_at', 'deleted_at'],
                              unique=False)
        batch_op.drop_index('ix_deal_company_id')


def downgrade() -> None:
    with op.batch_alter_table('deal', schema=None) as batch_op:
        batch_op.create_index('ix_deal_company_id', ['company_id'], unique=False)
        batch_op.drop_index('ix_deal_company_outcome')
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.create_index('ix_activity_deal_id', ['deal_id'], unique=False)
        batch_op.drop_index('ix_activity_deal_kind_when')
