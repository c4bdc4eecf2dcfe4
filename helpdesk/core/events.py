"""Domain events (``message_created``, ``conversation_updated``, ``order_delivered`` …).

In-process listeners react to them (follow-ups, surveys, SLA) without threading through the core,
and live views (the inbox) subscribe to the stream. With Redis configured, events fan out through
Redis pub/sub so a browser connected to one process sees what another process did.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from helpdesk.core.db import utcnow
from helpdesk.core.errors import is_infrastructure_error
from helpdesk.core.subscription import start_following

log = logging.getLogger(__name__)

REDIS_CHANNEL = "caredesk:events"

Listener = Callable[["DomainEvent"], Awaitable[None]]


@dataclass(frozen=True)
class DomainEvent:
    """Something that happened, with the ids a reader needs to look it up."""

    name: str
    data: dict[str, Any]
    at: datetime = field(default_factory=utcnow)

    def to_json(self) -> str:
        """The event as JSON for the wire."""
        return json.dumps(self._document(), default=str)

    def _document(self) -> dict[str, Any]:
        return {"event": self.name, "data": self.data, "at": self.at.isoformat()}

    @classmethod
    def from_json(cls, raw: str) -> DomainEvent:
        """Read an event back from the wire."""
        return cls._from_document(json.loads(raw))

    @classmethod
    def _from_document(cls, document: dict[str, Any]) -> DomainEvent:
        return cls(document["event"], document["data"], datetime.fromisoformat(document["at"]))


#: events per message when a batch goes through Redis as one JSON array
EVENTS_PER_MESSAGE = 500


def batch_to_json(events: list[DomainEvent]) -> str:
    """Several events as one wire message (a JSON array of what ``to_json`` writes)."""
    return json.dumps([event._document() for event in events], default=str)


def events_from_json(raw: str) -> list[DomainEvent]:
    """The events of one wire message: a single event, or a batch."""
    document = json.loads(raw)
    if isinstance(document, list):
        return [DomainEvent._from_document(item) for item in document]
    return [DomainEvent._from_document(document)]


class EventBus:
    """Publishes events to listeners in this process and to every subscriber of every process."""

    def __init__(self, redis: Any = None, *, channel: str = REDIS_CHANNEL):
        self._redis = redis
        self._channel = channel
        self._listeners: dict[str, list[Listener]] = defaultdict(list)
        self._subscribers: set[asyncio.Queue[DomainEvent]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._relay_task: asyncio.Task | None = None

    def on(self, name: str) -> Callable[[Listener], Listener]:
        """Register an in-process listener for events named ``name``."""

        def register(listener: Listener) -> Listener:
            self._listeners[name].append(listener)
            return listener

        return register

    async def start(self) -> None:
        """Bind to the running loop and, with Redis, relay events published by other processes."""
        self._loop = asyncio.get_running_loop()
        if self._redis is not None:
            # the live views miss what is published while Redis is away; the processes' work goes on
            self._relay_task = await start_following(self._redis, self._channel, self._relay,
                                                     name="caredesk-event-relay", what="event relay's Redis")

    async def stop(self) -> None:
        """Stop relaying."""
        if self._relay_task is not None:
            self._relay_task.cancel()
            try:
                await self._relay_task
            except asyncio.CancelledError:
                pass

    async def publish(self, name: str, **data: Any) -> DomainEvent:
        """Run this process's listeners, then fan the event out to subscribers everywhere."""
        event = DomainEvent(name, data)
        await self._run_listeners(event)
        if self._redis is not None:
            await self._send(event.to_json())
        else:
            self._fan_out(event)
        return event

    async def _send(self, wire: str) -> None:
        # The listeners of this process have run; what is lost while Redis is away is the live view
        # of other processes, which reload what they show when they reconnect. A customer's turn must
        # not fail for it.
        try:
            await self._redis.publish(self._channel, wire)
        except Exception as exc:
            if not is_infrastructure_error(exc):
                raise
            log.warning("could not fan an event out (%s: %s)", type(exc).__name__, exc)

    async def publish_many(self, events: Iterable[tuple[str, dict[str, Any]]]) -> list[DomainEvent]:
        """Publish ``(name, data)`` events in order: each one's listeners as ``publish`` runs them, then
        all of them to the subscribers at once; with Redis as a few messages of up to
        ``EVENTS_PER_MESSAGE`` events in one round trip, instead of a message and a round trip per event
        (a cold SLA check may announce tens of thousands)."""
        published = []
        for name, data in events:
            event = DomainEvent(name, data)
            await self._run_listeners(event)
            published.append(event)
        if self._redis is None:
            for event in published:
                self._fan_out(event)
        elif len(published) == 1:
            await self._send(published[0].to_json())
        else:
            for start in range(0, len(published), EVENTS_PER_MESSAGE):
                await self._send(batch_to_json(published[start:start + EVENTS_PER_MESSAGE]))
        return published

    async def _run_listeners(self, event: DomainEvent) -> None:
        for listener in self._listeners.get(event.name, ()):
            try:
                await listener(event)
            except Exception:
                log.exception("listener %s of %s failed", getattr(listener, "__name__", listener), event.name)

    def publish_soon(self, name: str, **data: Any) -> None:
        """Publish from any thread (sync routes and services run in worker threads)."""
        if self._loop is None:
            return
        self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self.publish(name, **data)))

    def subscribe(self, maxsize: int = 1000) -> asyncio.Queue[DomainEvent]:
        """A queue receiving every event from now on (drop it with ``unsubscribe``)."""
        queue: asyncio.Queue[DomainEvent] = asyncio.Queue(maxsize)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[DomainEvent]) -> None:
        """Stop delivering to ``queue``."""
        self._subscribers.discard(queue)

    def fan_out_here(self, event: DomainEvent) -> None:
        """Deliver ``event`` to this process's subscribers only (no listeners, no other process): an
        announcement made up here for what another process's was lost (``helpdesk.inbox.missed``)."""
        self._fan_out(event)

    def _fan_out(self, event: DomainEvent) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # a stalled browser must not block everyone else
                log.warning("dropping an event for a subscriber that does not keep up")

    def _relay(self, message: dict[str, Any]) -> None:
        try:
            for event in events_from_json(message["data"]):
                self._fan_out(event)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed event from Redis")
