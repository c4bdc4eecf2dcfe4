"""The Outbox on its own (no app, no worker): a chat's messages leave oldest first, each send is
recorded on the item and its message, a send to be retried holds the chat back until it is due, and
a send that cannot succeed fails the message (and, for a blocked bot, the customer's reachability)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from connectors.base import DeliveryError, OutboundMessage
from helpdesk.channels.ledger import make_database_engine
from helpdesk.conversations import service as conversations
from helpdesk.conversations.models import DeliveryStatus, Message, MessageAuthor
from helpdesk.core.db import migrate
from helpdesk.core.events import EventBus
from helpdesk.customers.models import ChannelIdentity
from helpdesk.customers.service import identify_sender
from helpdesk.outbox.models import OutboxItem, OutboxStatus
from helpdesk.outbox.queue import queue_outbound
from helpdesk.outbox.service import Outbox, RetryPolicy

CHAT = "9001"
NOW = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)


class ScriptedConnector:
    """A channel whose sends fail as told, in order, then succeed; it remembers what went out."""

    def __init__(self, *failures: DeliveryError):
        self.failures = list(failures)
        self.sent: list[str] = []

    async def send(self, message: OutboundMessage) -> str:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message.text)
        return f"ext-{len(self.sent)}"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A migrated database: SQLite, and PostgreSQL, where a successful send is recorded in one
    statement instead of two per item (``record_all_sent``)."""
    if request.param == "sqlite":
        engine = make_database_engine(request.getfixturevalue("sqlite_url"))
    else:
        engine = make_database_engine(request.getfixturevalue("postgres_url"))
        migrate(engine)
    yield engine
    engine.dispose()


def queue(engine: Engine, *texts: str) -> list[int]:
    """Agent-style messages queued in one chat; their message ids."""
    with Session(engine, expire_on_commit=False) as session:
        _, identity = identify_sender(session, "telegram", CHAT, "Lan")
        conversation = conversations.open_conversation(session, identity)
        ids = []
        for text in texts:
            message = conversations.add_message(session, conversation, direction="out", author=MessageAuthor.bot,
                                                text=text, delivery_status=DeliveryStatus.pending)
            queue_outbound(session, conversation, message, {"kind": "text", "recipient_id": CHAT, "text": text}, CHAT)
            ids.append(message.id)
        session.commit()
    return ids


def outbox_for(engine: Engine, connector: ScriptedConnector, clock: Clock) -> tuple[Outbox, list[dict]]:
    events = EventBus()
    published: list[dict] = []

    @events.on("message_delivery")
    async def remember(event) -> None:
        published.append(event.data)

    policy = RetryPolicy(max_attempts=3, base_backoff_s=10, max_backoff_s=10)
    return Outbox(engine, {"telegram": connector}, events, policy, clock=clock), published


def items(engine: Engine) -> list[OutboxItem]:
    with Session(engine) as session:
        return list(session.exec(select(OutboxItem).order_by(col(OutboxItem.id))).all())


def messages(engine: Engine, ids: list[int]) -> list[Message]:
    with Session(engine) as session:
        return [session.get(Message, message_id) for message_id in ids]


async def test_a_chat_is_drained_oldest_first_and_each_send_recorded(engine):
    ids = queue(engine, "một", "hai", "ba")
    connector = ScriptedConnector()
    outbox, published = outbox_for(engine, connector, Clock())

    assert await outbox.drain("telegram", CHAT) == 3

    assert connector.sent == ["một", "hai", "ba"]
    assert [(i.status, i.attempts, i.external_id, i.sent_at) for i in items(engine)] == [
        ("sent", 1, "ext-1", NOW), ("sent", 1, "ext-2", NOW), ("sent", 1, "ext-3", NOW)]
    assert [(m.delivery_status, m.channel_message_id) for m in messages(engine, ids)] == [
        ("sent", "ext-1"), ("sent", "ext-2"), ("sent", "ext-3")]
    assert [(e["message_id"], e["status"]) for e in published] == [(i, "sent") for i in ids]


async def test_a_send_to_retry_holds_the_chat_back_until_it_is_due(engine):
    queue(engine, "một", "hai")
    connector = ScriptedConnector(DeliveryError("429 Too Many Requests", retryable=True, retry_after=60))
    clock = Clock()
    outbox, _ = outbox_for(engine, connector, clock)

    assert await outbox.drain("telegram", CHAT) == 0
    first, second = items(engine)
    assert (first.status, first.attempts, first.next_attempt_at) == ("pending", 1, NOW + timedelta(seconds=60))
    assert first.last_error == "429 Too Many Requests"
    assert second.status == "pending" and connector.sent == []

    clock.now = NOW + timedelta(seconds=59)
    assert await outbox.drain("telegram", CHAT) == 0  # backing off: nothing tried
    assert connector.sent == [] and items(engine)[0].attempts == 1

    # the items' first-attempt lease (from queueing, on the wall clock) is long past by then
    clock.now = datetime.now(UTC) + timedelta(hours=1)
    assert outbox.due_chats() == [("telegram", CHAT)]
    assert await outbox.drain("telegram", CHAT) == 2
    assert connector.sent == ["một", "hai"]
    assert outbox.due_chats() == []


async def test_a_send_that_cannot_succeed_fails_the_message_and_a_block_marks_the_customer(engine):
    [message_id] = queue(engine, "Anh ơi?")
    blocked = DeliveryError("Forbidden: bot was blocked by the user", retryable=False, unreachable=True)
    outbox, published = outbox_for(engine, ScriptedConnector(blocked), Clock())

    [delivery] = await outbox.send_in_order("telegram", items(engine))

    assert (delivery.message_id, delivery.status) == (message_id, OutboxStatus.failed)
    [message] = messages(engine, [message_id])
    assert (message.delivery_status, message.delivery_error) == ("failed", "Forbidden: bot was blocked by the user")
    with Session(engine) as session:
        identity = session.exec(select(ChannelIdentity).where(ChannelIdentity.external_id == CHAT)).one()
    assert identity.reachable is False
    assert published == [{"message_id": message_id, "status": "failed",
                          "error": "Forbidden: bot was blocked by the user"}]


async def test_retries_stop_after_the_policy_s_attempts(engine):
    queue(engine, "một")
    down = [DeliveryError("502 Bad Gateway", retryable=True, retry_after=0) for _ in range(3)]
    outbox, _ = outbox_for(engine, ScriptedConnector(*down), Clock())

    for _ in range(3):
        await outbox.send_in_order("telegram", items(engine))

    [item] = items(engine)
    assert (item.status, item.attempts, item.last_error) == ("failed", 3, "502 Bad Gateway")


async def test_a_channel_that_is_not_configured_fails_its_messages(engine):
    [message_id] = queue(engine, "một")
    outbox = Outbox(engine, {}, EventBus())

    [delivery] = await outbox.send_in_order("telegram", items(engine))

    assert delivery.status == "failed"
    assert messages(engine, [message_id])[0].delivery_error == "channel telegram is not configured"
