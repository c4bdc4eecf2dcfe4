"""Sending the outbox: a chat's messages one at a time and in order, each outcome recorded (sent,
due again later, or failed for good), and the chats whose retries are due.

``Outbox`` is built once by the application with what it needs (the database, the channels'
connectors, the event bus and the retry policy); the caller holds the chat's lock while it sends.
"""

from __future__ import annotations

import logging
import random
from functools import lru_cache
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol

from anyio import to_thread
from pydantic import TypeAdapter
from sqlalchemy import bindparam, update
from sqlalchemy import select as core_select
from sqlalchemy.sql import Select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from connectors.base import ChannelConnector, DeliveryError, MediaFile, OutboundFile, OutboundMessage
from helpdesk.conversations.models import Conversation, DeliveryStatus, Message
from helpdesk.core.db import single_statement, utcnow
from helpdesk.core.events import EventBus
from helpdesk.core.metrics import OUTBOX_FAILURES
from helpdesk.core.outages import when_available
from helpdesk.customers.models import ChannelIdentity
from helpdesk.outbox.models import OutboxItem, OutboxStatus

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


class Delivery(NamedTuple):
    """How a send went, as recorded."""

    item_id: int
    message_id: int | None
    status: str
    last_error: str | None


_outbox, _messages = OutboxItem.__table__, Message.__table__

#: whether a chat has a message waiting (to be sent, or for its retry): a new one queues behind it
PENDING_IN_CHAT = (
    select(_outbox.c.id)
    .where(_outbox.c.status == OutboxStatus.pending, _outbox.c.channel == bindparam("channel"),
           _outbox.c.recipient_id == bindparam("recipient_id"))
    .limit(1).correlate(None).scalar_subquery()
)
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


def chats_with_due_items(session: Session, now: datetime, limit: int = 500) -> list[tuple[str, str]]:
    """(channel, recipient) of chats that have a pending outbox item whose next attempt is due."""
    rows = session.exec(
        select(OutboxItem.channel, OutboxItem.recipient_id)
        .where(OutboxItem.status == OutboxStatus.pending, col(OutboxItem.next_attempt_at) <= now)
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


class FileSource(Protocol):
    """Where the outbox gets the bytes of a stored attachment it sends (``helpdesk.attachments``)."""

    async def media_for(self, attachment_id: str, channel: str) -> MediaFile:
        """The file, with a link the platform may fetch it from; DeliveryError(retryable=False) when
        it is no longer stored."""
        ...


async def send_item(connector: ChannelConnector, item: OutboxItem,
                    files: FileSource | None = None) -> tuple[str | None, DeliveryError | None]:
    """Try to send one item; returns the platform id or the error (never raises). A file's bytes
    come from ``files`` and go out with the connector's ``send_file``."""
    try:
        outbound = OUTBOUND.validate_python(item.body)
        if isinstance(outbound, OutboundFile):
            if files is None:
                raise DeliveryError("this server keeps no files to send", retryable=False)
            media = await files.media_for(outbound.attachment_id, connector.name)
            return await connector.send_file(outbound.recipient_id, media, outbound.file_kind,
                                             caption=outbound.text, reply_to=outbound.reply_to), None
        return await connector.send(outbound), None
    except DeliveryError as exc:
        return None, exc
    except Exception as exc:  # network trouble the connector did not classify: try again later
        log.warning("unexpected error sending outbox item %s: %r", item.id, exc)
        return None, DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True)


def record_sent(connection: Connection, item_id: int, external_id: str | None, now: datetime) -> int | None:
    """A successful send on the outbox item and its message, in two plain statements (the common
    case); returns the message's id."""
    message_id = connection.execute(_SENT, {"item_id": item_id, "external_id": external_id, "now": now}).scalar()
    if message_id is not None:
        connection.execute(_MESSAGE_SENT, {"message_id": message_id, "external_id": external_id})
    return message_id


@lru_cache(maxsize=16)
def _all_sent(count: int) -> Select:
    """``record_sent`` for ``count`` items in one PostgreSQL statement: for each, the item's update and
    its message's as data-modifying CTEs; selects each item's message id. (Parameter names are unlike
    any column's: SQLAlchemy would add one named like a column to an UPDATE's SET clause.)"""
    ctes, columns = [], []
    for number in range(count):
        sent = (update(_outbox).where(_outbox.c.id == bindparam(f"sent_item_{number}"))
                .values(attempts=_outbox.c.attempts + 1, status=OutboxStatus.sent,
                        external_id=bindparam(f"sent_external_{number}"), sent_at=bindparam("sent_now"), last_error=None)
                .returning(_outbox.c.message_id).cte(f"sent_{number}"))
        ctes.append(update(_messages).where(_messages.c.id == sent.c.message_id)
                    .values(delivery_status=DeliveryStatus.sent, delivery_error=None,
                            channel_message_id=bindparam(f"sent_external_{number}"))
                    .cte(f"marked_{number}"))
        columns.append(core_select(sent.c.message_id).scalar_subquery().label(f"message_{number}"))
    return core_select(*columns).add_cte(*ctes)


def record_all_sent(connection: Connection, sent: list[tuple[int, str | None]], now: datetime) -> list[int | None]:
    """Successful sends of outbox items (id, platform id) and their messages, in one statement on
    PostgreSQL (in autocommit it is its own transaction: one round trip); their messages' ids."""
    params = {"sent_now": now}
    for number, (item_id, external_id) in enumerate(sent):
        params[f"sent_item_{number}"] = item_id
        params[f"sent_external_{number}"] = external_id
    row = connection.execute(_all_sent(len(sent)), params).one()
    return list(row)


