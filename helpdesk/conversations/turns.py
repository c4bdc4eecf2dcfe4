"""A bot turn's storage in plain SQL statements: the one way every turn stores its answer.

The worker's transactions are a handful of prebuilt statements instead of ORM objects loaded,
changed and flushed, which cost most of the worker's CPU time, and on SQLite part of it with the
file's write lock held. What needs the ORM happens around them in ``flows``: creating a first
contact's customer, identity or conversation before the turn (in a transaction of its own), and
escalating after the answer is stored (in the same transaction). The statements write what the
ORM's ``add_message`` and ``outbox.queue.queue_outbound`` would, column for column
(tests/helpdesk/conversations/test_turn_writes.py compares the turns' rows).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import String, bindparam, cast, delete, insert, literal_column, select, true, update
from sqlalchemy.engine import Connection

from connectors.base import InboundMessage
from helpdesk.attachments.rows import has_attachment_rows, record_inbound_attachments
from helpdesk.channels.models import EventStatus, InboundAttempt, InboundEvent, InboundOutcome
from helpdesk.conversations.models import (
    OPEN_STATES,
    Conversation,
    DeliveryStatus,
    DialogueState,
    Message,
    MessageAuthor,
)
from helpdesk.core.db import insert_unless_present
from helpdesk.core.types import insert_values
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.outbox.models import OutboxItem
from helpdesk.outbox.queue import queue_reply
from helpdesk.outbox.service import PENDING_IN_CHAT

_events = InboundEvent.__table__
_outcomes = InboundOutcome.__table__
_attempts = InboundAttempt.__table__
_identities = ChannelIdentity.__table__
_customers = Customer.__table__
_conversations = Conversation.__table__
_messages = Message.__table__
_states = DialogueState.__table__

#: a chat's oldest event still waiting (above ``floor``, up to ``up_to``), with its failed tries if any:
#: a chat's events are taken in the order they were stored, whatever order their jobs arrive in
NEXT_WAITING = (
    select(_events.c.id, _events.c.message, _attempts.c.attempts, _attempts.c.message_id, _events.c.received_at)
    .select_from(_events.outerjoin(_outcomes, _outcomes.c.event_id == _events.c.id)
                 .outerjoin(_attempts, _attempts.c.event_id == _events.c.id))
    .where(_events.c.channel == bindparam("channel"), _events.c.sender_id == bindparam("sender_id"),
           _events.c.id > bindparam("floor"), _events.c.id <= bindparam("up_to"),
           _events.c.status == EventStatus.received, _outcomes.c.event_id.is_(None))
    .order_by(_events.c.id).limit(1)
)
#: the sender, their customer, and their newest open conversation if any, in one statement
_open = _conversations.alias("open_conversations")
_OPEN_ID = (
    select(_open.c.id)
    .where(_open.c.identity_id == _identities.c.id, _open.c.state.in_(OPEN_STATES))
    .order_by(_open.c.id.desc()).limit(1).correlate(_identities).scalar_subquery()
)
_SPEAKER = (
    select(_identities.c.id, _identities.c.display_name, _customers.c.id.label("customer_id"), _customers.c.name,
           _customers.c.locale, _customers.c.phone, _customers.c.phone_verified, _customers.c.merged_into_id,
           _conversations.c.id.label("conversation_id"), _conversations.c.state, _conversations.c.channel,
           _conversations.c.last_message_at, _identities.c.last_inbound_at)
    .select_from(_identities.join(_customers, _customers.c.id == _identities.c.customer_id)
                 .outerjoin(_conversations, _conversations.c.id == _OPEN_ID))
    .where(_identities.c.channel == bindparam("channel"), _identities.c.external_id == bindparam("external_id"))
)
#: the chat's oldest event still waiting (NEXT_WAITING) and its sender with their open conversation
#: (_SPEAKER), in one statement: one round trip where a turn begins
_NEXT = NEXT_WAITING.subquery("next_event")
_WHO = _SPEAKER.subquery("speaker")
#: the dialogue state of the speaker's open conversation, when it is kept in the database (its key is
#: ``state_key(conversation_id)``)
_STATE_OF_SPEAKER = (
    select(_states.c.data)
    .where(_states.c.key == literal_column("'conversation:'", String) + cast(_WHO.c.conversation_id, String))
    .scalar_subquery()
)
NEXT_WAITING_WITH_SPEAKER = (
    select(_NEXT, *[column.label(f"speaker_{column.name}") for column in _WHO.c],
           _STATE_OF_SPEAKER.label("state_data"))
    .select_from(_NEXT.outerjoin(_WHO, true()))
)
#: what storing an answer needs to know, in one statement: whether an older message of the chat
#: still waits, when the customer last wrote, and whether the dialogue state has a row yet
_BEFORE_ANSWER = select(
    PENDING_IN_CHAT.label("older"),
    select(_identities.c.last_inbound_at)
    .join_from(_conversations, _identities, _identities.c.id == _conversations.c.identity_id)
    .where(_conversations.c.id == bindparam("conversation_id")).correlate(None).scalar_subquery()
    .label("last_inbound_at"),
    select(_states.c.key).where(_states.c.key == bindparam("state_key")).correlate(None).scalar_subquery()
    .label("state_key"),
)
_SEEN = (update(_identities).where(_identities.c.id == bindparam("identity_id"))
         .values(last_inbound_at=bindparam("now")))
_SEEN_RENAMED = _SEEN.values(display_name=bindparam("sender_name"))
_INSERT_MESSAGE = insert(_messages).returning(_messages.c.id)
_TOUCH_CONVERSATION = (update(_conversations).where(_conversations.c.id == bindparam("conversation_id"))
                       .values(last_message_at=bindparam("now"), updated_at=bindparam("now")))
_SAVE_STATE = (update(_states).where(_states.c.key == bindparam("state_key"))
               .values(data=bindparam("state_data", type_=_states.c.data.type), updated_at=bindparam("now")))
_NEW_STATE = insert(_states)
#: an event still waiting becomes processed or failed (no row added: another worker got there first)
_SETTLE_EVENT = insert_unless_present(_outcomes, ["event_id"], _outcomes.c.event_id)
_FORGET_ATTEMPTS = delete(_attempts).where(_attempts.c.event_id == bindparam("event_id"))
_ANSWERED_AGAIN = (update(_messages).where(_messages.c.id == bindparam("message_id"))
                   .values(nlu=bindparam("nlu", type_=_messages.c.nlu.type)))

def state_key(conversation_id: int) -> str:
    """The key of a conversation's dialogue state."""
    return f"conversation:{conversation_id}"


