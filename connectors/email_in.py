"""Email in: reading the mailbox over IMAP (aioimaplib, asyncio) and understanding what arrived with the
standard library's MIME parser (``email.message_from_bytes(..., policy=policy.default)``): a customer's
reply (its new text, the quoted history cut off; the Message-IDs it answers) or a delivery status
notification (a bounce, RFC 3464 ``multipart/report; report-type=delivery-status``)."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

import aioimaplib

logger = logging.getLogger(__name__)

#: the longest platform id the inbound ledger stores; longer Message-IDs are hashed
MAX_ID = 128
_MSGID = re.compile(r"<([^<>\s]+)>")
#: a line that introduces the quoted message in a reply (English, Vietnamese, and the usual separators)
_QUOTE_HEADER = re.compile(
    r"^(On .{4,200} wrote:|Vào .{4,200} đã viết:|.{0,200}<[^>]+@[^>]+> (wrote|đã viết):|-{2,} ?Original Message ?-{2,}"
    r"|-{2,} ?Thư gốc ?-{2,}|_{10,}|From: .+|Từ: .+)\s*$", re.IGNORECASE)

#: the header-like introductions, which count only after new text (a customer may start a mail with them)
_FROM_LINE = re.compile(r"^(From|Từ): .+$", re.IGNORECASE)


def message_ids(value: str | None) -> list[str]:
    """The Message-IDs in an In-Reply-To or References header, without angle brackets, in order."""
    return _MSGID.findall(value or "")


def short_id(message_id: str) -> str:
    """A Message-ID as the inbound ledger stores it (at most MAX_ID characters)."""
    if len(message_id) <= MAX_ID:
        return message_id
    return "sha256:" + hashlib.sha256(message_id.encode()).hexdigest()


@dataclass(frozen=True)
class Bounce:
    """A delivery status notification: for which of our messages, which address failed and why."""

    #: the Message-ID of the mail that bounced (from the returned headers), if the report has it
    original_message_id: str | None
    recipients: tuple[str, ...]
    status: str
    diagnostic: str
    #: Action: failed and a 5.x.x status: the address will not take mail
    permanent: bool


@dataclass(frozen=True)
class ParsedMail:
    """What a received mail says."""

    message_id: str
    from_address: str
    from_name: str
    subject: str
    #: the new text of the mail, quoted history cut off
    text: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    date: datetime
    bounce: Bounce | None = None
    #: (file name, content type, bytes) of attached files
    attachments: tuple[tuple[str, str, bytes], ...] = field(default=())
    #: an auto-reply (out of office, Auto-Submitted): threaded, never answered by the bot
    automatic: bool = False


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse one mail; a mail without a Message-ID gets one made from its bytes (so it is stored once)."""
    message: EmailMessage = message_from_bytes(raw, policy=policy.default)  # type: ignore[assignment]
    ids = message_ids(str(message.get("Message-ID", "")))
    message_id = ids[0] if ids else "sha256:" + hashlib.sha256(raw).hexdigest()
    senders = getaddresses([str(message.get("From", ""))])
    name, address = senders[0] if senders else ("", "")
    try:
        date = parsedate_to_datetime(str(message["Date"])) if message["Date"] else datetime.now(UTC)
        date = date if date.tzinfo else date.replace(tzinfo=UTC)
    except (TypeError, ValueError):
        date = datetime.now(UTC)
    bounce = parse_bounce(message)
    auto = is_auto_reply(message)
    return ParsedMail(
        message_id=message_id, from_address=address.strip().lower(), from_name=name.strip(),
        subject=str(message.get("Subject", "")).strip(), text=reply_text(message) if bounce is None else "",
        in_reply_to=tuple(message_ids(str(message.get("In-Reply-To", "")))),
        references=tuple(message_ids(str(message.get("References", "")))), date=date, bounce=bounce,
        attachments=tuple(_attachments(message)) if bounce is None else (), automatic=auto or bounce is not None)


