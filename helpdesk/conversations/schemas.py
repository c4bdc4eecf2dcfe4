"""API shapes for conversations and messages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

from helpdesk.attachments.schemas import AttachmentPublic, legacy_attachment
from helpdesk.conversations.models import Priority
from helpdesk.outbox.failures import delivery_error_kind


class MessagePublic(BaseModel):
    """A message as agents see it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    conversation_id: int
    direction: str
    author: str
    agent_id: int | None
    channel: str
    text: str
    payload: str | None
    #: the message's files (``helpdesk.attachments``); a message stored before CareDesk kept files
    #: shows its platform description (``id`` null)
    attachments: list[AttachmentPublic]
    nlu: dict[str, Any] | None
    is_private: bool
    delivery_status: str | None
    #: the platform's own words when a send failed for good (see ``delivery_error_kind``)
    delivery_error: str | None
    created_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def delivery_error_kind(self) -> str | None:
        """What kind of failure ``delivery_error`` is (blocked, outside_window, too_large,
        rate_limited, unknown), for the inbox to say in the agent's language."""
        return delivery_error_kind(self.delivery_error)

    @field_validator("attachments", mode="before")
    @classmethod
    def _inline_documents(cls, value: Any) -> Any:
        # the inline JSON a message row keeps, read as the fixed shape
        if not isinstance(value, list):
            return []
        shown = []
        for item in value:
            if isinstance(item, dict) and "id" not in item:
                try:
                    item = legacy_attachment(item)
                except ValueError:
                    item = AttachmentPublic(id=None, kind="file")
            shown.append(item)
        return shown


class MessagesPublic(BaseModel):
    """A page of a conversation's messages, oldest first, and how many it has in all."""

    data: list[MessagePublic]
    count: int


class ConversationPublic(BaseModel):
    """A conversation with its queue and SLA fields."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    channel: str
    state: str
    priority: str
    team: str | None
    assignee_id: int | None
    escalation_reason: str | None
    escalated_at: datetime | None
    first_response_due_at: datetime | None
    next_response_due_at: datetime | None
    resolution_due_at: datetime | None
    sla_status: str
    tags: list[str] = []
    first_response_at: datetime | None
    resolved_at: datetime | None
    last_message_at: datetime | None
    created_at: datetime


class ConversationsPublic(BaseModel):
    """A page of conversations and how many match in all."""

    data: list[ConversationPublic]
    count: int


class ConversationDetail(ConversationPublic):
    """A conversation with its timeline."""

    messages: list[MessagePublic]


class AgentMessageCreate(BaseModel):
    """An agent's reply to the customer."""

    text: str = Field(min_length=1, max_length=4096)


class NoteCreate(BaseModel):
    """A private note for colleagues."""

    text: str = Field(min_length=1, max_length=4096)


class TypingSignal(BaseModel):
    """The agent is typing a reply (true) or stopped (false)."""

    model_config = ConfigDict(extra="forbid")

    typing: bool = True


class TypingForwarded(BaseModel):
    """Whether the signal went on to the customer's channel (false: the throttle held it back, or
    there was no indicator to switch off)."""

    forwarded: bool


class AssignRequest(BaseModel):
    """Whom to give the conversation to: an agent, or a team's queue."""

    agent_id: int | None = None
    team: str | None = Field(default=None, min_length=1, max_length=100)


class ConversationUpdate(BaseModel):
    """Fields an agent may change directly."""

    priority: Priority | None = None


class TagsRequest(BaseModel):
    """Tags to add and to remove."""

    add: list[Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w\-:. ]+$")]] = []
    remove: list[str] = []
