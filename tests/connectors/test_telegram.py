"""The Telegram connector against saved updates and a loopback Bot API (aiogram's real client)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.base import (
    Button,
    ChannelConnector,
    DeliveryError,
    InboundMessage,
    OutboundButtons,
    OutboundRatingRequest,
    PayloadError,
    VerificationError,
    WebhookRequest,
    parse_rating_payload,
)
from connectors.telegram import TelegramConfig, TelegramConnector
from tests.fakes import FakeTelegramAPI

PAYLOADS = Path(__file__).parents[1] / "payloads" / "telegram"
TOKEN = "123456:TEST"
SECRET = "wh-secret_0123456789"
CUSTOMER_CHAT = "5123456789"


def load_update(name: str) -> dict[str, Any]:
    """A saved Telegram Update from tests/payloads/telegram."""
    return json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))


def webhook(headers: dict[str, str]) -> WebhookRequest:
    """A webhook request carrying the text-message update and the given headers."""
    return WebhookRequest(headers=headers, body=(PAYLOADS / "text_message.json").read_bytes())


@pytest.fixture
def telegram_api():
    """A fresh loopback Bot API for the test's bot token."""
    with FakeTelegramAPI(token=TOKEN) as fake:
        yield fake


@pytest.fixture
async def connector(telegram_api):
    """A connector pointed at the fake, with a short timeout so timeouts are quick to provoke."""
    config = TelegramConfig(
        token=TOKEN, secret_token=SECRET, api_base=telegram_api.base_url, request_timeout_s=0.5
    )
    connector = TelegramConnector(config)
    yield connector
    await connector.close()


@pytest.fixture
def offline_connector():
    """A connector for verify and parse, which never touch the network."""
    return TelegramConnector(TelegramConfig(token=TOKEN, secret_token=SECRET, api_base="http://127.0.0.1:9"))


# -- verify -----------------------------------------------------------------------------------------


async def test_webhook_with_the_configured_secret_is_accepted(offline_connector):
    await offline_connector.verify(webhook({"x-telegram-bot-api-secret-token": SECRET}))


async def test_webhook_with_a_wrong_secret_is_refused(offline_connector):
    with pytest.raises(VerificationError) as refused:
        await offline_connector.verify(webhook({"X-Telegram-Bot-Api-Secret-Token": SECRET + "x"}))
    assert refused.value.status == 403


async def test_webhook_without_the_secret_header_is_refused(offline_connector):
    with pytest.raises(VerificationError, match="missing"):
        await offline_connector.verify(webhook({"Content-Type": "application/json"}))


async def test_webhooks_are_refused_when_no_secret_is_configured():
    connector = TelegramConnector(TelegramConfig(token=TOKEN))
    with pytest.raises(VerificationError, match="SECRET_TOKEN"):
        await connector.verify(webhook({"X-Telegram-Bot-Api-Secret-Token": ""}))


def test_connector_is_enabled_only_with_a_token_and_builds_without_an_event_loop():
    assert TelegramConnector(TelegramConfig(token=TOKEN)).enabled
    assert not TelegramConnector(TelegramConfig()).enabled


# -- parse ------------------------------------------------------------------------------------------


def test_text_message_keeps_vietnamese_text_sender_and_time(offline_connector):
    [message] = offline_connector.parse(load_update("text_message"))

    assert message.kind == "message"
    assert message.channel == "telegram"
    assert message.external_id == "815467201"
    assert message.sender_id == CUSTOMER_CHAT
    assert message.sender_name == "Nguyễn Thị Hương"
    assert message.text.startswith("Chào shop, đơn hàng #DH10234")
    assert message.timestamp == datetime(2024, 11, 25, 8, 0, tzinfo=UTC)
    assert message.metadata["message_id"] == 1024
    assert message.answerable


def test_photo_becomes_the_largest_image_with_its_caption_as_text(offline_connector):
    [message] = offline_connector.parse(load_update("photo_with_caption"))

    assert message.text == "Ảnh nồi bị móp khi nhận hàng"
    [image] = message.attachments
    assert image.kind == "image"
    assert image.file_id == "AgACAgUAAxkBAAIEAWdEn1-large"


