"""API shapes for an order's care sequence."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class CareMessagePublic(BaseModel):
    """One step of an order's care sequence, to one channel identity."""

    id: int
    kind: str
    identity_id: int
    channel: str
    recipient_id: str
    status: str
    planned_at: datetime
    due_at: datetime
    sent_at: datetime | None
    reason: str | None
    message_id: int | None


class OrderCarePublic(BaseModel):
    """An order's delivery and what its care sequence has scheduled, sent or skipped."""

    code: str
    status: str
    delivered_at: datetime | None
    #: this call marked the order delivered (False when it already was)
    newly_delivered: bool = False
    #: the care sequence waits for a customer to verify the order's phone
    awaiting_customer: bool = False
    data: list[CareMessagePublic]
    count: int


class ReminderCounts(BaseModel):
    """How one type of reminder did in a period."""

    scheduled: int
    sent: int
    #: reached the customer's phone, where the channel reports it (ZNS receipts)
    read: int
    #: the customer wrote on the same identity within 7 days of it
    replied: int
    skipped: int
    cancelled: int
    reply_rate: float | None


class RemindersSummaryPublic(BaseModel):
    """``GET /api/care/reminders/summary``: reminders due in [from, to), per type."""

    model_config = {"populate_by_name": True}

    from_: datetime = Field(alias="from")
    to: datetime
    data: dict[str, ReminderCounts]
