"""The web chat channel: a widget on the shop's own page talking to CareDesk over a WebSocket.

Unlike the platform channels there is no webhook. The socket route in ``helpdesk/webchat`` checks the
visitor's token, then hands each frame to :meth:`WebchatConnector.parse` wrapped in an envelope
``{"visitor_id": ..., "frame": {...}}``; replies leave through :meth:`WebchatConnector.send`, which
publishes a frame on a :class:`WebchatHub` to whatever sockets the visitor has open, in this process
or (with :class:`RedisWebchatHub`) in any other. A visitor with no socket open loses nothing: the
stored conversation is the source of truth and is replayed when the widget reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, ClassVar

from connectors.base import (
    AttachmentKind,
    Button,
    ChannelConnector,
    DeliveryError,
    InboundMessage,
    MediaFile,
    OutboundFile,
    OutboundButtons,
    OutboundQuickReplies,
    OutboundRatingRequest,
    OutboundText,
    PayloadError,
    VerificationError,
    WebhookRequest,
)

log = logging.getLogger(__name__)

#: client message ids and visitor ids: what ``crypto.randomUUID()`` and the session route produce
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
#: what the inbound ledger and the messages table keep of an external id
MAX_EXTERNAL_ID = 128
MAX_TEXT = 2000
MAX_PAYLOAD = 512  # the messages.payload column
MAX_TITLE = 200
#: an internal frame asking a socket to resend the history (its live feed may have had a gap)
RESYNC = {"type": "resync"}


def _client_id(frame: dict[str, Any]) -> str:
    value = frame.get("id")
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise PayloadError("id must be 8-64 letters, digits, '-' or '_' (a client-generated uuid)")
    return value


def scoped_message_id(visitor_id: str, client_id: str) -> str:
    """A visitor's message as the channel keys it: each widget mints its own ids, so one is only unique
    together with its visitor (two visitors' messages with the same id are two messages)."""
    return f"{visitor_id}:{client_id}"


def client_message_id(external_id: str) -> str:
    """The widget's own id of a message keyed by :func:`scoped_message_id` (any other id as it is)."""
    return external_id.rpartition(":")[2]  # neither id may contain ':', so the last one separates them


def _external_id(visitor_id: str, frame: dict[str, Any]) -> str:
    external_id = scoped_message_id(visitor_id, _client_id(frame))
    if len(external_id) > MAX_EXTERNAL_ID:
        raise PayloadError(f"visitor id and message id together are longer than {MAX_EXTERNAL_ID - 1} characters")
    return external_id


def parse_frame(visitor_id: str, frame: Any) -> InboundMessage:
    """One frame a visitor's widget sent, as a channel-neutral message; PayloadError if malformed."""
    if not isinstance(visitor_id, str) or not ID_PATTERN.match(visitor_id):
        raise PayloadError("visitor_id is missing or malformed")
    if not isinstance(frame, dict):
        raise PayloadError("a frame must be a JSON object")
    kind = frame.get("type")
    if kind == "message":
        text = frame.get("text")
        if not isinstance(text, str) or not text.strip():
            raise PayloadError("text (a non-empty string) is required")
        if len(text) > MAX_TEXT:
            raise PayloadError(f"text is longer than {MAX_TEXT} characters")
        return InboundMessage(channel=WebchatConnector.name, sender_id=visitor_id,
                              external_id=_external_id(visitor_id, frame), text=text.strip())
    if kind == "postback":
        payload, title = frame.get("payload"), frame.get("title", "")
        if not isinstance(payload, str) or not payload or len(payload) > MAX_PAYLOAD:
            raise PayloadError(f"payload (a string of 1-{MAX_PAYLOAD} characters) is required")
        if not isinstance(title, str) or len(title) > MAX_TITLE:
            raise PayloadError(f"title must be a string of at most {MAX_TITLE} characters")
        # The button's title becomes the text, so the timeline shows what the customer pressed.
        return InboundMessage(channel=WebchatConnector.name, sender_id=visitor_id,
                              external_id=_external_id(visitor_id, frame), kind="postback", payload=payload,
                              text=title)
    raise PayloadError("type must be 'message' or 'postback'")


class Subscription:
    """The frames meant for one open socket of a visitor, in the order they were published."""

    def __init__(self, visitor_id: str, *, max_pending: int = 256):
        self.visitor_id = visitor_id
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(max_pending)

    def offer(self, frame: dict[str, Any]) -> None:
        """Queue a frame without waiting; a socket that fell this far behind is told to resync."""
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            # Dropping frames silently would leave holes; the history has everything, so start over.
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(dict(RESYNC))

    async def get(self) -> dict[str, Any]:
        """The next frame, waiting for one."""
        return await self._queue.get()

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            yield await self._queue.get()


class WebchatHub(ABC):
    """Carries frames from whoever produces a reply to the sockets a visitor has open."""

    @abstractmethod
    async def publish(self, visitor_id: str, frame: dict[str, Any]) -> None:
        """Deliver a frame to every open socket of the visitor (none open is not an error)."""

    @abstractmethod
    async def subscribe(self, visitor_id: str) -> Subscription:
        """Start receiving the visitor's frames for one socket."""

    @abstractmethod
    async def unsubscribe(self, subscription: Subscription) -> None:
        """Stop receiving frames for that socket."""

    async def close(self) -> None:
        """Release connections and background tasks."""


class InMemoryWebchatHub(WebchatHub):
    """Fan-out inside one process: enough when a single server holds every socket."""

    def __init__(self) -> None:
        self._subscriptions: dict[str, set[Subscription]] = {}

    async def publish(self, visitor_id: str, frame: dict[str, Any]) -> None:
        """Hand the frame to the visitor's sockets in this process."""
        self.deliver(visitor_id, frame)

    def deliver(self, visitor_id: str, frame: dict[str, Any]) -> int:
        """Queue the frame on every local socket of the visitor; how many got it."""
        subscriptions = self._subscriptions.get(visitor_id, ())
        for subscription in subscriptions:
            subscription.offer(dict(frame))
        return len(subscriptions)

    def deliver_to_all(self, frame: dict[str, Any]) -> None:
        """Queue the frame on every local socket (used to ask them all to resync)."""
        for subscriptions in self._subscriptions.values():
            for subscription in subscriptions:
                subscription.offer(dict(frame))

    async def subscribe(self, visitor_id: str) -> Subscription:
        """A new subscription for one socket of the visitor."""
        subscription = Subscription(visitor_id)
        self._subscriptions.setdefault(visitor_id, set()).add(subscription)
        return subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        """Forget the socket; the visitor's entry goes when their last socket does."""
        subscriptions = self._subscriptions.get(subscription.visitor_id)
        if subscriptions is None:
            return
        subscriptions.discard(subscription)
        if not subscriptions:
            del self._subscriptions[subscription.visitor_id]

    def socket_count(self, visitor_id: str) -> int:
        """How many sockets of the visitor this process holds."""
        return len(self._subscriptions.get(visitor_id, ()))


class RedisWebchatHub(WebchatHub):
    """Fan-out across processes through one Redis pub/sub channel.

    Every process subscribes once to the shared channel and hands each frame to the sockets it holds
    for that visitor, so the server that produced a reply need not be the one holding the socket. One
    channel rather than one per visitor keeps Redis at a single subscription per process; a
    helpdesk's message rate makes the extra filtering negligible.
    """

    def __init__(self, redis: Any, *, channel: str = "caredesk:webchat", reconnect_max_s: float = 10.0):
        self._redis = redis  # a redis.asyncio client created with decode_responses=True
        self._channel = channel
        self._local = InMemoryWebchatHub()
        self._reader: asyncio.Task | None = None
        self._listening: asyncio.Event | None = None
        self._reconnect_max_s = reconnect_max_s

    async def publish(self, visitor_id: str, frame: dict[str, Any]) -> None:
        """Publish through Redis; every process's reader delivers it locally (this one included)."""
        envelope = json.dumps({"visitor_id": visitor_id, "frame": frame}, ensure_ascii=False)
        await self._redis.publish(self._channel, envelope)

    async def subscribe(self, visitor_id: str) -> Subscription:
        """Subscribe a socket, making sure this process listens on Redis first."""
        await self._ensure_listening()
        return await self._local.subscribe(visitor_id)

    async def unsubscribe(self, subscription: Subscription) -> None:
        """Forget the socket."""
        await self._local.unsubscribe(subscription)

    def socket_count(self, visitor_id: str) -> int:
        """How many sockets of the visitor this process holds."""
        return self._local.socket_count(visitor_id)

    async def _ensure_listening(self, timeout: float = 2.0) -> None:
        if self._reader is None or self._reader.done():
            self._listening = asyncio.Event()
            self._reader = asyncio.create_task(self._read_forever(), name="caredesk-webchat-hub")
        # Subscribing must be complete before the socket reads its history; otherwise a reply
        # published in between would be in neither.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), timeout)

    async def _read_forever(self) -> None:
        delay = 0.5
        first = True
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                if not first:
                    # Frames published while we were away are lost; the history has them.
                    self._local.deliver_to_all(RESYNC)
                first = False
                self._listening.set()
                delay = 0.5
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._dispatch(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: keep the sockets, retry the subscription
                log.warning("webchat hub lost its Redis subscription (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._reconnect_max_s)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _dispatch(self, data: Any) -> None:
        try:
            envelope = json.loads(data)
            self._local.deliver(envelope["visitor_id"], envelope["frame"])
        except (TypeError, ValueError, KeyError) as exc:
            log.warning("ignoring a malformed webchat hub message: %s", exc)

    async def close(self) -> None:
        """Stop listening on Redis (the client itself belongs to the wiring)."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None


def message_frame(frame_id: str, text: str, *, author: str, buttons: tuple[Button, ...] = (),
                  attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The frame a widget renders as one chat bubble. ``attachments``: files shown in it, each
    ``{"id", "kind", "name", "mime_type", "size", "url", "thumbnail_url"}`` (``url`` a signed,
    short-lived link, absolute or a path on the CareDesk server the widget talks to)."""
    frame: dict[str, Any] = {"type": "message", "id": frame_id, "author": author, "text": text,
                             "created_at": datetime.now(UTC).isoformat()}
    if buttons:
        frame["buttons"] = [{"title": b.title, "payload": b.payload} for b in buttons]
    if attachments:
        frame["attachments"] = attachments
    return frame


class WebchatConnector(ChannelConnector):
    """The embeddable web chat: frames in over the socket, frames out through the hub."""

    name: ClassVar[str] = "webchat"
    supports_buttons: ClassVar[bool] = True
    #: the widget shows any file the server keeps (the server's own cap, CAREDESK_STORAGE__MAX_BYTES,
    #: is checked first)
    media_limits: ClassVar[dict[str, int]] = {kind: 1 << 40 for kind in ("image", "video", "audio", "file")}

    def __init__(self, hub: WebchatHub | None = None):
        self.hub: WebchatHub = hub or InMemoryWebchatHub()

    def use_redis(self, redis: Any) -> None:
        """Fan replies out through Redis, so any process can reach a socket another one holds."""
        self.hub = RedisWebchatHub(redis)

    def share_across_processes(self, bus: Any) -> None:
        """A reply made in one process must reach a visitor's socket held by another."""
        self.use_redis(bus)

    async def typing_on(self, recipient_id: str) -> None:
        """Show the widget's "typing" dots (it hides them itself after a while, or at the next reply)."""
        await self.hub.publish(recipient_id, {"type": "typing", "on": True})

    async def typing_off(self, recipient_id: str) -> None:
        """The widget shows "typing" from the visitor's message until the replies are out."""
        await self.hub.publish(recipient_id, {"type": "typing", "on": False})

    async def verify(self, request: WebhookRequest) -> None:
        """Always refuses: web chat frames arrive over the authenticated socket, never as webhooks."""
        raise VerificationError("web chat messages arrive over the socket at /webchat/ws, not as webhooks")

    def parse(self, payload: Any) -> list[InboundMessage]:
        """``{"visitor_id": ..., "frame": {...}}`` (built by the socket route) -> one message."""
        if not isinstance(payload, dict):
            raise PayloadError("expected {'visitor_id': ..., 'frame': {...}}")
        return [parse_frame(payload.get("visitor_id"), payload.get("frame"))]

    async def send_text(self, recipient_id: str, text: str, *, reply_to: str | None = None) -> str:
        """Publish a bot text bubble to the visitor's sockets; returns the frame id."""
        return await self._publish(recipient_id, text, (), author="bot")

    async def send_buttons(
        self, recipient_id: str, text: str, buttons: tuple[Button, ...], *, reply_to: str | None = None
    ) -> str:
        """Publish a bot bubble with real buttons; returns the frame id."""
        return await self._publish(recipient_id, text, buttons, author="bot")

    async def send(self, message: OutboundText | OutboundButtons | OutboundQuickReplies | OutboundRatingRequest
                   | OutboundFile) -> str:
        """Publish any outbound variant, labelled with who speaks (bot or agent) from its metadata."""
        author = "agent" if message.metadata.get("author") == "agent" else "bot"
        match message:
            case OutboundFile():
                raise TypeError("an OutboundFile is sent with send_file, once the outbox has loaded its bytes")
            case OutboundButtons(buttons=buttons) | OutboundQuickReplies(options=buttons):
                return await self._publish(message.recipient_id, message.text, buttons, author=author)
            case OutboundRatingRequest():
                return await self._publish(message.recipient_id, message.text, message.buttons(), author=author)
            case _:
                return await self._publish(message.recipient_id, message.text, (), author=author)

    async def send_file(self, recipient_id: str, file: MediaFile, kind: AttachmentKind, *, caption: str = "",
                        reply_to: str | None = None) -> str:
        """Push an agent's file to the visitor's sockets: a bubble with the caption and the file as
        ``attachments: [{"kind", "name", "mime_type", "size", "url", "thumbnail_url"}]``; the widget
        loads it from ``url``, the signed link the helpdesk made (``MediaFile.url``)."""
        if not file.url:
            raise DeliveryError("web chat sends a file by link, and the file has none", retryable=False)
        attachment = {"kind": kind, "name": file.name or "file", "mime_type": file.mime_type or
                      "application/octet-stream", "size": len(file.data), "url": file.url, "thumbnail_url": None}
        return await self._publish(recipient_id, caption, (), author="agent", attachments=[attachment])

    async def _publish(self, visitor_id: str, text: str, buttons: tuple[Button, ...], *, author: str,
                       attachments: list[dict[str, Any]] | None = None) -> str:
        frame_id = f"wc-{uuid.uuid4().hex}"
        try:
            await self.hub.publish(visitor_id, message_frame(frame_id, text, author=author, buttons=buttons,
                                                             attachments=attachments))
        except Exception as exc:  # the hub's backend (Redis) is down: the outbox tries again later
            raise DeliveryError(f"webchat hub unavailable: {exc}", retryable=True) from exc
        return frame_id

    async def close(self) -> None:
        """Stop the hub's background listener."""
        await self.hub.close()
