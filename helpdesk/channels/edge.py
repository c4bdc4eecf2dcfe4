"""Storing webhook events on SQLite: one writer thread, many requests per transaction.

SQLite has one write lock per file. Instead of every request taking it on its own (and, when a
child process writes too, every request's thread retrying for it), the edge hands its events to a
single thread that stores whatever has queued up in one transaction, commits once, and answers all
of them. Under a burst a transaction holds tens of events; when it is quiet, one. Each request is
answered only after the commit that holds its events, so an acknowledgement still means "stored".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from connectors.base import InboundMessage
from helpdesk.channels import service
from helpdesk.channels.gate import EdgeGate
from helpdesk.core.db import is_sqlite_busy

log = logging.getLogger(__name__)

#: (event id, channel, sender id, to be processed) of each new event of a request
Stored = list[tuple[int, str, str, bool]]
#: most requests stored in one transaction
MAX_BATCH = 256
BUSY_BUDGET_S = 30.0


def store_request(session: Session, messages: list[InboundMessage], payload: Any) -> Stored:
    """Record one request's events in ``session`` (not committed)."""
    stored = []
    for message in messages:
        event = service.record_inbound(session, message, payload)
        if event is not None:
            stored.append((event.id, message.channel, message.sender_id, event.status == "received"))
    return stored


def retry_while_busy(work: Callable[[], Any], gate: EdgeGate | None, budget_s: float = BUSY_BUDGET_S) -> Any:
    """Run ``work``; while SQLite says another process holds the write lock, try again soon, with
    that process holding back its next writes meanwhile (``gate``)."""
    deadline = time.monotonic() + budget_s
    pause = 0.0002
    with gate or contextlib.nullcontext():
        while True:
            try:
                return work()
            except OperationalError as exc:
                if not is_sqlite_busy(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 1.5, 0.002)


class EdgeWriter:
    """The single thread that stores the edge's events."""

    def __init__(self, engine: Engine, gate: EdgeGate | None = None):
        self.engine = engine
        self.gate = gate
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.batches = 0
        self.requests = 0

    async def store(self, messages: list[InboundMessage], payload: Any) -> Stored:
        """Store one request's events; returns once they are committed."""
        self._ensure_thread()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Stored] = loop.create_future()
        self._queue.put((messages, payload, future, loop))
        return await future

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="caredesk-edge-writer", daemon=True)
                    self._thread.start()

    def close(self) -> None:
        """Store what is queued, then stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(item)
            self._store(batch)

    def _store(self, batch: list[tuple]) -> None:
        def together() -> list[Stored]:
            with Session(self.engine, expire_on_commit=False) as session:
                self._take_write_lock(session)
                results = [store_request(session, messages, payload) for messages, payload, _f, _l in batch]
                session.commit()
                return results

        try:
            results: list[Stored | BaseException] = retry_while_busy(together, self.gate)
        except Exception:
            # one request's bad data must not fail the others: store them one by one
            results = []
            for messages, payload, _future, _loop in batch:
                try:
                    results.append(retry_while_busy(lambda m=messages, p=payload: self._alone(m, p), self.gate))
                except Exception as exc:
                    log.exception("storing a webhook event failed")
                    results.append(exc)
        self.batches += 1
        self.requests += len(batch)
        for (_messages, _payload, future, loop), result in zip(batch, results, strict=True):
            loop.call_soon_threadsafe(_settle, future, result)

    def _take_write_lock(self, session: Session) -> None:
        """Begin with SQLite's write lock held (``BEGIN IMMEDIATE``), waiting for it while another
        process holds it: a failed try costs one statement, not the batch's inserts done again."""
        connection = session.connection()
        retry_while_busy(lambda: connection.exec_driver_sql("BEGIN IMMEDIATE"), None)

    def _alone(self, messages: list[InboundMessage], payload: Any) -> Stored:
        with Session(self.engine, expire_on_commit=False) as session:
            self._take_write_lock(session)
            stored = store_request(session, messages, payload)
            session.commit()
            return stored


def _settle(future: asyncio.Future, result: Any) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
