"""Zalo bots through the Zalo Bot Platform API (``POST {api_base}/bot<TOKEN>/<method>``), using httpx.

The platform is modelled on Telegram's Bot API: webhooks carry the secret given to ``setWebhook`` in
``X-Bot-Api-Secret-Token``, answers are ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": ..., "description": ...}``. Its documentation shows webhook bodies wrapped
like a ``getUpdates`` answer (``{"ok": true, "result": {"event_name": ..., "message": ...}}``) while the
webhooks that actually arrive are the bare ``{"event_name": ..., "message": ...}``; both are accepted and
parse to the same messages. The platform has no buttons, so the base class renders them as numbered text.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import ssl
from dataclasses import dataclass
from datetime import datetime
from collections.abc import Mapping
from typing import Any, ClassVar

import certifi
import httpx
from pydantic import BaseModel

from connectors.base import (
    Attachment,
    AttachmentKind,
    ChannelConnector,
    DeliveryError,
    InboundKind,
    InboundMessage,
    MediaFile,
    PayloadError,
    VerificationError,
    WebhookRequest,
    download,
    secrets_match,
    utc_from_timestamp,
)

SECRET_HEADER = "X-Bot-Api-Secret-Token"
#: events whose message CareDesk reads; others (and unsupported ones) are recorded, never answered
MESSAGE_EVENTS = frozenset(
    {"message.text.received", "message.image.received", "message.sticker.received", "message.voice.received"}
)
#: the Bot API sends photos only, by address (sendPhoto); it publishes no size limit, so this is
#: CareDesk's own cap (the Zalo OA's limit for GIFs, the largest image it takes)
MEDIA_LIMITS: dict[str, int] = {"image": 5 * 1024 * 1024}
MAX_CAPTION_LENGTH = 2000


class ZaloBotConfig(BaseModel):
    """Credentials and endpoint of one Zalo bot (``CAREDESK_ZALO_BOT__*``)."""

    token: str = ""
    secret_token: str = ""
    api_base: str = "https://bot-api.zaloplatforms.com"
    request_timeout_s: float = 10.0


@dataclass
class _LoopClient:
    loop: asyncio.AbstractEventLoop
    client: httpx.AsyncClient


class ZaloBotConnector(ChannelConnector):
    """A Zalo bot: verifies webhooks by secret token, parses events, sends text through the Bot API."""

    name: ClassVar[str] = "zalo_bot"
    config_model: ClassVar[type[BaseModel]] = ZaloBotConfig

    def __init__(self, config: ZaloBotConfig):
        self.config = config
        self._client: _LoopClient | None = None

    @property
    def enabled(self) -> bool:
        """Whether a bot token is configured."""
        return bool(self.config.token)

    # -- inbound -------------------------------------------------------------------------------------

    async def verify(self, request: WebhookRequest) -> None:
        """Accept only webhooks carrying the configured secret token."""
        if not self.config.secret_token:
            raise VerificationError(
                "no Zalo bot webhook secret is configured (CAREDESK_ZALO_BOT__SECRET_TOKEN); "
                "webhooks without a secret are refused"
            )
        given = request.header(SECRET_HEADER)
        if given is None:
            raise VerificationError(f"missing {SECRET_HEADER} header")
        if not secrets_match(self.config.secret_token, given):
            raise VerificationError(f"{SECRET_HEADER} does not match the configured secret")

    def parse(self, payload: Any) -> list[InboundMessage]:
        """Normalise one Zalo bot event, wrapped in ``{"ok", "result"}`` or bare."""
        if not isinstance(payload, dict):
            raise PayloadError(f"a Zalo bot event is a JSON object, got {type(payload).__name__}")
        event = payload.get("result") if "result" in payload and "event_name" not in payload else payload
        if not isinstance(event, dict):
            raise PayloadError("the Zalo bot event's result is not an object")
        event_name = event.get("event_name")
        if not isinstance(event_name, str) or not event_name:
            raise PayloadError("not a Zalo bot event: no event_name")
        message = event.get("message")
        if message is None and event_name not in MESSAGE_EVENTS:
            return [self._without_message(event, event_name)]
        if not isinstance(message, dict):
            raise PayloadError(f"{event_name} has no message object")
        return [self._from_message(message, event_name)]

    def _from_message(self, message: dict[str, Any], event_name: str) -> InboundMessage:
        message_id = message.get("message_id")
        if not isinstance(message_id, str | int) or isinstance(message_id, bool) or not str(message_id):
            raise PayloadError(f"{event_name} has no message.message_id")
        chat = message.get("chat") if isinstance(message.get("chat"), dict) else {}
        sender = message.get("from") if isinstance(message.get("from"), dict) else {}
        # replies go to the chat (the same as the user in a private chat); ``from`` is the fallback
        chat_id = chat.get("id", sender.get("id"))
        if not isinstance(chat_id, str | int) or not str(chat_id):
            raise PayloadError(f"{event_name} names neither message.chat.id nor message.from.id")
        date = message.get("date")
        if date is not None and (isinstance(date, bool) or not isinstance(date, int | float | str)
                                 or not str(date).isdigit()):
            raise PayloadError(f"message.date is not a time in milliseconds: {date!r}")

        text = _string(message.get("text")) or _string(message.get("caption"))
        attachments = _attachments(message)
        kind: InboundKind = "message" if text or attachments else "unsupported"
        if event_name not in MESSAGE_EVENTS:
            # includes message.unsupported.received, sent instead of the content for protected users
            kind = "unsupported"
        if sender.get("is_bot") is True:
            # another bot in a group: answering it invites two bots to talk to each other forever
            kind = "unsupported"
        metadata: dict[str, Any] = {"event_name": event_name, "message_id": str(message_id)}
        if chat.get("chat_type"):
            metadata["chat_type"] = str(chat["chat_type"])
        if message.get("message_type"):
            metadata["message_type"] = str(message["message_type"])
        if sender.get("id") is not None:
            metadata["from_id"] = str(sender["id"])
        return InboundMessage(
            channel=self.name,
            sender_id=str(chat_id),
            external_id=str(message_id),
            text=text,
            kind=kind,
            attachments=attachments,
            timestamp=_from_millis(date),
            sender_name=_string(sender.get("display_name")) or _string(sender.get("name")) or None,
            reply_token=str(message_id),
            metadata=metadata,
        )

    def _without_message(self, event: dict[str, Any], event_name: str) -> InboundMessage:
        canonical = json.dumps(event, sort_keys=True, ensure_ascii=False)
        # surrogatepass: a lone surrogate in the event must still give it an id, not an error
        digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
        return InboundMessage(
            channel=self.name,
            sender_id="",
            external_id=f"{event_name}:{digest[:32]}",
            kind="unsupported",
            metadata={"event_name": event_name},
        )

    # -- outbound ------------------------------------------------------------------------------------

    async def send_text(self, recipient_id: str, text: str, *, reply_to: str | None = None) -> str:
        """Send plain text to a chat and return the platform's message id (``reply_to`` is not quoted)."""
        result = await self._call("sendMessage", {"chat_id": recipient_id, "text": text})
        if not isinstance(result, dict) or not result.get("message_id"):
            raise DeliveryError(f"Zalo accepted the message but returned no message_id: {result!r:.200}",
                                retryable=False, code="no_message_id")
        return str(result["message_id"])

    async def typing_on(self, recipient_id: str) -> None:
        """``sendChatAction`` with action "typing" (the only action the Zalo Bot API documents); like
        Telegram's, it fades by itself, so there is nothing to switch off."""
        await self._call("sendChatAction", {"chat_id": recipient_id, "action": "typing"})

    # -- media ---------------------------------------------------------------------------------------

    media_limits: ClassVar[Mapping[str, int]] = MEDIA_LIMITS

    async def fetch_media(self, attachment: Attachment, *, max_bytes: int) -> MediaFile:
        """Download a photo or sticker from Zalo's CDN with this connector's client (no token sent)."""
        if not attachment.url or not attachment.url.startswith(("https://", "http://")):
            return await super().fetch_media(attachment, max_bytes=max_bytes)
        return await download(attachment.url, max_bytes=max_bytes, name=attachment.name, client=self._http())

    async def send_file(self, recipient_id: str, file: MediaFile, kind: AttachmentKind, *, caption: str = "",
                        reply_to: str | None = None) -> str:
        """Send a photo with ``sendPhoto``, which takes it by address: Zalo fetches ``file.url`` itself."""
        limit = self.media_limits.get(kind)
        if limit is None:
            raise DeliveryError(f"the Zalo Bot API sends photos only, not a {kind}", retryable=False,
                                code="kind")
        if len(file.data) > limit:
            raise DeliveryError(f"the photo is {len(file.data)} bytes; CareDesk sends Zalo bot photos of at "
                                f"most {limit}", retryable=False, code="too_large")
        if not file.url:
            raise DeliveryError("the Zalo Bot API takes a photo by address only, and this server has no "
                                "public address Zalo could fetch it from (configure the server's public URL)",
                                retryable=False, code="no_public_url")
        if len(caption) > MAX_CAPTION_LENGTH:
            raise DeliveryError(f"the caption is {len(caption)} characters long; Zalo accepts at most "
                                f"{MAX_CAPTION_LENGTH}", retryable=False, code="text_too_long")
        params: dict[str, Any] = {"chat_id": recipient_id, "photo": file.url}
        if caption:
            params["caption"] = caption
        result = await self._call("sendPhoto", params)
        if not isinstance(result, dict) or not result.get("message_id"):
            raise DeliveryError(f"Zalo accepted the photo but returned no message_id: {result!r:.200}",
                                retryable=False, code="no_message_id")
        return str(result["message_id"])

    async def set_webhook(self, url: str) -> bool:
        """Point the bot's webhook at ``url`` with the secret token; raises DeliveryError on failure."""
        if not self.config.secret_token:
            raise DeliveryError(
                "set CAREDESK_ZALO_BOT__SECRET_TOKEN first: CareDesk refuses webhooks without a secret",
                retryable=False,
                code="secret_token",
            )
        await self._call("setWebhook", {"url": url, "secret_token": self.config.secret_token})
        return True

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        if not self.enabled:
            raise DeliveryError("Zalo bot is not configured (CAREDESK_ZALO_BOT__TOKEN)", retryable=False,
                                code="not_configured")
        url = f"{self.config.api_base.rstrip('/')}/bot{self.config.token}/{method}"
        try:
            response = await self._http().post(url, json=params)
        except httpx.TimeoutException as error:
            raise DeliveryError("Zalo did not answer in time", retryable=True, code="timeout") from error
        except httpx.HTTPError as error:
            # the URL carries the bot token: never put the error's text (which may quote it) in a reason
            raise DeliveryError(f"could not reach the Zalo Bot API: {type(error).__name__}", retryable=True,
                                code="network") from error
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if isinstance(answer, dict) and answer.get("ok") is True:
            return answer.get("result")
        raise delivery_error(response.status_code, answer if isinstance(answer, dict) else None)

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client.loop is not loop:
            # a client belongs to the loop that made it (tests, a restarted worker): start over
            client = httpx.AsyncClient(timeout=self.config.request_timeout_s, verify=_tls_context())
            self._client = _LoopClient(loop, client)
        return self._client.client

    async def close(self) -> None:
        """Close the HTTP client, if one was opened on this loop."""
        client, self._client = self._client, None
        if client is not None and client.loop is asyncio.get_running_loop():
            await client.client.aclose()


