"""Campaign messages on the customer's timeline (``helpdesk/customers/timeline.py``): each message a
campaign sent the customer, with its channel, status and what followed (a reply, an order)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from helpdesk.campaigns.models import Campaign, CampaignRecipient
from helpdesk.customers.models import Customer
from helpdesk.customers.timeline import EVENT_SOURCES, TimelineEvent


def campaign_events(session: Session, customer: Customer) -> list[TimelineEvent]:
    """The campaign messages that went to the customer (skipped ones never reached them)."""
    rows = session.exec(select(CampaignRecipient, Campaign).join(Campaign, Campaign.id == CampaignRecipient.campaign_id)
                        .where(CampaignRecipient.customer_id == customer.id,
                               col(CampaignRecipient.sent_at).is_not(None))).all()
    return [TimelineEvent("campaign_message", recipient.sent_at, recipient.id, {
        "campaign_id": campaign.id, "campaign": campaign.name, "status": recipient.status,
        "reason": recipient.reason, "replied_at": recipient.replied_at, "ordered_at": recipient.ordered_at,
    }, recipient.channel) for recipient, campaign in rows]


if campaign_events not in EVENT_SOURCES:
    EVENT_SOURCES.append(campaign_events)
