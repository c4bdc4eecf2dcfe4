"""The outbox table: one row per message to send to a customer's chat."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from helpdesk.core.types import created_at_field, json_field, timestamp_field


class OutboxStatus(StrEnum):
    """Where a queued outgoing message stands."""

    pending = "pending"
    sent = "sent"
    failed = "failed"


class OutboxItem(SQLModel, table=True):
    """A message waiting to be sent, being retried, sent, or finally failed."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: int | None = Field(default=None, foreign_key="messages.id", index=True)
    channel: str = Field(max_length=32)
    recipient_id: str = Field(max_length=128)
    body: dict[str, Any] = json_field()
    status: str = Field(default=OutboxStatus.pending, max_length=10)
    attempts: int = 0
    next_attempt_at: datetime | None = timestamp_field()
    last_error: str | None = Field(default=None, max_length=1000)
    external_id: str | None = Field(default=None, max_length=128)
    created_at: datetime = created_at_field()
    sent_at: datetime | None = timestamp_field()
