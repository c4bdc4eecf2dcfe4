"""The periodic campaign run: send what is due, through care's channels, at each campaign's rate.

Chats go through the outbox like every bot message (``helpdesk/campaigns/sending.py``); ZNS through
care's ZNS client and the shop's template mapping; email through care's SMTP sender with care's mail
layout and its unsubscribe link. Nothing goes out in the care policy's quiet hours; a backlog (after
quiet hours, a pause, a stopped server) is spread again at the campaign's rate rather than sent at once.
"""

from __future__ import annotations

import logging
import secrets
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from anyio import to_thread
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from connectors.email_smtp import EmailError, build_message, sender_address
from connectors.zalo_zns import USER_REFUSED, ZnsError, template_data
from helpdesk.campaigns import sending, service
from helpdesk.campaigns import timeline as _timeline  # noqa: F401  (campaign messages on the customer's timeline)
from helpdesk.campaigns.models import Campaign, CampaignRecipient, CampaignStatus, RecipientStatus
from helpdesk.campaigns.rules import CampaignChannels
from helpdesk.campaigns.sending import AddressedSend, ChatSend
from helpdesk.care.mail import UNSUBSCRIBE, link_signer, public_base_url
from helpdesk.care.mail_content import CareEmailContent, html_text, plain_text
from helpdesk.care.tasks import CareSender, care_policy
from helpdesk.channels.tasks import drain_chat_soon
from helpdesk.core.aio import send_each_due
from helpdesk.core.clock import Clock
from helpdesk.core.config import Settings
from helpdesk.customers.models import ChannelIdentity
from helpdesk.jobs.scheduler import Scheduler

log = logging.getLogger(__name__)

CAMPAIGN_SEND = "campaign send"
CAMPAIGN_JOB_KEY = "campaigns:due"
#: a campaign whose oldest waiting turn is this much behind is spread again from now
BEHIND_AFTER = timedelta(seconds=60)
#: how long the links of a campaign mail work
LINK_TTL = timedelta(days=90)


@dataclass(eq=False)
class CampaignSender:
    """What sending campaigns needs: care's channels (chats' connectors and outbox, ZNS, email)."""

    engine: Engine
    settings: Settings
    care: CareSender
    clock: Clock

    def channels(self) -> CampaignChannels:
        """The channels this process can send a promotion through, in the shop's care order."""
        care = self.care
        policy = care_policy(self.settings)
        addressed = {"zns": care.zns is not None, "email": care.email is not None}
        order = tuple(name for name in policy.channels if addressed.get(name, name == "chat"))
        approved = frozenset(step for step, template in care.zns.templates.items() if template.approved) \
            if care.zns is not None else frozenset()
        return CampaignChannels(order=order, chats=frozenset(care.connectors), zns_approved=approved,
                                zalo_monthly_quota=self.settings.campaigns.zalo_promotion_monthly_quota)

    def zns_templates(self) -> frozenset[str]:
        """The keys of the ZNS mapping a campaign may name."""
        return frozenset(self.care.zns.mapping) if self.care.zns is not None else frozenset()


async def run_due_campaign_messages(sender: CampaignSender, now: datetime | None = None) -> int:
    """Send the campaign messages whose turn came; how many were handed to a platform or the outbox."""
    now = now or sender.clock.now()
    if care_policy(sender.settings).is_quiet(now):
        return 0
    if sender.care.zns is not None and not sender.care.zns.templates:
        try:  # which templates Zalo approved is known once they were checked
            await sender.care.zns.check_templates()
        except Exception as error:  # noqa: BLE001 - ZNS sends are refused meanwhile, with a reason
            log.warning("could not check the ZNS templates for campaigns: %s", error)
    channels = sender.channels()

    def due() -> list[int]:
        with Session(sender.engine) as session:
            sending.settle_interrupted_sends(session, now)
            _respread_if_behind(session, now)
            session.commit()
            return sending.due_recipient_ids(session, now)

    def prepare(recipient_id: int) -> ChatSend | AddressedSend | None:
        with Session(sender.engine, expire_on_commit=False) as session:
            prepared = sending.prepare_send(session, recipient_id, now=now, channels=channels,
                                            shop_name=sender.settings.shop.name)
            session.commit()
            return prepared

    async def send(prepared: ChatSend | AddressedSend) -> None:
        if isinstance(prepared, ChatSend):
            await _deliver(sender, prepared)
        elif prepared.channel == "zns":
            await _send_zns(sender, prepared, now)
        else:
            await _send_email(sender, prepared, now)

    went = await send_each_due(await to_thread.run_sync(due), prepare, send, "campaign recipient", log)
    await to_thread.run_sync(_finish, sender.engine, now)
    return went


def _finish(engine: Engine, now: datetime) -> None:
    with Session(engine) as session:
        done = service.finish_campaigns_sent(session, now)
        session.commit()
    for campaign_id in done:
        log.info("campaign %s is done", campaign_id)


def _respread_if_behind(session: Session, now: datetime) -> None:
    """Spread again, from now, the campaigns whose waiting turns fell far behind (quiet hours, a stopped
    server): their backlog would otherwise go out in one burst."""
    behind = session.exec(
        select(CampaignRecipient.campaign_id).join(Campaign, Campaign.id == CampaignRecipient.campaign_id)
        .where(Campaign.status == CampaignStatus.sending, CampaignRecipient.status == RecipientStatus.pending,
               col(CampaignRecipient.claimed_at).is_(None))
        .group_by(CampaignRecipient.campaign_id)
        .having(func.min(CampaignRecipient.due_at) < now - BEHIND_AFTER)).all()
    for campaign_id in behind:
        service.respread(session, session.get(Campaign, campaign_id), now)


