"""Reminders from product data: each product's care schedule (maintenance every N months)

Revision ID: 0019_product_care_schedule
Revises: 0018_email_channel
Create Date: 2026-12-05 14:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0019_product_care_schedule'
down_revision = '0018_email_channel'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('products') as batch:
        batch.add_column(sa.Column('care_schedule', sa.JSON(), nullable=False, server_default='[]'))


def downgrade() -> None:
    with op.batch_alter_table('products') as batch:
        batch.drop_column('care_schedule')
