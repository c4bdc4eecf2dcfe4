"""Database engine, sessions, column types shared by all tables, and migrations."""

from __future__ import annotations

import select
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


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


#: connections a process keeps open to a server database, and how many more it may open for a peak
#: (those are closed when handed back): see Settings.database_pool_size
POOL_SIZE = 20
MAX_OVERFLOW = 10


def make_engine(database_url: str, *, echo: bool = False, sqlite_busy_timeout_ms: int = 30000,
                sqlite_autocheckpoint: bool = True, pool_size: int = POOL_SIZE, max_overflow: int = MAX_OVERFLOW,
                on_connect: Sequence[Callable[[Any], None]] = ()) -> Engine:
    """An engine for the URL; SQLite gets a WAL journal and foreign keys, and its folder is created.

    ``on_connect``: callables given each new DBAPI connection after that set-up, in order (how the
    channels' inbound ledger attaches its own file, see ``helpdesk.channels.ledger``).
    ``sqlite_busy_timeout_ms=0`` makes a locked SQLite database fail at once instead of waiting in
    SQLite's own busy handler (which sleeps up to 100 ms a try), for callers that retry faster.
    ``sqlite_autocheckpoint=False``: this engine's commits never copy the journal back into the
    database (which fsyncs); some other connection must (``checkpoint``).
    ``pool_size``/``max_overflow``: a server database's connection pool (SQLite keeps SQLAlchemy's).
    """
    url = make_url(database_url)
    kwargs: dict[str, Any] = {"echo": echo}
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite:
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": sqlite_busy_timeout_ms / 1000}
    else:
        # Connections kept a while are renewed, so a firewall that silently drops idle ones finds none
        # in use; a connection the server closed is found at checkout (see _hung_up), with no ping.
        kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_recycle=1800)
    engine = create_engine(database_url, **kwargs)
    if not sqlite:
        event.listen(engine, "checkout", _refuse_hung_up)
    hooks = list(on_connect)
    if sqlite or hooks:
        def connect(dbapi_connection: Any, _record: Any) -> None:
            if sqlite:
                _configure_sqlite(dbapi_connection, sqlite_busy_timeout_ms, sqlite_autocheckpoint)
            for hook in hooks:
                hook(dbapi_connection)

        event.listen(engine, "connect", connect)
    return engine


