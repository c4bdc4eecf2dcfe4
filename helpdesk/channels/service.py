"""The inbound ledger (store each platform event once) and outbox delivery."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple

from pydantic import TypeAdapter
from sqlalchemy import exists, func
from sqlmodel import Session, col, select

from connectors.base import ChannelConnector, DeliveryError, InboundMessage, OutboundMessage
from helpdesk.channels.models import EventStatus, InboundEvent, InboundOutcome, OutboxItem, OutboxStatus
from helpdesk.conversations.models import Conversation, DeliveryStatus, Message
from helpdesk.core.db import insert_unless_present, utcnow
from helpdesk.core.errors import Conflict
from helpdesk.customers.models import ChannelIdentity

log = logging.getLogger(__name__)

OUTBOUND = TypeAdapter(OutboundMessage)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failed send is retried."""

    max_attempts: int = 8
    base_backoff_s: float = 1.0
    max_backoff_s: float = 300.0

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds before the next try: the platform's retry_after if given, else exponential with jitter."""
        if retry_after is not None:
            return max(0.0, float(retry_after))
        ceiling = min(self.max_backoff_s, self.base_backoff_s * 2 ** max(0, attempts - 1))
        return random.uniform(ceiling / 2, ceiling)


DEFAULT_RETRY = RetryPolicy()


#: an inbound event, unless (channel, external id) is stored already
_INBOUND_INSERT = insert_unless_present(InboundEvent.__table__, ["channel", "external_id"],
                                        InboundEvent.__table__.c.id)


class RecordedEvent(NamedTuple):
    """A newly stored inbound event: its id and whether it waits to be processed."""

    id: int
    status: EventStatus


def record_inbound(session: Session, message: InboundMessage, raw: Any) -> RecordedEvent | None:
    """Store the event unless (channel, external id) was seen before; None for a duplicate.

    The unique constraint decides, in the insert itself (``ON CONFLICT DO NOTHING RETURNING``): one
    round trip, no read first and no savepoint, so many events can share one transaction.
    """
    values = dict(
        channel=message.channel,
        external_id=message.external_id,
        sender_id=message.sender_id,
        kind=message.kind,
        message=message.model_dump(mode="json"),
        raw=raw,
        status=EventStatus.received if message.answerable or message.kind == "message" else EventStatus.ignored,
        received_at=utcnow(),
    )
    connection = session.connection()
    event_id = connection.execute(_INBOUND_INSERT[connection.dialect.name], values).scalar_one_or_none()
    return None if event_id is None else RecordedEvent(event_id, values["status"])


class PendingEvent(NamedTuple):
    """A stored event that waits to be processed."""

    id: int
    channel: str
    sender_id: str


#: events received this much before the sweep's cut-off are taken to be committed: the ids below
#: theirs need not be looked at again once settled (ids come in commit order on one SQLite writer;
#: on PostgreSQL concurrent edges may commit them a little out of order)
SETTLED_MARGIN = timedelta(seconds=60)
_events, _outcomes = InboundEvent.__table__, InboundOutcome.__table__


#: waiting events read by one look of the sweep
PENDING_PAGE = 1000


def pending_events(session: Session, *, after_id: int = 0, older_than_s: float = 0.0,
                   limit: int = PENDING_PAGE) -> tuple[list[PendingEvent], int]:
    """Events stored to be processed and not settled yet (e.g. the process stopped after acknowledging
    them), oldest first: those with an id above ``after_id``, received more than ``older_than_s`` ago.
    Also the ``after_id`` for the next look, below which every event is settled (the ledger is never
    scanned from its beginning twice)."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    unsettled = ~exists().where(_outcomes.c.event_id == _events.c.id)
    rows = session.connection().execute(
        select(_events.c.id, _events.c.channel, _events.c.sender_id)
        .where(_events.c.id > after_id, _events.c.status == EventStatus.received,
               _events.c.received_at <= cutoff, unsettled)
        .order_by(_events.c.id).limit(limit)).all()
    if rows:
        return [PendingEvent(*row) for row in rows], rows[0].id - 1
    settled_through = session.connection().execute(
        select(func.max(_events.c.id)).where(_events.c.id > after_id,
                                             _events.c.received_at <= cutoff - SETTLED_MARGIN)).scalar()
    return [], after_id if settled_through is None else settled_through


def chats_with_due_items(session: Session, limit: int = 500) -> list[tuple[str, str]]:
    """(channel, recipient) of chats that have a pending outbox item whose next attempt is due."""
    rows = session.exec(
        select(OutboxItem.channel, OutboxItem.recipient_id)
        .where(OutboxItem.status == OutboxStatus.pending, col(OutboxItem.next_attempt_at) <= utcnow())
        .distinct().limit(limit)
    ).all()
    return [(channel, recipient) for channel, recipient in rows]


def oldest_pending_for_chat(session: Session, channel: str, recipient_id: str) -> OutboxItem | None:
    """The chat's next message to send, if any."""
    return session.exec(
        select(OutboxItem)
        .where(OutboxItem.status == OutboxStatus.pending, OutboxItem.channel == channel,
               OutboxItem.recipient_id == recipient_id)
        .order_by(col(OutboxItem.id)).limit(1)
    ).first()


async def send_outbox_item(connector: ChannelConnector, item: OutboxItem) -> tuple[str | None, DeliveryError | None]:
    """Try to send one item; returns the platform id or the error (never raises)."""
    try:
        outbound = OUTBOUND.validate_python(item.body)
        return await connector.send(outbound), None
    except DeliveryError as exc:
        return None, exc
    except Exception as exc:  # network trouble the connector did not classify: try again later
        log.warning("unexpected error sending outbox item %s: %r", item.id, exc)
        return None, DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True)


def record_failed_send(
    session: Session, item_id: int, error: DeliveryError, policy: RetryPolicy = DEFAULT_RETRY,
) -> OutboxItem:
    """Store a failed send on the outbox item and its message: due again later if it may be
    retried, failed for good otherwise. (A successful send is two plain statements:
    ``conversations.turns.record_sent``.)"""
    item = session.get(OutboxItem, item_id)
    message = session.get(Message, item.message_id) if item.message_id else None
    now = utcnow()
    item.attempts += 1
    item.last_error = error.reason[:1000]
    if error.retryable and item.attempts < policy.max_attempts:
        item.next_attempt_at = now + timedelta(seconds=policy.delay(item.attempts, error.retry_after))
        return item
    item.status = OutboxStatus.failed
    if message is not None:
        message.delivery_status = DeliveryStatus.failed
        message.delivery_error = error.reason[:1000]
        if error.unreachable:
            conversation = session.get(Conversation, message.conversation_id)
            identity = session.get(ChannelIdentity, conversation.identity_id) if conversation else None
            if identity is not None:
                identity.reachable = False
                identity.unreachable_reason = error.reason[:500]
    return item


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
