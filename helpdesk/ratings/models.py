"""Star ratings customers give (after a delivery, and after a conversation: CSAT) and the requests
the shop sent for them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from helpdesk.core.db import UTCDateTime
from helpdesk.core.types import created_at_field, timestamp_field


class Rating(SQLModel, table=True):
    """A 1–5 star rating with an optional comment."""

    __tablename__ = "ratings"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # "delivery" (after an order) or "csat" (after a conversation)
    score: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=2000)
    customer_id: int = Field(foreign_key="customers.id", index=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversations.id", index=True)
    order_id: int | None = Field(default=None, foreign_key="orders.id", index=True)
    agent_id: int | None = Field(default=None, foreign_key="agents.id", index=True)
    created_at: datetime = created_at_field(index=True)


class RatingRequest(SQLModel, table=True):
    """A rating the shop asked a customer for, so a plain "5" typed back can be matched to it."""

    __tablename__ = "rating_requests"
    __table_args__ = (Index("ix_rating_requests_customer_open", "customer_id", "answered_at", "sent_at"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id")
    identity_id: int | None = Field(default=None, foreign_key="channel_identities.id", index=True)
    subject: str = Field(max_length=64)  # "order:<code>" or "conversation:<id>"
    order_id: int | None = Field(default=None, foreign_key="orders.id", index=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversations.id", index=True)
    sent_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    answered_at: datetime | None = timestamp_field()
    rating_id: int | None = Field(default=None, foreign_key="ratings.id")
