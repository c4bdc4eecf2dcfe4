"""The inbox's live socket: domain events filtered per agent, and presence that follows open inboxes.

Each browser tab holds one socket. The server subscribes it to the event bus, works out which
conversation each event is about, decides by the rule of ``may_see`` whether this agent may know about
it, and sends a small JSON frame; the page then refetches what changed through the ordinary API.
Nothing about a conversation travels on the socket beyond ids and states, so the API stays the one
place that reads.

An event is looked up once however many sockets hear it: one query for its conversation and the
members of that conversation's team, and one encoding of its frame, shared by every socket; each
socket then only compares its agent with that snapshot, without a query or a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from anyio import to_thread
from fastapi import WebSocket, WebSocketDisconnect
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from helpdesk.agents.assignment import assign_waiting, requeue_conversations_of
from helpdesk.agents.models import Agent, Team, TeamMember
from helpdesk.agents.service import SESSIONS_REVOKED, agent_for_token
from helpdesk.agents.teams import sees
from helpdesk.audit import service as audit
from helpdesk.conversations.models import Conversation, Message
from helpdesk.agents.deps import SESSION_COOKIE
from helpdesk.core.errors import CareDeskError
from helpdesk.core.events import DomainEvent, EventBus
from helpdesk.inbox.missed import MissedMessages

log = logging.getLogger(__name__)

#: close codes the page acts on: 4401 = log in again, 4403 = refused (another site's page)
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
#: a closed tab is only "gone" after this long, so a reload does not hand the agent's work to others
OFFLINE_GRACE_S = 10.0
#: how often an open socket re-checks that its session is still valid (logout, expiry); a revocation
#: (new password, deactivation, new role) is announced and checked at once
SESSION_RECHECK_S = 60.0
#: what of each event's data reaches the browser; anything else stays on the server
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "message_created": ("message_id", "author", "private", "new_conversation"),
    "conversation_escalated": ("reason", "priority"),
    "conversation_updated": ("action", "state", "assignee_id", "team", "priority"),
    "message_delivery": ("message_id", "status", "error"),
    # a file of a message was fetched and stored, or could not be (``error``): the thread reloads it
    "attachment_updated": ("message_id", "attachment_id", "status", "error"),
    "sla_warning": ("target", "assignee_id", "team"),
    "sla_breached": ("target", "assignee_id", "team"),
}
BROADCAST_EVENTS: dict[str, tuple[str, ...]] = {"agent_presence": ("agent_id", "online")}
MAX_WATCHED = 1000


@dataclass(frozen=True)
class ConversationSnapshot:
    """What ``may_see`` reads of a conversation, as of the event."""

    id: int
    team: str | None
    assignee_id: int | None
    #: the agents in the conversation's team as of the event (empty when it has no team)
    team_members: frozenset[int] = frozenset()


def may_know(agent: Agent, snapshot: ConversationSnapshot) -> bool:
    """``helpdesk.agents.teams.may_see`` decided on a snapshot: the same rule, with the team's members
    read once for the event instead of each agent's teams once per socket."""
    return sees(agent, snapshot.team, snapshot.assignee_id, lambda: agent.id in snapshot.team_members)


@dataclass(frozen=True)
class ResolvedEvent:
    """An event as every socket needs it: its conversation's snapshot and its frame, encoded once."""

    snapshot: ConversationSnapshot | None
    #: the frame's JSON text, or None when the event is not for the inbox
    frame: str | None


def encode_frame(frame: dict[str, Any]) -> str:
    """A frame as the socket sends it (the encoding of starlette's ``send_json``)."""
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def event_frame(event: DomainEvent, conversation_id: int | None = None) -> dict[str, Any] | None:
    """The frame announcing the event to an agent who may know about it, or None if none is sent."""
    if event.name in BROADCAST_EVENTS:
        return {"type": "event", "event": event.name,
                **{key: event.data.get(key) for key in BROADCAST_EVENTS[event.name]}}
    fields = EVENT_FIELDS.get(event.name)
    if fields is None or conversation_id is None:
        return None
    frame = {"type": "event", "event": event.name, "conversation_id": conversation_id}
    frame.update({key: _plain(event.data[key]) for key in fields if key in event.data})
    return frame


