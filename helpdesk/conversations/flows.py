"""What happens to a stored inbound event: conversation, bot decision, replies to the outbox.

A known customer's turn costs one read and two short write transactions: read who writes and the
dialogue state; store the customer's message with the bot's decision (replies queued in the outbox,
state saved, the event marked processed) all at once; record how the sends went. The bot runs
between the read and the first write, and sending between the two writes, outside any transaction.
Storing the message and marking the event in one transaction is also what keeps a worker that dies
mid-turn from storing the message twice when the event is processed again. A first contact (a new
customer, identity or conversation) first creates those, with the ORM, in a transaction of its own;
its message too is stored with the answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any, NamedTuple

from anyio import to_thread
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot import ConversationEngine, Decision, Turn
from bot.ports import CustomerView
from connectors.base import ChannelConnector, DeliveryError, InboundMessage
from helpdesk.channels import service as channels
from helpdesk.channels.models import InboundAttempt, OutboxItem, OutboxStatus
from helpdesk.conversations import service as conversations
from helpdesk.conversations import turns
from helpdesk.conversations.models import (
    HUMAN_STATES,
    Conversation,
    DeliveryStatus,
    DialogueState,
    MessageAuthor,
)
from helpdesk.conversations.state_store import DatabaseStateStore, load_in, save_in
from helpdesk.core.db import utcnow
from helpdesk.core.config import WorkerSettings
from helpdesk.core.errors import is_infrastructure_error
from helpdesk.core.events import EventBus
from helpdesk.core.outages import when_available
from helpdesk.customers.models import ChannelIdentity
from helpdesk.customers.service import identify_sender

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class OutboxSender:
    """What sending a chat's outbox needs: the database, the channels, the bus that hears of each
    delivery, and when a failed send is tried again."""

    engine: Engine
    connectors: Mapping[str, ChannelConnector]
    events: EventBus
    retry_policy: channels.RetryPolicy


@dataclass(frozen=True, eq=False)
class ConversationFlow:
    """What a conversation turn needs: the database, the bot, the bus, the channels (a postback's
    acknowledgement), the outbox, and the worker settings (how often a failing turn is tried before
    it is parked, read at each failure)."""

    engine: Engine
    bot: ConversationEngine
    events: EventBus
    connectors: Mapping[str, ChannelConnector]
    outbox: OutboxSender
    worker_settings: WorkerSettings


@dataclass(frozen=True)
class _Prepared:
    event_id: int
    #: who writes, in which conversation (their message is stored with the answer)
    speaker: turns.Speaker
    turn: Turn
    inbound: InboundMessage
    #: the dialogue state, when it lives in the database (read in the same transaction)
    state: dict[str, Any] | None
    #: the event's earlier failed tries, if any
    earlier: WaitingEvent

    @property
    def conversation_id(self) -> int:
        return self.speaker.conversation_id

    @property
    def new_conversation(self) -> bool:
        return self.speaker.new_conversation


@dataclass(frozen=True)
class _Applied:
    #: the customer's message
    message_id: int
    outbox: list[OutboxItem]
    message_ids: list[int]
    escalated: bool
    #: an older message of this chat still waits for a retry: ours must queue behind it
    behind_older: bool


class WaitingEvent(NamedTuple):
    """A stored event to be processed: a chat's oldest still waiting."""

    id: int
    message: dict[str, Any]
    #: how often its turn failed before (None: never)
    attempts: int | None
    #: the customer's message, when parking the event stored it
    stored_message_id: int | None


class TryAgainLater(Exception):
    """A chat's turn could not be completed now (a dependency is away, or the turn failed and has
    tries left); the worker runs the chat's job again after a pause, its later messages waiting."""


class Delivery(NamedTuple):
    """How a send went, as recorded."""

    item_id: int
    message_id: int | None
    status: str
    last_error: str | None


def _state_in_database(flow: ConversationFlow) -> bool:
    return isinstance(flow.bot.state_store, DatabaseStateStore)


def next_waiting_event(flow: ConversationFlow, channel: str, sender_id: str, up_to_id: int,
                       floor: int = 0) -> WaitingEvent | None:
    """The chat's oldest event still waiting, up to ``up_to_id`` (every event at or below ``floor`` is
    known to be settled)."""
    with flow.engine.connect() as connection:
        row = connection.execute(turns.NEXT_WAITING, {"channel": channel, "sender_id": sender_id,
                                                      "floor": floor, "up_to": up_to_id}).first()
    return None if row is None else WaitingEvent(row.id, row.message, row.attempts, row.message_id)


