"""NPS answers (nps_response) and the order indexes retention reports read

Revision ID: 0021_nps_response
Revises: 0020_product_price_stock
Create Date: 2026-12-05 13:50:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0021_nps_response'
down_revision = '0020_product_price_stock'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'nps_response',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('identity_id', sa.Integer(), nullable=True),
        sa.Column('order_id', sa.Integer(), nullable=True),
        sa.Column('conversation_id', sa.Integer(), nullable=True),
        sa.Column('channel', sa.String(length=32), nullable=False),
        sa.Column('product_sku', sa.String(length=64), nullable=True),
        sa.Column('trigger', sa.String(length=16), nullable=False),
        sa.Column('asked_at', sa.DateTime(), nullable=False),
        sa.Column('score', sa.Integer(), nullable=True),
        sa.Column('comment', sa.String(length=2000), nullable=True),
        sa.Column('at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id']),
        sa.ForeignKeyConstraint(['identity_id'], ['channel_identities.id']),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id']),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_nps_response_customer_open', 'nps_response', ['customer_id', 'at', 'asked_at'])
    op.create_index('ix_nps_response_at', 'nps_response', ['at'])
    op.create_index('ix_nps_response_order_id', 'nps_response', ['order_id'])
    # a customer's purchases in time order, for the retention report
    op.create_index('ix_orders_phone_created', 'orders', ['phone', 'created_at', 'status', 'total_vnd'])
    op.create_index('ix_orders_created_phone', 'orders', ['created_at', 'phone', 'status'])


def downgrade() -> None:
    op.drop_index('ix_orders_created_phone', table_name='orders')
    op.drop_index('ix_orders_phone_created', table_name='orders')
    op.drop_index('ix_nps_response_order_id', table_name='nps_response')
    op.drop_index('ix_nps_response_at', table_name='nps_response')
    op.drop_index('ix_nps_response_customer_open', table_name='nps_response')
    op.drop_table('nps_response')
