"""Web Push: the server's VAPID key pair and the agents' push subscriptions

Revision ID: 0015_web_push
Revises: 0014
Create Date: 2026-12-05 10:50:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0015_web_push'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('push_vapid_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('private_key', sa.String(length=500), nullable=False),
    sa.Column('public_key', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('push_subscriptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('endpoint', sa.String(length=2048), nullable=False),
    sa.Column('p256dh', sa.String(length=100), nullable=False),
    sa.Column('auth', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_sent_at', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('endpoint')
    )
    op.create_index(op.f('ix_push_subscriptions_agent_id'), 'push_subscriptions', ['agent_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_push_subscriptions_agent_id'), table_name='push_subscriptions')
    op.drop_table('push_subscriptions')
    op.drop_table('push_vapid_keys')
