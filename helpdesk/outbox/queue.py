"""Queueing: an outgoing message goes into the outbox in the same transaction as the write that
produced it (a bot's answer, an agent's reply, a care message, a CSAT request), so that it is sent
exactly when that write commits. Sending is ``service.Outbox``'s."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from helpdesk.conversations.models import Conversation, DeliveryStatus, Message
from helpdesk.core.db import utcnow
from helpdesk.core.errors import Conflict
from helpdesk.core.types import insert_values
from helpdesk.customers.models import ChannelIdentity
from helpdesk.outbox.models import OutboxItem, OutboxStatus

#: The first attempt is made right away by whoever queued the item; the retry pump takes over only if
#: that attempt has not finished within this lease (e.g. the process stopped).
FIRST_ATTEMPT_LEASE = timedelta(seconds=30)

_outbox = OutboxItem.__table__
_INSERT_ITEM = insert(_outbox).returning(_outbox.c.id)


def outbound_body(body: dict[str, Any], author: str, conversation_id: int,
                  last_inbound_at: datetime | None) -> dict[str, Any]:
    """An outgoing message's body with the metadata its connector needs."""
    return {**body, "metadata": {
        **(body.get("metadata") or {}),
        "author": author,
        "conversation_id": conversation_id,
        "last_inbound_at": last_inbound_at.isoformat() if last_inbound_at else None,
    }}


def queue_outbound(
    session: Session, conversation: Conversation, message: Message, body: dict[str, Any], recipient_id: str
) -> OutboxItem:
    """Put a stored outgoing message in the outbox for delivery.

    The body's metadata tells the connector who speaks and when the customer last wrote, which
    channels with messaging windows (Messenger, Zalo) need to choose how, or whether, to send.
    """
    identity = session.get(ChannelIdentity, conversation.identity_id)
    body = outbound_body(body, message.author, conversation.id, identity.last_inbound_at if identity else None)
    item = OutboxItem(message_id=message.id, channel=conversation.channel, recipient_id=recipient_id, body=body,
                      next_attempt_at=utcnow() + FIRST_ATTEMPT_LEASE)
    session.add(item)
    session.flush()
    return item


def queue_reply(connection: Connection, *, message_id: int, channel: str, recipient_id: str, body: dict[str, Any],
                author: str, conversation_id: int, last_inbound_at: datetime | None, now: datetime) -> OutboxItem:
    """``queue_outbound`` in one plain statement, for a bot turn's answer (``conversations.turns``):
    the same row, given what ``queue_outbound`` reads (when the customer last wrote)."""
    values = insert_values(
        OutboxItem, message_id=message_id, channel=channel, recipient_id=recipient_id,
        body=outbound_body(body, author, conversation_id, last_inbound_at),
        next_attempt_at=now + FIRST_ATTEMPT_LEASE, created_at=now,
    )
    item_id = connection.execute(_INSERT_ITEM, values).scalar_one()
    return OutboxItem(id=item_id, **values)


def retry_failed(session: Session, message: Message) -> OutboxItem:
    """Queue a failed message again (an agent pressed retry)."""
    item = session.exec(select(OutboxItem).where(OutboxItem.message_id == message.id)
                        .order_by(col(OutboxItem.id).desc())).first()
    if item is None:
        raise Conflict("message was never queued for delivery")
    item.status = OutboxStatus.pending
    item.attempts = 0
    item.next_attempt_at = utcnow()
    message.delivery_status = DeliveryStatus.pending
    message.delivery_error = None
    return item
