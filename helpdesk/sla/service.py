"""The SLA policies, the configured business hours, and the SLA clocks of a conversation.

The policies and the week of opening periods are what admins configure; ``load_config`` reads them
into an ``SLAConfig`` whose ``clock`` (``helpdesk.sla.clock.BusinessClock``) does the business-time
arithmetic. The rest moves a conversation's clocks through its life (escalated, answered, the
customer writes again, resolved, reopened) inside the caller's transaction; nothing here commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from helpdesk.audit import service as audit
from helpdesk.conversations.models import Conversation, Priority
from helpdesk.core.db import utcnow
from helpdesk.sla.clock import (
    DEFAULT_SCHEDULE,
    WEEKDAYS,
    BusinessClock,
    BusinessSchedule,
    Period,
    format_hhmm,
    period_problems,
)
from helpdesk.sla.models import (
    BusinessHoursPeriod,
    Holiday,
    SLAOutcome,
    SLAPolicy,
    SLAStatus,
    SLATarget,
    SLATimer,
    TimerStatus,
)

#: share of a target after which the check warns
WARNING_SHARE = 0.8
#: a clock stopped this close to its due time still met it (float sums of business seconds)
MET_TOLERANCE_S = 1e-3


# -- policies and the configuration of the clocks ---------------------------------------------------------


@dataclass(frozen=True)
class PolicyTargets:
    """The three targets of a priority, in business minutes."""

    first_response_minutes: int
    next_response_minutes: int
    resolution_minutes: int

    def minutes(self, target: SLATarget | str) -> int:
        """The target's business minutes."""
        return getattr(self, f"{SLATarget(target).value}_minutes")


DEFAULT_POLICIES: dict[str, PolicyTargets] = {
    Priority.urgent: PolicyTargets(15, 15, 240),
    Priority.high: PolicyTargets(30, 30, 480),
    Priority.normal: PolicyTargets(60, 60, 1440),
    Priority.low: PolicyTargets(240, 240, 4320),
}


@dataclass(frozen=True)
class SLAConfig:
    """Everything the clocks need: targets per priority, the schedule and the shop's time zone."""

    policies: dict[str, PolicyTargets]
    schedule: BusinessSchedule
    tz: tzinfo
    #: the business clock of the schedule and zone (one per config, so its per-day cache is shared)
    clock: BusinessClock = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "clock", BusinessClock(self.schedule, self.tz))

    def targets(self, priority: str) -> PolicyTargets:
        """The targets of a priority (an unknown priority is treated as normal)."""
        return self.policies.get(priority) or self.policies.get(Priority.normal) or DEFAULT_POLICIES[Priority.normal]

    def add(self, start: datetime, seconds: float) -> datetime:
        """``start`` plus business seconds."""
        return self.clock.add_minutes(start, max(seconds, 0.0) / 60)

    def between(self, a: datetime, b: datetime) -> float:
        """Business seconds from ``a`` to ``b``."""
        return self.clock.seconds_between(a, b)

    def expected_first_response(self, priority: str, now: datetime) -> datetime:
        """When a person should have answered a conversation escalated now (for telling the customer)."""
        return self.add(now, self.targets(priority).first_response_minutes * 60)


