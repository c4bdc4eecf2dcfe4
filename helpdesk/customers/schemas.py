"""API shapes for customers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

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


class CustomerMerge(BaseModel):
    """Which customer record to fold into this one."""

    other_id: int


class TimelinePublic(BaseModel):
    """Every message with the customer, across channels and conversations, in time order."""

    customer_id: int
    data: list[MessagePublic]
