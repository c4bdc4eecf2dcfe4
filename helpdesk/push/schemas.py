"""What the push API takes and gives: the browser's PushSubscription JSON, checked before it is kept."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from datetime import datetime
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_ENDPOINT = 2048


def b64url_decode(text: str) -> bytes:
    """Base64url with or without padding (browsers send it without); ValueError if it is not."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("is not base64url") from exc


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (localhost or a loopback address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class PushKeys(BaseModel):
    """The browser's half of the payload encryption (RFC 8291)."""

    p256dh: str = Field(min_length=80, max_length=100)
    auth: str = Field(min_length=16, max_length=40)

    @field_validator("p256dh")
    @classmethod
    def _p256_point(cls, value: str) -> str:
        raw = b64url_decode(value)
        if len(raw) != 65 or raw[0] != 4:
            raise ValueError("must be an uncompressed P-256 public key (65 bytes, base64url)")
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError as exc:
            raise ValueError("is not a point on the P-256 curve") from exc
        return value

    @field_validator("auth")
    @classmethod
    def _auth_secret(cls, value: str) -> str:
        if len(b64url_decode(value)) != 16:
            raise ValueError("must be the 16-byte auth secret, base64url")
        return value


class PushSubscriptionCreate(BaseModel):
    """A browser's ``PushSubscription.toJSON()``: the push service's endpoint and the browser's keys."""

    model_config = ConfigDict(extra="ignore")

    endpoint: str = Field(min_length=10, max_length=MAX_ENDPOINT)
    expirationTime: float | None = None  # noqa: N815 (the browser's own name)
    keys: PushKeys

    @field_validator("endpoint")
    @classmethod
    def _push_service_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be the push service's https URL")
        if parts.username or parts.password:
            raise ValueError("must not carry a user name or password")
        # Plain http only to this machine (a push service in development or tests); the API layer
        # also refuses it in production.
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ValueError("must be an https URL")
        return value


class PushSubscriptionPublic(BaseModel):
    """A kept subscription, as its owner sees it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    endpoint: str
    created_at: datetime
    last_sent_at: datetime | None = None
    last_error: str | None = None


class PushSubscriptionsPublic(BaseModel):
    """The agent's subscriptions (one per browser or device)."""

    data: list[PushSubscriptionPublic]
    count: int


class VapidPublicKey(BaseModel):
    """The server's VAPID public key, for ``pushManager.subscribe({applicationServerKey})``."""

    public_key: str


class PushSubscriptionRemove(BaseModel):
    """Which subscription to forget, by its endpoint."""

    endpoint: str = Field(min_length=10, max_length=MAX_ENDPOINT)