def _insert_ignoring_conflicts(session: Session, model: type, rows: list[dict[str, Any]]) -> None:
    """Insert rows, skipping those a concurrent process inserted first (by their unique key)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(model).on_conflict_do_nothing(), rows)


def ensure_default_policies(session: Session) -> None:
    """Create the default policy of every priority that has none yet."""
    have = set(session.exec(select(SLAPolicy.priority)).all())
    now = utcnow()
    _insert_ignoring_conflicts(session, SLAPolicy, [
        {"priority": str(priority), "first_response_minutes": targets.first_response_minutes,
         "next_response_minutes": targets.next_response_minutes, "resolution_minutes": targets.resolution_minutes,
         "created_at": now, "updated_at": now}
        for priority, targets in DEFAULT_POLICIES.items() if priority not in have])


def ensure_default_schedule(session: Session) -> None:
    """Create the default week when no business hours were ever set (a saved week is never empty)."""
    if session.exec(select(BusinessHoursPeriod.id).limit(1)).first() is not None:
        return
    _insert_ignoring_conflicts(session, BusinessHoursPeriod, [
        {"weekday": weekday, "start_minute": start, "end_minute": end}
        for weekday, day in enumerate(DEFAULT_SCHEDULE.week) for start, end in day])


def list_policies(session: Session) -> list[SLAPolicy]:
    """Every priority's policy, most urgent first (defaults created on first use)."""
    ensure_default_policies(session)
    session.flush()
    order = {p: n for n, p in enumerate((Priority.urgent, Priority.high, Priority.normal, Priority.low))}
    return sorted(session.exec(select(SLAPolicy)).all(), key=lambda p: order.get(p.priority, len(order)))


def upsert_policy(session: Session, priority: str, targets: PolicyTargets, *, actor_id: int | None) -> SLAPolicy:
    """Set a priority's targets (creating its policy if needed), recorded in the audit trail."""
    ensure_default_policies(session)
    session.flush()
    policy = session.exec(select(SLAPolicy).where(SLAPolicy.priority == priority)).one()
    before = {"first_response_minutes": policy.first_response_minutes,
              "next_response_minutes": policy.next_response_minutes, "resolution_minutes": policy.resolution_minutes}
    after = {"first_response_minutes": targets.first_response_minutes,
             "next_response_minutes": targets.next_response_minutes, "resolution_minutes": targets.resolution_minutes}
    for name, value in after.items():
        setattr(policy, name, value)
    policy.updated_at = utcnow()
    session.add(policy)
    session.flush()
    audit.record(session, "sla_policy_changed", "sla_policy", policy.id, actor_type="agent", actor_id=actor_id,
                 priority=priority, before=before, after=after)
    return policy


def load_schedule(session: Session) -> BusinessSchedule:
    """The saved week and holidays (the default week created on first use)."""
    ensure_default_schedule(session)
    session.flush()
    week: list[list[Period]] = [[] for _ in range(7)]
    for period in session.exec(select(BusinessHoursPeriod)).all():
        week[period.weekday].append((period.start_minute, period.end_minute))
    holidays = frozenset(session.exec(select(Holiday.day)).all())
    return BusinessSchedule(tuple(tuple(day) for day in week), holidays)


def holiday_names(session: Session) -> list[Holiday]:
    """The saved holidays in date order."""
    return list(session.exec(select(Holiday).order_by(col(Holiday.day))).all())


def replace_business_hours(
    session: Session, days: dict[str, list[tuple[str, str]]], holidays: list[tuple[date, str]], *,
    actor_id: int | None,
) -> BusinessSchedule:
    """Replace the week and the holidays (validated by the caller with ``period_problems``), audited."""
    problems = period_problems(days)
    if problems:
        raise ValueError("; ".join(problems))
    before = load_schedule(session)
    schedule = BusinessSchedule.from_days(days, {day for day, _ in holidays})
    for period in session.exec(select(BusinessHoursPeriod)).all():
        session.delete(period)
    for holiday in session.exec(select(Holiday)).all():
        session.delete(holiday)
    session.flush()
    for weekday, day in enumerate(schedule.week):
        for start, end in day:
            session.add(BusinessHoursPeriod(weekday=weekday, start_minute=start, end_minute=end))
    names = {}
    for day, name in holidays:
        names[day] = name  # a date given twice keeps its last name
    for day, name in sorted(names.items()):
        session.add(Holiday(day=day, name=name))
    session.flush()
    audit.record(session, "business_hours_changed", "business_hours", None, actor_type="agent", actor_id=actor_id,
                 before=describe_schedule(before), after=describe_schedule(schedule))
    return schedule