def is_auto_reply(message: EmailMessage) -> bool:
    """Whether a program wrote the mail: Auto-Submitted other than "no" (RFC 3834), the X-Autoreply or
    X-Autorespond marks, or Precedence auto_reply/bulk/junk, which vacation responders (older Exchange
    among them) still use instead of Auto-Submitted."""
    if str(message.get("Auto-Submitted", "no")).strip().lower() not in ("", "no"):
        return True
    if message.get("X-Autoreply") or message.get("X-Autorespond"):
        return True
    return str(message.get("Precedence", "")).strip().lower() in ("auto_reply", "bulk", "junk")


def reply_text(message: EmailMessage) -> str:
    """The mail's own text: the plain part (else the HTML part as text) without the quoted history."""
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    try:
        content = body.get_content()
    except (LookupError, UnicodeDecodeError):
        content = body.get_payload(decode=True).decode("utf-8", "replace")
    if body.get_content_type() == "text/html":
        content = _html_to_text(content)
    return strip_quoted(content)


def strip_quoted(text: str) -> str:
    """Cut the quoted history off a reply: from the line introducing it ("On … wrote:", "Vào … đã viết:",
    "-----Original Message-----") or the first run of ``>`` lines after the new text, and the signature."""
    kept: list[str] = []
    lines = text.replace("\r\n", "\n").split("\n")
    for index, line in enumerate(lines):
        stripped = line.strip()
        if _QUOTE_HEADER.match(stripped) and (any(k.strip() for k in kept) or not _FROM_LINE.match(stripped)):
            break  # before any new text only an unmistakable introduction counts ("Từ: …" may be typed)
        if stripped.startswith(">") and any(k.strip() for k in kept):
            break
        if stripped == "--" or line == "-- ":  # the signature separator
            break
        if stripped.startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept).strip()


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("style", "script", "blockquote"):
            self._skip += 1
        if tag in ("br", "p", "div", "tr", "li"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "blockquote") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _html_to_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return re.sub(r"\n{3,}", "\n\n", "".join(parser.parts))


def _attachments(message: EmailMessage) -> list[tuple[str, str, bytes]]:
    found = []
    for part in message.iter_attachments():
        data = part.get_payload(decode=True)
        if isinstance(data, bytes) and data:
            found.append((part.get_filename() or "file", part.get_content_type(), data))
    return found


def parse_bounce(message: EmailMessage) -> Bounce | None:
    """The delivery status of a ``multipart/report; report-type=delivery-status`` mail, else None."""
    if message.get_content_type() != "multipart/report" or \
            message.get_param("report-type", "").lower() != "delivery-status":
        return None
    recipients: list[str] = []
    action = status = diagnostic = ""
    original: str | None = None
    for part in message.iter_parts():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            for group in part.get_payload():  # the per-message group, then one per recipient
                for key, value in group.items():
                    key, value = key.lower(), str(value).strip()
                    if key == "final-recipient":
                        recipients.append(value.split(";", 1)[-1].strip().lower())
                    elif key == "action" and not action.startswith("failed"):
                        action = value.lower()
                    elif key == "status" and not status.startswith("5"):
                        status = value
                    elif key == "diagnostic-code" and not diagnostic:
                        diagnostic = value.split(";", 1)[-1].strip()
        elif kind in ("message/rfc822", "text/rfc822-headers"):
            returned = part.get_payload()[0] if kind == "message/rfc822" else \
                message_from_bytes(part.get_payload(decode=True) or b"", policy=policy.default)
            ids = message_ids(str(returned.get("Message-ID", "")))
            original = ids[0] if ids else None
    return Bounce(original_message_id=original, recipients=tuple(recipients), status=status,
                  diagnostic=diagnostic, permanent=action.startswith("failed") and status.startswith("5"))


