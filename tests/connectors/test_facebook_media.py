"""Messenger media: attachment kinds in webhooks, fetching from the CDN, sending files with the Send API.

Fetching and sending go through the connector's real HTTP code to the loopback Graph API, which
serves CDN-like file addresses and records every multipart upload.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.base import DeliveryError, MediaError, MediaFile
from connectors.facebook import FacebookConfig, FacebookConnector
from connectors.facebook_media import MEDIA_LIMITS
from tests.fakes.facebook_api import FakeGraphAPI
from tests.fakes.media import jpeg_bytes, mp4_bytes, ogg_bytes, pdf_bytes, png_bytes

PAYLOADS = Path(__file__).parents[1] / "payloads" / "facebook"
PAGE_TOKEN = "EAAG-test-page-token"
APP_SECRET = "fb-app-secret"
PAGE_ID = "104857600123456"
CUSTOMER = "6843215790123456"


def event_with(attachments: list[dict[str, Any]], text: str | None = None) -> dict[str, Any]:
    """The saved image webhook, carrying ``attachments`` (and ``text``) instead."""
    event = json.loads((PAYLOADS / "image_attachment.json").read_text(encoding="utf-8"))
    message = event["entry"][0]["messaging"][0]["message"]
    message["attachments"] = attachments
    if text is not None:
        message["text"] = text
    return event


@pytest.fixture
def offline():
    """A connector for parse, which never touches the network."""
    return FacebookConnector(FacebookConfig(app_secret=APP_SECRET, page_access_token=PAGE_TOKEN,
                                            graph_api_base="http://127.0.0.1:9/v21.0"))


@pytest.fixture
def graph_api():
    """A fresh loopback Graph API requiring the appsecret_proof."""
    with FakeGraphAPI(page_access_token=PAGE_TOKEN, page_id=PAGE_ID, app_secret=APP_SECRET) as fake:
        yield fake


@pytest.fixture
async def connector(graph_api):
    """A connector talking to the fake."""
    connector = FacebookConnector(FacebookConfig(app_secret=APP_SECRET, page_access_token=PAGE_TOKEN,
                                                 graph_api_base=graph_api.base_url, request_timeout_s=2.0))
    yield connector
    await connector.close()


# -- parse ------------------------------------------------------------------------------------------


def test_photo_with_text_keeps_both(offline):
    [message] = offline.parse(event_with(
        [{"type": "image", "payload": {"url": "https://scontent.xx.fbcdn.net/v/t1.15752-9/1_n.jpg?oe=6770A1B2"}}],
        text="Hộp bị móp khi nhận"))

    [image] = message.attachments
    assert message.text == "Hộp bị móp khi nhận"
    assert (image.kind, image.url) == ("image", "https://scontent.xx.fbcdn.net/v/t1.15752-9/1_n.jpg?oe=6770A1B2")
    assert image.downloadable


def test_several_photos_in_one_message_are_all_kept(offline):
    urls = [f"https://scontent.xx.fbcdn.net/v/t1.15752-9/{n}_n.jpg" for n in range(3)]
    [message] = offline.parse(event_with([{"type": "image", "payload": {"url": url}} for url in urls]))

    assert [attachment.url for attachment in message.attachments] == urls


def test_file_is_named_by_its_cdn_path(offline):
    [message] = offline.parse(event_with([{"type": "file", "payload": {
        "url": "https://cdn.fbsbx.com/v/t59.2708-21/4681_n/ho%C3%A1-%C4%91%C6%A1n.pdf/hoa-don.pdf?_nc_cat=1"}}]))

    [document] = message.attachments
    assert (document.kind, document.name) == ("file", "hoa-don.pdf")


def test_like_sticker_is_a_sticker_with_its_id(offline):
    [message] = offline.parse(event_with([{"type": "image", "payload": {
        "url": "https://scontent.xx.fbcdn.net/v/t39.1997-6/851557_369239266556155_759568595_n.png",
        "sticker_id": 369239263222822}}]))

    [sticker] = message.attachments
    assert (sticker.kind, sticker.file_id) == ("sticker", "369239263222822")


def test_location_carries_its_coordinates(offline):
    [message] = offline.parse(event_with([{"type": "location", "title": "Vị trí của Hương",
                                           "payload": {"coordinates": {"lat": 10.7769, "long": 106.7009}}}]))

    [place] = message.attachments
    assert (place.kind, place.latitude, place.longitude, place.name) == ("location", 10.7769, 106.7009,
                                                                         "Vị trí của Hương")
    assert not place.downloadable


def test_shared_link_goes_into_the_text_not_into_attachments(offline):
    [message] = offline.parse(event_with([{"type": "fallback", "payload": {
        "url": "https://shopee.vn/noi-com-dien-i.123.456", "title": "Nồi cơm điện 1.8L"}}]))

    assert message.attachments == ()
    assert message.text == "https://shopee.vn/noi-com-dien-i.123.456"
    assert message.kind == "message"


def test_shared_link_already_in_the_text_is_not_repeated(offline):
    link = "https://shopee.vn/noi-com-dien-i.123.456"
    [message] = offline.parse(event_with([{"type": "fallback", "payload": {"url": link}}],
                                         text=f"Shop xem giúp {link}"))

    assert message.text == f"Shop xem giúp {link}"


# -- fetch_media ------------------------------------------------------------------------------------


async def test_photo_is_fetched_from_the_cdn_with_its_exact_bytes(connector, graph_api):
    photo = jpeg_bytes(48, 32)
    url = graph_api.add_cdn_file(photo, name="n.jpg", content_type="image/jpeg")
    [message] = connector.parse(event_with([{"type": "image", "payload": {"url": url}}]))

    fetched = await connector.fetch_media(message.attachments[0], max_bytes=1_000_000)

    assert (fetched.data, fetched.mime_type) == (photo, "image/jpeg")


async def test_voice_message_bytes_come_through(connector, graph_api):
    voice = mp4_bytes()
    url = graph_api.add_cdn_file(voice, name="audioclip.mp4", content_type="audio/mpeg")
    [message] = connector.parse(event_with([{"type": "audio", "payload": {"url": url}}]))

    fetched = await connector.fetch_media(message.attachments[0], max_bytes=1_000_000)

    assert fetched.data == voice


async def test_expired_cdn_link_is_a_final_media_error(connector, graph_api):
    url = graph_api.add_cdn_file(png_bytes())
    graph_api.expire_cdn_file(url)
    [message] = connector.parse(event_with([{"type": "image", "payload": {"url": url}}]))

    with pytest.raises(MediaError) as failed:
        await connector.fetch_media(message.attachments[0], max_bytes=1_000_000)

    assert not failed.value.retryable and "404" in failed.value.reason


async def test_cdn_server_error_is_retryable(connector, graph_api):
    url = graph_api.add_cdn_file(png_bytes())
    graph_api.expire_cdn_file(url, status=503)
    [message] = connector.parse(event_with([{"type": "image", "payload": {"url": url}}]))

    with pytest.raises(MediaError) as failed:
        await connector.fetch_media(message.attachments[0], max_bytes=1_000_000)

    assert failed.value.retryable


async def test_file_over_the_limit_is_refused(connector, graph_api):
    url = graph_api.add_cdn_file(pdf_bytes(), name="big.pdf", content_type="application/pdf")
    [message] = connector.parse(event_with([{"type": "file", "payload": {"url": url}}]))

    with pytest.raises(MediaError) as failed:
        await connector.fetch_media(message.attachments[0], max_bytes=100)

    assert not failed.value.retryable and "over the limit" in failed.value.reason


# -- send_file --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "make", "mime", "name"),
    [
        ("image", lambda: png_bytes(40, 30), "image/png", "phu-tung.png"),
        ("file", pdf_bytes, "application/pdf", "hướng-dẫn.pdf"),
        ("video", mp4_bytes, "video/mp4", "lap-dat.mp4"),
        ("audio", ogg_bytes, "audio/ogg", "loi-nhan.ogg"),
    ],
)
async def test_send_file_uploads_exactly_the_file_then_the_caption(connector, graph_api, kind, make, mime, name):
    data = make()

    message_id = await connector.send_file(CUSTOMER, MediaFile(data, mime, name), kind, caption="Đây ạ")

    [upload] = graph_api.uploaded_files(psid=CUSTOMER)
    assert (upload.attachment_type, upload.data, upload.filename, upload.content_type) == (kind, data, name, mime)
    assert message_id == upload.message_id
    file_message, caption = graph_api.sent_messages(psid=CUSTOMER)
    assert file_message["messaging_type"] == "RESPONSE"
    assert caption["message"] == {"text": "Đây ạ"}


async def test_file_without_caption_is_one_message(connector, graph_api):
    await connector.send_file(CUSTOMER, MediaFile(png_bytes(), "image/png", "a.png"), "image")

    assert len(graph_api.sent_messages()) == 1


async def test_refusal_keeps_facebooks_reason_and_is_final(connector, graph_api):
    graph_api.fail_next(400, code=100, subcode=2018047, message="(#100) Upload attachment failure.")

    with pytest.raises(DeliveryError) as refused:
        await connector.send_file(CUSTOMER, MediaFile(pdf_bytes(), "application/pdf", "a.pdf"), "file")

    assert not refused.value.retryable
    assert refused.value.reason == "(#100) Upload attachment failure."
    assert graph_api.uploaded_files() == []


async def test_empty_file_is_refused_by_messenger_with_its_reason(connector, graph_api):
    with pytest.raises(DeliveryError) as refused:
        await connector.send_file(CUSTOMER, MediaFile(b"", "application/pdf", "empty.pdf"), "file")

    assert not refused.value.retryable and "Upload attachment failure" in refused.value.reason


async def test_graph_server_error_on_upload_is_retryable(connector, graph_api):
    graph_api.fail_next(500, code=2)

    with pytest.raises(DeliveryError) as refused:
        await connector.send_file(CUSTOMER, MediaFile(png_bytes(), "image/png", "a.png"), "image")

    assert refused.value.retryable


async def test_file_over_messengers_25_mb_is_refused_without_uploading(connector, graph_api):
    too_big = MediaFile(b"\0" * (MEDIA_LIMITS["file"] + 1), "application/pdf", "huge.pdf")

    with pytest.raises(DeliveryError) as refused:
        await connector.send_file(CUSTOMER, too_big, "file")

    assert not refused.value.retryable and "at most" in refused.value.reason
    assert graph_api.calls == []


async def test_caption_refused_after_the_file_is_logged_and_the_file_counts_as_sent(connector, graph_api, caplog):
    graph_api.fail_next(400, code=100, message="(#100) caption refused", after=1)

    message_id = await connector.send_file(CUSTOMER, MediaFile(png_bytes(), "image/png", "a.png"), "image",
                                           caption="Ảnh phụ tùng")

    [upload] = graph_api.uploaded_files()
    assert message_id == upload.message_id
    assert "caption refused" in caplog.text
