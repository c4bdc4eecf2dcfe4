"""API shapes of the after-sales reports: the summary of a period and the filter choices.

Rates are fractions from 0 to 1 and times are business seconds; a figure with nothing to measure
(no rating, no answered conversation, an empty period…) is ``null``, never a division by zero.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Rate = float | None


class ReportPeriod(BaseModel):
    """The half-open interval ``[from, to)`` the figures cover, and the shop time zone days are read in."""

    model_config = ConfigDict(validate_by_name=True)

    from_: datetime = Field(alias="from")
    to: datetime
    timezone: str


class ReportFilters(BaseModel):
    """The filters applied (``null`` = not filtered)."""

    channel: str | None = None
    team: str | None = None
    agent_id: int | None = None


class ReasonCount(BaseModel):
    """How many conversations of the period carry a reason."""

    reason: str
    count: int


class RatingDistribution(BaseModel):
    """How many ratings gave each number of stars."""

    model_config = ConfigDict(validate_by_name=True)

    one: int = Field(0, alias="1")
    two: int = Field(0, alias="2")
    three: int = Field(0, alias="3")
    four: int = Field(0, alias="4")
    five: int = Field(0, alias="5")

    @classmethod
    def from_counts(cls, counts: dict[int, int]) -> RatingDistribution:
        """From ``{stars: count}``."""
        return cls(**{str(stars): counts.get(stars, 0) for stars in range(1, 6)})


class ReportCounts(BaseModel):
    """The counts behind the rates, so every rate can be checked and re-weighted."""

    conversations: int = Field(description="conversations started in the period (the base of every figure)")
    escalated: int = Field(description="of those, conversations that reached the people")
    resolved: int = Field(description="conversations resolved (as of now)")
    contained: int = Field(description="never escalated, no person, and ended (resolved or idle)")
    first_responses: int = Field(description="escalated conversations a person has answered (FRT sample)")
    resolutions: int = Field(description="resolved conversations (resolution time sample)")
    sla_measured: int = Field(description="escalated conversations (the SLA compliance base)")
    sla_breached: int = Field(description="escalated conversations with at least one SLA breach")
    csat_ratings: int = Field(description="CSAT ratings of the period's conversations")
    csat_satisfied: int = Field(description="CSAT ratings of 4 or 5 stars")
    complaints: int = Field(description="conversations with at least one complaint reason")
    csat_after_complaint_ratings: int = Field(description="CSAT ratings of complaint conversations")
    recontact_base: int = Field(description="resolved conversations (the recontact base)")
    recontacted_7d: int = Field(description="resolved conversations whose customer came back within 7 days")


class AfterDeliveryStats(BaseModel):
    """Ratings asked for after a delivery: how many customers answered and how they rated.

    Shop-wide: deliveries belong to no team or agent, so only the channel filter applies (the
    channel the request went out on).
    """

    requests_sent: int = Field(description="rating requests for an order sent in the period")
    requests_answered: int = Field(description="of those, requests the customer answered with a rating")
    response_rate: Rate = Field(description="requests_answered / requests_sent")
    ratings: int = Field(description="delivery ratings given in the period")
    avg_rating: float | None
    distribution: RatingDistribution


class VolumeBucket(BaseModel):
    """Conversations started in one day, week or month of the period (shop-local)."""

    start: date
    conversations: int
    escalated: int


class VolumeSeries(BaseModel):
    """Conversations over the period; days up to two months, then weeks, then months, then years
    (a multi-year period has more months than a chart can show)."""

    granularity: Literal["day", "week", "month", "year"]
    buckets: list[VolumeBucket]


class ReportSummary(BaseModel):
    """The after-sales KPIs of one period, for the conversations the caller may report on."""

    period: ReportPeriod
    filters: ReportFilters
    csat: Rate = Field(description="share of CSAT ratings with 4 or 5 stars")
    avg_rating: float | None = Field(description="mean CSAT stars (1–5)")
    csat_after_complaint: Rate = Field(description="CSAT of complaint conversations, reported apart")
    avg_rating_after_complaint: float | None
    rating_distribution: RatingDistribution = Field(description="CSAT ratings per number of stars")
    frt_median_s: float | None = Field(description="median first response time, business seconds")
    frt_p90_s: float | None = Field(description="90th percentile first response time, business seconds")
    frt_wall_median_s: float | None = Field(
        default=None, description="median first response time in clock seconds: tells a reply outside "
        "business hours (0 business seconds) from an instant one")
    resolution_median_s: float | None = Field(description="median resolution time, business seconds")
    resolution_p90_s: float | None = Field(description="90th percentile resolution time, business seconds")
    sla_compliance: Rate = Field(description="share of escalated conversations without any SLA breach")
    containment_rate: Rate = Field(description="share of conversations the bot handled alone to the end")
    escalation_rate: Rate = Field(description="share of conversations that reached the people")
    recontact_rate_7d: Rate = Field(description="share of resolved conversations whose customer came back "
                                                "within 7 days")
    top_complaint_reasons: list[ReasonCount] = Field(description="the five most frequent complaint reasons")
    escalations_by_reason: list[ReasonCount]
    after_delivery: AfterDeliveryStats
    nps: float | None = Field(default=None, description="Net Promoter Score of the NPS answers given in the "
                              "period: % promoters (9–10) − % detractors (0–6), −100…100; null without "
                              "answers. Shop-wide: only the channel filter applies (the survey's channel)")
    nps_promoters: int = Field(default=0, description="NPS answers of 9 or 10")
    nps_passives: int = Field(default=0, description="NPS answers of 7 or 8")
    nps_detractors: int = Field(default=0, description="NPS answers of 0 to 6")
    repeat_purchase_rate_90d: Rate = Field(
        default=None, description="of the customers whose first purchase falls in the period and is at least "
        "90 days old, the share who bought again within 90 days (shop-wide, from orders); null without any")
    volume: VolumeSeries
    counts: ReportCounts
    generated_at: datetime


class AgentChoice(BaseModel):
    """An agent the caller may filter by."""

    id: int
    name: str


class ReportOptions(BaseModel):
    """What the caller may filter the reports by."""

    channels: list[str]
    teams: list[str]
    agents: list[AgentChoice]
    timezone: str
    role: str
