"""Storing webhook events many requests a transaction: on SQLite on the event loop, never waiting on
the loop for the write lock (EdgeWriter); on PostgreSQL in a thread (GroupCommitWriter).

The edge writes the inbound ledger, which on SQLite is a file of its own
(``channels.ledger.inbound_database_path``) that nothing else writes in normal running: the message worker's
transactions are on the main file, so the edge never queues behind them. It stores the requests that
arrived in one turn of the event loop in one transaction, on the loop itself: with the WAL journal
and ``synchronous=NORMAL`` a commit is a write into the journal, no fsync, well under a millisecond
for a batch. Doing it on the loop rather than in a writer thread matters: a thread that hands the
GIL back on every SQLite call waits up to the interpreter's switch interval to get it again each
time, while the loop parses other requests, and a batch of ten inserts then took 20-80 ms instead of 1.

Web chat frames come through here too. Should another connection hold the ledger's write lock all
the same (a migration, another process), taking it fails at once (busy timeout 0): the requests stay
queued, the loop serves other requests, and the writer tries again a fraction of a millisecond later. Each request is
answered only after the commit that holds its events, so an acknowledgement still means "stored".

The edge's connections never checkpoint the journal themselves (that fsyncs, for tens of
milliseconds, on the loop); every CHECKPOINT_EVERY commits the writer has a thread do it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from connectors.base import InboundMessage
from helpdesk.channels import service
from helpdesk.channels.models import EventStatus
from helpdesk.core.db import is_sqlite_busy
from helpdesk.core.errors import is_infrastructure_error

log = logging.getLogger(__name__)

#: (event id, channel, sender id, to be processed) of each new event of a request
Stored = list[tuple[int, str, str, bool]]
#: how long requests wait for the write lock before they fail (the platform retries them)
BUSY_BUDGET_S = 30.0
#: pauses between tries for a lock another connection holds (seconds)
FIRST_PAUSE_S = 0.0002
MAX_PAUSE_S = 0.002
#: commits between two checkpoints of the journal (in a thread)
CHECKPOINT_EVERY = 500
#: most requests in one transaction (bounds how long one commit keeps the loop busy)
MAX_BATCH = 256


class _Busy(Exception):
    """Another connection holds the write lock."""


def store_request(session: Session, messages: list[InboundMessage], payload: Any) -> Stored:
    """Record one request's events in ``session`` (not committed)."""
    stored = []
    for message in messages:
        event = service.record_inbound(session, message, payload)
        if event is not None:
            stored.append((event.id, message.channel, message.sender_id, event.status == "received"))
    return stored


class GroupCommitWriter:
    """Stores the edge's events on a server database: the requests that arrive while a transaction is
    being committed are stored together in the next one (group commit), in a thread.

    At a trickle each request has a transaction of its own at once, as before; under a burst, one
    round of statements and one commit carry many requests, where each used to take a thread hop, a
    pooled connection (the pool overflowed, and a new connection costs more than the inserts) and a
    commit of its own. At most ``in_flight`` transactions run at a time. A batch that fails for one
    request's data is stored request by request, so one bad event fails only its own request; a
    database that is away fails every request of the batch (the platforms send them again).
    """

    def __init__(self, engine: Engine, in_flight: int = 2):
        self.engine = engine
        self.in_flight = in_flight
        self._pending: list[tuple[list[InboundMessage], Any, asyncio.Future]] = []
        self._running = 0
        self._tasks: set[asyncio.Task] = set()
        self.batches = 0
        self.requests = 0

    async def store(self, messages: list[InboundMessage], payload: Any) -> Stored:
        """Store one request's events; returns once they are committed."""
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._pending.append((messages, payload, future))
        if self._running < self.in_flight:
            self._running += 1
            task = asyncio.create_task(self._drain(), name="caredesk-edge-commit")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    results: list[Stored | BaseException] = await to_thread.run_sync(self._together, batch)
                except Exception as exc:
                    if len(batch) == 1 or is_infrastructure_error(exc):
                        results = [exc] * len(batch)
                    else:
                        results = await to_thread.run_sync(self._each_alone, batch)
                EdgeWriter._settle(batch, results)
        finally:
            self._running -= 1

    def _together(self, batch: list[tuple]) -> list[Stored]:
        with Session(self.engine, expire_on_commit=False) as session:
            results = [store_request(session, messages, payload) for messages, payload, _future in batch]
            session.commit()
        self.batches += 1
        self.requests += len(batch)
        return results

    def _each_alone(self, batch: list[tuple]) -> list[Stored | BaseException]:
        results: list[Stored | BaseException] = []
        for messages, payload, _future in batch:
            try:
                results.extend(self._together([(messages, payload, None)]))
            except Exception as exc:
                log.exception("storing a webhook event failed")
                results.append(exc)
        return results

    def close(self) -> None:
        """Nothing to flush: every queued request is in a running transaction's batch or the next."""


