"""customer_purchases: the months each buyer bought in (for cohorts) and their NPS answers (for the
segments), so the retention report reads only its new customers' rows; last_at indexed for churn

Revision ID: 0024_purchase_months_nps
Revises: 0023_segments_table
Create Date: 2026-12-05 17:10:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0024_purchase_months_nps'
down_revision = '0023_segments_table'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('customer_purchases') as batch:
        batch.add_column(sa.Column('months_mask', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('months_tz', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('nps_answers', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('nps_score_sum', sa.Integer(), nullable=False, server_default='0'))
    op.create_index('ix_customer_purchases_last_at', 'customer_purchases', ['last_at'])
    # The rows already there: their months counted in the shop's zone, their NPS answers added up (the
    # same work a rebuild does for them; rows left without months would be read from the orders).
    from helpdesk.shop.purchases import fill_extras
    fill_extras(op.get_bind())


def downgrade() -> None:
    op.drop_index('ix_customer_purchases_last_at', table_name='customer_purchases')
    with op.batch_alter_table('customer_purchases') as batch:
        batch.drop_column('nps_score_sum')
        batch.drop_column('nps_answers')
        batch.drop_column('months_tz')
        batch.drop_column('months_mask')
