"""Worker faults: inbound_attempts (a waiting event's failed turns, parked after too many) and an index
on the inbound ledger by chat (a turn takes the chat's older waiting events first)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 23:50:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def _attached_ledger(bind) -> bool:
    """A SQLite file whose connections attach the ledger's own file."""
    if bind.dialect.name != "sqlite":
        return False
    return any(row[1] == "inbound" for row in bind.exec_driver_sql("PRAGMA database_list"))


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        'inbound_attempts',
        sa.Column('event_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.String(length=1000), nullable=True),
        sa.Column('message_id', sa.Integer(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('event_id'),
    )
    if _attached_ledger(bind):
        # the ledger's file is attached: its index is made there (a new ledger file gets it from the model)
        bind.exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS inbound.ix_inbound_chat ON inbound_events (channel, sender_id, id)")
    else:
        op.create_index('ix_inbound_chat', 'inbound_events', ['channel', 'sender_id', 'id'], unique=False)


def downgrade() -> None:
    bind = op.get_bind()
    # before parking, an event given up on was "failed" (never tried again)
    bind.exec_driver_sql("UPDATE inbound_outcomes SET status = 'failed' WHERE status = 'parked'")
    if _attached_ledger(bind):
        bind.exec_driver_sql("DROP INDEX IF EXISTS inbound.ix_inbound_chat")
    else:
        op.drop_index('ix_inbound_chat', table_name='inbound_events')
    op.drop_table('inbound_attempts')
