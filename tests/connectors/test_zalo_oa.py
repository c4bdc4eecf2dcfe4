"""The Zalo OA connector against saved events and a loopback Open API (real httpx, no mocks)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.base import (
    Button,
    DeliveryError,
    OutboundButtons,
    OutboundRatingRequest,
    PayloadError,
    VerificationError,
    WebhookRequest,
    parse_rating_payload,
)
from connectors.zalo_oa import (
    InMemoryZaloTokenStore,
    ZaloOAConfig,
    ZaloOAConnector,
    ZaloTokens,
    seconds_until_morning,
)
from tests.fakes.zalo_api import FakeZaloOA, dumps, sign_zalo

PAYLOADS = Path(__file__).parents[1] / "payloads" / "zalo_oa"
APP_ID = "3608465248940903967"
OA_SECRET = "oa-secret-key-for-tests"
APP_SECRET = "app-secret-key-for-tests"
OA_ID = "388613280878808645"
CUSTOMER = "2468458835296117922"
#: 10:00 in Ho Chi Minh City, inside Zalo's daytime sending window
MORNING = datetime(2024, 11, 25, 3, 0, tzinfo=UTC)


def load_event(name: str) -> dict[str, Any]:
    """A saved Zalo OA event from tests/payloads/zalo_oa."""
    return json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))


def signed(body: bytes, *, app_id: str = APP_ID, secret: str = OA_SECRET) -> WebhookRequest:
    """A webhook request carrying ``body`` and the signature Zalo would compute for it."""
    stamp = str(json.loads(body)["timestamp"])
    return WebhookRequest(headers={"X-ZEvent-Signature": sign_zalo(app_id, body, stamp, secret)}, body=body)


class RecordingTokenStore(InMemoryZaloTokenStore):
    """An in-memory token store that remembers every pair it was asked to save."""

    def __init__(self, tokens: ZaloTokens | None = None):
        super().__init__(tokens)
        self.saved: list[ZaloTokens] = []

    async def save(self, tokens: ZaloTokens) -> None:
        """Record, then keep."""
        self.saved.append(tokens)
        await super().save(tokens)


@pytest.fixture
def zalo():
    """A fresh loopback Zalo OA API for the test's app."""
    with FakeZaloOA(app_id=APP_ID, app_secret_key=APP_SECRET, oa_id=OA_ID) as fake:
        yield fake


def make_config(zalo: FakeZaloOA, **overrides: Any) -> ZaloOAConfig:
    """Settings pointing both Zalo hosts at the fake, with a short timeout."""
    values: dict[str, Any] = {
        "app_id": APP_ID,
        "oa_secret_key": OA_SECRET,
        "app_secret_key": APP_SECRET,
        "access_token": zalo.access_token,
        "refresh_token": zalo.refresh_token,
        "api_base": zalo.base_url,
        "oauth_base": zalo.base_url,
        "request_timeout_s": 0.5,
    }
    values.update(overrides)
    return ZaloOAConfig(**values)


@pytest.fixture
def token_store():
    """The token store the connector persists refreshed pairs to."""
    return RecordingTokenStore()


@pytest.fixture
async def connector(zalo, token_store):
    """A connector pointed at the fake, its clock fixed at 10:00 in Vietnam."""
    connector = ZaloOAConnector(make_config(zalo), token_store, clock=lambda: MORNING)
    yield connector
    await connector.close()


#: when the saved events were sent (their timestamps run from 08:00 to 08:04 UTC that day)
SAVED_EVENTS_AT = datetime(2024, 11, 25, 8, 2, tzinfo=UTC)


@pytest.fixture
def offline_connector():
    """A connector for verify and parse, which never touch the network, its clock at the time the
    saved events were sent."""
    config = ZaloOAConfig(app_id=APP_ID, oa_secret_key=OA_SECRET, access_token="t")
    return ZaloOAConnector(config, clock=lambda: SAVED_EVENTS_AT)


# -- verify -----------------------------------------------------------------------------------------


async def test_event_signed_with_the_oa_secret_key_is_accepted(offline_connector):
    await offline_connector.verify(signed((PAYLOADS / "user_send_text.json").read_bytes()))


