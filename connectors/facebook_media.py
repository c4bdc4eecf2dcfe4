"""Messenger's media: attachments read from a webhook message, and what the Send API takes as files.

Kept apart from ``connectors/facebook.py`` so the connector stays about webhooks and sending.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from connectors.base import Attachment, PayloadError

#: the Messenger Platform takes attachments up to 25 MB, of these types
#: (developers.facebook.com/docs/messenger-platform/send-messages/saving-assets)
MEDIA_LIMITS: dict[str, int] = {kind: 25 * 1024 * 1024 for kind in ("image", "video", "audio", "file")}
#: the Send API's attachment ``type`` for each kind CareDesk sends
SEND_TYPES: dict[str, str] = {"image": "image", "video": "video", "audio": "audio", "file": "file"}

_ATTACHMENT_KINDS: dict[str, Literal["image", "file", "audio", "video"]] = {
    "image": "image",
    "file": "file",
    "audio": "audio",
    "video": "video",
}


def message_attachments(value: Any, where: str) -> tuple[tuple[Attachment, ...], tuple[str, ...]]:
    """The media of a message, and the addresses of links it shares (which belong in its text)."""
    if value is None:
        return (), ()
    if not isinstance(value, list):
        raise PayloadError(f"{where} is not a list")
    found: list[Attachment] = []
    links: list[str] = []
    for index, attachment in enumerate(value):
        if not isinstance(attachment, dict) or not isinstance(attachment.get("type"), str):
            raise PayloadError(f"{where}[{index}] has no type")
        kind = attachment["type"]
        payload = attachment.get("payload") if isinstance(attachment.get("payload"), dict) else {}
        url = payload.get("url") if isinstance(payload.get("url"), str) else None
        title = _str_or_none(attachment.get("title") or payload.get("title"))
        if kind == "sticker" or payload.get("sticker_id") is not None:
            # stickers came as images carrying a sticker_id, and now (also) as their own type
            found.append(Attachment(kind="sticker", url=url, file_id=_str_or_none(payload.get("sticker_id"))))
        elif kind in _ATTACHMENT_KINDS:
            # Messenger gives only the CDN address; a file's name is the last part of its path
            name = title or (_name_in_url(url) if kind == "file" else None)
            found.append(Attachment(kind=_ATTACHMENT_KINDS[kind], url=url, name=name))
        elif kind == "location":
            coordinates = payload.get("coordinates")
            latitude = longitude = None
            if isinstance(coordinates, dict) and _is_number(coordinates.get("lat")) \
                    and _is_number(coordinates.get("long")):
                latitude, longitude = float(coordinates["lat"]), float(coordinates["long"])
                # an RFC 5870 geo URI, so a location reads as a link wherever only ``url`` is shown
                url = f"geo:{coordinates['lat']},{coordinates['long']}"
            found.append(Attachment(kind="location", url=url, name=title, latitude=latitude,
                                    longitude=longitude))
        else:
            # fallback (a shared link), reel, post, template…: not a file, but its address is worth keeping
            link = url or _str_or_none(attachment.get("url"))
            if link:
                links.append(link)
    return tuple(found), tuple(links)


def _name_in_url(url: str | None) -> str | None:
    if not url:
        return None
    last = urlsplit(url).path.rsplit("/", 1)[-1]
    return unquote(last) or None


def with_links(text: str, links: tuple[str, ...]) -> str:
    """The text with the shared links it does not already show, one a line."""
    missing = [link for link in dict.fromkeys(links) if link not in text]
    return "\n".join(part for part in (text, *missing) if part)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
