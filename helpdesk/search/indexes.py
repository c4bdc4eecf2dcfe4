"""The PostgreSQL search structures that migration 0016_search leaves to be built after start-up.

On a messages table that is already large, filling ``messages.search_vector`` for every existing row
and building its GIN index inside the migration's transaction would hold every write to messages for
the whole time; here the column is filled in small batches (each its own short transaction) and the
index is built with ``CREATE INDEX CONCURRENTLY`` (which cannot run in a transaction), on an
autocommit connection, once per database (an advisory lock keeps a second replica from doing the same).
New and edited messages need none of this: the migration's trigger sets their vector as they are written."""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from helpdesk.core.db import exclusive

log = logging.getLogger(__name__)

#: index name -> (table, what it indexes); the same as migration 0016_search's
SEARCH_INDEXES = {
    "ix_messages_search": ("messages", "search_vector"),
    "ix_customers_search": (
        "customers", "to_tsvector('simple'::regconfig, caredesk_search_fold(coalesce(name, '')))"),
    "ix_channel_identities_search": (
        "channel_identities", "to_tsvector('simple'::regconfig, "
                              "caredesk_search_fold(coalesce(display_name, '') || ' ' || external_id))"),
}
#: messages whose vector one backfill statement sets (a short transaction: writes wait at most that long)
BACKFILL_BATCH = 5_000
#: the vector of a message's text, as the migration's trigger sets it
MESSAGE_VECTOR = "to_tsvector('simple'::regconfig, caredesk_search_fold(text))"


def index_statement(name: str, *, concurrently: bool = False) -> str:
    """The ``CREATE INDEX`` statement of one search index."""
    table, expression = SEARCH_INDEXES[name]
    how = "CONCURRENTLY " if concurrently else ""
    return f"CREATE INDEX {how}IF NOT EXISTS {name} ON {table} USING gin ({expression})"


def backfill_messages(connection) -> int:
    """Set the search vector of every message that has none (written before migration 0016), in
    batches of ``BACKFILL_BATCH`` ids on an autocommit connection; the number of messages set."""
    done = 0
    low = connection.exec_driver_sql("SELECT min(id) FROM messages WHERE search_vector IS NULL").scalar()
    high = connection.exec_driver_sql("SELECT max(id) FROM messages").scalar()
    while low is not None and low <= high:
        done += connection.exec_driver_sql(
            f"UPDATE messages SET search_vector = {MESSAGE_VECTOR} "
            "WHERE id >= %(low)s AND id < %(stop)s AND search_vector IS NULL",
            {"low": low, "stop": low + BACKFILL_BATCH}).rowcount
        low += BACKFILL_BATCH
    return done


def _unusable(connection) -> dict[str, bool]:
    """Search indexes missing (False) or left invalid by an interrupted concurrent build (True)."""
    valid = dict(connection.exec_driver_sql(
        "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = ANY(%(names)s)", {"names": list(SEARCH_INDEXES)}).all())
    return {name: name in valid for name in SEARCH_INDEXES if not valid.get(name)}


def build_missing(engine: Engine) -> list[str]:
    """Fill the messages' search vectors and build the search indexes this PostgreSQL database lacks,
    without blocking writes; the names of the indexes built. Blocking: call it in a thread. Nothing
    to do on SQLite (its FTS tables are migrated)."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        # The messages' index is built only once every vector is set (by the migration on a small
        # table, here on a large one) and the trigger sets new ones: with every index usable, nothing
        # is left to fill. (Asking the table instead would read all of it at every start: no index
        # finds the rows without a vector.)
        if not _unusable(connection):
            return []
    built = []
    with exclusive(engine, "search-indexes"), \
            engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        filled = backfill_messages(connection)
        if filled:
            log.info("search vectors set for %d messages written before the search migration", filled)
        for name, invalid in _unusable(connection).items():
            if invalid:
                connection.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            log.info("building search index %s (writes go on meanwhile)", name)
            connection.exec_driver_sql(index_statement(name, concurrently=True))
            built.append(name)
    return built
