"""SLA test fixtures: the app on SQLite, a clock-free way to build
conversations in the database, and shop-time helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from helpdesk.conversations.models import Conversation, ConversationState
from tests.conftest import CareDeskClient, start_client

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
ALL_WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: open around the clock, so due times in app tests are plain wall-clock sums whatever day they run
ALWAYS_OPEN = {"week": {day: [{"start": "00:00", "end": "24:00"}] for day in ALL_WEEK}, "holidays": []}


def local(text: str) -> datetime:
    """A shop-time moment as aware UTC (2026-03-02 is a Monday)."""
    return datetime.fromisoformat(text).replace(tzinfo=HCM).astimezone(UTC)


@pytest.fixture
async def sla_client(make_settings) -> AsyncIterator[CareDeskClient]:
    """The app on SQLite (cli channel on) with SLA wired in."""
    async for client in start_client(make_settings()):
        yield client


async def always_open(client: CareDeskClient) -> dict[str, str]:
    """Open the shop around the clock; returns the admin's headers."""
    admin = await client.login()
    response = await client.put("/api/business-hours", headers=admin, json=ALWAYS_OPEN)
    assert response.status_code == 200, response.text
    return admin


async def escalate(client: CareDeskClient, sender: str) -> int:
    """A customer on the cli channel asks for a person; returns the conversation id."""
    response = await client.post("/webhooks/cli", json={"sender_id": sender, "message_id": f"{sender}-1",
                                                       "text": "cho mình gặp nhân viên"})
    assert response.status_code == 200, response.text
    await client.settle()
    with Session(client.wiring.engine) as session:
        conversation = session.exec(select(Conversation).order_by(Conversation.id.desc())).first()
        assert conversation.state in (ConversationState.waiting_for_agent, ConversationState.with_agent)
        return conversation.id


async def customer_says(client: CareDeskClient, sender: str, message_id: str, text: str) -> None:
    """The customer writes again on the cli channel."""
    response = await client.post("/webhooks/cli", json={"sender_id": sender, "message_id": message_id, "text": text})
    assert response.status_code == 200, response.text
    await client.settle()


async def settle_events(client: CareDeskClient) -> None:
    """Let events published from sync routes (``publish_soon``) and their listeners finish."""
    await asyncio.sleep(0)  # the routes' call_soon_threadsafe callbacks start the publishing tasks
    for _ in range(100):
        publishing = [task for task in asyncio.all_tasks() if not task.done() and getattr(
            task.get_coro(), "__qualname__", "") == "EventBus.publish"]
        if not publishing:
            break
        await asyncio.gather(*publishing)
    await client.settle()


def make_conversation(engine, *, sender: str, state: str = ConversationState.waiting_for_agent,
                      priority: str = "normal", escalated_at: datetime | None = None) -> int:
    """A conversation of a new cli customer, already with the people; returns its id."""
    from helpdesk.customers.models import ChannelIdentity, Customer

    with Session(engine) as session:
        customer = Customer(name=sender)
        session.add(customer)
        session.flush()
        identity = ChannelIdentity(customer_id=customer.id, channel="cli", external_id=sender)
        session.add(identity)
        session.flush()
        conversation = Conversation(customer_id=customer.id, identity_id=identity.id, channel="cli", state=state,
                                    priority=priority, escalated_at=escalated_at, escalation_reason="human_request")
        session.add(conversation)
        session.commit()
        return conversation.id
