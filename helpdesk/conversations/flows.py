"""What happens to a stored inbound event: conversation, bot decision, replies to the outbox.

A known customer's turn costs one read and two short write transactions: read who writes and the
dialogue state; store the customer's message with the bot's decision (replies queued in the outbox,
state saved, the event marked processed) all at once; record how the sends went. The bot runs
between the read and the first write, and sending between the two writes, outside any transaction.
Storing the message and marking the event in one transaction is also what keeps a worker that dies
mid-turn from storing the message twice when the event is processed again. A first contact (a new
customer, identity or conversation) first creates those, with the ORM, in a transaction of its own;
its message too is stored with the answer, by the same statements (``turns.store_answer``) as every
turn's. Sending is the outbox's (``ConversationFlow.outbox``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from collections.abc import Mapping
from typing import Any, NamedTuple

from anyio import to_thread
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot import ConversationEngine, Decision, Turn
from bot.ports import CustomerView
from connectors.base import ChannelConnector, InboundMessage
from helpdesk.channels.models import InboundAttempt
from helpdesk.attachments.rows import has_attachment_rows, with_row_ids
from helpdesk.conversations import service as conversations
from helpdesk.conversations import turns
from helpdesk.conversations.models import HUMAN_STATES, Conversation
from helpdesk.conversations.state_store import DatabaseStateStore, load_in
from helpdesk.conversations.turns_at_once import store_answer_at_once
from helpdesk.core.db import reading, single_statement, utcnow
from helpdesk.core.config import WorkerSettings
from helpdesk.core.errors import is_infrastructure_error
from helpdesk.core.events import EventBus
from helpdesk.core.logs import current_conversation_id, current_event_id
from helpdesk.core.metrics import MESSAGE_ANSWER_SECONDS, MESSAGES_PROCESSED
from helpdesk.customers.service import identify_sender
from helpdesk.jobs.runner import TryAgainLater
from helpdesk.outbox.models import OutboxItem
from helpdesk.outbox.service import Outbox

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class ConversationFlow:
    """What a conversation turn needs: the database, the bot, the bus, the channels (a postback's
    acknowledgement), the outbox, and the worker settings (how often a failing turn is tried before
    it is parked, read at each failure)."""

    engine: Engine
    bot: ConversationEngine
    events: EventBus
    connectors: Mapping[str, ChannelConnector]
    outbox: Outbox
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
    #: the bot's handoff note for the agents (a private message), when it escalated with one
    note_id: int | None = None


class WaitingEvent(NamedTuple):
    """A stored event to be processed: a chat's oldest still waiting."""

    id: int
    message: dict[str, Any]
    #: how often its turn failed before (None: never)
    attempts: int | None
    #: the customer's message, when parking the event stored it
    stored_message_id: int | None
    #: when the webhook edge stored it
    received_at: datetime | None = None
    #: its sender and their open conversation, read with it (None: a first contact, a merged customer or
    #: a new conversation, which ``_prepare`` creates or resolves)
    speaker: turns.Speaker | None = None
    #: that conversation's dialogue state as the database keeps it ({}: none yet), read with it when the
    #: speaker was (None: not read)
    state: dict[str, Any] | None = None




def _state_in_database(flow: ConversationFlow) -> bool:
    return isinstance(flow.bot.state_store, DatabaseStateStore)


def next_waiting_event(flow: ConversationFlow, channel: str, sender_id: str, up_to_id: int,
                       floor: int = 0) -> WaitingEvent | None:
    """The chat's oldest event still waiting, up to ``up_to_id`` (every event at or below ``floor`` is
    known to be settled)."""
    with reading(flow.engine).connect() as connection:
        row = connection.execute(turns.NEXT_WAITING_WITH_SPEAKER, {
            "channel": channel, "sender_id": sender_id, "external_id": sender_id, "floor": floor, "up_to": up_to_id,
        }).first()
    if row is None:
        return None
    speaker = turns.speaker_of(row._mapping, "speaker_")
    state = None if speaker is None else (row.state_data if row.state_data is not None else {})
    return WaitingEvent(row.id, row.message, row.attempts, row.message_id, row.received_at, speaker, state)


def _read_with_event(flow: ConversationFlow, event: WaitingEvent) -> bool:
    """Whether everything the turn needs was read with the event: a known speaker, and the dialogue
    state if the database keeps it (``_prepare`` then reads nothing)."""
    return event.speaker is not None and (event.state is not None or not _state_in_database(flow))