async def test_event_with_a_wrong_signature_is_refused(offline_connector):
    body = (PAYLOADS / "user_send_text.json").read_bytes()

    with pytest.raises(VerificationError) as refused:
        await offline_connector.verify(signed(body, secret="someone-elses-secret"))
    assert refused.value.status == 403


async def test_event_whose_body_was_altered_after_signing_is_refused(offline_connector):
    body = (PAYLOADS / "user_send_text.json").read_bytes()
    request = signed(body)
    altered = WebhookRequest(headers=request.headers, body=body.replace("#DH10234".encode(), b"#DH99999"))

    with pytest.raises(VerificationError, match="does not match"):
        await offline_connector.verify(altered)


async def test_event_without_the_signature_header_is_refused(offline_connector):
    body = (PAYLOADS / "user_send_text.json").read_bytes()

    with pytest.raises(VerificationError, match="missing"):
        await offline_connector.verify(WebhookRequest(headers={"Content-Type": "text/json"}, body=body))


@pytest.mark.parametrize("offset", [timedelta(minutes=11), timedelta(days=30), -timedelta(minutes=11)],
                         ids=["11-minutes-old", "a-month-old", "11-minutes-ahead"])
async def test_correctly_signed_event_far_from_now_is_refused_as_a_replay(offset):
    event = load_event("user_send_text")
    sent_at = datetime.fromtimestamp(int(event["timestamp"]) / 1000, UTC)
    config = ZaloOAConfig(app_id=APP_ID, oa_secret_key=OA_SECRET, access_token="t")
    connector = ZaloOAConnector(config, clock=lambda: sent_at + offset)

    with pytest.raises(VerificationError, match="replay") as refused:
        await connector.verify(signed(dumps(event)))
    assert refused.value.status == 403


async def test_event_within_the_window_is_accepted_and_the_window_can_be_widened_or_turned_off():
    event = load_event("user_send_text")
    sent_at = datetime.fromtimestamp(int(event["timestamp"]) / 1000, UTC)
    body = dumps(event)
    for window, late in ((600, timedelta(minutes=9)), (3600, timedelta(minutes=50)), (0, timedelta(days=30))):
        config = ZaloOAConfig(app_id=APP_ID, oa_secret_key=OA_SECRET, access_token="t", max_event_age_s=window)
        await ZaloOAConnector(config, clock=lambda late=late: sent_at + late).verify(signed(body))


async def test_event_for_another_app_is_refused_even_when_correctly_signed(offline_connector):
    event = load_event("user_send_text")
    event["app_id"] = "1111111111111111111"
    body = dumps(event)

    with pytest.raises(VerificationError, match="app_id"):
        await offline_connector.verify(signed(body, app_id="1111111111111111111"))


async def test_events_are_refused_when_the_oa_secret_key_is_not_configured():
    connector = ZaloOAConnector(ZaloOAConfig(app_id=APP_ID, access_token="t"))
    body = (PAYLOADS / "user_send_text.json").read_bytes()

    with pytest.raises(VerificationError, match="OA_SECRET_KEY"):
        await connector.verify(signed(body))


def test_connector_is_enabled_only_with_app_secret_and_a_token():
    assert ZaloOAConnector(ZaloOAConfig(app_id=APP_ID, oa_secret_key=OA_SECRET, refresh_token="r")).enabled
    assert ZaloOAConnector(ZaloOAConfig(app_id=APP_ID, oa_secret_key=OA_SECRET, access_token="a")).enabled
    assert not ZaloOAConnector(ZaloOAConfig(app_id=APP_ID, oa_secret_key=OA_SECRET)).enabled
    assert not ZaloOAConnector(ZaloOAConfig(app_id=APP_ID, access_token="a")).enabled


# -- parse ------------------------------------------------------------------------------------------


def test_text_message_keeps_vietnamese_text_sender_time_and_message_id(offline_connector):
    [message] = offline_connector.parse(load_event("user_send_text"))

    assert message.kind == "message"
    assert message.channel == "zalo_oa"
    assert message.sender_id == CUSTOMER
    assert message.external_id == message.reply_token == "96d3cdf3af150460909"
    assert message.text.startswith("Chào shop, đơn hàng #DH10234")
    assert message.timestamp == datetime(2024, 11, 25, 8, 0, 0, 123000, tzinfo=UTC)
    assert message.metadata["oa_id"] == OA_ID
    assert message.metadata["user_id_by_app"] == "552177279717587730"
    assert message.answerable