def _prepare(flow: ConversationFlow, event: WaitingEvent) -> _Prepared:
    """Find who writes and in which conversation, and build the bot's turn.

    A known customer in an open conversation (most turns) only reads, with plain statements
    (``turns``). A first contact, a merged customer or a new conversation is created with the ORM and
    committed here; reads come first and the writes last, back to back (autoflush off), as on SQLite
    a transaction holds the file's only write lock from its first write to its commit, and the
    webhook edge waits for that lock. The customer's message is stored later, by ``_apply``.
    """
    in_database = _state_in_database(flow)
    inbound = InboundMessage.model_validate(event.message)
    with Session(flow.engine, expire_on_commit=False) as session, session.no_autoflush:
        connection = session.connection()
        speaker = turns.known_speaker(connection, inbound)
        if speaker is None:
            customer, identity = identify_sender(session, inbound.channel, inbound.sender_id, inbound.sender_name)
            conversation = conversations.open_conversation(session, identity)
            session.commit()
            speaker = turns.Speaker(identity.id, identity.display_name, customer.id, customer.name, customer.locale,
                                    customer.phone, customer.phone_verified, conversation.id, conversation.state,
                                    conversation.channel, conversation.last_message_at is None)
        key = f"conversation:{speaker.conversation_id}"
        state = load_in(session, key) if in_database else None
    turn = Turn(
        conversation_key=key,
        recipient_id=inbound.sender_id,
        channel=inbound.channel,
        text=inbound.text,
        payload=inbound.payload,
        human_owned=speaker.conversation_state in HUMAN_STATES,
        locale_hint=speaker.locale,
        # Reply by message id where the platform supports it; a button press's token (e.g. a
        # Telegram callback query id) is for acknowledging, not for quoting.
        reply_to=inbound.reply_token if inbound.kind == "message" else None,
        customer=CustomerView(id=speaker.customer_id, name=speaker.name,
                              verified_phone=speaker.phone if speaker.phone_verified else None,
                              locale=speaker.locale),
        has_attachments=bool(inbound.attachments),
    )
    return _Prepared(event.id, speaker, turn, inbound, state, event)


def _apply(flow: ConversationFlow, prepared: _Prepared, decision: Decision) -> _Applied | None:
    """Store the customer's message with its NLU reading, the replies (queued) and the state, and mark
    the event processed; apply an escalation. None when another worker settled the event first
    (nothing stored then).

    Without an escalation (most turns) this is plain statements (``turns``); an escalation goes
    through the ORM, as escalating and assigning work on objects. As in _prepare, everything the
    writes need is read before the first of them."""
    turn = prepared.turn
    replies = [(reply.text, reply.model_dump(mode="json"), reply.recipient_id) for reply in decision.replies]
    nlu = decision.nlu.to_rasa() if decision.nlu is not None else None
    if decision.escalation is None:
        with Session(flow.engine) as session:
            answer = turns.store_answer(
                session.connection(), event_id=prepared.event_id, speaker=prepared.speaker, inbound=prepared.inbound, channel=turn.channel,
                recipient_id=turn.recipient_id, nlu=nlu, replies=replies, state_key=turn.conversation_key,
                state=prepared.state, now=utcnow(), retried=prepared.earlier.attempts is not None,
                stored_message_id=prepared.earlier.stored_message_id)
            if answer is None:
                return None
            session.commit()
        return _Applied(answer.message_id, answer.outbox, answer.message_ids, False, answer.behind_older)
    with Session(flow.engine, expire_on_commit=False) as session, session.no_autoflush:
        conversation = session.get(Conversation, prepared.conversation_id)
        older = channels.oldest_pending_for_chat(session, turn.channel, turn.recipient_id)
        session.get(ChannelIdentity, conversation.identity_id)  # queue_outbound reads it: now, not later
        if prepared.state is not None:
            session.get(DialogueState, turn.conversation_key)  # likewise for save_in
        state_before = conversation.state

        now = utcnow()
        if not turns.settle_event(session.connection(), prepared.event_id, now):
            return None
        if prepared.earlier.attempts is not None:
            turns.forget_attempts(session.connection(), prepared.event_id)
        message_id = turns.customer_message(session.connection(), prepared.speaker, prepared.inbound, now, nlu,
                                            prepared.earlier.stored_message_id)
        outbox, message_ids = [], []
        for text, body, recipient_id in replies:
            stored = conversations.add_message(session, conversation, direction="out", author=MessageAuthor.bot,
                                               text=text, delivery_status=DeliveryStatus.pending)
            outbox.append(conversations.queue_outbound(session, conversation, stored, body, recipient_id))
            message_ids.append(stored.id)
        conversations.escalate(session, conversation, decision.escalation.reason, decision.escalation.priority)
        if prepared.state is not None:
            save_in(session, turn.conversation_key, prepared.state)
        session.commit()
        return _Applied(message_id, outbox, message_ids, conversation.state != state_before, older is not None)


