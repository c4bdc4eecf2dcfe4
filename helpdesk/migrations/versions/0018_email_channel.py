"""The email channel: every mail in and out by Message-ID, for threading and bounces

Revision ID: 0018_email_channel
Revises: 0017_zns_care
Create Date: 2026-12-05 13:55:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0018_email_channel'
down_revision = '0017_zns_care'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'email_messages',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('message_id', sa.String(length=255), nullable=False),
        sa.Column('identity_id', sa.Integer(), sa.ForeignKey('channel_identities.id'), nullable=False),
        sa.Column('direction', sa.String(length=3), nullable=False),
        sa.Column('subject', sa.String(length=500), nullable=False),
        sa.Column('care_id', sa.Integer(), sa.ForeignKey('care_messages.id'), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
    )
    op.create_index('ix_email_messages_message_id', 'email_messages', ['message_id'])
    op.create_index('ix_email_messages_identity', 'email_messages', ['identity_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_email_messages_identity', table_name='email_messages')
    op.drop_index('ix_email_messages_message_id', table_name='email_messages')
    op.drop_table('email_messages')
