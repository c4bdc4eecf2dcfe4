"""Zalo OA media: every user_send_* kind, fetching from Zalo's CDN, upload-then-message sending.

Fetching and sending go through the connector's real HTTP code to the loopback Zalo OA API, which
serves CDN-like addresses and records every upload.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from connectors.base import DeliveryError, MediaError, MediaFile
from connectors.zalo_oa import ZaloOAConfig, ZaloOAConnector
from connectors.zalo_oa_media import MEDIA_LIMITS
from tests.fakes.media import jpeg_bytes, mp4_bytes, ogg_bytes, pdf_bytes, png_bytes
from tests.fakes.zalo_api import FakeZaloOA

PAYLOADS = Path(__file__).parents[1] / "payloads" / "zalo_oa"
APP_ID = "3608465248940903967"
OA_SECRET = "oa-secret-key-for-tests"
APP_SECRET = "app-secret-key-for-tests"
OA_ID = "388613280878808645"
CUSTOMER = "2468458835296117922"
MORNING = datetime(2024, 11, 25, 3, 0, tzinfo=UTC)
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def event(event_name: str, attachment_type: str, payload: dict[str, Any], text: str | None = None) -> dict[str, Any]:
    """The saved image event turned into ``event_name`` carrying one attachment of that shape."""
    saved = json.loads((PAYLOADS / "user_send_image.json").read_text(encoding="utf-8"))
    saved["event_name"] = event_name
    saved["message"] = {"msg_id": "e1f2a3b4c5d6e7f8a9b0",
                        "attachments": [{"type": attachment_type, "payload": payload}]}
    if text is not None:
        saved["message"]["text"] = text
    return saved


def gif_bytes(width: int, height: int) -> bytes:
    """A real two-frame GIF."""
    frames = [Image.new("P", (width, height), color) for color in (1, 2)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    return buffer.getvalue()


@pytest.fixture
def offline():
    """A connector for parse, which never touches the network."""
    return ZaloOAConnector(ZaloOAConfig(app_id=APP_ID, oa_secret_key=OA_SECRET, access_token="t"))


@pytest.fixture
def zalo():
    """A fresh loopback Zalo OA API."""
    with FakeZaloOA(app_id=APP_ID, app_secret_key=APP_SECRET, oa_id=OA_ID) as fake:
        yield fake


@pytest.fixture
async def connector(zalo):
    """A connector pointed at the fake, its clock in the Vietnamese morning."""
    config = ZaloOAConfig(app_id=APP_ID, oa_secret_key=OA_SECRET, app_secret_key=APP_SECRET,
                          access_token=zalo.access_token, refresh_token=zalo.refresh_token, api_base=zalo.base_url,
                          oauth_base=zalo.base_url, request_timeout_s=2.0)
    connector = ZaloOAConnector(config, clock=lambda: MORNING)
    yield connector
    await connector.close()


# -- parse ------------------------------------------------------------------------------------------


def test_image_keeps_its_caption_and_zalos_thumbnail(offline):
    saved = json.loads((PAYLOADS / "user_send_image.json").read_text(encoding="utf-8"))
    [message] = offline.parse(saved)

    [image] = message.attachments
    assert message.text == "Ảnh nồi bị móp khi nhận hàng"
    assert image.thumbnail_url == "https://photo-stal-2.zdn.vn/thumb/240/9d1f2e3c4b5a.jpg"


def test_video_keeps_its_poster(offline):
    [message] = offline.parse(event("user_send_video", "video", {
        "url": "https://f.zdn.vn/mo-hop.mp4", "thumbnail": "https://f.zdn.vn/mo-hop.jpg", "description": ""}))

    [video] = message.attachments
    assert (video.kind, video.url, video.thumbnail_url) == ("video", "https://f.zdn.vn/mo-hop.mp4",
                                                            "https://f.zdn.vn/mo-hop.jpg")


def test_file_keeps_its_name_size_and_type(offline):
    [message] = offline.parse(event("user_send_file", "file", {
        "url": "https://dl.zalo.me/hoa-don.pdf", "name": "hoa-don-DH10234.pdf", "size": "20480",
        "checksum": "f1e2d3c4b5a6", "type": "pdf"}))

    [document] = message.attachments
    assert (document.kind, document.name, document.size, document.mime_type) == (
        "file", "hoa-don-DH10234.pdf", 20480, "application/pdf")


def test_gif_is_an_animated_image(offline):
    [message] = offline.parse(event("user_send_gif", "gif", {
        "url": "https://f.zdn.vn/cam-on.gif", "thumbnail": "https://f.zdn.vn/cam-on.jpg"}))

    [gif] = message.attachments
    assert (gif.kind, gif.mime_type, gif.thumbnail_url) == ("image", "image/gif", "https://f.zdn.vn/cam-on.jpg")


def test_location_carries_coordinates_as_numbers(offline):
    [message] = offline.parse(json.loads((PAYLOADS / "user_send_location.json").read_text(encoding="utf-8")))

    [place] = message.attachments
    assert (place.kind, place.latitude, place.longitude) == ("location", 10.762622, 106.660172)


def test_shared_link_is_text_and_no_attachment(offline):
    [message] = offline.parse(event("user_send_link", "link", {
        "url": "https://shopee.vn/noi-com-dien", "description": "Nồi cơm", "thumbnail": "https://f.zdn.vn/t.jpg"},
        text="Shop xem giúp mẫu này"))

    assert message.attachments == ()
    assert message.text == "Shop xem giúp mẫu này\nhttps://shopee.vn/noi-com-dien"


def test_submitted_info_form_carries_the_phone_as_a_contact(offline):
    [message] = offline.parse(json.loads((PAYLOADS / "user_submit_info.json").read_text(encoding="utf-8")))

    [contact] = message.attachments
    assert (contact.kind, contact.phone, contact.name) == ("contact", "84901234567", "Nguyễn Thị Hương")
    assert not contact.downloadable


# -- fetch_media ------------------------------------------------------------------------------------


async def test_photo_is_fetched_from_zalos_cdn_with_its_exact_bytes(connector, zalo):
    photo = jpeg_bytes(40, 40)
    url = zalo.add_cdn_file(photo)
    [message] = connector.parse(event("user_send_image", "image", {"url": url, "thumbnail": url}))

    fetched = await connector.fetch_media(message.attachments[0], max_bytes=1_000_000)

    assert (fetched.data, fetched.mime_type) == (photo, "image/jpeg")


async def test_file_keeps_its_name_when_fetched(connector, zalo):
    pdf = pdf_bytes()
    url = zalo.add_cdn_file(pdf, name="hd.pdf", content_type="application/pdf")
    [message] = connector.parse(event("user_send_file", "file", {"url": url, "name": "bảo-hành.pdf",
                                                                 "size": str(len(pdf))}))

    fetched = await connector.fetch_media(message.attachments[0], max_bytes=1_000_000)

    assert (fetched.data, fetched.name) == (pdf, "bảo-hành.pdf")


async def test_expired_zalo_link_is_a_final_media_error(connector, zalo):
    url = zalo.add_cdn_file(png_bytes())
    zalo.expire_cdn_file(url)
    [message] = connector.parse(event("user_send_image", "image", {"url": url}))

    with pytest.raises(MediaError) as failed:
        await connector.fetch_media(message.attachments[0], max_bytes=1_000_000)

    assert not failed.value.retryable and "404" in failed.value.reason


async def test_video_over_the_limit_is_refused(connector, zalo):
    url = zalo.add_cdn_file(mp4_bytes(), name="v.mp4", content_type="video/mp4")
    [message] = connector.parse(event("user_send_video", "video", {"url": url}))

    with pytest.raises(MediaError) as failed:
        await connector.fetch_media(message.attachments[0], max_bytes=10)

    assert not failed.value.retryable and "over the limit" in failed.value.reason


# -- send_file --------------------------------------------------------------------------------------


async def test_image_is_uploaded_then_sent_by_attachment_id_with_its_caption(connector, zalo):
    photo = jpeg_bytes(40, 30)

    message_id = await connector.send_file(CUSTOMER, MediaFile(photo, "image/jpeg", "phu-tung.jpg"), "image",
                                           caption="Phụ tùng đúng đây ạ", reply_to="a7b8e1c2d3f4e5a6b7c8")

    [upload] = zalo.uploads()
    assert (upload.kind, upload.data, upload.filename, upload.content_type) == ("image", photo, "phu-tung.jpg",
                                                                                 "image/jpeg")
    [sent] = zalo.sent_messages()
    assert sent["recipient"] == {"message_id": "a7b8e1c2d3f4e5a6b7c8"}
    assert sent["message"]["text"] == "Phụ tùng đúng đây ạ"
    [element] = sent["message"]["attachment"]["payload"]["elements"]
    assert element == {"media_type": "image", "attachment_id": upload.reference}
    assert message_id


async def test_gif_goes_to_the_gif_upload_with_its_size(connector, zalo):
    gif = gif_bytes(24, 16)

    await connector.send_file(CUSTOMER, MediaFile(gif, "image/gif", "cam-on.gif"), "image")

    [upload] = zalo.uploads()
    assert (upload.kind, upload.data) == ("gif", gif)
    [element] = zalo.sent_messages()[0]["message"]["attachment"]["payload"]["elements"]
    assert (element["media_type"], element["width"], element["height"]) == ("gif", 24, 16)


@pytest.mark.parametrize(("mime", "name"), [("application/pdf", "huong-dan.pdf"), (DOCX, "phieu-bao-hanh.docx")])
async def test_document_is_uploaded_then_sent_by_token_and_the_caption_follows(connector, zalo, mime, name):
    document = pdf_bytes()

    await connector.send_file(CUSTOMER, MediaFile(document, mime, name), "file", caption="Hướng dẫn sử dụng")

    [upload] = zalo.uploads()
    assert (upload.kind, upload.data, upload.filename) == ("file", document, name)
    file_message, caption = zalo.sent_messages(CUSTOMER)
    assert file_message["message"] == {"attachment": {"type": "file", "payload": {"token": upload.reference}}}
    assert caption["message"] == {"text": "Hướng dẫn sử dụng"}


@pytest.mark.parametrize(
    ("file", "kind", "reason"),
    [
        pytest.param(MediaFile(b"\xff" * (MEDIA_LIMITS["image"] + 1), "image/jpeg", "big.jpg"), "image", "at most",
                     id="image-over-1-MB"),
        pytest.param(MediaFile(b"PK\x03\x04", "application/zip", "a.zip"), "file", "PDF, DOC or DOCX",
                     id="zip-file"),
        pytest.param(MediaFile(b"RIFF", "image/webp", "a.webp"), "image", "JPG, PNG or GIF", id="webp-image"),
        pytest.param(MediaFile(mp4_bytes(), "video/mp4", "a.mp4"), "video", "cannot send a video", id="video"),
        pytest.param(MediaFile(ogg_bytes(), "audio/ogg", "a.ogg"), "audio", "cannot send a audio", id="audio"),
    ],
)
async def test_what_zalo_cannot_take_is_refused_before_uploading(connector, zalo, file, kind, reason):
    with pytest.raises(DeliveryError) as refused:
        await connector.send_file(CUSTOMER, file, kind)

    assert not refused.value.retryable and reason in refused.value.reason
    assert zalo.calls == []


async def test_upload_refusal_keeps_zalos_reason_and_is_final(connector, zalo):
    zalo.fail_next(-210, message="File size exceeds the limit of 5MB")

    with pytest.raises(DeliveryError) as refused:
        await connector.send_file(CUSTOMER, MediaFile(pdf_bytes(), "application/pdf", "a.pdf"), "file")

    assert not refused.value.retryable
    assert "File size exceeds the limit of 5MB" in refused.value.reason
    assert zalo.sent_messages() == []


async def test_expired_token_on_upload_is_refreshed_once(connector, zalo):
    zalo.expire_access_token()

    await connector.send_file(CUSTOMER, MediaFile(png_bytes(), "image/png", "a.png"), "image")

    assert zalo.refresh_count == 1
    assert len(zalo.uploads()) == 1 and len(zalo.sent_messages()) == 1


async def test_upload_server_error_is_retryable(connector, zalo):
    zalo.fail_next_http(502, endpoint="upload/image")

    with pytest.raises(DeliveryError) as refused:
        await connector.send_file(CUSTOMER, MediaFile(png_bytes(), "image/png", "a.png"), "image")

    assert refused.value.retryable


async def test_closed_interaction_window_refusal_says_why(connector, zalo):
    zalo.fail_next(-230)

    with pytest.raises(DeliveryError) as refused:
        await connector.send_file(CUSTOMER, MediaFile(png_bytes(), "image/png", "a.png"), "image")

    assert not refused.value.retryable and "7 days" in refused.value.reason
