"""The business clock: the shop's opening hours, holidays and time zone, and the time arithmetic
everyone does with them.

Every part of CareDesk that asks "is the shop open", "when does it open next", "what is this moment
plus N business minutes" or "how much business time lies between these two moments" asks a
``BusinessClock``: the SLA due times, the handoff ETA the bot tells the customer, the reports'
business-time figures. Daily windows (care's quiet hours, a platform's night-time sending ban) are
evaluated here too, so local wall-clock arithmetic lives in one module.

Business time is real elapsed time inside opening periods, so a period that spans a DST change counts
the hours that really passed. The clock is pure: the configured week and holidays are read from the
database by ``helpdesk.sla.service.load_schedule``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
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


#: Monday to Saturday, 08:00–21:00, no holidays: the week a new shop starts with
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


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime given where an aware one is required")
    return moment.astimezone(UTC)


def local_moment(day: date, minute: int, tz: tzinfo) -> datetime:
    """The UTC moment of a local wall-clock minute (minute 1440 is the next midnight).

    A wall time that does not exist (the hour skipped in spring) resolves with the offset before the
    change, i.e. to the first real moment after the gap; an ambiguous one (autumn) to its first
    occurrence. Both are what a shop opening "at 02:30" would mean on such a day.
    """
    if minute >= MINUTES_PER_DAY:
        day, minute = day + timedelta(days=1), minute - MINUTES_PER_DAY
    return datetime.combine(day, time(minute // 60, minute % 60), tzinfo=tz).astimezone(UTC)


# -- the clock -----------------------------------------------------------------------------------------


class BusinessClock:
    """The shop's business time: a schedule read in a time zone.

    Each local day's opening periods are worked out once per clock (a report measures thousands of
    spans), so build a clock where the schedule is read and let it go with the request or transaction.
    """

    def __init__(self, schedule: BusinessSchedule, tz: tzinfo):
        self.schedule = schedule
        self.tz = tz
        self._openings: dict[date, tuple[tuple[datetime, datetime], ...]] = {}
        self._open_time: dict[date, timedelta] = {}

    def local(self, moment: datetime) -> datetime:
        """``moment`` in the shop's time zone."""
        return _aware(moment).astimezone(self.tz)

    def openings(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The local day's opening periods as UTC intervals (none on a holiday)."""
        found = self._openings.get(day)
        if found is None:
            periods = () if day in self.schedule.holidays else self.schedule.week[day.weekday()]
            found = self._openings[day] = tuple((local_moment(day, start, self.tz), local_moment(day, end, self.tz))
                                                for start, end in periods)
        return found

    def _periods_from(self, moment: datetime):
        """The opening periods that end after ``moment``, in order, as far as MAX_DAYS_AHEAD looks."""
        if not self.schedule.ever_open:
            raise ValueError("the schedule never opens")
        # Periods never cross local midnight, so nothing before the moment's local date can still be open.
        day = moment.astimezone(self.tz).date()
        for _ in range(MAX_DAYS_AHEAD):
            for opens, closes in self.openings(day):
                if closes > moment:
                    yield opens, closes
            day += timedelta(days=1)
        raise ValueError(f"no business time found within {MAX_DAYS_AHEAD} days (is every day a holiday?)")

    def current_period(self, moment: datetime) -> tuple[datetime, datetime] | None:
        """The opening period ``moment`` falls in, or None while the shop is closed."""
        moment = _aware(moment)
        for opens, closes in self.openings(moment.astimezone(self.tz).date()):
            if opens <= moment < closes:
                return opens, closes
        return None

    def is_open(self, moment: datetime) -> bool:
        """Whether the shop is open at ``moment``."""
        return self.current_period(moment) is not None

    def next_opening(self, moment: datetime) -> datetime:
        """``moment`` if the shop is open then, else the next moment it opens (UTC)."""
        moment = _aware(moment)
        opens, _closes = next(self._periods_from(moment))
        return max(opens, moment)

    def add_minutes(self, start: datetime, minutes: float) -> datetime:
        """The moment ``minutes`` of business time after ``start`` (a start outside hours counts from the
        next opening); returned in UTC."""
        if minutes < 0:
            raise ValueError("business time is only added forwards")
        cursor = _aware(start)
        left = timedelta(minutes=minutes)
        for opens, closes in self._periods_from(cursor):
            begin = max(opens, cursor)
            available = closes - begin
            if left <= available:
                return begin + left
            left -= available
        raise AssertionError("unreachable")

    def _open_between(self, day: date, a: datetime | None, b: datetime | None) -> timedelta:
        total = timedelta()
        for opens, closes in self.openings(day):
            overlap = min(closes, b or closes) - max(opens, a or opens)
            if overlap > timedelta():
                total += overlap
        return total

    def _whole_day(self, day: date) -> timedelta:
        total = self._open_time.get(day)
        if total is None:
            total = self._open_time[day] = self._open_between(day, None, None)
        return total

    def seconds_between(self, a: datetime, b: datetime) -> float:
        """Business seconds from ``a`` to ``b`` (negative when ``b`` is earlier)."""
        a, b = _aware(a), _aware(b)
        if b < a:
            return -self.seconds_between(b, a)
        first, last = a.astimezone(self.tz).date(), b.astimezone(self.tz).date()
        if first == last:
            return self._open_between(first, a, b).total_seconds()
        # Opening periods never cross local midnight: the days in between count whole.
        total = self._open_between(first, a, None) + self._open_between(last, None, b)
        day = first + timedelta(days=1)
        while day < last:
            total += self._whole_day(day)
            day += timedelta(days=1)
        return total.total_seconds()

    def window(self, value: str) -> DailyWindow | None:
        """A daily window (``"21:00-08:00"``) read in the shop's time zone; None for an empty value."""
        return DailyWindow.parse(value, self.tz)


def add_business_time(start: datetime, minutes: float, schedule: BusinessSchedule, tz: tzinfo) -> datetime:
    """The moment ``minutes`` of business time after ``start``, in UTC (see ``BusinessClock.add_minutes``)."""
    return BusinessClock(schedule, tz).add_minutes(start, minutes)


def business_seconds_between(a: datetime, b: datetime, schedule: BusinessSchedule, tz: tzinfo) -> float:
    """Business seconds from ``a`` to ``b`` (see ``BusinessClock.seconds_between``)."""
    return BusinessClock(schedule, tz).seconds_between(a, b)


# -- daily windows ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DailyWindow:
    """A stretch of every day in local wall-clock time, which may cross midnight (21:00-08:00).

    Care's quiet hours are one (in the shop's zone), a platform's night-time sending ban another (in the
    platform's zone, as its connector declares it).
    """

    starts: time
    ends: time
    tz: tzinfo

    @classmethod
    def parse(cls, value: str, tz: tzinfo) -> DailyWindow | None:
        """``"21:00-08:00"`` -> a window; an empty value (or equal ends) -> None, meaning no window."""
        if not value or not value.strip():
            return None
        try:
            start_text, end_text = (part.strip() for part in value.split("-"))
            starts, ends = time.fromisoformat(start_text), time.fromisoformat(end_text)
        except ValueError as exc:
            raise ValueError(f"a daily window must look like 21:00-08:00, got {value!r}") from exc
        return None if starts == ends else cls(starts, ends, tz)

    def contains_time(self, local: time) -> bool:
        """Whether a local wall-clock time falls inside the window."""
        if self.starts < self.ends:
            return self.starts <= local < self.ends
        return local >= self.starts or local < self.ends

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` falls inside the window, read in the window's zone."""
        return self.contains_time(_aware(moment).astimezone(self.tz).time())

    def end_after_local(self, local: datetime) -> datetime:
        """The end of the window ``local`` (an aware time in the window's zone, inside it) belongs to."""
        end = local.replace(hour=self.ends.hour, minute=self.ends.minute, second=0, microsecond=0)
        return end if end > local else end + timedelta(days=1)

    def first_moment_outside(self, moment: datetime) -> datetime:
        """``moment``, or the end of the window it falls in (UTC)."""
        if not self.contains(moment):
            return moment
        return self.end_after_local(_aware(moment).astimezone(self.tz)).astimezone(UTC)
