"""Conversations' listeners: when a conversation goes back to the bot (an agent's hand-back, or any
part of CareDesk that publishes the same change), the customer is told, in their language, through
their channel and the outbox like every other message. The route that hands back knows nothing of it.

The notice is a transaction of its own, after the hand-back committed: a process that dies in
between hands back without telling, which is better than a hand-back that fails for a notice.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from anyio import to_thread
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.language import detect_language
from bot.responses import Responses
from connectors.base import OutboundText
from helpdesk.channels.tasks import announce_and_send
from helpdesk.conversations import service
from helpdesk.conversations.models import Conversation, ConversationState, DeliveryStatus, Message, MessageAuthor
from helpdesk.core.events import DomainEvent, EventBus
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.jobs.runner import JobQueue
from helpdesk.outbox.models import OutboxItem
from helpdesk.outbox.queue import queue_outbound

#: the bot's response template of the notice (data/bot/responses.yml)
HANDBACK_NOTICE = "handback_notice"
#: the customer's newest messages read to tell which language the conversation is in
LANGUAGE_EVIDENCE = 5


@dataclass(eq=False)
class HandbackNotifier:
    """What telling the customer needs. ``jobs`` is the process's job runner once it runs (None: a
    script, which tells in line and leaves the sending to the next drain)."""

    engine: Engine
    events: EventBus
    responses: Responses
    jobs: JobQueue | None = None


#: buses already wired, so registering twice (the app and a test) does not tell twice
_REGISTERED: weakref.WeakSet[EventBus] = weakref.WeakSet()


def conversation_language(session: Session, conversation: Conversation, default: str) -> str:
    """The language the customer writes in, from their newest messages in the conversation that say
    (a "ok" or a sticker says nothing); ``default`` when none does."""
    texts = session.exec(
        select(Message.text)
        .where(Message.conversation_id == conversation.id, Message.author == MessageAuthor.customer)
        .order_by(col(Message.id).desc()).limit(LANGUAGE_EVIDENCE)
    ).all()
    for text in texts:
        found = detect_language(text or "", default="")
        if found:
            return found
    return default


def _queue_notice(notifier: HandbackNotifier, conversation_id: int) -> OutboxItem | None:
    with Session(notifier.engine, expire_on_commit=False) as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None or conversation.state != ConversationState.bot:
            return None  # taken over again (or gone) before we got to it: the bot is not back
        identity = session.get(ChannelIdentity, conversation.identity_id)
        if identity is None or not identity.reachable:
            return None
        customer = session.get(Customer, conversation.customer_id)
        default = (customer.locale if customer is not None else None) or notifier.responses.default_locale
        text = notifier.responses.render(HANDBACK_NOTICE, conversation_language(session, conversation, default))
        message = service.add_message(session, conversation, direction="out", author=MessageAuthor.bot, text=text,
                                      delivery_status=DeliveryStatus.pending)
        body = OutboundText(recipient_id=identity.external_id, text=text).model_dump(mode="json")
        item = queue_outbound(session, conversation, message, body, identity.external_id)
        session.commit()
        return item


async def tell_customer_the_bot_is_back(notifier: HandbackNotifier, conversation_id: int) -> None:
    """Queue the hand-back notice for the conversation's customer and start sending it."""
    item = await to_thread.run_sync(_queue_notice, notifier, conversation_id)
    if item is None:
        return
    await announce_and_send(notifier.events, notifier.jobs, item, conversation_id)


def register_conversation_listeners(notifier: HandbackNotifier) -> None:
    """Subscribe the hand-back notice to ``notifier.events`` (conversations handed back); idempotent."""
    if notifier.events in _REGISTERED:
        return
    _REGISTERED.add(notifier.events)

    async def notice_when_handed_back(event: DomainEvent) -> None:
        conversation_id = event.data.get("conversation_id")
        if event.data.get("action") != "handed_back" or conversation_id is None:
            return
        if notifier.jobs is None:  # no job runner (a script): in line
            await tell_customer_the_bot_is_back(notifier, int(conversation_id))
            return
        # Handed to the worker before this listener first awaits, so whoever waits for the worker to
        # be idle (a graceful stop, a test) also waits for the notice.
        notifier.jobs.submit(f"handback:{conversation_id}",
                             lambda: tell_customer_the_bot_is_back(notifier, int(conversation_id)))

    notifier.events.on("conversation_updated")(notice_when_handed_back)
