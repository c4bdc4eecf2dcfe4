"""Facebook Messenger through the Messenger Platform (Webhooks for Messenger and the Send API).

Webhooks are authenticated by ``X-Hub-Signature-256``, an HMAC-SHA256 of the raw body keyed with the app
secret; the one-off ``GET`` subscription handshake by the verify token (:meth:`verify_subscription`).
One webhook body can carry several entries, each with several messaging events: every one of them
becomes an :class:`InboundMessage`, including echoes and receipts (recorded, never answered) and events
CareDesk does not act on (``unsupported``), so the edge stores each exactly once.

Messenger only lets a Page answer within 24 hours of the customer's last message; a human agent may
answer up to 7 days later with the ``HUMAN_AGENT`` message tag once Meta has approved it for the app.
:meth:`FacebookConnector.send` decides from the outbound message's ``last_inbound_at`` and ``author``
metadata, and refuses what Facebook would refuse, with a reason an agent can act on.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel

from connectors.base import (
    Attachment,
    AttachmentKind,
    Button,
    ChannelConnector,
    DeliveryError,
    InboundKind,
    InboundMessage,
    MediaFile,
    OutboundButtons,
    OutboundQuickReplies,
    OutboundRatingRequest,
    OutboundText,
    PayloadError,
    ProactiveWindow,
    VerificationError,
    WebhookRequest,
    numbered_text,
    parse_rating_payload,
    secrets_match,
)
from connectors.facebook_media import MEDIA_LIMITS, SEND_TYPES, message_attachments, with_links

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")

#: Send API limits: longer text is refused, more quick replies are refused, longer titles are cut
MAX_TEXT_LENGTH = 2000
MAX_QUICK_REPLIES = 13
MAX_QUICK_REPLY_TITLE = 20
MAX_QUICK_REPLY_PAYLOAD = 1000

STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)

#: Graph API throttling (application, user, page, custom) plus Messenger's business-use-case limit
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80006})
#: "unknown" and "service" errors the Graph API documents as temporary when they carry no subcode
TRANSIENT_CODES = frozenset({1, 2})
OUTSIDE_WINDOW = frozenset({(10, 2018278), (200, 2018108), (10, 2018108), (200, 2018278)})
PERSON_UNAVAILABLE = 551
INVALID_TOKEN = 190
#: (#100) "No matching user found": the PSID does not belong to this Page (or no longer does)
NO_MATCHING_USER = (100, 2018001)

class FacebookConfig(BaseModel):
    """Credentials and endpoint of one Facebook Page's Messenger app (``CAREDESK_FACEBOOK__*``)."""

    verify_token: str = ""
    app_secret: str = ""
    page_access_token: str = ""
    graph_api_base: str = "https://graph.facebook.com/v21.0"
    #: reply as a human agent up to 7 days after the customer's last message (needs Meta's approval)
    human_agent_tag: bool = False
    request_timeout_s: float = 15.0


# -- the messaging window ---------------------------------------------------------------------------


def messaging_fields(
    metadata: Mapping[str, Any], *, human_agent_tag: bool, now: datetime | None = None
) -> dict[str, str]:
    """The Send API's ``messaging_type`` (and ``tag``) for a reply; DeliveryError if Messenger forbids it."""
    last_inbound = _last_inbound_at(metadata.get("last_inbound_at"))
    if last_inbound is None:
        # nothing known about the conversation (a direct send_text, a test): let Facebook decide
        return {"messaging_type": "RESPONSE"}
    elapsed = (now or datetime.now(UTC)) - last_inbound
    if elapsed <= STANDARD_WINDOW:
        return {"messaging_type": "RESPONSE"}
    since = _describe(elapsed)
    if elapsed > HUMAN_AGENT_WINDOW:
        raise DeliveryError(
            f"the customer last wrote {since} ago: Messenger allows no reply more than 7 days after the "
            "customer's last message; wait for them to write again",
            retryable=False,
            code="outside_window",
        )
    if metadata.get("author") != "agent":
        raise DeliveryError(
            f"outside Messenger's 24-hour window (the customer last wrote {since} ago): automated "
            "messages cannot be sent; only a human agent can still reply, with the HUMAN_AGENT tag",
            retryable=False,
            code="outside_window",
        )
    if not human_agent_tag:
        raise DeliveryError(
            f"outside Messenger's 24-hour window (the customer last wrote {since} ago); enable the "
            "HUMAN_AGENT tag (CAREDESK_FACEBOOK__HUMAN_AGENT_TAG=true, once Meta has approved the Human "
            "Agent permission for the app) to reply up to 7 days later, or wait for the customer to write",
            retryable=False,
            code="outside_window",
        )
    return {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}


