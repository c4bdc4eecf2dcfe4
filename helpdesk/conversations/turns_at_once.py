"""A bot turn's answer stored in one statement on PostgreSQL: the writes of ``turns.store_answer`` as
data-modifying common table expressions of a single ``WITH ... SELECT``.

On PostgreSQL each statement is a round trip to the server, and a worker's CPU per message went
mostly into the ten round trips of storing an answer (BEGIN, a read, seven writes, COMMIT): the
driver's and SQLAlchemy's work per statement, not the database's. One statement run in autocommit
is its own transaction (all or nothing), so the same rows are written in one round trip.

How it stays what ``store_answer`` does:
- the event is settled first (``INSERT ... ON CONFLICT DO NOTHING``) and every other write is made
  only if that insert added a row (``WHERE EXISTS (SELECT FROM settled)``): a second worker on the same
  event writes nothing, as in the transactional version;
- every part of one statement sees the same snapshot, taken before any of its writes, so the select
  reads whether an older message of the chat still waits in the outbox as ``_BEFORE_ANSWER`` did;
- when the customer last wrote (the outbox body's metadata) comes from the turn's reading of the
  speaker: only the chat's own turns change it, and those run one at a time under the chat's lock;
- the dialogue state, when kept in the database, is an upsert.

Used for the common turn only: one without an escalation or attachments to record (those go the
ORM-assisted way, in a transaction). The statement's shape depends on the number of replies and a few
flags; each shape is built once and reused (its compiled form is cached by SQLAlchemy).
tests/helpdesk/conversations/test_turn_writes.py compares its rows with the ORM's.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, exists, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from connectors.base import InboundMessage
from helpdesk.channels.models import EventStatus, InboundAttempt, InboundOutcome
from helpdesk.conversations.models import Conversation, DeliveryStatus, DialogueState, Message, MessageAuthor
from helpdesk.conversations.turns import Answer, Speaker
from helpdesk.core.types import insert_values
from helpdesk.customers.models import ChannelIdentity
from helpdesk.outbox.models import OutboxItem
from helpdesk.outbox.queue import FIRST_ATTEMPT_LEASE, outbound_body
from helpdesk.outbox.models import OutboxStatus

_outcomes = InboundOutcome.__table__
_attempts = InboundAttempt.__table__
_identities = ChannelIdentity.__table__
_conversations = Conversation.__table__
_messages = Message.__table__
_outbox = OutboxItem.__table__
_states = DialogueState.__table__

#: an older message of the chat still waits in the outbox (``outbox.service.PENDING_IN_CHAT``). Every
#: parameter of the statement has a name no column of the tables it writes has: SQLAlchemy would add a
#: parameter named like a column to the SET clause of an UPDATE in it
_OLDER = (
    select(_outbox.c.id)
    .where(_outbox.c.status == OutboxStatus.pending, _outbox.c.channel == bindparam("turn_channel"),
           _outbox.c.recipient_id == bindparam("turn_recipient"))
    .limit(1).scalar_subquery()
)
#: the columns a new message or outbox item is inserted with (the key is the database's)
_MESSAGE_COLUMNS = [column.name for column in _messages.c if column.name != "id"]
_OUTBOX_COLUMNS = [column.name for column in _outbox.c if column.name not in ("id", "message_id")]


class _Shape(NamedTuple):
    """What varies between turns' statements."""

    replies: int
    #: earlier tries failed: their record goes
    retried: bool
    #: an earlier try stored the customer's message: it gets the bot's reading
    stored: bool
    #: the sender's display name changed
    renamed: bool
    #: the dialogue state is kept in the database
    with_state: bool


def _values(prefix: str, table: Any, columns: list[str]) -> list[Any]:
    return [bindparam(f"{prefix}{name}", type_=table.c[name].type) for name in columns]


