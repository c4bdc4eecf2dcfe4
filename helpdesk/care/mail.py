"""The email care channel: a care step reaches the order's email address over SMTP (see
``connectors/email_smtp.py``) when the channels before it in ``CAREDESK_CARE__CHANNEL_ORDER`` cannot.

A care mail carries signed, expiring links: five one-click star links on the rating request (recorded as
the order's rating, ``helpdesk/care/mail_api.py``) and an unsubscribe link on every mail (``List-Unsubscribe``
with the one-click POST of RFC 8058), which opts the customer out of all care on every channel.

Sending: the claim (``helpdesk/care/service.py``) leaves the row ``sending``; the mail is composed in a
worker thread, handed to the SMTP server on the event loop, and the server's answer recorded: sent (with
the Message-ID, for replies and bounces), postponed on a passing failure (4xx, connection), or skipped on
a final one (5xx) with the reason, falling back to the next channel if there is one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

from anyio import to_thread
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.responses import Responses
from connectors.email_in import Bounce
from connectors.email_smtp import EmailConfig, EmailError, EmailSent, SmtpSender, build_message, sender_address
from helpdesk.care.channels import (fall_back_to_next_channel, note_question_asked, record_send,
                                     register_address_channel)
from helpdesk.care.composer import CareComposer
from helpdesk.care.feedback import record_care_rating
from helpdesk.care.mail_bounce import record_bounce
from helpdesk.care.mail_nps import NpsAnswer, record_email_nps, record_email_nps_comment
from helpdesk.care.mail_content import care_email_content, html_text, plain_text
from helpdesk.care.models import CareKind, CareMessage, CareStatus
from helpdesk.care.service import MAX_LATENESS, AddressedCareMessage, CarePolicy, set_care_opt_out
from helpdesk.core.clock import Clock
from helpdesk.core.events import EventBus
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.customers.service import primary_customer
from helpdesk.mail.service import record_mail
from helpdesk.shop.models import Order
from helpdesk.shop.schemas import normalise_email
from helpdesk.shop.service import identity_for_delivery

log = logging.getLogger(__name__)

EMAIL = "email"
#: a mail the server could not take this time is tried again this much later
RETRY_AFTER = timedelta(minutes=10)
#: the links' purposes, part of what is signed so that one kind of link cannot be used as another
RATE, UNSUBSCRIBE, NPS = "rate", "unsubscribe", "nps"


def email_identity_for_order(session: Session, order: Order) -> ChannelIdentity | None:
    """The order's email address as an email identity of the order's customer; None without a valid one."""
    try:
        address = normalise_email(order.email or "").lower()
    except ValueError:
        return None
    return identity_for_delivery(session, order, EMAIL, address)


def email_configured(settings: Any) -> bool:
    """Whether care mail can go out: an SMTP server and a sender."""
    email = getattr(settings, "email", None)
    return email is not None and email.enabled


register_address_channel(EMAIL, email_identity_for_order, email_configured)


# -- signed links ------------------------------------------------------------------------------------


class LinkInvalid(ValueError):
    """A link that is forged, damaged or expired; the reason says which."""


@dataclass(frozen=True)
class LinkSigner:
    """Signs ``<purpose>:<id>`` with an expiry (HMAC-SHA256 with the server's secret key; keys being
    rotated out still open links they signed)."""

    keys: tuple[str, ...]

    def sign(self, purpose: str, ident: int, expires: datetime) -> str:
        stamp = int(expires.timestamp())
        return f"{ident}.{stamp}.{self._mac(self.keys[0], purpose, ident, stamp)}"

    def open(self, purpose: str, token: str, now: datetime) -> int:
        """The id the token was signed for; LinkInvalid if it is not one of ours or has expired."""
        ident, _, rest = token.partition(".")
        stamp, _, mac = rest.partition(".")
        if not (ident.isdigit() and stamp.isdigit() and mac):
            raise LinkInvalid("the link is damaged")
        if not any(hmac.compare_digest(mac, self._mac(key, purpose, int(ident), int(stamp))) for key in self.keys):
            raise LinkInvalid("the link is not valid")
        if int(stamp) < now.timestamp():
            raise LinkInvalid("the link has expired")
        return int(ident)

    @staticmethod
    def _mac(key: str, purpose: str, ident: int, stamp: int) -> str:
        digest = hmac.new(key.encode(), f"care-email:{purpose}:{ident}:{stamp}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()


def link_signer(settings: Any) -> LinkSigner:
    """The signer of these settings' secret keys."""
    keys = [settings.secret_key.get_secret_value()]
    keys += [key.get_secret_value() for key in settings.secret_key_previous]
    return LinkSigner(tuple(keys))


def public_base_url(settings: Any) -> str:
    """Where customers reach this server, for links in mails."""
    base = settings.email.public_base_url or settings.storage.public_base_url
    return (base or f"http://{settings.host}:{settings.port}").rstrip("/")


# -- sending -----------------------------------------------------------------------------------------


