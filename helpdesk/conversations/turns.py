"""A bot turn's storage in plain SQL statements, for the common case.

Most turns are a known customer writing in an open conversation and the bot answering without
calling a person. For those, the worker's transactions are a handful of prebuilt statements instead
of ORM objects loaded, changed and flushed: on a small machine the ORM cost about 10 ms of CPU a
turn, most of the worker's time, and on SQLite part of it with the file's write lock held. Anything
else (a first contact, a merged customer, a new conversation, an escalation, a failed send) takes
the ORM path in ``flows``, which these statements must agree with: they write the same columns with
the same values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from connectors.base import InboundMessage
from helpdesk.channels.models import EventStatus, InboundEvent, OutboxItem, OutboxStatus
from helpdesk.conversations.models import (
    OPEN_STATES,
    Conversation,
    DeliveryStatus,
    DialogueState,
    Message,
    MessageAuthor,
)
from helpdesk.conversations.service import FIRST_ATTEMPT_LEASE, outbound_body
from helpdesk.core.types import insert_values
from helpdesk.customers.models import ChannelIdentity, Customer

_events = InboundEvent.__table__
_identities = ChannelIdentity.__table__
_customers = Customer.__table__
_conversations = Conversation.__table__
_messages = Message.__table__
_outbox = OutboxItem.__table__
_states = DialogueState.__table__

EVENT = select(_events.c.status, _events.c.message).where(_events.c.id == bindparam("id"))
_SPEAKER = (
    select(_identities.c.id, _identities.c.display_name, _customers.c.id.label("customer_id"), _customers.c.name,
           _customers.c.locale, _customers.c.phone, _customers.c.phone_verified, _customers.c.merged_into_id)
    .join_from(_identities, _customers, _customers.c.id == _identities.c.customer_id)
    .where(_identities.c.channel == bindparam("channel"), _identities.c.external_id == bindparam("external_id"))
)
_OPEN_CONVERSATION = (
    select(_conversations.c.id, _conversations.c.state, _conversations.c.channel, _conversations.c.last_message_at)
    .where(_conversations.c.identity_id == bindparam("identity_id"), _conversations.c.state.in_(OPEN_STATES))
    .order_by(_conversations.c.id.desc()).limit(1)
)
_STATE = select(_states.c.data).where(_states.c.key == bindparam("state_key"))
_LAST_INBOUND = (
    select(_identities.c.last_inbound_at)
    .join_from(_conversations, _identities, _identities.c.id == _conversations.c.identity_id)
    .where(_conversations.c.id == bindparam("conversation_id"))
)
_OLDER_PENDING = (
    select(_outbox.c.id)
    .where(_outbox.c.status == OutboxStatus.pending, _outbox.c.channel == bindparam("channel"),
           _outbox.c.recipient_id == bindparam("recipient_id"))
    .limit(1)
)
_INSERT_MESSAGE = insert(_messages).returning(_messages.c.id)
_INSERT_OUTBOX = insert(_outbox).returning(_outbox.c.id)
_TOUCH_CONVERSATION = update(_conversations).where(_conversations.c.id == bindparam("conversation_id"))
_SENT = (
    update(_outbox).where(_outbox.c.id == bindparam("item_id"))
    .values(attempts=_outbox.c.attempts + 1, status=OutboxStatus.sent, external_id=bindparam("external_id"),
            sent_at=bindparam("now"), last_error=None)
    .returning(_outbox.c.message_id)
)
_MESSAGE_SENT = (
    update(_messages).where(_messages.c.id == bindparam("message_id"))
    .values(delivery_status=DeliveryStatus.sent, channel_message_id=bindparam("external_id"), delivery_error=None)
)


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


def known_speaker(connection: Connection, inbound: InboundMessage) -> Speaker | None:
    """The sender and their open conversation, when both exist and the customer is not merged into
    another (None: the ORM path creates or resolves them)."""
    who = connection.execute(_SPEAKER, {"channel": inbound.channel, "external_id": inbound.sender_id}).first()
    if who is None or who.merged_into_id is not None:
        return None
    conversation = connection.execute(_OPEN_CONVERSATION, {"identity_id": who.id}).first()
    if conversation is None:
        return None
    return Speaker(who.id, who.display_name, who.customer_id, who.name, who.locale, who.phone, who.phone_verified,
                   conversation.id, conversation.state, conversation.channel, conversation.last_message_at is None)


def load_state(connection: Connection, key: str) -> dict[str, Any]:
    """The dialogue state stored for ``key`` ({} when there is none)."""
    data = connection.execute(_STATE, {"state_key": key}).scalar()
    return dict(data) if data is not None else {}


def record_customer_message(connection: Connection, speaker: Speaker, inbound: InboundMessage,
                            now: datetime) -> int:
    """Store the customer's message (the writes of ``identify_sender`` and ``add_message``)."""
    seen: dict[str, Any] = {"last_inbound_at": now}
    if inbound.sender_name and inbound.sender_name != speaker.display_name:
        seen["display_name"] = inbound.sender_name
    connection.execute(update(_identities).where(_identities.c.id == speaker.identity_id).values(**seen))
    message_id = connection.execute(_INSERT_MESSAGE, insert_values(
        Message, conversation_id=speaker.conversation_id, direction="in", author=MessageAuthor.customer,
        channel=speaker.channel, channel_message_id=inbound.external_id, text=inbound.text,
        payload=inbound.payload, attachments=[a.model_dump(mode="json") for a in inbound.attachments],
        created_at=now,
    )).scalar_one()
    connection.execute(_TOUCH_CONVERSATION, {"conversation_id": speaker.conversation_id, "last_message_at": now,
                                             "updated_at": now})
    return message_id