def _prepare(flow: ConversationFlow, event: WaitingEvent) -> _Prepared:
    """Find who writes and in which conversation, and build the bot's turn.

    A known customer in an open conversation (most turns) was read with the event
    (``next_waiting_event``): nothing more is read here unless the dialogue state is kept in the
    database. A first contact, a merged customer or a new conversation is created with the ORM and
    committed here; reads come first and the writes last, back to back (autoflush off), as on SQLite
    a transaction holds the file's only write lock from its first write to its commit, and the
    webhook edge waits for that lock. The customer's message is stored later, by ``_apply``.
    """
    in_database = _state_in_database(flow)
    inbound = InboundMessage.model_validate(event.message)
    speaker = event.speaker
    if _read_with_event(flow, event):
        return _prepared(event, inbound, speaker, event.state if in_database else None)
    with Session(flow.engine, expire_on_commit=False) as session, session.no_autoflush:
        if speaker is None:
            speaker = turns.known_speaker(session.connection(), inbound)
        if speaker is None:
            customer, identity = identify_sender(session, inbound.channel, inbound.sender_id, inbound.sender_name)
            conversation = conversations.open_conversation(session, identity)
            session.commit()
            speaker = turns.Speaker(identity.id, identity.display_name, customer.id, customer.name, customer.locale,
                                    customer.phone, customer.phone_verified, conversation.id, conversation.state,
                                    conversation.channel, conversation.last_message_at is None,
                                    identity.last_inbound_at)
        state = load_in(session, turns.state_key(speaker.conversation_id)) if in_database else None
    return _prepared(event, inbound, speaker, state)


def _prepared(event: WaitingEvent, inbound: InboundMessage, speaker: turns.Speaker,
              state: dict[str, Any] | None) -> _Prepared:
    """The bot's turn for the event, once its speaker is known."""
    turn = Turn(
        conversation_key=turns.state_key(speaker.conversation_id),
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
        attachments=with_row_ids(inbound),
        conversation_id=speaker.conversation_id,
    )
    return _Prepared(event.id, speaker, turn, inbound, state, event)


