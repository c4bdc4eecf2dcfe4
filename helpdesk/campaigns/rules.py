"""Which channel may carry a campaign's promotion to one customer, and why not.

The channels are tried in the shop's care order (``CAREDESK_CARE__CHANNEL_ORDER``: "chat" for the
customer's chats, most recently active first, then the addressed channels "zns" and "email"); the first
one whose platform rules allow a promotion carries it. A customer no channel allows is skipped with the
reason code of the first channel they are present on (a chat they have, a phone, an address), or
``no_channel`` when they are present on none.

The platforms' rules:

- Messenger: a promotion may go only inside 24 hours of the customer's last message. Later, Meta
  requires a message tag, and no tag may carry promotional content (``messenger_outside_24h``).
- Zalo OA: promotions go through the promotion message type ("tin truyền thông",
  ``/v3.0/oa/message/promotion``) only to the OA's followers and users who interacted with it (those
  CareDesk has an identity for, still reachable), and each follower receives at most
  ``CAREDESK_CAMPAIGNS__ZALO_PROMOTION_MONTHLY_QUOTA`` a month, counted from the 1st
  (``zalo_promotion_quota``).
- ZNS: only with a template of the ZNS mapping that Zalo approved, named by the campaign
  (``zns_no_template``, ``zns_template_not_approved``).
- Email: only to a stored address, with an unsubscribe link (care's mail content carries one).
- Telegram, web chat and other chats: when the customer has an identity there (and, for a channel with a
  window of its own, inside it).

An opt-out of care (``Customer.care_opted_out``, set by "dừng" in a chat, an email unsubscribe, a ZNS
refusal) stops every channel: ``opted_out``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, func, select

from connectors import CONNECTORS
from connectors.zalo_zns import zns_phone
from helpdesk.campaigns.models import CampaignRecipient, RecipientStatus
from helpdesk.care.channels import ADDRESSES
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.shop.models import Order
from helpdesk.shop.schemas import normalise_email

#: the reason codes stored on skipped recipients
OPTED_OUT = "opted_out"
MESSENGER_OUTSIDE_24H = "messenger_outside_24h"
ZALO_PROMOTION_QUOTA = "zalo_promotion_quota"
ZALO_NOT_FOLLOWER = "zalo_not_follower"
ZNS_NO_TEMPLATE = "zns_no_template"
ZNS_TEMPLATE_NOT_APPROVED = "zns_template_not_approved"
ZNS_OFF = "zns_off"
ZNS_UNREACHABLE = "zns_unreachable"
EMAIL_OFF = "email_off"
EMAIL_UNREACHABLE = "email_unreachable"
NO_CHANNEL = "no_channel"
CUSTOMER_GONE = "customer_not_found"
CAMPAIGN_CANCELLED = "campaign_cancelled"

MESSENGER = "facebook"
ZALO_OA = "zalo_oa"
ZNS = "zns"
EMAIL = "email"
CHAT = "chat"
#: Messenger's standard messaging window: after it a message tag is needed, and promotions may use none
MESSENGER_WINDOW = timedelta(hours=24)
#: Zalo counts a follower's promotions per calendar month in Vietnam
VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
#: recipient states in which a message went out (and counts against a platform's quota)
WENT_OUT = (RecipientStatus.sent, RecipientStatus.delivered, RecipientStatus.read)


@dataclass(frozen=True)
class CampaignChannels:
    """What the running process can send a promotion through."""

    #: the care channel order, those configured: "chat", "zns", "email"
    order: tuple[str, ...]
    #: chat channels whose connector is on
    chats: frozenset[str]
    #: keys of the ZNS mapping whose template Zalo reported approved
    zns_approved: frozenset[str] = frozenset()
    zalo_monthly_quota: int = 1
    timezone: tzinfo = VIETNAM


@dataclass(frozen=True)
class Route:
    """The channel that may carry the promotion, and where to."""

    channel: str
    #: the chat's recipient id, the ZNS phone (84…) or the email address
    address: str
    identity_id: int | None = None


@dataclass(frozen=True)
class Refusal:
    """Why no channel may carry it (a reason code)."""

    reason: str


def route_for(session: Session, customer: Customer, zns_template: str | None, channels: CampaignChannels,
              now: datetime) -> Route | Refusal:
    """The first channel of the shop's order allowed to carry a promotion to ``customer`` (a primary
    customer), or the reason none is."""
    if customer.care_opted_out:
        return Refusal(OPTED_OUT)
    first_refusal: str | None = None
    # the addressed channels that are off come last, so that a customer reachable only there is told so
    order = (*channels.order, *(name for name in (ZNS, EMAIL) if name not in channels.order))
    for name in order:
        candidates = (_chat_candidates(session, customer, channels, now) if name == CHAT
                      else [_zns(session, customer, zns_template, channels)] if name == ZNS
                      else [_email(session, customer, channels)] if name == EMAIL else [])
        for candidate in candidates:
            if isinstance(candidate, Route):
                return candidate
            if candidate is not None and first_refusal is None:
                first_refusal = candidate.reason
    return Refusal(first_refusal or NO_CHANNEL)


def chat_identities(session: Session, customer: Customer) -> list[ChannelIdentity]:
    """The customer's chats, the one they wrote on last first (never written: last)."""
    found = session.exec(select(ChannelIdentity).where(
        ChannelIdentity.customer_id == customer.id,
        col(ChannelIdentity.channel).not_in(sorted({ZNS, EMAIL, *ADDRESSES})))).all()
    never = datetime.min.replace(tzinfo=VIETNAM)
    return sorted(found, key=lambda identity: (-(identity.last_inbound_at or never).timestamp(), identity.id))


