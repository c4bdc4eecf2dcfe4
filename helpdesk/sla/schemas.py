"""API shapes for SLA policies, business hours and a conversation's clocks."""

from __future__ import annotations

from datetime import date as Date
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from helpdesk.conversations.models import Priority
from helpdesk.sla.clock import WEEKDAYS, period_problems

#: a year of business minutes is more than any promise a shop makes
MAX_TARGET_MINUTES = 525_600

TargetMinutes = Annotated[int, Field(gt=0, le=MAX_TARGET_MINUTES)]
TimeOfDay = Annotated[str, Field(pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$", examples=["08:00", "17:30"])]


class SLAPolicyBase(BaseModel):
    """Targets of one priority, in business minutes."""

    priority: Priority
    first_response_minutes: TargetMinutes
    next_response_minutes: TargetMinutes
    resolution_minutes: TargetMinutes


class SLAPolicyCreate(SLAPolicyBase):
    """A priority's targets to set (the policy of that priority is created or replaced)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _answer_before_resolving(self) -> SLAPolicyCreate:
        if self.first_response_minutes > self.resolution_minutes:
            raise ValueError("first_response_minutes cannot exceed resolution_minutes")
        return self


class SLAPolicyPublic(SLAPolicyBase):
    """A saved policy."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    updated_at: datetime


class SLAPoliciesPublic(BaseModel):
    """Every priority's policy and how many there are."""

    data: list[SLAPolicyPublic]
    count: int


class BusinessPeriod(BaseModel):
    """One opening period of a day, local time; ``end`` may be ``24:00``."""

    model_config = ConfigDict(extra="forbid")

    start: TimeOfDay
    end: TimeOfDay


class BusinessWeek(BaseModel):
    """Opening periods of each weekday (a day left out or empty is closed)."""

    model_config = ConfigDict(extra="forbid")

    mon: list[BusinessPeriod] = []
    tue: list[BusinessPeriod] = []
    wed: list[BusinessPeriod] = []
    thu: list[BusinessPeriod] = []
    fri: list[BusinessPeriod] = []
    sat: list[BusinessPeriod] = []
    sun: list[BusinessPeriod] = []

    def as_days(self) -> dict[str, list[tuple[str, str]]]:
        """``{"mon": [("08:00", "12:00"), …], …}``."""
        return {name: [(p.start, p.end) for p in getattr(self, name)] for name in WEEKDAYS}

    @model_validator(mode="after")
    def _usable(self) -> BusinessWeek:
        problems = period_problems(self.as_days())
        if problems:
            raise ValueError("; ".join(problems))
        return self


class HolidayItem(BaseModel):
    """A local date the shop is closed."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)

    date: Date
    name: str = Field(default="", max_length=200)


class BusinessHoursBase(BaseModel):
    """The weekly opening periods and the holidays."""

    week: BusinessWeek
    holidays: list[HolidayItem] = Field(default=[], max_length=1000)


class BusinessHoursUpdate(BusinessHoursBase):
    """The whole schedule, replacing the saved one. ``timezone`` may be sent back as read, but it
    is the shop's setting (``CAREDESK_SHOP__TIMEZONE``) and cannot be changed here."""

    model_config = ConfigDict(extra="forbid")

    timezone: str | None = None

    @field_validator("holidays")
    @classmethod
    def _each_date_once(cls, holidays: list[HolidayItem]) -> list[HolidayItem]:
        days = [h.date for h in holidays]
        repeated = sorted({d.isoformat() for d in days if days.count(d) > 1})
        if repeated:
            raise ValueError(f"holiday date(s) given twice: {', '.join(repeated)}")
        return holidays


class BusinessHoursPublic(BusinessHoursBase):
    """The schedule as saved, with the shop's time zone it is read in."""

    timezone: str


class SLATimerPublic(BaseModel):
    """One clock of a conversation; ``left_seconds`` is business time left as of the request."""

    model_config = ConfigDict(from_attributes=True)

    target: str
    status: str
    round: int
    priority: str
    target_seconds: float
    consumed_seconds: float
    left_seconds: float
    started_at: datetime
    warn_at: datetime | None
    due_at: datetime | None
    warned_at: datetime | None
    breached_at: datetime | None
    stopped_at: datetime | None
    met: bool | None


class SLAOutcomePublic(BaseModel):
    """How the current escalation does against its targets."""

    model_config = ConfigDict(from_attributes=True)

    cycle: int
    priority: str
    escalated_at: datetime
    first_response_due_at: datetime | None
    first_response_at: datetime | None
    first_response_seconds: float | None
    first_response_met: bool | None
    next_responses: int
    next_response_breaches: int
    resolved_at: datetime | None
    resolution_seconds: float | None
    resolution_met: bool | None
    ended_by: str | None


class ConversationSLAPublic(BaseModel):
    """A conversation's SLA: status, due times, every clock and the current outcome."""

    conversation_id: int
    sla_status: str
    first_response_due_at: datetime | None
    next_response_due_at: datetime | None
    resolution_due_at: datetime | None
    timers: list[SLATimerPublic]
    outcome: SLAOutcomePublic | None
