"""Inbound ledger apart: what became of an event moves to inbound_outcomes, written by the worker; the
ledger (inbound_events) is written only by the webhook edge and, on a SQLite file, moves into a file of
its own (attached as ``inbound``, see helpdesk.channels.ledger.inbound_database_path)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 01:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

#: the ledger's columns after this migration
COLUMNS = "id, channel, external_id, sender_id, kind, message, raw, status, received_at"


def _attached_ledger(bind) -> bool:
    """A SQLite file whose connections attach the ledger's own file."""
    if bind.dialect.name != "sqlite":
        return False
    return any(row[1] == "inbound" for row in bind.exec_driver_sql("PRAGMA database_list"))


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        'inbound_outcomes',
        sa.Column('event_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('error', sa.String(length=1000), nullable=True),
        sa.Column('processed_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('event_id'),
    )
    # the database's own table (on SQLite the plain name would find the attached one too)
    source = "main.inbound_events" if bind.dialect.name == "sqlite" else "inbound_events"
    bind.exec_driver_sql(
        "INSERT INTO inbound_outcomes (event_id, status, error, processed_at) "
        f"SELECT id, status, error, coalesce(processed_at, received_at) FROM {source} "
        "WHERE status IN ('processed', 'failed')")
    bind.exec_driver_sql(f"UPDATE {source} SET status = 'received' WHERE status IN ('processed', 'failed')")
    if _attached_ledger(bind):
        # The attached file got an empty ledger when the connection opened; a ledger already there
        # belongs to an older database that was deleted beside it.
        bind.exec_driver_sql("DELETE FROM inbound.inbound_events")
        bind.exec_driver_sql(
            f"INSERT INTO inbound.inbound_events ({COLUMNS}) SELECT {COLUMNS} FROM main.inbound_events")
        bind.exec_driver_sql("DROP TABLE main.inbound_events")
        return
    with op.batch_alter_table('inbound_events', schema=None) as batch_op:
        batch_op.drop_index('ix_inbound_status')
        batch_op.drop_column('error')
        batch_op.drop_column('processed_at')


def downgrade() -> None:
    bind = op.get_bind()
    if _attached_ledger(bind):
        op.create_table(
            'inbound_events',
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('channel', sa.String(length=32), nullable=False),
            sa.Column('external_id', sa.String(length=128), nullable=False),
            sa.Column('sender_id', sa.String(length=128), nullable=False),
            sa.Column('kind', sa.String(length=16), nullable=False),
            sa.Column('message', sa.JSON(), nullable=False),
            sa.Column('raw', sa.JSON(), nullable=True),
            sa.Column('status', sa.String(length=10), nullable=False),
            sa.Column('error', sa.String(length=1000), nullable=True),
            sa.Column('received_at', sa.DateTime(), nullable=False),
            sa.Column('processed_at', sa.DateTime(), nullable=True),
            sa.PrimaryKeyConstraint('id'),
            sa.UniqueConstraint('channel', 'external_id', name='uq_inbound_channel_external'),
            schema='main',
        )
        bind.exec_driver_sql(
            f"INSERT INTO main.inbound_events ({COLUMNS}) SELECT {COLUMNS} FROM inbound.inbound_events "
            "WHERE kind != 'gap'")
        target = "main.inbound_events"
    else:
        with op.batch_alter_table('inbound_events', schema=None) as batch_op:
            batch_op.add_column(sa.Column('error', sa.String(length=1000), nullable=True))
            batch_op.add_column(sa.Column('processed_at', sa.DateTime(), nullable=True))
        target = "inbound_events"
    outcome = "(SELECT o.{} FROM inbound_outcomes o WHERE o.event_id = " + target + ".id)"
    bind.exec_driver_sql(
        f"UPDATE {target} SET status = {outcome.format('status')}, error = {outcome.format('error')}, "
        f"processed_at = {outcome.format('processed_at')} WHERE id IN (SELECT event_id FROM inbound_outcomes)")
    op.create_index('ix_inbound_status', 'inbound_events', ['status', 'id'], unique=False,
                    schema='main' if target.startswith("main.") else None)
    op.drop_table('inbound_outcomes')