class _Parked(NamedTuple):
    """An event given up on after too many failed tries."""

    #: the customer's message, stored so that agents see what was written (None: the turn did not get
    #: as far as knowing who wrote)
    message_id: int | None
    #: the conversation went to the human queue with it
    escalated: bool


_attempts = InboundAttempt.__table__


def _record_failure(flow: ConversationFlow, event: WaitingEvent, error: str, prepared: _Prepared | None) -> _Parked | None:
    """Count a failed try of the event's turn. None while it has tries left (the worker tries again
    later). After the last, park it: settled with the error (an admin may try it again), the
    customer's message stored, and the conversation handed to a person, so that somebody answers."""
    attempts = (event.attempts or 0) + 1
    now = utcnow()
    error = error[:1000]
    with Session(flow.engine, expire_on_commit=False) as session, session.no_autoflush:
        connection = session.connection()
        if event.attempts is None:
            connection.execute(_attempts.insert().values(event_id=event.id, attempts=attempts, last_error=error,
                                                         updated_at=now))
        else:
            connection.execute(_attempts.update().where(_attempts.c.event_id == event.id)
                               .values(attempts=attempts, last_error=error, updated_at=now))
        if attempts < flow.worker_settings.max_attempts:
            session.commit()
            return None
        if not turns.settle_event(connection, event.id, now, error):
            return None  # another worker settled it meanwhile
        message_id, escalated = event.stored_message_id, False
        if prepared is not None:
            if message_id is None:
                message_id = turns.record_customer_message(connection, prepared.speaker, prepared.inbound, now)
                connection.execute(_attempts.update().where(_attempts.c.event_id == event.id)
                                   .values(message_id=message_id))
            conversation = session.get(Conversation, prepared.conversation_id)
            if conversation is not None and conversation.state not in HUMAN_STATES:
                conversations.escalate(session, conversation, "bot_error", "high")
                escalated = True
        session.commit()
    log.error("inbound event %s parked after %d failed tries: %s", event.id, attempts, error)
    return _Parked(message_id, escalated)


def _park_bare(flow: ConversationFlow, event: WaitingEvent, error: str) -> None:
    """Park an event whose failure could not even be recorded in full (storing what the customer
    wrote failed too): the event alone is settled, so that it is never tried without end."""
    with Session(flow.engine) as session:
        turns.settle_event(session.connection(), event.id, utcnow(), error[:1000])
        session.commit()
    log.error("inbound event %s parked without its message: %s", event.id, error)


async def process_chat_events(flow: ConversationFlow, channel: str, sender_id: str, up_to_id: int,
                              floor: int = 0) -> None:
    """Run the chat's waiting events through conversation, bot and outbox, oldest first, up to
    ``up_to_id``: an event whose job arrived before an older one's (a restart, a lost job) still
    waits its turn. Raises TryAgainLater when one must be tried again later (the ones after it wait)."""
    while True:
        event = await to_thread.run_sync(next_waiting_event, flow, channel, sender_id, up_to_id, floor)
        if event is None:
            return
        await take_turn(flow, event)
        if event.id >= up_to_id:
            return
        floor = event.id