@dataclass(eq=False)
class EmailCare:
    """Sends care steps by email and takes in the star and unsubscribe links' clicks."""

    engine: Engine
    settings: Any
    sender: SmtpSender
    policy: CarePolicy
    clock: Clock
    #: the bot's templates (read at each send: the training loop may swap them)
    responses: Any
    composer: Any
    events: EventBus | None = None

    @property
    def config(self) -> EmailConfig:
        return self.settings.email

    async def send(self, message: AddressedCareMessage) -> None:
        """Compose, send and record one claimed care message."""
        now = self.clock.now()
        composed = await to_thread.run_sync(self._compose, message.care_id, now)
        outcome: EmailSent | EmailError
        if isinstance(composed, EmailError):
            outcome = composed
        else:
            try:
                outcome = await self.sender.send(composed)
            except EmailError as error:
                outcome = error
        await record_send(self.engine, message.care_id, outcome, record_email_outcome, now=self.clock.now(),
                          policy=self.policy, channel="email")

    def _compose(self, care_id: int, now: datetime) -> EmailMessage | EmailError:
        with Session(self.engine) as session:
            care = session.get(CareMessage, care_id)
            if care is None:
                return EmailError("the care message is gone", retryable=False)
            order = session.get(Order, care.order_id)
            identity = session.get(ChannelIdentity, care.identity_id)
            customer = primary_customer(session, session.get(Customer, identity.customer_id))
            return compose_care_email(session, care, order, identity, customer, self.composer(), self.responses(),
                                      self.settings, now)

    async def rate(self, token: str, stars: int) -> tuple[str, str]:
        """Record a star link's click; (what it was: "delivery", "unchanged", "ignored"; the order's code).
        LinkInvalid for a link that is not ours or has expired."""
        now = self.clock.now()
        care_id = link_signer(self.settings).open(RATE, token, now)

        def record() -> tuple[str, str, int | None, str | None]:
            with Session(self.engine) as session:
                care = session.get(CareMessage, care_id)
                if care is None:
                    raise LinkInvalid("the link is not valid")
                order = session.get(Order, care.order_id)
                kind, conversation_id, priority = record_care_rating(session, care, stars, None, now, "email")
                session.commit()
                return kind, order.code, conversation_id, priority

        kind, code, conversation_id, priority = await to_thread.run_sync(record)
        if conversation_id is not None and self.events is not None:
            await self.events.publish("conversation_escalated", conversation_id=conversation_id,
                                      reason="low_rating", priority=priority)
        return kind, code

    async def answer_nps(self, token: str, score: int) -> NpsAnswer:
        """Record an NPS link's click (0-10) through the NPS service the chat survey uses; a later click
        changes the answer. A detractor's first answer opens a follow-up for an agent. LinkInvalid for a
        link that is not ours or has expired."""
        now = self.clock.now()
        care_id = link_signer(self.settings).open(NPS, token, now)
        answer = await to_thread.run_sync(self._record_answer, record_email_nps, care_id, score, now)
        if answer.escalated is not None and self.events is not None:
            await self.events.publish("conversation_escalated", conversation_id=answer.escalated,
                                      reason="nps_detractor", priority="normal")
        return answer

    def _record_answer(self, record: Callable[..., NpsAnswer | None], care_id: int, value: Any,
                       now: datetime) -> NpsAnswer:
        """``record(session, care_id, value, now)`` committed; LinkInvalid when it finds no answer to record."""
        with Session(self.engine) as session:
            answer = record(session, care_id, value, now)
            if answer is None:
                raise LinkInvalid("the link is not valid")
            session.commit()
            return answer

    async def nps_comment(self, token: str, comment: str) -> NpsAnswer:
        """Store the "why" typed on the page an NPS link opened, with that answer (LinkInvalid for a link
        that is not ours, has expired, or was not answered first)."""
        now = self.clock.now()
        care_id = link_signer(self.settings).open(NPS, token, now)
        return await to_thread.run_sync(self._record_answer, record_email_nps_comment, care_id, comment, now)

    async def unsubscribe(self, token: str) -> int:
        """Opt the link's customer out of all care (every channel); the number of the customer."""
        now = self.clock.now()
        identity_id = link_signer(self.settings).open(UNSUBSCRIBE, token, now)

        def opt_out() -> int:
            with Session(self.engine) as session:
                identity = session.get(ChannelIdentity, identity_id)
                if identity is None:
                    raise LinkInvalid("the link is not valid")
                customer = set_care_opt_out(session, session.get(Customer, identity.customer_id), True, now)
                session.commit()
                return customer.id

        return await to_thread.run_sync(opt_out)


    async def take_bounce(self, bounce: Bounce) -> str:
        """Record a bounce read from the mailbox (``helpdesk/care/mail_bounce.py``); what it was."""
        now = self.clock.now()

        def record() -> str:
            with Session(self.engine) as session:
                outcome = record_bounce(session, bounce, policy=self.policy, now=now)
                session.commit()
                return outcome

        return await to_thread.run_sync(record)


