"""customer_purchases: each buyer's first, second and last purchase, count and total, for retention

Revision ID: 0022_customer_purchases
Revises: 0021_nps_response
Create Date: 2026-12-05 15:05:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0022_customer_purchases'
down_revision = '0021_nps_response'
branch_labels = None
depends_on = None

#: the rows from the orders already there (as helpdesk.shop.purchases.rebuild computes them)
BACKFILL = """
INSERT INTO customer_purchases (phone, first_at, second_at, last_at, orders, total_vnd)
SELECT phone, min(at), min(CASE WHEN at > first_at THEN at END), max(at), count(*), coalesce(sum(vnd), 0)
FROM (SELECT phone, created_at AS at, total_vnd AS vnd,
             min(created_at) OVER (PARTITION BY phone) AS first_at
      FROM orders WHERE status NOT IN ('cancelled', 'returned')) AS bought
GROUP BY phone
"""


def upgrade() -> None:
    op.create_table(
        'customer_purchases',
        sa.Column('phone', sa.String(length=20), nullable=False),
        sa.Column('first_at', sa.DateTime(), nullable=False),
        sa.Column('second_at', sa.DateTime(), nullable=True),
        sa.Column('last_at', sa.DateTime(), nullable=False),
        sa.Column('orders', sa.Integer(), nullable=False),
        sa.Column('total_vnd', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('phone'),
    )
    op.create_index('ix_customer_purchases_first_at', 'customer_purchases', ['first_at'])
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_index('ix_customer_purchases_first_at', table_name='customer_purchases')
    op.drop_table('customer_purchases')
