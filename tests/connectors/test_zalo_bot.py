"""The Zalo Bot Platform connector against saved events and a loopback Bot API (real httpx, no mocks)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.base import (
    DeliveryError,
    OutboundRatingRequest,
    PayloadError,
    VerificationError,
    WebhookRequest,
)
from connectors.zalo_bot import ZaloBotConfig, ZaloBotConnector
from tests.fakes.zalo_api import FakeZaloBotAPI

PAYLOADS = Path(__file__).parents[1] / "payloads" / "zalo_bot"
TOKEN = "1234567890:zalo-bot-test-token"
SECRET = "zalo-bot-webhook-secret"
CUSTOMER_CHAT = "6ede9afa66b88fe6d6a9"


def load_event(name: str) -> dict[str, Any]:
    """A saved Zalo bot event from tests/payloads/zalo_bot."""
    return json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))


def webhook(headers: dict[str, str]) -> WebhookRequest:
    """A webhook request carrying the text event and the given headers."""
    return WebhookRequest(headers=headers, body=(PAYLOADS / "text_flat.json").read_bytes())


@pytest.fixture
def bot_api():
    """A fresh loopback Zalo Bot API for the test's bot token."""
    with FakeZaloBotAPI(token=TOKEN) as fake:
        yield fake


@pytest.fixture
async def connector(bot_api):
    """A connector pointed at the fake, with a short timeout so timeouts are quick to provoke."""
    connector = ZaloBotConnector(
        ZaloBotConfig(token=TOKEN, secret_token=SECRET, api_base=bot_api.base_url, request_timeout_s=0.5)
    )
    yield connector
    await connector.close()


@pytest.fixture
def offline_connector():
    """A connector for verify and parse, which never touch the network."""
    return ZaloBotConnector(ZaloBotConfig(token=TOKEN, secret_token=SECRET, api_base="http://127.0.0.1:9"))


# -- verify -----------------------------------------------------------------------------------------


async def test_webhook_with_the_configured_secret_is_accepted(offline_connector):
    await offline_connector.verify(webhook({"x-bot-api-secret-token": SECRET}))


async def test_webhook_with_a_wrong_secret_is_refused(offline_connector):
    with pytest.raises(VerificationError) as refused:
        await offline_connector.verify(webhook({"X-Bot-Api-Secret-Token": SECRET + "x"}))
    assert refused.value.status == 403


async def test_webhook_without_the_secret_header_is_refused(offline_connector):
    with pytest.raises(VerificationError, match="missing"):
        await offline_connector.verify(webhook({"Content-Type": "application/json"}))


async def test_webhooks_are_refused_when_no_secret_is_configured():
    connector = ZaloBotConnector(ZaloBotConfig(token=TOKEN))

    with pytest.raises(VerificationError, match="SECRET_TOKEN"):
        await connector.verify(webhook({"X-Bot-Api-Secret-Token": ""}))


def test_connector_is_enabled_only_with_a_token():
    assert ZaloBotConnector(ZaloBotConfig(token=TOKEN)).enabled
    assert not ZaloBotConnector(ZaloBotConfig()).enabled


# -- parse ------------------------------------------------------------------------------------------


def test_text_message_keeps_vietnamese_text_chat_and_time(offline_connector):
    [message] = offline_connector.parse(load_event("text_flat"))

    assert message.kind == "message"
    assert message.channel == "zalo_bot"
    assert message.sender_id == CUSTOMER_CHAT
    assert message.sender_name == "Nguyễn Thị Hương"
    assert message.external_id == "2d758cb5e0c5ac9bf5d2"
    assert message.text == "Shop ơi, bảo hành máy xay sinh tố mấy tháng ạ?"
    assert message.timestamp == datetime(2024, 11, 25, 8, 0, tzinfo=UTC)
    assert message.metadata["chat_type"] == "PRIVATE"
    assert message.answerable


def test_documented_wrapped_body_and_real_flat_body_parse_alike(offline_connector):
    wrapped = offline_connector.parse(load_event("text_wrapped"))
    flat = offline_connector.parse(load_event("text_flat"))

    assert wrapped == flat


