"""The PostgreSQL search indexes that migration 0016_search leaves to be built after start-up.

On a messages table that is already large, building the GIN index inside the migration's transaction
would hold every write to messages for the whole build; ``CREATE INDEX CONCURRENTLY`` lets writes go
on, but cannot run in a transaction, so it runs here, on an autocommit connection, once per database
(an advisory lock keeps a second replica from building the same index)."""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from helpdesk.core.db import exclusive

log = logging.getLogger(__name__)

#: index name -> (table, the text expression it folds); the same as migration 0016_search's
SEARCH_INDEXES = {
    "ix_messages_search": ("messages", "text"),
    "ix_customers_search": ("customers", "coalesce(name, '')"),
    "ix_channel_identities_search": ("channel_identities", "coalesce(display_name, '') || ' ' || external_id"),
}


def index_statement(name: str, *, concurrently: bool = False) -> str:
    """The ``CREATE INDEX`` statement of one search index."""
    table, expression = SEARCH_INDEXES[name]
    how = "CONCURRENTLY " if concurrently else ""
    return (f"CREATE INDEX {how}IF NOT EXISTS {name} ON {table} USING gin "
            f"(to_tsvector('simple'::regconfig, caredesk_search_fold({expression})))")


def _unusable(connection) -> dict[str, bool]:
    """Search indexes missing (False) or left invalid by an interrupted concurrent build (True)."""
    valid = dict(connection.exec_driver_sql(
        "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = ANY(%(names)s)", {"names": list(SEARCH_INDEXES)}).all())
    return {name: name in valid for name in SEARCH_INDEXES if not valid.get(name)}


def build_missing(engine: Engine) -> list[str]:
    """Build the search indexes this PostgreSQL database lacks, without blocking writes; the names
    built. Blocking: call it in a thread. Nothing to do on SQLite (its FTS tables are migrated)."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if not _unusable(connection):
            return []
    built = []
    with exclusive(engine, "search-indexes"), \
            engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for name, invalid in _unusable(connection).items():
            if invalid:
                connection.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            log.info("building search index %s (writes go on meanwhile)", name)
            connection.exec_driver_sql(index_statement(name, concurrently=True))
            built.append(name)
    return built