class Speaker(NamedTuple):
    """Who writes, and the open conversation they write in."""

    identity_id: int
    display_name: str | None
    customer_id: int
    name: str | None
    locale: str
    phone: str | None
    phone_verified: bool
    conversation_id: int
    conversation_state: str
    channel: str
    new_conversation: bool
    #: when the customer last wrote before this message (None: never, or not read)
    last_inbound_at: datetime | None = None


def known_speaker(connection: Connection, inbound: InboundMessage) -> Speaker | None:
    """The sender and their open conversation, when both exist and the customer is not merged into
    another (None: the ORM path creates or resolves them)."""
    who = connection.execute(_SPEAKER, {"channel": inbound.channel, "external_id": inbound.sender_id}).first()
    return None if who is None else speaker_of(who._mapping)


def speaker_of(who: Any, prefix: str = "") -> Speaker | None:
    """The Speaker in a row of _SPEAKER's columns (their names after ``prefix``), or None as in
    ``known_speaker``."""
    def column(name: str) -> Any:
        return who[f"{prefix}{name}"]

    if column("id") is None or column("merged_into_id") is not None or column("conversation_id") is None:
        return None
    return Speaker(column("id"), column("display_name"), column("customer_id"), column("name"), column("locale"),
                   column("phone"), column("phone_verified"), column("conversation_id"), column("state"),
                   column("channel"), column("last_message_at") is None, column("last_inbound_at"))


def settle_event(connection: Connection, event_id: int, now: datetime, error: str | None = None) -> bool:
    """Mark a waiting event processed (or parked, with ``error``); False when it was not waiting any
    more, i.e. another worker settled it first and this transaction must not store anything."""
    status = EventStatus.processed if error is None else EventStatus.parked
    added = connection.execute(_SETTLE_EVENT[connection.dialect.name], {
        "event_id": event_id, "status": status, "processed_at": now,
        "error": error[:1000] if error is not None else None})
    return added.scalar_one_or_none() is not None


def forget_attempts(connection: Connection, event_id: int) -> None:
    """Drop the record of an event's failed tries (it has been answered)."""
    connection.execute(_FORGET_ATTEMPTS, {"event_id": event_id})