def _last_inbound_at(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
    else:
        moment = None
    if moment is None:
        # a bug in whoever queued the message: retrying would fail the same way
        raise DeliveryError(
            f"last_inbound_at must be an ISO timestamp, got {value!r}", retryable=False, code="bad_metadata"
        )
    # the database keeps naive UTC timestamps
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _describe(elapsed: timedelta) -> str:
    hours = int(elapsed.total_seconds() // 3600)
    return f"{hours} hours" if hours < 48 else f"{hours // 24} days"


# -- Graph API errors -------------------------------------------------------------------------------


def delivery_error(status: int, body: Any, headers: Mapping[str, str]) -> DeliveryError:
    """Translate a failed Send API answer into what the outbox needs to decide on a retry."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    subcode = error.get("error_subcode") if isinstance(error.get("error_subcode"), int) else None
    message = str(error.get("message") or f"HTTP {status} from the Graph API")
    if error.get("fbtrace_id"):
        # the id Meta's support asks for; the reason stays Facebook's own words
        logger.info("Send API error %s/%s (fbtrace_id %s): %s", code, subcode, error["fbtrace_id"], message)

    if code in RATE_LIMIT_CODES or status == 429:
        return DeliveryError(
            message, retryable=True, retry_after=_retry_after(headers), code=code if code is not None else 429
        )
    if code == PERSON_UNAVAILABLE:
        # blocked the Page, turned off messages or deactivated: retrying cannot help until they write again
        return DeliveryError(message, retryable=False, unreachable=True, code=code)
    if (code, subcode) in OUTSIDE_WINDOW:
        return DeliveryError(
            f"{message} (Facebook refused it as outside Messenger's messaging window)",
            retryable=False,
            code=code,
        )
    if code == INVALID_TOKEN:
        return DeliveryError(
            f"Facebook rejected the Page access token ({message}); "
            "set a valid one in CAREDESK_FACEBOOK__PAGE_ACCESS_TOKEN",
            retryable=False,
            code=code,
        )
    if status >= 500 or (code in TRANSIENT_CODES and subcode is None):
        return DeliveryError(message, retryable=True, code=code if code is not None else status)
    if (code, subcode) == NO_MATCHING_USER:
        return DeliveryError(message, retryable=False, unreachable=True, code=code)
    return DeliveryError(message, retryable=False, code=code if code is not None else status)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# -- the connector ----------------------------------------------------------------------------------


class FacebookConnector(ChannelConnector):
    """A Facebook Page on Messenger: verifies signed webhooks, parses batches, sends through the Send API."""

    name: ClassVar[str] = "facebook"
    supports_buttons: ClassVar[bool] = True
    config_model: ClassVar[type[BaseModel]] = FacebookConfig
    # Messenger's standard messaging window; a tagged reply may go later, but a care message may not
    proactive_window: ClassVar[ProactiveWindow] = ProactiveWindow("Messenger", timedelta(hours=24))

    def __init__(self, config: FacebookConfig):
        self.config = config
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    @property
    def enabled(self) -> bool:
        """Whether the app secret (to verify webhooks) and the Page access token (to send) are set."""
        return bool(self.config.app_secret and self.config.page_access_token)

    # -- inbound -------------------------------------------------------------------------------------

    def verify_subscription(self, query: Mapping[str, str]) -> str:
        """Answer Facebook's GET subscription handshake: the ``hub.challenge`` if the verify token matches."""
        if not self.config.verify_token:
            raise VerificationError(
                "no Facebook verify token is configured (CAREDESK_FACEBOOK__VERIFY_TOKEN); "
                "the webhook subscription cannot be confirmed"
            )
        mode = query.get("hub.mode")
        if mode != "subscribe":
            raise VerificationError(f"hub.mode must be 'subscribe', got {mode!r}")
        if not secrets_match(self.config.verify_token, query.get("hub.verify_token")):
            raise VerificationError("hub.verify_token does not match CAREDESK_FACEBOOK__VERIFY_TOKEN")
        challenge = query.get("hub.challenge")
        if not challenge:
            raise VerificationError("missing hub.challenge")
        return challenge

    def webhook_handshake(self, query: Mapping[str, str]) -> str:
        """Messenger checks the webhook URL with a GET subscription request."""
        return self.verify_subscription(query)

    async def verify(self, request: WebhookRequest) -> None:
        """Accept only bodies signed with the app secret (``X-Hub-Signature-256``)."""
        if not self.config.app_secret:
            raise VerificationError(
                "no Facebook app secret is configured (CAREDESK_FACEBOOK__APP_SECRET); "
                "unsigned webhooks are refused"
            )
        given = request.header(SIGNATURE_HEADER)
        if given is None:
            raise VerificationError(f"missing {SIGNATURE_HEADER} header")
        matched = _SIGNATURE.fullmatch(given.strip())
        if matched is None:
            raise VerificationError(f"{SIGNATURE_HEADER} is not of the form sha256=<64 hex digits>")
        expected = hmac.new(self.config.app_secret.encode(), request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), matched.group(1).lower().encode()):
            raise VerificationError(f"{SIGNATURE_HEADER} does not match the body and the app secret")

    def parse(self, payload: Any) -> list[InboundMessage]:
        """Normalise every messaging event of every entry of one webhook body."""
        if not isinstance(payload, dict):
            raise PayloadError(f"a Messenger webhook is a JSON object, got {type(payload).__name__}")
        if payload.get("object") != "page":
            raise PayloadError(f"not a Messenger Page event: object is {payload.get('object')!r}, not 'page'")
        entries = payload.get("entry")
        if not isinstance(entries, list):
            raise PayloadError("a Messenger webhook has a list of entries under 'entry'")
        messages: list[InboundMessage] = []
        for index, entry in enumerate(entries):
            messages.extend(self._from_entry(entry, f"entry[{index}]"))
        return messages

    def _from_entry(self, entry: Any, where: str) -> list[InboundMessage]:
        if not isinstance(entry, dict):
            raise PayloadError(f"{where} is not an object")
        entry_id = entry.get("id")
        found: list[InboundMessage] = []
        # standby: events of a thread another app (e.g. the Page inbox) controls; seen, never answered
        for field in ("messaging", "standby"):
            items = entry.get(field)
            if items is None:
                continue
            if not isinstance(items, list):
                raise PayloadError(f"{where}.{field} is not a list")
            for index, item in enumerate(items):
                item_where = f"{where}.{field}[{index}]"
                found.append(self._from_item(item, entry, item_where, standby=field == "standby"))
        if not found and "messaging" not in entry and "standby" not in entry:
            # e.g. a feed "changes" entry from a wider subscription: record it, act on nothing
            found.append(
                InboundMessage(
                    channel=self.name,
                    sender_id="",
                    external_id=f"entry:{entry_id}:{_digest(entry)}",
                    kind="unsupported",
                    timestamp=_timestamp(entry.get("time"), None, f"{where}.time"),
                    metadata={"entry_id": _str_or_none(entry_id), "event": "entry"},
                )
            )
        return found

    def _from_item(self, item: Any, entry: dict[str, Any], where: str, *, standby: bool) -> InboundMessage:
        if not isinstance(item, dict):
            raise PayloadError(f"{where} is not an object")
        sender = _party(item.get("sender"), f"{where}.sender")
        recipient = _party(item.get("recipient"), f"{where}.recipient", required=False)
        when = _timestamp(item.get("timestamp"), entry.get("time"), f"{where}.timestamp")
        metadata: dict[str, Any] = {"entry_id": _str_or_none(entry.get("id")), "page_id": recipient}

        if standby:
            metadata["event"] = "standby"
            mid = item.get("message", {}).get("mid") if isinstance(item.get("message"), dict) else None
            external = f"standby:{mid}" if mid else f"standby:{sender}:{_digest(item)}"
            return self._message(sender, external, "unsupported", when, metadata)

        message = item.get("message")
        if message is not None:
            return self._from_message(message, sender, recipient, when, metadata, f"{where}.message")
        if "postback" in item:
            return self._from_postback(item["postback"], sender, item, when, metadata, f"{where}.postback")
        for receipt in ("delivery", "read"):
            if receipt in item:
                receipt_where = f"{where}.{receipt}"
                return self._from_receipt(receipt, item[receipt], sender, when, metadata, receipt_where)

        event = next((key for key in item if key not in ("sender", "recipient", "timestamp")), "unknown")
        metadata["event"] = event
        return self._message(sender, f"{event}:{sender}:{_digest(item)}", "unsupported", when, metadata)

    def _from_message(
        self,
        message: Any,
        sender: str,
        recipient: str | None,
        when: datetime,
        metadata: dict[str, Any],
        where: str,
    ) -> InboundMessage:
        if not isinstance(message, dict):
            raise PayloadError(f"{where} is not an object")
        mid = message.get("mid")
        if not isinstance(mid, str) or not mid:
            raise PayloadError(f"{where}.mid is missing")
        text = message.get("text")
        if text is not None and not isinstance(text, str):
            raise PayloadError(f"{where}.text is not a string")
        text = text or ""
        attachments, links = message_attachments(message.get("attachments"), f"{where}.attachments")
        text = with_links(text, links)
        metadata["mid"] = mid
        reply_to = message.get("reply_to")
        if isinstance(reply_to, dict) and reply_to.get("mid"):
            metadata["reply_to"] = reply_to["mid"]

        if message.get("is_deleted"):
            # the customer unsent a message: its mid is already stored, so this notice needs an id of its own
            metadata["event"] = "message_deleted"
            return self._message(sender, f"deleted:{mid}", "unsupported", when, metadata)

        if message.get("is_echo"):
            # the Page's own message (sent by CareDesk or typed in the Page inbox): the customer is the
            # recipient, and the sender is the Page
            if recipient is None:
                raise PayloadError(f"{where}: an echo without a recipient cannot be filed under a customer")
            metadata["page_id"] = sender
            metadata["event"] = "echo"
            if message.get("app_id") is not None:
                metadata["app_id"] = str(message["app_id"])
            if message.get("metadata") is not None:
                metadata["echo_metadata"] = message["metadata"]
            return self._message(recipient, mid, "echo", when, metadata, text=text, attachments=attachments)

        quick_reply = message.get("quick_reply")
        if quick_reply is not None:
            if not isinstance(quick_reply, dict) or not isinstance(quick_reply.get("payload"), str):
                raise PayloadError(f"{where}.quick_reply has no payload")
            payload = quick_reply["payload"]
            metadata["event"] = "quick_reply"
            _add_rating(metadata, payload)
            # text is the title the customer tapped, as it shows in the conversation
            return self._message(sender, mid, "postback", when, metadata, text=text, payload=payload)

        metadata["event"] = "message"
        kind: InboundKind = "message" if text or attachments else "unsupported"
        return self._message(sender, mid, kind, when, metadata, text=text, attachments=attachments)

    def _from_postback(
        self,
        postback: Any,
        sender: str,
        item: dict[str, Any],
        when: datetime,
        metadata: dict[str, Any],
        where: str,
    ) -> InboundMessage:
        if not isinstance(postback, dict):
            raise PayloadError(f"{where} is not an object")
        payload = postback.get("payload")
        if payload is not None and not isinstance(payload, str):
            raise PayloadError(f"{where}.payload is not a string")
        mid = postback.get("mid")
        if isinstance(mid, str) and mid:
            external = mid
            metadata["mid"] = mid
        else:
            # older postbacks carry no mid; Facebook resends the same event with the same fields
            external = f"postback:{sender}:{item.get('timestamp')}:{_digest(payload or '')}"
        metadata["event"] = "postback"
        if isinstance(postback.get("referral"), dict):
            metadata["referral"] = postback["referral"]
        _add_rating(metadata, payload)
        title = postback.get("title")
        text = title if isinstance(title, str) and title else payload or ""
        return self._message(sender, external, "postback", when, metadata, text=text, payload=payload)

    def _from_receipt(
        self,
        kind: Literal["delivery", "read"],
        receipt: Any,
        sender: str,
        when: datetime,
        metadata: dict[str, Any],
        where: str,
    ) -> InboundMessage:
        if not isinstance(receipt, dict):
            raise PayloadError(f"{where} is not an object")
        watermark = receipt.get("watermark")
        if not _is_number(watermark):
            raise PayloadError(f"{where}.watermark is missing or not a number")
        metadata["event"] = kind
        metadata["watermark"] = int(watermark)
        if isinstance(receipt.get("mids"), list):
            metadata["mids"] = [str(mid) for mid in receipt["mids"]]
        # one receipt per watermark and customer: a resent webhook maps to the same id
        return self._message(sender, f"{kind}:{int(watermark)}:{sender}", kind, when, metadata)

    def _message(
        self,
        sender_id: str,
        external_id: str,
        kind: InboundKind,
        when: datetime,
        metadata: dict[str, Any],
        *,
        text: str = "",
        payload: str | None = None,
        attachments: tuple[Attachment, ...] = (),
    ) -> InboundMessage:
        return InboundMessage(
            channel=self.name,
            sender_id=sender_id,
            external_id=external_id,
            text=text,
            kind=kind,
            payload=payload,
            attachments=attachments,
            timestamp=when,
            metadata=metadata,
        )

    # -- outbound ------------------------------------------------------------------------------------

    async def send(
        self, message: OutboundText | OutboundButtons | OutboundQuickReplies | OutboundRatingRequest
    ) -> str:
        """Deliver any outbound variant within Messenger's messaging window (see :func:`messaging_fields`)."""
        routing = messaging_fields(message.metadata, human_agent_tag=self.config.human_agent_tag)
        match message:
            case OutboundButtons(buttons=options) | OutboundQuickReplies(options=options):
                content = _with_options(message.text, options)
            case OutboundRatingRequest():
                content = _with_options(message.text, message.buttons())
            case _:
                content = {"text": message.text}
        return await self._send_message(message.recipient_id, content, routing)

    async def send_text(self, recipient_id: str, text: str, *, reply_to: str | None = None) -> str:
        """Send plain text as a reply inside the 24-hour window."""
        return await self._send_message(recipient_id, {"text": text}, {"messaging_type": "RESPONSE"})

    async def send_buttons(
        self, recipient_id: str, text: str, buttons: tuple[Button, ...], *, reply_to: str | None = None
    ) -> str:
        """Send text with quick replies (numbered text past 13) as a reply inside the 24-hour window."""
        content = _with_options(text, buttons)
        return await self._send_message(recipient_id, content, {"messaging_type": "RESPONSE"})

    async def typing_on(self, recipient_id: str) -> None:
        """``sender_action: typing_on``: Messenger shows "typing" for up to 20 seconds, or until the
        page's next message."""
        await self._sender_action(recipient_id, "typing_on")

    async def typing_off(self, recipient_id: str) -> None:
        """``sender_action: typing_off``: hide the indicator when the agent stops typing."""
        await self._sender_action(recipient_id, "typing_off")

    async def _sender_action(self, recipient_id: str, action: str) -> None:
        """POST a sender action; the Send API answers it with the recipient only (no message id)."""
        client = self._get_client()
        try:
            response = await client.post("/me/messages", params={"appsecret_proof": self._appsecret_proof()},
                                         json={"recipient": {"id": recipient_id}, "sender_action": action})
        except httpx.TimeoutException as error:
            raise DeliveryError("Facebook did not answer in time", retryable=False, code="timeout") from error
        except httpx.TransportError as error:
            raise DeliveryError(f"could not reach the Graph API: {error!r}", retryable=False,
                                code="network") from error
        if response.status_code != 200:
            try:
                answer = response.json()
            except ValueError:
                answer = None
            raise delivery_error(response.status_code, answer, response.headers)

    async def _send_message(self, recipient_id: str, content: dict[str, Any], routing: dict[str, str]) -> str:
        text = content.get("text", "")
        if len(text) > MAX_TEXT_LENGTH:
            raise DeliveryError(
                f"the message is {len(text)} characters long; Messenger accepts at most {MAX_TEXT_LENGTH}",
                retryable=False,
                code="text_too_long",
            )
        body = {"recipient": {"id": recipient_id}, **routing, "message": content}
        return await self._post_message(json=body)

    async def _post_message(self, **request: Any) -> str:
        """POST to the Send API (``json=`` a body, or ``data=``/``files=`` a multipart upload)."""
        client = self._get_client()
        try:
            response = await client.post(
                "/me/messages", params={"appsecret_proof": self._appsecret_proof()}, **request
            )
        except httpx.TimeoutException as error:
            raise DeliveryError("Facebook did not answer in time", retryable=True, code="timeout") from error
        except httpx.TransportError as error:
            raise DeliveryError(
                f"could not reach the Graph API: {error!r}", retryable=True, code="network"
            ) from error
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code != 200:
            raise delivery_error(response.status_code, answer, response.headers)
        message_id = answer.get("message_id") if isinstance(answer, dict) else None
        if not isinstance(message_id, str) or not message_id:
            # it may have been sent: retrying could send it twice
            raise DeliveryError(
                f"unexpected answer from the Send API: {response.text[:200]!r}",
                retryable=False,
                code="answer",
            )
        return message_id

    # -- media ---------------------------------------------------------------------------------------

    media_limits: ClassVar[Mapping[str, int]] = MEDIA_LIMITS

    async def send_file(self, recipient_id: str, file: MediaFile, kind: AttachmentKind, *, caption: str = "",
                        reply_to: str | None = None) -> str:
        """Upload the file with the Send API (multipart ``filedata``) and send the caption after it.

        Messenger attachments carry no caption, so a caption is a text message of its own; if that one
        fails the file has still arrived, so the failure is logged rather than raised (raising would
        make the outbox send the file twice).
        """
        attachment_type = SEND_TYPES.get(kind)
        if attachment_type is None:
            raise DeliveryError(f"Messenger cannot send a {kind} as a file", retryable=False, code="kind")
        limit = self.media_limits[kind]
        if len(file.data) > limit:
            raise DeliveryError(f"the file is {len(file.data)} bytes; Messenger takes attachments of at most "
                                f"{limit}", retryable=False, code="too_large")
        if len(caption) > MAX_TEXT_LENGTH:
            raise DeliveryError(f"the caption is {len(caption)} characters long; Messenger accepts at most "
                                f"{MAX_TEXT_LENGTH}", retryable=False, code="text_too_long")
        message = {"attachment": {"type": attachment_type, "payload": {"is_reusable": False}}}
        form = {
            "recipient": json.dumps({"id": recipient_id}),
            "messaging_type": "RESPONSE",
            "message": json.dumps(message),
        }
        upload = (file.name or "file", file.data, file.mime_type or "application/octet-stream")
        message_id = await self._post_message(data=form, files={"filedata": upload})
        if caption:
            try:
                await self.send_text(recipient_id, caption)
            except DeliveryError as error:
                logger.warning("Messenger took the file %s but not its caption: %s", message_id, error.reason)
        return message_id

    def _get_client(self) -> httpx.AsyncClient:
        if not self.enabled:
            raise DeliveryError(
                "Facebook is not configured (CAREDESK_FACEBOOK__APP_SECRET and "
                "CAREDESK_FACEBOOK__PAGE_ACCESS_TOKEN)",
                retryable=False,
                code="not_configured",
            )
        loop = asyncio.get_running_loop()
        if self._client is not None and self._client_loop is not loop:
            # a connection pool belongs to the loop that opened it (tests, a restarted worker): start over
            self._client = None
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.config.graph_api_base.rstrip("/"),
                # in a header rather than the documented ?access_token=, so it never lands in URL logs
                headers={"Authorization": f"Bearer {self.config.page_access_token}"},
                timeout=httpx.Timeout(self.config.request_timeout_s),
            )
            self._client_loop = loop
        return self._client

    def _appsecret_proof(self) -> str:
        # proves the call comes from the app's server; required when the app turns on "Require App Secret"
        key = self.config.app_secret.encode()
        return hmac.new(key, self.config.page_access_token.encode(), hashlib.sha256).hexdigest()

    async def close(self) -> None:
        """Close the HTTP client, if one was opened on this event loop."""
        client, loop = self._client, self._client_loop
        self._client = self._client_loop = None
        if client is not None and loop is asyncio.get_running_loop():
            await client.aclose()


