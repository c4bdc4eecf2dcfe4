"""API shapes for segments, and the conditions a segment's definition is made of.

A definition is a list of conditions, all of which must hold. Each condition is a small JSON object
told apart by ``kind``; ``"not": true`` turns any of them around. What each one means exactly is in
``helpdesk/segments/conditions.py``, which turns them into SQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

#: the most conditions one definition may have (a definition is read by people, and each is a subquery)
MAX_CONDITIONS = 20
#: the furthest back a day count may reach (ten years: more is a typo)
MAX_DAYS = 3650


class _Condition(BaseModel):
    """What every condition has: ``not`` to match the customers it does not match."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    negate: bool = Field(False, alias="not", description="match the customers this condition does not match")


def _check_range(low: float | None, high: float | None, low_name: str, high_name: str) -> None:
    if low is not None and high is not None and low > high:
        raise ValueError(f"{low_name} ({low}) is more than {high_name} ({high})")


class _DaysAgo(_Condition):
    """A window counted in whole days back from now: from ``from_days_ago`` (the recent edge, default
    now) to ``to_days_ago`` (the old edge, default no limit), both included."""

    from_days_ago: int | None = Field(None, ge=0, le=MAX_DAYS)
    to_days_ago: int | None = Field(None, ge=0, le=MAX_DAYS)

    @model_validator(mode="after")
    def _window(self):
        _check_range(self.from_days_ago, self.to_days_ago, "from_days_ago", "to_days_ago")
        return self


class Bought(_DaysAgo):
    """Bought ``product`` (a SKU or a product's name; none: any order) within the window. A purchase is
    an order neither cancelled nor returned, dated when it was placed."""

    kind: Literal["bought"]
    product: str | None = Field(None, min_length=1, max_length=200)

    @field_validator("product")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("product is blank: give a SKU or a product name, or leave it out for any order")
        return value.strip() if value is not None else None


class LastOrder(_DaysAgo):
    """The customer's latest purchase falls in the window (a customer who never bought does not match)."""

    kind: Literal["last_order"]


class _MinMax(_Condition):
    @model_validator(mode="after")
    def _bounds(self):
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        _check_range(self.min, self.max, "min", "max")
        return self


class OrderCount(_MinMax):
    """How many purchases the customer made, ever, between ``min`` and ``max`` (both included)."""

    kind: Literal["order_count"]
    min: int | None = Field(None, ge=0, le=1_000_000)
    max: int | None = Field(None, ge=0, le=1_000_000)


class TotalSpent(_MinMax):
    """What the customer's purchases came to, in VND, between ``min`` and ``max`` (both included)."""

    kind: Literal["total_spent"]
    min: int | None = Field(None, ge=0, le=10**15)
    max: int | None = Field(None, ge=0, le=10**15)


class OpenComplaint(_Condition):
    """A conversation of the customer's that is not resolved carries a complaint reason (a complaint
    intent, a complaint escalation, or a tag: the reports' definition)."""

    kind: Literal["open_complaint"]


class Nps(_Condition):
    """The customer's latest NPS answer is in ``category`` (promoter 9–10, passive 7–8, detractor
    0–6)."""

    kind: Literal["nps"]
    category: Literal["promoter", "passive", "detractor"]


class Csat(_MinMax):
    """The customer's latest CSAT rating (1–5 stars, after a conversation) is between ``min`` and
    ``max``."""

    kind: Literal["csat"]
    min: int | None = Field(None, ge=1, le=5)
    max: int | None = Field(None, ge=1, le=5)


class Channel(_Condition):
    """The customer has an identity on ``channel`` ("zalo": on Zalo OA or the Zalo bot)."""

    kind: Literal["channel"]
    channel: Literal["telegram", "facebook", "zalo", "zalo_oa", "zalo_bot", "webchat", "email", "cli", "zns"]


class Tag(_Condition):
    """One of the customer's conversations carries ``tag`` (tags are kept lower case)."""

    kind: Literal["tag"]
    tag: str = Field(min_length=1, max_length=64)

    @field_validator("tag")
    @classmethod
    def _normalise(cls, value: str) -> str:
        value = value.strip().lower()
        if not value:
            raise ValueError("tag is blank")
        return value


class OptedOut(_Condition):
    """The customer asked for no proactive care messages ("dừng", "stop")."""

    kind: Literal["opted_out"]


Condition = Annotated[Bought | LastOrder | OrderCount | TotalSpent | OpenComplaint | Nps | Csat | Channel
                      | Tag | OptedOut, Field(discriminator="kind")]
Definition = Annotated[list[Condition], Field(min_length=1, max_length=MAX_CONDITIONS)]
DEFINITION = TypeAdapter(Definition)


def stored_definition(conditions: list[Any]) -> list[dict[str, Any]]:
    """The definition as it is stored and shown: each condition with its kind, ``not`` only when set,
    and the fields given."""
    stored = []
    for condition in conditions:
        data = condition.model_dump(by_alias=True, exclude_none=True)
        if not data.get("not"):
            data.pop("not", None)
        stored.append({"kind": data.pop("kind"), **data})
    return stored


class SegmentCreate(BaseModel):
    """A new segment."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    definition: Definition

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name is blank")
        return value.strip()


class SegmentUpdate(BaseModel):
    """What may change on a segment (fields left out stay as they are)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    definition: Definition | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("name is blank")
        return value.strip() if value is not None else None


class SegmentPreviewRequest(BaseModel):
    """A definition to try before saving it."""

    model_config = ConfigDict(extra="forbid")

    definition: Definition


class SegmentPublic(BaseModel):
    """A saved segment."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None
    definition: list[dict[str, Any]]
    created_by: int | None
    created_at: datetime
    updated_at: datetime


class SegmentsPublic(BaseModel):
    """Every saved segment, by name."""

    data: list[SegmentPublic]
    count: int


class SegmentMember(BaseModel):
    """One customer of a preview: enough to recognise them, the phone masked."""

    id: int
    name: str | None
    phone: str | None = Field(description="masked: the first three and last three digits shown")
    channels: list[str]
    last_order_at: datetime | None = Field(description="the latest purchase (not cancelled or returned)")


class SegmentPreview(BaseModel):
    """How many customers a definition matches now, and up to 20 of them (lowest ids first)."""

    count: int
    sample: list[SegmentMember]
