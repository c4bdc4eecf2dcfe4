"""Database engine, sessions, column types shared by all tables, and migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
#: on SQLite, the name under which every connection to the database sees the inbound ledger's file
INBOUND_SCHEMA = "inbound"
#: the ledger's table (in that file on SQLite; in the database itself on PostgreSQL)
INBOUND_TABLE = "inbound_events"


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp stored as naive UTC and always read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware one is required")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


#: JSON column that works on SQLite and PostgreSQL alike
JSONColumn = JSON


def insert_unless_present(table: Any, keys: list[str], returning: Any) -> dict[str, Any]:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING RETURNING returning`` on ``table``, one per dialect
    (SQLite, PostgreSQL), built once with the values bound at execution, so that every call reuses one
    compiled statement. A returned row says the row was inserted (psycopg gives no row count for
    ON CONFLICT)."""
    return {dialect: insert_for(table).on_conflict_do_nothing(index_elements=keys).returning(returning)
            for dialect, insert_for in (("sqlite", sqlite_insert), ("postgresql", postgresql_insert))}


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


def make_engine(database_url: str, *, echo: bool = False, sqlite_busy_timeout_ms: int = 30000,
                sqlite_autocheckpoint: bool = True, inbound_ledger: bool = False) -> Engine:
    """An engine for the URL; SQLite gets a WAL journal and foreign keys, and its folder is created.

    On a SQLite file, every connection attaches the inbound ledger's file (``inbound_database_path``)
    as ``inbound``, creating the ledger there if missing; its table is found by its plain name.
    ``inbound_ledger=True`` opens the ledger's file itself instead (the webhook edge's engine).
    ``sqlite_busy_timeout_ms=0`` makes a locked SQLite database fail at once instead of waiting in
    SQLite's own busy handler (which sleeps up to 100 ms a try), for callers that retry faster.
    ``sqlite_autocheckpoint=False``: this engine's commits never copy the journal back into the
    database (which fsyncs); some other connection must (``checkpoint``).
    """
    url = make_url(database_url)
    kwargs: dict[str, Any] = {"echo": echo}
    ledger = inbound_database_path(database_url)
    opens_ledger = inbound_ledger and ledger is not None
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": sqlite_busy_timeout_ms / 1000}
        if opens_ledger:
            database_url = url.set(database=str(ledger)).render_as_string(hide_password=False)
    else:
        kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
    engine = create_engine(database_url, **kwargs)
    if url.get_backend_name() == "sqlite":
        attach = None if inbound_ledger else ledger
        event.listen(engine, "connect", lambda connection, _record: _configure_sqlite(
            connection, sqlite_busy_timeout_ms, sqlite_autocheckpoint, attach))
        if opens_ledger:
            event.listen(engine, "connect", lambda connection, _record: _ensure_ledger(connection, "main"))
    return engine


def is_sqlite_busy(exc: BaseException) -> bool:
    """The error SQLite gives when another connection holds the write lock."""
    text = str(getattr(exc, "orig", exc)).lower()
    return "database is locked" in text or "database is busy" in text


def _configure_sqlite(dbapi_connection: Any, busy_timeout_ms: int, autocheckpoint: bool = True,
                      attach: Path | None = None) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the web process read while a worker writes; NORMAL sync is safe with WAL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    if not autocheckpoint:
        cursor.execute("PRAGMA wal_autocheckpoint=0")
    if attach is not None:
        cursor.execute(f"ATTACH DATABASE ? AS {INBOUND_SCHEMA}", (str(attach),))
        cursor.execute(f"PRAGMA {INBOUND_SCHEMA}.journal_mode=WAL")
        cursor.execute(f"PRAGMA {INBOUND_SCHEMA}.synchronous=NORMAL")
        cursor.close()
        _ensure_ledger(dbapi_connection, INBOUND_SCHEMA)
        return
    cursor.close()


def _ensure_ledger(dbapi_connection: Any, schema: str) -> None:
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
    from sqlmodel import SQLModel

    import helpdesk.channels.models  # noqa: F401  (registers the table)

    table = SQLModel.metadata.tables[INBOUND_TABLE].to_metadata(MetaData(), schema=schema)
    dialect = sqlite.dialect()
    return [str(CreateTable(table, if_not_exists=True).compile(dialect=dialect))] + [
        str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect)) for index in table.indexes]


def checkpoint(engine: Engine) -> None:
    """Copy what SQLite's write-ahead journal holds back into the database file, as far as readers
    allow (``PASSIVE``: it waits for nobody)."""
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(database_url: str):
    """Alembic's configuration pointing at CareDesk's migrations and the given database."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def migrate(engine: Engine) -> None:
    """Bring the database schema up to the newest migration."""
    from alembic import command

    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
