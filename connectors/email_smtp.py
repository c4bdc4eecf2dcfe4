"""Email out: the settings of the email channel (``CAREDESK_EMAIL__*``), MIME messages built with the
standard library's ``email`` package, and sending them over SMTP with aiosmtplib (asyncio: the event loop
never waits on the mail server).

Like ZNS, email is addressed (to the order's email address) rather than a chat the customer opened, so
the care sequence uses it as one of its channels (``helpdesk/care/mail.py``).

What an SMTP failure means for the message: a 4xx reply, a refused or dropped connection or a timeout is
passing (the message is tried again later); a 5xx reply is final (the address or the message is refused).
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from datetime import datetime
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, field_validator

logger = logging.getLogger(__name__)

SMTP_SCHEMES = {"smtp": 25, "smtps": 465}
IMAP_SCHEMES = {"imap": 143, "imaps": 993}


class EmailConfig(BaseModel):
    """The email channel (``CAREDESK_EMAIL__*``): where mail goes out and comes in, and who sends it."""

    model_config = ConfigDict(populate_by_name=True)

    #: ``smtp://user:pass@host:port`` (``?starttls=require`` or ``?starttls=off``; by default STARTTLS is
    #: used when the server offers it), or ``smtps://`` for TLS from the first byte
    smtp_url: str = Field("", repr=False)  # carries the password: kept out of logged settings
    #: ``imap://user:pass@host:port/INBOX`` or ``imaps://…``: where customers' replies are read
    imap_url: str = Field("", repr=False)
    #: the sender, ``care@shop.vn`` or ``Shop name <care@shop.vn>`` (``CAREDESK_EMAIL__FROM``)
    sender: str = Field("", alias="from")
    #: this server's address as customers reach it, for the star and unsubscribe links of care mails;
    #: empty: ``CAREDESK_STORAGE__PUBLIC_BASE_URL``
    public_base_url: str = ""
    #: the shop's logo shown at the top of care mails (an https URL); empty: the shop's name only
    logo_url: str = ""
    #: how long the star and unsubscribe links of a mail stay valid
    link_ttl_days: int = Field(60, ge=1)
    timeout_s: float = Field(30.0, gt=0)
    #: how often the IMAP mailbox is read for replies (0: never)
    imap_poll_interval_s: float = Field(60.0, ge=0)

    @field_validator("smtp_url")
    @classmethod
    def _smtp_scheme(cls, value: str) -> str:
        if value and urlsplit(value).scheme not in SMTP_SCHEMES:
            raise ValueError("CAREDESK_EMAIL__SMTP_URL must start with smtp:// or smtps://")
        if value and not urlsplit(value).hostname:
            raise ValueError("CAREDESK_EMAIL__SMTP_URL names no host")
        return value

    @field_validator("imap_url")
    @classmethod
    def _imap_scheme(cls, value: str) -> str:
        if value and urlsplit(value).scheme not in IMAP_SCHEMES:
            raise ValueError("CAREDESK_EMAIL__IMAP_URL must start with imap:// or imaps://")
        return value

    @field_validator("sender")
    @classmethod
    def _sender_address(cls, value: str) -> str:
        if value and "@" not in sender_address(value).addr_spec:
            raise ValueError(f"CAREDESK_EMAIL__FROM: {value!r} is not an email address")
        return value

    @property
    def enabled(self) -> bool:
        """Whether mail can go out (an SMTP server and a sender)."""
        return bool(self.smtp_url and self.sender)

    @property
    def domain(self) -> str:
        """The sender's domain: Message-IDs are made on it."""
        return sender_address(self.sender).domain or "localhost"