@dataclass(frozen=True, eq=False)
class InboundEdge:
    """Where the webhook edge stores inbound events: the database, and on SQLite the ``EdgeWriter``
    that writes the inbound ledger from the loop, on PostgreSQL the ``GroupCommitWriter`` (None in a
    process that serves no webhooks)."""

    engine: Engine
    writer: EdgeWriter | GroupCommitWriter | None = None

    async def store(self, messages: list[InboundMessage], payload: Any) -> Stored:
        """Store the events of one request (see ``store_events``)."""
        return await store_events(self, messages, payload)


async def store_events(edge: InboundEdge, messages: list[InboundMessage], payload: Any) -> Stored:
    """Store one request's (or web chat frame's) events and return once they are committed: through the
    edge's writer (batched; on SQLite from the loop into the ledger's own file, on PostgreSQL in a
    thread), or alone in a thread. A duplicate of an event stored before is left out of the result."""
    if edge.writer is not None:
        return await edge.writer.store(messages, payload)

    def store() -> Stored:
        with Session(edge.engine, expire_on_commit=False) as session:
            stored = store_request(session, messages, payload)
            session.commit()
            return stored

    return await to_thread.run_sync(store)


def retry_while_busy(work: Callable[[], Any], budget_s: float = BUSY_BUDGET_S) -> Any:
    """Run ``work``, blocking; while SQLite says another connection holds the write lock, try again soon."""
    deadline = time.monotonic() + budget_s
    pause = FIRST_PAUSE_S
    while True:
        try:
            return work()
        except _Busy:
            pass
        except OperationalError as exc:
            if not is_sqlite_busy(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 1.5, MAX_PAUSE_S)


class DriverInsert:
    """The ledger's insert (``service.INBOUND_INSERT``) run through the SQLite driver's own cursor.

    Compiled once. Each value is converted by its column's own type (JSON, the UTC timestamp), so a row
    is stored exactly as through SQLAlchemy. What goes is a SQLAlchemy statement execution per event,
    and a session and connection per batch, which were 40% of a webhook's acknowledgement on the loop
    (with the webhook routes matched first, its CPU went from 0.60 to 0.43 ms: ``bench/ack_path_bench.py``).
    """

    def __init__(self, dialect: Dialect):
        self.dialect = dialect
        self.sql = ""
        self._columns: tuple[str, ...] = ()
        self._convert: list[tuple[str, Callable[[Any], Any] | None]] = []

    def store(self, cursor: sqlite3.Cursor, messages: list[InboundMessage], payload: Any) -> Stored:
        """Insert one request's events (in the cursor's transaction); as ``store_request``."""
        stored = []
        for message in messages:
            values = service.inbound_values(message, payload)
            row = cursor.execute(self._statement_for(values), self._parameters(values)).fetchone()
            if row is not None:
                stored.append((row[0], message.channel, message.sender_id, values["status"] == EventStatus.received))
        return stored

    def _statement_for(self, values: dict[str, Any]) -> str:
        if tuple(values) != self._columns:
            statement = service.INBOUND_INSERT["sqlite"]
            compiled = statement.compile(dialect=self.dialect, column_keys=list(values))
            self._convert = [(name, statement.table.c[name].type.dialect_impl(self.dialect).bind_processor(self.dialect))
                             for name in compiled.positiontup]
            self.sql, self._columns = str(compiled), tuple(values)
        return self.sql

    def _parameters(self, values: dict[str, Any]) -> tuple:
        return tuple(values[name] if convert is None else convert(values[name]) for name, convert in self._convert)


