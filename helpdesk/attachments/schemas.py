"""API shapes of attachments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AttachmentPublic(BaseModel):
    """An attachment as a message in the API carries it.

    ``url`` downloads the file (``/api/attachments/{id}`` for agents, a signed link for visitors) and
    ``thumbnail_url`` its thumbnail; both are null while the file is being fetched, when it failed
    (``status`` "failed", ``error`` says why: the thread shows a placeholder) and for a location or a
    contact, which have no file (their ``latitude``/``longitude`` or ``phone`` instead).
    ``id`` is null only for a message stored before CareDesk kept files (its platform description).
    """

    id: str | None
    kind: str
    mime_type: str | None = None
    size: int | None = None
    name: str | None = None
    url: str | None = None
    thumbnail_url: str | None = None
    #: pending (being fetched), stored, failed
    status: str = "stored"
    error: str | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    latitude: float | None = None
    longitude: float | None = None
    phone: str | None = None


def legacy_attachment(document: dict[str, Any]) -> AttachmentPublic:
    """An attachment of a message stored before attachments had rows, from its inline JSON."""
    known = {key: document.get(key) for key in ("mime_type", "size", "name", "width", "height", "duration",
                                                  "latitude", "longitude", "phone")}
    url = document.get("url")
    return AttachmentPublic(id=None, kind=str(document.get("kind") or "file"),
                            url=url if isinstance(url, str) else None, **{
                                key: value for key, value in known.items() if value is not None})


class ListedAttachment(AttachmentPublic):
    """An attachment in a list of a customer's files, with where it was sent."""

    conversation_id: int
    message_id: int
    #: who sent it: customer, agent (or bot)
    author: str
    created_at: datetime


class AttachmentsPublic(BaseModel):
    """A customer's files, newest first, and how many they have in all."""

    data: list[ListedAttachment]
    count: int
