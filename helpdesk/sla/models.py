"""SLA tables: policies, business hours and holidays, the running clocks, recorded warnings and
breaches, and one outcome row per escalation for the compliance reports."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from helpdesk.core.types import created_at_field, timestamp_field


class SLATarget(StrEnum):
    """The three promises made to a customer who asked for a person."""

    first_response = "first_response"
    next_response = "next_response"
    resolution = "resolution"


class SLAStatus(StrEnum):
    """How a conversation stands against its targets (the ``sla_status`` of the API)."""

    ok = "ok"
    warning = "warning"
    breached = "breached"


class TimerStatus(StrEnum):
    """Whether a clock is counting."""

    running = "running"
    paused = "paused"  # waiting on the customer: business time does not count against the shop
    stopped = "stopped"


class SLAEventKind(StrEnum):
    """What the periodic check found."""

    warning = "warning"
    breach = "breach"


class SLAPolicy(SQLModel, table=True):
    """Targets for one priority, in business minutes."""

    __tablename__ = "sla_policies"

    id: int | None = Field(default=None, primary_key=True)
    priority: str = Field(max_length=10, unique=True)
    first_response_minutes: int
    next_response_minutes: int
    resolution_minutes: int
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class BusinessHoursPeriod(SQLModel, table=True):
    """One opening period of a weekday in the shop's time zone (a day may have several)."""

    __tablename__ = "business_hours"
    # The unique key lets two processes create the default week at once without doubling it.
    __table_args__ = (UniqueConstraint("weekday", "start_minute", name="uq_business_hours_weekday_start"),)

    id: int | None = Field(default=None, primary_key=True)
    weekday: int  # 0 = Monday … 6 = Sunday, as date.weekday()
    start_minute: int  # minutes after local midnight
    end_minute: int  # up to 1440 (24:00)


class Holiday(SQLModel, table=True):
    """A local date on which the shop is closed whatever the weekday says."""

    __tablename__ = "holidays"

    day: date = Field(primary_key=True)
    name: str = Field(default="", max_length=200)


class SLATimer(SQLModel, table=True):
    """The clock of one target of one conversation.

    Elapsed business time is kept as the seconds of finished running stretches (``consumed_seconds``)
    plus the stretch running since ``running_since``; pausing folds the stretch in, resuming starts a
    new one and pushes the due time by the business time spent paused. ``check_at`` is the next moment
    the periodic check has something to do (the warning, then the breach), so the check reads an index
    range and never touches a clock that has nothing due.
    """

    __tablename__ = "sla_timers"
    __table_args__ = (
        UniqueConstraint("conversation_id", "target", name="uq_sla_timers_conversation_target"),
        Index("ix_sla_timers_check_at", "check_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id")
    target: str = Field(max_length=16)
    #: bumped each time the clock starts afresh (a new escalation, a new unanswered customer message);
    #: warnings and breaches are recorded once per round
    round: int = 1
    status: str = Field(default=TimerStatus.stopped, max_length=8)  # until it first runs
    priority: str = Field(max_length=10)
    target_seconds: float
    consumed_seconds: float = 0.0
    started_at: datetime = created_at_field()
    running_since: datetime | None = timestamp_field()
    warn_at: datetime | None = timestamp_field()
    due_at: datetime | None = timestamp_field()
    check_at: datetime | None = timestamp_field()
    warned_at: datetime | None = timestamp_field()
    breached_at: datetime | None = timestamp_field()
    stopped_at: datetime | None = timestamp_field()
    met: bool | None = None


class SLAEvent(SQLModel, table=True):
    """A warning or breach found by the check, recorded exactly once per clock round."""

    __tablename__ = "sla_events"
    __table_args__ = (
        UniqueConstraint("conversation_id", "target", "round", "kind", name="uq_sla_events_once"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id")
    target: str = Field(max_length=16)
    round: int = 1
    kind: str = Field(max_length=8)
    due_at: datetime | None = timestamp_field()
    created_at: datetime = created_at_field(index=True)


class SLAOutcome(SQLModel, table=True):
    """How one escalation of a conversation did against its targets; what compliance reports read.

    ``*_met`` is None while undecided (or when a target never applied, e.g. resolved without a reply
    before the first-response due time); ``*_seconds`` are business seconds, paused time excluded.
    """

    __tablename__ = "sla_outcomes"
    __table_args__ = (
        UniqueConstraint("conversation_id", "cycle", name="uq_sla_outcomes_conversation_cycle"),
        Index("ix_sla_outcomes_escalated_at", "escalated_at"),
        Index("ix_sla_outcomes_resolved_at", "resolved_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id")
    #: 1 for the first escalation of the conversation, 2 after it went back to the bot and came again…
    cycle: int = 1
    priority: str = Field(max_length=10)
    team: str | None = Field(default=None, max_length=100)
    escalated_at: datetime = created_at_field()
    first_response_due_at: datetime | None = timestamp_field()
    first_response_at: datetime | None = timestamp_field()
    first_response_seconds: float | None = None
    first_response_met: bool | None = None
    next_responses: int = 0
    next_response_breaches: int = 0
    resolved_at: datetime | None = timestamp_field()
    resolution_seconds: float | None = None
    resolution_met: bool | None = None
    #: "resolved" or "handed_back" once the people's part is over
    ended_by: str | None = Field(default=None, max_length=16)
    updated_at: datetime = created_at_field()
