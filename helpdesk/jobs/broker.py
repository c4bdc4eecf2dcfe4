"""An embedded publish/subscribe broker for the processes of one machine, when there is no Redis.

`caredesk serve` answers webhooks in one process and processes messages in a child process (see
``helpdesk.jobs.remote``). Domain events, web chat frames and processing jobs cross between the
two through this broker: the serving process hosts it on a Unix socket in a private directory and
the child connects to it. Both sides offer the small part of the ``redis.asyncio`` client that the
event bus and the web chat hub use (``publish``, ``pubsub().subscribe/listen/aclose``), so those
work unchanged whether Redis or the broker carries their messages.

The wire format is one JSON document per line: ``{"op": "sub", "ch": ...}`` and
``{"op": "pub", "ch": ..., "data": ...}``. Delivery is at most once, like Redis pub/sub; whatever
must not be lost is in the database first (stored events, the outbox) and is swept up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from helpdesk.core.aio import cancel_and_wait

log = logging.getLogger(__name__)

#: a line longer than this is refused (events and frames are small)
MAX_LINE = 1 << 20
#: messages waiting for one slow subscriber before it is dropped
MAX_PENDING = 10_000


class PubSub:
    """One subscription, read with ``listen()`` like a redis.asyncio PubSub."""

    def __init__(self, owner: _Endpoint):
        self._owner = owner
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAX_PENDING)
        self.channels: set[str] = set()

    async def subscribe(self, *channels: str) -> None:
        """Receive what is published on ``channels`` from now on."""
        self.channels.update(channels)
        await self._owner._subscribed(self, channels)

    async def listen(self) -> AsyncIterator[dict[str, Any]]:
        """``{"type": "message", "channel": ..., "data": ...}`` for every message, forever."""
        while True:
            yield await self._queue.get()

    def _deliver(self, channel: str, data: str) -> None:
        try:
            self._queue.put_nowait({"type": "message", "channel": channel, "data": data})
        except asyncio.QueueFull:
            log.warning("broker: dropping a message for a subscriber of %s that does not keep up", channel)

    async def aclose(self) -> None:
        """Stop receiving."""
        self._owner._unsubscribed(self)


class _Endpoint:
    """What the serving side and the connected side share: local subscriptions."""

    def __init__(self) -> None:
        self._local: dict[str, set[PubSub]] = defaultdict(set)

    def pubsub(self) -> PubSub:
        """A new subscription object."""
        return PubSub(self)

    async def _subscribed(self, pubsub: PubSub, channels: tuple[str, ...]) -> None:
        for channel in channels:
            self._local[channel].add(pubsub)

    def _unsubscribed(self, pubsub: PubSub) -> None:
        for channel in pubsub.channels:
            self._local[channel].discard(pubsub)

    def _deliver_locally(self, channel: str, data: str) -> None:
        for pubsub in list(self._local.get(channel, ())):
            pubsub._deliver(channel, data)


def _line(op: str, channel: str, data: str | None = None) -> bytes:
    document: dict[str, Any] = {"op": op, "ch": channel}
    if data is not None:
        document["data"] = data
    return json.dumps(document, ensure_ascii=False).encode() + b"\n"


class LocalBroker(_Endpoint):
    """The broker, hosted by the serving process; also a client for that process itself."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self._server: asyncio.AbstractServer | None = None
        self._peers: dict[asyncio.StreamWriter, set[str]] = {}

    async def start(self) -> None:
        """Listen on the socket (only this user may connect: the directory is private)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path), limit=MAX_LINE)

    async def stop(self) -> None:
        """Close every connection and the socket."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._peers):
                writer.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def peer_count(self) -> int:
        """How many processes are connected."""
        return len(self._peers)

    async def publish(self, channel: str, data: str) -> int:
        """Deliver to this process's subscribers and to every connected process subscribed."""
        return self.publish_nowait(channel, data)

    def publish_nowait(self, channel: str, data: str) -> int:
        """``publish`` for code on the loop that cannot await; how many receivers were handed it."""
        self._deliver_locally(channel, data)
        return 1 + self._forward(channel, data, exclude=None)

    def _forward(self, channel: str, data: str, exclude: asyncio.StreamWriter | None) -> int:
        line = None
        sent = 0
        for writer, channels in list(self._peers.items()):
            if writer is exclude or channel not in channels:
                continue
            line = line or _line("pub", channel, data)
            if writer.transport.get_write_buffer_size() > MAX_LINE * 16:
                log.warning("broker: a connected process does not keep up; dropping a message on %s", channel)
                continue
            writer.write(line)
            sent += 1
        return sent

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        channels: set[str] = set()
        self._peers[writer] = channels
        try:
            while line := await reader.readline():
                try:
                    document = json.loads(line)
                    op, channel = document["op"], document["ch"]
                except (ValueError, KeyError, TypeError):
                    log.warning("broker: ignoring a malformed line from a connected process")
                    continue
                if op == "sub":
                    channels.add(channel)
                elif op == "pub" and isinstance(document.get("data"), str):
                    self._deliver_locally(channel, document["data"])
                    self._forward(channel, document["data"], exclude=writer)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
            log.info("broker: a connected process went away (%s)", exc)
        finally:
            self._peers.pop(writer, None)
            writer.close()


class BrokerClient(_Endpoint):
    """A connection from another process to the broker, with the same small API."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task | None = None
        self.closed = asyncio.Event()

    async def connect(self) -> None:
        """Open the connection and start reading."""
        self._reader, self._writer = await asyncio.open_unix_connection(str(self.path), limit=MAX_LINE)
        self._task = asyncio.create_task(self._read(), name="caredesk-broker-client")

    async def publish(self, channel: str, data: str) -> int:
        """Send to the broker; this process's own subscribers hear it at once."""
        self._deliver_locally(channel, data)
        self._send(_line("pub", channel, data))
        await self._writer.drain()
        return 1

    async def _subscribed(self, pubsub: PubSub, channels: tuple[str, ...]) -> None:
        new = [channel for channel in channels if not self._local.get(channel)]
        await super()._subscribed(pubsub, channels)
        for channel in new:
            self._send(_line("sub", channel))
        await self._writer.drain()

    def _send(self, line: bytes) -> None:
        if self._writer is None or self._writer.is_closing():
            raise ConnectionError("not connected to the CareDesk broker")
        self._writer.write(line)

    async def _read(self) -> None:
        try:
            while line := await self._reader.readline():
                try:
                    document = json.loads(line)
                    self._deliver_locally(document["ch"], document["data"])
                except (ValueError, KeyError, TypeError):
                    log.warning("broker client: ignoring a malformed line")
        except (ConnectionError, ValueError) as exc:
            log.warning("broker client: connection lost (%s)", exc)
        finally:
            self.closed.set()

    async def aclose(self) -> None:
        """Close the connection."""
        await cancel_and_wait(self._task)
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