def agent_for_session_cookie(engine, token: str | None) -> Agent | None:
    """The active agent of a browser session token, or None (missing, expired, revoked)."""
    if not token:
        return None
    with Session(engine, expire_on_commit=False) as session:
        try:
            agent = agent_for_token(session, token, kind="session")
        except CareDeskError:
            return None
        session.expunge(agent)
        return agent


def apply_presence(engine, events, agent_id: int, online: bool) -> bool:
    """Set an agent on- or offline the way ``/api/me/presence`` does; True if anything changed."""
    with Session(engine, expire_on_commit=False) as session:
        agent = session.get(Agent, agent_id)
        if agent is None or agent.is_online == online or (online and not agent.is_active):
            return False
        agent.is_online = online
        audit.record(session, "agent_online" if online else "agent_offline", "agent", agent.id,
                     actor_type="system", via="inbox_socket")
        session.flush()
        if online:
            assign_waiting(session)
        else:
            # The inbox closed (not the agent's choice): what they are answering stays theirs.
            requeue_conversations_of(session, agent, unanswered_only=True)
        session.commit()
    events.publish_soon("agent_presence", agent_id=agent_id, online=online)
    return True


class PresenceKeeper:
    """Counts each agent's open inbox sockets: online with the first, offline a grace period after the last."""

    def __init__(self, engine: Engine, events: EventBus, grace_s: float = OFFLINE_GRACE_S):
        self.engine = engine
        self.events = events
        self.grace_s = grace_s
        self._sockets: dict[int, int] = {}
        self._pending_offline: dict[int, asyncio.Task] = {}

    def any_open(self) -> bool:
        """Whether any inbox socket is open in this process."""
        return bool(self._sockets)

    def sockets_of(self, agent_id: int) -> int:
        """How many inbox sockets the agent has open in this process."""
        return self._sockets.get(agent_id, 0)

    async def socket_opened(self, agent_id: int) -> None:
        """An inbox opened: cancel a pending offline, and go online."""
        self._sockets[agent_id] = self._sockets.get(agent_id, 0) + 1
        pending = self._pending_offline.pop(agent_id, None)
        if pending is not None:
            pending.cancel()
        await to_thread.run_sync(apply_presence, self.engine, self.events, agent_id, True)

    def socket_closed(self, agent_id: int) -> None:
        """An inbox closed: after the grace period without another one, go offline (re-queueing their work)."""
        left = self._sockets.get(agent_id, 1) - 1
        if left > 0:
            self._sockets[agent_id] = left
            return
        self._sockets.pop(agent_id, None)
        if agent_id not in self._pending_offline:
            self._pending_offline[agent_id] = asyncio.ensure_future(self._offline_later(agent_id))

    async def _offline_later(self, agent_id: int) -> None:
        try:
            await asyncio.sleep(self.grace_s)
            if self._sockets.get(agent_id, 0) == 0:
                await to_thread.run_sync(apply_presence, self.engine, self.events, agent_id, False)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not set agent %s offline", agent_id)
        finally:
            if self._pending_offline.get(agent_id) is asyncio.current_task():
                del self._pending_offline[agent_id]


