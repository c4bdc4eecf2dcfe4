"""Inbox: an index on (state, resolved_at) for the "resolved" view and the view counts

Without it the recently resolved conversations are found by reading every resolved one (SQLite's
planner, which has no statistics by default, walks the state index through the whole history).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 11:20:00.000000
"""
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.create_index('ix_conversations_state_resolved_at', ['state', 'resolved_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('ix_conversations_state_resolved_at')