def _apply(flow: ConversationFlow, prepared: _Prepared, decision: Decision) -> _Applied | None:
    """Store the customer's message with its NLU reading, the replies (queued) and the state, and mark
    the event processed; apply an escalation. None when another worker settled the event first
    (nothing stored then).

    Every turn stores its answer the same way, in plain statements (``turns.store_answer``); an
    escalation then goes through the ORM, as escalating and assigning work on objects. As in
    _prepare, what the writes need is read before the first of them (the conversation too, when it
    escalates)."""
    turn = prepared.turn
    replies = [(reply.text, reply.model_dump(mode="json"), reply.recipient_id) for reply in decision.replies]
    nlu = decision.nlu.to_rasa() if decision.nlu is not None else None
    inbound = prepared.inbound
    if flow.engine.dialect.name == "postgresql" and decision.escalation is None \
            and not has_attachment_rows(inbound):
        # the common turn on PostgreSQL: one statement, one round trip (turns_at_once)
        with single_statement(flow.engine).connect() as connection:
            answer = store_answer_at_once(
                connection, event_id=prepared.event_id, speaker=prepared.speaker, inbound=inbound,
                channel=turn.channel, recipient_id=turn.recipient_id, nlu=nlu, replies=replies,
                state_key=turn.conversation_key, state=prepared.state, last_inbound_at=prepared.speaker.last_inbound_at,
                now=utcnow(), retried=prepared.earlier.attempts is not None,
                stored_message_id=prepared.earlier.stored_message_id)
        return None if answer is None else _Applied(answer.message_id, answer.outbox, answer.message_ids, False,
                                                    answer.behind_older)
    with Session(flow.engine, expire_on_commit=False) as session, session.no_autoflush:
        conversation = None
        if decision.escalation is not None:
            conversation = session.get(Conversation, prepared.conversation_id)
        answer = turns.store_answer(
            session.connection(), event_id=prepared.event_id, speaker=prepared.speaker, inbound=prepared.inbound,
            channel=turn.channel, recipient_id=turn.recipient_id, nlu=nlu, replies=replies,
            state_key=turn.conversation_key, state=prepared.state, now=utcnow(),
            retried=prepared.earlier.attempts is not None, stored_message_id=prepared.earlier.stored_message_id)
        if answer is None:
            return None
        escalated, note_id = False, None
        if conversation is not None:
            state_before = conversation.state
            conversations.escalate(session, conversation, decision.escalation.reason, decision.escalation.priority)
            escalated = conversation.state != state_before
            if escalated and decision.escalation.note:
                # what the bot collected (the order, the customer's words, the photos sent as evidence)
                # waits for the agent who takes over as a private note, never sent to the customer
                note_id = conversations.add_message(session, conversation, direction="out", author="system",
                                                    text=decision.escalation.note[:4000], is_private=True).id
        session.commit()
    return _Applied(answer.message_id, answer.outbox, answer.message_ids, escalated, answer.behind_older, note_id)


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
    after ``CAREDESK_WORKER__MAX_ATTEMPTS`` tries. What is logged meanwhile names the event and,
    once known, its conversation (see core.logs)."""
    event_token = current_event_id.set(event.id)
    conversation_token = current_conversation_id.set(None)
    try:
        await _take_turn(flow, event)
    finally:
        current_conversation_id.reset(conversation_token)
        current_event_id.reset(event_token)


async def _take_turn(flow: ConversationFlow, event: WaitingEvent) -> None:
    prepared = None
    events = flow.events
    try:
        if _read_with_event(flow, event):
            prepared = _prepare(flow, event)  # reads nothing: no thread needed
        else:
            prepared = await to_thread.run_sync(_prepare, flow, event)
        current_conversation_id.set(prepared.conversation_id)
        if prepared.inbound.kind == "postback":
            connector = flow.connectors.get(prepared.inbound.channel)
            if connector is not None:
                await connector.acknowledge(prepared.inbound)
        decision = await flow.bot.handle(prepared.turn, prepared.state)
        applied = await to_thread.run_sync(_apply, flow, prepared, decision)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if is_infrastructure_error(exc):
            MESSAGES_PROCESSED.labels("retry").inc()
            raise TryAgainLater(error) from exc
        log.warning("turn of inbound event %s failed: %s", event.id, error, exc_info=True)
        try:
            parked = await to_thread.run_sync(_record_failure, flow, event, error, prepared)
        except Exception as failure:
            if is_infrastructure_error(failure):
                MESSAGES_PROCESSED.labels("retry").inc()
                raise TryAgainLater(error) from failure
            log.exception("recording the failure of inbound event %s failed", event.id)
            await to_thread.run_sync(_park_bare, flow, event, error)
            MESSAGES_PROCESSED.labels("parked").inc()
            return
        if parked is None:
            MESSAGES_PROCESSED.labels("failed").inc()
            raise TryAgainLater(error) from exc
        MESSAGES_PROCESSED.labels("parked").inc()
        if parked.message_id is not None and event.stored_message_id is None:
            await _announce_customer_message(flow, prepared, parked.message_id)
        if parked.escalated:
            await events.publish("conversation_escalated", conversation_id=prepared.conversation_id,
                                  reason="bot_error", priority="high")
        return
    if applied is None:
        MESSAGES_PROCESSED.labels("duplicate").inc()
        return  # another worker processed it
    MESSAGES_PROCESSED.labels("answered").inc()
    if event.received_at is not None:  # across processes and replicas: the clocks of one database's hosts
        MESSAGE_ANSWER_SECONDS.observe(max(0.0, (utcnow() - event.received_at).total_seconds()))
    log.debug("answered with %d message(s)", len(applied.message_ids))
    # one fan-out for the turn (one Redis round trip with several app replicas), in the order the
    # inbox shows them: the customer's message, the bot's answers, its handoff note, the escalation
    announced: list[tuple[str, dict[str, Any]]] = []
    if event.stored_message_id is None:
        announced.append(_customer_message_event(prepared, applied.message_id))
    announced.extend(("message_created", {"conversation_id": prepared.conversation_id, "message_id": message_id,
                                          "author": "bot"}) for message_id in applied.message_ids)
    if applied.note_id is not None:  # the bot's handoff note, for the agents' thread
        announced.append(("message_created", {"conversation_id": prepared.conversation_id,
                                              "message_id": applied.note_id, "author": "system", "private": True}))
    if applied.escalated:
        announced.append(("conversation_escalated", {"conversation_id": prepared.conversation_id,
                                                     "reason": decision.escalation.reason,
                                                     "priority": decision.escalation.priority}))
    await events.publish_many(announced)
    # The worker runs this job under the chat's lock, which is also the outbox's per-chat lock.
    if applied.behind_older:
        await flow.outbox.drain(prepared.inbound.channel, prepared.turn.recipient_id)
    elif applied.outbox:
        await flow.outbox.send_in_order(prepared.inbound.channel, applied.outbox)


async def _announce_customer_message(flow: ConversationFlow, prepared: _Prepared, message_id: int) -> None:
    name, data = _customer_message_event(prepared, message_id)
    await flow.events.publish(name, **data)


def _customer_message_event(prepared: _Prepared, message_id: int) -> tuple[str, dict[str, Any]]:
    data = {"conversation_id": prepared.conversation_id, "message_id": message_id, "author": "customer",
            "new_conversation": prepared.new_conversation, "human_owned": prepared.turn.human_owned}
    # ``downloads``: files to fetch (helpdesk.attachments' listener starts their download)
    downloads = sum(attachment.downloadable for attachment in prepared.inbound.attachments)
    if downloads:
        data["downloads"] = downloads
    return "message_created", data
