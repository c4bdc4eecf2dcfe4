"""Ratings' listeners: when a conversation a person helped with is resolved, its customer is asked
for a CSAT rating. This is the one place that decides when that request goes; the route that
resolves knows nothing of it.

The request is a transaction of its own, after the resolve committed: a process that dies in
between resolves without asking, which is better than a resolve that fails for a survey.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from anyio import to_thread
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.responses import Responses
from helpdesk.channels.tasks import announce_and_send
from helpdesk.conversations.models import Conversation, ConversationState
from helpdesk.core.clock import Clock
from helpdesk.core.events import DomainEvent, EventBus
from helpdesk.jobs.runner import JobQueue
from helpdesk.outbox.models import OutboxItem
from helpdesk.ratings import service


@dataclass(eq=False)
class CsatRequester:
    """What asking for a CSAT rating needs. ``jobs`` is the process's job runner once it runs (None:
    a script, which asks in line and leaves the sending to the next drain)."""

    engine: Engine
    events: EventBus
    responses: Responses
    clock: Clock
    jobs: JobQueue | None = None


#: buses already wired, so registering twice (the app and a test) does not ask twice
_REGISTERED: weakref.WeakSet[EventBus] = weakref.WeakSet()


def _request_csat(csat: CsatRequester, conversation_id: int) -> OutboxItem | None:
    with Session(csat.engine, expire_on_commit=False) as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None or conversation.state != ConversationState.resolved:
            return None  # reopened (or gone) before we got to it: no survey for an open conversation
        item = service.request_csat(session, conversation, responses=csat.responses,
                                    now=csat.clock.now())
        session.commit()
        return item


async def ask_for_csat(csat: CsatRequester, conversation_id: int) -> None:
    """Ask the customer of a resolved conversation for a rating and start sending it."""
    item = await to_thread.run_sync(_request_csat, csat, conversation_id)
    if item is None:
        return
    # The survey is written after the resolve was announced: live views learn of it from this event.
    await announce_and_send(csat.events, csat.jobs, item, conversation_id)


def register_ratings_listeners(csat: CsatRequester) -> None:
    """Subscribe the CSAT request to ``csat.events`` (conversations resolved); idempotent."""
    if csat.events in _REGISTERED:
        return
    _REGISTERED.add(csat.events)

    async def csat_when_resolved(event: DomainEvent) -> None:
        conversation_id = event.data.get("conversation_id")
        if event.data.get("action") != "resolved" or conversation_id is None:
            return
        if csat.jobs is None:  # no job runner (a script): in line
            await ask_for_csat(csat, int(conversation_id))
            return
        # Handed to the worker before this listener first awaits, so whoever waits for the worker to
        # be idle (a graceful stop, a test) also waits for the survey.
        csat.jobs.submit(f"csat:{conversation_id}", lambda: ask_for_csat(csat, int(conversation_id)))

    csat.events.on("conversation_updated")(csat_when_resolved)
