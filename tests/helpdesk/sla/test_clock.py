"""The business clock: weekday hours, overnight gaps, holidays, DST-free Hồ Chí Minh City and Berlin
(which changes to summer time), daily windows, and the per-day cache agreeing with a plain count."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from helpdesk.sla.clock import (
    DEFAULT_SCHEDULE,
    BusinessClock,
    BusinessSchedule,
    DailyWindow,
    local_moment,
)
from helpdesk.sla.service import DEFAULT_POLICIES, SLAConfig

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
BERLIN = ZoneInfo("Europe/Berlin")
#: Monday to Saturday 08:00–21:00, the week a new shop starts with
SHOP = BusinessClock(DEFAULT_SCHEDULE, HCM)


def at(text: str, tz: ZoneInfo = HCM) -> datetime:
    """A local wall-clock moment as aware UTC (2026-03-02 is a Monday)."""
    return datetime.fromisoformat(text).replace(tzinfo=tz).astimezone(UTC)


def plain_business_seconds(a: datetime, b: datetime, schedule: BusinessSchedule, tz) -> float:
    """Business seconds counted the plain way, day by day without a cache: the reference."""
    if b < a:
        return -plain_business_seconds(b, a, schedule, tz)
    total = timedelta()
    day, last = a.astimezone(tz).date(), b.astimezone(tz).date()
    while day <= last:
        if day not in schedule.holidays:
            for start, end in schedule.week[day.weekday()]:
                overlap = min(local_moment(day, end, tz), b) - max(local_moment(day, start, tz), a)
                if overlap > timedelta():
                    total += overlap
        day += timedelta(days=1)
    return total.total_seconds()


# -- weekday hours and overnight gaps ------------------------------------------------------------------


def test_the_shop_is_open_in_its_hours_and_closed_outside_them():
    assert SHOP.is_open(at("2026-03-02 08:00")) and SHOP.is_open(at("2026-03-02 20:59"))
    assert not SHOP.is_open(at("2026-03-02 07:59")) and not SHOP.is_open(at("2026-03-02 21:00"))
    assert not SHOP.is_open(at("2026-03-08 12:00"))  # Sunday


def test_next_opening_is_now_while_open_and_the_next_morning_after_closing():
    assert SHOP.next_opening(at("2026-03-02 10:15")) == at("2026-03-02 10:15")
    assert SHOP.next_opening(at("2026-03-02 21:30")) == at("2026-03-03 08:00")
    assert SHOP.next_opening(at("2026-03-03 06:30")) == at("2026-03-03 08:00")
    assert SHOP.next_opening(at("2026-03-07 22:00")) == at("2026-03-09 08:00")  # Saturday night: Monday


def test_business_minutes_carry_over_the_night_and_the_closed_sunday():
    assert SHOP.add_minutes(at("2026-03-02 20:30"), 60) == at("2026-03-03 08:30")
    assert SHOP.add_minutes(at("2026-03-07 20:45"), 30) == at("2026-03-09 08:15")
    assert SHOP.add_minutes(at("2026-03-02 23:00"), 0) == at("2026-03-03 08:00")
    assert SHOP.seconds_between(at("2026-03-02 20:30"), at("2026-03-03 08:30")) == 3600
    assert SHOP.seconds_between(at("2026-03-03 08:30"), at("2026-03-02 20:30")) == -3600


def test_the_current_period_ends_at_closing_or_at_a_lunch_break():
    split = BusinessClock(BusinessSchedule.from_days({"mon": [("08:00", "12:00"), ("13:30", "17:30")]}), HCM)
    assert split.current_period(at("2026-03-02 11:00")) == (at("2026-03-02 08:00"), at("2026-03-02 12:00"))
    assert split.current_period(at("2026-03-02 12:30")) is None
    assert split.next_opening(at("2026-03-02 12:30")) == at("2026-03-02 13:30")
    assert split.add_minutes(at("2026-03-02 11:30"), 60) == at("2026-03-02 14:00")


# -- holidays ----------------------------------------------------------------------------------------------


def test_a_holiday_is_closed_whatever_its_weekday_says():
    clock = BusinessClock(BusinessSchedule(DEFAULT_SCHEDULE.week, frozenset({date(2026, 3, 3)})), HCM)
    assert not clock.is_open(at("2026-03-03 10:00"))
    assert clock.next_opening(at("2026-03-02 21:30")) == at("2026-03-04 08:00")
    assert clock.add_minutes(at("2026-03-02 20:30"), 60) == at("2026-03-04 08:30")
    assert clock.seconds_between(at("2026-03-02 20:30"), at("2026-03-04 08:30")) == 3600


def test_a_schedule_that_never_opens_is_refused():
    never = BusinessClock(BusinessSchedule(((),) * 7), HCM)
    with pytest.raises(ValueError, match="never opens"):
        never.add_minutes(at("2026-03-02 10:00"), 5)
    with pytest.raises(ValueError, match="never opens"):
        never.next_opening(at("2026-03-02 10:00"))


# -- time zones ------------------------------------------------------------------------------------------


def test_the_same_hours_in_berlin_open_at_berlin_time():
    berlin = BusinessClock(DEFAULT_SCHEDULE, BERLIN)
    assert berlin.next_opening(at("2026-03-02 21:30", BERLIN)) == at("2026-03-03 08:00", BERLIN)
    assert berlin.next_opening(at("2026-03-02 21:30", BERLIN)) == datetime(2026, 3, 3, 7, tzinfo=UTC)
    # 14:00 in Hồ Chí Minh City is 08:00 in Berlin (winter): Berlin has just opened.
    assert berlin.is_open(at("2026-03-02 14:00")) and not berlin.is_open(at("2026-03-02 13:59"))


def test_business_time_over_berlins_change_to_summer_time_counts_the_hours_that_passed():
    always = BusinessSchedule.from_days({d: [("00:00", "24:00")] for d in ("mon", "tue", "wed", "thu", "fri",
                                                                           "sat", "sun")})
    berlin = BusinessClock(always, BERLIN)
    # Sunday 29 March 2026 has 23 hours in Berlin; Hồ Chí Minh City has no summer time at all.
    assert berlin.seconds_between(at("2026-03-29 00:00", BERLIN), at("2026-03-30 00:00", BERLIN)) == 23 * 3600
    hcm = BusinessClock(always, HCM)
    assert hcm.seconds_between(at("2026-03-29 00:00"), at("2026-03-30 00:00")) == 24 * 3600
    assert berlin.add_minutes(at("2026-03-29 01:30", BERLIN), 60) == at("2026-03-29 03:30", BERLIN)


@pytest.mark.parametrize("tz", [HCM, BERLIN], ids=["Asia/Ho_Chi_Minh", "Europe/Berlin"])
def test_the_cached_count_agrees_with_a_plain_day_by_day_count(tz):
    schedule = BusinessSchedule.from_days(
        {"mon": [("08:00", "12:00"), ("13:30", "21:00")], "tue": [("08:00", "21:00")],
         "wed": [("08:00", "21:00")], "thu": [("00:00", "24:00")], "fri": [("08:00", "17:00")],
         "sat": [("09:00", "12:00")]},
        holidays={date(2026, 3, 26), date(2026, 4, 30)})
    clock = SLAConfig(DEFAULT_POLICIES, schedule, tz).clock
    rng = random.Random(7)
    origin = datetime(2026, 3, 20, tzinfo=UTC)  # the span crosses Europe's change to summer time
    for _ in range(300):
        a = origin + timedelta(seconds=rng.randrange(0, 30 * 86400))
        b = a + timedelta(seconds=rng.choice([rng.randrange(0, 7200), rng.randrange(0, 20 * 86400)]))
        assert clock.seconds_between(a, b) == pytest.approx(plain_business_seconds(a, b, schedule, tz), abs=1e-6)
        assert clock.seconds_between(b, a) == pytest.approx(-plain_business_seconds(a, b, schedule, tz), abs=1e-6)
        # Adding what lies between two moments lands no later than the end, with no business time left.
        between = clock.seconds_between(a, b)
        if between > 0:
            landed = clock.add_minutes(a, between / 60)
            assert landed <= b and clock.seconds_between(landed, b) == pytest.approx(0, abs=1e-6)


def test_an_answer_before_opening_counts_from_the_opening():
    monday_7am = datetime(2026, 3, 2, 0, tzinfo=UTC)
    assert SHOP.seconds_between(monday_7am, monday_7am + timedelta(minutes=70)) == 600
    saturday_8pm = datetime(2026, 3, 7, 13, tzinfo=UTC)
    # Sunday is closed.
    assert SHOP.seconds_between(saturday_8pm, saturday_8pm + timedelta(days=2)) == 3600 + 12 * 3600


# -- daily windows ----------------------------------------------------------------------------------------


def test_a_window_across_midnight_ends_the_next_morning():
    quiet = DailyWindow.parse("21:00-08:00", HCM)
    assert quiet.contains_time(time(22, 30)) and quiet.contains_time(time(3, 0))
    assert not quiet.contains_time(time(8, 0)) and not quiet.contains_time(time(20, 59, 59))
    assert quiet.contains(at("2026-03-02 22:30")) and not quiet.contains(at("2026-03-02 12:00"))
    assert quiet.first_moment_outside(at("2026-03-02 22:30")) == at("2026-03-03 08:00")
    assert quiet.first_moment_outside(at("2026-03-03 03:00")) == at("2026-03-03 08:00")
    assert quiet.first_moment_outside(at("2026-03-03 12:00")) == at("2026-03-03 12:00")


def test_a_window_is_read_in_its_own_zone():
    night = DailyWindow(time(22, 0), time(6, 0), HCM)  # a platform's night, in Vietnam
    assert night.contains(at("2026-03-02 17:00", BERLIN))  # 23:00 in Vietnam
    assert not night.contains(at("2026-03-02 02:00", BERLIN))  # 08:00 in Vietnam
    assert BusinessClock(DEFAULT_SCHEDULE, BERLIN).window("22:00-06:00").contains(at("2026-03-02 23:00", BERLIN))


def test_an_empty_window_is_none_and_nonsense_is_refused():
    assert DailyWindow.parse("", HCM) is None and DailyWindow.parse("08:00-08:00", HCM) is None
    with pytest.raises(ValueError, match="21:00-08:00"):
        DailyWindow.parse("late evening", HCM)