def test_document_becomes_a_file_with_name_and_mime_type(offline_connector):
    [message] = offline_connector.parse(load_update("document"))

    assert message.kind == "message"
    assert message.text == ""
    [document] = message.attachments
    assert (document.kind, document.name, document.mime_type, document.file_id) == (
        "file",
        "hoa-don-DH10234.pdf",
        "application/pdf",
        "BQACAgUAAxkBAAIEAmdEn5-hoadon",
    )


def test_rating_button_press_is_a_postback_carrying_the_rating(offline_connector):
    [press] = offline_connector.parse(load_update("callback_rating"))

    assert press.kind == "postback"
    assert press.external_id == "815467204"
    assert press.sender_id == CUSTOMER_CHAT
    assert press.reply_token == "2200452318840736817"
    assert press.text == press.payload == "rating:conv-1:5"
    assert parse_rating_payload(press.payload) == ("conv-1", 5)


def test_edited_message_is_a_message_marked_edited_at_its_edit_time(offline_connector):
    [message] = offline_connector.parse(load_update("edited_message"))

    assert message.kind == "message"
    assert "#DH10235" in message.text
    assert message.metadata["edited"] is True
    assert message.timestamp == datetime(2024, 11, 25, 8, 0, 45, tzinfo=UTC)


def test_bot_membership_change_is_recorded_as_unsupported_and_not_answered(offline_connector):
    [event] = offline_connector.parse(load_update("my_chat_member"))

    assert event.kind == "unsupported"
    assert not event.answerable
    assert event.external_id == "815467206"
    assert event.sender_id == CUSTOMER_CHAT
    assert event.metadata["update_type"] == "my_chat_member"


def test_shared_phone_number_is_kept_for_order_lookup(offline_connector):
    update = load_update("text_message")
    del update["message"]["text"]
    update["message"]["contact"] = {"phone_number": "+84901234567", "first_name": "Hương", "user_id": 5123456789}

    [message] = offline_connector.parse(update)

    assert message.kind == "message"
    assert message.metadata["contact"]["phone_number"] == "+84901234567"


def test_service_message_without_content_is_unsupported(offline_connector):
    update = load_update("text_message")
    del update["message"]["text"]
    update["message"]["new_chat_title"] = "Hỗ trợ đơn hàng"

    [message] = offline_connector.parse(update)

    assert message.kind == "unsupported"


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param([{"update_id": 1}], id="not-an-object"),
        pytest.param("update", id="a-string"),
        pytest.param({"message": {"message_id": 1}}, id="no-update-id"),
        pytest.param({"update_id": "abc"}, id="update-id-not-a-number"),
        pytest.param({"update_id": 9, "message": {"message_id": 1, "text": "hi"}}, id="message-without-chat"),
        pytest.param({"update_id": 9, "callback_query": {"id": "1"}}, id="callback-without-sender"),
    ],
)
def test_malformed_update_is_refused_with_a_reason(offline_connector, payload):
    with pytest.raises(PayloadError) as refused:
        offline_connector.parse(payload)
    assert refused.value.reason
    assert refused.value.status == 422


# -- send -------------------------------------------------------------------------------------------


async def test_send_text_reaches_the_chat_and_returns_telegrams_message_id(connector, telegram_api):
    first = await connector.send_text(CUSTOMER_CHAT, "Đơn #DH10234 đang được giao, dự kiến ngày mai ạ.")
    second = await connector.send_text(CUSTOMER_CHAT, "Cảm ơn bạn!")

    [sent, _] = telegram_api.sent_messages(chat_id=CUSTOMER_CHAT)
    assert sent["chat_id"] == int(CUSTOMER_CHAT)
    assert sent["text"] == "Đơn #DH10234 đang được giao, dự kiến ngày mai ạ."
    assert "parse_mode" not in sent
    assert (first, second) == ("1", "2")


