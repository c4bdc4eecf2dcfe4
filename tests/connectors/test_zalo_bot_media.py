"""Zalo Bot media: photos and stickers in webhooks, fetching them, sending photos by address.

The loopback Bot API serves CDN-like addresses and, like Zalo, fetches a sent photo from its address,
so a test sees the bytes that reached the platform.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.base import DeliveryError, MediaError, MediaFile
from connectors.zalo_bot import MEDIA_LIMITS, ZaloBotConfig, ZaloBotConnector
from tests.fakes.media import jpeg_bytes, pdf_bytes, png_bytes
from tests.fakes.zalo_api import FakeZaloBotAPI

PAYLOADS = Path(__file__).parents[1] / "payloads" / "zalo_bot"
TOKEN = "1234567890:zalo-bot-test-token"
CHAT = "6ede9afa66b88fe6d6a9"


def image_event(**message: Any) -> dict[str, Any]:
    """The saved image event with ``message`` fields replaced."""
    event = json.loads((PAYLOADS / "image.json").read_text(encoding="utf-8"))
    event["result"]["message"].update(message)
    return event


@pytest.fixture
def bot_api():
    """A fresh loopback Zalo Bot API."""
    with FakeZaloBotAPI(token=TOKEN) as fake:
        yield fake


@pytest.fixture
async def connector(bot_api):
    """A connector pointed at the fake."""
    connector = ZaloBotConnector(ZaloBotConfig(token=TOKEN, secret_token="s" * 16, api_base=bot_api.base_url,
                                               request_timeout_s=2.0))
    yield connector
    await connector.close()


# -- parse ------------------------------------------------------------------------------------------


def test_photo_with_caption_keeps_both(connector):
    [message] = connector.parse(json.loads((PAYLOADS / "image.json").read_text(encoding="utf-8")))

    [photo] = message.attachments
    assert message.text == "Máy xay bị nứt cối"
    assert (photo.kind, photo.url) == ("image", "https://f21-zpc.zdn.vn/jpg/8150238573941528041/3c5d2f0e9a1b.jpg")


def test_photo_as_webhooks_send_it_under_photo_url(connector):
    event = image_event(photo_url="https://f21-zpc.zdn.vn/jpg/1/a.jpg", caption="")
    del event["result"]["message"]["photo"]

    [message] = connector.parse(event)

    assert [attachment.url for attachment in message.attachments] == ["https://f21-zpc.zdn.vn/jpg/1/a.jpg"]
    assert message.kind == "message"


def test_sticker_keeps_its_id_and_picture(connector):
    event = image_event(sticker="bfe458bf64fa8da4d4eb", url="https://zalo-api.zadn.vn/api/emoticon/sticker?eid=1")
    event["result"]["event_name"] = "message.sticker.received"
    for key in ("photo", "caption"):
        del event["result"]["message"][key]

    [message] = connector.parse(event)

    [sticker] = message.attachments
    assert (sticker.kind, sticker.file_id, sticker.url) == ("sticker", "bfe458bf64fa8da4d4eb",
                                                            "https://zalo-api.zadn.vn/api/emoticon/sticker?eid=1")
    assert message.kind == "message" and message.text == ""


# -- fetch_media ------------------------------------------------------------------------------------


async def test_photo_is_fetched_with_its_exact_bytes(connector, bot_api):
    photo = jpeg_bytes(30, 20)
    [message] = connector.parse(image_event(photo=bot_api.add_cdn_file(photo)))

    fetched = await connector.fetch_media(message.attachments[0], max_bytes=1_000_000)

    assert (fetched.data, fetched.mime_type) == (photo, "image/jpeg")


async def test_expired_photo_link_is_a_final_media_error(connector, bot_api):
    url = bot_api.add_cdn_file(png_bytes())
    bot_api.expire_cdn_file(url)
    [message] = connector.parse(image_event(photo=url))

    with pytest.raises(MediaError) as failed:
        await connector.fetch_media(message.attachments[0], max_bytes=1_000_000)

    assert not failed.value.retryable and "404" in failed.value.reason


async def test_photo_over_the_limit_is_refused(connector, bot_api):
    [message] = connector.parse(image_event(photo=bot_api.add_cdn_file(png_bytes(64, 64))))

    with pytest.raises(MediaError) as failed:
        await connector.fetch_media(message.attachments[0], max_bytes=50)

    assert not failed.value.retryable


# -- send_file --------------------------------------------------------------------------------------


async def test_photo_is_sent_by_address_and_zalo_gets_exactly_its_bytes(connector, bot_api):
    photo = jpeg_bytes(40, 30)
    signed_link = bot_api.add_cdn_file(photo, name="phu-tung.jpg")

    message_id = await connector.send_file(CHAT, MediaFile(photo, "image/jpeg", "phu-tung.jpg", url=signed_link),
                                           "image", caption="Phụ tùng đúng đây ạ")

    [sent] = bot_api.sent_photos(CHAT)
    assert (sent.url, sent.data, sent.caption) == (signed_link, photo, "Phụ tùng đúng đây ạ")
    assert message_id


async def test_photo_without_a_public_address_is_refused_with_a_clear_reason(connector, bot_api):
    with pytest.raises(DeliveryError) as refused:
        await connector.send_file(CHAT, MediaFile(png_bytes(), "image/png", "a.png"), "image")

    assert not refused.value.retryable and "public" in refused.value.reason
    assert bot_api.calls == []


async def test_documents_are_not_sendable_on_zalo_bots(connector, bot_api):
    with pytest.raises(DeliveryError) as refused:
        await connector.send_file(CHAT, MediaFile(pdf_bytes(), "application/pdf", "a.pdf", url="https://x/a.pdf"),
                                  "file")

    assert not refused.value.retryable and "photos only" in refused.value.reason
    assert "file" not in ZaloBotConnector.media_limits


async def test_photo_over_the_limit_is_refused_before_calling_zalo(connector, bot_api):
    too_big = MediaFile(b"\xff" * (MEDIA_LIMITS["image"] + 1), "image/jpeg", "a.jpg", url="https://x/a.jpg")

    with pytest.raises(DeliveryError) as refused:
        await connector.send_file(CHAT, too_big, "image")

    assert not refused.value.retryable and bot_api.calls == []


async def test_zalo_unable_to_fetch_the_photo_is_a_final_refusal_with_its_reason(connector, bot_api):
    gone = bot_api.add_cdn_file(png_bytes())
    bot_api.expire_cdn_file(gone)

    with pytest.raises(DeliveryError) as refused:
        await connector.send_file(CHAT, MediaFile(png_bytes(), "image/png", "a.png", url=gone), "image")

    assert not refused.value.retryable
    assert "cannot download photo from url" in refused.value.reason


async def test_zalo_server_error_on_send_photo_is_retryable(connector, bot_api):
    bot_api.fail_next("sendPhoto", 502)

    with pytest.raises(DeliveryError) as refused:
        await connector.send_file(CHAT, MediaFile(png_bytes(), "image/png", "a.png",
                                                  url=bot_api.add_cdn_file(png_bytes())), "image")

    assert refused.value.retryable