def describe_schedule(schedule: BusinessSchedule) -> dict[str, Any]:
    """The schedule as plain data (``{"mon": ["08:00-12:00"], …, "holidays": [...]}``) for the audit trail."""
    described: dict[str, Any] = {name: [f"{format_hhmm(a)}-{format_hhmm(b)}" for a, b in schedule.week[n]]
                                 for n, name in enumerate(WEEKDAYS)}
    described["holidays"] = sorted(day.isoformat() for day in schedule.holidays)
    return described


def load_config(session: Session, timezone: str | tzinfo) -> SLAConfig:
    """Policies and business hours as saved, in the shop's time zone."""
    tz = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
    policies = {p.priority: PolicyTargets(p.first_response_minutes, p.next_response_minutes, p.resolution_minutes)
                for p in list_policies(session)}
    return SLAConfig(policies, load_schedule(session), tz)


def expected_first_response(session: Session, priority: str, now: datetime, timezone: str | tzinfo) -> datetime:
    """When a person should answer a conversation of this priority escalated ``now``."""
    return load_config(session, timezone).expected_first_response(priority, now)


# -- one clock ------------------------------------------------------------------------------------------------


def _plan(timer: SLATimer, config: SLAConfig) -> None:
    """Work out a running clock's warning, due and next-check moments from what it has consumed."""
    left = timer.target_seconds - timer.consumed_seconds
    since = timer.running_since
    # An overdue clock (it ran past its due time before a pause) is due at once when it resumes.
    timer.due_at = config.add(since, left) if left > 0 else since
    until_warning = WARNING_SHARE * timer.target_seconds - timer.consumed_seconds
    timer.warn_at = config.add(since, until_warning) if until_warning > 0 else since
    if timer.breached_at is not None:
        timer.check_at = None
    elif timer.warned_at is not None:
        timer.check_at = timer.due_at
    else:
        timer.check_at = timer.warn_at


def start_timer(timer: SLATimer, at: datetime, config: SLAConfig, *, fresh: bool) -> None:
    """Run the clock from ``at``; ``fresh`` begins a new round (nothing consumed, nothing recorded)."""
    if fresh:
        timer.round = (timer.round or 0) + 1
        timer.consumed_seconds = 0.0
        timer.started_at = at
        timer.warned_at = timer.breached_at = None
    timer.status = TimerStatus.running
    timer.running_since = at
    timer.stopped_at = None
    timer.met = None
    _plan(timer, config)


def _fold(timer: SLATimer, at: datetime, config: SLAConfig) -> None:
    if timer.status == TimerStatus.running and timer.running_since is not None:
        timer.consumed_seconds += max(config.between(timer.running_since, at), 0.0)
    timer.running_since = None
    timer.due_at = timer.warn_at = timer.check_at = None


def pause_timer(timer: SLATimer, at: datetime, config: SLAConfig) -> None:
    """Stop counting (waiting on the customer) while keeping what was consumed."""
    if timer.status != TimerStatus.running:
        return
    _fold(timer, at, config)
    timer.status = TimerStatus.paused


def stop_timer(timer: SLATimer, at: datetime, config: SLAConfig) -> None:
    """End the clock and decide whether its target was met."""
    if timer.status == TimerStatus.stopped:
        return
    _fold(timer, at, config)
    timer.status = TimerStatus.stopped
    timer.stopped_at = at
    timer.met = timer.breached_at is None and timer.consumed_seconds <= timer.target_seconds + MET_TOLERANCE_S


def timer_left_seconds(timer: SLATimer, at: datetime, config: SLAConfig) -> float:
    """Business seconds left before the clock's due time, as of ``at`` (negative when overdue)."""
    consumed = timer.consumed_seconds
    if timer.status == TimerStatus.running and timer.running_since is not None:
        consumed += max(config.between(timer.running_since, at), 0.0)
    return timer.target_seconds - consumed


# -- a conversation's clocks through its life ----------------------------------------------------------------