def test_redelivered_message_has_the_same_external_id(offline_connector):
    [first] = offline_connector.parse(load_event("text_flat"))
    [again] = offline_connector.parse(load_event("text_flat"))
    [other] = offline_connector.parse(load_event("image"))

    assert first.external_id == again.external_id
    assert first.external_id != other.external_id


def test_image_keeps_its_url_and_caption(offline_connector):
    [message] = offline_connector.parse(load_event("image"))

    assert message.kind == "message"
    assert message.text == "Máy xay bị nứt cối"
    [image] = message.attachments
    assert image.kind == "image"
    assert image.url == "https://f21-zpc.zdn.vn/jpg/8150238573941528041/3c5d2f0e9a1b.jpg"


def test_image_url_is_read_from_photo_url_as_real_webhooks_send_it(offline_connector):
    event = load_event("image")["result"]
    event["message"]["photo_url"] = event["message"].pop("photo")
    event["message"]["message_type"] = "CHAT_PHOTO"

    [message] = offline_connector.parse(event)

    assert message.attachments[0].url == "https://f21-zpc.zdn.vn/jpg/8150238573941528041/3c5d2f0e9a1b.jpg"


def test_sticker_is_a_message_with_a_sticker_attachment(offline_connector):
    event = load_event("text_flat")
    event["event_name"] = "message.sticker.received"
    del event["message"]["text"]
    event["message"]["sticker"] = "bfe458bf64fa8da4d4eb"

    [message] = offline_connector.parse(event)

    assert message.kind == "message"
    [sticker] = message.attachments
    assert (sticker.kind, sticker.file_id) == ("sticker", "bfe458bf64fa8da4d4eb")


def test_unsupported_message_for_protected_users_is_recorded_not_answered(offline_connector):
    event = load_event("text_flat")
    event["event_name"] = "message.unsupported.received"
    del event["message"]["text"]

    [message] = offline_connector.parse(event)

    assert message.kind == "unsupported"
    assert not message.answerable
    assert message.sender_id == CUSTOMER_CHAT


def test_unknown_event_without_a_message_is_unsupported(offline_connector):
    [event] = offline_connector.parse({"event_name": "bot.removed", "chat_id": CUSTOMER_CHAT})

    assert event.kind == "unsupported"
    assert event.external_id.startswith("bot.removed:")


def test_unknown_event_with_a_lone_surrogate_still_gets_an_id(offline_connector):
    [event] = offline_connector.parse({"event_name": "bot.removed", "chat_id": CUSTOMER_CHAT, "note": "\ud800"})

    assert event.external_id.startswith("bot.removed:")


def test_message_from_another_bot_is_never_answered(offline_connector):
    event = load_event("text_flat")
    event["message"]["from"]["is_bot"] = True

    [message] = offline_connector.parse(event)

    assert not message.answerable


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(["message.text.received"], id="not-an-object"),
        pytest.param({"ok": True, "result": "nothing"}, id="result-not-an-object"),
        pytest.param({"message": {"message_id": "m"}}, id="no-event-name"),
        pytest.param({"event_name": "message.text.received"}, id="text-without-message"),
        pytest.param({"event_name": "message.text.received", "message": {"text": "hi", "chat": {"id": "c"}}},
                     id="no-message-id"),
        pytest.param({"event_name": "message.text.received", "message": {"text": "hi", "message_id": "m"}},
                     id="no-chat-or-sender"),
        pytest.param({"event_name": "message.text.received", "message": {
            "text": "hi", "message_id": "m", "chat": {"id": "c"}, "date": "hôm qua"}},
            id="date-not-a-number"),
    ],
)
def test_malformed_event_is_refused_with_a_reason(offline_connector, payload):
    with pytest.raises(PayloadError) as refused:
        offline_connector.parse(payload)
    assert refused.value.reason
    assert refused.value.status == 422


# -- send -------------------------------------------------------------------------------------------


