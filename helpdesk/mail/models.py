"""Every mail of the email channel, in and out, by Message-ID: what threads a reply into the customer's
conversation (In-Reply-To / References), what an agent's reply threads onto, and what a bounce names."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from helpdesk.core.types import created_at_field


class EmailRecord(SQLModel, table=True):
    """One mail sent to or received from a customer's address."""

    __tablename__ = "email_messages"
    __table_args__ = (Index("ix_email_messages_identity", "identity_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    #: the Message-ID without its angle brackets (hashed when longer than the column)
    message_id: str = Field(max_length=255, index=True)
    identity_id: int = Field(foreign_key="channel_identities.id")
    direction: str = Field(max_length=3)  # "in" or "out"
    subject: str = Field(default="", max_length=500)
    #: the care message a care mail carried (bounces and replies find it)
    care_id: int | None = Field(default=None, foreign_key="care_messages.id")
    created_at: datetime = created_at_field()