def _chat_candidates(session: Session, customer: Customer, channels: CampaignChannels,
                     now: datetime) -> list[Route | Refusal]:
    return [_chat(session, identity, channels, now) for identity in chat_identities(session, customer)]


def _chat(session: Session, identity: ChannelIdentity, channels: CampaignChannels, now: datetime) -> Route | Refusal:
    """Whether a promotion may go to this chat."""
    channel = identity.channel
    if channel not in channels.chats:
        return Refusal(f"{channel}_off")
    if channel == ZALO_OA:
        if not identity.reachable:  # blocked the OA, unfollowed, gone from Zalo
            return Refusal(ZALO_NOT_FOLLOWER)
        if zalo_promotions_this_month(session, identity.customer_id, now, channels.timezone) \
                >= channels.zalo_monthly_quota:
            return Refusal(ZALO_PROMOTION_QUOTA)
        return Route(channel, identity.external_id, identity.id)
    if not identity.reachable:
        return Refusal(f"{channel}_unreachable")
    if channel == MESSENGER:
        last = identity.last_inbound_at
        if last is None or now - last > MESSENGER_WINDOW:
            return Refusal(MESSENGER_OUTSIDE_24H)
        return Route(channel, identity.external_id, identity.id)
    connector = CONNECTORS.get(channel)
    window = connector.proactive_window if connector is not None else None
    if window is not None:
        last = identity.last_inbound_at
        if last is None or now - last > window.length:
            return Refusal(f"{channel}_outside_window")
    return Route(channel, identity.external_id, identity.id)


def zalo_promotions_this_month(session: Session, customer_id: int, now: datetime, zone: tzinfo = VIETNAM) -> int:
    """How many promotions went to the customer on Zalo OA since the 1st of this month (Vietnam time)."""
    local = now.astimezone(zone)
    month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return session.exec(select(func.count()).select_from(CampaignRecipient).where(
        CampaignRecipient.customer_id == customer_id, CampaignRecipient.channel == ZALO_OA,
        col(CampaignRecipient.status).in_(WENT_OUT), CampaignRecipient.sent_at >= month_start)).one()


def _latest_order(session: Session, customer: Customer) -> Order | None:
    return session.exec(select(Order).where(Order.customer_id == customer.id)
                        .order_by(col(Order.created_at).desc(), col(Order.id).desc())).first()


def _addressed_identity(session: Session, customer: Customer, channel: str) -> ChannelIdentity | None:
    return session.exec(select(ChannelIdentity).where(
        ChannelIdentity.customer_id == customer.id, ChannelIdentity.channel == channel)
        .order_by(col(ChannelIdentity.id).desc())).first()


def customer_phone(session: Session, customer: Customer) -> str | None:
    """The customer's phone as ZNS takes it (84…): their own, else their latest order's."""
    identity = _addressed_identity(session, customer, ZNS)
    order = _latest_order(session, customer)
    for candidate in (customer.phone, order.phone if order else None, identity.external_id if identity else None):
        try:
            return zns_phone(candidate or "")
        except ValueError:
            continue
    return None


def customer_email(session: Session, customer: Customer) -> str | None:
    """The customer's email address: their own, else their latest order's, else one care wrote to."""
    identity = _addressed_identity(session, customer, EMAIL)
    order = _latest_order(session, customer)
    for candidate in (customer.email, order.email if order else None, identity.external_id if identity else None):
        try:
            return normalise_email(candidate or "").lower()
        except ValueError:
            continue
    return None


def _zns(session: Session, customer: Customer, template: str | None, channels: CampaignChannels) -> Refusal | Route | None:
    """ZNS to the customer's phone with the campaign's approved template; None without a phone."""
    phone = customer_phone(session, customer)
    if phone is None:
        return None
    if ZNS not in channels.order:
        return Refusal(ZNS_OFF)
    if template is None:
        return Refusal(ZNS_NO_TEMPLATE)
    if template not in channels.zns_approved:
        return Refusal(ZNS_TEMPLATE_NOT_APPROVED)
    known = session.exec(select(ChannelIdentity).where(ChannelIdentity.channel == ZNS,
                                                       ChannelIdentity.external_id == phone)).first()
    if known is not None and not known.reachable:
        return Refusal(ZNS_UNREACHABLE)
    return Route(ZNS, phone, known.id if known is not None else None)


def _email(session: Session, customer: Customer, channels: CampaignChannels) -> Refusal | Route | None:
    """Email to the customer's stored address; None without one."""
    address = customer_email(session, customer)
    if address is None:
        return None
    if EMAIL not in channels.order:
        return Refusal(EMAIL_OFF)
    known = session.exec(select(ChannelIdentity).where(ChannelIdentity.channel == EMAIL,
                                                       ChannelIdentity.external_id == address)).first()
    if known is not None and not known.reachable:  # it bounced for good
        return Refusal(EMAIL_UNREACHABLE)
    return Route(EMAIL, address, known.id if known is not None else None)
