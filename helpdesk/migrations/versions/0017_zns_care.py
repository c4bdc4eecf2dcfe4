"""Care through Zalo ZNS: an order's email, a care message's platform id and delivery time

Revision ID: 0017_zns_care
Revises: 0016_search
Create Date: 2026-12-05 11:40:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0017_zns_care'
down_revision = '0016_search'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('email', sa.String(length=254), nullable=True))
    with op.batch_alter_table('care_messages') as batch:
        batch.add_column(sa.Column('external_id', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('delivered_at', sa.DateTime(), nullable=True))
    op.create_index('ix_care_messages_external_id', 'care_messages', ['external_id'])


def downgrade() -> None:
    op.drop_index('ix_care_messages_external_id', table_name='care_messages')
    with op.batch_alter_table('care_messages') as batch:
        batch.drop_column('delivered_at')
        batch.drop_column('external_id')
    with op.batch_alter_table('orders') as batch:
        batch.drop_column('email')
