"""Customers and the identities they have on each channel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from helpdesk.core.types import created_at_field, json_field, timestamp_field


class Customer(SQLModel, table=True):
    """A person the shop serves, whatever channels they write on."""

    __tablename__ = "customers"

    id: int | None = Field(default=None, primary_key=True)
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=20, index=True)
    phone_verified: bool = False
    email: str | None = Field(default=None, max_length=320)
    locale: str = Field(default="vi", max_length=8)
    merged_into_id: int | None = Field(default=None, foreign_key="customers.id")
    #: the customer asked for no proactive care messages ("dừng", "stop")
    care_opted_out: bool = False
    created_at: datetime = created_at_field()


class ChannelIdentity(SQLModel, table=True):
    """One customer's account on one channel (a Telegram chat, a Messenger PSID, a Zalo user id)."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_identity_channel_external"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", index=True)
    channel: str = Field(max_length=32)
    external_id: str = Field(max_length=128)
    display_name: str | None = Field(default=None, max_length=200)
    reachable: bool = True
    unreachable_reason: str | None = Field(default=None, max_length=500)
    last_inbound_at: datetime | None = timestamp_field()
    created_at: datetime = created_at_field()


class CustomerMerge(SQLModel, table=True):
    """One customer folded into another, with exactly what moved, so that it can be split again."""

    __tablename__ = "customer_merges"

    id: int | None = Field(default=None, primary_key=True)
    primary_id: int = Field(foreign_key="customers.id", index=True)
    merged_id: int = Field(foreign_key="customers.id", index=True)
    #: ids of the rows that moved to the primary: {"identities": [...], "conversations": [...], ...}
    moved: dict[str, Any] = json_field()
    #: fields copied onto the primary: {"name": [value before, value copied], ...}
    copied: dict[str, Any] = json_field()
    actor_type: str = Field(max_length=16)  # agent, or system for a merge by a verified phone
    actor_id: int | None = None
    created_at: datetime = created_at_field()
    split_at: datetime | None = timestamp_field()
    split_by_id: int | None = None