async def test_reply_quotes_the_customer_message_when_it_still_exists(connector, telegram_api):
    await connector.send_text(CUSTOMER_CHAT, "Dạ vâng", reply_to="1024")

    [sent] = telegram_api.sent_messages()
    assert sent["reply_parameters"] == {"message_id": 1024, "allow_sending_without_reply": True}


async def test_rating_request_shows_five_star_buttons_on_one_row(connector, telegram_api):
    request = OutboundRatingRequest(
        recipient_id=CUSTOMER_CHAT, text="Bạn đánh giá hỗ trợ thế nào?", subject="conv-1"
    )

    message_id = await connector.send(request)

    [sent] = telegram_api.sent_messages()
    [row] = sent["reply_markup"]["inline_keyboard"]
    assert [button["callback_data"] for button in row] == [f"rating:conv-1:{stars}" for stars in range(1, 6)]
    assert row[4]["text"] == "⭐⭐⭐⭐⭐"
    assert message_id == "1"


async def test_other_buttons_are_stacked_one_per_row(connector, telegram_api):
    menu = OutboundButtons(
        recipient_id=CUSTOMER_CHAT,
        text="Bạn cần hỗ trợ gì?",
        buttons=(
            Button(title="Tra cứu đơn hàng", payload="order_status"),
            Button(title="Bảo hành", payload="warranty"),
        ),
    )

    await connector.send(menu)

    keyboard = telegram_api.sent_messages()[0]["reply_markup"]["inline_keyboard"]
    assert keyboard == [
        [{"text": "Tra cứu đơn hàng", "callback_data": "order_status"}],
        [{"text": "Bảo hành", "callback_data": "warranty"}],
    ]


async def test_button_payload_over_64_bytes_is_refused_before_calling_telegram(connector, telegram_api):
    with pytest.raises(DeliveryError) as failed:
        await connector.send_buttons(CUSTOMER_CHAT, "Chọn", (Button(title="x", payload="p" * 65),))

    assert not failed.value.retryable
    assert telegram_api.calls == []


class _TextOnlyChannel(ChannelConnector):
    """The smallest channel: it can only send text."""

    name = "text-only"

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def verify(self, request: WebhookRequest) -> None:
        """Accept everything."""

    def parse(self, payload: Any) -> list[InboundMessage]:
        """Nothing to parse."""
        return []

    async def send_text(self, recipient_id: str, text: str, *, reply_to: str | None = None) -> str:
        """Remember the text."""
        self.sent.append(text)
        return str(len(self.sent))


async def test_buttons_become_numbered_text_on_a_channel_without_buttons():
    channel = _TextOnlyChannel()

    await channel.send(OutboundRatingRequest(recipient_id="c1", text="Đánh giá?", subject="conv-1"))

    assert channel.sent == ["Đánh giá?\n\n1. ⭐\n2. ⭐⭐\n3. ⭐⭐⭐\n4. ⭐⭐⭐⭐\n5. ⭐⭐⭐⭐⭐"]


# -- delivery errors --------------------------------------------------------------------------------


async def test_flood_limit_is_retryable_after_the_delay_telegram_asks_for(connector, telegram_api):
    telegram_api.fail_next("sendMessage", 429, retry_after=7)

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER_CHAT, "Xin chào")

    assert failed.value.retryable
    assert failed.value.retry_after == 7
    assert failed.value.code == 429
    assert failed.value.reason == "Too Many Requests: retry after 7"
    assert telegram_api.sent_messages() == []


async def test_bot_blocked_by_the_customer_marks_them_unreachable(connector, telegram_api):
    telegram_api.fail_next("sendMessage", 403)

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER_CHAT, "Xin chào")

    assert failed.value.unreachable
    assert not failed.value.retryable
    assert failed.value.code == 403
    assert failed.value.reason == "Forbidden: bot was blocked by the user"


@pytest.mark.parametrize(
    ("status", "raw_body"),
    [
        pytest.param(500, None, id="500"),
        pytest.param(502, None, id="502"),
        pytest.param(502, "<html><body><h1>502 Bad Gateway</h1></body></html>", id="502-html-from-a-proxy"),
    ],
)
async def test_telegram_server_error_is_retryable(connector, telegram_api, status, raw_body):
    telegram_api.fail_next("sendMessage", status, raw_body=raw_body)

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER_CHAT, "Xin chào")

    assert failed.value.retryable
    assert failed.value.code == status


