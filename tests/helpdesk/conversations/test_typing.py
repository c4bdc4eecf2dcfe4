"""An agent typing in the inbox: the customer sees "typing" on their channel (Telegram's
sendChatAction, Messenger's sender_action, the Zalo Bot API's sendChatAction), throttled per
conversation, best effort, and only for an agent who may reply."""

from __future__ import annotations

import asyncio
import time

import pytest

from connectors.zalo_bot import ZaloBotConfig, ZaloBotConnector
from connectors.zalo_oa import ZaloOAConnector
from tests.connectors.test_zalo_oa import APP_ID, APP_SECRET, OA_ID, make_config
from tests.fakes.zalo_api import FakeZaloBotAPI, FakeZaloOA
from tests.helpdesk.agents.test_agent_work import make_agent
from tests.helpdesk.channels.test_facebook_flow import PSID, event, post_signed
from tests.helpdesk.channels.test_facebook_flow import fb_client, graph  # noqa: F401  (the Messenger app's fixtures)
from tests.helpdesk.channels.test_telegram_flow import CHAT_ID, post_update, telegram_update


async def telegram_conversation(client) -> int:
    response = await post_update(client, telegram_update(5001, "cho mình gặp nhân viên"))
    assert response.status_code == 200
    await client.settle()
    listed = (await client.get("/api/conversations", headers=await client.login())).json()
    return listed["data"][0]["id"]


