"""Domain-event listeners that move a conversation's SLA clocks; each event is one transaction.

The moments come from what was stored (when the conversation was escalated, when the message was
written, when it was resolved) rather than from when the listener happens to run, so a slow
listener does not shift anyone's due time.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable

from anyio import to_thread
from sqlalchemy.engine import Engine
from sqlmodel import Session

from helpdesk.jobs.locks import KeyedLocks
from helpdesk.conversations.models import HUMAN_STATES, ConversationState, Message, MessageAuthor
from helpdesk.core.events import DomainEvent, EventBus
from helpdesk.sla import service
from helpdesk.sla.service import Clocks, SLAConfig

log = logging.getLogger(__name__)

#: a change gets the session, the conversation's clocks and a function returning the SLA
#: configuration, which is read only when the change needs it (most messages touch no clock: the
#: bot's conversations have none running)
Change = Callable[[Session, Clocks, Callable[[], SLAConfig]], None]


def _in_transaction(engine: Engine, timezone: str, conversation_id: int, change: Change) -> None:
    with Session(engine, expire_on_commit=False) as session:
        clocks = service.load_clocks(session, conversation_id)
        if clocks is None:
            return
        change(session, clocks, functools.cache(lambda: service.load_config(session, timezone)))
        session.commit()


def _open_cycle(clocks: Clocks) -> bool:
    return clocks.outcome is not None and clocks.outcome.ended_by is None


def on_escalated(event: DomainEvent) -> Change:
    """The change an escalation makes: first-response and resolution clocks start."""

    def change(session: Session, clocks: Clocks, config: Callable[[], SLAConfig]) -> None:
        conversation = clocks.conversation
        if conversation.state not in HUMAN_STATES:
            return
        at = conversation.escalated_at or event.at
        if _open_cycle(clocks) and clocks.outcome.escalated_at == at:
            return  # this escalation's clocks already run (the event came twice)
        service.start_cycle(session, clocks, config(), at)

    return change


def on_message(event: DomainEvent) -> Change | None:
    """The change a message makes: an agent's public reply answers, a customer's message asks again."""
    author = event.data.get("author")
    if author not in (MessageAuthor.agent, MessageAuthor.customer) or event.data.get("private"):
        return None
    if author == MessageAuthor.customer and event.data.get("human_owned") is False:
        return None  # written to the bot, as the worker knew when it stored it: no clock to look up
    message_id = event.data.get("message_id")

    def change(session: Session, clocks: Clocks, config: Callable[[], SLAConfig]) -> None:
        if author == MessageAuthor.customer and clocks.conversation.state not in HUMAN_STATES:
            return  # the bot's conversation: no clock runs
        message = session.get(Message, message_id) if message_id is not None else None
        if message is None or message.is_private or message.conversation_id != clocks.conversation.id:
            return
        at = message.created_at
        if message.author == MessageAuthor.agent:
            service.record_agent_reply(session, clocks, config(), at)
        elif message.author == MessageAuthor.customer and clocks.conversation.state in HUMAN_STATES:
            service.record_customer_message(session, clocks, config(), at)

    return change


def on_updated(event: DomainEvent) -> Change | None:
    """The change an agent's action makes: resolve and hand back stop the clocks, reopen resumes them."""
    action = event.data.get("action")

    def change(session: Session, clocks: Clocks, config: Callable[[], SLAConfig]) -> None:
        conversation = clocks.conversation
        if action == "resolved" and conversation.state == ConversationState.resolved:
            service.end_cycle(session, clocks, config(), conversation.resolved_at or event.at, ended_by="resolved")
        elif action == "handed_back" and conversation.state == ConversationState.bot:
            service.end_cycle(session, clocks, config(), event.at, ended_by="handed_back")
        elif action == "reopened" and conversation.state in HUMAN_STATES:
            service.resume_after_reopen(session, clocks, config(), event.at)
        elif action in ("claimed", "assigned") and conversation.state in HUMAN_STATES and not _open_cycle(clocks):
            # Taken over from the bot or transferred to a team without an escalation: the people's
            # clocks start now all the same.
            service.start_cycle(session, clocks, config(), event.at)

    return change if action in ("resolved", "handed_back", "reopened", "claimed", "assigned") else None


#: buses the clocks already listen to, so wiring twice (the app and a test) does not apply events twice
_REGISTERED: weakref.WeakSet[EventBus] = weakref.WeakSet()

HANDLERS: dict[str, Callable[[DomainEvent], Change | None]] = {
    "conversation_escalated": on_escalated,
    "message_created": on_message,
    "conversation_updated": on_updated,
}


def register_sla_listeners(events: EventBus, engine: Engine, timezone: str) -> None:
    """Subscribe the SLA clocks to ``events`` (escalations, messages, agents' actions); idempotent.
    ``timezone`` is the shop's, in which business hours are read."""
    if events in _REGISTERED:
        return
    _REGISTERED.add(events)
    # Events of one conversation are applied one at a time in this process, so two listeners never
    # read the same clocks before either wrote (SQLite has no row locks to do that for us).
    locks = KeyedLocks()

    def listener(handler: Callable[[DomainEvent], Change | None]):
        async def apply(event: DomainEvent) -> None:
            conversation_id = event.data.get("conversation_id")
            change = handler(event)
            if conversation_id is None or change is None:
                return
            async with locks.get(f"sla:{conversation_id}"):
                await to_thread.run_sync(_in_transaction, engine, timezone, int(conversation_id), change)

        apply.__name__ = f"sla_{handler.__name__}"
        return apply

    for name, handler in HANDLERS.items():
        events.on(name)(listener(handler))