@dataclass
class Clocks:
    """A conversation's clocks (locked for the transaction where the database can) and current outcome."""

    conversation: Conversation
    timers: dict[str, SLATimer]
    outcome: SLAOutcome | None

    def get(self, target: SLATarget) -> SLATimer | None:
        """The clock of a target, if it ever started."""
        return self.timers.get(target)


def load_clocks(session: Session, conversation_id: int) -> Clocks | None:
    """A conversation's clocks and latest outcome, the clocks locked against the check and other listeners."""
    # The clocks are locked before the conversation is written: the check takes them in the same
    # order (clocks, then conversations), so the two never wait on each other in a circle.
    timers = session.exec(select(SLATimer).where(SLATimer.conversation_id == conversation_id)
                          .order_by(col(SLATimer.id)).with_for_update()).all()
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        return None
    outcome = session.exec(select(SLAOutcome).where(SLAOutcome.conversation_id == conversation_id)
                           .order_by(col(SLAOutcome.cycle).desc())).first()
    return Clocks(conversation, {t.target: t for t in timers}, outcome)


def _timer(session: Session, clocks: Clocks, target: SLATarget, config: SLAConfig) -> SLATimer:
    timer = clocks.timers.get(target)
    if timer is None:
        priority = clocks.conversation.priority
        timer = SLATimer(conversation_id=clocks.conversation.id, target=target, round=0, priority=priority,
                         status=TimerStatus.stopped, target_seconds=config.targets(priority).minutes(target) * 60.0)
        clocks.timers[target] = timer
        session.add(timer)
    return timer


def _retarget(timer: SLATimer, priority: str, config: SLAConfig) -> None:
    timer.priority = priority
    timer.target_seconds = config.targets(priority).minutes(timer.target) * 60.0


def _sync_conversation(clocks: Clocks, *, new_cycle: bool = False) -> None:
    """Copy the running due times and the status onto the conversation (what the API and views read)."""
    conversation = clocks.conversation
    first = clocks.get(SLATarget.first_response)
    following = clocks.get(SLATarget.next_response)
    resolution = clocks.get(SLATarget.resolution)
    if first is not None and first.due_at is not None:
        conversation.first_response_due_at = first.due_at  # kept once answered: it is when the answer was due
    conversation.next_response_due_at = (following.due_at if following is not None
                                         and following.status == TimerStatus.running else None)
    # A paused or stopped resolution clock has no due time: nothing is counting down.
    conversation.resolution_due_at = (resolution.due_at if resolution is not None
                                      and resolution.status == TimerStatus.running else None)
    since = clocks.outcome.escalated_at if clocks.outcome is not None else None
    current = [t for t in clocks.timers.values() if since is None or t.started_at >= since]
    # A breach stays on the conversation until its next escalation, even after the late clock
    # restarted; a warning lasts while the warned clock runs.
    breached = (not new_cycle and conversation.sla_status == SLAStatus.breached) or any(
        t.breached_at is not None or t.met is False for t in current)
    warned = any(t.status == TimerStatus.running and t.warned_at is not None for t in current)
    conversation.sla_status = (SLAStatus.breached if breached else SLAStatus.warning if warned else SLAStatus.ok)


def start_cycle(session: Session, clocks: Clocks, config: SLAConfig, at: datetime) -> SLAOutcome:
    """A conversation reached the people: first-response and resolution clocks start from ``at``."""
    conversation = clocks.conversation
    if clocks.outcome is not None and clocks.outcome.ended_by is None:
        end_cycle(session, clocks, config, at, ended_by="escalated_again")
    priority = conversation.priority
    for target in (SLATarget.first_response, SLATarget.resolution):
        timer = _timer(session, clocks, target, config)
        _retarget(timer, priority, config)
        start_timer(timer, at, config, fresh=True)
    following = clocks.get(SLATarget.next_response)
    if following is not None:
        stop_timer(following, at, config)
    cycle = clocks.outcome.cycle + 1 if clocks.outcome is not None else 1
    outcome = SLAOutcome(conversation_id=conversation.id, cycle=cycle, priority=priority, team=conversation.team,
                         escalated_at=at, first_response_due_at=clocks.timers[SLATarget.first_response].due_at,
                         updated_at=at)
    session.add(outcome)
    clocks.outcome = outcome
    _sync_conversation(clocks, new_cycle=True)
    session.flush()
    return outcome