def _with_options(text: str, options: tuple[Button, ...]) -> dict[str, Any]:
    """Quick replies under the text; more than Messenger shows become numbered lines to answer by number."""
    if len(options) > MAX_QUICK_REPLIES:
        return {"text": numbered_text(text, options)}
    for option in options:
        if len(option.payload) > MAX_QUICK_REPLY_PAYLOAD:
            raise DeliveryError(
                f"quick reply payload {option.payload[:40]!r}… is longer than Messenger's "
                f"{MAX_QUICK_REPLY_PAYLOAD} characters",
                retryable=False,
                code="payload_too_long",
            )
    quick_replies = [
        {"content_type": "text", "title": _short_title(option.title), "payload": option.payload}
        for option in options
    ]
    return {"text": text, "quick_replies": quick_replies} if quick_replies else {"text": text}


def _short_title(title: str) -> str:
    # Vietnamese typed as base letters plus combining marks counts double; composed, it fits more
    title = unicodedata.normalize("NFC", title)
    if len(title) <= MAX_QUICK_REPLY_TITLE:
        return title
    # Messenger cuts at 20 characters mid-word and without a mark: end on a whole word and an ellipsis
    cut = title[: MAX_QUICK_REPLY_TITLE - 1]
    if not title[MAX_QUICK_REPLY_TITLE - 1].isspace() and " " in cut.strip():
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip() + "…"