class SteppedClock:
    """The relay's throttle clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_agent_typing_reaches_the_telegram_customer_as_send_chat_action(telegram_client, fake_telegram):
    conversation_id = await telegram_conversation(telegram_client)
    admin = await telegram_client.login()

    response = await telegram_client.post(f"/api/conversations/{conversation_id}/typing", headers=admin,
                                          json={"typing": True})
    assert response.status_code == 202 and response.json() == {"forwarded": True}
    calls = await fake_telegram.wait_for_calls("sendChatAction", 1)
    assert calls[0].params["chat_id"] == CHAT_ID
    assert calls[0].params["action"] == "typing"


async def test_typing_signals_are_throttled_per_conversation(telegram_client, fake_telegram):
    conversation_id = await telegram_conversation(telegram_client)
    admin = await telegram_client.login()
    relay = telegram_client.wiring.typing
    relay.monotonic = clock = SteppedClock()
    path = f"/api/conversations/{conversation_id}/typing"

    first = await telegram_client.post(path, headers=admin, json={"typing": True})
    clock.now += 1.0
    second = await telegram_client.post(path, headers=admin, json={"typing": True})
    clock.now += relay.interval_s
    third = await telegram_client.post(path, headers=admin, json={"typing": True})
    await relay.wait_idle()

    assert [r.json()["forwarded"] for r in (first, second, third)] == [True, False, True]
    assert len(fake_telegram.calls_to("sendChatAction")) == 2


async def test_a_slow_platform_does_not_hold_up_the_typing_request(telegram_client, fake_telegram):
    conversation_id = await telegram_conversation(telegram_client)
    admin = await telegram_client.login()
    fake_telegram.delay_next("sendChatAction", 3.0)

    started = time.perf_counter()
    response = await telegram_client.post(f"/api/conversations/{conversation_id}/typing", headers=admin)
    assert response.status_code == 202 and response.json() == {"forwarded": True}  # no body: typing
    assert time.perf_counter() - started < 1.5
    await telegram_client.wiring.typing.wait_idle()


async def test_a_refused_typing_indicator_is_not_retried_and_does_not_fail_the_request(telegram_client,
                                                                                      fake_telegram):
    conversation_id = await telegram_conversation(telegram_client)
    admin = await telegram_client.login()
    fake_telegram.fail_next("sendChatAction", 500)

    response = await telegram_client.post(f"/api/conversations/{conversation_id}/typing", headers=admin, json={})
    await telegram_client.wiring.typing.wait_idle()
    await telegram_client.settle()

    assert response.status_code == 202
    assert len(fake_telegram.calls_to("sendChatAction")) == 1


async def test_an_agent_who_may_not_reply_cannot_signal_typing(telegram_client, fake_telegram):
    conversation_id = await telegram_conversation(telegram_client)
    admin = await telegram_client.login()
    owner_id, _owner = await make_agent(telegram_client, admin, "owner@test.local")
    _, other = await make_agent(telegram_client, admin, "other@test.local")
    assigned = await telegram_client.post(f"/api/conversations/{conversation_id}/assign", headers=admin,
                                          json={"agent_id": owner_id})
    assert assigned.status_code == 200, assigned.text

    refused = await telegram_client.post(f"/api/conversations/{conversation_id}/typing", headers=other, json={})
    assert refused.status_code == 403
    assert "assigned to another agent" in refused.json()["detail"]
    missing = await telegram_client.post("/api/conversations/999999/typing", headers=admin, json={})
    assert missing.status_code == 404
    bad = await telegram_client.post(f"/api/conversations/{conversation_id}/typing", headers=admin,
                                     json={"typing": "maybe"})
    assert bad.status_code == 422
    await telegram_client.post(f"/api/conversations/{conversation_id}/resolve", headers=admin)
    resolved = await telegram_client.post(f"/api/conversations/{conversation_id}/typing", headers=admin, json={})
    assert resolved.status_code == 409
    await telegram_client.wiring.typing.wait_idle()
    assert fake_telegram.calls_to("sendChatAction") == []


async def test_messenger_customer_sees_typing_on_and_off_around_the_reply(fb_client, graph):
    await post_signed(fb_client, event("cho mình gặp nhân viên", "m_typing_1"))
    await fb_client.settle()
    admin = await fb_client.login()
    conversation_id = (await fb_client.get("/api/conversations", headers=admin)).json()["data"][0]["id"]
    path = f"/api/conversations/{conversation_id}/typing"

    on = await fb_client.post(path, headers=admin, json={"typing": True})
    await fb_client.wiring.typing.wait_idle()
    replied = await fb_client.post(f"/api/conversations/{conversation_id}/messages", headers=admin,
                                   json={"text": "Chào bạn, mình là Hạnh đây ạ"})
    await fb_client.wiring.typing.wait_idle()
    await fb_client.settle()
    # stopping without sending: the indicator goes off too, and once only
    again = await fb_client.post(path, headers=admin, json={"typing": True})
    stopped = await fb_client.post(path, headers=admin, json={"typing": False})
    twice = await fb_client.post(path, headers=admin, json={"typing": False})
    await fb_client.wiring.typing.wait_idle()

    assert on.json() == {"forwarded": True} and replied.status_code == 201
    assert [again.json()["forwarded"], stopped.json()["forwarded"], twice.json()["forwarded"]] == [True, True, False]
    to_customer = [call.body for call in graph.calls
                   if call.path.endswith("/me/messages") and call.body.get("recipient", {}).get("id") == PSID]
    actions = [body["sender_action"] for body in to_customer if "sender_action" in body]
    # the reply hid the first indicator; the stop without a reply hid the second
    assert actions == ["typing_on", "typing_off", "typing_on", "typing_off"]
    assert any(body.get("message", {}).get("text") == "Chào bạn, mình là Hạnh đây ạ" for body in to_customer)


async def test_zalo_bot_typing_is_send_chat_action():
    with FakeZaloBotAPI() as fake:
        connector = ZaloBotConnector(ZaloBotConfig(token=fake.token, api_base=fake.base_url))
        try:
            await connector.typing_on("zalo-chat-1")
        finally:
            await connector.close()
        calls = fake.calls_to("sendChatAction")

    assert [(call.body["chat_id"], call.body["action"]) for call in calls] == [("zalo-chat-1", "typing")]


async def test_zalo_oa_has_no_typing_indicator_so_nothing_is_sent():
    with FakeZaloOA(app_id=APP_ID, app_secret_key=APP_SECRET, oa_id=OA_ID) as fake:
        connector = ZaloOAConnector(make_config(fake))
        try:
            await connector.typing_on("zalo-user-1")
            await connector.send_text("zalo-user-1", "xin chào")
        finally:
            await connector.close()
        endpoints = [call.endpoint for call in fake.calls]

    assert endpoints == ["message"]


async def test_replicas_sharing_redis_forward_one_typing_per_interval_between_them(redis_url):
    import redis.asyncio as aioredis

    from connectors.webchat import InMemoryWebchatHub, WebchatConnector
    from helpdesk.conversations.typing import TypingRelay

    hub = InMemoryWebchatHub()
    widget = WebchatConnector(hub)
    tab = await hub.subscribe("visitor-1")
    clients = [aioredis.from_url(redis_url, decode_responses=True) for _ in range(2)]
    first, second = (TypingRelay({"webchat": widget}) for _ in range(2))
    for relay, client in zip((first, second), clients):
        relay.share_across_replicas(client)
    try:
        forwarded = [
            await first.signal(41, "webchat", "visitor-1", True),
            await second.signal(41, "webchat", "visitor-1", True),  # the other replica, within the interval
            await second.signal(41, "webchat", "visitor-1", False),  # stops what the first one showed
            await first.signal(41, "webchat", "visitor-1", False),  # nothing left to hide
            await first.signal(41, "webchat", "visitor-1", True),  # typing again after a stop: at once
        ]
        await first.wait_idle()
        await second.wait_idle()
        frames = [await asyncio.wait_for(tab.get(), 1) for _ in range(3)]
    finally:
        for client in clients:
            await client.aclose()

    assert forwarded == [True, False, True, False, True]
    assert frames == [{"type": "typing", "on": True}, {"type": "typing", "on": False}, {"type": "typing", "on": True}]
    with pytest.raises(asyncio.TimeoutError):  # and nothing more
        await asyncio.wait_for(tab.get(), 0.2)
