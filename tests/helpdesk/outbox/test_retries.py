"""Outbound delivery through the running app: retries, ordering per chat, rate limits, blocked customers,
manual retry."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlmodel import Session, select

from helpdesk.customers.models import ChannelIdentity
from tests.conftest import TELEGRAM_SECRET, start_client
from tests.helpdesk.channels.test_telegram_flow import CHAT_ID, post_update, telegram_update


@pytest.fixture
async def fast_retry_client(make_settings, fake_telegram):
    settings = make_settings(
        telegram={"token": fake_telegram.token, "secret_token": TELEGRAM_SECRET, "api_base": fake_telegram.base_url},
        outbox={"base_backoff_s": 0.05, "max_backoff_s": 0.2, "pump_interval_s": 0.05, "max_attempts": 4},
    )
    async for client in start_client(settings):
        yield client


async def escalated_conversation(client) -> tuple[int, dict[str, str]]:
    await post_update(client, telegram_update(8001, "cho mình gặp nhân viên"))
    await client.settle()
    headers = await client.login()
    conversation_id = (await client.get("/api/conversations", headers=headers)).json()["data"][0]["id"]
    return conversation_id, headers


async def agent_says(client, conversation_id: int, headers: dict[str, str], text: str) -> dict:
    response = await client.post(f"/api/conversations/{conversation_id}/messages", json={"text": text},
                                 headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def message_state(client, conversation_id, headers, message_id) -> dict:
    detail = (await client.get(f"/api/conversations/{conversation_id}", headers=headers)).json()
    return next(m for m in detail["messages"] if m["id"] == message_id)


async def test_server_error_is_retried_until_the_message_is_sent(fast_retry_client, fake_telegram):
    conversation_id, headers = await escalated_conversation(fast_retry_client)
    fake_telegram.fail_next("sendMessage", 502, times=2)
    message = await agent_says(fast_retry_client, conversation_id, headers, "Em kiểm tra ngay ạ")

    async def sent() -> bool:
        return (await message_state(fast_retry_client, conversation_id, headers, message["id"]))[
            "delivery_status"] == "sent"

    await wait_until(sent)
    texts = [m["text"] for m in fake_telegram.sent_messages(CHAT_ID)]
    assert texts.count("Em kiểm tra ngay ạ") == 1


async def test_a_retrying_message_holds_back_later_ones_so_order_is_kept(fast_retry_client, fake_telegram):
    conversation_id, headers = await escalated_conversation(fast_retry_client)
    fake_telegram.fail_next("sendMessage", 500, times=2)
    for text in ("một", "hai", "ba"):
        await agent_says(fast_retry_client, conversation_id, headers, text)

    async def all_sent() -> bool:
        return [m["text"] for m in fake_telegram.sent_messages(CHAT_ID)][-3:] == ["một", "hai", "ba"]

    await wait_until(all_sent)
    assert [m["text"] for m in fake_telegram.sent_messages(CHAT_ID)].count("hai") == 1


async def test_rate_limit_retry_after_is_honoured(fast_retry_client, fake_telegram):
    conversation_id, headers = await escalated_conversation(fast_retry_client)
    fake_telegram.fail_next("sendMessage", 429, retry_after=1)
    started = time.monotonic()
    message = await agent_says(fast_retry_client, conversation_id, headers, "Chờ em chút nhé")

    async def sent() -> bool:
        return (await message_state(fast_retry_client, conversation_id, headers, message["id"]))[
            "delivery_status"] == "sent"

    await wait_until(sent)
    assert time.monotonic() - started >= 0.95


async def test_blocked_bot_marks_the_customer_unreachable_and_the_failure_is_shown(fast_retry_client,
                                                                                  fake_telegram):
    conversation_id, headers = await escalated_conversation(fast_retry_client)
    fake_telegram.fail_next("sendMessage", 403, description="Forbidden: bot was blocked by the user")
    message = await agent_says(fast_retry_client, conversation_id, headers, "Anh ơi?")
    await fast_retry_client.settle()
    state = await message_state(fast_retry_client, conversation_id, headers, message["id"])
    assert state["delivery_status"] == "failed"
    assert "blocked" in state["delivery_error"]
    assert state["delivery_error_kind"] == "blocked"  # the inbox says it in the agent's language
    with Session(fast_retry_client.wiring.engine) as session:
        identity = session.exec(select(ChannelIdentity).where(ChannelIdentity.external_id == str(CHAT_ID))).one()
        assert identity.reachable is False


async def test_a_failed_message_can_be_retried_by_the_agent(fast_retry_client, fake_telegram):
    conversation_id, headers = await escalated_conversation(fast_retry_client)
    fake_telegram.fail_next("sendMessage", 400, description="Bad Request: chat not found")
    message = await agent_says(fast_retry_client, conversation_id, headers, "Lần hai sẽ tới")
    await fast_retry_client.settle()
    failed = await message_state(fast_retry_client, conversation_id, headers, message["id"])
    assert (failed["delivery_status"], failed["delivery_error_kind"]) == ("failed", "unknown")
    retried = await fast_retry_client.post(
        f"/api/conversations/{conversation_id}/messages/{message['id']}/retry", headers=headers)
    assert retried.status_code == 200
    await fast_retry_client.settle()
    sent = await message_state(fast_retry_client, conversation_id, headers, message["id"])
    assert (sent["delivery_status"], sent["delivery_error_kind"]) == ("sent", None)
    assert fake_telegram.sent_messages(CHAT_ID)[-1]["text"] == "Lần hai sẽ tới"


async def test_only_failed_messages_can_be_retried(fast_retry_client, fake_telegram):
    conversation_id, headers = await escalated_conversation(fast_retry_client)
    message = await agent_says(fast_retry_client, conversation_id, headers, "ok")
    await fast_retry_client.settle()
    retried = await fast_retry_client.post(
        f"/api/conversations/{conversation_id}/messages/{message['id']}/retry", headers=headers)
    assert retried.status_code == 409
