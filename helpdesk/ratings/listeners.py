"""Ratings' listeners: when a conversation a person helped with is resolved, its customer is asked
for a CSAT rating. This is the one place that decides when that request goes; the route that
resolves knows nothing of it.

The request is a transaction of its own, after the resolve committed: a process that dies in
between resolves without asking, which is better than a resolve that fails for a survey.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from anyio import to_thread
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.responses import Responses
from helpdesk.channels.tasks import drain_chat_soon
from helpdesk.conversations.models import Conversation, ConversationState
from helpdesk.core.events import DomainEvent, EventBus
from helpdesk.jobs.runner import JobQueue
from helpdesk.outbox.models import OutboxItem
from helpdesk.ratings import service


class _Bot(Protocol):
    responses: Responses


class Runtime(Protocol):
    """What the CSAT request needs of the runtime (the runtime imports this module, not the reverse)."""

    engine: Engine
    events: EventBus
    bot: _Bot
    worker: JobQueue | None
    clock: Callable[[], datetime]


#: buses already wired, so registering twice (the app and a test) does not ask twice
_REGISTERED: weakref.WeakSet[EventBus] = weakref.WeakSet()


def _request_csat(runtime: Runtime, conversation_id: int) -> OutboxItem | None:
    with Session(runtime.engine, expire_on_commit=False) as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None or conversation.state != ConversationState.resolved:
            return None  # reopened (or gone) before we got to it: no survey for an open conversation
        item = service.request_csat(session, conversation, responses=runtime.bot.responses,
                                    now=runtime.clock())
        session.commit()
        return item


async def ask_for_csat(runtime: Runtime, conversation_id: int) -> None:
    """Ask the customer of a resolved conversation for a rating and start sending it."""
    item = await to_thread.run_sync(_request_csat, runtime, conversation_id)
    if item is None:
        return
    # The survey is written after the resolve was announced: live views learn of it from this event.
    await runtime.events.publish("message_created", conversation_id=conversation_id, message_id=item.message_id,
                                 author="bot")
    if runtime.worker is not None:
        drain_chat_soon(runtime.worker, item.channel, item.recipient_id)


def register_ratings_listeners(runtime: Runtime) -> None:
    """Subscribe the CSAT request to ``runtime.events`` (conversations resolved); idempotent."""
    if runtime.events in _REGISTERED:
        return
    _REGISTERED.add(runtime.events)

    async def csat_when_resolved(event: DomainEvent) -> None:
        conversation_id = event.data.get("conversation_id")
        if event.data.get("action") != "resolved" or conversation_id is None:
            return
        if runtime.worker is None:  # a runtime without a worker (a script): in line
            await ask_for_csat(runtime, int(conversation_id))
            return
        # Handed to the worker before this listener first awaits, so whoever waits for the worker to
        # be idle (a graceful stop, a test) also waits for the survey.
        runtime.worker.submit(f"csat:{conversation_id}", lambda: ask_for_csat(runtime, int(conversation_id)))

    runtime.events.on("conversation_updated")(csat_when_resolved)
