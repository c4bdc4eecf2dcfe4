"""API shapes for customers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from helpdesk.conversations.schemas import MessagePublic


class IdentityPublic(BaseModel):
    """A customer's account on one channel."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    channel: str
    external_id: str
    display_name: str | None
    reachable: bool
    unreachable_reason: str | None
    last_inbound_at: datetime | None


class CustomerPublic(BaseModel):
    """A customer with their channel identities."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str | None
    phone: str | None
    phone_verified: bool
    locale: str
    merged_into_id: int | None
    identities: list[IdentityPublic] = []


class CustomerMergeCreate(BaseModel):
    """Which customer record to fold into this one."""

    other_id: int


class CustomerSplit(BaseModel):
    """Which merge into this customer to undo: by its id, or by the customer it folded in."""

    merge_id: int | None = None
    customer_id: int | None = None

    @model_validator(mode="after")
    def _names_one(self) -> CustomerSplit:
        if (self.merge_id is None) == (self.customer_id is None):
            raise ValueError("give exactly one of merge_id and customer_id")
        return self


class CustomerMergePublic(BaseModel):
    """A merge into a customer: what moved and which fields were copied, and whether it was split."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    primary_id: int
    merged_id: int
    moved: dict[str, list[int]]
    copied: dict[str, list]
    actor_type: str
    actor_id: int | None
    created_at: datetime
    split_at: datetime | None
    split_by_id: int | None


class CustomerMergesPublic(BaseModel):
    """The merges into a customer, newest first."""

    data: list[CustomerMergePublic]
    count: int


class CustomerMessagesPublic(BaseModel):
    """Every message with the customer, across channels and conversations, in time order."""

    customer_id: int
    data: list[MessagePublic]


class TimelineEventPublic(BaseModel):
    """One event of the customer's timeline: what (``kind``), when (``at``) and its details.

    Kinds: conversation_opened, conversation_resolved, note, tag, order, warranty, rating,
    care_message (with its outcome), campaign_message (a campaign's message and what followed),
    identity_merged, identity_split (a merge undone),
    identity_split_off (an identity split off into a new customer), split_from (this customer was split off)."""

    kind: str
    at: datetime
    #: the id of the row the event comes from (a conversation, an order, ...), unique within its kind
    ref: int
    channel: str | None = None
    conversation_id: int | None = None
    details: dict[str, Any]


class TimelinePublic(BaseModel):
    """A page of the customer's timeline, newest first; ``next_cursor`` fetches the page after it."""

    customer_id: int
    data: list[TimelineEventPublic]
    next_cursor: str | None