def record_agent_reply(session: Session, clocks: Clocks, config: SLAConfig, at: datetime) -> None:
    """An agent answered: the first-response (or next-response) clock stops, resolution waits on the customer."""
    outcome = clocks.outcome
    if outcome is None or outcome.ended_by is not None:
        return
    first = clocks.get(SLATarget.first_response)
    if first is not None and first.status == TimerStatus.running:
        stop_timer(first, at, config)
        outcome.first_response_at = at
        outcome.first_response_seconds = first.consumed_seconds
        outcome.first_response_met = first.met
    following = clocks.get(SLATarget.next_response)
    if following is not None and following.status == TimerStatus.running:
        stop_timer(following, at, config)
        outcome.next_responses += 1
        outcome.next_response_breaches += 0 if following.met else 1
    resolution = clocks.get(SLATarget.resolution)
    if resolution is not None:
        pause_timer(resolution, at, config)
    outcome.updated_at = at
    _sync_conversation(clocks)


def record_customer_message(session: Session, clocks: Clocks, config: SLAConfig, at: datetime) -> None:
    """The customer wrote while with the people: an answer is owed again and resolution counts again."""
    outcome = clocks.outcome
    if outcome is None or outcome.ended_by is not None:
        return
    first = clocks.get(SLATarget.first_response)
    answered = first is None or first.status == TimerStatus.stopped
    following = _timer(session, clocks, SLATarget.next_response, config) if answered else None
    if following is not None and following.status != TimerStatus.running:
        # The clock runs from the first unanswered message; later ones while it runs change nothing.
        _retarget(following, clocks.conversation.priority, config)
        start_timer(following, at, config, fresh=True)
    resolution = clocks.get(SLATarget.resolution)
    if resolution is not None and resolution.status == TimerStatus.paused:
        start_timer(resolution, at, config, fresh=False)
    outcome.updated_at = at
    _sync_conversation(clocks)


def end_cycle(session: Session, clocks: Clocks, config: SLAConfig, at: datetime, *, ended_by: str) -> None:
    """The people's part is over (resolved, handed back): every clock stops and the outcome is decided."""
    outcome = clocks.outcome
    for timer in clocks.timers.values():
        was_running = timer.status == TimerStatus.running
        stop_timer(timer, at, config)
        if outcome is None or outcome.ended_by is not None:
            continue
        if timer.target == SLATarget.first_response and was_running:
            # Never answered: a breach if the due time had passed, otherwise the target did not apply.
            outcome.first_response_met = False if not timer.met else None
        elif timer.target == SLATarget.next_response and was_running and not timer.met:
            outcome.next_response_breaches += 1
        elif timer.target == SLATarget.resolution:
            outcome.resolution_seconds = timer.consumed_seconds
            outcome.resolution_met = timer.met
    if outcome is not None and outcome.ended_by is None:
        outcome.resolved_at = at
        outcome.ended_by = ended_by
        outcome.updated_at = at
    _sync_conversation(clocks)


def resume_after_reopen(session: Session, clocks: Clocks, config: SLAConfig, at: datetime) -> None:
    """A resolved conversation came back to the queue: its resolution clock counts on from where it stopped."""
    outcome = clocks.outcome
    resolution = clocks.get(SLATarget.resolution)
    if outcome is None or resolution is None:
        start_cycle(session, clocks, config, at)
        return
    if resolution.status == TimerStatus.stopped:
        start_timer(resolution, at, config, fresh=False)
    outcome.resolved_at = None
    outcome.resolution_seconds = None
    outcome.resolution_met = None
    outcome.ended_by = None
    outcome.updated_at = at
    _sync_conversation(clocks)
