"""Zalo OA's media: attachments read from ``user_send_*`` events, and how the OA sends a file.

The Open API takes a file in two steps: upload it (``/v2.0/oa/upload/image``, ``/gif`` or ``/file``,
multipart field ``file``), which answers an ``attachment_id`` (images, GIFs) or a ``token`` (files),
then send a consultation message that refers to it. Kept apart from ``connectors/zalo_oa.py`` so the
connector stays about webhooks, tokens and sending.
"""

from __future__ import annotations

import mimetypes
import struct
from typing import Any, Literal, NamedTuple

from connectors.base import Attachment, DeliveryError, PayloadError

#: what each ``user_send_<type>`` attachment becomes ("link" is text, not an attachment)
ATTACHMENT_KINDS: dict[str, str] = {
    "image": "image",
    "gif": "image",
    "sticker": "sticker",
    "audio": "audio",
    "video": "video",
    "file": "file",
    "location": "location",
    "link": "file",
}

#: Zalo's upload limits: images JPG/PNG up to 1 MB, GIFs up to 5 MB, files PDF/DOC/DOCX up to 5 MB.
#: The OA cannot send video or audio. ``image`` is the JPG/PNG limit, the stricter of the two.
MEDIA_LIMITS: dict[str, int] = {"image": 1024 * 1024, "file": 5 * 1024 * 1024}
GIF_LIMIT = 5 * 1024 * 1024
IMAGE_TYPES = frozenset({"image/jpeg", "image/png"})
FILE_TYPES = {
    "application/pdf": ".pdf",
    "application/msword": ".doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
}


class Upload(NamedTuple):
    """Where a file goes and what the upload answers with."""

    path: str
    #: "attachment_id" for images and GIFs, "token" for files
    answer_field: Literal["attachment_id", "token"]
    media_type: Literal["image", "gif", "file"]

    def reference_in(self, answer: dict[str, Any]) -> str:
        """The attachment id or token in Zalo's answer to the upload."""
        data = answer.get("data") if isinstance(answer.get("data"), dict) else {}
        reference = data.get(self.answer_field)
        if not reference:
            raise DeliveryError(f"Zalo took the upload but returned no {self.answer_field}: {answer!r:.200}",
                                retryable=False, code="no_attachment_id")
        return str(reference)


def upload_for(kind: str, file_type: str | None, name: str | None, size: int) -> Upload:
    """The upload endpoint for a file, or DeliveryError(retryable=False) when Zalo cannot take it."""
    mime = (file_type or mimetypes.guess_type(name or "")[0] or "").lower()
    if kind == "image":
        if mime == "image/gif":
            _check_size(size, GIF_LIMIT, "a GIF")
            return Upload("/v2.0/oa/upload/gif", "attachment_id", "gif")
        if mime not in IMAGE_TYPES:
            raise DeliveryError(f"Zalo OA sends JPG, PNG or GIF images only, not {mime or 'this type'}",
                                retryable=False, code="file_type")
        _check_size(size, MEDIA_LIMITS["image"], "a JPG or PNG image")
        return Upload("/v2.0/oa/upload/image", "attachment_id", "image")
    if kind == "file":
        extension = (name or "").lower().rpartition(".")[2]
        if mime not in FILE_TYPES and f".{extension}" not in FILE_TYPES.values():
            what = mime or extension or "this type"
            raise DeliveryError(f"Zalo OA sends PDF, DOC or DOCX files only, not {what}", retryable=False,
                                code="file_type")
        _check_size(size, MEDIA_LIMITS["file"], "a file")
        return Upload("/v2.0/oa/upload/file", "token", "file")
    raise DeliveryError(f"Zalo OA cannot send a {kind}: it takes images (JPG, PNG, GIF) and PDF/DOC/DOCX "
                        "files", retryable=False, code="kind")


def upload_name(name: str | None, file_type: str | None) -> str:
    """The file name to upload under: Zalo shows it, and reads the type of a document from it."""
    return name or f"file{mimetypes.guess_extension(file_type or '') or ''}"


def _check_size(size: int, limit: int, what: str) -> None:
    if size > limit:
        raise DeliveryError(f"the file is {size} bytes; Zalo OA takes {what} of at most {limit}",
                            retryable=False, code="too_large")


def media_message(upload: Upload, reference: str, data: bytes, caption: str) -> dict[str, Any]:
    """The consultation ``message`` that shows an uploaded file (images carry the caption as text)."""
    if upload.media_type == "file":
        return {"attachment": {"type": "file", "payload": {"token": reference}}}
    element: dict[str, Any] = {"media_type": upload.media_type, "attachment_id": reference}
    if upload.media_type == "gif":
        # Zalo requires a GIF's size in the element; a GIF's header holds it (little-endian)
        width, height = struct.unpack("<HH", data[6:10]) if len(data) >= 10 else (0, 0)
        element.update(width=width, height=height)
    message: dict[str, Any] = {
        "attachment": {"type": "template", "payload": {"template_type": "media", "elements": [element]}}
    }
    if caption:
        message["text"] = caption
    return message


def message_attachments(raw: Any, event_name: str, metadata: dict[str, Any]) -> tuple[tuple[Attachment, ...],
                                                                                       tuple[str, ...]]:
    """The attachments of a ``user_send_*`` message, and the addresses of shared links (text)."""
    if raw is None:
        return (), ()
    if not isinstance(raw, list):
        raise PayloadError(f"{event_name}.message.attachments is not a list")
    found: list[Attachment] = []
    links: list[str] = []
    for item in raw:
        if not isinstance(item, dict):
            raise PayloadError(f"{event_name} has an attachment that is not an object")
        zalo_type = str(item.get("type", ""))
        payload = item.get("payload") if isinstance(item.get("payload"), dict) else {}
        url = _text(payload.get("url"))
        thumbnail = _text(payload.get("thumbnail"))
        if zalo_type == "location":
            coordinates = payload.get("coordinates") if isinstance(payload.get("coordinates"), dict) else {}
            latitude, longitude = _number(coordinates.get("latitude")), _number(coordinates.get("longitude"))
            if latitude is None or longitude is None:
                raise PayloadError(f"{event_name} shares a location without coordinates")
            metadata["location"] = {"latitude": latitude, "longitude": longitude}
            found.append(Attachment(kind="location", latitude=latitude, longitude=longitude,
                                    url=f"geo:{coordinates['latitude']},{coordinates['longitude']}"))
        elif zalo_type == "link":
            if url:
                links.append(url)
        elif zalo_type == "sticker":
            sticker_id = payload.get("id")
            found.append(Attachment(kind="sticker", url=url, file_id=str(sticker_id) if sticker_id else None))
        elif zalo_type == "file":
            name = _text(payload.get("name"))
            size = _number(payload.get("size"))
            found.append(Attachment(kind="file", url=url, name=name,
                                    size=int(size) if size is not None else None,
                                    mime_type=mimetypes.guess_type(name)[0] if name else None))
        elif zalo_type == "gif":
            found.append(Attachment(kind="image", url=url, mime_type="image/gif", thumbnail_url=thumbnail))
        else:
            kind = ATTACHMENT_KINDS.get(zalo_type, "file")
            found.append(Attachment(kind=kind, url=url, thumbnail_url=thumbnail))  # type: ignore[arg-type]
    return tuple(found), tuple(links)


def with_links(text: str, links: tuple[str, ...]) -> str:
    """The text with the shared links it does not already show, one a line."""
    missing = [link for link in dict.fromkeys(links) if link not in text]
    return "\n".join(part for part in (text, *missing) if part)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    # Zalo sends coordinates and sizes as strings
    try:
        return float(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None
