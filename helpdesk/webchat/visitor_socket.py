"""One visitor's open socket: history on connect, frames in through the webhook path, replies out."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from anyio import to_thread
from sqlmodel import Session
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from connectors.base import InboundMessage, PayloadError
from connectors.webchat import Subscription, WebchatConnector, client_message_id, message_frame
from helpdesk.attachments.service import AttachmentService
from helpdesk.channels.edge import InboundEdge
from helpdesk.channels.tasks import process_event_soon
from helpdesk.core.body_limits import json_too_deep
from helpdesk.jobs.runner import JobQueue
from helpdesk.webchat import service
from helpdesk.webchat.upload_rate import RateLimit

log = logging.getLogger(__name__)

MAX_FRAME_CHARS = 8192
#: frames a socket may send per window before being told to slow down (a person types far slower)
RATE_LIMIT = (20, 10.0)


class VisitorSocket:
    """Serves one accepted WebSocket of a visitor whose token has been checked."""

    def __init__(self, connector: WebchatConnector, websocket: WebSocket, visitor_id: str, *,
                 inbound: InboundEdge, jobs: JobQueue, json_max_depth: int, files: AttachmentService | None = None):
        #: where the visitor's messages are stored (and the history read from)
        self.inbound = inbound
        self.jobs = jobs
        self.json_max_depth = json_max_depth
        #: signs the links of files in the history (None: files are listed without links)
        self.files = files
        self.connector = connector
        self.hub = connector.hub
        self.websocket = websocket
        self.visitor_id = visitor_id
        self._send_lock = asyncio.Lock()
        self._rate = RateLimit(*RATE_LIMIT)

    async def run(self) -> None:
        """Replay the history, then serve frames both ways until the visitor leaves."""
        # Subscribe before reading the history, so a reply sent in between is in one or the other.
        subscription = await self.hub.subscribe(self.visitor_id)
        forwarder: asyncio.Task | None = None
        try:
            replayed = await self.send_history()
            forwarder = asyncio.create_task(self._forward(subscription, replayed))
            await self._receive_frames()
        except WebSocketDisconnect:
            pass
        except RuntimeError:
            # Starlette's complaint about using a socket that has just closed (e.g. the forwarder
            # closed it); anything else is a real error.
            if WebSocketState.DISCONNECTED not in (self.websocket.client_state, self.websocket.application_state):
                raise
        finally:
            if forwarder is not None:
                forwarder.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await forwarder
            await self.hub.unsubscribe(subscription)

    async def send(self, frame: dict[str, Any]) -> None:
        """Send one frame; the forwarder and the receive loop both send, one at a time."""
        async with self._send_lock:
            await self.websocket.send_json(frame)

    async def send_history(self) -> set[str]:
        """Send the visitor's stored messages; returns their ids."""

        def load() -> list[dict[str, Any]]:
            with Session(self.inbound.engine) as session:
                return service.visitor_history(session, self.visitor_id,
                                               files=self.files.visitor_view if self.files else None)

        messages = await to_thread.run_sync(load)
        await self.send({"type": "history", "messages": messages})
        return {m["id"] for m in messages}

    async def _forward(self, subscription: Subscription, replayed: set[str]) -> None:
        try:
            async for frame in subscription:
                if frame.get("type") == "resync":
                    replayed = await self.send_history()
                    continue
                if frame.get("id") in replayed:
                    continue  # published while the history was read, and already in it
                await self.send(frame)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Without its live feed the socket would look alive but miss replies: end it, and the
            # widget reconnects and replays the history.
            log.warning("webchat socket of %s lost its feed", self.visitor_id, exc_info=True)
            with contextlib.suppress(Exception):
                await self.websocket.close(code=1011)

    async def _receive_frames(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            await self._handle(message.get("text"))

    async def _error(self, reason: str, frame: Any = None) -> None:
        reply: dict[str, Any] = {"type": "error", "reason": reason}
        if isinstance(frame, dict) and isinstance(frame.get("id"), str):
            reply["id"] = frame["id"][:128]
        await self.send(reply)

    async def _handle(self, text: str | None) -> None:
        if text is None:
            await self._error("frames must be JSON text, not binary")
            return
        if len(text) > MAX_FRAME_CHARS:
            await self._error(f"frame is longer than {MAX_FRAME_CHARS} characters")
            return
        max_depth = self.json_max_depth
        if json_too_deep(text, max_depth):
            # json.loads would recurse until RecursionError, which would end the socket
            await self._error(f"frame is nested deeper than {max_depth} levels")
            return
        try:
            frame = json.loads(text)
        except ValueError:
            await self._error("frame is not valid JSON")
            return
        if isinstance(frame, dict) and frame.get("type") == "ping":
            await self.send({"type": "pong"})
            return
        if not self._rate.allow():
            await self._error("too many messages, please slow down", frame)
            return
        try:
            [inbound] = self.connector.parse({"visitor_id": self.visitor_id, "frame": frame})
        except PayloadError as exc:
            await self._error(exc.reason, frame)
            return
        stored = await self.inbound.store([inbound], frame)
        await self.send({"type": "ack", "id": client_message_id(inbound.external_id), "duplicate": not stored})
        if not stored:
            return  # seen before (a resend after a reconnect): stored and answered already
        [(event_id, _channel, _sender, to_process)] = stored
        await self._show_to_other_tabs(inbound)
        if to_process:
            await self.send({"type": "typing", "on": True})
            # The typing indicator goes off once the message has been processed and its replies sent.
            process_event_soon(self.jobs, event_id, inbound.channel, inbound.sender_id, typing_off=True)

    async def _show_to_other_tabs(self, inbound: InboundMessage) -> None:
        frame = message_frame(client_message_id(inbound.external_id), inbound.text, author="customer")
        try:
            await self.hub.publish(self.visitor_id, frame)
        except Exception as exc:  # only a convenience for other tabs; they get it from history later
            log.warning("could not echo a webchat message to other tabs: %s", exc)