def test_image_keeps_its_url_and_caption(offline_connector):
    [message] = offline_connector.parse(load_event("user_send_image"))

    assert message.kind == "message"
    assert message.text == "Ảnh nồi bị móp khi nhận hàng"
    [image] = message.attachments
    assert (image.kind, image.url) == ("image", "https://photo-stal-2.zdn.vn/jpg/9d1f2e3c4b5a.jpg")


@pytest.mark.parametrize(
    ("event_name", "zalo_payload", "expected"),
    [
        pytest.param(
            "user_send_file",
            {"url": "https://f.zdn.vn/hoa-don.pdf", "name": "hoa-don-DH10234.pdf", "size": "20480"},
            ("file", "https://f.zdn.vn/hoa-don.pdf", "hoa-don-DH10234.pdf", "application/pdf"),
            id="file",
        ),
        pytest.param(
            "user_send_sticker",
            {"id": "bfe458bf64fa8da4d4eb", "url": "https://zalo-api.zadn.vn/api/emoticon/sticker?eid=1"},
            ("sticker", "https://zalo-api.zadn.vn/api/emoticon/sticker?eid=1", None, None),
            id="sticker",
        ),
        pytest.param(
            "user_send_gif",
            {"url": "https://f.zdn.vn/cam-on.gif", "thumbnail": "https://f.zdn.vn/cam-on.jpg"},
            ("image", "https://f.zdn.vn/cam-on.gif", None, "image/gif"),
            id="gif",
        ),
        pytest.param(
            "user_send_audio",
            {"url": "https://f.zdn.vn/voice.aac"},
            ("audio", "https://f.zdn.vn/voice.aac", None, None),
            id="audio",
        ),
        pytest.param(
            "user_send_video",
            {"url": "https://f.zdn.vn/mo-hop.mp4", "thumbnail": "https://f.zdn.vn/mo-hop.jpg"},
            ("video", "https://f.zdn.vn/mo-hop.mp4", None, None),
            id="video",
        ),
    ],
)
def test_media_events_become_messages_with_one_attachment(offline_connector, event_name, zalo_payload,
                                                          expected):
    event = load_event("user_send_image")
    event["event_name"] = event_name
    attachment = {"type": event_name.removeprefix("user_send_"), "payload": zalo_payload}
    event["message"] = {"msg_id": "e1f2a3b4c5d6e7f8a9b0", "attachments": [attachment]}

    [message] = offline_connector.parse(event)

    assert message.kind == "message"
    assert message.external_id == "e1f2a3b4c5d6e7f8a9b0"
    [attachment] = message.attachments
    assert (attachment.kind, attachment.url, attachment.name, attachment.mime_type) == expected


def test_shared_link_becomes_its_address_as_text(offline_connector):
    event = load_event("user_send_image")
    event["event_name"] = "user_send_link"
    event["message"] = {"msg_id": "f0e1d2c3b4a5f6e7d8c9", "attachments": [
        {"type": "link", "payload": {"url": "https://shopee.vn/noi-com-dien", "description": "Nồi cơm"}}
    ]}

    [message] = offline_connector.parse(event)

    assert message.kind == "message"
    assert message.text == "https://shopee.vn/noi-com-dien"


def test_shared_location_keeps_its_coordinates(offline_connector):
    [message] = offline_connector.parse(load_event("user_send_location"))

    assert message.kind == "message"
    assert message.metadata["location"] == {"latitude": 10.762622, "longitude": 106.660172}
    assert message.attachments[0].url == "geo:10.762622,106.660172"


def test_submitted_info_form_keeps_the_phone_number_for_order_lookup(offline_connector):
    [message] = offline_connector.parse(load_event("user_submit_info"))

    assert message.kind == "message"
    assert message.sender_id == CUSTOMER
    assert message.metadata["contact"] == {
        "name": "Nguyễn Thị Hương",
        "phone_number": "84901234567",
        "address": "12 Nguyễn Huệ, Phường Bến Nghé, Thành phố Hồ Chí Minh",
    }
    assert message.external_id == f"user_submit_info:{CUSTOMER}:1732521840000"


