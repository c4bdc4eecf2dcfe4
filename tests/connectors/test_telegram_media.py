"""Telegram media: every kind a customer sends, fetching files through getFile, sending files back.

Parsing runs on saved, real-shaped updates; fetching and sending go through aiogram's real client to
the loopback Bot API, which serves and records real file bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.base import DeliveryError, MediaError, MediaFile
from connectors.telegram import TelegramConfig, TelegramConnector
from connectors.telegram_media import MEDIA_LIMITS
from tests.fakes import FakeTelegramAPI
from tests.fakes.media import jpeg_bytes, mp4_bytes, ogg_bytes, pdf_bytes, png_bytes

PAYLOADS = Path(__file__).parents[1] / "payloads" / "telegram"
TOKEN = "123456:TEST"
CHAT = "5123456789"


def load_update(name: str) -> dict[str, Any]:
    """A saved Telegram Update from tests/payloads/telegram."""
    return json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))


def update_with(**fields: Any) -> dict[str, Any]:
    """The saved text update turned into one carrying ``fields`` instead of text."""
    update = load_update("text_message")
    del update["message"]["text"]
    update["message"].pop("entities", None)
    update["message"].update(fields)
    return update


@pytest.fixture
def offline():
    """A connector for parse, which never touches the network."""
    return TelegramConnector(TelegramConfig(token=TOKEN, secret_token="s", api_base="http://127.0.0.1:9"))


@pytest.fixture
def telegram_api():
    """A fresh loopback Bot API."""
    with FakeTelegramAPI(token=TOKEN) as fake:
        yield fake


@pytest.fixture
async def connector(telegram_api):
    """A connector pointed at the fake."""
    connector = TelegramConnector(TelegramConfig(token=TOKEN, secret_token="s", api_base=telegram_api.base_url,
                                                 request_timeout_s=2.0))
    yield connector
    await connector.close()


# -- parse ------------------------------------------------------------------------------------------


def test_photo_is_the_largest_size_with_a_small_size_as_its_thumbnail(offline):
    [message] = offline.parse(load_update("photo_with_caption"))

    [photo] = message.attachments
    assert message.text == "Ảnh nồi bị móp khi nhận hàng"
    assert (photo.kind, photo.file_id, photo.mime_type) == ("image", "AgACAgUAAxkBAAIEAWdEn1-large", "image/jpeg")
    assert (photo.size, photo.width, photo.height) == (98231, 1280, 960)
    assert photo.thumbnail_file_id == "AgACAgUAAxkBAAIEAWdEn1-medium"
    assert photo.downloadable


def test_video_keeps_its_caption_dimensions_duration_and_poster(offline):
    [message] = offline.parse(load_update("video_with_caption"))

    [video] = message.attachments
    assert message.text == "Video nồi bị móp"
    assert (video.kind, video.file_id, video.name, video.mime_type) == (
        "video", "BAACAgUAAxkBAAIEC2dEn-video", "noi-bi-mop.mp4", "video/mp4")
    assert (video.size, video.width, video.height, video.duration) == (2483121, 1280, 720, 12)
    assert video.thumbnail_file_id == "AAMCBQADGQEAAgQLZ0Sfthumb"


def test_voice_note_is_audio_with_its_duration(offline):
    [message] = offline.parse(load_update("voice"))

    [voice] = message.attachments
    assert message.kind == "message" and message.text == ""
    assert (voice.kind, voice.mime_type, voice.duration, voice.size) == ("audio", "audio/ogg", 7, 23410)


def test_audio_track_is_named_by_its_file_or_performer_and_title(offline):
    [message] = offline.parse(update_with(audio={
        "duration": 184, "performer": "Ca sĩ", "title": "Bài hát", "mime_type": "audio/mpeg",
        "file_id": "CQACAgUAAxkBAAIEEGdEn-audio", "file_unique_id": "AgADp8kx", "file_size": 2950000}))

    [audio] = message.attachments
    assert (audio.kind, audio.name, audio.mime_type, audio.duration) == ("audio", "Ca sĩ - Bài hát", "audio/mpeg", 184)


def test_round_video_note_is_a_square_mp4_video(offline):
    [message] = offline.parse(update_with(video_note={
        "duration": 9, "length": 384, "file_id": "DQACAgUAAxkBAAIEEWdEn-note", "file_unique_id": "AgADq8kx",
        "file_size": 412000, "thumbnail": {"file_id": "AAMCnote-thumb", "file_unique_id": "AQADq8", "width": 240,
                                           "height": 240, "file_size": 6100}}))

    [note] = message.attachments
    assert (note.kind, note.mime_type, note.width, note.height, note.duration) == ("video", "video/mp4", 384, 384, 9)
    assert note.thumbnail_file_id == "AAMCnote-thumb"


def test_gif_animation_is_one_video_not_also_a_document(offline):
    animation = {"file_name": "hop-mop.gif.mp4", "mime_type": "video/mp4", "duration": 3, "width": 480,
                 "height": 270, "file_id": "CgACAgUAAxkBAAIEEmdEn-gif", "file_unique_id": "AgADr8kx",
                 "file_size": 101234}
    document = {k: animation[k] for k in ("file_name", "mime_type", "file_id", "file_unique_id", "file_size")}
    [message] = offline.parse(update_with(animation=animation, document=document))

    [gif] = message.attachments
    assert (gif.kind, gif.width, gif.height, gif.duration, gif.size) == ("video", 480, 270, 3, 101234)


def test_sticker_keeps_its_emoji_size_and_preview(offline):
    [message] = offline.parse(load_update("sticker"))

    [sticker] = message.attachments
    assert (sticker.kind, sticker.name, sticker.mime_type) == ("sticker", "😢", "image/webp")
    assert (sticker.width, sticker.height, sticker.size) == (512, 512, 28040)
    assert sticker.thumbnail_file_id == "AAMCAgADGQEAAgQNZ0Sf-sthumb"


def test_shared_location_carries_its_coordinates(offline):
    [message] = offline.parse(update_with(location={"latitude": 10.776889, "longitude": 106.700806}))

    [place] = message.attachments
    assert (place.kind, place.latitude, place.longitude) == ("location", 10.776889, 106.700806)
    assert place.url == "geo:10.776889,106.700806"
    assert message.kind == "message" and not place.downloadable


def test_venue_is_one_named_location(offline):
    [message] = offline.parse(load_update("venue"))

    [place] = message.attachments
    assert (place.kind, place.latitude, place.longitude) == ("location", 21.028511, 105.804817)
    assert place.name == "Bưu cục Cầu Giấy, 123 Xuân Thủy, Cầu Giấy, Hà Nội"


def test_shared_contact_carries_phone_and_name(offline):
    [message] = offline.parse(load_update("contact"))

    [contact] = message.attachments
    assert (contact.kind, contact.phone, contact.name) == ("contact", "84901234567", "Nguyễn Thị Hương")
    assert message.metadata["contact"]["user_id"] == 5123456789
    assert message.kind == "message" and not contact.downloadable


def test_document_keeps_its_size_and_thumbnail(offline):
    [message] = offline.parse(update_with(document={
        "file_name": "bao-hanh.pdf", "mime_type": "application/pdf", "file_id": "BQACAgUAAxkBAAIEE-doc",
        "file_unique_id": "AgADs8kx", "file_size": 84211,
        "thumbnail": {"file_id": "AAMCdoc-thumb", "file_unique_id": "AQADs8", "width": 226, "height": 320}},
        caption="Phiếu bảo hành"))

    [document] = message.attachments
    assert message.text == "Phiếu bảo hành"
    assert (document.kind, document.name, document.size, document.thumbnail_file_id) == (
        "file", "bao-hanh.pdf", 84211, "AAMCdoc-thumb")


# -- fetch_media ------------------------------------------------------------------------------------


async def test_photo_is_fetched_through_get_file_with_its_exact_bytes(connector, telegram_api):
    photo = jpeg_bytes(64, 48)
    file_id = telegram_api.add_file(photo, file_path="photos/file_7.jpg")
    [message] = connector.parse(update_with(photo=[{"file_id": file_id, "file_unique_id": "u", "width": 64,
                                                    "height": 48, "file_size": len(photo)}]))

    fetched = await connector.fetch_media(message.attachments[0], max_bytes=1_000_000)

    assert fetched.data == photo
    assert fetched.mime_type == "image/jpeg"  # the file server says octet-stream; the update said JPEG
    assert fetched.name == "file_7.jpg"
    [call] = telegram_api.calls_to("getFile")
    assert call.params["file_id"] == file_id


async def test_voice_note_bytes_and_document_name_come_through(connector, telegram_api):
    voice, pdf = ogg_bytes(), pdf_bytes()
    voice_id = telegram_api.add_file(voice, file_path="voice/file_1.oga")
    pdf_id = telegram_api.add_file(pdf, file_path="documents/file_2.pdf")
    [with_voice] = connector.parse(update_with(voice={"duration": 1, "mime_type": "audio/ogg", "file_id": voice_id,
                                                      "file_unique_id": "v"}))
    [with_pdf] = connector.parse(update_with(document={"file_name": "hướng-dẫn.pdf", "mime_type": "application/pdf",
                                                       "file_id": pdf_id, "file_unique_id": "d"}))

    fetched_voice = await connector.fetch_media(with_voice.attachments[0], max_bytes=1_000_000)
    fetched_pdf = await connector.fetch_media(with_pdf.attachments[0], max_bytes=1_000_000)

    assert (fetched_voice.data, fetched_voice.mime_type) == (voice, "audio/ogg")
    assert (fetched_pdf.data, fetched_pdf.name) == (pdf, "hướng-dẫn.pdf")


async def test_expired_file_link_is_a_final_media_error(connector, telegram_api):
    file_id = telegram_api.add_file(png_bytes(), file_path="photos/file_8.png")
    telegram_api.expire_file(file_id)
    [message] = connector.parse(update_with(photo=[{"file_id": file_id, "file_unique_id": "u", "width": 32,
                                                    "height": 24}]))

    with pytest.raises(MediaError) as failed:
        await connector.fetch_media(message.attachments[0], max_bytes=1_000_000)

    assert not failed.value.retryable
    assert "404" in failed.value.reason


async def test_unknown_file_id_is_a_final_media_error_with_telegrams_reason(connector, telegram_api):
    [message] = connector.parse(update_with(photo=[{"file_id": "AgAC-gone", "file_unique_id": "u", "width": 3,
                                                    "height": 3}]))

    with pytest.raises(MediaError) as failed:
        await connector.fetch_media(message.attachments[0], max_bytes=1_000_000)

    assert not failed.value.retryable
    assert "invalid file_id" in failed.value.reason


async def test_file_announced_over_the_limit_is_refused_before_downloading(connector, telegram_api):
    file_id = telegram_api.add_file(png_bytes(64, 64), file_path="photos/file_9.png")
    [message] = connector.parse(update_with(photo=[{"file_id": file_id, "file_unique_id": "u", "width": 64,
                                                    "height": 64}]))

    with pytest.raises(MediaError) as failed:
        await connector.fetch_media(message.attachments[0], max_bytes=100)

    assert not failed.value.retryable and "over the limit" in failed.value.reason
    assert len(telegram_api.calls_to("getFile")) == 1  # getFile's file_size told; nothing was downloaded


async def test_file_without_announced_size_is_cut_off_while_streaming(connector, telegram_api):
    data = png_bytes(200, 200)
    file_id = telegram_api.add_file(data, file_path="photos/file_10.png", announce_size=False)
    [message] = connector.parse(update_with(photo=[{"file_id": file_id, "file_unique_id": "u", "width": 200,
                                                    "height": 200}]))

    with pytest.raises(MediaError) as failed:
        await connector.fetch_media(message.attachments[0], max_bytes=len(data) - 1)

    assert not failed.value.retryable and "over the limit" in failed.value.reason


async def test_file_over_the_cloud_api_20_mb_is_refused_with_telegrams_reason(connector, telegram_api):
    file_id = telegram_api.add_file(mp4_bytes(), file_path="videos/file_11.mp4", announced_size=21 * 1024 * 1024)
    [message] = connector.parse(update_with(video={"file_id": file_id, "file_unique_id": "u", "width": 1,
                                                   "height": 1, "duration": 1}))

    with pytest.raises(MediaError) as failed:
        await connector.fetch_media(message.attachments[0], max_bytes=100 * 1024 * 1024)

    assert not failed.value.retryable and "file is too big" in failed.value.reason


async def test_get_file_server_error_is_retryable(connector, telegram_api):
    file_id = telegram_api.add_file(png_bytes())
    telegram_api.fail_next("getFile", 502)
    [message] = connector.parse(update_with(photo=[{"file_id": file_id, "file_unique_id": "u", "width": 3,
                                                    "height": 3}]))

    with pytest.raises(MediaError) as failed:
        await connector.fetch_media(message.attachments[0], max_bytes=1_000_000)

    assert failed.value.retryable


# -- send_file --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "make", "mime", "name", "method"),
    [
        ("image", lambda: jpeg_bytes(40, 30), "image/jpeg", "phu-tung.jpg", "sendPhoto"),
        ("file", pdf_bytes, "application/pdf", "hướng-dẫn.pdf", "sendDocument"),
        ("video", mp4_bytes, "video/mp4", "lap-dat.mp4", "sendVideo"),
        ("audio", ogg_bytes, "audio/ogg", "loi-nhan.ogg", "sendVoice"),
        ("audio", ogg_bytes, "audio/mpeg", "bai-hat.mp3", "sendAudio"),
    ],
)
async def test_send_file_uploads_exactly_the_file_with_its_caption(connector, telegram_api, kind, make, mime, name,
                                                                  method):
    data = make()

    message_id = await connector.send_file(CHAT, MediaFile(data, mime, name), kind, caption="Chú thích", reply_to="77")

    [sent] = telegram_api.sent_files(chat_id=CHAT)
    assert (sent.method, sent.data, sent.filename, sent.caption) == (method, data, name, "Chú thích")
    assert sent.params["reply_parameters"]["message_id"] == 77
    assert message_id.isdigit()


async def test_caption_longer_than_telegram_takes_follows_as_text(connector, telegram_api):
    caption = "Hướng dẫn lắp đặt. " * 60

    await connector.send_file(CHAT, MediaFile(png_bytes(), "image/png", "a.png"), "image", caption=caption)

    [sent] = telegram_api.sent_files()
    assert sent.caption is None
    assert [params["text"] for params in telegram_api.sent_messages()] == [caption]


async def test_file_over_telegrams_limit_is_refused_without_calling_telegram(connector, telegram_api):
    too_big = MediaFile(b"\xff" * (MEDIA_LIMITS["image"] + 1), "image/jpeg", "huge.jpg")

    with pytest.raises(DeliveryError) as refused:
        await connector.send_file(CHAT, too_big, "image")

    assert not refused.value.retryable and "at most" in refused.value.reason
    assert telegram_api.calls_to("sendPhoto") == []


async def test_refusal_keeps_telegrams_reason_and_is_final(connector, telegram_api):
    telegram_api.fail_next("sendDocument", 400, description="Bad Request: wrong file identifier/HTTP URL specified")

    with pytest.raises(DeliveryError) as refused:
        await connector.send_file(CHAT, MediaFile(pdf_bytes(), "application/pdf", "a.pdf"), "file")

    assert not refused.value.retryable
    assert refused.value.reason == "Bad Request: wrong file identifier/HTTP URL specified"


async def test_flood_limit_on_a_photo_is_retryable(connector, telegram_api):
    telegram_api.fail_next("sendPhoto", 429, retry_after=3)

    with pytest.raises(DeliveryError) as refused:
        await connector.send_file(CHAT, MediaFile(png_bytes(), "image/png", "a.png"), "image")

    assert refused.value.retryable and refused.value.retry_after == 3


async def test_photo_telegram_cannot_show_is_sent_as_a_document(connector, telegram_api):
    telegram_api.fail_next("sendPhoto", 400, description="Bad Request: PHOTO_INVALID_DIMENSIONS")
    banner = png_bytes(400, 10)

    await connector.send_file(CHAT, MediaFile(banner, "image/png", "banner.png"), "image", caption="Băng rôn")

    [sent] = telegram_api.sent_files()
    assert (sent.method, sent.data, sent.caption) == ("sendDocument", banner, "Băng rôn")


async def test_stickers_and_places_are_not_sendable_as_files(connector, telegram_api):
    with pytest.raises(DeliveryError) as refused:
        await connector.send_file(CHAT, MediaFile(b"x", "image/webp", "s.webp"), "sticker")

    assert not refused.value.retryable
    assert "sticker" not in TelegramConnector.media_limits