# -- parsing helpers --------------------------------------------------------------------------------


def _party(value: Any, where: str, *, required: bool = True) -> str | None:
    """The id of a sender or recipient; a ``user_ref`` stands in for plugin users without a PSID yet."""
    if value is None and not required:
        return None
    if not isinstance(value, dict):
        raise PayloadError(f"{where} is missing or not an object")
    identifier = value.get("id", value.get("user_ref"))
    if not isinstance(identifier, (str, int)) or isinstance(identifier, bool) or identifier == "":
        if required:
            raise PayloadError(f"{where}.id is missing")
        return None
    return str(identifier)


def _timestamp(value: Any, fallback: Any, where: str) -> datetime:
    """Messenger times are milliseconds since the epoch (some newer payloads send seconds, as strings)."""
    for candidate in (value, fallback):
        if candidate is None:
            continue
        if isinstance(candidate, str) and candidate.strip().isdigit():
            candidate = int(candidate)
        if not _is_number(candidate):
            raise PayloadError(f"{where} is not a timestamp: {candidate!r}")
        seconds = candidate / 1000 if candidate > 100_000_000_000 else candidate
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError) as error:
            raise PayloadError(f"{where} is out of range: {candidate!r}") from error
    return datetime.now(UTC)


def _add_rating(metadata: dict[str, Any], payload: str | None) -> None:
    rating = parse_rating_payload(payload)
    if rating is not None:
        metadata["rating"] = {"subject": rating[0], "stars": rating[1]}


def _digest(value: Any) -> str:
    """A short stable fingerprint for events Facebook gives no id of their own."""
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
