"""The built-in terminal channel: ``caredesk chat`` posts here and reads replies back over HTTP.

It needs no platform account, which is its point: anyone can try the bot. Sending is a no-op at
the platform level (the reply is already stored in the conversation, where the chat client reads
it), so ``send_text`` only mints an id.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from connectors.base import (Attachment, ChannelConnector, ChannelServices, InboundMessage, PayloadError,
                             WebhookRequest)


class CliConfig(BaseModel):
    """The built-in terminal channel used by ``caredesk chat`` (``CAREDESK_CLI__ENABLED``)."""

    #: None: on everywhere except production
    enabled: bool | None = None

    def enabled_in(self, environment: str) -> bool:
        """Whether the channel is on in ``environment``."""
        return self.enabled if self.enabled is not None else environment != "production"


class CliConnector(ChannelConnector):
    """Terminal chat for trying CareDesk locally."""

    name: ClassVar[str] = "cli"
    config_model: ClassVar[type[BaseModel]] = CliConfig

    def __init__(self, enabled: bool = True):
        self._enabled = enabled

    @classmethod
    def from_config(cls, config: CliConfig, services: ChannelServices) -> CliConnector:
        """On by default except in production, where anyone could otherwise chat as any customer."""
        return cls(enabled=config.enabled_in(services.environment))

    @property
    def enabled(self) -> bool:
        """On unless turned off (it is off by default in production)."""
        return self._enabled

    async def verify(self, request: WebhookRequest) -> None:
        """Local channel: nothing to verify beyond being enabled."""

    def parse(self, payload: Any) -> list[InboundMessage]:
        """``{"sender_id": ..., "message_id": ..., "text": ..., "name": ..., "attachments": [...]}`` -> one
        message (each attachment in the channel-neutral shape, e.g. ``{"kind": "location", "latitude": ...}``)."""
        if not isinstance(payload, dict):
            raise PayloadError("expected a JSON object")
        sender_id, message_id = payload.get("sender_id"), payload.get("message_id")
        text = payload.get("text", "")
        if not isinstance(sender_id, str) or not sender_id.strip():
            raise PayloadError("sender_id (a non-empty string) is required")
        if not isinstance(message_id, str) or not message_id.strip():
            raise PayloadError("message_id (a non-empty string) is required")
        if not isinstance(text, str) or len(text) > 4096:
            raise PayloadError("text must be a string of at most 4096 characters")
        payload_value = payload.get("payload")
        attachments = payload.get("attachments") or []
        if not isinstance(attachments, list) or len(attachments) > 10:
            raise PayloadError("attachments must be a list of at most 10 objects")
        try:
            parsed = tuple(Attachment.model_validate(item) for item in attachments)
        except ValidationError as exc:
            raise PayloadError(f"attachments: {exc.errors()[0]['msg']}") from exc
        return [
            InboundMessage(
                channel=self.name,
                sender_id=sender_id.strip()[:128],
                external_id=message_id.strip()[:128],
                text=text,
                kind="postback" if payload_value else "message",
                payload=payload_value if isinstance(payload_value, str) else None,
                attachments=parsed,
                sender_name=payload.get("name") if isinstance(payload.get("name"), str) else None,
            )
        ]

    async def send_text(self, recipient_id: str, text: str, *, reply_to: str | None = None) -> str:
        """Nothing to transmit: the chat client reads the stored reply. Returns a fresh id."""
        return f"cli-{uuid.uuid4().hex}"
