"""Messages whose announcement never reached this process, announced late to its inbox sockets.

A message is announced (``message_created``) after the transaction that stored it has committed. A
worker killed between the two, or Redis away at that moment, loses the announcement, and an agent's
open thread would not show the message until something else made the page reload. So while inbox
sockets are open in this process, a watcher reads the ids of the messages stored since it started
and announces to this process's sockets each one it has not heard of within a grace period, the way
its worker would have (the page then fetches it through the API, as for any announcement).

Ids are given when a message is inserted and become visible at its commit, so a lower id can appear
after a higher one; the watcher reads again everything above the highest id it saw
``LATE_COMMIT_S`` ago, which covers a transaction that long (a turn's is one statement).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from anyio import to_thread
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Engine

from helpdesk.core.errors import is_infrastructure_error
from helpdesk.core.events import DomainEvent, EventBus

log = logging.getLogger(__name__)

#: how often the stored messages are compared with what was heard
CHECK_S = 2.0
#: how long a stored message may go unheard before it is announced here (its own announcement is
#: normally heard within milliseconds of the commit)
GRACE_S = 3.0
#: the longest a message's transaction may take between its id and its commit and still be caught
LATE_COMMIT_S = 15.0
#: the most message ids read at one check (the next check goes on from there)
SCAN_LIMIT = 50_000

#: ids only (an index-only read): a few thousand a check under load, nearly all of them heard
_STORED_AFTER = text("SELECT id FROM messages WHERE id > :floor ORDER BY id LIMIT :limit")
_DETAILS = text("SELECT id, conversation_id, author, is_private FROM messages WHERE id IN :ids").bindparams(
    bindparam("ids", expanding=True))
_HIGHEST = text("SELECT COALESCE(MAX(id), 0) FROM messages")
_FIRST_OF_CONVERSATION = text(
    "SELECT NOT EXISTS (SELECT 1 FROM messages WHERE conversation_id = :conversation AND id < :id)")


class MissedMessages:
    """Announces to this process's inbox sockets the stored messages whose announcement they missed."""

    def __init__(self, engine: Engine, events: EventBus, watched: Callable[[], bool], *,
                 check_s: float = CHECK_S, grace_s: float = GRACE_S, late_commit_s: float = LATE_COMMIT_S):
        self.engine = engine
        self.events = events
        #: whether any socket is open here (the watcher stops when none is)
        self.watched = watched
        self.check_s = check_s
        self.grace_s = grace_s
        self.late_commit_s = late_commit_s
        self._task: asyncio.Task | None = None
        #: message ids announced (heard on the bus, or announced here) above the floor
        self._heard: set[int] = set()
        #: message ids stored and not heard of yet → when a check first saw them
        self._unheard: dict[int, float] = {}
        #: (when, the highest id read by then), oldest first
        self._scans: deque[tuple[float, int]] = deque()
        self._floor = 0
        #: how many messages were announced here (their own announcement was lost)
        self.announced = 0

    def ensure_running(self) -> None:
        """Start watching, unless already watching (called when a socket opens)."""
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop watching."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        queue = self.events.subscribe(maxsize=100_000)
        try:
            # only what is stored from now on: a page that opens reads the past through the API
            self._reset(await to_thread.run_sync(self._read_one, _HIGHEST, {}))
            loop = asyncio.get_running_loop()
            while self.watched():
                check_at = loop.time() + self.check_s
                while (left := check_at - loop.time()) > 0:
                    try:
                        self._hear(await asyncio.wait_for(queue.get(), left))
                    except TimeoutError:
                        break
                while not queue.empty():
                    self._hear(queue.get_nowait())
                try:
                    await self._check()
                except Exception as exc:
                    if not is_infrastructure_error(exc):
                        raise
                    log.warning("could not look for unannounced messages: %s", exc)
        except Exception:
            log.exception("the watcher of unannounced messages stopped")
        finally:
            self.events.unsubscribe(queue)

    def _reset(self, floor: int) -> None:
        self._floor = floor
        self._heard.clear()
        self._unheard.clear()
        self._scans.clear()

    def _hear(self, event: DomainEvent) -> None:
        if event.name == "message_created" and isinstance(event.data.get("message_id"), int):
            if event.data["message_id"] > self._floor:
                self._heard.add(event.data["message_id"])

    async def _check(self) -> None:
        ids = await to_thread.run_sync(self._stored_after, self._floor)
        now = time.monotonic()
        top = max(self._scans[-1][1] if self._scans else self._floor, ids[-1] if ids else 0)
        overdue = []
        for message_id in ids:
            if message_id in self._heard:
                continue
            first_seen = self._unheard.setdefault(message_id, now)
            if now - first_seen >= self.grace_s:
                overdue.append(message_id)
        missed = await to_thread.run_sync(self._details, overdue) if overdue else []
        for message_id in overdue:  # announced now (or gone since it was stored): not looked at again
            self._heard.add(message_id)
            self._unheard.pop(message_id, None)
        for message_id, conversation_id, author, private in missed:
            data: dict[str, Any] = {"conversation_id": conversation_id, "message_id": message_id,
                                    "author": author, "private": private, "announced_late": True}
            if author == "customer":
                data["new_conversation"] = bool(await to_thread.run_sync(
                    self._read_one, _FIRST_OF_CONVERSATION, {"conversation": conversation_id, "id": message_id}))
            self.events.fan_out_here(DomainEvent("message_created", data))
            self.announced += 1
        if missed:
            log.warning("announced %d stored message(s) whose announcement was lost", len(missed))
        self._scans.append((now, top))
        self._move_floor(now)

    def _move_floor(self, now: float) -> None:
        """Stop reading below the highest id seen ``late_commit_s`` ago (anything under it that was
        not heard of has been announced by now: the grace is shorter)."""
        while len(self._scans) > 1 and now - self._scans[1][0] >= self.late_commit_s:
            self._scans.popleft()
        if now - self._scans[0][0] < self.late_commit_s or self._scans[0][1] <= self._floor:
            return
        self._floor = self._scans[0][1]
        self._heard = {message_id for message_id in self._heard if message_id > self._floor}
        self._unheard = {message_id: at for message_id, at in self._unheard.items() if message_id > self._floor}

    def _stored_after(self, floor: int) -> list[int]:
        with self.engine.connect() as connection:
            return list(connection.execute(_STORED_AFTER, {"floor": floor, "limit": SCAN_LIMIT}).scalars())

    def _details(self, ids: list[int]) -> list[tuple[int, int, str, bool]]:
        with self.engine.connect() as connection:
            rows = connection.execute(_DETAILS, {"ids": ids})
            return sorted((row.id, row.conversation_id, row.author, bool(row.is_private)) for row in rows)

    def _read_one(self, statement: Any, params: dict[str, Any]) -> Any:
        with self.engine.connect() as connection:
            return connection.execute(statement, params).scalar()
