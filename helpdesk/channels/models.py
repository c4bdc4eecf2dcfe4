"""Raw inbound events (the dedup ledger), what became of them, and channel credentials."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from helpdesk.core.types import created_at_field, json_field


class EventStatus(StrEnum):
    """How far an inbound event got: ``received`` (to be processed) or ``ignored`` when stored, then
    ``processed``, ``failed`` (before parking existed) or ``parked`` (its turn failed too often, for a
    reason of its own; an admin may try it again) as its ``InboundOutcome``."""

    received = "received"
    processed = "processed"
    ignored = "ignored"
    failed = "failed"
    parked = "parked"


class InboundEvent(SQLModel, table=True):
    """One event a platform delivered, stored once per (channel, platform id) before it is processed.

    Written only by the webhook edge, never changed (on SQLite it lives in a file of its own, see
    ``channels.ledger.inbound_database_path``); what became of it is its ``InboundOutcome``."""

    __tablename__ = "inbound_events"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_inbound_channel_external"),
        # a chat's events in order: a turn first takes the chat's older events still waiting
        Index("ix_inbound_chat", "channel", "sender_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    external_id: str = Field(max_length=128)
    sender_id: str = Field(max_length=128)
    kind: str = Field(max_length=16)
    message: dict[str, Any] = json_field()
    raw: dict[str, Any] | list[Any] | None = json_field(nullable=True)
    status: str = Field(default=EventStatus.received, max_length=10)
    received_at: datetime = created_at_field()


class InboundOutcome(SQLModel, table=True):
    """What became of a received event: processed, or failed with the error. Written by the worker in
    the transaction that stores the turn; a second worker on the same event finds the row there and
    stores nothing."""

    __tablename__ = "inbound_outcomes"

    event_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    status: str = Field(max_length=10)
    error: str | None = Field(default=None, max_length=1000)
    processed_at: datetime = created_at_field()


class InboundAttempt(SQLModel, table=True):
    """A waiting event whose turn failed for a reason of its own: how often, the last error, and the
    customer's message once it was stored (at parking, so that agents see what was written; a later
    try answers that message instead of storing it again). Gone once the event is settled."""

    __tablename__ = "inbound_attempts"

    event_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=1000)
    message_id: int | None = Field(default=None)
    updated_at: datetime = created_at_field()


class ChannelCredential(SQLModel, table=True):
    """A channel secret that changes at run time (e.g. Zalo's rotating tokens), encrypted at rest."""

    __tablename__ = "channel_credentials"

    channel: str = Field(primary_key=True, max_length=32)
    ciphertext: str = Field(sa_type=Text)
    updated_at: datetime = created_at_field()