def sender_address(value: str) -> Address:
    """``care@shop.vn`` or ``Name <care@shop.vn>`` as an Address."""
    value = value.strip()
    if "<" in value and value.endswith(">"):
        name, _, addr = value[:-1].rpartition("<")
        display = name.strip().strip('"')
    else:
        display, addr = "", value
    user, _, domain = addr.strip().rpartition("@")
    return Address(display_name=display, username=user, domain=domain)


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to connect, from ``CAREDESK_EMAIL__SMTP_URL``."""

    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    #: True: required; False: never; None: when the server offers it
    start_tls: bool | None

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        parts = urlsplit(url)
        query = {key: values[-1].lower() for key, values in parse_qs(parts.query).items()}
        starttls = query.get("starttls", "")
        start_tls = True if starttls in ("1", "true", "yes", "require") else \
            False if starttls in ("0", "false", "no", "off") else None
        implicit = parts.scheme == "smtps"
        port = parts.port or (SMTP_SCHEMES["smtps"] if implicit else 587 if start_tls else SMTP_SCHEMES["smtp"])
        return cls(host=parts.hostname or "", port=port,
                   username=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None,
                   use_tls=implicit, start_tls=None if implicit else start_tls)


# -- outcomes ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmailSent:
    """The server took the message."""

    message_id: str
    subject: str = ""


class EmailError(Exception):
    """The message was not taken: ``retryable`` for a passing failure (4xx, connection), else final."""

    def __init__(self, reason: str, *, retryable: bool, code: int | None = None, configuration: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.code = code
        #: the fault is ours (login refused, sender refused): logged as an error for the admin
        self.configuration = configuration


def smtp_error(exc: Exception) -> EmailError:
    """What an aiosmtplib failure means: 4xx and connection trouble pass, 5xx is final."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = exc.recipients[0] if exc.recipients else None
        code = refused.code if refused is not None else 550
        text = refused.message if refused is not None else "recipient refused"
        return EmailError(f"the mail server refused the address ({code} {text})", retryable=400 <= code < 500,
                          code=code)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return EmailError(f"the mail server refused CareDesk's login ({exc.code} {exc.message})",
                          retryable=400 <= exc.code < 500, code=exc.code, configuration=True)
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return EmailError(f"the mail server refused the sender {exc.sender} ({exc.code} {exc.message})",
                          retryable=400 <= exc.code < 500, code=exc.code, configuration=exc.code >= 500)
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPConnectError
                  | aiosmtplib.SMTPTimeoutError | aiosmtplib.SMTPConnectTimeoutError | aiosmtplib.SMTPReadTimeoutError):
        return EmailError(f"the mail server could not be reached: {exc}", retryable=True)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return EmailError(f"the mail server answered {exc.code} {exc.message}", retryable=400 <= exc.code < 500,
                          code=exc.code)
    if isinstance(exc, OSError | ssl.SSLError | TimeoutError):
        return EmailError(f"the mail server could not be reached: {exc}", retryable=True)
    return EmailError(f"sending failed: {exc}", retryable=True)


class SmtpSender:
    """Sends messages through ``CAREDESK_EMAIL__SMTP_URL``, one connection per message (care mail is a
    trickle; a kept connection would be dropped by the server between ticks anyway)."""

    def __init__(self, config: EmailConfig):
        self.config = config
        self.server = SmtpServer.from_url(config.smtp_url)

    async def send(self, message: EmailMessage) -> EmailSent:
        """Hand ``message`` to the server; raises EmailError saying whether to try again."""
        server = self.server
        try:
            await aiosmtplib.send(
                message, hostname=server.host, port=server.port, username=server.username,
                password=server.password, use_tls=server.use_tls, start_tls=server.start_tls,
                timeout=self.config.timeout_s)
        except Exception as exc:  # every failure becomes an outcome with a reason
            raise smtp_error(exc) from exc
        return EmailSent(str(message["Message-ID"]), str(message["Subject"] or ""))


# -- building messages -------------------------------------------------------------------------------


def new_message_id(domain: str) -> str:
    """A Message-ID on our domain, so replies and bounces naming it are recognised as ours."""
    return make_msgid(idstring="caredesk", domain=domain)


def build_message(
    *, sender: str, to: str, subject: str, text: str, html: str | None, domain: str, now: datetime,
    message_id: str | None = None, in_reply_to: str | None = None, references: list[str] | None = None,
    unsubscribe: tuple[str, str] | None = None,
) -> EmailMessage:
    """A multipart/alternative message (plain text first, HTML second) with the headers mail clients
    and providers expect; ``unsubscribe`` is (mailto URI, https URL) for List-Unsubscribe (RFC 2369)
    with the one-click POST of RFC 8058."""
    message = EmailMessage()
    message["From"] = sender_address(sender)
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id or new_message_id(domain)
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = " ".join(references)
    if unsubscribe is not None:
        mailto, https = unsubscribe
        message["List-Unsubscribe"] = f"<{mailto}>, <{https}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message