def test_follow_is_recorded_under_the_follower_with_a_stable_id(offline_connector):
    [follow] = offline_connector.parse(load_event("follow"))
    [redelivered] = offline_connector.parse(load_event("follow"))

    assert follow.kind == "follow"
    assert follow.sender_id == CUSTOMER
    assert follow.metadata["oa_id"] == OA_ID
    assert follow.external_id == redelivered.external_id == f"follow:{CUSTOMER}:1732521000789"


def test_follow_without_a_timestamp_and_with_a_lone_surrogate_still_gets_an_id(offline_connector):
    event = load_event("follow")
    del event["timestamp"]
    event["source"] = "oa\ud800"

    [follow] = offline_connector.parse(event)

    assert follow.kind == "follow" and follow.external_id.startswith(f"follow:{CUSTOMER}:")


def test_unfollow_is_recorded_apart_from_the_follow(offline_connector):
    event = load_event("follow")
    event["event_name"] = "unfollow"

    [unfollow] = offline_connector.parse(event)
    [follow] = offline_connector.parse(load_event("follow"))

    assert unfollow.kind == "unfollow"
    assert unfollow.sender_id == CUSTOMER
    assert unfollow.external_id != follow.external_id


def test_delivery_receipt_is_filed_under_the_customer_it_reached(offline_connector):
    [receipt] = offline_connector.parse(load_event("user_received_message"))

    assert receipt.kind == "delivery"
    assert receipt.sender_id == CUSTOMER
    assert receipt.metadata["message_ids"] == ["c1d2e3f4a5b6c7d8e9f0"]
    assert receipt.metadata["oa_id"] == OA_ID


def test_read_receipt_names_every_message_seen(offline_connector):
    [receipt] = offline_connector.parse(load_event("user_seen_message"))

    assert receipt.kind == "read"
    assert receipt.sender_id == CUSTOMER
    assert receipt.metadata["message_ids"] == ["c1d2e3f4a5b6c7d8e9f0", "0f9e8d7c6b5a4f3e2d1c"]
    assert receipt.external_id == f"user_seen_message:{CUSTOMER}:1732521720000"


def test_oa_message_echo_is_recorded_apart_from_receipts_of_the_same_message(offline_connector):
    [echo] = offline_connector.parse(load_event("oa_send_text"))
    [receipt] = offline_connector.parse(load_event("user_received_message"))

    assert echo.kind == "echo"
    assert echo.sender_id == CUSTOMER
    assert echo.metadata["admin_id"] == "6149207853459911002"
    assert echo.metadata["message_id"] == receipt.metadata["message_ids"][0]
    assert echo.external_id != receipt.external_id


@pytest.mark.parametrize(
    "name", ["user_received_message", "user_seen_message", "oa_send_text", "follow"]
)
def test_receipts_echoes_and_follows_are_never_answered(offline_connector, name):
    [event] = offline_connector.parse(load_event(name))

    assert not event.answerable


def test_rating_button_press_is_a_postback_carrying_the_rating(offline_connector):
    event = load_event("user_send_text")
    event["message"]["text"] = "rating:conv-1:5"

    [press] = offline_connector.parse(event)

    assert press.kind == "postback"
    assert press.text == press.payload == "rating:conv-1:5"
    assert parse_rating_payload(press.payload) == ("conv-1", 5)
    assert press.metadata["rating"] == {"subject": "conv-1", "stars": 5}
    assert press.reply_token == "96d3cdf3af150460909"


def test_menu_button_press_is_a_postback_with_the_payload_it_was_sent_with(offline_connector):
    event = load_event("user_send_text")
    event["message"]["text"] = "postback:order_status"

    [press] = offline_connector.parse(event)

    assert (press.kind, press.payload) == ("postback", "order_status")


