"""Alembic environment: runs CareDesk's migrations against the configured connection or URL."""

from alembic import context
from sqlmodel import SQLModel

import helpdesk.migrations.tables  # noqa: F401  (registers every table on the metadata)
from helpdesk.channels.ledger import INBOUND_SCHEMA, INBOUND_TABLE, make_database_engine

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    """Emit SQL without a database connection."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against a live connection (given by the caller, or made from the URL)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    # CareDesk's own engine: on a SQLite file its connections attach the inbound ledger's file
    engine = make_database_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


def _search_structure(type_: str, name: str | None) -> bool:
    """Whether a table, column or index found in the database is one of search's (migration
    0016_search), which no model describes: SQLite's full-text tables (``*_fts`` and their shadow
    tables), PostgreSQL's ``messages.search_vector`` (set by a trigger) and its GIN indexes
    (``ix_*_search``)."""
    if name is None:
        return False
    if type_ == "column":
        return name == "search_vector"
    if type_ == "table":
        return any(name == base or name.startswith(f"{base}_")
                   for base in ("messages_fts", "customers_fts", "identities_fts"))
    return type_ == "index" and name.startswith("ix_") and name.endswith("_search")


def _run(connection) -> None:
    # On a SQLite file the inbound ledger lives in an attached file of its own, created and checked
    # by the engine (helpdesk.channels.ledger), not in the database these migrations compare.
    ledger_apart = connection.dialect.name == "sqlite" and any(
        row[1] == INBOUND_SCHEMA for row in connection.exec_driver_sql("PRAGMA database_list"))

    def include_object(obj, name, type_, reflected, compare_to) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        if reflected and compare_to is None and _search_structure(type_, name):
            return False
        return not (ledger_apart and table is not None and table.name == INBOUND_TABLE)

    # SQLite cannot ALTER most things in place; batch mode recreates tables when needed.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                      compare_type=True, include_object=include_object)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