@lru_cache(maxsize=64)
def _statement(shape: _Shape) -> Select:
    settled = (
        postgresql_insert(_outcomes)
        .values(event_id=bindparam("turn_event"), status=bindparam("turn_settled_status"),
                processed_at=bindparam("turn_now"), error=bindparam("turn_settled_error"))
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(_outcomes.c.event_id)
        .cte("settled")
    )
    go = exists(select(settled.c.event_id))
    writes = []
    if shape.retried:
        writes.append(delete(_attempts).where(_attempts.c.event_id == bindparam("turn_event"), go).cte("forgotten"))
    if shape.stored:
        incoming = (update(_messages).where(_messages.c.id == bindparam("turn_stored_message"), go)
                    .values(nlu=bindparam("turn_reading", type_=_messages.c.nlu.type))
                    .returning(_messages.c.id).cte("incoming"))
    else:
        seen = {"last_inbound_at": bindparam("turn_now")}
        if shape.renamed:
            seen["display_name"] = bindparam("turn_sender_name")
        writes.append(update(_identities).where(_identities.c.id == bindparam("turn_identity"), go)
                      .values(**seen).cte("seen"))
        incoming = (insert(_messages)
                    .from_select(_MESSAGE_COLUMNS, select(*_values("in_", _messages, _MESSAGE_COLUMNS)).where(go))
                    .returning(_messages.c.id).cte("incoming"))
        writes.append(update(_conversations).where(_conversations.c.id == bindparam("turn_conversation"), go)
                      .values(last_message_at=bindparam("turn_now"), updated_at=bindparam("turn_now")).cte("touched"))
    replies, queued = [], []
    for number in range(shape.replies):
        reply = (insert(_messages)
                 .from_select(_MESSAGE_COLUMNS,
                              select(*_values(f"r{number}_", _messages, _MESSAGE_COLUMNS)).where(go))
                 .returning(_messages.c.id).cte(f"reply_{number}"))
        queued.append(insert(_outbox)
                      .from_select(["message_id", *_OUTBOX_COLUMNS],
                                   select(reply.c.id, *_values(f"q{number}_", _outbox, _OUTBOX_COLUMNS)))
                      .returning(_outbox.c.id).cte(f"queued_{number}"))
        replies.append(reply)
    if shape.with_state:
        state = postgresql_insert(_states).from_select(
            ["key", "data", "updated_at"],
            select(bindparam("turn_state_key", type_=_states.c.key.type),
                   bindparam("turn_state_data", type_=_states.c.data.type),
                   bindparam("turn_now", type_=_states.c.updated_at.type)).where(go))
        writes.append(state.on_conflict_do_update(
            index_elements=["key"], set_={"data": state.excluded.data, "updated_at": state.excluded.updated_at},
        ).cte("state"))
    columns = [select(settled.c.event_id).scalar_subquery().label("settled"),
               select(incoming.c.id).scalar_subquery().label("message_id"),
               _OLDER.label("older")]
    for number, (reply, item) in enumerate(zip(replies, queued, strict=True)):
        columns += [select(reply.c.id).scalar_subquery().label(f"reply_{number}"),
                    select(item.c.id).scalar_subquery().label(f"queued_{number}")]
    return select(*columns).add_cte(*writes)


def store_answer_at_once(connection: Connection, *, event_id: int, speaker: Speaker, inbound: InboundMessage,
                         channel: str, recipient_id: str, nlu: dict[str, Any] | None,
                         replies: list[tuple[str, dict[str, Any], str]], state_key: str, state: dict[str, Any] | None,
                         last_inbound_at: datetime | None, now: datetime, retried: bool = False,
                         stored_message_id: int | None = None) -> Answer | None:
    """``turns.store_answer`` for PostgreSQL in one statement (``connection`` in autocommit: the
    statement is the transaction). None, with nothing written, when another worker settled the event
    first. ``last_inbound_at``: when the customer wrote before this message (the speaker's reading)."""
    renamed = bool(inbound.sender_name) and inbound.sender_name != speaker.display_name
    shape = _Shape(len(replies), retried, stored_message_id is not None, renamed, state is not None)
    conversation_id = speaker.conversation_id
    params: dict[str, Any] = {"turn_event": event_id, "turn_settled_status": EventStatus.processed, "turn_settled_error": None,
                              "turn_now": now, "turn_channel": channel, "turn_recipient": recipient_id,
                              "turn_identity": speaker.identity_id, "turn_conversation": conversation_id,
                              "turn_sender_name": inbound.sender_name, "turn_stored_message": stored_message_id,
                              "turn_reading": nlu, "turn_state_key": state_key, "turn_state_data": state}
    if stored_message_id is None:
        params.update(_prefixed("in_", insert_values(
            Message, conversation_id=conversation_id, direction="in", author=MessageAuthor.customer, channel=channel,
            channel_message_id=inbound.external_id, text=inbound.text, payload=inbound.payload,
            attachments=[a.model_dump(mode="json") for a in inbound.attachments], nlu=nlu, created_at=now)))
    items = []
    for number, (text, body, reply_to) in enumerate(replies):
        params.update(_prefixed(f"r{number}_", insert_values(
            Message, conversation_id=conversation_id, direction="out", author=MessageAuthor.bot, channel=channel,
            text=text, delivery_status=DeliveryStatus.pending, created_at=now)))
        item = insert_values(OutboxItem, channel=channel, recipient_id=reply_to, created_at=now,
                             body=outbound_body(body, MessageAuthor.bot, conversation_id, last_inbound_at),
                             next_attempt_at=now + FIRST_ATTEMPT_LEASE)
        del item["message_id"]  # the reply's, known once the statement ran
        params.update(_prefixed(f"q{number}_", item))
        items.append(item)
    row = connection.execute(_statement(shape), params).one()._mapping
    if row["settled"] is None:
        return None
    outbox = [OutboxItem(id=row[f"queued_{number}"], message_id=row[f"reply_{number}"], **item)
              for number, item in enumerate(items)]
    return Answer(row["message_id"], outbox, [row[f"reply_{number}"] for number in range(len(replies))],
                  row["older"] is not None)


def _prefixed(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    return {f"{prefix}{name}": value for name, value in values.items()}