async def take_turn(flow: ConversationFlow, event: WaitingEvent) -> None:
    """One waiting event's turn. A dependency that is away (database, Redis, network) is never the
    final outcome: TryAgainLater. A failure of the turn's own is counted, tried again, and parked
    after ``CAREDESK_WORKER__MAX_ATTEMPTS`` tries."""
    prepared = None
    events = flow.events
    try:
        prepared = await to_thread.run_sync(_prepare, flow, event)
        if prepared.inbound.kind == "postback":
            connector = flow.connectors.get(prepared.inbound.channel)
            if connector is not None:
                await connector.acknowledge(prepared.inbound)
        decision = await flow.bot.handle(prepared.turn, prepared.state)
        applied = await to_thread.run_sync(_apply, flow, prepared, decision)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if is_infrastructure_error(exc):
            raise TryAgainLater(error) from exc
        log.warning("turn of inbound event %s failed: %s", event.id, error, exc_info=True)
        try:
            parked = await to_thread.run_sync(_record_failure, flow, event, error, prepared)
        except Exception as failure:
            if is_infrastructure_error(failure):
                raise TryAgainLater(error) from failure
            log.exception("recording the failure of inbound event %s failed", event.id)
            await to_thread.run_sync(_park_bare, flow, event, error)
            return
        if parked is None:
            raise TryAgainLater(error) from exc
        if parked.message_id is not None and event.stored_message_id is None:
            await _announce_customer_message(flow, prepared, parked.message_id)
        if parked.escalated:
            await events.publish("conversation_escalated", conversation_id=prepared.conversation_id,
                                  reason="bot_error", priority="high")
        return
    if applied is None:
        return  # another worker processed it
    if event.stored_message_id is None:
        await _announce_customer_message(flow, prepared, applied.message_id)
    for message_id in applied.message_ids:
        await events.publish("message_created", conversation_id=prepared.conversation_id,
                             message_id=message_id, author="bot")
    if applied.escalated:
        await events.publish("conversation_escalated", conversation_id=prepared.conversation_id,
                             reason=decision.escalation.reason, priority=decision.escalation.priority)
    # The worker runs this job under the chat's lock, which is also the outbox's per-chat lock.
    if applied.behind_older:
        await drain_chat(flow.outbox, prepared.inbound.channel, prepared.turn.recipient_id)
    elif applied.outbox:
        await send_in_order(flow.outbox, prepared.inbound.channel, applied.outbox)


async def _announce_customer_message(flow: ConversationFlow, prepared: _Prepared, message_id: int) -> None:
    await flow.events.publish("message_created", conversation_id=prepared.conversation_id, message_id=message_id,
                                 author="customer", new_conversation=prepared.new_conversation,
                                 human_owned=prepared.turn.human_owned)


async def send_in_order(outbox: OutboxSender, channel: str, items: list[OutboxItem]) -> list[Delivery]:
    """Send items one after the other, stopping at one that must wait for a retry; the outcomes
    are recorded together. Returns the items attempted, as recorded."""
    connector = outbox.connectors.get(channel)
    outcomes: list[tuple[int, str | None, DeliveryError | None]] = []
    for item in items:
        if connector is None:
            external_id, error = None, DeliveryError(f"channel {channel} is not configured", retryable=False)
        else:
            external_id, error = await channels.send_outbox_item(connector, item)
        outcomes.append((item.id, external_id, error))
        if error is not None and error.retryable:
            break  # the rest stay pending behind it, in order; the retry pump drains them
    # What the platform answered is known: it is recorded even if the database is away for a while,
    # as an item left pending would be sent to the customer a second time.
    recorded = await when_available(_record_deliveries, outbox, outcomes, doing="recording sends")
    for item in recorded:
        if item.message_id is not None:
            await outbox.events.publish("message_delivery", message_id=item.message_id, status=item.status,
                                         error=item.last_error)
    return recorded


async def drain_chat(outbox: OutboxSender, channel: str, recipient_id: str) -> int:
    """Send a chat's pending outbox items oldest first, stopping at one that must wait for a retry.

    The caller holds the chat's lock, so one chat's messages leave one at a time and in order; a
    message waiting for its retry holds back the ones queued after it. Returns how many were sent.
    """
    sent = 0
    while True:
        item = await to_thread.run_sync(_oldest_pending, outbox, channel, recipient_id)
        if item is None:
            return sent
        if item.attempts > 0 and item.next_attempt_at is not None and item.next_attempt_at > utcnow():
            return sent  # backing off; the retry pump comes back when it is due
        [recorded] = await send_in_order(outbox, channel, [item])
        if recorded.status == "pending":
            return sent  # waiting for its retry; later messages wait behind it
        sent += recorded.status == "sent"


def _oldest_pending(outbox: OutboxSender, channel: str, recipient_id: str) -> OutboxItem | None:
    with Session(outbox.engine, expire_on_commit=False) as session:
        return channels.oldest_pending_for_chat(session, channel, recipient_id)


def _record_deliveries(
    outbox: OutboxSender, outcomes: list[tuple[int, str | None, DeliveryError | None]]
) -> list[Delivery]:
    now = utcnow()
    recorded = []
    with Session(outbox.engine, expire_on_commit=False) as session:
        for item_id, external_id, error in outcomes:
            if error is None:  # the common case, in two statements
                message_id = turns.record_sent(session.connection(), item_id, external_id, now)
                recorded.append(Delivery(item_id, message_id, OutboxStatus.sent, None))
            else:
                item = channels.record_failed_send(session, item_id, error, outbox.retry_policy)
                recorded.append(Delivery(item.id, item.message_id, item.status, item.last_error))
        session.commit()
    return recorded
