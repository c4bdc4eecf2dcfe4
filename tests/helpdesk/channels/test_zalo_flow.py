"""Zalo end to end: the Official Account (signed events, token refresh kept encrypted) and the Bot API."""

from __future__ import annotations

import json
import time

import pytest
from sqlmodel import Session, func, select

from helpdesk.channels.models import ChannelCredential, InboundEvent
from tests.conftest import ROOT, start_client
from tests.fakes.zalo_api import FakeZaloBotAPI, FakeZaloOA, sign_zalo

OA_SECRET = "oa-secret-key"
BOT_SECRET = "zalo-bot-secret"
USER_ID = "2468458835296117922"


@pytest.fixture
def zalo_oa():
    with FakeZaloOA() as fake:
        yield fake


@pytest.fixture
async def oa_client(make_settings, zalo_oa):
    settings = make_settings(zalo_oa={
        "app_id": zalo_oa.app_id, "oa_secret_key": OA_SECRET, "app_secret_key": zalo_oa.app_secret_key,
        "access_token": zalo_oa.access_token, "refresh_token": zalo_oa.refresh_token,
        "api_base": zalo_oa.base_url, "oauth_base": zalo_oa.base_url})
    async for client in start_client(settings):
        yield client


def now_millis() -> str:
    """The time now as Zalo stamps its events (milliseconds, a string): older events are refused."""
    return str(time.time_ns() // 1_000_000)


def oa_event(app_id: str, text: str, msg_id: str) -> dict:
    return {"app_id": app_id, "user_id_by_app": "552177279717587730", "event_name": "user_send_text",
            "timestamp": now_millis(), "sender": {"id": USER_ID}, "recipient": {"id": "388613280878808645"},
            "message": {"text": text, "msg_id": msg_id}}


async def post_oa(client, payload: dict, app_id: str, secret: str = OA_SECRET):
    body = json.dumps(payload, ensure_ascii=False).encode()
    return await client.post("/webhooks/zalo-oa", content=body, headers={
        "X-ZEvent-Signature": sign_zalo(app_id, body, payload["timestamp"], secret),
        "Content-Type": "application/json"})


def stored_events(client) -> int:
    with Session(client.wiring.engine) as session:
        return session.exec(select(func.count()).select_from(InboundEvent)).one()


async def test_signed_oa_question_is_answered_through_the_cs_message_api(oa_client, zalo_oa):
    response = await post_oa(oa_client, oa_event(zalo_oa.app_id, "bảo hành bao lâu vậy shop", "m1"), zalo_oa.app_id)
    assert response.status_code == 200
    await oa_client.settle()
    sent = zalo_oa.sent_messages(USER_ID) or zalo_oa.sent_messages()
    assert len(sent) == 1
    assert "12 tháng" in json.dumps(sent[0], ensure_ascii=False)


async def test_oa_event_with_a_wrong_signature_is_refused_and_not_stored(oa_client, zalo_oa):
    response = await post_oa(oa_client, oa_event(zalo_oa.app_id, "alo", "m2"), zalo_oa.app_id, secret="guess")
    assert response.status_code in (401, 403)
    assert stored_events(oa_client) == 0


async def test_an_old_correctly_signed_oa_event_is_refused_as_a_replay_and_not_stored(oa_client, zalo_oa):
    event = oa_event(zalo_oa.app_id, "alo", "m-replayed")
    event["timestamp"] = str(int(event["timestamp"]) - 3600 * 1000)  # captured an hour ago
    response = await post_oa(oa_client, event, zalo_oa.app_id)
    assert response.status_code == 403
    assert "replay" in response.json()["detail"]
    assert stored_events(oa_client) == 0


async def test_receipts_are_stored_but_never_answered(oa_client, zalo_oa):
    payload = json.loads((ROOT / "tests" / "payloads" / "zalo_oa" / "user_seen_message.json").read_text())
    payload["app_id"] = zalo_oa.app_id
    payload["timestamp"] = now_millis()
    response = await post_oa(oa_client, payload, zalo_oa.app_id)
    assert response.status_code == 200
    await oa_client.settle()
    assert stored_events(oa_client) == 1
    assert zalo_oa.sent_messages() == []


async def test_expired_token_is_refreshed_once_and_the_new_pair_is_stored_encrypted(oa_client, zalo_oa):
    zalo_oa.expire_access_token()
    await post_oa(oa_client, oa_event(zalo_oa.app_id, "bảo hành bao lâu vậy shop", "m3"), zalo_oa.app_id)
    await oa_client.settle()
    assert zalo_oa.refresh_count == 1
    assert len(zalo_oa.sent_messages()) == 1
    with Session(oa_client.wiring.engine) as session:
        stored = session.get(ChannelCredential, "zalo_oa")
    assert stored is not None
    assert zalo_oa.refresh_token not in stored.ciphertext and zalo_oa.access_token not in stored.ciphertext
    tokens = await oa_client.wiring.connectors["zalo_oa"].token_store.load()
    assert (tokens.access_token, tokens.refresh_token) == (zalo_oa.access_token, zalo_oa.refresh_token)


@pytest.fixture
def zalo_bot():
    with FakeZaloBotAPI() as fake:
        yield fake


@pytest.fixture
async def bot_client(make_settings, zalo_bot):
    settings = make_settings(zalo_bot={"token": zalo_bot.token, "secret_token": BOT_SECRET,
                                       "api_base": zalo_bot.base_url})
    async for client in start_client(settings):
        yield client


@pytest.mark.parametrize("fixture", ["text_flat.json", "text_wrapped.json"])
async def test_zalo_bot_message_in_either_body_shape_is_answered_once(bot_client, zalo_bot, fixture):
    payload = json.loads((ROOT / "tests" / "payloads" / "zalo_bot" / fixture).read_text())
    headers = {"X-Bot-Api-Secret-Token": BOT_SECRET}
    assert (await bot_client.post("/webhooks/zalo-bot", json=payload, headers=headers)).status_code == 200
    assert (await bot_client.post("/webhooks/zalo-bot", json=payload, headers=headers)).json()["new"] == 0
    await bot_client.settle()
    assert len(zalo_bot.sent_messages()) == 1


async def test_zalo_bot_webhook_without_the_secret_is_refused(bot_client, zalo_bot):
    payload = json.loads((ROOT / "tests" / "payloads" / "zalo_bot" / "text_flat.json").read_text())
    response = await bot_client.post("/webhooks/zalo-bot", json=payload)
    assert response.status_code in (401, 403)
    assert stored_events(bot_client) == 0
