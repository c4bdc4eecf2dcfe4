"""The attachments table: one row per file (or location, or contact) that came with or went out in
a message."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from helpdesk.core.types import created_at_field, json_field, timestamp_field


class AttachmentStatus(StrEnum):
    """Where an attachment's bytes stand."""

    #: the platform's reference is known, the bytes are being fetched
    pending = "pending"
    #: the bytes (and thumbnail, if any) are in storage; or there never were bytes (location, contact)
    stored = "stored"
    #: they could not be had (gone, too large, damaged): ``error`` says why; the message stays
    failed = "failed"


class Attachment(SQLModel, table=True):
    """A message's file as CareDesk keeps it. ``conversation_id`` and ``message_id`` are empty only
    for a visitor's upload between its arrival and its turn (which links it)."""

    __tablename__ = "attachments"
    __table_args__ = (
        Index("ix_attachments_message", "message_id"),
        Index("ix_attachments_conversation", "conversation_id"),
        # the sweep looks for pending rows whose download is due
        Index("ix_attachments_status_due", "status", "next_attempt_at"),
    )

    id: str = Field(primary_key=True, max_length=36)
    conversation_id: int | None = Field(default=None, foreign_key="conversations.id")
    message_id: int | None = Field(default=None, foreign_key="messages.id")
    channel: str = Field(max_length=32)
    #: image, video, audio, file, sticker, location, contact (decided from the bytes once stored)
    kind: str = Field(max_length=10)
    #: its place among the message's attachments (they are shown in the order they came)
    position: int = 0
    mime_type: str | None = Field(default=None, max_length=127)
    size: int | None = None
    name: str | None = Field(default=None, max_length=255)
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    storage_key: str | None = Field(default=None, max_length=255)
    thumbnail_key: str | None = Field(default=None, max_length=255)
    status: str = Field(default=AttachmentStatus.pending, max_length=10)
    error: str | None = Field(default=None, max_length=500)
    sha256: str | None = Field(default=None, max_length=64)
    #: the platform's description (its url or file id, a location's coordinates, a contact's phone)
    source: dict[str, Any] = json_field()
    #: failed downloads so far, and when the next is due (pending rows only)
    attempts: int = 0
    next_attempt_at: datetime | None = timestamp_field()
    created_at: datetime = created_at_field()
    stored_at: datetime | None = timestamp_field()
