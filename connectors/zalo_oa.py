"""Zalo Official Account (OA) through the Open API v3 consultation-message endpoint, using httpx.

Webhooks carry ``X-ZEvent-Signature: mac=<hex sha256(app_id + raw body + timestamp + OA secret key)>``,
a plain digest rather than an HMAC, where ``timestamp`` is the field of the body itself; an event
whose timestamp is further from now than ``max_event_age_s`` is refused as a replay. Every event,
including receipts and the OA's own messages echoed back, is parsed into exactly one message so the edge
stores it once; only what the customer did is answerable.

Zalo has no postback event: a button of type ``oa.query.hide`` makes the customer's app send the button's
payload back as an ordinary (hidden) ``user_send_text``. CareDesk therefore gives its buttons payloads it
can recognise on the way back: rating payloads (``rating:<subject>:<stars>``) as they are, other payloads
behind :data:`POSTBACK_PREFIX`.

Access tokens live 25 hours and are renewed with a refresh token that Zalo rotates on every use: the old
one dies the moment the new pair is issued. Refreshes are therefore single-flight (one at a time, and a
sender that waited reuses the pair the other one obtained) and every new pair is saved through a
:class:`ZaloTokenStore` before it is used.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, ClassVar, Protocol
from zoneinfo import ZoneInfo

import certifi
import httpx
from pydantic import BaseModel, ConfigDict

from connectors.base import (
    Attachment,
    AttachmentKind,
    Button,
    ChannelConnector,
    ChannelServices,
    DeliveryError,
    InboundKind,
    InboundMessage,
    MediaFile,
    NightWindow,
    PayloadError,
    ProactiveWindow,
    VerificationError,
    WebhookRequest,
    download,
    numbered_text,
    parse_rating_payload,
)
from connectors.zalo_oa_media import (
    ATTACHMENT_KINDS,
    MEDIA_LIMITS,
    media_message,
    message_attachments,
    upload_for,
    upload_name,
    with_links,
)

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-ZEvent-Signature"
MESSAGE_PATH = "/v3.0/oa/message/cs"
#: the promotion message type ("tin truyền thông"): to followers, within the OA's monthly quota per follower
PROMOTION_PATH = "/v3.0/oa/message/promotion"
TOKEN_PATH = "/v4/oa/access_token"
#: what a non-rating button sends back as hidden text, so it can be told apart from typed text
POSTBACK_PREFIX = "postback:"
#: Zalo refuses a button template with more buttons than this
MAX_BUTTONS = 5
#: Zalo's limit on an ``oa.query.*`` button payload, in characters
MAX_BUTTON_PAYLOAD = 1000
#: refresh this long before the recorded expiry rather than let a send fail first
EXPIRY_MARGIN = timedelta(minutes=5)
VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
#: Zalo refuses some sends between 22:00 and 06:00 Vietnam time
NIGHT_ENDS = time(6, 0)
NIGHT_STARTS = time(22, 0)

#: Zalo's codes for an access token that is invalid (-216) or expired/revoked (-220)
TOKEN_ERRORS = frozenset({-216, -220})
#: the customer's 7-day interaction window is closed (-230) or never opened (-232)
WINDOW_ERRORS = frozenset({-230, -232})
#: blocked the OA (-217), banned or gone from Zalo for 45 days (-227), refused messages of this kind (-244)
UNREACHABLE_ERRORS = frozenset({-217, -227, -244})
RATE_LIMITED = -32
NIGHT_BAN = -234
INVALID_PARAMETER = -201
#: "Send message failed" (-200) and "Out of quota" (-211) are Zalo-side and pass with time
TRANSIENT_ERRORS = frozenset({-200, -211})
#: Zalo's rate limit counts requests per minute
RATE_LIMIT_WINDOW_S = 60.0
#: when Zalo's clock says night but ours says day, try again soon rather than wait a whole night
CLOCK_DISAGREEMENT_RETRY_S = 60.0

#: events in which the customer sends something to the OA (sender = customer, recipient = OA)
CUSTOMER_EVENTS = frozenset(f"user_send_{kind}" for kind in ("text", *ATTACHMENT_KINDS))


class ZaloOAConfig(BaseModel):
    """Credentials and endpoints of one Zalo Official Account (``CAREDESK_ZALO_OA__*``)."""

    app_id: str = ""
    oa_secret_key: str = ""
    app_secret_key: str = ""
    access_token: str = ""
    refresh_token: str = ""
    api_base: str = "https://openapi.zalo.me"
    oauth_base: str = "https://oauth.zaloapp.com"
    request_timeout_s: float = 10.0
    #: a signed event whose timestamp is further than this from now (either way) is refused: the
    #: timestamp is signed so that a captured event cannot be played again later. 0 turns it off
    #: (to take in a backlog Zalo redelivers after a long outage).
    max_event_age_s: float = 600.0


class ZaloTokens(BaseModel):
    """An OA access token and the single-use refresh token that renews it."""

    model_config = ConfigDict(frozen=True)

    access_token: str
    refresh_token: str
    expires_at: datetime | None = None


class ZaloTokenStore(Protocol):
    """Where the current token pair survives restarts; ``save`` must be durable when it returns."""

    async def load(self) -> ZaloTokens | None:
        """The last saved pair, or None if nothing was ever saved."""
        ...

    async def save(self, tokens: ZaloTokens) -> None:
        """Persist a freshly issued pair (the previous refresh token is already dead)."""
        ...

    def renewing(self) -> AbstractAsyncContextManager[None]:
        """Held while a pair is renewed: one renewal at a time among every process sharing the store."""
        ...


class InMemoryZaloTokenStore:
    """A token store that forgets on restart: fine for tests and a single short-lived process."""

    def __init__(self, tokens: ZaloTokens | None = None):
        self._tokens = tokens

    async def load(self) -> ZaloTokens | None:
        """The pair saved last, if any."""
        return self._tokens

    async def save(self, tokens: ZaloTokens) -> None:
        """Keep the pair in memory."""
        self._tokens = tokens

    @asynccontextmanager
    async def renewing(self) -> AsyncIterator[None]:
        """Nothing to share: the connector's own lock keeps this process's renewals one at a time."""
        yield


@dataclass
class _LoopResources:
    """What belongs to one event loop: an httpx client and the refresh lock."""

    loop: asyncio.AbstractEventLoop
    client: httpx.AsyncClient
    refresh_lock: asyncio.Lock


class ZaloOAConnector(ChannelConnector):
    """A Zalo Official Account: verifies signed webhooks, parses events, sends consultation messages."""

    name: ClassVar[str] = "zalo_oa"
    supports_buttons: ClassVar[bool] = True
    config_model: ClassVar[type[BaseModel]] = ZaloOAConfig
    proactive_window: ClassVar[ProactiveWindow] = ProactiveWindow("Zalo OA", timedelta(days=7))
    night_window: ClassVar[NightWindow] = NightWindow("Zalo OA", NIGHT_STARTS, NIGHT_ENDS, VIETNAM.key)

    @classmethod
    def from_config(cls, config: ZaloOAConfig, services: ChannelServices) -> ZaloOAConnector:
        """The OA's tokens rotate, so the pair Zalo issued last is kept in the application's store."""
        return cls(config, services.credential_store(cls.name, ZaloTokens))

    def __init__(
        self,
        config: ZaloOAConfig,
        token_store: ZaloTokenStore | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ):
        self.config = config
        self.token_store: ZaloTokenStore = InMemoryZaloTokenStore() if token_store is None else token_store
        self._clock = clock or (lambda: datetime.now(UTC))
        self._tokens: ZaloTokens | None = None
        self._resources: _LoopResources | None = None

    @property
    def enabled(self) -> bool:
        """Whether the app, the webhook secret and an access or refresh token are configured."""
        has_token = bool(self.config.access_token or self.config.refresh_token)
        return bool(self.config.app_id and self.config.oa_secret_key and has_token)

    # -- inbound -------------------------------------------------------------------------------------

    async def verify(self, request: WebhookRequest) -> None:
        """Accept only events signed with the OA secret key for the configured app."""
        if not self.config.app_id or not self.config.oa_secret_key:
            raise VerificationError(
                "Zalo OA webhooks cannot be verified: set CAREDESK_ZALO_OA__APP_ID and "
                "CAREDESK_ZALO_OA__OA_SECRET_KEY"
            )
        given = request.header(SIGNATURE_HEADER)
        if given is None:
            raise VerificationError(f"missing {SIGNATURE_HEADER} header")
        try:
            event = json.loads(request.body)
        except ValueError as error:
            raise VerificationError("the body is not JSON, so its signature cannot be checked") from error
        if not isinstance(event, dict):
            raise VerificationError("the body is not a Zalo event")
        if str(event.get("app_id", "")) != self.config.app_id:
            # a valid signature of another app's event is still not an event for this OA
            raise VerificationError("the event is for another Zalo app (app_id does not match)")
        timestamp = event.get("timestamp")
        if timestamp is None or isinstance(timestamp, bool | dict | list):
            raise VerificationError("the event has no timestamp to check its signature with")
        expected = zalo_signature(self.config.app_id, request.body, str(timestamp), self.config.oa_secret_key)
        _, _, digest = given.strip().rpartition("=")
        if not hmac.compare_digest(expected.encode(), digest.strip().lower().encode()):
            raise VerificationError(f"{SIGNATURE_HEADER} does not match the body")
        self._check_fresh(timestamp)

    def _check_fresh(self, timestamp: Any) -> None:
        """Refuse a (correctly signed) event whose timestamp is too far from now: a replay."""
        window = self.config.max_event_age_s
        if window <= 0:
            return
        if not str(timestamp).isdigit():
            raise VerificationError(f"the event's timestamp is not a time in milliseconds: {timestamp!r}")
        skew = (self._clock() - datetime.fromtimestamp(int(timestamp) / 1000, UTC)).total_seconds()
        if abs(skew) > window:
            when = "old" if skew > 0 else "in the future"
            raise VerificationError(f"the event is {abs(skew):.0f} s {when}; events more than {window:.0f} s "
                                    "from now are refused as replays (CAREDESK_ZALO_OA__MAX_EVENT_AGE_S)")

    def parse(self, payload: Any) -> list[InboundMessage]:
        """Normalise one Zalo OA event; events CareDesk does not act on become one ``unsupported`` message."""
        if not isinstance(payload, dict):
            raise PayloadError(f"a Zalo OA event is a JSON object, got {type(payload).__name__}")
        event_name = payload.get("event_name")
        if not isinstance(event_name, str) or not event_name:
            raise PayloadError("not a Zalo OA event: no event_name")
        timestamp = _millis(payload.get("timestamp"), "timestamp")
        metadata: dict[str, Any] = {"event_name": event_name}
        for key in ("app_id", "user_id_by_app", "oa_id", "source"):
            if isinstance(payload.get(key), str | int):
                metadata[key] = str(payload[key])

        if event_name in CUSTOMER_EVENTS:
            return [self._from_customer(payload, event_name, timestamp, metadata)]
        if event_name == "user_submit_info":
            return [self._from_submitted_info(payload, timestamp, metadata)]
        if event_name in ("follow", "unfollow"):
            follower = _id_of(payload, "follower", event_name)
            metadata.setdefault("oa_id", _optional_id(payload, "recipient"))
            external_id = _derived_id(event_name, follower, payload)
            return [self._event(follower, external_id, event_name, timestamp, metadata)]
        if event_name in ("user_received_message", "user_seen_message"):
            return [self._from_receipt(payload, event_name, timestamp, metadata)]
        if event_name.startswith("oa_send_"):
            return [self._from_echo(payload, event_name, timestamp, metadata)]
        return [self._unsupported(payload, event_name, timestamp, metadata)]

    def _from_customer(
        self, payload: dict[str, Any], event_name: str, timestamp: datetime, metadata: dict[str, Any]
    ) -> InboundMessage:
        sender = _id_of(payload, "sender", event_name)
        message = _message_of(payload, event_name)
        msg_id = _required_str(message, "msg_id", f"{event_name}.message")
        metadata["oa_id"] = _optional_id(payload, "recipient")
        metadata["message_id"] = msg_id
        text = message.get("text") if isinstance(message.get("text"), str) else ""
        attachments, links = message_attachments(message.get("attachments"), event_name, metadata)
        # a shared link is the customer's message, not a file: its address goes into the text
        text = with_links(text, links)

        kind: InboundKind = "message" if text or attachments else "unsupported"
        payload_text: str | None = None
        if event_name == "user_send_text":
            payload_text = _button_payload(text)
            if payload_text is not None:
                kind = "postback"
                text = payload_text
                rating = parse_rating_payload(payload_text)
                if rating is not None:
                    metadata["rating"] = {"subject": rating[0], "stars": rating[1]}
        if message.get("quote_msg_id"):
            metadata["quote_message_id"] = str(message["quote_msg_id"])
        return InboundMessage(
            channel=self.name,
            sender_id=sender,
            external_id=msg_id,
            text=text,
            kind=kind,
            payload=payload_text,
            attachments=attachments,
            timestamp=timestamp,
            reply_token=msg_id,
            metadata=_clean(metadata),
        )

    def _from_submitted_info(
        self, payload: dict[str, Any], timestamp: datetime, metadata: dict[str, Any]
    ) -> InboundMessage:
        sender = _id_of(payload, "sender", "user_submit_info")
        info = payload.get("info")
        if not isinstance(info, dict):
            raise PayloadError("user_submit_info has no info object")
        # the customer answered a request_user_info form; their phone is how orders are looked up
        metadata["contact"] = _clean(
            {"name": info.get("name"), "phone_number": info.get("phone"), "address": _address(info)}
        )
        metadata["oa_id"] = _optional_id(payload, "recipient")
        phone, name = info.get("phone"), info.get("name")
        # the same shape as a contact shared on Telegram, so a flow reads a phone one way
        contact = (Attachment(kind="contact", phone=str(phone), name=name if isinstance(name, str) else None),)
        return InboundMessage(
            channel=self.name,
            sender_id=sender,
            external_id=_derived_id("user_submit_info", sender, payload),
            kind="message",
            attachments=contact if isinstance(phone, str | int) and str(phone) else (),
            timestamp=timestamp,
            sender_name=info.get("name") if isinstance(info.get("name"), str) else None,
            metadata=_clean(metadata),
        )

    def _from_receipt(
        self, payload: dict[str, Any], event_name: str, timestamp: datetime, metadata: dict[str, Any]
    ) -> InboundMessage:
        # receipts are about the OA's message, so Zalo puts the OA in ``sender`` and the customer in
        # ``recipient``; CareDesk files them under the customer's conversation
        customer = _id_of(payload, "recipient", event_name)
        metadata["oa_id"] = _optional_id(payload, "sender")
        message = _message_of(payload, event_name)
        ids = message.get("msg_ids") if isinstance(message.get("msg_ids"), list) else [message.get("msg_id")]
        message_ids = [str(item) for item in ids if isinstance(item, str | int) and str(item)]
        if not message_ids:
            raise PayloadError(f"{event_name} names no message (msg_id or msg_ids)")
        metadata["message_ids"] = message_ids
        if message.get("delivery_time") is not None:
            metadata["delivered_at"] = _millis(message["delivery_time"], "delivery_time").isoformat()
        kind: InboundKind = "delivery" if event_name == "user_received_message" else "read"
        if len(message_ids) == 1:
            external_id = f"{event_name}:{message_ids[0]}"
        else:
            external_id = _derived_id(event_name, customer, payload)
        return self._event(customer, external_id, kind, timestamp, metadata)

    def _from_echo(
        self, payload: dict[str, Any], event_name: str, timestamp: datetime, metadata: dict[str, Any]
    ) -> InboundMessage:
        customer = _id_of(payload, "recipient", event_name)
        sender = payload.get("sender")
        metadata["oa_id"] = _optional_id(payload, "sender")
        if isinstance(sender, dict) and sender.get("admin_id"):
            # written by a person in the OA's own inbox rather than through the API
            metadata["admin_id"] = str(sender["admin_id"])
        message = _message_of(payload, event_name)
        msg_id = _required_str(message, "msg_id", f"{event_name}.message")
        metadata["message_id"] = msg_id
        text = message.get("text") if isinstance(message.get("text"), str) else ""
        return InboundMessage(
            channel=self.name,
            sender_id=customer,
            # prefixed: the id is the OA message's own, which receipts and sends also refer to
            external_id=f"{event_name}:{msg_id}",
            text=text,
            kind="echo",
            timestamp=timestamp,
            metadata=_clean(metadata),
        )

    def _unsupported(
        self, payload: dict[str, Any], event_name: str, timestamp: datetime, metadata: dict[str, Any]
    ) -> InboundMessage:
        subject = ""
        for key in ("sender", "follower", "user"):
            candidate = payload.get(key)
            if isinstance(candidate, dict) and isinstance(candidate.get("id"), str | int):
                subject = str(candidate["id"])
                break
        message = payload.get("message")
        if isinstance(message, dict) and isinstance(message.get("msg_id"), str) and message["msg_id"]:
            external_id = f"{event_name}:{message['msg_id']}"
        else:
            external_id = _derived_id(event_name, subject, payload)
        return self._event(subject, external_id, "unsupported", timestamp, metadata)

    def _event(
        self, sender: str, external_id: str, kind: InboundKind, timestamp: datetime, metadata: dict[str, Any]
    ) -> InboundMessage:
        return InboundMessage(
            channel=self.name,
            sender_id=sender,
            external_id=external_id,
            kind=kind,
            timestamp=timestamp,
            metadata=_clean(metadata),
        )

    # -- outbound ------------------------------------------------------------------------------------

    async def typing_on(self, recipient_id: str) -> None:
        """Nothing: the Official Account API (``/v3.0/oa/message/*``) has no typing indicator or
        sender action, unlike Messenger's ``sender_action`` or the Zalo Bot API's ``sendChatAction``;
        a Zalo OA customer sees the agent's message when it is sent, and no sign before."""

    async def send_text(self, recipient_id: str, text: str, *, reply_to: str | None = None) -> str:
        """Send a consultation text message; as a reply to the customer's message when ``reply_to`` is set."""
        return await self._send({"recipient": _recipient(recipient_id, reply_to), "message": {"text": text}})

    async def send_buttons(
        self, recipient_id: str, text: str, buttons: tuple[Button, ...], *, reply_to: str | None = None
    ) -> str:
        """Send text with buttons that come back as postbacks; more than five become numbered text."""
        if not buttons:
            return await self.send_text(recipient_id, text, reply_to=reply_to)
        if len(buttons) > MAX_BUTTONS:
            return await self.send_text(recipient_id, numbered_text(text, buttons), reply_to=reply_to)
        zalo_buttons = []
        for button in buttons:
            payload = button_payload(button.payload)
            if len(payload) > MAX_BUTTON_PAYLOAD:
                raise DeliveryError(
                    f"button payload {button.payload[:40]!r}… is longer than Zalo's "
                    f"{MAX_BUTTON_PAYLOAD}-character limit",
                    retryable=False,
                    code="button_payload_too_long",
                )
            # hide: the customer sees which button they pressed, not the payload it sends
            zalo_buttons.append({"title": button.title, "type": "oa.query.hide", "payload": payload})
        message = {
            "text": text,
            "attachment": {"type": "template", "payload": {"buttons": zalo_buttons}},
        }
        return await self._send({"recipient": _recipient(recipient_id, reply_to), "message": message})

    async def _send(self, body: dict[str, Any]) -> str:
        answer = await self._authorised(functools.partial(self._post_message, body))
        data = answer.get("data")
        if not isinstance(data, dict) or not data.get("message_id"):
            raise DeliveryError(f"Zalo accepted the message but returned no message_id: {answer!r:.200}",
                                retryable=False, code="no_message_id")
        return str(data["message_id"])

    async def _authorised(self, call: Callable[[str], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        """Zalo's answer to ``call(access_token)``, renewing the token once if Zalo says it is stale;
        DeliveryError for any other error Zalo answers with."""
        if not self.enabled:
            raise DeliveryError(
                "Zalo OA is not configured: set CAREDESK_ZALO_OA__APP_ID, CAREDESK_ZALO_OA__OA_SECRET_KEY "
                "and CAREDESK_ZALO_OA__ACCESS_TOKEN or CAREDESK_ZALO_OA__REFRESH_TOKEN",
                retryable=False,
                code="not_configured",
            )
        token = await self._usable_access_token()
        answer = await call(token)
        if answer.get("error") in TOKEN_ERRORS:
            # the token expired or was replaced: renew once and try once more, never in a loop
            token = await self._refresh(stale_access_token=token)
            answer = await call(token)
            if answer.get("error") in TOKEN_ERRORS:
                raise DeliveryError(
                    f"Zalo rejected a freshly refreshed access token ({_message(answer)}); the OA may have "
                    "withdrawn CareDesk's permission: an OA admin must authorise the app again",
                    retryable=False,
                    code=answer.get("error"),
                    refresh_token=True,
                )
        code = answer.get("error", 0)
        if code != 0:
            raise self.delivery_error(code, _message(answer))
        return answer

    async def _post_message(self, body: dict[str, Any], access_token: str, path: str = MESSAGE_PATH) -> dict[str, Any]:
        """POST to the consultation endpoint (or ``path``); Zalo answers HTTP 200 even for its own errors."""
        return await self._post(path, access_token, json=body)

    async def send(self, message: Any) -> str:
        """A campaign's text (``metadata.promotion``) goes as a promotion message, the only type Zalo lets
        carry one; everything else as a consultation message."""
        if getattr(message, "kind", None) == "text" and message.metadata.get("promotion"):
            body = {"recipient": {"user_id": message.recipient_id},
                    "message": {"attachment": {"type": "template", "payload": promotion_payload(
                        str(message.metadata.get("title") or ""), message.text)}}}
            answer = await self._authorised(functools.partial(self._post_message, body, path=PROMOTION_PATH))
            data = answer.get("data")
            if not isinstance(data, dict) or not data.get("message_id"):
                raise DeliveryError(f"Zalo accepted the promotion but returned no message_id: {answer!r:.200}",
                                    retryable=False, code="no_message_id")
            return str(data["message_id"])
        return await super().send(message)

    async def _post(self, path: str, access_token: str, **request: Any) -> dict[str, Any]:
        url = self.config.api_base.rstrip("/") + path
        try:
            response = await self._client().post(url, headers={"access_token": access_token}, **request)
        except httpx.TimeoutException as error:
            raise DeliveryError("Zalo did not answer in time", retryable=True, code="timeout") from error
        except httpx.HTTPError as error:
            raise DeliveryError(f"could not reach Zalo: {type(error).__name__}", retryable=True,
                                code="network") from error
        return _json_answer(response)

    # -- media ---------------------------------------------------------------------------------------

    media_limits: ClassVar[Mapping[str, int]] = MEDIA_LIMITS

    async def fetch_media(self, attachment: Attachment, *, max_bytes: int) -> MediaFile:
        """Download from Zalo's CDN with this connector's client (its TLS setup; no token is sent)."""
        if not attachment.url or not attachment.url.startswith(("https://", "http://")):
            return await super().fetch_media(attachment, max_bytes=max_bytes)
        return await download(attachment.url, max_bytes=max_bytes, name=attachment.name,
                              client=self._client())

    async def send_file(self, recipient_id: str, file: MediaFile, kind: AttachmentKind, *, caption: str = "",
                        reply_to: str | None = None) -> str:
        """Upload the file to Zalo, then send a consultation message showing it. An image carries the
        caption as its text; a file's caption follows it as a text message (whose failure is logged:
        the file has arrived, and resending would repeat it)."""
        upload = upload_for(kind, file.mime_type, file.name, len(file.data))
        form = {"file": (upload_name(file.name, file.mime_type), file.data, file.mime_type or "")}
        answer = await self._authorised(functools.partial(self._post, upload.path, files=form))
        message = media_message(upload, upload.reference_in(answer), file.data, caption)
        message_id = await self._send({"recipient": _recipient(recipient_id, reply_to), "message": message})
        if caption and upload.media_type == "file":
            try:
                await self.send_text(recipient_id, caption)
            except DeliveryError as error:
                logger.warning("Zalo OA took the file %s but not its caption: %s", message_id, error.reason)
        return message_id

    def delivery_error(self, code: Any, description: str) -> DeliveryError:
        """Translate a non-zero Zalo ``error`` into what the outbox needs to decide on a retry."""
        reason = f"Zalo error {code}: {description}"
        if code in WINDOW_ERRORS:
            # not unreachable: the window opens again the moment the customer writes
            return DeliveryError(
                f"{reason}. Zalo only lets the shop answer within 7 days of the customer's last message; "
                "send it again once the customer writes to the OA",
                retryable=False,
                code=code,
            )
        if code in UNREACHABLE_ERRORS:
            return DeliveryError(reason, retryable=False, unreachable=True, code=code)
        if code == RATE_LIMITED:
            return DeliveryError(reason, retryable=True, retry_after=RATE_LIMIT_WINDOW_S, code=code)
        if code == NIGHT_BAN:
            return DeliveryError(
                f"{reason}. Zalo refuses this message at night; it will be sent after 06:00",
                retryable=True,
                retry_after=seconds_until_morning(self._clock()),
                code=code,
            )
        if code in TRANSIENT_ERRORS:
            return DeliveryError(reason, retryable=True, code=code)
        # -201 and the rest describe the request itself: the same body fails the same way again
        return DeliveryError(reason, retryable=False, code=code)

    # -- tokens --------------------------------------------------------------------------------------

    async def access_token(self) -> str:
        """The OA's access token, renewed first if it expired: what other OA APIs (ZNS) call with."""
        return await self._usable_access_token()

    async def renew_access_token(self, stale_access_token: str) -> str:
        """A new access token after an API refused ``stale_access_token`` (single-flight, as for sends)."""
        return await self._refresh(stale_access_token=stale_access_token)

    async def _current_tokens(self) -> ZaloTokens:
        if self._tokens is None:
            stored = await self.token_store.load()
            # a stored pair is newer than the configured one, which may have been used up long ago
            self._tokens = stored or ZaloTokens(
                access_token=self.config.access_token, refresh_token=self.config.refresh_token
            )
        return self._tokens

    async def _usable_access_token(self) -> str:
        tokens = await self._current_tokens()
        expired = tokens.expires_at is not None and self._clock() >= tokens.expires_at - EXPIRY_MARGIN
        if tokens.access_token and not expired:
            return tokens.access_token
        return await self._refresh(stale_access_token=tokens.access_token)

    async def _refresh(self, *, stale_access_token: str) -> str:
        """Renew the pair, unless another sender already did while this one waited for the lock."""
        async with self._loop_resources().refresh_lock, self.token_store.renewing():
            # read the store again: another process sharing it may have rotated the pair already
            stored = await self.token_store.load()
            if stored is not None:
                self._tokens = stored
            current = await self._current_tokens()
            if current.access_token and current.access_token != stale_access_token:
                return current.access_token
            try:
                fresh = await self._request_new_tokens(current.refresh_token)
            except DeliveryError as refused:
                configured = self.config.refresh_token
                if refused.retryable or not configured or configured == current.refresh_token:
                    raise
                # the saved refresh token is dead and an admin has since configured a new one
                logger.warning("saved Zalo OA refresh token refused; trying the configured one")
                fresh = await self._request_new_tokens(configured)
            # write before use: if the process dies after Zalo rotated the pair, the saved one survives
            await self.token_store.save(fresh)
            self._tokens = fresh
            logger.info("Zalo OA access token refreshed; valid until %s", fresh.expires_at)
            return fresh.access_token

    async def _request_new_tokens(self, refresh_token: str) -> ZaloTokens:
        if not refresh_token:
            raise DeliveryError(
                "the Zalo OA access token is no longer valid and there is no refresh token to renew it: "
                "set CAREDESK_ZALO_OA__REFRESH_TOKEN (or a new CAREDESK_ZALO_OA__ACCESS_TOKEN)",
                retryable=False,
                code="no_refresh_token",
                refresh_token=True,
            )
        if not self.config.app_secret_key:
            raise DeliveryError(
                "cannot refresh the Zalo OA access token: set CAREDESK_ZALO_OA__APP_SECRET_KEY",
                retryable=False,
                code="no_app_secret_key",
                refresh_token=True,
            )
        url = self.config.oauth_base.rstrip("/") + TOKEN_PATH
        form = {"refresh_token": refresh_token, "app_id": self.config.app_id, "grant_type": "refresh_token"}
        try:
            response = await self._client().post(
                url, data=form, headers={"secret_key": self.config.app_secret_key}
            )
        except httpx.TimeoutException as error:
            # Zalo may or may not have rotated the pair; the next try finds out which
            raise DeliveryError("Zalo did not answer the token refresh in time", retryable=True,
                                code="timeout") from error
        except httpx.HTTPError as error:
            raise DeliveryError(f"could not reach Zalo to refresh the token: {type(error).__name__}",
                                retryable=True, code="network") from error
        answer = _json_answer(response)
        access_token = answer.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            detail = answer.get("error_description") or answer.get("error_name") or _message(answer)
            raise DeliveryError(
                f"Zalo refused to refresh the OA access token ({detail}): an OA admin must authorise "
                "CareDesk again and set the new CAREDESK_ZALO_OA__REFRESH_TOKEN "
                "(and check CAREDESK_ZALO_OA__APP_SECRET_KEY)",
                retryable=False,
                code=answer.get("error", "refresh_refused"),
                refresh_token=True,
            )
        new_refresh = answer.get("refresh_token")
        expires_in = answer.get("expires_in")
        expires_at = None
        if isinstance(expires_in, str | int) and str(expires_in).isdigit():
            expires_at = self._clock() + timedelta(seconds=int(expires_in))
        return ZaloTokens(
            access_token=access_token,
            # Zalo always rotates; should it ever not, the old token is the only one left to try
            refresh_token=new_refresh if isinstance(new_refresh, str) and new_refresh else refresh_token,
            expires_at=expires_at,
        )

    # -- plumbing ------------------------------------------------------------------------------------

    def _loop_resources(self) -> _LoopResources:
        loop = asyncio.get_running_loop()
        if self._resources is None or self._resources.loop is not loop:
            # a client and a lock belong to the loop that made them (tests, a restarted worker): start over
            self._resources = _LoopResources(
                loop=loop,
                client=httpx.AsyncClient(timeout=self.config.request_timeout_s, verify=_tls_context()),
                refresh_lock=asyncio.Lock(),
            )
        return self._resources

    def _client(self) -> httpx.AsyncClient:
        return self._loop_resources().client

    async def close(self) -> None:
        """Close the HTTP client, if one was opened on this loop."""
        resources, self._resources = self._resources, None
        if resources is not None and resources.loop is asyncio.get_running_loop():
            await resources.client.aclose()


def zalo_signature(app_id: str, body: bytes, timestamp: str, oa_secret_key: str) -> str:
    """Hex SHA-256 of ``app_id + body + timestamp + oa_secret_key``: what Zalo puts after ``mac=``."""
    digest = hashlib.sha256()
    for part in (app_id.encode(), body, timestamp.encode(), oa_secret_key.encode()):
        digest.update(part)
    return digest.hexdigest()


def button_payload(payload: str) -> str:
    """The text a CareDesk button sends back through Zalo, recognisable as a press when it arrives."""
    if parse_rating_payload(payload) is not None:
        return payload
    return POSTBACK_PREFIX + payload


def _button_payload(text: str) -> str | None:
    """The payload of a CareDesk button press, or None for text the customer typed."""
    if parse_rating_payload(text) is not None:
        return text
    if text.startswith(POSTBACK_PREFIX) and len(text) > len(POSTBACK_PREFIX):
        return text[len(POSTBACK_PREFIX) :]
    return None


def seconds_until_morning(now: datetime) -> float:
    """Seconds from ``now`` until Zalo's night-time sending ban ends at 06:00 in Vietnam."""
    local = now.astimezone(VIETNAM)
    if NIGHT_ENDS <= local.time() < NIGHT_STARTS:
        # Zalo said night but our clock says day: the clocks disagree, so look again shortly
        return CLOCK_DISAGREEMENT_RETRY_S
    morning = datetime.combine(local.date(), NIGHT_ENDS, tzinfo=VIETNAM)
    if local.time() >= NIGHT_STARTS:
        morning += timedelta(days=1)
    return (morning - local).total_seconds()


def _recipient(recipient_id: str, reply_to: str | None) -> dict[str, str]:
    # answering the customer's own message counts as a reply, not as a message the OA started
    if reply_to:
        return {"message_id": reply_to}
    return {"user_id": recipient_id}


def promotion_payload(title: str, text: str) -> dict[str, Any]:
    """The template of a promotion message: a header (the campaign's name) and the text."""
    elements: list[dict[str, Any]] = []
    if title:
        elements.append({"type": "header", "content": title[:100], "align": "left"})
    elements.append({"type": "text", "content": text, "align": "left"})
    return {"template_type": "promotion", "language": "VI", "elements": elements}


def _json_answer(response: httpx.Response) -> dict[str, Any]:
    """Zalo's JSON answer, or a DeliveryError for what is not one (an outage page, a proxy error)."""
    status = response.status_code
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if isinstance(answer, dict) and status < 500:
        return answer
    if status >= 500 or status == 429:
        raise DeliveryError(f"Zalo answered HTTP {status}", retryable=True, code=status)
    raise DeliveryError(f"unexpected answer from Zalo (HTTP {status}): {response.text[:200]!r}",
                        retryable=False, code=status)


def _address(info: dict[str, Any]) -> str | None:
    """One line of address from either shape Zalo has used for the form's answer."""
    full = info.get("full_address")
    if isinstance(full, dict):
        parts = [full.get(key) for key in ("user_address", "user_ward", "user_district", "user_city")]
    else:
        parts = [info.get(key) for key in ("address", "ward", "district", "city")]
    line = ", ".join(part for part in parts if isinstance(part, str) and part)
    return line or None


def _clean(metadata: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in metadata.items() if value is not None}


def _message(answer: dict[str, Any]) -> str:
    text = answer.get("message")
    return text if isinstance(text, str) and text else f"error {answer.get('error')}"


def _millis(value: Any, field: str) -> datetime:
    if value is None:
        return datetime.now(UTC)
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).isdigit():
        raise PayloadError(f"{field} is not a time in milliseconds: {value!r}")
    return datetime.fromtimestamp(int(value) / 1000, UTC)


def _id_of(payload: dict[str, Any], key: str, event_name: str) -> str:
    party = payload.get(key)
    if not isinstance(party, dict) or not isinstance(party.get("id"), str | int) or not str(party["id"]):
        raise PayloadError(f"{event_name} has no {key}.id")
    return str(party["id"])


def _optional_id(payload: dict[str, Any], key: str) -> str | None:
    party = payload.get(key)
    if isinstance(party, dict) and isinstance(party.get("id"), str | int):
        return str(party["id"])
    return None


def _message_of(payload: dict[str, Any], event_name: str) -> dict[str, Any]:
    message = payload.get("message")
    if not isinstance(message, dict):
        raise PayloadError(f"{event_name} has no message object")
    return message


def _required_str(container: dict[str, Any], key: str, where: str) -> str:
    value = container.get(key)
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value):
        raise PayloadError(f"{where} has no {key}")
    return str(value)


def _derived_id(event_name: str, subject: str, payload: dict[str, Any]) -> str:
    """A dedupe key for events without a message id, the same on each of Zalo's redeliveries."""
    timestamp = payload.get("timestamp")
    if isinstance(timestamp, str | int) and str(timestamp):
        return f"{event_name}:{subject}:{timestamp}"
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    # surrogatepass: a lone surrogate in the event must still give it an id, not an error
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{event_name}:{subject}:{digest[:32]}"


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: loading the CA bundle for every new client costs about 0.1 s."""
    return ssl.create_default_context(cafile=certifi.where())