class EdgeWriter:
    """Stores the edge's events from the event loop, one transaction per batch of requests.

    ``engine`` must fail at once on a locked file (``make_ledger_engine(..., sqlite_busy_timeout_ms=0)``):
    the loop must never sleep in SQLite's busy handler. ``checkpoint`` copies the journal back into
    the database; it runs in a thread every CHECKPOINT_EVERY commits.
    """

    def __init__(self, engine: Engine, checkpoint: Callable[[], None] | None = None):
        self.engine = engine
        self.checkpoint = checkpoint
        self._insert = DriverInsert(engine.dialect)
        #: the pooled driver connection the writer keeps between batches (only the loop uses it)
        self._connection: Any = None
        self._checkpointing: asyncio.Future | None = None
        self._pending: list[tuple[list[InboundMessage], Any, asyncio.Future]] = []
        self._scheduled = False
        self._waiting_since: float | None = None  # the lock was busy: when the wait began
        self._pause = FIRST_PAUSE_S
        self.batches = 0
        self.requests = 0

    async def store(self, messages: list[InboundMessage], payload: Any) -> Stored:
        """Store one request's events; returns once they are committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Stored] = loop.create_future()
        self._pending.append((messages, payload, future))
        if not self._scheduled:
            # after the requests already runnable in this turn of the loop, so they share the commit
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def close(self) -> None:
        """Store what is still queued (blocking, for shutdown), and give the connection back."""
        batch, self._pending = self._pending, []
        if batch:
            try:
                results = retry_while_busy(lambda: self._together(batch))
            except Exception as exc:
                results = [exc] * len(batch)
            self._settle(batch, results)
        self._end_wait()
        self._release_connection()

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        if not batch:
            return
        try:
            results: list[Stored | BaseException] = self._together(batch)
        except _Busy:
            self._pending = batch + self._pending
            self._retry_later()
            return
        except Exception:
            # one request's bad data must not fail the others: store them one by one
            results = [self._alone(messages, payload) for messages, payload, _future in batch]
        self._end_wait()
        self._settle(batch, results)
        if self._pending and not self._scheduled:  # the rest in the next turn, after other requests
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _retry_later(self) -> None:
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
            self._pause = FIRST_PAUSE_S
        elif now - self._waiting_since > BUSY_BUDGET_S:
            batch, self._pending = self._pending, []
            self._end_wait()
            self._settle(batch, [TimeoutError("the database stayed locked")] * len(batch))
            return
        self._scheduled = True
        asyncio.get_running_loop().call_later(self._pause, self._flush)
        self._pause = min(self._pause * 1.5, MAX_PAUSE_S)

    def _end_wait(self) -> None:
        self._waiting_since = None

    def _together(self, batch: list[tuple]) -> list[Stored]:
        if self._connection is None:
            self._connection = self.engine.raw_connection()
        try:
            results = self._write(self._connection, batch)
        except sqlite3.Error as exc:
            # a connection that failed is not used again (the file went away, an I/O error): the next
            # batch opens a new one
            self._release_connection(invalidate=True)
            # as SQLAlchemy raises it, which is what the callers (and is_infrastructure_error) know
            raise DBAPIError.instance(self._insert.sql, None, exc, sqlite3.Error) from exc
        self.batches += 1
        self.requests += len(batch)
        if self.checkpoint is not None and self.batches % CHECKPOINT_EVERY == 0:
            self._checkpoint_soon()
        return results

    def _write(self, connection: Any, batch: list[tuple]) -> list[Stored]:
        cursor = connection.cursor()
        try:
            self._take_write_lock(cursor)
            try:
                results = [self._insert.store(cursor, messages, payload) for messages, payload, _future in batch]
                connection.commit()
            except BaseException:
                connection.rollback()
                raise
            return results
        finally:
            cursor.close()

    def _release_connection(self, invalidate: bool = False) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if invalidate:
                connection.invalidate()
            else:
                connection.close()  # back to the engine's pool
        except Exception as exc:  # noqa: BLE001 - a broken connection is being let go of anyway
            log.warning("closing the edge's ledger connection failed: %s", exc)

    def _checkpoint_soon(self) -> None:
        if self._checkpointing is not None and not self._checkpointing.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # closing, outside the loop
            return
        self._checkpointing = loop.run_in_executor(None, self._run_checkpoint)

    def _run_checkpoint(self) -> None:
        try:
            self.checkpoint()
        except Exception as exc:  # a later one catches up
            log.warning("checkpointing the journal failed: %s", exc)

    def _alone(self, messages: list[InboundMessage], payload: Any) -> Stored | BaseException:
        try:
            [stored] = retry_while_busy(lambda: self._together([(messages, payload, None)]), budget_s=1.0)
            return stored
        except Exception as exc:
            log.exception("storing a webhook event failed")
            return exc

    @staticmethod
    def _take_write_lock(cursor: sqlite3.Cursor) -> None:
        """Begin with SQLite's write lock held (``BEGIN IMMEDIATE``), or raise _Busy at once."""
        try:
            cursor.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if is_sqlite_busy(exc):
                raise _Busy from exc
            raise

    @staticmethod
    def _settle(batch: list[tuple], results: list[Any]) -> None:
        for (_messages, _payload, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