def delivery_error(status: int, answer: dict[str, Any] | None) -> DeliveryError:
    """Translate a failed Bot API call into what the outbox needs to decide on a retry."""
    answer = answer or {}
    code = answer.get("error_code", status)
    if not isinstance(code, int) or isinstance(code, bool):
        code = status
    description = answer.get("description") if isinstance(answer.get("description"), str) else None
    reason = description or f"Zalo Bot API answered HTTP {status}"
    if code == 429:
        parameters = answer.get("parameters") if isinstance(answer.get("parameters"), dict) else {}
        retry_after = parameters.get("retry_after")
        return DeliveryError(
            reason,
            retryable=True,
            retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
            code=429,
        )
    if code == 403:
        # blocked the bot, or never wrote to it: nothing helps until they write again
        return DeliveryError(reason, retryable=False, unreachable=True, code=403)
    if code == 401:
        return DeliveryError(f"Zalo rejected the bot token ({reason}); check CAREDESK_ZALO_BOT__TOKEN",
                             retryable=False, code=401)
    if code >= 500 or status >= 500:
        return DeliveryError(reason, retryable=True, code=code)
    return DeliveryError(reason, retryable=False, code=code)


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _from_millis(value: Any) -> datetime:
    # the Bot API counts milliseconds where Telegram counts seconds
    return utc_from_timestamp(int(value) / 1000 if value is not None else None)


def _attachments(message: dict[str, Any]) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    # the documentation says ``photo``; the webhooks that arrive carry ``photo_url``
    photo = _string(message.get("photo")) or _string(message.get("photo_url"))
    if photo:
        found.append(Attachment(kind="image", url=photo))
    if message.get("sticker"):
        sticker_url = _string(message.get("url")) or None
        found.append(Attachment(kind="sticker", file_id=str(message["sticker"]), url=sticker_url))
    voice = _string(message.get("voice_url"))
    if voice:
        found.append(Attachment(kind="audio", url=voice, mime_type="audio/aac"))
    return tuple(found)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: loading the CA bundle for every new client costs about 0.1 s."""
    return ssl.create_default_context(cafile=certifi.where())
