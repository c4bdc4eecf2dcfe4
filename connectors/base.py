"""Channel-neutral message types and the adapter base class every channel implements.

A connector does three things and nothing else: ``verify`` an incoming webhook request,
``parse`` its JSON into :class:`InboundMessage` objects (pure, no I/O), and ``send`` an
:class:`OutboundMessage` to the platform, returning the platform's message id. It knows nothing
about the database or the bot; the helpdesk wires it in.
"""

from __future__ import annotations

import functools
import hmac
import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

InboundKind = Literal[
    "message",  # the customer wrote something (text and/or attachments)
    "postback",  # the customer pressed a button; ``payload`` carries its data
    "echo",  # the platform echoes what the page/bot itself sent
    "delivery",  # delivery receipt
    "read",  # read receipt
    "follow",
    "unfollow",
    "unsupported",  # a well-formed event CareDesk does not act on
]

#: kinds a customer expects an answer to; the rest are recorded but never answered
ANSWERABLE_KINDS: frozenset[str] = frozenset({"message", "postback"})


#: code points no database column can hold: lone surrogates (JSON lets anyone send "\ud800", which
#: no UTF-8 encoder accepts) and NUL (PostgreSQL text refuses it)
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")


def clean_text(text: str) -> str:
    """``text`` with unstorable code points replaced by U+FFFD, in Unicode normal form C."""
    if text.isascii():
        return text.replace("\x00", "\ufffd") if "\x00" in text else text
    text = _UNSTORABLE.sub("\ufffd", text)
    # NFC: the same word typed on two keyboards (precomposed or combining accents) is one string
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def clean_json(value: Any) -> Any:
    """A JSON-like value with every string in it, keys included, passed through ``clean_text``."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(key) if isinstance(key, str) else key: clean_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(item) for item in value]
    return value


#: what an attachment is, as the API shows it (``attachments[].kind``)
AttachmentKind = Literal["image", "video", "audio", "file", "sticker", "location", "contact"]


class Attachment(BaseModel):
    """A file, image or other media that came with a message, as the platform described it.

    The platform's own reference (``url`` or ``file_id``) is short-lived: the helpdesk fetches the
    bytes with :meth:`ChannelConnector.fetch_media` soon after the message arrives and keeps them.
    A location carries ``latitude``/``longitude`` (and an RFC 5870 geo URI in ``url``); a contact
    carries ``phone`` and ``name``.
    """

    model_config = ConfigDict(frozen=True)

    kind: AttachmentKind
    url: str | None = None
    file_id: str | None = None
    name: str | None = None
    mime_type: str | None = None
    #: bytes, pixels and seconds as the platform announced them (the stored file is measured anew)
    size: int | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    #: the platform's own preview (a video poster, a small photo size), when it offers one
    thumbnail_url: str | None = None
    thumbnail_file_id: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    phone: str | None = None
    #: the helpdesk's id of its stored copy, set by the helpdesk before the bot reads the message (the
    #: bot links the evidence in its handoff note with it); never from a platform's payload
    id: str | None = None

    @field_validator("url", "file_id", "name", "mime_type", "thumbnail_url", "thumbnail_file_id", "phone")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        return None if value is None else clean_text(value)

    @property
    def downloadable(self) -> bool:
        """Whether there are bytes to fetch (a location or contact is all in its fields)."""
        return self.kind not in ("location", "contact") and bool(self.url or self.file_id)


@dataclass(frozen=True)
class MediaFile:
    """Bytes of a file, fetched from a platform or about to be sent to one."""

    data: bytes
    mime_type: str | None = None
    name: str | None = None
    #: where the platform itself can fetch the same bytes (a signed, short-lived link to CareDesk),
    #: for platforms that take a file by address only (Zalo Bot, web chat); None when the server has
    #: no public address
    url: str | None = None


class MediaError(Exception):
    """A file could not be fetched: ``retryable`` is False when trying again cannot help (the link
    expired or is gone, the file is over the limit), True for a passing fault (timeout, 5xx)."""

    def __init__(self, reason: str, *, retryable: bool):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class InboundMessage(BaseModel):
    """One thing a customer did on a channel, normalised."""

    model_config = ConfigDict(frozen=True)

    channel: str
    sender_id: str
    external_id: str
    text: str = ""
    kind: InboundKind = "message"
    payload: str | None = None
    attachments: tuple[Attachment, ...] = ()
    timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))
    sender_name: str | None = None
    reply_token: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    # Every channel's text passes here, so no channel can hand the rest of CareDesk a string that
    # fails to store (and so is never answered) or two spellings of one word.
    @field_validator("channel", "sender_id", "external_id", "text", "payload", "sender_name", "reply_token")
    @classmethod
    def _storable_text(cls, value: str | None) -> str | None:
        return None if value is None else clean_text(value)

    @field_validator("metadata")
    @classmethod
    def _storable_metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        return clean_json(value)

    @property
    def answerable(self) -> bool:
        """Whether the customer expects the bot to react to this event."""
        return self.kind in ANSWERABLE_KINDS


#: an outgoing text's metadata key: the title of a button that shares the customer's own phone number
#: (Telegram's ``request_contact`` reply keyboard); channels without such a button send the text alone
REQUEST_CONTACT = "request_contact"


class Button(BaseModel):
    """A button or quick-reply option: what the customer sees and what comes back."""

    model_config = ConfigDict(frozen=True)

    title: str
    payload: str


class _Outbound(BaseModel):
    model_config = ConfigDict(frozen=True)

    recipient_id: str
    text: str
    reply_to: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class OutboundText(_Outbound):
    """Plain text."""

    kind: Literal["text"] = "text"


class OutboundButtons(_Outbound):
    """Text with buttons that stay under the message."""

    kind: Literal["buttons"] = "buttons"
    buttons: tuple[Button, ...]


class OutboundQuickReplies(_Outbound):
    """Text with one-tap answers that disappear once used."""

    kind: Literal["quick_replies"] = "quick_replies"
    options: tuple[Button, ...]


class OutboundRatingRequest(_Outbound):
    """A 1–5 star rating prompt; each button's payload is ``rating:<subject>:<stars>``."""

    kind: Literal["rating_request"] = "rating_request"
    subject: str

    def buttons(self) -> tuple[Button, ...]:
        """The five star buttons, one to five stars."""
        return tuple(
            Button(title="⭐" * stars, payload=rating_payload(self.subject, stars)) for stars in range(1, 6)
        )


