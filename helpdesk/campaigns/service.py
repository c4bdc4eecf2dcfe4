"""Campaigns: creating one for a list of customers, starting, pausing, resuming and cancelling it, and
reading where it stands and what followed. Sending one recipient's message is ``sending.py``'s, the
periodic run ``tasks.py``'s. Nothing here talks HTTP or commits; callers own the transaction.

The audience is a plain list of customer ids (a segment gives one too). Starting turns it into one
``campaign_recipient`` row per customer (merged customers count once), each due at its turn: the
campaign's rate spreads the rows evenly, one every 60/rate seconds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, update
from sqlmodel import Session, col, select

from helpdesk.campaigns.models import Campaign, CampaignRecipient, CampaignStatus, RecipientStatus
from helpdesk.campaigns.rules import CAMPAIGN_CANCELLED, WENT_OUT
from helpdesk.conversations.models import Conversation, DeliveryStatus, Message
from helpdesk.core.errors import CareDeskError, Conflict, NotFound
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.customers.service import primary_customer
from helpdesk.shop.models import Order, OrderStatus

#: a reply counts when the customer writes within this long of the send
REPLY_WINDOW = timedelta(days=7)
#: an order counts when the customer places it within this long of the send
ORDER_WINDOW = timedelta(days=30)
MAX_RATE_PER_MINUTE = 600
MAX_AUDIENCE = 100_000


class CampaignInvalid(CareDeskError):
    """The campaign cannot be made as asked (an empty audience, an unknown template...)."""

    status = 422


# -- creating and steering ---------------------------------------------------------------------------


def create_campaign(
    session: Session, *, name: str, message: str, customer_ids: list[int], zns_template: str | None = None,
    rate_per_minute: int = 30, created_by: int | None = None, now: datetime | None = None,
    zns_templates: Collection[str] = (), segment_id: int | None = None,
) -> Campaign:
    """A draft campaign of ``message`` to ``customer_ids``; ``zns_templates`` are the keys of the ZNS
    mapping it may name. CampaignInvalid saying what is wrong (nothing is stored then)."""
    now = now or datetime.now(UTC)
    name, message = (name or "").strip(), (message or "").strip()
    if not name:
        raise CampaignInvalid("the campaign needs a name")
    if not message:
        raise CampaignInvalid("the campaign needs a message")
    audience = list(dict.fromkeys(customer_ids))
    if not audience:
        raise CampaignInvalid("the audience is empty: give at least one customer id")
    if len(audience) > MAX_AUDIENCE:
        raise CampaignInvalid(f"the audience has {len(audience)} customers; at most {MAX_AUDIENCE} per campaign")
    if not 1 <= rate_per_minute <= MAX_RATE_PER_MINUTE:
        raise CampaignInvalid(f"rate_per_minute must be between 1 and {MAX_RATE_PER_MINUTE}")
    if zns_template is not None and zns_template not in zns_templates:
        mapped = ", ".join(sorted(zns_templates)) or "none is mapped"
        raise CampaignInvalid(f"unknown ZNS template {zns_template!r}: the ZNS mapping has {mapped}")
    known = {customer_id for chunk in _chunks(audience)
             for customer_id in session.exec(select(Customer.id).where(col(Customer.id).in_(chunk))).all()}
    unknown = [customer_id for customer_id in audience if customer_id not in known]
    if unknown:
        shown = ", ".join(str(customer_id) for customer_id in unknown[:10])
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise CampaignInvalid(f"unknown customer id(s): {shown}{more}")
    campaign = Campaign(name=name[:200], message=message, zns_template=zns_template, customer_ids=audience,
                        segment_id=segment_id, rate_per_minute=rate_per_minute, created_by=created_by, created_at=now)
    session.add(campaign)
    session.flush()
    return campaign


def _chunks(ids: list[int], size: int = 5000) -> Iterable[list[int]]:
    """``ids`` in slices a statement can bind (SQLite allows 32,766 variables, PostgreSQL 65,535)."""
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def get_campaign(session: Session, campaign_id: int) -> Campaign:
    """The campaign; NotFound if there is none."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    return campaign


