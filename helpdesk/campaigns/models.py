"""A campaign and its recipients: one row per customer of the audience, with the channel that carried the
message (or why none could) and what followed."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from helpdesk.core.types import created_at_field, json_field, timestamp_field


class CampaignStatus(StrEnum):
    """Where a campaign stands."""

    draft = "draft"
    sending = "sending"
    paused = "paused"
    done = "done"
    cancelled = "cancelled"


class RecipientStatus(StrEnum):
    """Where one recipient's message stands."""

    pending = "pending"
    #: handed to the platform (chats: to the outbox; the linked message carries the platform's answer)
    sent = "sent"
    delivered = "delivered"
    read = "read"
    failed = "failed"
    #: no channel allowed a promotion to this customer (``reason`` says why), or the campaign was cancelled
    skipped = "skipped"


class Campaign(SQLModel, table=True):
    """One message sent to a list of customers."""

    __tablename__ = "campaign"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    #: what customers read; ``{name}`` becomes the customer's name
    message: str = Field(max_length=2000)
    #: the key of the ZNS template mapping (``CAREDESK_ZNS__TEMPLATES``) the campaign may send by ZNS
    zns_template: str | None = Field(default=None, max_length=40)
    status: str = Field(default=CampaignStatus.draft, max_length=12)
    #: the audience given at creation, until start turns it into recipient rows
    customer_ids: list[int] = json_field(default_factory=list)
    #: the saved segment the audience was taken from, when it was (its members at creation, kept above:
    #: a later change to the segment, or its deletion, does not change who the campaign is for)
    segment_id: int | None = None
    created_by: int | None = Field(default=None, foreign_key="agents.id")
    created_at: datetime = created_at_field()
    started_at: datetime | None = timestamp_field()
    finished_at: datetime | None = timestamp_field()
    #: messages per minute, spread evenly (one every 60/rate seconds), never in a burst
    rate_per_minute: int = 30


class CampaignRecipient(SQLModel, table=True):
    """One customer of a campaign: the channel chosen, status, and what followed."""

    __tablename__ = "campaign_recipient"
    __table_args__ = (
        UniqueConstraint("campaign_id", "customer_id", name="uq_campaign_recipient_customer"),
        # the sender asks for status = 'pending' AND due_at <= now, campaign by campaign
        Index("ix_campaign_recipient_due", "campaign_id", "status", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    customer_id: int = Field(foreign_key="customers.id", index=True)
    channel: str | None = Field(default=None, max_length=32)
    status: str = Field(default=RecipientStatus.pending, max_length=12)
    #: a reason code (``helpdesk.campaigns.rules``) on a skipped row, the platform's words on a failed one
    reason: str | None = Field(default=None, max_length=500)
    #: when its turn comes (the campaign's rate spreads the audience over time)
    due_at: datetime | None = timestamp_field()
    #: set while a send to an addressed channel (ZNS, email) is under way, outside any transaction
    claimed_at: datetime | None = timestamp_field()
    sent_at: datetime | None = timestamp_field()
    #: the platform's message id (a chat's via the outbox, ZNS msg_id, the mail's Message-ID)
    external_id: str | None = Field(default=None, max_length=128, index=True)
    #: the chat message stored for it (chats only), whose delivery the outbox records
    message_id: int | None = Field(default=None, foreign_key="messages.id", index=True)
    replied_at: datetime | None = timestamp_field()
    ordered_at: datetime | None = timestamp_field()