def test_unknown_event_is_recorded_as_unsupported(offline_connector):
    event = load_event("user_send_text")
    event["event_name"] = "user_reacted_message"
    event["message"] = {"msg_id": "96d3cdf3af150460909", "react_icon": "/-heart"}

    [reaction] = offline_connector.parse(event)

    assert reaction.kind == "unsupported"
    assert not reaction.answerable
    assert reaction.sender_id == CUSTOMER
    assert reaction.metadata["event_name"] == "user_reacted_message"


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param([{"event_name": "user_send_text"}], id="not-an-object"),
        pytest.param({"sender": {"id": "1"}}, id="no-event-name"),
        pytest.param({"event_name": "user_send_text", "sender": {"id": "1"}}, id="text-without-message"),
        pytest.param({"event_name": "user_send_text", "sender": {"id": "1"}, "message": {"text": "hi"}},
                     id="text-without-msg-id"),
        pytest.param({"event_name": "user_send_text", "message": {"text": "hi", "msg_id": "m"}},
                     id="no-sender"),
        pytest.param({"event_name": "follow", "timestamp": "1"}, id="follow-without-follower"),
        pytest.param({"event_name": "user_send_text", "sender": {"id": "1"}, "timestamp": "yesterday",
                      "message": {"text": "hi", "msg_id": "m"}}, id="timestamp-not-a-number"),
        pytest.param({"event_name": "user_seen_message", "recipient": {"id": "1"},
                      "message": {"msg_ids": []}}, id="receipt-naming-no-message"),
    ],
)
def test_malformed_event_is_refused_with_a_reason(offline_connector, payload):
    with pytest.raises(PayloadError) as refused:
        offline_connector.parse(payload)
    assert refused.value.reason
    assert refused.value.status == 422


# -- send -------------------------------------------------------------------------------------------


async def test_send_text_posts_to_the_cs_endpoint_with_the_access_token_header(connector, zalo):
    message_id = await connector.send_text(CUSTOMER, "Đơn #DH10234 đang được giao, dự kiến ngày mai ạ.")

    [call] = zalo.calls_to("message")
    assert call.headers["access_token"] == zalo.access_token
    assert "authorization" not in call.headers
    assert call.body == {
        "recipient": {"user_id": CUSTOMER},
        "message": {"text": "Đơn #DH10234 đang được giao, dự kiến ngày mai ạ."},
    }
    assert len(message_id) == 20
    assert zalo.sent_messages(user_id=CUSTOMER) == [call.body]


async def test_reply_is_addressed_to_the_customers_message(connector, zalo):
    await connector.send_text(CUSTOMER, "Dạ vâng", reply_to="96d3cdf3af150460909")

    [sent] = zalo.sent_messages()
    assert sent["recipient"] == {"message_id": "96d3cdf3af150460909"}


async def test_rating_request_shows_five_hidden_query_buttons_that_come_back_as_ratings(connector, zalo):
    request = OutboundRatingRequest(recipient_id=CUSTOMER, text="Bạn đánh giá thế nào?", subject="conv-1")

    await connector.send(request)

    [sent] = zalo.sent_messages()
    assert sent["message"]["text"] == "Bạn đánh giá thế nào?"
    attachment = sent["message"]["attachment"]
    assert attachment["type"] == "template"
    buttons = attachment["payload"]["buttons"]
    assert [button["type"] for button in buttons] == ["oa.query.hide"] * 5
    assert buttons[4] == {"title": "⭐⭐⭐⭐⭐", "type": "oa.query.hide", "payload": "rating:conv-1:5"}
    # what Zalo sends back when the customer presses the fifth button
    event = load_event("user_send_text")
    event["message"]["text"] = buttons[4]["payload"]
    [press] = connector.parse(event)
    assert (press.kind, press.metadata["rating"]) == ("postback", {"subject": "conv-1", "stars": 5})


async def test_menu_buttons_send_payloads_that_parse_back_to_the_same_postback(connector, zalo):
    menu = OutboundButtons(
        recipient_id=CUSTOMER,
        text="Bạn cần hỗ trợ gì?",
        buttons=(
            Button(title="Tra cứu đơn hàng", payload="order_status"),
            Button(title="Bảo hành", payload="warranty"),
        ),
    )

    await connector.send(menu)

    buttons = zalo.sent_messages()[0]["message"]["attachment"]["payload"]["buttons"]
    event = load_event("user_send_text")
    event["message"]["text"] = buttons[0]["payload"]
    [press] = connector.parse(event)
    assert (press.kind, press.payload) == ("postback", "order_status")