def _locked(session: Session, campaign_id: int, allowed: tuple[CampaignStatus, ...],
            refusal: str) -> Campaign:
    """The campaign, its row locked for this transaction on PostgreSQL (two admins pressing at once), when
    its status is one of ``allowed`` (the step may be taken); 409 with ``refusal`` (its ``{status}`` filled
    in) when it is not."""
    campaign = session.exec(select(Campaign).where(Campaign.id == campaign_id).with_for_update()).first()
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    if campaign.status not in allowed:
        raise Conflict(refusal.format(status=campaign.status))
    return campaign


def start_campaign(session: Session, campaign_id: int, now: datetime | None = None) -> Campaign:
    """Create the recipient rows, spread at the campaign's rate from ``now``, and start sending."""
    campaign = _locked(session, campaign_id, (CampaignStatus.draft,),
                       "the campaign is {status}: only a draft can be started")
    now = now or datetime.now(UTC)
    primaries: dict[int, None] = {}
    for chunk in _chunks(campaign.customer_ids):
        for customer in session.exec(select(Customer).where(col(Customer.id).in_(chunk))).all():
            primaries[primary_customer(session, customer).id] = None
    order = {customer_id: place for place, customer_id in enumerate(campaign.customer_ids)}
    audience = sorted(primaries, key=lambda customer_id: order.get(customer_id, len(order)))
    if not audience:
        raise CampaignInvalid("none of the campaign's customers exists any more")
    step = timedelta(seconds=60 / campaign.rate_per_minute)
    session.add_all(CampaignRecipient(campaign_id=campaign.id, customer_id=customer_id, due_at=now + step * place)
                    for place, customer_id in enumerate(audience))
    campaign.status, campaign.started_at = CampaignStatus.sending, now
    session.add(campaign)
    session.flush()
    return campaign


def pause_campaign(session: Session, campaign_id: int, now: datetime | None = None) -> Campaign:
    """Stop sending until resumed (a message already handed to a platform still goes)."""
    campaign = _locked(session, campaign_id, (CampaignStatus.sending,),
                       "the campaign is {status}: only a campaign that is sending can be paused")
    campaign.status = CampaignStatus.paused
    session.add(campaign)
    return campaign


def resume_campaign(session: Session, campaign_id: int, now: datetime | None = None) -> Campaign:
    """Send again, the recipients still waiting spread from ``now`` (not all at once for the time lost)."""
    campaign = _locked(session, campaign_id, (CampaignStatus.paused,),
                       "the campaign is {status}: only a paused campaign can be resumed")
    now = now or datetime.now(UTC)
    campaign.status = CampaignStatus.sending
    session.add(campaign)
    respread(session, campaign, now)
    return campaign


def cancel_campaign(session: Session, campaign_id: int, now: datetime | None = None) -> Campaign:
    """Stop for good: the recipients still waiting are skipped (``campaign_cancelled``)."""
    not_over = (CampaignStatus.draft, CampaignStatus.sending, CampaignStatus.paused)
    campaign = _locked(session, campaign_id, not_over, "the campaign is already {status}")
    now = now or datetime.now(UTC)
    session.exec(update(CampaignRecipient).where(
        CampaignRecipient.campaign_id == campaign.id, CampaignRecipient.status == RecipientStatus.pending,
        col(CampaignRecipient.claimed_at).is_(None),
    ).values(status=RecipientStatus.skipped, reason=CAMPAIGN_CANCELLED).execution_options(synchronize_session=False))
    campaign.status, campaign.finished_at = CampaignStatus.cancelled, now
    session.add(campaign)
    return campaign


def respread(session: Session, campaign: Campaign, now: datetime) -> int:
    """Give the recipients still waiting new turns, one every 60/rate seconds from ``now``; how many.
    One executemany of (id, turn) pairs: a long campaign's backlog after the night's quiet hours is tens
    of thousands of rows, which the ORM would update one statement and object at a time."""
    waiting = session.exec(select(CampaignRecipient.id).where(
        CampaignRecipient.campaign_id == campaign.id, CampaignRecipient.status == RecipientStatus.pending,
        col(CampaignRecipient.claimed_at).is_(None)).order_by(col(CampaignRecipient.due_at), col(CampaignRecipient.id))
    ).all()
    step = timedelta(seconds=60 / campaign.rate_per_minute)
    if waiting:
        session.execute(update(CampaignRecipient), [{"id": recipient_id, "due_at": now + step * place}
                                                    for place, recipient_id in enumerate(waiting)])
    return len(waiting)