def record_failed_send(
    session: Session, item_id: int, error: DeliveryError, policy: RetryPolicy, now: datetime,
) -> OutboxItem:
    """Store a failed send on the outbox item and its message: due again later if it may be
    retried, failed for good otherwise (and the customer marked unreachable if the platform says so)."""
    item = session.get(OutboxItem, item_id)
    message = session.get(Message, item.message_id) if item.message_id else None
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


class Outbox:
    """Sends queued messages, one chat at a time and in order, and records how each send went
    (publishing ``message_delivery`` for each)."""

    def __init__(self, engine: Engine, connectors: Mapping[str, ChannelConnector], events: EventBus,
                 policy: RetryPolicy = DEFAULT_RETRY, *, clock: Callable[[], datetime] = utcnow,
                 files: FileSource | None = None):
        self.engine = engine
        #: the stored attachments that ``OutboundFile`` items send
        self.files = files
        self.connectors = connectors
        self.events = events
        self.policy = policy
        self.clock = clock

    async def send_in_order(self, channel: str, items: list[OutboxItem]) -> list[Delivery]:
        """Send items one after the other, stopping at one that must wait for a retry; the outcomes
        are recorded together. Returns the items attempted, as recorded. The caller holds the chat's
        lock."""
        connector = self.connectors.get(channel)
        outcomes: list[tuple[int, str | None, DeliveryError | None]] = []
        for item in items:
            if connector is None:
                external_id, error = None, DeliveryError(f"channel {channel} is not configured", retryable=False)
            else:
                external_id, error = await send_item(connector, item, self.files)
            outcomes.append((item.id, external_id, error))
            if error is not None and error.retryable:
                break  # the rest stay pending behind it, in order; the retry pump drains them
        # What the platform answered is known: it is recorded even if the database is away for a while,
        # as an item left pending would be sent to the customer a second time.
        recorded = await when_available(self._record, outcomes, doing="recording sends")
        recipients = {item.id: item.recipient_id for item in items}
        for item in recorded:
            if item.status == OutboxStatus.failed:
                OUTBOX_FAILURES.labels("true").inc()
                log.warning("send failed for good: channel=%s recipient=%s outbox_item=%s message=%s reason=%s",
                            channel, recipients.get(item.item_id), item.item_id, item.message_id, item.last_error)
            elif item.last_error is not None and item.status == OutboxStatus.pending:
                OUTBOX_FAILURES.labels("false").inc()
                log.warning("send failed, will retry: channel=%s recipient=%s outbox_item=%s message=%s reason=%s",
                            channel, recipients.get(item.item_id), item.item_id, item.message_id, item.last_error)
        await self.events.publish_many(
            ("message_delivery", {"message_id": item.message_id, "status": item.status, "error": item.last_error})
            for item in recorded if item.message_id is not None)
        return recorded

    async def drain(self, channel: str, recipient_id: str) -> int:
        """Send a chat's pending items oldest first, stopping at one that must wait for a retry.

        The caller holds the chat's lock, so one chat's messages leave one at a time and in order; a
        message waiting for its retry holds back the ones queued after it. Returns how many were sent.
        """
        sent = 0
        while True:
            item = await to_thread.run_sync(self.oldest_pending, channel, recipient_id)
            if item is None:
                return sent
            if item.attempts > 0 and item.next_attempt_at is not None and item.next_attempt_at > self.clock():
                return sent  # backing off; the retry pump comes back when it is due
            [recorded] = await self.send_in_order(channel, [item])
            if recorded.status == OutboxStatus.pending:
                return sent  # waiting for its retry; later messages wait behind it
            sent += recorded.status == OutboxStatus.sent

    def due_chats(self, limit: int = 500) -> list[tuple[str, str]]:
        """(channel, recipient) of chats with a retry due now (blocking: call from a thread)."""
        with Session(self.engine) as session:
            return chats_with_due_items(session, self.clock(), limit)

    def oldest_pending(self, channel: str, recipient_id: str) -> OutboxItem | None:
        """The chat's next message to send, if any (blocking: call from a thread)."""
        with Session(self.engine, expire_on_commit=False) as session:
            return oldest_pending_for_chat(session, channel, recipient_id)

    def _record(self, outcomes: list[tuple[int, str | None, DeliveryError | None]]) -> list[Delivery]:
        now = self.clock()
        recorded = []
        if self.engine.dialect.name == "postgresql" and outcomes and all(error is None for *_, error in outcomes):
            # the usual outcome: everything went out; one statement, one round trip
            with single_statement(self.engine).connect() as connection:
                message_ids = record_all_sent(connection, [(item_id, external_id) for item_id, external_id, _ in outcomes],
                                              now)
            return [Delivery(item_id, message_id, OutboxStatus.sent, None)
                    for (item_id, _, _), message_id in zip(outcomes, message_ids, strict=True)]
        with Session(self.engine, expire_on_commit=False) as session:
            for item_id, external_id, error in outcomes:
                if error is None:
                    message_id = record_sent(session.connection(), item_id, external_id, now)
                    recorded.append(Delivery(item_id, message_id, OutboxStatus.sent, None))
                else:
                    item = record_failed_send(session, item_id, error, self.policy, now)
                    recorded.append(Delivery(item.id, item.message_id, item.status, item.last_error))
            session.commit()
        return recorded
