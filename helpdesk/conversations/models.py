"""Conversations and the messages in them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from helpdesk.core.types import created_at_field, json_field, timestamp_field


class ConversationState(StrEnum):
    """Who is handling a conversation."""

    bot = "bot"
    waiting_for_agent = "waiting_for_agent"
    with_agent = "with_agent"
    resolved = "resolved"


OPEN_STATES = (ConversationState.bot, ConversationState.waiting_for_agent, ConversationState.with_agent)
HUMAN_STATES = (ConversationState.waiting_for_agent, ConversationState.with_agent)


class Priority(StrEnum):
    """How urgent a conversation is; drives SLA targets and queue order."""

    low = "low"
    normal = "normal"
    high = "high"
    urgent = "urgent"


class MessageAuthor(StrEnum):
    """Who wrote a message."""

    customer = "customer"
    bot = "bot"
    agent = "agent"
    system = "system"


class DeliveryStatus(StrEnum):
    """Where an outgoing message stands with the platform."""

    pending = "pending"
    sent = "sent"
    failed = "failed"


class Conversation(SQLModel, table=True):
    """A thread between a customer on one channel and the shop, from first message to resolution."""

    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_state_priority", "state", "priority", "escalated_at"),
        Index("ix_conversations_assignee_state", "assignee_id", "state"),
        Index("ix_conversations_customer_state", "customer_id", "state"),
        # the "resolved" view and the inbox counts read only the recently resolved part of the history
        Index("ix_conversations_state_resolved_at", "state", "resolved_at"),
        # the reports select a period of conversations by when they started
        Index("ix_conversations_created_at", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id")
    identity_id: int = Field(foreign_key="channel_identities.id", index=True)
    channel: str = Field(max_length=32)
    state: str = Field(default=ConversationState.bot, max_length=24)
    priority: str = Field(default=Priority.normal, max_length=10)
    team: str | None = Field(default=None, max_length=100)
    assignee_id: int | None = Field(default=None, foreign_key="agents.id")
    escalation_reason: str | None = Field(default=None, max_length=64)
    escalated_at: datetime | None = timestamp_field()
    first_response_due_at: datetime | None = timestamp_field(index=True)
    next_response_due_at: datetime | None = timestamp_field(index=True)
    resolution_due_at: datetime | None = timestamp_field(index=True)
    sla_status: str = Field(default="ok", max_length=10)
    first_response_at: datetime | None = timestamp_field()
    resolved_at: datetime | None = timestamp_field()
    last_message_at: datetime | None = timestamp_field()
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class Message(SQLModel, table=True):
    """One message in a conversation: from the customer, the bot, an agent, or a system notice."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "direction", "channel_message_id", name="uq_messages_channel_id"),
        Index("ix_messages_conversation_created", "conversation_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id")
    direction: str = Field(max_length=8)  # "in" or "out"
    author: str = Field(max_length=10)
    agent_id: int | None = Field(default=None, foreign_key="agents.id")
    channel: str = Field(max_length=32)
    channel_message_id: str | None = Field(default=None, max_length=128)
    text: str = Field(default="", sa_type=Text)
    payload: str | None = Field(default=None, max_length=512)
    attachments: list[dict[str, Any]] = json_field(default_factory=list)
    nlu: dict[str, Any] | None = json_field(nullable=True)
    is_private: bool = False
    delivery_status: str | None = Field(default=None, max_length=10)
    delivery_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = created_at_field()


class DialogueState(SQLModel, table=True):
    """The bot's memory of a conversation: which flow it is in, what it waits for, slots filled."""

    __tablename__ = "dialogue_states"

    key: str = Field(primary_key=True, max_length=128)
    data: dict[str, Any] = json_field()
    updated_at: datetime = created_at_field()


class ConversationTag(SQLModel, table=True):
    """A label on a conversation (a complaint reason, a product, …), used in views and reports."""

    __tablename__ = "conversation_tags"

    conversation_id: int = Field(foreign_key="conversations.id", primary_key=True)
    tag: str = Field(max_length=64, primary_key=True, index=True)
    created_at: datetime = created_at_field()
