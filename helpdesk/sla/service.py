"""Business-time arithmetic and the SLA clocks of a conversation.

The first half is pure: given a weekly schedule (several periods a day), holidays and a time zone,
add business minutes to a moment and measure the business seconds between two moments. Business
time is real elapsed time inside opening periods, so a period that spans a DST change counts the
hours that really passed.

The second half moves a conversation's clocks through its life (escalated, answered, the customer
writes again, resolved, reopened) inside the caller's transaction; nothing here commits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from helpdesk.audit import service as audit
from helpdesk.conversations.models import Conversation, Priority
from helpdesk.core.db import utcnow
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

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
#: share of a target after which the check warns
WARNING_SHARE = 0.8
#: a clock stopped this close to its due time still met it (float sums of business seconds)
MET_TOLERANCE_S = 1e-3
#: how far ahead the arithmetic looks for an opening before deciding the schedule never opens
MAX_DAYS_AHEAD = 3 * 366

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


# -- the schedule --------------------------------------------------------------------------------------


Period = tuple[int, int]  # (start, end) in minutes after local midnight; end may be 1440


@dataclass(frozen=True)
class BusinessSchedule:
    """Opening periods per weekday (Monday first) and closed dates, in local time."""

    week: tuple[tuple[Period, ...], ...]
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if len(self.week) != 7:
            raise ValueError("a week has seven days")
        object.__setattr__(self, "week", tuple(tuple(sorted(day)) for day in self.week))

    @classmethod
    def from_days(cls, days: dict[str, list[tuple[str, str]]], holidays: frozenset[date] | set[date] = frozenset()
                  ) -> BusinessSchedule:
        """A schedule from ``{"mon": [("08:00", "12:00"), …], …}`` (days left out are closed)."""
        unknown = set(days) - set(WEEKDAYS)
        if unknown:
            raise ValueError(f"unknown weekday(s): {', '.join(sorted(unknown))}")
        week = tuple(tuple((parse_hhmm(start), parse_hhmm(end)) for start, end in days.get(name, ()))
                     for name in WEEKDAYS)
        return cls(week, frozenset(holidays))

    @property
    def ever_open(self) -> bool:
        """Whether any weekday has an opening period (else no clock could ever run)."""
        return any(end > start for day in self.week for start, end in day)


#: Monday to Saturday, 08:00–21:00, no holidays
DEFAULT_SCHEDULE = BusinessSchedule(tuple(((8 * 60, 21 * 60),) if n < 6 else () for n in range(7)))


def parse_hhmm(text: str) -> int:
    """Minutes after midnight of an ``HH:MM`` time (``24:00`` allowed, as the end of a day)."""
    match = _HHMM.match(text or "")
    if match is None:
        raise ValueError(f"{text!r} is not a time of day as HH:MM")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def format_hhmm(minutes: int) -> str:
    """``HH:MM`` of minutes after midnight."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def period_problems(days: dict[str, list[tuple[str, str]]]) -> list[str]:
    """Why a week of periods is unusable (bad times, start not before end, overlaps, never open)."""
    problems: list[str] = []
    any_period = False
    for name in WEEKDAYS:
        parsed: list[tuple[int, int, str]] = []
        for start, end in days.get(name, ()):
            try:
                a, b = parse_hhmm(start), parse_hhmm(end)
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
                continue
            if a >= b:
                problems.append(f"{name}: period {start}-{end} must start before it ends")
                continue
            parsed.append((a, b, f"{start}-{end}"))
        parsed.sort()
        for (_, end_a, label_a), (start_b, _, label_b) in zip(parsed, parsed[1:]):
            if start_b < end_a:
                problems.append(f"{name}: periods {label_a} and {label_b} overlap")
        any_period = any_period or bool(parsed)
    if not any_period and not problems:
        problems.append("at least one opening period is needed, or no SLA clock could ever run")
    return problems


def _local_moment(day: date, minute: int, tz: tzinfo) -> datetime:
    """The UTC moment of a local wall-clock minute (minute 1440 is the next midnight).

    A wall time that does not exist (the hour skipped in spring) resolves with the offset before the
    change, i.e. to the first real moment after the gap; an ambiguous one (autumn) to its first
    occurrence. Both are what a shop opening "at 02:30" would mean on such a day.
    """
    if minute >= MINUTES_PER_DAY:
        day, minute = day + timedelta(days=1), minute - MINUTES_PER_DAY
    local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=tz)
    return local.astimezone(UTC)


def _openings(day: date, schedule: BusinessSchedule, tz: tzinfo) -> list[tuple[datetime, datetime]]:
    """The day's opening periods as UTC intervals (none on a holiday)."""
    if day in schedule.holidays:
        return []
    return [(_local_moment(day, start, tz), _local_moment(day, end, tz))
            for start, end in schedule.week[day.weekday()]]


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime given where an aware one is required")
    return moment.astimezone(UTC)


def add_business_time(start: datetime, minutes: float, schedule: BusinessSchedule, tz: tzinfo) -> datetime:
    """The moment ``minutes`` of business time after ``start`` (a start outside hours counts from the
    next opening); returned in UTC."""
    if minutes < 0:
        raise ValueError("business time is only added forwards")
    if not schedule.ever_open:
        raise ValueError("the schedule never opens")
    cursor = _aware(start)
    left = timedelta(minutes=minutes)
    # Periods never cross local midnight, so nothing before the start's local date can still be open.
    day = cursor.astimezone(tz).date()
    for _ in range(MAX_DAYS_AHEAD):
        for opens, closes in _openings(day, schedule, tz):
            if closes <= cursor:
                continue
            begin = max(opens, cursor)
            available = closes - begin
            if left <= available:
                return begin + left
            left -= available
            cursor = closes
        day += timedelta(days=1)
    raise ValueError(f"no business time found within {MAX_DAYS_AHEAD} days (is every day a holiday?)")


def business_seconds_between(a: datetime, b: datetime, schedule: BusinessSchedule, tz: tzinfo) -> float:
    """Business seconds from ``a`` to ``b`` (negative when ``b`` is before ``a``)."""
    a, b = _aware(a), _aware(b)
    if b < a:
        return -business_seconds_between(b, a, schedule, tz)
    total = timedelta()
    day = a.astimezone(tz).date()
    last = b.astimezone(tz).date()
    while day <= last:
        for opens, closes in _openings(day, schedule, tz):
            overlap = min(closes, b) - max(opens, a)
            if overlap > timedelta():
                total += overlap
        day += timedelta(days=1)
    return total.total_seconds()


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

    def targets(self, priority: str) -> PolicyTargets:
        """The targets of a priority (an unknown priority is treated as normal)."""
        return self.policies.get(priority) or self.policies.get(Priority.normal) or DEFAULT_POLICIES[Priority.normal]

    def add(self, start: datetime, seconds: float) -> datetime:
        """``start`` plus business seconds."""
        return add_business_time(start, max(seconds, 0.0) / 60, self.schedule, self.tz)

    def between(self, a: datetime, b: datetime) -> float:
        """Business seconds from ``a`` to ``b``."""
        return business_seconds_between(a, b, self.schedule, self.tz)

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
