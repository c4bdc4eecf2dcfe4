"""API shapes of campaigns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class CampaignCreate(BaseModel):
    """A draft campaign: its message and its audience as customer ids."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    #: ``{name}`` becomes each customer's name
    message: str = Field(min_length=1, max_length=2000)
    #: the audience: these customers, or (``segment_id``) the members of a saved segment now; one of the two
    customer_ids: list[int] | None = Field(default=None, max_length=100_000)
    segment_id: int | None = Field(default=None, ge=1)
    #: a key of the ZNS template mapping (``campaign``) whose template Zalo approved; without one, ZNS is not used
    zns_template: str | None = Field(default=None, max_length=40)
    rate_per_minute: int = Field(default=30, ge=1, le=600)

    @model_validator(mode="after")
    def _one_audience(self) -> "CampaignCreate":
        if (self.customer_ids is None) == (self.segment_id is None):
            raise ValueError("give the audience as customer_ids or as segment_id (one of the two)")
        return self


class CampaignProblem(BaseModel):
    """Why a campaign request was refused: the reason (a sentence), or the fields that failed validation."""

    detail: str | list[dict[str, Any]]


class CampaignCounts(BaseModel):
    """Recipients by status, skipped and failed ones by reason, messages that went by channel."""

    total: int
    by_status: dict[str, int]
    by_reason: dict[str, int] = {}
    by_channel: dict[str, int] = {}


class ChannelOutcome(BaseModel):
    """What followed the messages that went by one channel."""

    sent: int
    replied: int
    ordered: int


class CampaignReport(BaseModel):
    """Replies (within 7 days of the send) and orders (within 30 days) of the customers the message reached."""

    campaign_id: int
    sent: int
    replied: int
    ordered: int
    reply_rate: float | None
    order_rate: float | None
    reply_window_days: int
    order_window_days: int
    by_channel: dict[str, ChannelOutcome]


class CampaignPublic(BaseModel):
    """A campaign and where it stands."""

    id: int
    name: str
    message: str
    zns_template: str | None
    status: str
    audience: int
    #: the saved segment the audience was taken from, if it was
    segment_id: int | None = None
    rate_per_minute: int
    created_by: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    counts: CampaignCounts
    #: replies and orders that followed (one campaign's view; not in the list)
    report: CampaignReport | None = None


class CampaignsPublic(BaseModel):
    """A page of campaigns, newest first."""

    data: list[CampaignPublic]
    count: int


class RecipientPublic(BaseModel):
    """One recipient: the channel that carried the message, or why none could, and what followed."""

    id: int
    customer_id: int
    channel: str | None
    status: str
    reason: str | None
    due_at: datetime | None
    sent_at: datetime | None
    external_id: str | None
    message_id: int | None
    replied_at: datetime | None
    ordered_at: datetime | None


class RecipientsPublic(BaseModel):
    """A page of a campaign's recipients."""

    data: list[RecipientPublic]
    count: int