async def test_more_than_five_buttons_become_numbered_text(connector, zalo):
    options = tuple(Button(title=f"Chi nhánh {number}", payload=f"branch_{number}") for number in range(1, 7))

    await connector.send_buttons(CUSTOMER, "Chọn chi nhánh", options)

    [sent] = zalo.sent_messages()
    assert "attachment" not in sent["message"]
    assert sent["message"]["text"].splitlines()[-1] == "6. Chi nhánh 6"


# -- tokens -----------------------------------------------------------------------------------------


async def test_expired_access_token_is_refreshed_once_and_the_send_succeeds(connector, zalo):
    old_refresh_token = zalo.refresh_token
    zalo.expire_access_token()

    message_id = await connector.send_text(CUSTOMER, "Xin chào")

    assert message_id
    assert zalo.refresh_count == 1
    [refresh] = zalo.calls_to("token")
    assert refresh.headers["secret_key"] == APP_SECRET
    assert refresh.body == {
        "refresh_token": old_refresh_token, "app_id": APP_ID, "grant_type": "refresh_token"
    }
    first, second = zalo.calls_to("message")
    assert first.headers["access_token"] != second.headers["access_token"] == zalo.access_token
    assert len(zalo.sent_messages()) == 1


async def test_concurrent_sends_with_an_expired_token_refresh_exactly_once(connector, zalo):
    zalo.expire_access_token()
    # hold the refresh answer so the second sender is sure to be waiting for it
    zalo.delay_next(0.1, "token")

    ids = await asyncio.gather(
        connector.send_text(CUSTOMER, "Tin thứ nhất"), connector.send_text(CUSTOMER, "Tin thứ hai")
    )

    assert len(set(ids)) == 2
    assert zalo.refresh_count == 1
    assert len(zalo.calls_to("token")) == 1
    assert len(zalo.sent_messages()) == 2


async def test_refreshed_pair_is_saved_to_the_token_store_before_use(connector, zalo, token_store):
    zalo.expire_access_token()

    await connector.send_text(CUSTOMER, "Xin chào")

    [saved] = token_store.saved
    assert (saved.access_token, saved.refresh_token) == (zalo.access_token, zalo.refresh_token)
    assert saved.expires_at == MORNING + timedelta(seconds=90000)
    assert await token_store.load() == saved


async def test_pair_from_the_token_store_is_preferred_over_the_configured_one(zalo):
    # the configured refresh token was used up by an earlier run, which saved the pair it got
    store = RecordingTokenStore(ZaloTokens(access_token=zalo.access_token, refresh_token=zalo.refresh_token))
    connector = ZaloOAConnector(
        make_config(zalo, access_token="used-up-access", refresh_token="used-up-refresh"), store
    )
    try:
        await connector.send_text(CUSTOMER, "Xin chào")
    finally:
        await connector.close()

    assert zalo.calls_to("token") == []
    assert len(zalo.sent_messages()) == 1


async def test_newly_configured_refresh_token_is_used_when_the_saved_one_is_refused(zalo):
    # an admin authorised CareDesk again after the saved pair died, and configured the new refresh token
    store = RecordingTokenStore(ZaloTokens(access_token="dead-access", refresh_token="dead-refresh"))
    configured = zalo.refresh_token
    connector = ZaloOAConnector(make_config(zalo, access_token=""), store)
    try:
        await connector.send_text(CUSTOMER, "Xin chào")
    finally:
        await connector.close()

    assert [call.body["refresh_token"] for call in zalo.calls_to("token")] == ["dead-refresh", configured]
    assert zalo.refresh_count == 1
    assert store.saved[-1].refresh_token == zalo.refresh_token
    assert len(zalo.sent_messages()) == 1


async def test_access_token_past_its_expiry_is_refreshed_before_sending(zalo, token_store):
    await token_store.save(
        ZaloTokens(access_token=zalo.access_token, refresh_token=zalo.refresh_token, expires_at=MORNING)
    )
    connector = ZaloOAConnector(make_config(zalo), token_store, clock=lambda: MORNING)
    try:
        await connector.send_text(CUSTOMER, "Xin chào")
    finally:
        await connector.close()

    assert zalo.refresh_count == 1
    assert len(zalo.calls_to("message")) == 1


