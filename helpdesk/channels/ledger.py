"""The inbound ledger's storage: on a SQLite file it lives in a file of its own, attached to every
connection of the main database and opened alone by the webhook edge (see ``inbound_database_path``).

``core.db.make_engine`` knows nothing of it; this module hands it connect hooks that attach the ledger's
file and create its table there when missing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine, make_url

from helpdesk.channels.models import InboundEvent
from helpdesk.core.db import make_engine, use_wal_journal, utcnow

#: on SQLite, the name under which every connection to the database sees the inbound ledger's file
INBOUND_SCHEMA = "inbound"
#: the ledger's table (in that file on SQLite; in the database itself on PostgreSQL)
INBOUND_TABLE = "inbound_events"


def inbound_database_path(database_url: str) -> Path | None:
    """The file of the inbound ledger beside a SQLite database file (``caredesk.db`` ->
    ``caredesk.inbound.db``); None where the ledger is a table of the database itself (PostgreSQL,
    SQLite in memory).

    The webhook edge writes the ledger and nothing else, and the message worker writes everything but
    the ledger. SQLite has one write lock per file: with the ledger in a file of its own, the edge
    never waits for the worker's transactions, so acknowledging a webhook does not depend on how busy
    the worker is. Back up both files together.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    path = Path(url.database)
    return path.with_name(f"{path.stem}.{INBOUND_SCHEMA}{path.suffix or '.db'}")


def attach_ledger_hooks(database_url: str, busy_timeout_ms: int = 30000) -> list[Callable[[Any], None]]:
    """Connect hooks for ``make_engine`` that attach the ledger's file to each connection as
    ``inbound`` (creating the ledger there if missing); none where the ledger is an ordinary table."""
    ledger = inbound_database_path(database_url)
    if ledger is None:
        return []

    def attach(dbapi_connection: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"ATTACH DATABASE ? AS {INBOUND_SCHEMA}", (str(ledger),))
            use_wal_journal(cursor, INBOUND_SCHEMA, busy_timeout_ms)
            cursor.execute(f"PRAGMA {INBOUND_SCHEMA}.synchronous=NORMAL")
        finally:
            cursor.close()
        ensure_ledger(dbapi_connection, INBOUND_SCHEMA)

    return [attach]


def make_database_engine(database_url: str, **kwargs: Any) -> Engine:
    """CareDesk's engine for the database: ``make_engine`` with the inbound ledger attached on a SQLite
    file, so that its table is found by its plain name."""
    hooks = attach_ledger_hooks(database_url, kwargs.get("sqlite_busy_timeout_ms", 30000))
    return make_engine(database_url, on_connect=hooks, **kwargs)


def make_ledger_engine(database_url: str, **kwargs: Any) -> Engine:
    """The webhook edge's engine: on a SQLite file, the ledger's own file opened alone (its table created
    if missing); elsewhere a plain engine for the database, where the ledger is an ordinary table."""
    ledger = inbound_database_path(database_url)
    if ledger is None:
        return make_engine(database_url, **kwargs)
    ledger_url = make_url(database_url).set(database=str(ledger)).render_as_string(hide_password=False)
    return make_engine(ledger_url, on_connect=[lambda connection: ensure_ledger(connection, "main")], **kwargs)


def ensure_ledger(dbapi_connection: Any, schema: str) -> None:
    """Create the inbound ledger's table in ``schema`` (a SQLite database of the connection) when it is
    not there: a new database, or a ledger file that was lost.

    Events are known to the database by their id (``inbound_outcomes``). A new ledger beside a database
    that has settled events starts its ids after theirs (with a placeholder row), or a new event would
    reuse the id of one already settled and be taken for it."""
    cursor = dbapi_connection.cursor()
    try:
        exists = cursor.execute(f"SELECT 1 FROM {schema}.sqlite_master WHERE type = 'table' AND name = ?",
                                (INBOUND_TABLE,)).fetchone()
        if exists:
            return
        for statement in _ledger_ddl(schema):
            cursor.execute(statement)
        if schema == INBOUND_SCHEMA and cursor.execute(
                "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = 'inbound_outcomes'").fetchone():
            [last] = cursor.execute("SELECT max(event_id) FROM main.inbound_outcomes").fetchone()
            if last:
                cursor.execute(
                    f"INSERT OR IGNORE INTO {schema}.{INBOUND_TABLE} (id, channel, external_id, sender_id, kind, "
                    "message, status, received_at) VALUES (?, '', '', '', 'gap', '{}', 'ignored', ?)",
                    (last, utcnow().replace(tzinfo=None).isoformat(sep=" ")))
        dbapi_connection.commit()
    finally:
        cursor.close()


def _ledger_ddl(schema: str) -> list[str]:
    """CREATE statements of the ledger's table and its indexes, in ``schema``."""
    from sqlalchemy import MetaData
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    table = InboundEvent.__table__.to_metadata(MetaData(), schema=schema)
    dialect = sqlite.dialect()
    return [str(CreateTable(table, if_not_exists=True).compile(dialect=dialect))] + [
        str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect)) for index in table.indexes]
