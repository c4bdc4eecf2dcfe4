"""API shapes of the inbox: list rows with what an agent scans for, view counts, orders and warranties."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class MessagePreview(BaseModel):
    """The last message of a conversation that the customer could see, shortened."""

    text: str
    author: str
    at: datetime
    has_attachments: bool


class InboxRow(BaseModel):
    """One conversation as a row of the inbox list (and the header of the conversation view)."""

    id: int
    customer_id: int
    customer_name: str | None
    channel: str
    state: str
    priority: str
    team: str | None
    assignee_id: int | None
    assignee_name: str | None
    tags: list[str]
    preview: MessagePreview | None
    escalation_reason: str | None
    escalated_at: datetime | None
    #: when the queue clock started (escalation, else creation): the list's second sort key
    waiting_since: datetime
    last_message_at: datetime | None
    first_response_due_at: datetime | None
    first_response_at: datetime | None
    next_response_due_at: datetime | None
    resolution_due_at: datetime | None
    resolved_at: datetime | None
    sla_status: str
    #: the views this row belongs to for the asking agent, so a live update knows where it goes
    views: list[str]


class InboxPage(BaseModel):
    """A page of one view, with the counts of every view and the server's clock (for countdowns)."""

    view: str
    data: list[InboxRow]
    count: int
    counts: dict[str, int]
    now: datetime


class InboxRows(BaseModel):
    """Rows asked for by id; ``missing`` are ids the agent may not (or no longer) see."""

    data: list[InboxRow]
    missing: list[int]
    now: datetime


class ViewCounts(BaseModel):
    """How many conversations each view holds for the asking agent."""

    counts: dict[str, int]
    now: datetime


class OrderSummary(BaseModel):
    """An order of the customer, read-only."""

    code: str
    status: str
    items: list[str]
    total_vnd: int
    created_at: datetime
    delivered_at: datetime | None


class WarrantySummary(BaseModel):
    """A product unit's warranty, read-only."""

    serial: str
    product_name: str
    order_code: str | None
    starts_at: datetime
    ends_at: datetime
    active: bool


class CustomerCommerce(BaseModel):
    """The customer's orders and warranties, matched by customer record or verified phone."""

    customer_id: int
    phone: str | None
    phone_verified: bool
    orders: list[OrderSummary]
    warranties: list[WarrantySummary]
