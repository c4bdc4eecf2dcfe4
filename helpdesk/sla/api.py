"""SLA routes: policies per priority, business hours and holidays, a conversation's clocks."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import Session, col, select

from helpdesk.conversations.service import get_conversation_for
from helpdesk.agents.deps import CurrentAdmin, CurrentAgent
from helpdesk.core.deps import ClockDep, SessionDep, SettingsDep
from helpdesk.core.errors import CareDeskError
from helpdesk.sla import service
from helpdesk.sla.models import SLAOutcome, SLATimer
from helpdesk.sla.schemas import (
    BusinessHoursPublic,
    BusinessHoursUpdate,
    BusinessPeriod,
    BusinessWeek,
    ConversationSLAPublic,
    HolidayItem,
    SLAOutcomePublic,
    SLAPoliciesPublic,
    SLAPolicyCreate,
    SLAPolicyPublic,
    SLATimerPublic,
)
from helpdesk.sla.clock import WEEKDAYS, format_hhmm
from helpdesk.sla.service import PolicyTargets

router = APIRouter(tags=["sla"])


class InvalidSchedule(CareDeskError):
    """The schedule sent cannot be used as it is."""

    status = 422


def _policies(session: Session) -> SLAPoliciesPublic:
    policies = [SLAPolicyPublic.model_validate(p) for p in service.list_policies(session)]
    return SLAPoliciesPublic(data=policies, count=len(policies))


@router.get("/api/sla-policies", response_model=SLAPoliciesPublic)
def list_policies(_agent: CurrentAgent, session: SessionDep) -> SLAPoliciesPublic:
    """The targets of every priority, in business minutes."""
    return _policies(session)


@router.post("/api/sla-policies", response_model=SLAPolicyPublic)
def upsert_policy(body: SLAPolicyCreate, admin: CurrentAdmin, session: SessionDep) -> SLAPolicyPublic:
    """Set a priority's targets (admins); clocks started from now on use them."""
    policy = service.upsert_policy(session, body.priority, PolicyTargets(
        body.first_response_minutes, body.next_response_minutes, body.resolution_minutes), actor_id=admin.id)
    return SLAPolicyPublic.model_validate(policy)


def _business_hours(session: Session, timezone: str) -> BusinessHoursPublic:
    schedule = service.load_schedule(session)
    week = BusinessWeek(**{name: [BusinessPeriod(start=format_hhmm(a), end=format_hhmm(b))
                                  for a, b in schedule.week[n]] for n, name in enumerate(WEEKDAYS)})
    holidays = [HolidayItem(date=h.day, name=h.name) for h in service.holiday_names(session)]
    return BusinessHoursPublic(timezone=timezone, week=week, holidays=holidays)


@router.get("/api/business-hours", response_model=BusinessHoursPublic)
def read_business_hours(_agent: CurrentAgent, session: SessionDep, settings: SettingsDep) -> BusinessHoursPublic:
    """Opening periods per weekday and holidays, in the shop's time zone."""
    return _business_hours(session, settings.shop.timezone)


@router.put("/api/business-hours", response_model=BusinessHoursPublic)
def replace_business_hours(
    body: BusinessHoursUpdate, admin: CurrentAdmin, session: SessionDep, settings: SettingsDep
) -> BusinessHoursPublic:
    """Replace the week and the holidays (admins); clocks started from now on use them."""
    timezone = settings.shop.timezone
    if body.timezone is not None and body.timezone != timezone:
        raise InvalidSchedule(f"the time zone is the shop's setting ({timezone}); set CAREDESK_SHOP__TIMEZONE "
                              "to change it")
    service.replace_business_hours(session, body.week.as_days(), [(h.date, h.name) for h in body.holidays],
                                   actor_id=admin.id)
    return _business_hours(session, timezone)


@router.get("/api/conversations/{conversation_id}/sla", response_model=ConversationSLAPublic)
def read_conversation_sla(
    conversation_id: int, agent: CurrentAgent, session: SessionDep, settings: SettingsDep, clock: ClockDep
) -> ConversationSLAPublic:
    """A conversation's clocks: what each target has consumed and has left, paused or running."""
    conversation = get_conversation_for(session, agent, conversation_id)
    config = service.load_config(session, settings.shop.timezone)
    now = clock.now()
    timers = session.exec(select(SLATimer).where(SLATimer.conversation_id == conversation.id)
                          .order_by(col(SLATimer.id))).all()
    outcome = session.exec(select(SLAOutcome).where(SLAOutcome.conversation_id == conversation.id)
                           .order_by(col(SLAOutcome.cycle).desc())).first()
    return ConversationSLAPublic(
        conversation_id=conversation.id, sla_status=conversation.sla_status,
        first_response_due_at=conversation.first_response_due_at,
        next_response_due_at=conversation.next_response_due_at, resolution_due_at=conversation.resolution_due_at,
        timers=[SLATimerPublic(**t.model_dump(include=set(SLATimerPublic.model_fields) - {"left_seconds"}),
                               left_seconds=service.timer_left_seconds(t, now, config)) for t in timers],
        outcome=SLAOutcomePublic.model_validate(outcome) if outcome is not None else None,
    )