class EventResolver:
    """Resolves each event once however many sockets ask: its conversation, its team's members, its frame."""

    def __init__(self, engine, remember: int = 512):
        self.engine = engine
        self._remember = remember
        self._lookups: OrderedDict[int, tuple[DomainEvent, asyncio.Future]] = OrderedDict()

    async def resolve(self, event: DomainEvent) -> ResolvedEvent:
        """The event's snapshot and encoded frame, looked up by the first socket to ask."""
        # Every subscriber's queue holds the same event object, so its identity keys the shared lookup;
        # the cache keeps the object alive, so the id cannot be reused while it is remembered.
        cached = self._lookups.get(id(event))
        if cached is None or cached[0] is not event:
            if event.name in BROADCAST_EVENTS or event.name not in EVENT_FIELDS:
                future = asyncio.get_running_loop().create_future()
                frame = event_frame(event)
                future.set_result(ResolvedEvent(None, None if frame is None else encode_frame(frame)))
            else:
                future = asyncio.ensure_future(to_thread.run_sync(self._resolve, event))
            self._lookups[id(event)] = (event, future)
            while len(self._lookups) > self._remember:
                self._lookups.popitem(last=False)
        else:
            future = cached[1]
        return await asyncio.shield(future)

    def _resolve(self, event: DomainEvent) -> ResolvedEvent:
        snapshot = self._lookup(event)
        frame = event_frame(event, snapshot.id) if snapshot is not None else None
        return ResolvedEvent(snapshot, None if frame is None else encode_frame(frame))

    def _lookup(self, event: DomainEvent) -> ConversationSnapshot | None:
        """The conversation as the event saw it (its own team/assignee if it carries them), else as stored."""
        data = event.data
        with Session(self.engine) as session:
            conversation_id = data.get("conversation_id")
            if conversation_id is None and data.get("message_id") is not None:
                message = session.get(Message, data["message_id"])
                conversation_id = message.conversation_id if message else None
            if conversation_id is None:
                return None
            if "team" in data and "assignee_id" in data:
                team, assignee_id = data["team"], data["assignee_id"]
            else:
                conversation = session.get(Conversation, conversation_id)
                if conversation is None:
                    return None
                conversation_id, team, assignee_id = conversation.id, conversation.team, conversation.assignee_id
            members: frozenset[int] = frozenset()
            if team is not None:
                members = frozenset(session.exec(
                    select(TeamMember.agent_id).join(Team, Team.id == TeamMember.team_id).where(Team.name == team)
                ).all())
            return ConversationSnapshot(int(conversation_id), team, assignee_id, members)


class LiveHub:
    """Per-application state of the live sockets: presence counts and the shared event lookups."""

    def __init__(self, engine: Engine, events: EventBus, grace_s: float = OFFLINE_GRACE_S):
        self.engine = engine
        self.events = events
        self.presence = PresenceKeeper(engine, events, grace_s)
        self.resolver = EventResolver(engine)
        #: announces what was stored but whose announcement was lost (a killed worker, Redis away)
        self.missed = MissedMessages(engine, events, self.presence.any_open)


def hub_for(app: Any, engine: Engine, events: EventBus) -> LiveHub:
    """The application's hub on this database and bus, made on first use (and again when the
    application was started anew); ``app.state.inbox_offline_grace_s`` overrides the grace."""
    hub = getattr(app.state, "inbox_live_hub", None)
    if hub is None or hub.events is not events or hub.engine is not engine:
        grace = getattr(app.state, "inbox_offline_grace_s", OFFLINE_GRACE_S)
        hub = app.state.inbox_live_hub = LiveHub(engine, events, grace)
        for setting in ("check_s", "grace_s"):  # tests make the watcher of lost announcements quicker
            if hasattr(app.state, f"inbox_missed_{setting}"):
                setattr(hub.missed, setting, getattr(app.state, f"inbox_missed_{setting}"))
    return hub


def same_origin(websocket: WebSocket) -> bool:
    """Whether the page that opened the socket is served by this host (no other site may ride the cookie)."""
    origin = websocket.headers.get("origin")
    if not origin:
        return True  # not a browser page (e.g. a test client or a CLI)
    return urlsplit(origin).netloc.lower() == websocket.headers.get("host", "").lower()