async def _deliver(sender: CampaignSender, queued: ChatSend) -> None:
    care = sender.care
    if care.events is not None:
        await care.events.publish("message_created", conversation_id=queued.conversation_id,
                                  message_id=queued.message_id, author="bot")
    if care.jobs is not None:
        drain_chat_soon(care.jobs, queued.channel, queued.address)
    else:  # no job runner (a script): send in line
        await care.outbox.drain(queued.channel, queued.address)


async def _record(sender: CampaignSender, recipient_id: int, **outcome: object) -> None:
    def write() -> None:
        with Session(sender.engine) as session:
            sending.record_outcome(session, recipient_id, now=sender.clock.now(), **outcome)
            session.commit()

    await to_thread.run_sync(write)


async def _send_zns(sender: CampaignSender, message: AddressedSend, now: datetime) -> None:
    """One template message to the customer's phone with the campaign's approved template."""
    zns = sender.care.zns
    template = zns.templates.get(message.zns_template or "") if zns is not None else None
    template_id = zns.mapping.get(message.zns_template or "") if zns is not None else None
    if zns is None or template is None or template_id is None:
        await _record(sender, message.recipient_id, sent=False, reason="zns_template_not_approved")
        return
    try:
        sent = await zns.client.send_template(message.address, template_id,
                                              template_data(template, message.values, zns.parameters),
                                              tracking_id=f"campaign-{message.recipient_id}")
    except ZnsError as error:
        await _record(sender, message.recipient_id, sent=False, reason=error.reason, retry=error.retryable,
                      opted_out=error.code == USER_REFUSED)
        return
    await _record(sender, message.recipient_id, sent=True, external_id=sent.msg_id)


async def _send_email(sender: CampaignSender, message: AddressedSend, now: datetime) -> None:
    """The campaign's text in care's mail layout, with the one-click unsubscribe link care mails carry."""
    email = sender.care.email
    if email is None:
        await _record(sender, message.recipient_id, sent=False, reason="email_off")
        return
    composed = await to_thread.run_sync(_compose_email, sender, message, now)
    try:
        answer = await email.sender.send(composed)
    except EmailError as error:
        await _record(sender, message.recipient_id, sent=False, reason=error.reason, retry=error.retryable)
        return
    await _record(sender, message.recipient_id, sent=True, external_id=answer.message_id.strip("<>")[:128])


def _compose_email(sender: CampaignSender, message: AddressedSend, now: datetime) -> EmailMessage:
    settings = sender.settings
    config = settings.email
    with Session(sender.engine) as session:
        recipient = session.get(CampaignRecipient, message.recipient_id)
        identity = session.exec(select(ChannelIdentity).where(
            ChannelIdentity.channel == "email", ChannelIdentity.external_id == message.address)).first()
        if identity is None:  # the unsubscribe link names an identity: the address becomes one of the customer's
            identity = ChannelIdentity(customer_id=recipient.customer_id, channel="email", external_id=message.address)
            session.add(identity)
            session.commit()
        identity_id = identity.id
    token = link_signer(settings).sign(UNSUBSCRIBE, identity_id, now + LINK_TTL)
    unsubscribe_url = f"{public_base_url(settings)}/care/email/unsubscribe/{token}"
    responses = sender.care.bot.responses
    content = CareEmailContent(subject=message.subject, body=message.text, star_links={},
                               unsubscribe_url=unsubscribe_url, shop_name=settings.shop.name,
                               logo_url=config.logo_url, locale=message.locale)
    local_part = f"campaign-{message.recipient_id}.{secrets.token_hex(6)}"
    mailto = f"mailto:{sender_address(config.sender).addr_spec}?subject=unsubscribe%20{token}"
    address = sender_address(config.sender)
    return build_message(
        sender=config.sender if address.display_name else f"{settings.shop.name} <{address.addr_spec}>",
        to=message.address, subject=message.subject, text=plain_text(content, responses),
        html=html_text(content, responses), domain=config.domain, now=now,
        message_id=f"<{local_part}@{config.domain}>", unsubscribe=(mailto, unsubscribe_url))


#: senders with an early run queued and not yet started
_QUEUED: weakref.WeakSet[CampaignSender] = weakref.WeakSet()


def send_campaigns_soon(sender: CampaignSender) -> None:
    """Run the campaign task now in the background rather than at the next tick (a campaign just
    started); calls before the run starts share it."""
    jobs = sender.care.jobs
    if jobs is None or sender in _QUEUED:
        return
    _QUEUED.add(sender)

    async def run() -> None:
        _QUEUED.discard(sender)
        await run_due_campaign_messages(sender)

    jobs.submit(CAMPAIGN_JOB_KEY, run)


def schedule_campaign_sends(scheduler: Scheduler, sender: CampaignSender) -> None:
    """Send the campaign messages due every ``CAREDESK_CAMPAIGNS__CHECK_INTERVAL_S`` (in one replica)."""
    scheduler.add(CAMPAIGN_SEND, lambda: run_due_campaign_messages(sender),
                  every_s=lambda: sender.settings.campaigns.check_interval_s, shared=True)