async def test_invalid_refresh_token_is_not_retryable_and_names_the_setting(zalo):
    connector = ZaloOAConnector(make_config(zalo, refresh_token="revoked-refresh-token"))
    zalo.expire_access_token()
    try:
        with pytest.raises(DeliveryError) as failed:
            await connector.send_text(CUSTOMER, "Xin chào")
    finally:
        await connector.close()

    assert not failed.value.retryable
    assert failed.value.refresh_token
    assert "CAREDESK_ZALO_OA__REFRESH_TOKEN" in failed.value.reason
    assert zalo.refresh_count == 0
    assert zalo.sent_messages() == []


async def test_token_rejected_again_after_a_refresh_is_not_retried_in_a_loop(connector, zalo):
    zalo.fail_next(-216, times=2)

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER, "Xin chào")

    assert not failed.value.retryable
    assert zalo.refresh_count == 1
    assert len(zalo.calls_to("message")) == 2


# -- delivery errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [-230, -232])
async def test_closed_interaction_window_is_not_retryable_and_says_why(connector, zalo, code):
    zalo.fail_next(code)

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER, "Xin chào")

    assert not failed.value.retryable
    assert not failed.value.unreachable
    assert failed.value.code == code
    assert "7 days" in failed.value.reason
    assert zalo.calls_to("token") == []


@pytest.mark.parametrize("code", [-217, -227, -244])
async def test_customer_who_blocked_or_left_zalo_is_marked_unreachable(connector, zalo, code):
    zalo.fail_next(code, message="User cannot receive this message")

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER, "Xin chào")

    assert failed.value.unreachable
    assert not failed.value.retryable
    assert failed.value.code == code


async def test_rate_limit_is_retryable_after_a_minute(connector, zalo):
    zalo.fail_next(-32)

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER, "Xin chào")

    assert failed.value.retryable
    assert failed.value.retry_after == 60
    assert failed.value.code == -32


@pytest.mark.parametrize(
    ("now_utc", "expected_wait"),
    [
        pytest.param(datetime(2024, 11, 25, 16, 30, tzinfo=UTC), timedelta(hours=6, minutes=30), id="23:30"),
        pytest.param(datetime(2024, 11, 25, 15, 0, tzinfo=UTC), timedelta(hours=8), id="22:00"),
        pytest.param(datetime(2024, 11, 25, 20, 15, tzinfo=UTC), timedelta(hours=2, minutes=45), id="03:15"),
        pytest.param(datetime(2024, 11, 25, 22, 59, 30, tzinfo=UTC), timedelta(seconds=30), id="05:59:30"),
    ],
)
async def test_night_time_refusal_is_retried_at_six_in_the_morning_vietnam_time(zalo, now_utc, expected_wait):
    connector = ZaloOAConnector(make_config(zalo), clock=lambda: now_utc)
    zalo.fail_next(-234)
    try:
        with pytest.raises(DeliveryError) as failed:
            await connector.send_text(CUSTOMER, "Xin chào")
    finally:
        await connector.close()

    assert failed.value.retryable
    assert failed.value.retry_after == expected_wait.total_seconds()
    assert failed.value.code == -234


def test_night_refusal_during_vietnamese_daytime_is_retried_shortly():
    assert seconds_until_morning(MORNING) == 60


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_zalo_server_error_is_retryable(connector, zalo, status):
    zalo.fail_next_http(status)

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER, "Xin chào")

    assert failed.value.retryable
    assert failed.value.code == status


async def test_request_timeout_is_retryable(connector, zalo):
    zalo.delay_next(2.0)

    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER, "Xin chào")

    assert failed.value.retryable
    assert failed.value.code == "timeout"


async def test_invalid_parameter_is_not_retryable_and_names_the_field(connector, zalo):
    with pytest.raises(DeliveryError) as failed:
        await connector.send_text(CUSTOMER, "x" * 2001)

    assert not failed.value.retryable
    assert failed.value.code == -201
    assert "text is invalid" in failed.value.reason


async def test_unconfigured_connector_refuses_to_send_without_calling_zalo(zalo):
    connector = ZaloOAConnector(ZaloOAConfig(api_base=zalo.base_url))

    with pytest.raises(DeliveryError, match="CAREDESK_ZALO_OA__APP_ID") as failed:
        await connector.send_text(CUSTOMER, "Xin chào")

    assert not failed.value.retryable
    assert zalo.calls == []