def _refuse_hung_up(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Before a pooled connection is handed out: if the server has closed it (a restart, a failover,
    an administrator's terminate), have the pool open a new one instead.

    This replaces SQLAlchemy's pre-ping, a round trip on every checkout (about 10% of a worker's busy
    time at several checkouts a message): a server that ends a connection says so on its socket
    (an error message, then end of file), so a socket with something to read while the connection
    sits idle in the pool is one the server gave up. A peer lost without a word (no FIN) is found
    when the next statement fails, which the callers treat as the database being away and retry.
    """
    if getattr(dbapi_connection, "closed", False) or _hung_up(dbapi_connection):
        raise DisconnectionError("the database server closed this connection")


def _hung_up(dbapi_connection: Any) -> bool:
    try:
        descriptor = dbapi_connection.fileno()
    except Exception:  # noqa: BLE001 - a connection whose socket is gone is as good as closed
        return True
    poller = select.poll()
    poller.register(descriptor, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def reading(engine: Engine) -> Engine:
    """``engine`` for reads that need no transaction: on PostgreSQL its connections run in autocommit,
    so a read is its statement's round trip alone, without the BEGIN before it and the ROLLBACK after
    it (psycopg sends each as a round trip of its own; a worker's turn reads several times). Each
    statement then sees its own snapshot: use it for one-statement reads. SQLite is returned as is."""
    if engine.dialect.name == "sqlite":
        return engine
    return _autocommit(engine)


def single_statement(engine: Engine) -> Engine:
    """``engine`` for a write that is one statement: on PostgreSQL in autocommit, where the statement is
    its own transaction (all of it or nothing), without BEGIN and COMMIT round trips. On SQLite the
    engine as is: the caller commits."""
    return reading(engine)


@lru_cache(maxsize=16)
def _autocommit(engine: Engine) -> Engine:
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def is_sqlite_busy(exc: BaseException) -> bool:
    """The error SQLite gives when another connection holds the write lock."""
    text = str(getattr(exc, "orig", exc)).lower()
    return "database is locked" in text or "database is busy" in text


def _configure_sqlite(dbapi_connection: Any, busy_timeout_ms: int, autocheckpoint: bool = True) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the web process read while a worker writes; NORMAL sync is safe with WAL.
    use_wal_journal(cursor, "main", busy_timeout_ms)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    if not autocheckpoint:
        cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def use_wal_journal(cursor: Any, schema: str, busy_timeout_ms: int) -> None:
    """Put the SQLite database ``schema`` of the cursor's connection in WAL mode.

    The mode is kept in the file, so this is a look on every connection but the first. Switching a
    new file needs it alone, and SQLite answers "database is locked" at once, without its busy
    handler, when another connection is switching it at the same moment (replicas or a migrate job
    starting together on a new database): that is retried here, for as long as the busy timeout."""
    deadline = time.monotonic() + busy_timeout_ms / 1000
    pause = 0.005
    while True:
        try:
            [mode] = cursor.execute(f"PRAGMA {schema}.journal_mode").fetchone()
            if str(mode).lower() != "wal":
                cursor.execute(f"PRAGMA {schema}.journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


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


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    """The newest migration's revision (read from the migration files once per process)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The migration the database is at (None: none applied)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


#: the PostgreSQL advisory lock key that serialises migrations (any constant, the same in every process)
MIGRATION_LOCK_KEY = 0x43415245  # "CARE"


def migrate(engine: Engine) -> None:
    """Bring the database schema up to the newest migration; safe when several processes do it at once.

    On PostgreSQL the upgrade runs in one transaction holding an advisory lock: a second process
    waits for the first, then finds the schema at head and does nothing (DDL is transactional there,
    so a process killed mid-way leaves the schema as it was). On a SQLite file a lock file beside the
    database serialises the processes on one machine.
    """
    from alembic import command

    head = head_revision()
    with engine.connect() as connection:
        if current_revision(connection) == head:
            # Up to date (every start but the first after an upgrade): Alembic would load and compile
            # every migration file only to find nothing to do.
            return
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with _migration_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
        if current_revision(connection) == head:
            return  # another process migrated while this one waited for the lock
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """An exclusive lock file beside a SQLite database file (nothing to do for other databases)."""
    path = _lock_file(engine, "migrate")
    if path is None:
        yield
        return
    with _file_lock(path):
        yield


def _lock_file(engine: Engine, name: str) -> str | None:
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    return f"{database}.{name}.lock"


@contextmanager
def _file_lock(path: str) -> Iterator[None]:
    import fcntl

    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lock_key(name: str) -> int:
    """A stable signed 64-bit PostgreSQL advisory lock key for ``name``."""
    import hashlib

    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


@contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[None]:
    """Held by one process at a time among all that share the database (blocking; call it in a thread).

    On PostgreSQL a session advisory lock on a connection of its own, so the server frees it when the
    holder dies; on a SQLite file an exclusive lock on a file beside it (the processes of one machine);
    in memory, nothing to share."""
    if engine.dialect.name == "postgresql":
        key = lock_key(name)
        # autocommit: no transaction stays open while the lock is held
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql(f"SELECT pg_advisory_lock({key})")
            try:
                yield
            finally:
                connection.exec_driver_sql(f"SELECT pg_advisory_unlock({key})")
        return
    path = _lock_file(engine, name.replace(":", "-").replace("/", "-"))
    if path is None:
        yield
        return
    with _file_lock(path):
        yield
