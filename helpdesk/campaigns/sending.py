"""Sending one recipient's message, exactly once, in the caller's transaction.

A recipient whose turn came is claimed with a conditional UPDATE (as care claims its messages:
``helpdesk/care/service.py``), its channel chosen by ``rules.route_for`` at that moment (the 24-hour
window and the quota are as they are now, not as they were at start), and:

- a chat's message is stored and queued in the outbox in the same transaction as the claim, so a crash
  leaves the recipient waiting and nothing queued, or both; the outbox sends it once and records the
  platform's answer on the message (Zalo OA's goes as a promotion message, ``metadata.promotion``);
- a ZNS or email message is committed as claimed and sent outside any transaction; its answer is then
  recorded. A claim found still open long after (the process stopped in between) is closed as failed,
  never sent again: ZNS has no idempotency key and a mail cannot be taken back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, update
from sqlmodel import Session, col, select

from connectors.base import OutboundText
from connectors.email_in import Bounce
from connectors.zalo_zns import ZnsReceipt
from helpdesk.campaigns.models import Campaign, CampaignRecipient, CampaignStatus, RecipientStatus
from helpdesk.campaigns.rules import EMAIL, OPTED_OUT, ZNS, CampaignChannels, Refusal, route_for
from helpdesk.care.mail_bounce import BOUNCE_READERS
from helpdesk.care.zns import RECEIPT_READERS
from helpdesk.conversations import service as conversations
from helpdesk.care.service import HUMAN_OWNED_RETRY
from helpdesk.conversations.models import HUMAN_STATES, DeliveryStatus, MessageAuthor
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.customers.service import primary_customer
from helpdesk.outbox.queue import queue_outbound
from helpdesk.shop.models import Order

#: an addressed send still claimed this long after was cut off (its HTTP call times out long before)
INTERRUPTED_AFTER = timedelta(minutes=15)
#: a send ZNS or the mail server could not make this time is tried again this much later
RETRY_AFTER = timedelta(minutes=10)
INTERRUPTED = "outcome unknown: the process stopped while sending it; not sent again, to avoid a duplicate"


@dataclass(frozen=True)
class ChatSend:
    """A message queued in the outbox; the caller starts the chat's drain."""

    recipient_id: int
    channel: str
    address: str
    conversation_id: int
    message_id: int


@dataclass(frozen=True)
class AddressedSend:
    """A message for ZNS or email, claimed and committed: the caller sends it and records the answer."""

    recipient_id: int
    campaign_id: int
    channel: str
    address: str
    text: str
    subject: str
    zns_template: str | None
    #: what a ZNS template can be filled with
    values: dict[str, str]
    locale: str


def personalise(message: str, customer: Customer) -> str:
    """The campaign's text for one customer: ``{name}`` becomes their name (or "bạn", "you")."""
    return message.replace("{name}", (customer.name or "").strip() or "bạn")


def due_recipient_ids(session: Session, now: datetime, limit: int = 200) -> list[int]:
    """Recipients of sending campaigns whose turn came, oldest turn first."""
    sending = exists().where(Campaign.id == CampaignRecipient.campaign_id, Campaign.status == CampaignStatus.sending)
    return list(session.exec(select(CampaignRecipient.id).where(
        CampaignRecipient.status == RecipientStatus.pending, col(CampaignRecipient.claimed_at).is_(None),
        CampaignRecipient.due_at <= now, sending,
    ).order_by(col(CampaignRecipient.due_at), col(CampaignRecipient.id)).limit(limit)).all())


