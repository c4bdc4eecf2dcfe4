"""The period a report covers: ``from``/``to`` as typed (dates or date-times, in the shop's time zone)
read into a half-open interval of UTC moments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from helpdesk.core.errors import BadRequest, CareDeskError
from helpdesk.reports.schemas import ReportPeriod
from helpdesk.sla.clock import local_moment

#: the default period: this many shop-local days up to and including today
DEFAULT_DAYS = 30
#: dates outside these years are typing mistakes, not periods
MIN_YEAR, MAX_YEAR = 1970, 2999

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A "+07:00" offset typed into a URL without encoding arrives as " 07:00".
_SPACED_OFFSET = re.compile(r"(T[\d:.]+) (\d{2}:?\d{2})$")


class InvalidReportQuery(CareDeskError):
    """A period or filter that cannot be read."""

    status = 422


@dataclass(frozen=True)
class Period:
    """A half-open interval of UTC moments and the shop time zone its days are read in."""

    start: datetime
    end: datetime
    timezone: str
    tz: tzinfo

    def public(self) -> ReportPeriod:
        """As the API shows it."""
        return ReportPeriod(from_=self.start, to=self.end, timezone=self.timezone)

    @property
    def first_day(self) -> date:
        """The shop-local day the period starts on."""
        return self.start.astimezone(self.tz).date()

    @property
    def last_day(self) -> date:
        """The shop-local day of the period's last moment."""
        return max((self.end - timedelta(microseconds=1)).astimezone(self.tz).date(), self.first_day)


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The UTC moment a shop-local day begins."""
    return local_moment(day, 0, tz)


def _parse_bound(name: str, text: str, tz: tzinfo, *, end: bool) -> datetime:
    """A ``from``/``to`` value as a UTC moment; a date is a whole shop-local day (``to`` includes it)."""
    value = text.strip()
    problem = (f"{name} must be an ISO date (2026-03-31) or date-time (2026-03-31T17:30:00+07:00), "
               f"got {text!r}")
    if _DATE.match(value):
        try:
            day = date.fromisoformat(value)
        except ValueError as exc:
            raise InvalidReportQuery(f"{problem}: {exc}") from exc
        if not MIN_YEAR <= day.year <= MAX_YEAR:
            raise InvalidReportQuery(f"{name} must be between the years {MIN_YEAR} and {MAX_YEAR}")
        return local_midnight(day + timedelta(days=1) if end else day, tz)
    try:
        moment = datetime.fromisoformat(_SPACED_OFFSET.sub(r"\1+\2", value))
    except ValueError as exc:
        raise InvalidReportQuery(problem) from exc
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise InvalidReportQuery(f"{name} must be between the years {MIN_YEAR} and {MAX_YEAR}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)  # a wall-clock time is the shop's
    return moment.astimezone(UTC)


def parse_period(from_text: str | None, to_text: str | None, timezone: str, now: datetime) -> Period:
    """The period of ``from``/``to`` (dates or date-times; either may be left out).

    Without ``to`` the period runs to the end of today (shop time); without ``from`` it starts
    ``DEFAULT_DAYS`` days before ``to``. ``from`` after ``to`` is refused.
    """
    tz = ZoneInfo(timezone)
    from_text = (from_text or "").strip() or None
    to_text = (to_text or "").strip() or None
    if to_text is None:
        end = local_midnight(now.astimezone(tz).date() + timedelta(days=1), tz)
    else:
        end = _parse_bound("to", to_text, tz, end=True)
    # A ``to`` date is a whole day: a ``from`` at or after the day's end comes after it.
    to_is_day = to_text is None or bool(_DATE.match(to_text))
    if from_text is None:
        last_day = (end - timedelta(microseconds=1)).astimezone(tz).date()
        start = local_midnight(last_day - timedelta(days=DEFAULT_DAYS - 1), tz)
    else:
        start = _parse_bound("from", from_text, tz, end=False)
    if start > end or (to_is_day and start == end):
        raise BadRequest(f"from ({start.isoformat()}) is after to ({end.isoformat()})")
    return Period(start=start, end=end, timezone=timezone, tz=tz)