async def test_send_text_calls_send_message_and_returns_its_message_id(connector, bot_api):
    message_id = await connector.send_text(CUSTOMER_CHAT, "Máy xay được bảo hành 12 tháng ạ.")

    [call] = bot_api.calls_to("sendMessage")
    assert call.token == TOKEN
    assert call.body == {"chat_id": CUSTOMER_CHAT, "text": "Máy xay được bảo hành 12 tháng ạ."}
    assert bot_api.sent_messages(chat_id=CUSTOMER_CHAT) == [call.body]
    assert len(message_id) == 32


async def test_rating_request_becomes_numbered_text(connector, bot_api):
    request = OutboundRatingRequest(recipient_id=CUSTOMER_CHAT, text="Đánh giá?", subject="conv-1")

    await connector.send(request)

    [sent] = bot_api.sent_messages()
    assert sent["text"] == "Đánh giá?\n\n1. ⭐\n2. ⭐⭐\n3. ⭐⭐⭐\n4. ⭐⭐⭐⭐\n5. ⭐⭐⭐⭐⭐"


async def test_set_webhook_registers_the_url_with_the_secret(connector, bot_api):
    assert await connector.set_webhook("https://care.example.vn/webhooks/zalo_bot")

    assert bot_api.webhook == {"url": "https://care.example.vn/webhooks/zalo_bot", "secret_token": SECRET}


async def test_set_webhook_is_refused_without_a_secret(bot_api):
    connector = ZaloBotConnector(ZaloBotConfig(token=TOKEN, api_base=bot_api.base_url))

    with pytest.raises(DeliveryError, match="SECRET_TOKEN"):
        await connector.set_webhook("https://care.example.vn/webhooks/zalo_bot")

    assert bot_api.calls == []


# -- delivery errors --------------------------------------------------------------------------------


async def test_rate_limit_is_retryable_after_the_delay_zalo_asks_for(connector, bot_api):
    bot_api.fail_next("sendMessage", 429, retry_after=5)

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER_CHAT, "Xin chào")

    assert failed.value.retryable
    assert failed.value.retry_after == 5
    assert failed.value.code == 429


async def test_rate_limit_without_a_delay_is_still_retryable(connector, bot_api):
    bot_api.fail_next("sendMessage", 429)

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER_CHAT, "Xin chào")

    assert failed.value.retryable
    assert failed.value.retry_after is None


async def test_customer_who_blocked_the_bot_is_marked_unreachable(connector, bot_api):
    bot_api.fail_next("sendMessage", 403)

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER_CHAT, "Xin chào")

    assert failed.value.unreachable
    assert not failed.value.retryable
    assert failed.value.code == 403
    assert failed.value.reason == "Forbidden: the user has blocked the bot"


async def test_wrong_token_is_not_retryable_and_names_the_setting_without_leaking_it(bot_api):
    connector = ZaloBotConnector(ZaloBotConfig(token="999:wrong-token", api_base=bot_api.base_url))
    try:
        with pytest.raises(DeliveryError) as failed:
            await connector.send_text(CUSTOMER_CHAT, "Xin chào")
    finally:
        await connector.close()

    assert not failed.value.retryable
    assert failed.value.code == 401
    assert "CAREDESK_ZALO_BOT__TOKEN" in failed.value.reason
    assert "wrong-token" not in failed.value.reason


@pytest.mark.parametrize("status", [500, 502])
async def test_server_error_is_retryable(connector, bot_api, status):
    bot_api.fail_next("sendMessage", status)

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER_CHAT, "Xin chào")

    assert failed.value.retryable
    assert failed.value.code == status


async def test_request_timeout_is_retryable(connector, bot_api):
    bot_api.delay_next(2.0, "sendMessage")

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER_CHAT, "Xin chào")

    assert failed.value.retryable
    assert failed.value.code == "timeout"


async def test_bad_request_is_not_retryable_and_keeps_zalos_description(connector, bot_api):
    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER_CHAT, "x" * 2001)

    assert not failed.value.retryable
    assert not failed.value.unreachable
    assert failed.value.code == 400
    assert failed.value.reason == "Bad Request: text is too long"