def claim_recipient(session: Session, recipient_id: int, now: datetime) -> CampaignRecipient | None:
    """Take the recipient for this transaction, or None if another worker has it, its campaign stopped
    sending, or its turn has not come (the UPDATE is the transaction's first statement: exactly one
    transaction sees a row count of 1)."""
    sending = exists().where(Campaign.id == CampaignRecipient.campaign_id, Campaign.status == CampaignStatus.sending)
    result = session.exec(update(CampaignRecipient).where(
        CampaignRecipient.id == recipient_id, CampaignRecipient.status == RecipientStatus.pending,
        col(CampaignRecipient.claimed_at).is_(None), CampaignRecipient.due_at <= now, sending,
    ).values(claimed_at=now).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return None
    return session.get(CampaignRecipient, recipient_id, populate_existing=True)


def prepare_send(session: Session, recipient_id: int, *, now: datetime, channels: CampaignChannels,
                 shop_name: str = "") -> ChatSend | AddressedSend | None:
    """Claim one recipient and queue its chat message, or skip it with the rule's reason, or leave it
    claimed for an addressed channel (returned for the caller to send)."""
    recipient = claim_recipient(session, recipient_id, now)
    if recipient is None:
        return None
    campaign = session.get(Campaign, recipient.campaign_id)
    customer = session.get(Customer, recipient.customer_id)
    customer = primary_customer(session, customer) if customer is not None else None
    if customer is None:
        _close(session, recipient, RecipientStatus.skipped, "customer_not_found")
        return None
    route = route_for(session, customer, campaign.zns_template, channels, now)
    if isinstance(route, Refusal):
        _close(session, recipient, RecipientStatus.skipped, route.reason)
        return None
    text = personalise(campaign.message, customer)
    recipient.channel = route.channel
    if route.channel in (ZNS, EMAIL):
        session.add(recipient)  # stays claimed until the answer is recorded
        session.flush()
        return AddressedSend(recipient.id, campaign.id, route.channel, route.address, text, campaign.name,
                             campaign.zns_template, _template_values(session, customer, route.address, shop_name),
                             customer.locale or "vi")
    identity = session.get(ChannelIdentity, route.identity_id)
    conversation = conversations.open_conversation(session, identity)
    if conversation.state in HUMAN_STATES:  # an agent talks with the customer: no voucher in between
        recipient.claimed_at, recipient.due_at = None, now + HUMAN_OWNED_RETRY
        recipient.reason = "postponed: an agent is talking with the customer"
        session.add(recipient)
        session.flush()
        return None
    message = conversations.add_message(session, conversation, direction="out", author=MessageAuthor.bot, text=text,
                                        delivery_status=DeliveryStatus.pending)
    outbound = OutboundText(recipient_id=route.address, text=text,
                            metadata={"promotion": True, "campaign_id": campaign.id, "title": campaign.name})
    queue_outbound(session, conversation, message, outbound.model_dump(mode="json"), route.address)
    recipient.status, recipient.sent_at, recipient.message_id = RecipientStatus.sent, now, message.id
    recipient.claimed_at, recipient.reason = None, None
    session.add(recipient)
    session.flush()
    return ChatSend(recipient.id, route.channel, route.address, conversation.id, message.id)


def _close(session: Session, recipient: CampaignRecipient, status: str, reason: str | None) -> None:
    recipient.status, recipient.reason, recipient.claimed_at = status, (reason or "")[:500] or None, None
    session.add(recipient)
    session.flush()


def _template_values(session: Session, customer: Customer, phone: str, shop_name: str) -> dict[str, str]:
    """What a ZNS template of the campaign can say (the names care's templates use)."""
    order = session.exec(select(Order).where(Order.customer_id == customer.id)
                         .order_by(col(Order.created_at).desc())).first()
    product = ""
    if order is not None and order.items:
        product = str(order.items[0].get("name") or "")
    return {"customer_name": customer.name or (order.customer_name if order else "") or "",
            "shop_name": shop_name, "phone": phone, "order_code": order.code if order else "",
            "product_name": product}


def record_outcome(session: Session, recipient_id: int, *, sent: bool, external_id: str | None = None,
                   reason: str | None = None, retry: bool = False, opted_out: bool = False, now: datetime) -> None:
    """Record what ZNS or the mail server answered for a claimed recipient: sent (with the platform's
    id), to be tried again later (``retry``), refused (failed, with its words), or refused because the
    customer said no (``opted_out``: care stops on every channel)."""
    recipient = session.get(CampaignRecipient, recipient_id)
    if recipient is None or recipient.status != RecipientStatus.pending or recipient.claimed_at is None:
        return
    if sent:
        recipient.status, recipient.sent_at, recipient.external_id = RecipientStatus.sent, now, external_id
        recipient.reason, recipient.claimed_at = None, None
    elif retry:
        recipient.claimed_at, recipient.due_at = None, now + RETRY_AFTER
        recipient.reason = f"postponed: {reason}"[:500] if reason else None
    elif opted_out:
        from helpdesk.care.service import set_care_opt_out

        set_care_opt_out(session, session.get(Customer, recipient.customer_id), True, now)
        recipient.status, recipient.reason, recipient.claimed_at = RecipientStatus.skipped, OPTED_OUT, None
    else:
        recipient.status, recipient.reason, recipient.claimed_at = RecipientStatus.failed, (reason or "")[:500], None
    session.add(recipient)
    session.flush()


def settle_interrupted_sends(session: Session, now: datetime) -> int:
    """Close the addressed sends left claimed by a process that stopped between the claim and the answer;
    how many. They may have gone: they are not sent again."""
    result = session.exec(update(CampaignRecipient).where(
        CampaignRecipient.status == RecipientStatus.pending, col(CampaignRecipient.claimed_at).is_not(None),
        CampaignRecipient.claimed_at < now - INTERRUPTED_AFTER,
    ).values(status=RecipientStatus.failed, reason=INTERRUPTED, claimed_at=None)
        .execution_options(synchronize_session=False))
    return result.rowcount or 0


def record_zns_receipt(session: Session, msg_id: str, delivered_at: datetime | None) -> bool:
    """Mark delivered the recipient whose ZNS message Zalo delivered; whether it is a campaign's."""
    if not msg_id:
        return False
    recipient = session.exec(select(CampaignRecipient).where(
        CampaignRecipient.channel == ZNS, CampaignRecipient.external_id == msg_id)).first()
    if recipient is None:
        return False
    if recipient.status == RecipientStatus.sent:
        recipient.status = RecipientStatus.delivered
        session.add(recipient)
    return True


def _take_zns_receipt(session: Session, receipt: ZnsReceipt) -> bool:
    return record_zns_receipt(session, receipt.msg_id, receipt.delivered_at)


# the ZNS webhook (care's) hands over the receipts of messages care did not send
if _take_zns_receipt not in RECEIPT_READERS:
    RECEIPT_READERS.append(_take_zns_receipt)


def record_bounce(session: Session, bounce: Bounce, reason: str) -> bool:
    """Mark failed the campaign mail a permanent bounce names; whether it was one."""
    message_id = (bounce.original_message_id or "").strip("<>")
    if not message_id:
        return False
    recipient = session.exec(select(CampaignRecipient).where(
        CampaignRecipient.channel == EMAIL, CampaignRecipient.external_id == message_id[:128])).first()
    if recipient is None or recipient.status not in (RecipientStatus.sent, RecipientStatus.delivered):
        return False
    recipient.status, recipient.reason = RecipientStatus.failed, reason[:500]
    session.add(recipient)
    return True


def _take_bounce(session: Session, bounce: Bounce, reason: str) -> None:
    record_bounce(session, bounce, reason)


# care's mailbox reader hands over every permanent bounce it reads
if _take_bounce not in BOUNCE_READERS:
    BOUNCE_READERS.append(_take_bounce)
