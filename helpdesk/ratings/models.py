"""Star ratings customers give: after a delivery, and after a conversation (CSAT)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from helpdesk.core.types import created_at_field


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