def compose_care_email(
    session: Session, care: CareMessage, order: Order, identity: ChannelIdentity, customer: Customer,
    composer: CareComposer, responses: Responses, settings: Any, now: datetime,
) -> EmailMessage:
    """The care mail of one step to the identity's address, its Message-ID stored on the row (the part
    before @ as ``external_id``: replies and bounces name it)."""
    config: EmailConfig = settings.email
    locale = customer.locale or responses.default_locale
    values = composer.template_values(session, order, customer, identity.external_id)
    signer, base = link_signer(settings), public_base_url(settings)
    expires = now + timedelta(days=config.link_ttl_days)
    star_links, nps_links = {}, {}
    if care.kind == CareKind.nps:  # the same question chats get, answered by one of eleven signed links
        body = composer.nps_text(session, order, customer)
        token = signer.sign(NPS, care.id, expires)
        nps_links = {score: f"{base}/care/email/nps/{token}?score={score}" for score in range(11)}
    else:
        body = composer.compose(session, care.kind, order, customer, identity.external_id, buttons=True).text
    if care.kind == CareKind.rating_request:
        token = signer.sign(RATE, care.id, expires)
        star_links = {stars: f"{base}/care/email/rate/{token}?stars={stars}" for stars in range(1, 6)}
    unsubscribe_token = signer.sign(UNSUBSCRIBE, identity.id, expires)
    unsubscribe_url = f"{base}/care/email/unsubscribe/{unsubscribe_token}"
    content = care_email_content(
        responses, kind=care.kind, locale=locale, body=body, shop=settings.shop.name,
        order_code=order.code, product=values["product_name"], star_links=star_links,
        unsubscribe_url=unsubscribe_url, logo_url=config.logo_url, nps_links=nps_links)
    local_part = f"care-{care.id}.{secrets.token_hex(6)}"
    care.external_id = local_part
    session.add(care)
    session.commit()  # the Message-ID is known before the mail leaves: a bounce can always be matched
    mailto = f"mailto:{sender_address(config.sender).addr_spec}?subject={quote('unsubscribe ' + unsubscribe_token)}"
    return build_message(
        sender=_sender_with_shop_name(config.sender, settings.shop.name), to=identity.external_id,
        subject=content.subject, text=plain_text(content, responses), html=html_text(content, responses),
        domain=config.domain, now=now, message_id=f"<{local_part}@{config.domain}>",
        unsubscribe=(mailto, unsubscribe_url))


def _sender_with_shop_name(sender: str, shop_name: str) -> str:
    address = sender_address(sender)
    return sender if address.display_name else f"{shop_name} <{address.addr_spec}>"


# -- recording, in the caller's transaction ----------------------------------------------------------


def record_email_outcome(
    session: Session, care_id: int, outcome: EmailSent | EmailError, *, now: datetime, policy: CarePolicy,
) -> CareMessage | None:
    """Record what the SMTP server answered: sent, postponed (a passing failure) or refused (falling back
    to the next channel)."""
    care = session.get(CareMessage, care_id)
    if care is None or care.status != CareStatus.sending:
        return None
    identity = session.get(ChannelIdentity, care.identity_id)
    order = session.get(Order, care.order_id)
    care.updated_at = now
    if isinstance(outcome, EmailSent):
        care.status, care.reason, care.sent_at = CareStatus.sent, None, now
        record_mail(session, identity, outcome.message_id.strip("<>"), "out", outcome.subject, care_id=care.id)
        note_question_asked(session, care, identity, order, now)
    elif outcome.retryable and now - care.planned_at <= MAX_LATENESS:
        care.status, care.reason = CareStatus.scheduled, f"postponed: {outcome.reason}"[:500]
        care.due_at = policy.first_allowed(now + RETRY_AFTER)
    else:
        reason = outcome.reason if not outcome.retryable else f"gave up: {outcome.reason}"
        if outcome.code is not None and outcome.code >= 500 and not outcome.configuration:
            identity.reachable, identity.unreachable_reason = False, outcome.reason[:500]
            session.add(identity)
        reason += fall_back_to_next_channel(session, care, order, identity, policy.channels, now,
                                            policy.first_allowed(now))
        care.status, care.reason = CareStatus.skipped, reason[:500]
    session.add(care)
    session.flush()
    return care


def build_email_care(settings: Any, engine: Engine, clock: Clock, bot: Any, events: EventBus | None,
                     composer: Any) -> EmailCare | None:
    """The email care channel when an SMTP server and a sender are set (``CAREDESK_EMAIL__*``); ``composer``
    makes the care composer of the bot's current templates."""
    if not settings.email.enabled:
        return None
    if not (settings.email.public_base_url or settings.storage.public_base_url):
        log.warning("CAREDESK_EMAIL__PUBLIC_BASE_URL is not set: the star and unsubscribe links of care mails "
                    "point at %s", public_base_url(settings))
    return EmailCare(engine, settings, SmtpSender(settings.email), CarePolicy.from_settings(settings), clock,
                     lambda: bot.responses, composer, events)
