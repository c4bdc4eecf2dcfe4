"""POST /api/orders/{code}/delivered and the care view: what delivery starts, through the real app."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from helpdesk.care.tasks import run_due_care_messages
from helpdesk.conversations.models import Conversation
from helpdesk.shop.models import Order
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.helpdesk.care.conftest import (
    API_KEY,
    bot_texts,
    local,
    make_customer,
    make_order,
    started,
    status_of,
)

KEY = {"X-Api-Key": API_KEY}


async def test_delivered_call_by_an_agent_token_marks_the_order_and_schedules_care(care_client, clock):
    engine = care_client.wiring.engine
    make_order(engine)
    make_customer(engine)
    headers = await care_client.login()

    response = await care_client.post("/api/orders/dh200001/delivered", headers=headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["newly_delivered"] is True and body["status"] == "delivered"
    assert [row["kind"] for row in body["data"]] == ["thank_you", "rating_request", "usage_tips", "check_in",
                                                     "nps"]
    due = {row["kind"]: row["due_at"] for row in body["data"]}
    assert due["rating_request"].startswith("2026-03-03T03:00")  # 24 h later, 10:00 shop time
    with Session(engine) as session:
        order = session.exec(select(Order).where(Order.code == "DH200001")).one()
    assert order.delivered_at == clock.now


async def test_delivered_call_by_the_order_system_with_its_api_key_is_accepted(care_client):
    make_order(care_client.wiring.engine)
    response = await care_client.post("/api/orders/DH200001/delivered", headers=KEY)
    assert response.status_code == 200, response.text


async def test_wrong_api_key_is_refused(care_client):
    make_order(care_client.wiring.engine)
    response = await care_client.post("/api/orders/DH200001/delivered", headers={"X-Api-Key": "guess"})
    assert response.status_code == 401
    assert status_of(care_client.wiring.engine, "DH200001") == {}


async def test_no_api_key_configured_means_no_key_matches(care_settings, clock):
    async for client in started(care_settings(integration={"api_key": ""}), clock):
        make_order(client.wiring.engine)
        response = await client.post("/api/orders/DH200001/delivered", headers={"X-Api-Key": ""})
        assert response.status_code == 401


async def test_unknown_order_is_not_found(care_client):
    response = await care_client.post("/api/orders/DH999999/delivered", headers=KEY)
    assert response.status_code == 404


async def test_cancelled_order_cannot_be_delivered(care_client):
    make_order(care_client.wiring.engine, status="cancelled")
    response = await care_client.post("/api/orders/DH200001/delivered", headers=KEY)
    assert response.status_code == 409


async def test_thank_you_is_sent_at_once_and_nothing_else_before_it_is_due(care_client):
    engine = care_client.wiring.engine
    make_order(engine)
    make_customer(engine, "cli", "cli-an")

    await care_client.post("/api/orders/DH200001/delivered", headers=KEY)
    await care_client.settle()

    texts = bot_texts(engine, "cli", "cli-an")
    assert len(texts) == 1
    assert "DH200001" in texts[0] and "Cảm ơn" in texts[0]
    assert status_of(engine, "DH200001") == {"thank_you": "sent", "rating_request": "scheduled",
                                             "usage_tips": "scheduled", "check_in": "scheduled",
                                             "nps": "scheduled"}


async def test_duplicate_delivered_events_schedule_the_sequence_once(care_client, clock):
    engine = care_client.wiring.engine
    make_order(engine)
    make_customer(engine, "cli", "cli-an")

    first = await care_client.post("/api/orders/DH200001/delivered", headers=KEY)
    await care_client.settle()
    clock.advance(minutes=5)
    second = await care_client.post("/api/orders/DH200001/delivered", headers=KEY,
                                    json={"delivered_at": clock.now.isoformat()})
    await care_client.settle()

    assert second.status_code == 200
    assert second.json()["newly_delivered"] is False
    assert second.json()["delivered_at"] == first.json()["delivered_at"]  # the first delivery time stays
    assert second.json()["count"] == 5  # the sequence with the NPS survey on day 30
    assert len(bot_texts(engine, "cli", "cli-an")) == 1


async def test_identity_named_in_the_delivered_call_is_created_linked_and_reached(care_client):
    engine = care_client.wiring.engine
    make_order(engine, phone="0987654321")  # nobody verified this phone

    response = await care_client.post("/api/orders/DH200001/delivered", headers=KEY,
                                      json={"channel": "cli", "external_id": "cli-from-order-system"})
    await care_client.settle()

    assert response.status_code == 200, response.text
    assert {row["recipient_id"] for row in response.json()["data"]} == {"cli-from-order-system"}
    assert len(bot_texts(engine, "cli", "cli-from-order-system")) == 1
    with Session(engine) as session:
        assert session.exec(select(Order)).one().customer_id is not None


async def test_order_without_a_reachable_customer_waits_for_the_phone_to_be_verified(care_client):
    engine = care_client.wiring.engine
    make_order(engine)
    customer_id, _ = make_customer(engine, "cli", "cli-late", phone=None)

    waiting = await care_client.post("/api/orders/DH200001/delivered", headers=KEY)
    assert waiting.json()["awaiting_customer"] is True and waiting.json()["count"] == 0

    await care_client.wiring.customers.link_verified_phone(customer_id, "090 123 4567")
    await run_due_care_messages(care_client.wiring.care)
    await care_client.settle()

    assert status_of(engine, "DH200001")["thank_you"] == "sent"
    assert len(bot_texts(engine, "cli", "cli-late")) == 1


async def test_rating_request_arrives_as_five_star_buttons_on_telegram(care_settings, clock):
    with FakeTelegramAPI(token="123456:TEST-TOKEN") as telegram:
        settings = care_settings(telegram={"token": telegram.token, "secret_token": "s3cret",
                                           "api_base": telegram.base_url})
        async for client in started(settings, clock):
            make_order(client.wiring.engine)
            await client.post("/api/orders/DH200001/delivered", headers=KEY,
                              json={"channel": "telegram", "external_id": "777000222"})
            await client.settle()
            clock.advance(hours=24)
            assert await run_due_care_messages(client.wiring.care) == 1
            await client.settle()

        sent = telegram.sent_messages(777000222)
    assert len(sent) == 2
    keyboard = sent[1]["reply_markup"]["inline_keyboard"]
    buttons = [button for row in keyboard for button in row]
    expected = [f"rating:order:DH200001:{stars}" for stars in range(1, 6)]
    assert [button["callback_data"] for button in buttons] == expected


async def test_care_view_shows_why_a_message_was_skipped(care_client, clock):
    engine = care_client.wiring.engine
    make_order(engine)
    make_customer(engine, "zalo_oa", "zalo-user-1", last_inbound_at=clock.now - timedelta(days=8))

    await care_client.post("/api/orders/DH200001/delivered", headers=KEY)
    await care_client.settle()
    view = await care_client.get("/api/orders/DH200001/care", headers=await care_client.login())

    thank_you = view.json()["data"][0]
    assert thank_you["status"] == "skipped"
    assert "Zalo OA" in thank_you["reason"] and "7 days" in thank_you["reason"]


@pytest.mark.parametrize("path", ["/api/orders/DH200001/care", "/api/orders/DH200001/delivered"])
async def test_order_routes_need_credentials(care_client, path):
    make_order(care_client.wiring.engine)
    method = care_client.get if path.endswith("care") else care_client.post
    assert (await method(path)).status_code == 401



async def agent_of(client, admin, email: str, team: str) -> dict[str, str]:
    """Authorization headers of a new agent in ``team``."""
    response = await client.post("/api/agents", headers=admin, json={
        "email": email, "name": email.split("@")[0], "password": "agent-pass-1", "role": "agent",
        "teams": [team]})
    assert response.status_code == 201, response.text
    return await client.login(email, "agent-pass-1")


@pytest.mark.parametrize("path", ["/api/orders/DH200001/care", "/api/orders/DH200001/delivered"])
async def test_an_order_follows_its_customer_for_agents(care_client, path):
    engine = care_client.wiring.engine
    make_order(engine)
    customer_id, identity_id = make_customer(engine)  # verified the order's phone
    with Session(engine) as session:
        session.add(Conversation(customer_id=customer_id, identity_id=identity_id, channel="cli", team="care",
                                 state="waiting_for_agent"))
        session.commit()
    admin = await care_client.login()
    care = await agent_of(care_client, admin, "order-care@test.local", "care")
    tech = await agent_of(care_client, admin, "order-tech@test.local", "technical")
    method = care_client.get if path.endswith("care") else care_client.post

    hidden = await method(path, headers=tech)
    assert hidden.status_code == 404
    assert hidden.json() == {"detail": "order DH200001 not found"}  # as for an unknown code
    assert (await method(path, headers=care)).status_code == 200
    assert (await method(path, headers=KEY)).status_code == 200  # the order system is not an agent
