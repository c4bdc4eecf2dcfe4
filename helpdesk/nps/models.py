"""NPS answers: one row per survey sent ("how likely are you to recommend the shop, 0–10"), filled in
when the customer answers. Other features (the customer's timeline, reports) read this table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from helpdesk.core.db import UTCDateTime
from helpdesk.core.types import timestamp_field


class NpsResponse(SQLModel, table=True):
    """One NPS survey to one customer: asked at ``asked_at``; ``score`` (0–10) and ``at`` once answered,
    ``comment`` the customer's "why" afterwards."""

    __tablename__ = "nps_response"
    __table_args__ = (
        # the bot asks "is an answer pending for this customer?" at every typed number
        Index("ix_nps_response_customer_open", "customer_id", "at", "asked_at"),
        # reports read answers of a period
        Index("ix_nps_response_at", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id")
    identity_id: int | None = Field(default=None, foreign_key="channel_identities.id")
    order_id: int | None = Field(default=None, foreign_key="orders.id", index=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversations.id")
    #: the channel the survey went out on ("telegram", "facebook", "webchat", ...)
    channel: str = Field(max_length=32)
    #: the first product of the order, for NPS by product (None for a survey after a conversation)
    product_sku: str | None = Field(default=None, max_length=64)
    #: why the survey went: "delivery" (days after an order arrived) or "resolved" (after a conversation)
    trigger: str = Field(default="delivery", max_length=16)
    asked_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    score: int | None = Field(default=None, ge=0, le=10)
    comment: str | None = Field(default=None, max_length=2000)
    #: when the customer gave the score (None: not answered yet)
    at: datetime | None = timestamp_field()