async def test_request_timeout_is_retryable(connector, telegram_api):
    telegram_api.delay_next("sendMessage", 2.0)

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER_CHAT, "Xin chào")

    assert failed.value.retryable
    assert failed.value.retry_after is None


async def test_bad_request_is_not_retryable_and_keeps_telegrams_description(connector, telegram_api):
    telegram_api.fail_next("sendMessage", 400, description="Bad Request: chat not found")

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text("999", "Xin chào")

    assert not failed.value.retryable
    assert not failed.value.unreachable
    assert failed.value.reason == "Bad Request: chat not found"
    assert failed.value.code == 400


async def test_wrong_token_is_not_retryable_and_names_the_token(telegram_api):
    connector = TelegramConnector(TelegramConfig(token="654321:WRONG", api_base=telegram_api.base_url))
    try:
        with pytest.raises(DeliveryError) as failed:
            await connector.send_text(CUSTOMER_CHAT, "Xin chào")
    finally:
        await connector.close()

    assert not failed.value.retryable
    assert failed.value.code == 401
    assert "token" in failed.value.reason


# -- acknowledge and webhook setup ------------------------------------------------------------------


async def test_acknowledge_answers_the_button_press(connector, telegram_api):
    [press] = connector.parse(load_update("callback_rating"))

    await connector.acknowledge(press)

    [call] = await telegram_api.wait_for_calls("answerCallbackQuery", 1)
    assert call.params["callback_query_id"] == "2200452318840736817"


async def test_acknowledge_failure_is_logged_not_raised(connector, telegram_api, caplog):
    telegram_api.fail_next("answerCallbackQuery", 400, description="Bad Request: query is too old")
    [press] = connector.parse(load_update("callback_rating"))

    await connector.acknowledge(press)

    assert "query is too old" in caplog.text


async def test_acknowledge_ignores_ordinary_messages(connector, telegram_api):
    [message] = connector.parse(load_update("text_message"))

    await connector.acknowledge(message)

    assert telegram_api.calls == []


async def test_set_webhook_registers_the_secret_and_the_updates_caredesk_handles(connector, telegram_api):
    assert await connector.set_webhook("https://care.example.vn/webhooks/telegram")

    assert telegram_api.webhook == {
        "url": "https://care.example.vn/webhooks/telegram",
        "secret_token": SECRET,
        "allowed_updates": ["message", "edited_message", "callback_query"],
    }


# -- the fake itself --------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["json", "form", "multipart"])
def test_fake_telegram_api_reads_every_body_encoding_alike(telegram_api, encoding):
    fields = {"chat_id": "42", "text": "123", "reply_markup": json.dumps({"inline_keyboard": []})}
    url = f"{telegram_api.base_url}/bot{TOKEN}/sendMessage"
    with httpx.Client() as client:
        if encoding == "json":
            typed = {**fields, "chat_id": 42, "reply_markup": {"inline_keyboard": []}}
            response = client.post(url, json=typed)
        elif encoding == "form":
            response = client.post(url, data=fields)
        else:
            response = client.post(url, data=fields, files={"unused": ("a.txt", b"abc")})

    assert response.json()["result"]["chat"] == {"id": 42, "type": "private"}
    [params] = telegram_api.sent_messages(chat_id=42)
    assert (params["chat_id"], params["text"], params["reply_markup"]) == (42, "123", {"inline_keyboard": []})


def test_fake_telegram_api_answers_unknown_tokens_and_methods_like_telegram(telegram_api):
    with httpx.Client(base_url=telegram_api.base_url) as client:
        unauthorized = client.post("/bot1:NOPE/getMe")
        unknown = client.post(f"/bot{TOKEN}/sendTelepathy")

    assert (unauthorized.status_code, unauthorized.json()) == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    assert (unknown.status_code, unknown.json()["description"]) == (404, "Not Found")
    assert telegram_api.wait_for_calls_sync("sendTelepathy", 1)
