"""The Messenger connector against saved webhooks and a loopback Send API (real httpx, never mocked)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.base import (
    Button,
    DeliveryError,
    OutboundButtons,
    OutboundQuickReplies,
    OutboundRatingRequest,
    OutboundText,
    PayloadError,
    VerificationError,
    WebhookRequest,
    parse_rating_payload,
)
from connectors.facebook import FacebookConfig, FacebookConnector
from tests.fakes.facebook_api import FakeGraphAPI, sign

PAYLOADS = Path(__file__).parents[1] / "payloads" / "facebook"
APP_SECRET = "3f1c9e0b7a5d4c2e8f6a1b3d5c7e9f02"
PAGE_TOKEN = "EAAG-test-page-token"
VERIFY_TOKEN = "caredesk-verify-8c41"
PAGE_ID = "104857600123456"
CUSTOMER = "6843215790123456"


def load_event(name: str) -> dict[str, Any]:
    """A saved Messenger webhook body from tests/payloads/facebook."""
    return json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))


def signed(body: bytes, signature: str | None) -> WebhookRequest:
    """A webhook request with ``body`` and, if given, that X-Hub-Signature-256 value."""
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return WebhookRequest(headers=headers, body=body)


def hours_ago(hours: float) -> str:
    """The ISO timestamp the helpdesk puts in ``last_inbound_at`` for a customer who wrote that long ago."""
    return (datetime.now(UTC) - timedelta(hours=hours)).isoformat()


@pytest.fixture
def graph_api():
    """A fresh loopback Send API for the test Page, requiring the appsecret_proof."""
    with FakeGraphAPI(page_access_token=PAGE_TOKEN, page_id=PAGE_ID, app_secret=APP_SECRET) as fake:
        yield fake


def make_config(graph_api: FakeGraphAPI, **overrides: Any) -> FacebookConfig:
    """Config pointed at the fake, with a short timeout so timeouts are quick to provoke."""
    values: dict[str, Any] = {
        "verify_token": VERIFY_TOKEN,
        "app_secret": APP_SECRET,
        "page_access_token": PAGE_TOKEN,
        "graph_api_base": graph_api.base_url,
        "request_timeout_s": 0.5,
    }
    values.update(overrides)
    return FacebookConfig(**values)


@pytest.fixture
async def connector(graph_api):
    """A connector talking to the fake, HUMAN_AGENT tag off (the default)."""
    connector = FacebookConnector(make_config(graph_api))
    yield connector
    await connector.close()


@pytest.fixture
async def agent_connector(graph_api):
    """A connector whose app may use the HUMAN_AGENT tag."""
    connector = FacebookConnector(make_config(graph_api, human_agent_tag=True))
    yield connector
    await connector.close()


@pytest.fixture
def offline_connector():
    """A connector for verification and parsing, which never touch the network."""
    return FacebookConnector(
        FacebookConfig(verify_token=VERIFY_TOKEN, app_secret=APP_SECRET, page_access_token=PAGE_TOKEN,
                       graph_api_base="http://127.0.0.1:9/v21.0")
    )


# -- configuration ----------------------------------------------------------------------------------


def test_config_defaults_to_the_real_graph_api_with_its_version():
    assert FacebookConfig().graph_api_base == "https://graph.facebook.com/v21.0"
    assert FacebookConfig().human_agent_tag is False


def test_connector_is_enabled_only_with_app_secret_and_page_token():
    assert FacebookConnector(FacebookConfig(app_secret="s", page_access_token="t")).enabled
    assert not FacebookConnector(FacebookConfig(page_access_token="t")).enabled
    assert not FacebookConnector(FacebookConfig(app_secret="s")).enabled


# -- GET subscription handshake ---------------------------------------------------------------------


def test_subscription_handshake_returns_the_challenge(offline_connector):
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}

    assert offline_connector.verify_subscription(query) == "1158201444"


def test_subscription_handshake_with_a_wrong_verify_token_is_refused(offline_connector):
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN + "x", "hub.challenge": "1158201444"}

    with pytest.raises(VerificationError, match="verify_token") as refused:
        offline_connector.verify_subscription(query)
    assert refused.value.status == 403


def test_subscription_handshake_with_a_wrong_mode_is_refused(offline_connector):
    query = {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}

    with pytest.raises(VerificationError, match="hub.mode"):
        offline_connector.verify_subscription(query)


def test_subscription_handshake_is_refused_when_no_verify_token_is_configured():
    connector = FacebookConnector(FacebookConfig(app_secret=APP_SECRET))
    query = {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1158201444"}

    with pytest.raises(VerificationError, match="CAREDESK_FACEBOOK__VERIFY_TOKEN"):
        connector.verify_subscription(query)


# -- webhook signature ------------------------------------------------------------------------------


async def test_webhook_signed_with_the_app_secret_is_accepted(offline_connector):
    body = (PAYLOADS / "text_message.json").read_bytes()

    await offline_connector.verify(signed(body, sign(body, APP_SECRET)))


async def test_webhook_signed_with_another_secret_is_refused(offline_connector):
    body = (PAYLOADS / "text_message.json").read_bytes()

    with pytest.raises(VerificationError, match="does not match") as refused:
        await offline_connector.verify(signed(body, sign(body, "another-app-secret")))
    assert refused.value.status == 403


async def test_webhook_without_a_signature_is_refused(offline_connector):
    body = (PAYLOADS / "text_message.json").read_bytes()

    with pytest.raises(VerificationError, match="missing"):
        await offline_connector.verify(signed(body, None))


async def test_webhook_whose_body_was_tampered_with_is_refused(offline_connector):
    body = (PAYLOADS / "text_message.json").read_bytes()
    signature = sign(body, APP_SECRET)
    tampered = body.replace(b"#DH10234", b"#DH99999")

    with pytest.raises(VerificationError, match="does not match"):
        await offline_connector.verify(signed(tampered, signature))


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param("sha1=" + "a" * 40, id="sha1"),
        pytest.param("a" * 64, id="no-prefix"),
        pytest.param("sha256=" + "z" * 64, id="not-hex"),
        pytest.param("sha256=", id="empty"),
    ],
)
async def test_malformed_signature_header_is_refused(offline_connector, signature):
    with pytest.raises(VerificationError, match="sha256=<64 hex digits>"):
        await offline_connector.verify(signed(b"{}", signature))


async def test_signature_in_upper_case_hex_is_accepted(offline_connector):
    body = (PAYLOADS / "text_message.json").read_bytes()
    signature = sign(body, APP_SECRET)

    await offline_connector.verify(signed(body, "sha256=" + signature.removeprefix("sha256=").upper()))


async def test_webhooks_are_refused_when_no_app_secret_is_configured():
    connector = FacebookConnector(FacebookConfig(page_access_token=PAGE_TOKEN))

    with pytest.raises(VerificationError, match="CAREDESK_FACEBOOK__APP_SECRET"):
        await connector.verify(signed(b"{}", sign(b"{}", "")))


# -- parse ------------------------------------------------------------------------------------------


def test_text_message_keeps_vietnamese_text_sender_time_and_page(offline_connector):
    [message] = offline_connector.parse(load_event("text_message"))

    assert message.kind == "message"
    assert message.channel == "facebook"
    assert message.sender_id == CUSTOMER
    assert message.external_id.startswith("m_Xq7Yp2Lk9fR3")
    assert message.text.startswith("Chào shop, đơn hàng #DH10234")
    assert message.timestamp == datetime(2024, 11, 25, 8, 0, tzinfo=UTC)
    assert message.metadata["page_id"] == PAGE_ID
    assert message.metadata["entry_id"] == PAGE_ID
    assert message.answerable


def test_batch_yields_every_message_of_every_entry_in_order(offline_connector):
    messages = offline_connector.parse(load_event("batch"))

    assert [message.external_id[:9] for message in messages] == ["m_batch-1", "m_batch-2", "m_batch-3"]
    assert [message.sender_id for message in messages] == [CUSTOMER, CUSTOMER, "7012398765432109"]
    assert messages[2].text == "Đơn #DH10301 giao thiếu 1 hộp, shop kiểm tra giúp em"
    assert all(message.kind == "message" for message in messages)


def test_quick_reply_is_a_postback_carrying_its_payload(offline_connector):
    [press] = offline_connector.parse(load_event("quick_reply_rating"))

    assert press.kind == "postback"
    assert press.answerable
    assert press.payload == "rating:conv-1:5"
    assert press.text == "⭐⭐⭐⭐⭐"
    assert press.external_id.startswith("m_rating-")
    assert press.metadata["rating"] == {"subject": "conv-1", "stars": 5}


async def test_rating_round_trips_from_quick_reply_to_parsed_stars(connector, graph_api):
    await connector.send(
        OutboundRatingRequest(recipient_id=CUSTOMER, text="Đánh giá giúp shop ạ", subject="conv-42")
    )
    [sent] = graph_api.sent_messages(psid=CUSTOMER)
    four_stars = sent["message"]["quick_replies"][3]
    event = load_event("quick_reply_rating")
    tapped = event["entry"][0]["messaging"][0]["message"]
    tapped["text"], tapped["quick_reply"]["payload"] = four_stars["title"], four_stars["payload"]

    [press] = connector.parse(event)

    assert parse_rating_payload(press.payload) == ("conv-42", 4)
    assert press.text == "⭐⭐⭐⭐"


def test_postback_button_carries_its_payload_title_and_mid(offline_connector):
    [press] = offline_connector.parse(load_event("postback"))

    assert press.kind == "postback"
    assert press.payload == "order_status"
    assert press.text == "Tra cứu đơn hàng"
    assert press.external_id.startswith("m_postback-")
    assert press.answerable


def test_postback_without_mid_gets_a_stable_id_of_its_own(offline_connector):
    event = load_event("postback")
    del event["entry"][0]["messaging"][0]["postback"]["mid"]
    other = load_event("postback")
    del other["entry"][0]["messaging"][0]["postback"]["mid"]
    other["entry"][0]["messaging"][0]["postback"]["payload"] = "warranty"

    [first] = offline_connector.parse(event)
    [again] = offline_connector.parse(json.loads(json.dumps(event)))
    [different] = offline_connector.parse(other)

    assert first.external_id == again.external_id
    assert first.external_id != different.external_id
    assert first.external_id.startswith(f"postback:{CUSTOMER}:1732521720501:")
    assert len(first.external_id) <= 128


def test_event_without_an_id_and_with_a_lone_surrogate_still_gets_one(offline_connector):
    event = load_event("postback")
    del event["entry"][0]["messaging"][0]["postback"]["mid"]
    event["entry"][0]["messaging"][0]["postback"]["payload"] = "warranty\ud800"

    [press] = offline_connector.parse(event)

    assert press.external_id.startswith(f"postback:{CUSTOMER}:1732521720501:")
    assert press.payload == "warranty\ufffd"


def test_echo_of_the_pages_own_message_is_recorded_never_answered(offline_connector):
    [echo] = offline_connector.parse(load_event("echo"))

    assert echo.kind == "echo"
    assert not echo.answerable
    # filed under the customer's conversation, not the Page's
    assert echo.sender_id == CUSTOMER
    assert echo.metadata["page_id"] == PAGE_ID
    assert echo.metadata["app_id"] == "1517776481860111"
    assert echo.text.startswith("Dạ đơn #DH10234")


def test_delivery_receipt_is_recorded_never_answered(offline_connector):
    [receipt] = offline_connector.parse(load_event("delivery"))

    assert receipt.kind == "delivery"
    assert not receipt.answerable
    assert receipt.external_id == f"delivery:1732521603127:{CUSTOMER}"
    assert receipt.metadata["mids"] == [
        "m_echo-Qw2eR4tY6uI8oP0aS2dF4gH6jK8lZ0xC2vB4nM6qW8eR0tY2uI4oP6aS8dF0gH2jK4l"
    ]


def test_read_receipt_is_recorded_never_answered(offline_connector):
    [receipt] = offline_connector.parse(load_event("read"))

    assert receipt.kind == "read"
    assert not receipt.answerable
    assert receipt.external_id == f"read:1732521603127:{CUSTOMER}"
    assert receipt.metadata["watermark"] == 1732521603127


def test_receipts_with_the_same_watermark_keep_distinct_ids(offline_connector):
    [delivered] = offline_connector.parse(load_event("delivery"))
    [read] = offline_connector.parse(load_event("read"))
    other_customer = load_event("read")
    other_customer["entry"][0]["messaging"][0]["sender"]["id"] = "7012398765432109"
    [read_by_other] = offline_connector.parse(other_customer)

    assert len({delivered.external_id, read.external_id, read_by_other.external_id}) == 3


def test_image_attachment_becomes_an_image_with_its_url(offline_connector):
    [message] = offline_connector.parse(load_event("image_attachment"))

    assert message.kind == "message"
    assert message.text == ""
    [image] = message.attachments
    assert image.kind == "image"
    assert image.url.startswith("https://scontent.xx.fbcdn.net/")


@pytest.mark.parametrize(
    ("attachment", "expected"),
    [
        pytest.param({"type": "file", "payload": {"url": "https://cdn.fb/hoadon.pdf"}},
                     ("file", "https://cdn.fb/hoadon.pdf", "hoadon.pdf"), id="file"),
        pytest.param({"type": "audio", "payload": {"url": "https://cdn.fb/voice.mp4"}},
                     ("audio", "https://cdn.fb/voice.mp4", None), id="audio"),
        pytest.param({"type": "video", "payload": {"url": "https://cdn.fb/clip.mp4"}},
                     ("video", "https://cdn.fb/clip.mp4", None), id="video"),
        pytest.param({"type": "location", "title": "Vị trí của Hương",
                      "payload": {"coordinates": {"lat": 10.7769, "long": 106.7009}}},
                     ("location", "geo:10.7769,106.7009", "Vị trí của Hương"), id="location"),
        pytest.param({"type": "image",
                      "payload": {"url": "https://cdn.fb/like.png", "sticker_id": 369239263222822}},
                     ("sticker", "https://cdn.fb/like.png", None), id="like-sticker"),
    ],
)
def test_each_attachment_type_keeps_its_kind_and_url(offline_connector, attachment, expected):
    event = load_event("image_attachment")
    event["entry"][0]["messaging"][0]["message"]["attachments"] = [attachment]

    [message] = offline_connector.parse(event)

    [parsed] = message.attachments
    assert (parsed.kind, parsed.url, parsed.name) == expected
    assert message.kind == "message"


def test_reaction_is_recorded_as_unsupported_and_not_answered(offline_connector):
    event = load_event("text_message")
    item = event["entry"][0]["messaging"][0]
    del item["message"]
    item["reaction"] = {"reaction": "love", "emoji": "❤️", "action": "react", "mid": "m_abc"}

    [reaction] = offline_connector.parse(event)

    assert reaction.kind == "unsupported"
    assert not reaction.answerable
    assert reaction.sender_id == CUSTOMER
    assert reaction.metadata["event"] == "reaction"
    assert reaction.external_id.startswith(f"reaction:{CUSTOMER}:")


def test_unsent_message_notice_does_not_collide_with_the_original(offline_connector):
    [original] = offline_connector.parse(load_event("text_message"))
    event = load_event("text_message")
    event["entry"][0]["messaging"][0]["message"] = {"mid": original.external_id, "is_deleted": True}

    [deleted] = offline_connector.parse(event)

    assert deleted.kind == "unsupported"
    assert deleted.metadata["event"] == "message_deleted"
    assert deleted.external_id == f"deleted:{original.external_id}"


def test_standby_event_of_a_thread_another_app_owns_is_not_answered(offline_connector):
    event = load_event("text_message")
    event["entry"][0]["standby"] = event["entry"][0].pop("messaging")

    [standby] = offline_connector.parse(event)

    assert standby.kind == "unsupported"
    assert standby.metadata["event"] == "standby"
    assert standby.external_id.startswith("standby:m_Xq7Yp2Lk9fR3")


def test_empty_entry_list_yields_nothing(offline_connector):
    assert offline_connector.parse({"object": "page", "entry": []}) == []


def _text_event(**item_changes: Any) -> dict[str, Any]:
    event = load_event("text_message")
    event["entry"][0]["messaging"][0].update(item_changes)
    return event


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param([{"object": "page"}], "JSON object", id="not-an-object"),
        pytest.param({"object": "instagram", "entry": []}, "object is 'instagram'", id="instagram"),
        pytest.param({"entry": []}, "object is None", id="no-object"),
        pytest.param({"object": "page", "entry": {"id": "1"}}, "list of entries", id="entry-not-a-list"),
        pytest.param({"object": "page", "entry": ["x"]}, r"entry\[0\] is not an object",
                     id="entry-not-an-object"),
        pytest.param({"object": "page", "entry": [{"id": "1", "messaging": {}}]}, "messaging is not a list",
                     id="messaging-not-a-list"),
        pytest.param(_text_event(sender=None), r"messaging\[0\]\.sender", id="no-sender"),
        pytest.param(_text_event(sender={"name": "x"}), r"sender\.id is missing", id="sender-without-id"),
        pytest.param(_text_event(timestamp="yesterday"), "not a timestamp", id="bad-timestamp"),
        pytest.param(_text_event(message="hello"), r"message is not an object", id="message-not-an-object"),
        pytest.param(_text_event(message={"text": "hi"}), r"message\.mid is missing",
                     id="message-without-mid"),
        pytest.param(_text_event(message={"mid": "m_1", "attachments": [{"payload": {}}]}), "has no type",
                     id="attachment-without-type"),
        pytest.param(_text_event(message={"mid": "m_1", "text": "hi", "quick_reply": {}}), "no payload",
                     id="quick-reply-without-payload"),
        pytest.param(_text_event(message=None, read={"seq": 1}), "watermark", id="read-without-watermark"),
    ],
)
def test_malformed_webhook_is_refused_with_a_reason(offline_connector, payload, reason):
    with pytest.raises(PayloadError, match=reason) as refused:
        offline_connector.parse(payload)
    assert refused.value.status == 422


# -- send and the messaging window ------------------------------------------------------------------


async def test_send_text_reaches_the_customer_and_returns_facebooks_message_id(connector, graph_api):
    first = await connector.send_text(CUSTOMER, "Dạ đơn #DH10234 đang được giao, dự kiến ngày mai ạ.")
    second = await connector.send_text(CUSTOMER, "Cảm ơn bạn!")

    [sent, _] = graph_api.sent_messages(psid=CUSTOMER)
    assert sent == {
        "recipient": {"id": CUSTOMER},
        "messaging_type": "RESPONSE",
        "message": {"text": "Dạ đơn #DH10234 đang được giao, dự kiến ngày mai ạ."},
    }
    assert (first, second) == ("m_fake000000000001", "m_fake000000000002")


async def test_page_token_travels_in_a_header_never_in_the_url(connector, graph_api):
    await connector.send_text(CUSTOMER, "Xin chào")

    [call] = graph_api.calls
    assert call.token == PAGE_TOKEN
    assert "access_token" not in call.query
    assert PAGE_TOKEN not in call.path
    assert call.query["appsecret_proof"]


async def test_reply_within_24_hours_uses_response(connector, graph_api):
    reply = OutboundText(recipient_id=CUSTOMER, text="Dạ shop kiểm tra ngay ạ",
                         metadata={"last_inbound_at": hours_ago(23), "author": "bot"})

    await connector.send(reply)

    [sent] = graph_api.sent_messages()
    assert sent["messaging_type"] == "RESPONSE"
    assert "tag" not in sent


async def test_reply_without_last_inbound_at_is_treated_as_inside_the_window(connector, graph_api):
    await connector.send(OutboundText(recipient_id=CUSTOMER, text="Xin chào", metadata={"author": "bot"}))

    [sent] = graph_api.sent_messages()
    assert sent["messaging_type"] == "RESPONSE"


async def test_naive_last_inbound_at_is_read_as_utc(connector, graph_api):
    naive = (datetime.now(UTC) - timedelta(hours=30)).replace(tzinfo=None).isoformat()
    reply = OutboundText(recipient_id=CUSTOMER, text="Xin chào", metadata={"last_inbound_at": naive})

    with pytest.raises(DeliveryError, match="24-hour window"):
        await connector.send(reply)


async def test_agent_reply_at_30_hours_uses_the_human_agent_tag_when_enabled(agent_connector, graph_api):
    reply = OutboundText(recipient_id=CUSTOMER, text="Dạ em là Lan bên CSKH, đơn đã được đổi ạ",
                         metadata={"last_inbound_at": hours_ago(30), "author": "agent"})

    message_id = await agent_connector.send(reply)

    [sent] = graph_api.sent_messages()
    assert (sent["messaging_type"], sent["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")
    assert message_id.startswith("m_")


async def test_agent_reply_at_30_hours_is_refused_with_a_reason_when_the_tag_is_disabled(
    connector, graph_api
):
    reply = OutboundText(recipient_id=CUSTOMER, text="Dạ em là Lan bên CSKH",
                         metadata={"last_inbound_at": hours_ago(30), "author": "agent"})

    with pytest.raises(DeliveryError) as refused:
        await connector.send(reply)

    assert not refused.value.retryable
    assert "outside Messenger's 24-hour window" in refused.value.reason
    assert "CAREDESK_FACEBOOK__HUMAN_AGENT_TAG" in refused.value.reason
    assert graph_api.calls == []


async def test_bot_message_after_24_hours_is_refused_even_with_the_tag(agent_connector, graph_api):
    survey = OutboundRatingRequest(recipient_id=CUSTOMER, text="Đánh giá giúp shop ạ", subject="conv-1",
                                   metadata={"last_inbound_at": hours_ago(30), "author": "bot"})

    with pytest.raises(DeliveryError, match="automated messages cannot be sent") as refused:
        await agent_connector.send(survey)

    assert not refused.value.retryable
    assert graph_api.calls == []


async def test_reply_8_days_after_the_customer_wrote_is_refused(agent_connector, graph_api):
    reply = OutboundText(recipient_id=CUSTOMER, text="Dạ shop xin lỗi vì trả lời muộn",
                         metadata={"last_inbound_at": hours_ago(8 * 24), "author": "agent"})

    with pytest.raises(DeliveryError, match="more than 7 days") as refused:
        await agent_connector.send(reply)

    assert not refused.value.retryable
    assert refused.value.code == "outside_window"
    assert graph_api.calls == []


async def test_unreadable_last_inbound_at_is_refused_without_calling_facebook(connector, graph_api):
    reply = OutboundText(recipient_id=CUSTOMER, text="Xin chào", metadata={"last_inbound_at": "hôm qua"})

    with pytest.raises(DeliveryError, match="ISO timestamp") as refused:
        await connector.send(reply)

    assert not refused.value.retryable
    assert graph_api.calls == []


async def test_rating_request_renders_five_star_quick_replies(connector, graph_api):
    request = OutboundRatingRequest(
        recipient_id=CUSTOMER, text="Bạn đánh giá hỗ trợ thế nào?", subject="conv-1"
    )

    message_id = await connector.send(request)

    [sent] = graph_api.sent_messages()
    assert sent["message"]["text"] == "Bạn đánh giá hỗ trợ thế nào?"
    assert sent["message"]["quick_replies"] == [
        {"content_type": "text", "title": "⭐" * stars, "payload": f"rating:conv-1:{stars}"}
        for stars in range(1, 6)
    ]
    assert message_id == "m_fake000000000001"


async def test_buttons_become_quick_replies_with_long_titles_shortened(connector, graph_api):
    menu = OutboundButtons(
        recipient_id=CUSTOMER,
        text="Bạn cần hỗ trợ gì?",
        buttons=(
            Button(title="Tra cứu đơn hàng", payload="order_status"),
            Button(title="Đổi trả và hoàn tiền sản phẩm lỗi", payload="returns"),
        ),
    )

    await connector.send(menu)

    quick_replies = graph_api.sent_messages()[0]["message"]["quick_replies"]
    assert [reply["title"] for reply in quick_replies] == ["Tra cứu đơn hàng", "Đổi trả và hoàn…"]
    assert all(len(reply["title"]) <= 20 for reply in quick_replies)
    assert [reply["payload"] for reply in quick_replies] == ["order_status", "returns"]


async def test_more_than_13_options_become_numbered_text(connector, graph_api):
    stores = tuple(Button(title=f"Chi nhánh {number}", payload=f"store:{number}") for number in range(1, 15))

    await connector.send(OutboundQuickReplies(recipient_id=CUSTOMER, text="Chọn chi nhánh:", options=stores))

    [sent] = graph_api.sent_messages()
    assert "quick_replies" not in sent["message"]
    assert sent["message"]["text"].startswith("Chọn chi nhánh:\n\n1. Chi nhánh 1\n")
    assert sent["message"]["text"].endswith("14. Chi nhánh 14")


async def test_text_longer_than_messenger_allows_is_refused_before_calling(connector, graph_api):
    with pytest.raises(DeliveryError, match="at most 2000") as refused:
        await connector.send_text(CUSTOMER, "a" * 2001)

    assert not refused.value.retryable
    assert graph_api.calls == []


async def test_sending_without_credentials_is_refused_and_names_the_settings():
    connector = FacebookConnector(FacebookConfig(app_secret=APP_SECRET))

    with pytest.raises(DeliveryError, match="CAREDESK_FACEBOOK__PAGE_ACCESS_TOKEN") as refused:
        await connector.send_text(CUSTOMER, "Xin chào")
    assert not refused.value.retryable


# -- delivery errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_graph_api_server_error_is_retryable(connector, graph_api, status):
    graph_api.fail_next(status, code=2)

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER, "Xin chào")

    assert failed.value.retryable
    assert failed.value.code == 2
    assert failed.value.reason == "An unexpected error has occurred. Please retry your request later."


async def test_server_error_without_a_graph_body_is_retryable(connector, graph_api):
    graph_api.fail_next(502, raw_body="<html><body><h1>502 Bad Gateway</h1></body></html>")

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER, "Xin chào")

    assert failed.value.retryable
    assert failed.value.code == 502


@pytest.mark.parametrize(
    ("status", "code", "retry_after", "expected_code"),
    [
        pytest.param(400, 613, None, 613, id="613-custom-rate-limit"),
        pytest.param(400, 4, None, 4, id="4-application-limit"),
        pytest.param(400, 32, 30, 32, id="32-page-limit-with-retry-after"),
        pytest.param(429, 17, 12, 17, id="http-429-with-retry-after"),
    ],
)
async def test_rate_limit_is_retryable_after_the_delay_facebook_asks_for(
    connector, graph_api, status, code, retry_after, expected_code
):
    graph_api.fail_next(status, code=code, retry_after=retry_after)

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER, "Xin chào")

    assert failed.value.retryable
    assert failed.value.retry_after == retry_after
    assert failed.value.code == expected_code
    assert graph_api.sent_messages() == []


async def test_person_unavailable_marks_the_customer_unreachable(connector, graph_api):
    graph_api.fail_next(400, code=551, subcode=1545041)

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER, "Xin chào")

    assert failed.value.unreachable
    assert not failed.value.retryable
    assert failed.value.code == 551
    assert failed.value.reason == "(#551) This person isn't available right now."


@pytest.mark.parametrize(("code", "subcode"), [(10, 2018278), (200, 2018108)])
async def test_outside_window_refusal_from_facebook_is_not_retryable(connector, graph_api, code, subcode):
    graph_api.fail_next(
        400, code=code, subcode=subcode, message="(#10) This message is sent outside of allowed window."
    )

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER, "Xin chào")

    assert not failed.value.retryable
    assert not failed.value.unreachable
    assert failed.value.code == code
    assert "outside of allowed window" in failed.value.reason


async def test_invalid_page_token_is_not_retryable_and_names_the_setting(graph_api):
    connector = FacebookConnector(make_config(graph_api, page_access_token="EAAG-revoked"))
    try:
        with pytest.raises(DeliveryError) as failed:
            await connector.send_text(CUSTOMER, "Xin chào")
    finally:
        await connector.close()

    assert not failed.value.retryable
    assert failed.value.code == 190
    assert "CAREDESK_FACEBOOK__PAGE_ACCESS_TOKEN" in failed.value.reason
    assert "Invalid OAuth access token" in failed.value.reason


async def test_request_timeout_is_retryable(connector, graph_api):
    graph_api.delay_next(2.0)

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER, "Xin chào")

    assert failed.value.retryable
    assert failed.value.retry_after is None
    assert failed.value.code == "timeout"


async def test_unreachable_graph_api_is_retryable(graph_api):
    config = make_config(graph_api)
    graph_api.stop()  # nothing listens on that port any more
    connector = FacebookConnector(config)
    try:
        with pytest.raises(DeliveryError) as failed:
            await connector.send_text(CUSTOMER, "Xin chào")
    finally:
        await connector.close()

    assert failed.value.retryable
    assert failed.value.code == "network"


async def test_other_client_error_is_not_retryable_and_keeps_facebooks_message(connector, graph_api):
    graph_api.fail_next(400, code=100, message="(#100) Param recipient[id] must be a valid ID string")

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER, "Xin chào")

    assert not failed.value.retryable
    assert not failed.value.unreachable
    assert failed.value.code == 100
    assert failed.value.reason == "(#100) Param recipient[id] must be a valid ID string"


async def test_psid_unknown_to_the_page_marks_the_customer_unreachable(connector, graph_api):
    graph_api.fail_next(400, code=100, subcode=2018001, message="(#100) No matching user found")

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER, "Xin chào")

    assert failed.value.unreachable
    assert not failed.value.retryable


# -- the fake itself --------------------------------------------------------------------------------


def _post(graph_api: FakeGraphAPI, body: dict[str, Any], **params: str) -> httpx.Response:
    url = f"{graph_api.base_url}/me/messages"
    with httpx.Client() as client:
        return client.post(url, json=body, params={"access_token": PAGE_TOKEN, **params})


def test_fake_refuses_message_tag_without_a_tag():
    with FakeGraphAPI(page_access_token=PAGE_TOKEN) as fake:
        response = _post(fake, {"recipient": {"id": CUSTOMER}, "messaging_type": "MESSAGE_TAG",
                                "message": {"text": "hi"}})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == 100
    assert "tag" in response.json()["error"]["message"]


def test_fake_accepts_the_documented_query_token_and_sender_actions():
    with FakeGraphAPI(page_access_token=PAGE_TOKEN) as fake:
        typing = _post(fake, {"recipient": {"id": CUSTOMER}, "sender_action": "typing_on"})
        text = _post(fake, {"recipient": {"id": CUSTOMER}, "messaging_type": "UPDATE",
                            "message": {"text": "hi"}})
        fake.wait_for_calls_sync(2)

    assert typing.json() == {"recipient_id": CUSTOMER}
    assert text.json()["message_id"].startswith("m_")
    assert fake.sent_messages(psid=CUSTOMER)[0]["message"] == {"text": "hi"}


def test_fake_requires_the_appsecret_proof_when_it_knows_the_app_secret(graph_api):
    response = _post(graph_api, {"recipient": {"id": CUSTOMER}, "messaging_type": "RESPONSE",
                                 "message": {"text": "hi"}}, appsecret_proof="0" * 64)

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Invalid appsecret_proof provided in the API argument"
