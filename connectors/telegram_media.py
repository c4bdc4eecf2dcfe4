"""Telegram's media: attachments read from a Message, and the Bot API method that sends each kind.

Kept apart from ``connectors/telegram.py`` so the connector stays about webhooks and sending; the
connector's ``fetch_media`` and ``send_file`` use what is here.
"""

from __future__ import annotations

from typing import Any

from aiogram.types import Message, PhotoSize

from connectors.base import Attachment, AttachmentKind

#: the Bot API lets a bot upload photos up to 10 MB and other files up to 50 MB
#: (https://core.telegram.org/bots/api#sending-files); stickers, locations and contacts are not files
MEDIA_LIMITS: dict[str, int] = {
    "image": 10 * 1024 * 1024,
    "video": 50 * 1024 * 1024,
    "audio": 50 * 1024 * 1024,
    "file": 50 * 1024 * 1024,
}
#: the cloud Bot API's getFile serves files up to 20 MB ("file is too big" past that)
CLOUD_DOWNLOAD_LIMIT = 20 * 1024 * 1024
#: a caption longer than this is refused ("message caption is too long"); the rest goes as text
MAX_CAPTION_LENGTH = 1024
#: a thumbnail is the smallest photo size at least this wide or high (Telegram's "m" size is 320)
THUMBNAIL_MIN_SIDE = 240
#: what Telegram answers when a photo cannot be shown as a photo; the file is then sent as a document
PHOTO_REFUSALS = ("PHOTO_INVALID_DIMENSIONS", "IMAGE_PROCESS_FAILED", "PHOTO_EXT_INVALID")

_STICKER_MIME = {"regular": "image/webp", "animated": "application/x-tgsticker", "video": "video/webm"}


def message_attachments(message: Message) -> tuple[Attachment, ...]:
    """Every piece of media, place or contact a Telegram message carries, as attachments."""
    found: list[Attachment] = []
    if message.photo:
        found.append(_photo(message.photo))
    if message.animation is not None:
        # a GIF arrives as both ``animation`` and ``document``; keep it once, as the video it plays as
        found.append(_media("video", message.animation))
    elif message.document is not None:
        found.append(_media("file", message.document))
    if message.voice is not None:
        found.append(_media("audio", message.voice, mime_type=message.voice.mime_type or "audio/ogg"))
    if message.audio is not None:
        audio = message.audio
        title = " - ".join(part for part in (audio.performer, audio.title) if part) or None
        found.append(_media("audio", audio, name=audio.file_name or title))
    if message.video is not None:
        found.append(_media("video", message.video))
    if message.video_note is not None:
        note = message.video_note
        # a round video message: square, ``length`` pixels a side, always MPEG-4
        found.append(_media("video", note, mime_type="video/mp4", width=note.length, height=note.length))
    if message.sticker is not None:
        sticker = message.sticker
        kind = "video" if sticker.is_video else "animated" if sticker.is_animated else "regular"
        found.append(_media("sticker", sticker, name=sticker.emoji, mime_type=_STICKER_MIME[kind]))
    if message.venue is not None:
        # a venue also arrives as ``location``; keep one place, named
        venue = message.venue
        name = ", ".join(part for part in (venue.title, venue.address) if part) or None
        found.append(_place(venue.location.latitude, venue.location.longitude, name))
    elif message.location is not None:
        found.append(_place(message.location.latitude, message.location.longitude, None))
    if message.contact is not None:
        contact = message.contact
        name = " ".join(part for part in (contact.first_name, contact.last_name) if part) or None
        found.append(Attachment(kind="contact", phone=contact.phone_number, name=name))
    return tuple(found)


def _photo(sizes: list[PhotoSize]) -> Attachment:
    # Telegram sends every resolution of one photo: the largest is the file, a small one its preview
    ordered = sorted(sizes, key=lambda size: size.width * size.height)
    largest = ordered[-1]
    smaller = ordered[:-1]
    preview = next((size for size in smaller if max(size.width, size.height) >= THUMBNAIL_MIN_SIDE),
                   smaller[-1] if smaller else None)
    return Attachment(
        kind="image",
        file_id=largest.file_id,
        mime_type="image/jpeg",  # Telegram re-encodes every photo as JPEG
        size=largest.file_size,
        width=largest.width,
        height=largest.height,
        thumbnail_file_id=preview.file_id if preview is not None else None,
    )


def _media(kind: AttachmentKind, media: Any, **given: Any) -> Attachment:
    """An attachment from any Telegram file object, with the fields that type has."""
    thumbnail = getattr(media, "thumbnail", None)
    fields: dict[str, Any] = {
        "file_id": media.file_id,
        "name": getattr(media, "file_name", None),
        "mime_type": getattr(media, "mime_type", None),
        "size": getattr(media, "file_size", None),
        "width": getattr(media, "width", None),
        "height": getattr(media, "height", None),
        "duration": getattr(media, "duration", None),
        "thumbnail_file_id": thumbnail.file_id if thumbnail is not None else None,
    }
    fields.update(given)
    return Attachment(kind=kind, **fields)


def _place(latitude: float, longitude: float, name: str | None) -> Attachment:
    # an RFC 5870 geo URI as well, so a location reads as a link wherever only ``url`` is shown
    return Attachment(kind="location", latitude=latitude, longitude=longitude, name=name,
                      url=f"geo:{latitude},{longitude}")


def send_method(kind: AttachmentKind, mime_type: str | None) -> tuple[str, str]:
    """The Bot API method that sends a file of ``kind`` and the name of its file field."""
    mime = (mime_type or "").lower()
    if kind == "image":
        # a GIF sent with sendPhoto turns into a still picture; sendAnimation keeps it moving
        return ("send_animation", "animation") if mime == "image/gif" else ("send_photo", "photo")
    if kind == "video":
        return "send_video", "video"
    if kind == "audio":
        # an OGG/Opus recording shows as a voice message with a waveform; other audio as a track
        return ("send_voice", "voice") if mime in ("audio/ogg", "audio/opus") else ("send_audio", "audio")
    return "send_document", "document"
