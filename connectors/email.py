"""The email channel: customers' replies read over IMAP become inbound messages of the ``email`` channel
(sender: their address), and what the shop answers (an agent in the inbox, the bot) goes back by SMTP as
a reply in the same thread (``In-Reply-To`` / ``References`` and a ``Re:`` subject).

Mail does not arrive by webhook: the helpdesk's IMAP poll (``helpdesk/mail/tasks.py``) stores each mail
through the same inbound ledger as every channel (deduplicated by Message-ID), with the payload
``{"uid": …, "mail": <base64 of the raw mail>}``, which ``parse`` turns into the message. The threads
(which Message-IDs a reply answers, the subject) are the helpdesk's records, handed in as ``threads``.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from connectors.base import (
    Attachment,
    ChannelConnector,
    DeliveryError,
    InboundMessage,
    MediaError,
    MediaFile,
    PayloadError,
    VerificationError,
)
from connectors.email_in import ImapError, ImapMailbox, fetch_by_message_id, parse_mail, short_id
from connectors.email_smtp import EmailConfig, EmailError, SmtpSender, build_message, new_message_id


class EmailThreads(Protocol):
    """The helpdesk's records of the mails of each address's thread."""

    async def reply_headers(self, address: str) -> tuple[str, str | None, list[str]]:
        """(subject of the thread, the Message-ID to answer, the References chain) for a reply to ``address``."""

    async def record_sent(self, address: str, message_id: str, subject: str) -> None:
        """Remember a mail the shop sent to ``address``, so that the customer's reply threads onto it."""


class EmailConnector(ChannelConnector):
    """Replies by email, in the customer's thread."""

    name: ClassVar[str] = "email"
    config_model: ClassVar[type[BaseModel]] = EmailConfig

    def __init__(self, config: EmailConfig | None = None):
        self.config = config or EmailConfig()
        self.sender = SmtpSender(self.config) if self.config.smtp_url else None
        #: set by the composition root; without it replies start a new thread
        self.threads: EmailThreads | None = None

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    async def verify(self, request: Any) -> None:
        raise VerificationError("the email channel reads mail over IMAP; it takes no webhooks")

    def parse(self, payload: Any) -> list[InboundMessage]:
        """``{"mail": <base64 raw mail>, "sender_id": <the address of the thread>}`` -> the reply it
        carries (none for a bounce or an empty mail)."""
        if not isinstance(payload, dict) or not isinstance(payload.get("mail"), str):
            raise PayloadError("an email event is {'mail': <base64 of the raw mail>}")
        try:
            raw = base64.b64decode(payload["mail"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise PayloadError(f"the mail is not base64: {exc}") from exc
        mail = parse_mail(raw)
        if mail.bounce is not None or not (mail.text or mail.attachments) or not mail.from_address:
            return []
        sender = str(payload.get("sender_id") or mail.from_address)
        # the files stay in the mail, in the mailbox: ``fetch_media`` reads them from there
        files = tuple(Attachment(kind=_kind(mime), file_id=f"{index}#{mail.message_id}", name=name[:200],
                                 mime_type=mime, size=len(data))
                      for index, (name, mime, data) in enumerate(mail.attachments))
        return [InboundMessage(
            channel=self.name, sender_id=sender, external_id=short_id(mail.message_id), text=mail.text,
            attachments=files,
            timestamp=mail.date.astimezone(UTC) if mail.date else datetime.now(UTC), sender_name=mail.from_name or None,
            metadata={"subject": mail.subject[:300], "message_id": mail.message_id[:300],
                      "automatic": mail.automatic})]

    async def fetch_media(self, attachment: Attachment, *, max_bytes: int) -> MediaFile:
        """Read an attached file out of its mail, found again in the mailbox by Message-ID."""
        index, _, message_id = (attachment.file_id or "").partition("#")
        if not (index.isdigit() and message_id and self.config.imap_url):
            raise MediaError("the attachment names no mail to read it from", retryable=False)
        if attachment.size and attachment.size > max_bytes:
            raise MediaError(f"the file is {attachment.size} bytes, over the limit of {max_bytes}", retryable=False)
        try:
            raw = await fetch_by_message_id(ImapMailbox.from_url(self.config.imap_url), message_id,
                                            self.config.timeout_s)
        except ImapError as error:
            raise MediaError(str(error), retryable=True) from error
        if raw is None:
            raise MediaError("the mail is no longer in the mailbox", retryable=False)
        files = parse_mail(raw).attachments
        if int(index) >= len(files):
            raise MediaError("the mail has no such attachment", retryable=False)
        name, mime, data = files[int(index)]
        if len(data) > max_bytes:
            raise MediaError(f"the file is {len(data)} bytes, over the limit of {max_bytes}", retryable=False)
        return MediaFile(data, mime, name)

    async def send_text(self, recipient_id: str, text: str, *, reply_to: str | None = None) -> str:
        """Send ``text`` to the address as a reply in its thread; the Message-ID (without brackets)."""
        if self.sender is None:
            raise DeliveryError("the email channel has no SMTP server (CAREDESK_EMAIL__SMTP_URL)", retryable=False)
        subject, answering, references = ("", None, [])
        if self.threads is not None:
            subject, answering, references = await self.threads.reply_headers(recipient_id)
        if subject and not subject.lower().startswith(("re:", "tl:")):
            subject = f"Re: {subject}"
        message_id = new_message_id(self.config.domain)
        message = build_message(
            sender=self.config.sender, to=recipient_id, subject=subject or "Re:", text=text, html=None,
            domain=self.config.domain, now=datetime.now(UTC), message_id=message_id,
            in_reply_to=f"<{answering}>" if answering else None,
            references=[f"<{ref}>" for ref in references] or None)
        try:
            await self.sender.send(message)
        except EmailError as error:
            raise DeliveryError(error.reason, retryable=error.retryable, code=error.code,
                                unreachable=error.code is not None and error.code >= 500
                                and not error.configuration) from error
        bare = message_id.strip("<>")
        if self.threads is not None:
            await self.threads.record_sent(recipient_id, bare, subject)
        return bare


def _kind(mime: str) -> str:
    """The attachment kind of a MIME type."""
    major = mime.split("/", 1)[0]
    return {"image": "image", "video": "video", "audio": "audio"}.get(major, "file")
