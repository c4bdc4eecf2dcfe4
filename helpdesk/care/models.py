"""Care plans per delivered order and the scheduled messages of each plan."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from helpdesk.core.db import UTCDateTime
from helpdesk.core.types import created_at_field, timestamp_field


class CareKind(StrEnum):
    """The steps of the after-delivery sequence, in the order they go out."""

    thank_you = "thank_you"
    rating_request = "rating_request"
    usage_tips = "usage_tips"
    check_in = "check_in"
    #: the NPS survey, weeks later (``CAREDESK_CARE__NPS_DAY``); its answers are helpdesk/nps's
    nps = "nps"


class CareStatus(StrEnum):
    """Where a scheduled care message stands."""

    scheduled = "scheduled"
    #: handed to a platform that answers at once (ZNS), its answer not yet recorded
    sending = "sending"
    sent = "sent"  # handed to the outbox; the linked message carries the platform's delivery status
    #: the platform said the message reached the customer's phone (a ZNS receipt)
    delivered = "delivered"
    #: the platform took it but reported later that it never arrived (an email bounce)
    failed = "failed"
    skipped = "skipped"  # not sent for a reason the platform or timing imposed (see ``reason``)
    cancelled = "cancelled"  # the customer opted out or the order was cancelled


class CarePlan(SQLModel, table=True):
    """The care sequence of one delivered order; exists once the order was marked delivered."""

    __tablename__ = "care_plans"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", unique=True)
    delivered_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    created_at: datetime = created_at_field()


class CareMessage(SQLModel, table=True):
    """One proactive message of a care plan, to one channel identity, due at a given time."""

    __tablename__ = "care_messages"
    __table_args__ = (
        # Duplicate delivered events, concurrent imports or a second worker can never double-schedule.
        UniqueConstraint("order_id", "identity_id", "kind", name="uq_care_messages_order_identity_kind"),
        # The periodic task asks for status = 'scheduled' AND due_at <= now.
        Index("ix_care_messages_status_due", "status", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    identity_id: int = Field(foreign_key="channel_identities.id", index=True)
    kind: str = Field(max_length=20)
    #: when the sequence meant it to go (delivery + the step's delay)
    planned_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    #: when it may go: planned_at moved out of quiet hours (or the platform's night), or postponed while an
    #: agent talks
    due_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    status: str = Field(default=CareStatus.scheduled, max_length=12)
    reason: str | None = Field(default=None, max_length=500)
    message_id: int | None = Field(default=None, foreign_key="messages.id")
    sent_at: datetime | None = timestamp_field()
    #: the platform's id of a message sent without the outbox (ZNS msg_id), for its receipt and rating
    external_id: str | None = Field(default=None, max_length=64, index=True)
    delivered_at: datetime | None = timestamp_field()
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()
