"""The push tables: the server's VAPID key pair (one row, shared by every replica) and the agents'
push subscriptions (one per browser or device)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from helpdesk.core.types import created_at_field, timestamp_field

#: the key pair's row: there is only ever one
VAPID_KEY_ROW = 1


class VapidKeyPair(SQLModel, table=True):
    """The server's VAPID key pair, made at the first start and kept: a new pair would silently void
    every subscription the browsers made with the old public key."""

    __tablename__ = "push_vapid_keys"

    id: int = Field(default=VAPID_KEY_ROW, primary_key=True)
    #: the P-256 private scalar (base64url, 32 bytes), sealed with CAREDESK_SECRET_KEY (core.crypto)
    private_key: str = Field(max_length=500)
    #: the uncompressed public point, base64url (65 bytes): the browsers' ``applicationServerKey``
    public_key: str = Field(max_length=100)
    created_at: datetime = created_at_field()


class PushSubscription(SQLModel, table=True):
    """Where to push to one agent's browser: the push service's endpoint and the browser's keys."""

    __tablename__ = "push_subscriptions"

    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agents.id", index=True)
    #: the push service's URL for this browser (unique: a browser belongs to whoever subscribed last)
    endpoint: str = Field(max_length=2048, unique=True)
    #: the browser's P-256 public key (base64url, 65 bytes) and its auth secret (base64url, 16 bytes)
    p256dh: str = Field(max_length=100)
    auth: str = Field(max_length=40)
    created_at: datetime = created_at_field()
    last_sent_at: datetime | None = timestamp_field()
    #: the last failure of a push to it (not 404/410: those delete the subscription)
    last_error: str | None = Field(default=None, max_length=500)