def customer_message(connection: Connection, speaker: Speaker, inbound: InboundMessage, now: datetime,
                     nlu: dict[str, Any] | None, stored_message_id: int | None) -> int:
    """The customer's message of a turn: stored now, or, when an earlier try parked the event and
    stored it then, that message with the bot's reading added."""
    if stored_message_id is None:
        return record_customer_message(connection, speaker, inbound, now, nlu)
    connection.execute(_ANSWERED_AGAIN, {"message_id": stored_message_id, "nlu": nlu})
    return stored_message_id


def record_customer_message(connection: Connection, speaker: Speaker, inbound: InboundMessage,
                            now: datetime, nlu: dict[str, Any] | None = None) -> int:
    """Store the customer's message (the writes of ``identify_sender`` and ``add_message``), with the
    bot's reading of it when there is one."""
    renamed = bool(inbound.sender_name) and inbound.sender_name != speaker.display_name
    connection.execute(_SEEN_RENAMED if renamed else _SEEN, {"identity_id": speaker.identity_id, "now": now,
                                                             "sender_name": inbound.sender_name})
    message_id = connection.execute(_INSERT_MESSAGE, insert_values(
        Message, conversation_id=speaker.conversation_id, direction="in", author=MessageAuthor.customer,
        channel=speaker.channel, channel_message_id=inbound.external_id, text=inbound.text,
        payload=inbound.payload, attachments=[a.model_dump(mode="json") for a in inbound.attachments],
        nlu=nlu, created_at=now,
    )).scalar_one()
    if has_attachment_rows(inbound):
        # the files are fetched after the turn commits (helpdesk.attachments.tasks), never before
        record_inbound_attachments(connection, inbound, conversation_id=speaker.conversation_id,
                                   message_id=message_id, channel=speaker.channel, now=now)
    connection.execute(_TOUCH_CONVERSATION, {"conversation_id": speaker.conversation_id, "now": now})
    return message_id


class Answer(NamedTuple):
    #: the customer's message answered
    message_id: int
    outbox: list[OutboxItem]
    message_ids: list[int]
    #: an older message of this chat still waits for a retry
    behind_older: bool


def store_answer(connection: Connection, *, event_id: int, speaker: Speaker, inbound: InboundMessage,
                 channel: str, recipient_id: str, nlu: dict[str, Any] | None,
                 replies: list[tuple[str, dict[str, Any], str]], state_key: str, state: dict[str, Any] | None,
                 now: datetime, retried: bool = False, stored_message_id: int | None = None) -> Answer | None:
    """Settle the event and store the customer's message with the bot's reading, and the replies
    (queued in the outbox), and save the dialogue state (the writes of ``flows._apply`` before any
    escalation). None, with nothing written, when another
    worker settled the event first. (Storing the customer's message moves the conversation's last
    message time to ``now``, which is also the replies' time.) ``retried``: earlier tries failed, and
    their record goes; ``stored_message_id``: the customer's message stored by one of them."""
    conversation_id = speaker.conversation_id
    older, last_inbound_at, state_row = connection.execute(_BEFORE_ANSWER, {
        "channel": channel, "recipient_id": recipient_id, "conversation_id": conversation_id, "state_key": state_key,
    }).one()
    if not settle_event(connection, event_id, now):
        return None
    if retried:
        forget_attempts(connection, event_id)
    message_id = customer_message(connection, speaker, inbound, now, nlu, stored_message_id)
    outbox, message_ids = [], []
    for text, body, reply_to in replies:
        reply_id = connection.execute(_INSERT_MESSAGE, insert_values(
            Message, conversation_id=conversation_id, direction="out", author=MessageAuthor.bot, channel=channel,
            text=text, delivery_status=DeliveryStatus.pending, created_at=now,
        )).scalar_one()
        outbox.append(queue_reply(connection, message_id=reply_id, channel=channel, recipient_id=reply_to, body=body,
                                  author=MessageAuthor.bot, conversation_id=conversation_id,
                                  last_inbound_at=last_inbound_at, now=now))
        message_ids.append(reply_id)
    if state is not None:
        if state_row is not None:
            connection.execute(_SAVE_STATE, {"state_key": state_key, "state_data": state, "now": now})
        else:
            connection.execute(_NEW_STATE, insert_values(DialogueState, key=state_key, data=state, updated_at=now))
    return Answer(message_id, outbox, message_ids, older is not None)