class Answer(NamedTuple):
    outbox: list[OutboxItem]
    message_ids: list[int]
    #: an older message of this chat still waits for a retry
    behind_older: bool


def store_answer(connection: Connection, *, event_id: int, conversation_id: int, message_id: int,
                 channel: str, recipient_id: str, nlu: dict[str, Any] | None,
                 replies: list[tuple[str, dict[str, Any], str]], state_key: str, state: dict[str, Any] | None,
                 now: datetime) -> Answer:
    """Store the bot's reading and replies without an escalation (the writes of ``flows._apply``)."""
    older = connection.execute(_OLDER_PENDING, {"channel": channel, "recipient_id": recipient_id}).first()
    last_inbound_at = connection.execute(_LAST_INBOUND, {"conversation_id": conversation_id}).scalar()
    has_state = state is not None and connection.execute(_STATE, {"state_key": state_key}).first() is not None

    if nlu is not None:
        connection.execute(update(_messages).where(_messages.c.id == message_id).values(nlu=nlu))
    outbox, message_ids = [], []
    for text, body, reply_to in replies:
        reply_id = connection.execute(_INSERT_MESSAGE, insert_values(
            Message, conversation_id=conversation_id, direction="out", author=MessageAuthor.bot, channel=channel,
            text=text, delivery_status=DeliveryStatus.pending, created_at=now,
        )).scalar_one()
        values = insert_values(
            OutboxItem, message_id=reply_id, channel=channel, recipient_id=reply_to,
            body=outbound_body(body, MessageAuthor.bot, conversation_id, last_inbound_at),
            next_attempt_at=now + FIRST_ATTEMPT_LEASE, created_at=now,
        )
        item_id = connection.execute(_INSERT_OUTBOX, values).scalar_one()
        outbox.append(OutboxItem(id=item_id, **values))
        message_ids.append(reply_id)
    if replies:
        connection.execute(_TOUCH_CONVERSATION, {"conversation_id": conversation_id, "last_message_at": now,
                                                 "updated_at": now})
    if state is not None:
        if has_state:
            connection.execute(update(_states).where(_states.c.key == state_key)
                               .values(data=state, updated_at=now))
        else:
            connection.execute(insert(_states).values(insert_values(DialogueState, key=state_key, data=state)))
    connection.execute(update(_events).where(_events.c.id == event_id)
                       .values(status=EventStatus.processed, processed_at=now))
    return Answer(outbox, message_ids, older is not None)


def record_sent(connection: Connection, item_id: int, external_id: str | None, now: datetime) -> int | None:
    """A successful send on the outbox item and its message (``record_delivery`` without an error);
    returns the message's id."""
    message_id = connection.execute(_SENT, {"item_id": item_id, "external_id": external_id, "now": now}).scalar()
    if message_id is not None:
        connection.execute(_MESSAGE_SENT, {"message_id": message_id, "external_id": external_id})
    return message_id