class OutboundFile(_Outbound):
    """A stored attachment (``attachment_id``) sent with ``text`` as its caption (may be empty).

    The outbox loads the bytes and calls :meth:`ChannelConnector.send_file`; ``send`` refuses it.
    """

    kind: Literal["file"] = "file"
    attachment_id: str
    file_kind: AttachmentKind = "file"
    mime_type: str = "application/octet-stream"
    name: str = "file"
    size: int = 0


OutboundMessage = Annotated[
    OutboundText | OutboundButtons | OutboundQuickReplies | OutboundRatingRequest | OutboundFile,
    Field(discriminator="kind"),
]


def rating_payload(subject: str, stars: int) -> str:
    """Button payload that carries a star rating for ``subject`` (a conversation or an order)."""
    return f"rating:{subject}:{stars}"


def parse_rating_payload(payload: str | None) -> tuple[str, int] | None:
    """Read back ``(subject, stars)`` from a rating button payload, or None if it is not one."""
    if not payload or not payload.startswith("rating:"):
        return None
    subject, _, stars = payload[len("rating:") :].rpartition(":")
    if not subject or not stars.isdigit() or not 1 <= int(stars) <= 5:
        return None
    return subject, int(stars)


@dataclass(frozen=True)
class WebhookRequest:
    """What a connector needs of an HTTP request to verify and parse it (no web framework types)."""

    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """A header value, looked up case-insensitively."""
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


class ConnectorError(Exception):
    """Base class of errors a connector raises; ``status`` is the HTTP status the edge answers."""

    status: int = 400

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class VerificationError(ConnectorError):
    """The request is not from the platform (bad or missing secret or signature)."""

    status = 403


class PayloadError(ConnectorError):
    """The body is not an event of the platform's shape."""

    status = 422


class NoHandshake(ConnectorError):
    """The channel has no GET handshake on its webhook path."""

    status = 405


class DeliveryError(Exception):
    """A send failed. ``retryable`` and ``retry_after`` tell the outbox what to do next."""

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        code: str | int | None = None,
        unreachable: bool = False,
        refresh_token: bool = False,
    ):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.code = code
        self.unreachable = unreachable
        self.refresh_token = refresh_token