# -- IMAP --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImapMailbox:
    """Where to read, from ``CAREDESK_EMAIL__IMAP_URL``."""

    host: str
    port: int
    username: str
    password: str
    use_tls: bool
    folder: str

    @classmethod
    def from_url(cls, url: str) -> ImapMailbox:
        parts = urlsplit(url)
        tls = parts.scheme == "imaps"
        return cls(host=parts.hostname or "", port=parts.port or (993 if tls else 143),
                   username=unquote(parts.username or ""), password=unquote(parts.password or ""),
                   use_tls=tls, folder=unquote(parts.path.strip("/")) or "INBOX")


class ImapError(Exception):
    """The mailbox could not be read this time."""


async def fetch_unseen(mailbox: ImapMailbox, timeout: float = 30.0, limit: int = 50) -> list[tuple[str, bytes]]:
    """The unseen mails of the folder as (UID, raw bytes), oldest first, at most ``limit``; nothing is
    marked: call ``mark_seen`` once they are stored, so a crash in between reads them again."""
    client = await _login(mailbox, timeout)
    try:
        found = await client.uid_search("UNSEEN")
        _ok(found, "search")
        uids = found.lines[0].decode().split() if found.lines and found.lines[0] else []
        mails = []
        for uid in uids[:limit]:
            response = await client.uid("fetch", uid, "(BODY.PEEK[])")
            _ok(response, "fetch")
            raw = next((bytes(line) for line in response.lines if isinstance(line, bytearray)), None)
            if raw is not None:
                mails.append((uid, raw))
        return mails
    finally:
        await _logout(client)


async def fetch_by_message_id(mailbox: ImapMailbox, message_id: str, timeout: float = 30.0) -> bytes | None:
    """The raw mail with this Message-ID, still in the folder (an attachment is read from there when the
    worker stores it); None when it is gone."""
    client = await _login(mailbox, timeout)
    try:
        quoted = message_id.replace("\\", "").replace('"', "")
        found = await client.uid_search(f'HEADER Message-ID "<{quoted}>"')
        _ok(found, "search")
        uids = found.lines[0].decode().split() if found.lines and found.lines[0] else []
        if not uids:
            return None
        response = await client.uid("fetch", uids[0], "(BODY.PEEK[])")
        _ok(response, "fetch")
        return next((bytes(line) for line in response.lines if isinstance(line, bytearray)), None)
    finally:
        await _logout(client)


async def mark_seen(mailbox: ImapMailbox, uids: list[str], timeout: float = 30.0) -> None:
    """Flag the mails read (stored, or not ours to store)."""
    if not uids:
        return
    client = await _login(mailbox, timeout)
    try:
        _ok(await client.uid("store", ",".join(uids), "+FLAGS", r"(\Seen)"), "store")
    finally:
        await _logout(client)


async def _login(mailbox: ImapMailbox, timeout: float) -> aioimaplib.IMAP4:
    cls = aioimaplib.IMAP4_SSL if mailbox.use_tls else aioimaplib.IMAP4
    try:
        client = cls(host=mailbox.host, port=mailbox.port, timeout=timeout)
        await client.wait_hello_from_server()
        _ok(await client.login(mailbox.username, mailbox.password), "login")
        _ok(await client.select(mailbox.folder), f"select {mailbox.folder}")
    except ImapError:
        raise
    except Exception as exc:  # refused, reset, timed out: try at the next poll
        raise ImapError(f"the IMAP server could not be reached: {exc!r}") from exc
    return client


async def _logout(client: aioimaplib.IMAP4) -> None:
    try:
        await client.logout()
    except Exception:  # the session is over either way
        logger.debug("IMAP logout failed", exc_info=True)


def _ok(response: aioimaplib.Response, what: str) -> None:
    if response.result != "OK":
        detail = b" ".join(bytes(line) for line in response.lines[-1:]).decode(errors="replace")
        raise ImapError(f"IMAP {what} failed: {response.result} {detail}")
