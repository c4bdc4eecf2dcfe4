"""campaign and campaign_recipient: a message to a list of customers, one row per recipient

Revision ID: 0025_campaigns
Revises: 0024_purchase_months_nps
Create Date: 2026-12-05 16:45:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0025_campaigns'
down_revision = '0024_purchase_months_nps'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'campaign',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('message', sa.String(length=2000), nullable=False),
        sa.Column('zns_template', sa.String(length=40), nullable=True),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('customer_ids', sa.JSON(), nullable=False),
        sa.Column('segment_id', sa.Integer(), nullable=True),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=True),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.Column('rate_per_minute', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['created_by'], ['agents.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'campaign_recipient',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=32), nullable=True),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=True),
        sa.Column('due_at', sa.DateTime(), nullable=True),
        sa.Column('claimed_at', sa.DateTime(), nullable=True),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.Column('external_id', sa.String(length=128), nullable=True),
        sa.Column('message_id', sa.Integer(), nullable=True),
        sa.Column('replied_at', sa.DateTime(), nullable=True),
        sa.Column('ordered_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id']),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id']),
        sa.ForeignKeyConstraint(['message_id'], ['messages.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('campaign_id', 'customer_id', name='uq_campaign_recipient_customer'),
    )
    op.create_index('ix_campaign_recipient_due', 'campaign_recipient', ['campaign_id', 'status', 'due_at'])
    op.create_index('ix_campaign_recipient_customer_id', 'campaign_recipient', ['customer_id'])
    op.create_index('ix_campaign_recipient_external_id', 'campaign_recipient', ['external_id'])
    op.create_index('ix_campaign_recipient_message_id', 'campaign_recipient', ['message_id'])


def downgrade() -> None:
    op.drop_index('ix_campaign_recipient_message_id', table_name='campaign_recipient')
    op.drop_index('ix_campaign_recipient_external_id', table_name='campaign_recipient')
    op.drop_index('ix_campaign_recipient_customer_id', table_name='campaign_recipient')
    op.drop_index('ix_campaign_recipient_due', table_name='campaign_recipient')
    op.drop_table('campaign_recipient')
    op.drop_table('campaign')