class LiveConnection:
    """One agent's socket: events in from the bus, filtered, and out as small frames."""

    def __init__(self, hub: LiveHub, websocket: WebSocket, agent: Agent, token: str):
        self.hub = hub
        self.websocket = websocket
        self.agent = agent
        self.token = token
        #: conversations this page knows about, so it hears when one leaves its sight
        self.known: set[int] = set()

    async def run(self) -> None:
        """Serve until the page goes away or the session ends."""
        events = self.hub.events
        queue = events.subscribe()
        await self.hub.presence.socket_opened(self.agent.id)
        self.hub.missed.ensure_running()
        try:
            await self.websocket.send_json({"type": "hello", "agent_id": self.agent.id})
            reader = asyncio.ensure_future(self._read())
            writer = asyncio.ensure_future(self._write(queue))
            done, pending = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                    await task
            for task in done:
                if not task.cancelled() and task.exception() is not None and not isinstance(
                        task.exception(), (WebSocketDisconnect, RuntimeError)):
                    log.warning("inbox socket of agent %s ended: %r", self.agent.id, task.exception())
        finally:
            events.unsubscribe(queue)
            self.hub.presence.socket_closed(self.agent.id)

    async def _read(self) -> None:
        while True:
            message = await self.websocket.receive_json()
            if isinstance(message, dict) and message.get("type") == "watch":
                ids = message.get("ids")
                if isinstance(ids, list):
                    self.known = {i for i in ids[:MAX_WATCHED] if isinstance(i, int)}

    async def _write(self, queue: asyncio.Queue[DomainEvent]) -> None:
        loop = asyncio.get_running_loop()
        recheck_at = loop.time() + SESSION_RECHECK_S
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), timeout=max(0.0, recheck_at - loop.time()))
            except TimeoutError:
                event = None
            revoked = (event is not None and event.name == SESSIONS_REVOKED
                       and event.data.get("agent_id") == self.agent.id)
            if revoked or loop.time() >= recheck_at:
                recheck_at = loop.time() + SESSION_RECHECK_S
                agent = await to_thread.run_sync(agent_for_session_cookie, self.hub.engine, self.token)
                if agent is None:
                    await self.websocket.close(code=CLOSE_UNAUTHENTICATED, reason="session ended")
                    return
                self.agent = agent  # role and teams may have changed
            if event is not None:
                frame = await self.encoded_frame_for(event)
                if frame is not None:
                    await self.websocket.send_text(frame)

    async def encoded_frame_for(self, event: DomainEvent) -> str | None:
        """The frame this agent gets for the event as sent (JSON text), or None if it is not theirs to know."""
        resolved = await self.hub.resolver.resolve(event)
        snapshot = resolved.snapshot
        if snapshot is None:
            return resolved.frame if event.name in BROADCAST_EVENTS else None
        if not may_know(self.agent, snapshot):
            if snapshot.id in self.known:
                # It was on this page (transferred away, taken by a colleague): tell the page to drop it.
                self.known.discard(snapshot.id)
                return encode_frame({"type": "gone", "conversation_id": snapshot.id})
            return None
        self.known.add(snapshot.id)
        return resolved.frame


def _plain(value: Any) -> Any:
    """JSON-friendly: enum members and other objects become their string value."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)


async def serve_live(websocket: WebSocket, engine: Engine, events: EventBus) -> None:
    """Authenticate the socket by the session cookie, then stream this agent's events."""
    # Accept before refusing: a close before the handshake reaches the browser only as an anonymous
    # failure, and the page needs the code to know that logging in again is the cure.
    await websocket.accept()
    if not same_origin(websocket):
        await websocket.close(code=CLOSE_FORBIDDEN, reason="cross-origin socket refused")
        return
    hub = hub_for(websocket.app, engine, events)
    token = websocket.cookies.get(SESSION_COOKIE)
    agent = await to_thread.run_sync(agent_for_session_cookie, hub.engine, token)
    if agent is None:
        await websocket.close(code=CLOSE_UNAUTHENTICATED, reason="log in first")
        return
    with contextlib.suppress(WebSocketDisconnect):
        await LiveConnection(hub, websocket, agent, token).run()