def finish_campaigns_sent(session: Session, now: datetime) -> list[int]:
    """Mark ``done`` the sending campaigns with no recipient left waiting; their ids."""
    waiting = exists().where(CampaignRecipient.campaign_id == Campaign.id,
                             CampaignRecipient.status == RecipientStatus.pending)
    finished = session.exec(select(Campaign).where(Campaign.status == CampaignStatus.sending, ~waiting)).all()
    for campaign in finished:
        campaign.status, campaign.finished_at = CampaignStatus.done, now
        session.add(campaign)
    return [campaign.id for campaign in finished]


# -- reading -----------------------------------------------------------------------------------------


def list_campaigns(session: Session, *, offset: int = 0, limit: int = 50) -> tuple[list[Campaign], int]:
    """Campaigns, newest first, and how many there are."""
    total = session.exec(select(func.count()).select_from(Campaign)).one()
    rows = session.exec(select(Campaign).order_by(col(Campaign.id).desc()).offset(offset).limit(limit)).all()
    return list(rows), total


def status_counts(session: Session, campaign_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """campaign id -> recipients by status."""
    ids = list(campaign_ids)
    counts: dict[int, dict[str, int]] = {campaign_id: {} for campaign_id in ids}
    if not ids:
        return counts
    rows = session.exec(select(CampaignRecipient.campaign_id, CampaignRecipient.status, func.count())
                        .where(col(CampaignRecipient.campaign_id).in_(ids))
                        .group_by(CampaignRecipient.campaign_id, CampaignRecipient.status)).all()
    for campaign_id, status, count in rows:
        counts[campaign_id][status] = count
    return counts


def reason_counts(session: Session, campaign_id: int) -> dict[str, int]:
    """Skipped and failed recipients by reason."""
    rows = session.exec(select(CampaignRecipient.reason, func.count()).where(
        CampaignRecipient.campaign_id == campaign_id,
        col(CampaignRecipient.status).in_((RecipientStatus.skipped, RecipientStatus.failed)))
        .group_by(CampaignRecipient.reason)).all()
    return {reason or "unknown": count for reason, count in rows}


def channel_counts(session: Session, campaign_id: int) -> dict[str, int]:
    """Messages that went out, by channel."""
    rows = session.exec(select(CampaignRecipient.channel, func.count()).where(
        CampaignRecipient.campaign_id == campaign_id, col(CampaignRecipient.status).in_(WENT_OUT))
        .group_by(CampaignRecipient.channel)).all()
    return {channel or "unknown": count for channel, count in rows}


def recipients_page(session: Session, campaign_id: int, *, status: str | None = None, offset: int = 0,
                    limit: int = 50) -> tuple[list[CampaignRecipient], int]:
    """One page of the campaign's recipients (optionally of one status), in audience order, and the total."""
    where = [CampaignRecipient.campaign_id == campaign_id]
    if status is not None:
        where.append(CampaignRecipient.status == status)
    total = session.exec(select(func.count()).select_from(CampaignRecipient).where(*where)).one()
    rows = session.exec(select(CampaignRecipient).where(*where).order_by(col(CampaignRecipient.id))
                        .offset(offset).limit(limit)).all()
    return list(rows), total


def refresh_outcomes(session: Session, campaign_id: int) -> None:
    """Bring the recipients up to date with what happened since: a chat message the outbox finally failed
    to send marks its recipient failed (with the platform's words); the customer's first message within
    REPLY_WINDOW of the send sets ``replied_at``, their first order within ORDER_WINDOW ``ordered_at``."""
    recipient = CampaignRecipient.__table__.c
    failed_message = select(Message.delivery_error).where(
        Message.id == recipient.message_id, Message.delivery_status == DeliveryStatus.failed).scalar_subquery()
    session.exec(update(CampaignRecipient.__table__).where(
        recipient.campaign_id == campaign_id, recipient.status == RecipientStatus.sent,
        col(recipient.message_id).is_not(None),
        exists().where(Message.id == recipient.message_id, Message.delivery_status == DeliveryStatus.failed),
    ).values(status=RecipientStatus.failed, reason=func.coalesce(func.substr(failed_message, 1, 500),
                                                                 "the platform refused the message")))
    # the first message and order after each send; within the window or not is decided here, as
    # SQLite cannot add an interval to a stored time (the first one after the send decides either way)
    waiting = (CampaignRecipient.campaign_id == campaign_id, col(CampaignRecipient.sent_at).is_not(None))
    first_reply = session.exec(
        select(CampaignRecipient.id, func.min(Message.created_at))
        .join(ChannelIdentity, ChannelIdentity.customer_id == CampaignRecipient.customer_id)
        .join(Conversation, Conversation.identity_id == ChannelIdentity.id)
        .join(Message, Message.conversation_id == Conversation.id)
        .where(*waiting, col(CampaignRecipient.replied_at).is_(None), Message.direction == "in",
               Message.created_at > CampaignRecipient.sent_at)
        .group_by(CampaignRecipient.id)).all()
    first_order = session.exec(
        select(CampaignRecipient.id, func.min(Order.created_at))
        .join(Order, Order.customer_id == CampaignRecipient.customer_id)
        .where(*waiting, col(CampaignRecipient.ordered_at).is_(None), Order.created_at > CampaignRecipient.sent_at,
               col(Order.status).not_in((OrderStatus.cancelled, OrderStatus.returned)))
        .group_by(CampaignRecipient.id)).all()
    for found, column, window in ((first_reply, "replied_at", REPLY_WINDOW), (first_order, "ordered_at", ORDER_WINDOW)):
        for recipient_id, at in found:
            row = session.get(CampaignRecipient, recipient_id)
            at = _aware(at)
            if at is not None and at <= row.sent_at + window:
                setattr(row, column, at)
                session.add(row)
    session.flush()


def _aware(moment: Any) -> datetime | None:
    """An aggregate's time as aware UTC (SQLite hands back text, PostgreSQL a naive UTC time)."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def campaign_report(session: Session, campaign_id: int, *, refresh: bool = True) -> dict[str, Any]:
    """Replies and orders that followed the campaign's messages, as counts and rates of those that went
    (``refresh``: bring the recipients up to date first)."""
    if refresh:
        refresh_outcomes(session, campaign_id)
    went = (CampaignRecipient.campaign_id == campaign_id, col(CampaignRecipient.sent_at).is_not(None),
            col(CampaignRecipient.status).in_(WENT_OUT))
    sent = session.exec(select(func.count()).select_from(CampaignRecipient).where(*went)).one()
    replied = session.exec(select(func.count()).select_from(CampaignRecipient).where(
        *went, col(CampaignRecipient.replied_at).is_not(None))).one()
    ordered = session.exec(select(func.count()).select_from(CampaignRecipient).where(
        *went, col(CampaignRecipient.ordered_at).is_not(None))).one()
    by_channel: Counter[str] = Counter()
    replied_by_channel: Counter[str] = Counter()
    ordered_by_channel: Counter[str] = Counter()
    for channel, replied_at, ordered_at in session.exec(select(
            CampaignRecipient.channel, CampaignRecipient.replied_at, CampaignRecipient.ordered_at).where(*went)).all():
        by_channel[channel or "unknown"] += 1
        replied_by_channel[channel or "unknown"] += replied_at is not None
        ordered_by_channel[channel or "unknown"] += ordered_at is not None
    return {
        "sent": sent, "replied": replied, "ordered": ordered,
        "reply_rate": round(replied / sent, 4) if sent else None,
        "order_rate": round(ordered / sent, 4) if sent else None,
        "reply_window_days": REPLY_WINDOW.days, "order_window_days": ORDER_WINDOW.days,
        "by_channel": {channel: {"sent": count, "replied": replied_by_channel[channel],
                                 "ordered": ordered_by_channel[channel]}
                       for channel, count in sorted(by_channel.items())},
    }
