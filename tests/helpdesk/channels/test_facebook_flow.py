"""Messenger end to end: handshake, signed events, batches, receipts, the 24-hour window."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlmodel import Session, func, select

from helpdesk.channels.models import InboundEvent
from helpdesk.core.db import utcnow
from helpdesk.customers.models import ChannelIdentity
from tests.conftest import ROOT, start_client
from tests.fakes.facebook_api import FakeGraphAPI, sign

APP_SECRET = "fb-app-secret"
VERIFY_TOKEN = "fb-verify-token"
PAGE_ID = "104857600123456"
PSID = "6843215790123456"
PAYLOADS = ROOT / "tests" / "payloads" / "facebook"


@pytest.fixture
def graph():
    with FakeGraphAPI(page_access_token="EAAG-page-token", page_id=PAGE_ID) as fake:
        yield fake


@pytest.fixture
async def fb_client(make_settings, graph):
    settings = make_settings(facebook={"verify_token": VERIFY_TOKEN, "app_secret": APP_SECRET,
                                       "page_access_token": "EAAG-page-token", "graph_api_base": graph.base_url})
    async for client in start_client(settings):
        yield client


def event(text: str, mid: str, psid: str = PSID) -> dict:
    return {"object": "page", "entry": [{"id": PAGE_ID, "time": 1764000000000, "messaging": [{
        "sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": 1764000000000,
        "message": {"mid": mid, "text": text}}]}]}


async def post_signed(client, payload: dict, secret: str = APP_SECRET):
    body = json.dumps(payload).encode()
    return await client.post("/webhooks/facebook", content=body,
                             headers={"X-Hub-Signature-256": sign(body, secret), "Content-Type": "application/json"})


def stored_events(client) -> int:
    with Session(client.wiring.engine) as session:
        return session.exec(select(func.count()).select_from(InboundEvent)).one()


async def test_subscription_handshake_echoes_the_challenge(fb_client):
    response = await fb_client.get("/webhooks/facebook", params={
        "hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"})
    assert response.status_code == 200 and response.text == "1158201444"


async def test_subscription_handshake_with_a_wrong_token_is_refused(fb_client):
    response = await fb_client.get("/webhooks/facebook", params={
        "hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"})
    assert response.status_code == 403


async def test_signed_question_is_answered_through_the_send_api(fb_client, graph):
    response = await post_signed(fb_client, event("bảo hành bao lâu vậy shop", "m_1"))
    assert response.status_code == 200
    await fb_client.settle()
    sent = graph.sent_messages(PSID)
    assert len(sent) == 1
    assert sent[0]["messaging_type"] == "RESPONSE"
    assert "12 tháng" in sent[0]["message"]["text"]


async def test_wrong_signature_is_refused_and_nothing_is_stored(fb_client, graph):
    response = await post_signed(fb_client, event("alo", "m_2"), secret="not-the-secret")
    assert response.status_code in (401, 403)
    assert stored_events(fb_client) == 0


async def test_every_message_of_a_batch_is_handled(fb_client, graph):
    payload = json.loads((PAYLOADS / "batch.json").read_text())
    response = await post_signed(fb_client, payload)
    assert response.status_code == 200
    await fb_client.settle()
    assert response.json()["received"] == 3
    assert stored_events(fb_client) == 3


@pytest.mark.parametrize("fixture", ["echo.json", "delivery.json", "read.json"])
async def test_echo_and_receipts_are_recorded_but_never_answered(fb_client, graph, fixture):
    payload = json.loads((PAYLOADS / fixture).read_text())
    response = await post_signed(fb_client, payload)
    assert response.status_code == 200
    await fb_client.settle()
    assert stored_events(fb_client) >= 1
    assert graph.sent_messages() == []


async def test_redelivered_event_is_answered_once(fb_client, graph):
    await post_signed(fb_client, event("bảo hành bao lâu vậy shop", "m_dup"))
    await post_signed(fb_client, event("bảo hành bao lâu vậy shop", "m_dup"))
    await fb_client.settle()
    assert len(graph.sent_messages(PSID)) == 1


async def test_agent_reply_after_the_24_hour_window_fails_visibly_without_the_tag(fb_client, graph):
    await post_signed(fb_client, event("cho mình gặp nhân viên", "m_3"))
    await fb_client.settle()
    with Session(fb_client.wiring.engine) as session:
        identity = session.exec(select(ChannelIdentity).where(ChannelIdentity.external_id == PSID)).one()
        identity.last_inbound_at = utcnow() - timedelta(hours=30)
        session.commit()
    headers = await fb_client.login()
    conversation_id = (await fb_client.get("/api/conversations", headers=headers)).json()["data"][0]["id"]
    reply = await fb_client.post(f"/api/conversations/{conversation_id}/messages", headers=headers,
                                 json={"text": "Xin lỗi đã để chị chờ"})
    await fb_client.settle()
    detail = (await fb_client.get(f"/api/conversations/{conversation_id}", headers=headers)).json()
    message = next(m for m in detail["messages"] if m["id"] == reply.json()["id"])
    assert message["delivery_status"] == "failed"
    assert "24-hour" in message["delivery_error"]
    assert len(graph.sent_messages(PSID)) == 1  # only the bot's handoff message went out


async def test_agent_reply_inside_seven_days_uses_the_human_agent_tag_when_enabled(make_settings, graph):
    settings = make_settings(facebook={"verify_token": VERIFY_TOKEN, "app_secret": APP_SECRET,
                                       "page_access_token": "EAAG-page-token", "graph_api_base": graph.base_url,
                                       "human_agent_tag": True})
    async for client in start_client(settings):
        await post_signed(client, event("cho mình gặp nhân viên", "m_4"))
        await client.settle()
        with Session(client.wiring.engine) as session:
            identity = session.exec(select(ChannelIdentity).where(ChannelIdentity.external_id == PSID)).one()
            identity.last_inbound_at = utcnow() - timedelta(hours=30)
            session.commit()
        headers = await client.login()
        conversation_id = (await client.get("/api/conversations", headers=headers)).json()["data"][0]["id"]
        await client.post(f"/api/conversations/{conversation_id}/messages", headers=headers,
                          json={"text": "Em trả lời chị đây ạ"})
        await client.settle()
        last = graph.sent_messages(PSID)[-1]
        assert last["messaging_type"] == "MESSAGE_TAG" and last["tag"] == "HUMAN_AGENT"
