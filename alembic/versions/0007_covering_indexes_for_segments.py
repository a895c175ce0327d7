"""covering indexes for segment conditions: behaviour since a moment, a contact's orders, a product's owners

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 01:05:00
"""
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('behavior_event', schema=None) as batch_op:
        batch_op.create_index('ix_event_kind_when_contact', ['kind', 'occurred_at', 'contact_id'], unique=False)
        batch_op.drop_index('ix_event_kind_when')
    with op.batch_alter_table('sales_order', schema=None) as batch_op:
        batch_op.create_index('ix_order_contact_cover', ['contact_id', 'ordered_at', 'status', 'deleted_at', 'total'],
                              unique=False)
        batch_op.drop_index('ix_order_contact_when')
    with op.batch_alter_table('order_line', schema=None) as batch_op:
        batch_op.create_index('ix_order_line_product_order', ['product_id', 'order_id'], unique=False)
        batch_op.drop_index('ix_order_line_product_id')


def downgrade() -> None:
    with op.batch_alter_table('order_line', schema=None) as batch_op:
        batch_op.create_index('ix_order_line_product_id', ['product_id'], unique=False)
        batch_op.drop_index('ix_order_line_product_order')
    with op.batch_alter_table('sales_order', schema=None) as batch_op:
        batch_op.create_index('ix_order_contact_when', ['contact_id', 'ordered_at'], unique=False)
        batch_op.drop_index('ix_order_contact_cover')
    with op.batch_alter_table('behavior_event', schema=None) as batch_op:
        batch_op.create_index('ix_event_kind_when', ['kind', 'occurred_at'], unique=False)
        batch_op.drop_index('ix_event_kind_when_contact')