def secrets_match(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of a configured secret with the one a request carries."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def numbered_text(text: str, options: tuple[Button, ...]) -> str:
    """Render buttons as numbered lines for channels that cannot show buttons."""
    lines = [text, ""] + [f"{index}. {option.title}" for index, option in enumerate(options, start=1)]
    return "\n".join(lines)


class ProactiveWindow(NamedTuple):
    """How long after the customer's last message the platform still lets the shop write first."""

    platform: str
    length: timedelta


class NightWindow(NamedTuple):
    """Local hours in which the platform refuses messages the shop starts, as data: the connector
    knows the platform's rule, the helpdesk's care scheduler keeps proactive messages out of it."""

    platform: str
    starts: time
    ends: time
    #: the zone the platform reads the hours in (an IANA name)
    timezone: str


class CredentialStore(Protocol):
    """Where a channel keeps credentials it renews itself (e.g. rotating tokens) across restarts."""

    async def load(self) -> Any:
        """The last saved value, or None."""
        ...

    async def save(self, value: Any) -> None:
        """Persist ``value``; durable when this returns."""
        ...


class ChannelServices(Protocol):
    """What the application lends a connector it builds: a connector takes only what it declares."""

    #: "development", "production" or "test"
    environment: str

    def credential_store(self, channel: str, model: type[BaseModel]) -> CredentialStore:
        """A durable store for ``channel``'s credentials of shape ``model``."""
        ...


class ChannelConnector(ABC):
    """One messaging platform. Subclasses set ``name`` and implement verify, parse and send_text.

    A subclass also declares what the application needs to know of it, so that the registry in
    ``connectors/__init__.py`` is the only list of channels: its settings (``config_model``, read
    from ``CAREDESK_<NAME>__*``), how it is built from them (``from_config``), the platform's rule for
    messages the shop starts (``proactive_window``) and, if any, its webhook handshake.
    """

    name: ClassVar[str]
    #: what the platform can show natively; the rest is rendered as text by ``send``
    supports_buttons: ClassVar[bool] = False
    #: the channel's settings (one nested settings section), or None if it has none
    config_model: ClassVar[type[BaseModel] | None] = None
    #: None: the platform lets the shop write first at any time
    proactive_window: ClassVar[ProactiveWindow | None] = None
    #: None: the platform takes messages at any hour
    night_window: ClassVar[NightWindow | None] = None

    @classmethod
    def from_config(cls, config: BaseModel | None, services: ChannelServices) -> Self:
        """Build the connector from its settings section (None if it declares none)."""
        return cls(config) if cls.config_model is not None else cls()  # type: ignore[call-arg]

    def webhook_handshake(self, query: Mapping[str, str]) -> str:
        """Answer a platform's GET check of the webhook URL; raise ConnectorError to refuse it."""
        raise NoHandshake(f"the {self.name} channel has no webhook handshake; it takes POST only")

    async def typing_on(self, recipient_id: str) -> None:
        """Show the customer that someone is typing, where the platform has such an indicator.

        Best effort: the helpdesk calls it while an agent types, never queues or retries it (a late
        indicator is worse than none), and logs what it raises. The default does nothing, for
        platforms without an indicator."""

    async def typing_off(self, recipient_id: str) -> None:
        """Hide a typing indicator the channel showed while replies were being made (if it has one)."""

    def share_across_processes(self, bus: Any) -> None:
        """Use ``bus`` (Redis or the embedded broker) for state several server processes must share."""

    @property
    def enabled(self) -> bool:
        """Whether the channel has the credentials it needs to run."""
        return True

    @abstractmethod
    async def verify(self, request: WebhookRequest) -> None:
        """Raise VerificationError unless the request really comes from the platform."""

    @abstractmethod
    def parse(self, payload: Any) -> list[InboundMessage]:
        """Turn one webhook body into normalised messages; raise PayloadError if malformed."""

    @abstractmethod
    async def send_text(self, recipient_id: str, text: str, *, reply_to: str | None = None) -> str:
        """Send plain text and return the platform's message id."""

    async def send_buttons(
        self, recipient_id: str, text: str, buttons: tuple[Button, ...], *, reply_to: str | None = None
    ) -> str:
        """Send text with buttons; channels without buttons get numbered text."""
        return await self.send_text(recipient_id, numbered_text(text, buttons), reply_to=reply_to)

    async def send(self, message: OutboundText | OutboundButtons | OutboundQuickReplies | OutboundRatingRequest
                   | OutboundFile) -> str:
        """Deliver any outbound message variant, rendering what the channel cannot show."""
        match message:
            case OutboundButtons(buttons=buttons):
                return await self.send_buttons(message.recipient_id, message.text, buttons, reply_to=message.reply_to)
            case OutboundQuickReplies(options=options):
                return await self.send_buttons(message.recipient_id, message.text, options, reply_to=message.reply_to)
            case OutboundRatingRequest():
                return await self.send_buttons(
                    message.recipient_id, message.text, message.buttons(), reply_to=message.reply_to
                )
            case OutboundFile():
                raise TypeError("an OutboundFile is sent with send_file, once the outbox has loaded its bytes")
            case _:
                return await self.send_text(message.recipient_id, message.text, reply_to=message.reply_to)

    async def fetch_media(self, attachment: Attachment, *, max_bytes: int) -> MediaFile:
        """Download what ``attachment`` refers to, at most ``max_bytes`` (MediaError past that).

        The default reads a plain https URL; a platform that hands out file ids, or wants its token
        on the request, overrides this.
        """
        if not attachment.url or not attachment.url.startswith(("https://", "http://")):
            raise MediaError(f"the {self.name} channel gave no address to download this {attachment.kind} from",
                             retryable=False)
        return await download(attachment.url, max_bytes=max_bytes, name=attachment.name)

    async def send_file(self, recipient_id: str, file: MediaFile, kind: AttachmentKind, *, caption: str = "",
                        reply_to: str | None = None) -> str:
        """Send a file (photo, video, voice, document) with an optional caption; return the
        platform's message id. Raise DeliveryError(retryable=False) with the platform's reason when it
        refuses (too large, wrong type); ``media_limits`` lets the inbox check before sending."""
        raise DeliveryError(f"the {self.name} channel cannot send files", retryable=False)

    #: the largest file the platform takes from the shop, per kind (bytes); missing: not sendable
    media_limits: ClassVar[Mapping[str, int]] = {}

    async def check_credentials(self) -> str | None:
        """Ask the platform whether the channel's credentials work (at start-up): what they identify
        (e.g. the bot's @name), or None when there is nothing to ask. Raises DeliveryError with the
        platform's reason when it refuses them (``retryable`` when it could not be reached)."""
        return None

    async def acknowledge(self, message: InboundMessage) -> None:
        """Tell the platform an event was handled where it expects that (e.g. a button press)."""

    async def close(self) -> None:
        """Release network resources."""


def utc_from_timestamp(seconds: float | int | None) -> datetime:
    """A platform's Unix timestamp (seconds) as an aware UTC datetime; now if missing."""
    if seconds is None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(float(seconds), UTC)


#: how long a media download may take before it counts as a passing fault
DOWNLOAD_TIMEOUT_S = 30.0


@functools.cache
def _download_tls_context() -> Any:
    """One TLS context for every media download of the process (httpx's default trust: certifi, or
    SSL_CERT_FILE / SSL_CERT_DIR). A new client loads the CA bundle again otherwise: a py-spy sample of
    the worker during a burst of 200 Telegram photos found that a third of its CPU, on its event loop,
    competing with the webhooks for the machine's cores."""
    import httpx

    return httpx.create_ssl_context()


async def download(url: str, *, max_bytes: int, name: str | None = None, headers: Mapping[str, str] | None = None,
                   client: Any = None) -> MediaFile:
    """GET ``url`` streaming, refusing more than ``max_bytes``; MediaError tells whether to retry."""
    import httpx

    own = client is None
    http = client if client is not None else httpx.AsyncClient(timeout=DOWNLOAD_TIMEOUT_S, follow_redirects=True,
                                                                      verify=_download_tls_context())
    try:
        async with http.stream("GET", url, headers=dict(headers or {})) as response:
            if response.status_code in (401, 403, 404, 410):
                raise MediaError(f"the platform answered {response.status_code}: the link expired or is gone",
                                 retryable=False)
            if response.status_code >= 400:
                raise MediaError(f"the platform answered {response.status_code}",
                                 retryable=response.status_code >= 500 or response.status_code == 429)
            announced = response.headers.get("content-length")
            if announced and announced.isdigit() and int(announced) > max_bytes:
                raise MediaError(f"the file is {int(announced)} bytes, over the limit of {max_bytes}", retryable=False)
            chunks: list[bytes] = []
            received = 0
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                if received > max_bytes:
                    raise MediaError(f"the file is over the limit of {max_bytes} bytes", retryable=False)
                chunks.append(chunk)
            mime = response.headers.get("content-type", "").split(";")[0].strip() or None
            return MediaFile(b"".join(chunks), mime, name)
    except httpx.HTTPError as error:
        raise MediaError(f"the download failed: {error.__class__.__name__}", retryable=True) from error
    finally:
        if own:
            await http.aclose()
