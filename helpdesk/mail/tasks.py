"""The periodic read of the mailbox (``CAREDESK_EMAIL__IMAP_URL``): every unseen mail is either a bounce
(handed to care), a one-click unsubscribe sent by mail (``List-Unsubscribe``'s mailto), or a customer's
mail, which is threaded onto the customer's email identity and stored through the same inbound ledger as
every channel (once per Message-ID), then processed like any message. Mails are flagged read only once
stored, so a poll cut short reads them again and the ledger leaves out the duplicates.

One replica reads per tick (the scheduler's shared work), so two replicas never race on the mailbox."""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from sqlalchemy.engine import Engine
from sqlmodel import Session

from connectors.email import EmailConnector
from connectors.email_in import Bounce, ImapError, ImapMailbox, ParsedMail, fetch_unseen, mark_seen, parse_mail
from helpdesk.channels.edge import InboundEdge
from helpdesk.channels.tasks import process_event_soon
from helpdesk.jobs.scheduler import Scheduler
from helpdesk.mail import service

log = logging.getLogger(__name__)

EMAIL_POLL = "email poll"
#: a stored event keeps the raw mail (for replays) up to this size; larger mails keep their text only
RAW_KEPT_BYTES = 1024 * 1024
UNSUBSCRIBE_SUBJECT = "unsubscribe "


class DatabaseEmailThreads:
    """The email connector's threads (``connectors.email.EmailThreads``) on the database, in threads."""

    def __init__(self, engine: Engine):
        self.engine = engine

    async def reply_headers(self, address: str) -> tuple[str, str | None, list[str]]:
        def read() -> tuple[str, str | None, list[str]]:
            with Session(self.engine) as session:
                return service.reply_headers(session, address)

        return await to_thread.run_sync(read)

    async def record_sent(self, address: str, message_id: str, subject: str) -> None:
        def write() -> None:
            with Session(self.engine) as session:
                service.record_sent(session, address, message_id, subject)
                session.commit()

        await to_thread.run_sync(write)


@dataclass(eq=False)
class EmailInbox:
    """Reads the mailbox and hands on what it finds."""

    engine: Engine
    mailbox: ImapMailbox
    connector: EmailConnector
    inbound: InboundEdge
    #: the process's job runner (read at each poll: it is set once the process runs)
    jobs: Callable[[], Any]
    #: care's handling of a bounce and of an unsubscribe token sent by mail
    on_bounce: Callable[[Bounce], Awaitable[str]]
    on_unsubscribe: Callable[[str], Awaitable[Any]]
    timeout_s: float = 30.0

    async def poll(self) -> int:
        """Take in the unseen mails; how many customer mails were stored. ImapError when the mailbox
        cannot be read (the next poll tries again)."""
        mails = await fetch_unseen(self.mailbox, self.timeout_s)
        done: list[str] = []
        stored = 0
        try:
            for uid, raw in mails:
                try:
                    stored += await self._take(raw)
                except ImapError:
                    raise
                except Exception:  # one broken mail must not hold back the others; it stays unseen
                    log.exception("could not take in mail %s", uid)
                    continue
                done.append(uid)
        finally:
            await mark_seen(self.mailbox, done, self.timeout_s)
        return stored

    async def _take(self, raw: bytes) -> int:
        mail = await to_thread.run_sync(parse_mail, raw)
        if mail.bounce is not None:
            outcome = await self.on_bounce(mail.bounce)
            log.info("bounce of %s: %s", mail.bounce.original_message_id, outcome)
            return 0
        if mail.subject.lower().startswith(UNSUBSCRIBE_SUBJECT):
            try:
                await self.on_unsubscribe(mail.subject[len(UNSUBSCRIBE_SUBJECT):].strip())
                return 0
            except ValueError as error:  # not one of our tokens: an ordinary mail after all
                log.info("an unsubscribe mail with a token that does not open: %s", error)
        if mail.automatic or not mail.from_address:
            return 0  # an auto-reply: nothing to answer
        sender_id = await to_thread.run_sync(self._thread, mail)
        encoded = base64.b64encode(raw).decode()
        messages = self.connector.parse({"mail": encoded, "sender_id": sender_id})
        if not messages:
            return 0
        payload = {"message_id": mail.message_id, "sender_id": sender_id,
                   "mail": encoded if len(raw) <= RAW_KEPT_BYTES else None}
        stored = await self.inbound.store(messages, payload)
        jobs = self.jobs()
        for event_id, channel, sender, to_process in stored:
            if to_process and jobs is not None:
                process_event_soon(jobs, event_id, channel, sender)
        return len(stored)

    def _thread(self, mail: ParsedMail) -> str:
        """The address of the thread the mail belongs to; the mail is recorded in it once (a mail read
        again after a poll cut short is recorded already, and the ledger leaves out its duplicate)."""
        with Session(self.engine) as session:
            identity = service.thread_identity(session, mail)
            if not service.already_recorded(session, mail.message_id):
                service.record_mail(session, identity, mail.message_id, "in", mail.subject)
            session.commit()
            return identity.external_id


def build_email_inbox(settings: Any, engine: Engine, connectors: dict[str, Any], inbound: InboundEdge,
                      jobs: Callable[[], Any], on_bounce: Callable[[Bounce], Awaitable[str]],
                      on_unsubscribe: Callable[[str], Awaitable[Any]]) -> EmailInbox | None:
    """The mailbox reader when the email channel is on and ``CAREDESK_EMAIL__IMAP_URL`` is set; the email
    connector is given the database's threads either way (its replies thread onto earlier mails)."""
    connector = connectors.get("email")
    if connector is None:
        return None
    connector.threads = DatabaseEmailThreads(engine)
    if not settings.email.imap_url:
        return None
    return EmailInbox(engine, ImapMailbox.from_url(settings.email.imap_url), connector, inbound, jobs, on_bounce,
                      on_unsubscribe, settings.email.timeout_s)


def schedule_email_poll(scheduler: Scheduler, inbox: EmailInbox | None, interval_s: float) -> None:
    """Read the mailbox every ``CAREDESK_EMAIL__IMAP_POLL_INTERVAL_S`` in one replica."""
    if inbox is None or interval_s <= 0:
        return

    async def poll() -> None:
        try:
            stored = await inbox.poll()
        except ImapError as error:
            log.warning("reading the mailbox failed: %s", error)
            return
        if stored:
            log.info("took in %d mail(s)", stored)

    scheduler.add(EMAIL_POLL, poll, every_s=lambda: interval_s, shared=True)
