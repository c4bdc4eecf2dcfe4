"""Business-time arithmetic: several periods a day, weekends, holidays, starts outside hours, DST,
and a clock paused while waiting on the customer."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from helpdesk.sla.models import SLATimer, TimerStatus
from helpdesk.sla.clock import (
    DEFAULT_SCHEDULE,
    BusinessSchedule,
    add_business_time,
    business_seconds_between,
    period_problems,
)
from helpdesk.sla.service import (
    PolicyTargets,
    SLAConfig,
    pause_timer,
    start_timer,
    stop_timer,
)

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS_0800_1730 = BusinessSchedule.from_days({d: [("08:00", "17:30")] for d in ("mon", "tue", "wed", "thu", "fri")})
SPLIT_DAY = BusinessSchedule.from_days(
    {d: [("08:00", "12:00"), ("13:30", "17:30")] for d in ("mon", "tue", "wed", "thu", "fri")})
ALWAYS = BusinessSchedule.from_days({d: [("00:00", "24:00")] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})


def at(text: str, tz: ZoneInfo = HCM) -> datetime:
    """A local wall-clock moment as aware UTC (2026-03-02 is a Monday)."""
    return datetime.fromisoformat(text).replace(tzinfo=tz).astimezone(UTC)


def test_friday_1700_with_one_hour_target_is_due_monday_0830():
    due = add_business_time(at("2026-03-06 17:00"), 60, WEEKDAYS_0800_1730, HCM)
    assert due == at("2026-03-09 08:30")


def test_a_target_ending_exactly_at_closing_is_due_at_closing_not_next_opening():
    assert add_business_time(at("2026-03-06 16:30"), 60, WEEKDAYS_0800_1730, HCM) == at("2026-03-06 17:30")


def test_a_holiday_is_skipped_like_a_weekend():
    schedule = BusinessSchedule(WEEKDAYS_0800_1730.week, frozenset({date(2026, 3, 9)}))
    assert add_business_time(at("2026-03-06 17:00"), 60, schedule, HCM) == at("2026-03-10 08:30")


def test_time_runs_across_several_periods_of_a_day():
    assert add_business_time(at("2026-03-02 11:30"), 60, SPLIT_DAY, HCM) == at("2026-03-02 14:00")
    assert add_business_time(at("2026-03-02 09:00"), 6 * 60, SPLIT_DAY, HCM) == at("2026-03-02 16:30")


def test_a_target_spanning_a_weekend_counts_only_open_hours():
    # Friday 10:00 leaves 6 h that day (2 h before lunch, 4 h after); 8 h on Monday; 2 h on Tuesday.
    assert add_business_time(at("2026-03-06 10:00"), 16 * 60, SPLIT_DAY, HCM) == at("2026-03-10 10:00")


@pytest.mark.parametrize(("start", "due"), [
    ("2026-03-02 06:00", "2026-03-02 08:30"),  # before opening: the clock starts at 08:00
    ("2026-03-02 12:15", "2026-03-02 14:00"),  # at lunch: it starts at 13:30
    ("2026-03-02 19:00", "2026-03-03 08:30"),  # after closing: it starts next morning
    ("2026-03-07 10:00", "2026-03-09 08:30"),  # on Saturday: it starts on Monday
])
def test_a_start_outside_hours_counts_from_the_next_opening(start, due):
    assert add_business_time(at(start), 30, SPLIT_DAY, HCM) == at(due)


def test_a_zero_target_outside_hours_is_due_at_the_next_opening():
    assert add_business_time(at("2026-03-02 12:15"), 0, SPLIT_DAY, HCM) == at("2026-03-02 13:30")


def test_default_schedule_is_monday_to_saturday_0800_to_2100():
    assert add_business_time(at("2026-03-07 20:30"), 60, DEFAULT_SCHEDULE, HCM) == at("2026-03-09 08:30")
    assert DEFAULT_SCHEDULE.holidays == frozenset()


def test_business_seconds_between_counts_only_open_time():
    assert business_seconds_between(at("2026-03-06 17:00"), at("2026-03-09 08:30"), WEEKDAYS_0800_1730, HCM) == 3600
    assert business_seconds_between(at("2026-03-02 11:00"), at("2026-03-02 14:00"), SPLIT_DAY, HCM) == 5400
    assert business_seconds_between(at("2026-03-02 14:00"), at("2026-03-02 11:00"), SPLIT_DAY, HCM) == -5400
    assert business_seconds_between(at("2026-03-07 09:00"), at("2026-03-08 18:00"), SPLIT_DAY, HCM) == 0


@pytest.mark.parametrize("minutes", [1, 59.5, 60, 240, 480, 1440, 4320])
@pytest.mark.parametrize("start", ["2026-03-02 07:59", "2026-03-04 12:00", "2026-03-06 17:29", "2026-03-08 23:00"])
def test_adding_then_measuring_gives_the_target_back(start, minutes):
    due = add_business_time(at(start), minutes, SPLIT_DAY, HCM)
    assert business_seconds_between(at(start), due, SPLIT_DAY, HCM) == pytest.approx(minutes * 60, abs=1e-6)


def test_a_day_that_loses_an_hour_to_dst_has_23_business_hours_when_open_all_day():
    # Berlin moves to summer time at 02:00 on Sunday 29 March 2026.
    start = at("2026-03-28 12:00", BERLIN)
    due = add_business_time(start, 24 * 60, ALWAYS, BERLIN)
    assert due == start + timedelta(hours=24)
    assert due.astimezone(BERLIN).hour == 13
    assert business_seconds_between(at("2026-03-29 00:00", BERLIN), at("2026-03-30 00:00", BERLIN),
                                    ALWAYS, BERLIN) == 23 * 3600


def test_opening_hours_keep_their_wall_clock_times_across_a_dst_change():
    office = BusinessSchedule.from_days({d: [("08:00", "17:00")] for d in ("mon", "tue", "wed", "thu", "fri")})
    # Spring: Friday in winter time, Monday in summer time; 1 h on Friday, 1 h on Monday.
    due = add_business_time(at("2026-03-27 16:00", BERLIN), 120, office, BERLIN)
    assert due == at("2026-03-30 09:00", BERLIN)
    assert due == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    # Autumn: Berlin returns to winter time on Sunday 25 October 2026, which gains an hour.
    assert business_seconds_between(at("2026-10-24 00:00", BERLIN), at("2026-10-26 00:00", BERLIN),
                                    ALWAYS, BERLIN) == 49 * 3600
    assert add_business_time(at("2026-10-23 16:30", BERLIN), 60, office, BERLIN) == at("2026-10-26 08:30", BERLIN)


def test_a_schedule_that_never_opens_is_refused():
    with pytest.raises(ValueError, match="never opens"):
        add_business_time(at("2026-03-02 10:00"), 10, BusinessSchedule(((),) * 7), HCM)


@pytest.mark.parametrize(("days", "reason"), [
    ({"mon": [("08:00", "12:00"), ("11:00", "13:00")]}, "overlap"),
    ({"mon": [("12:00", "08:00")]}, "must start before it ends"),
    ({"mon": [("08:00", "08:00")]}, "must start before it ends"),
    ({"mon": [("8:00", "12:00")]}, "HH:MM"),
    ({"mon": [("08:00", "24:30")]}, "HH:MM"),
    ({}, "at least one opening period"),
])
def test_unusable_periods_are_explained(days, reason):
    problems = period_problems(days)
    assert problems and reason in "; ".join(problems)


def test_touching_periods_and_a_day_open_until_midnight_are_fine():
    assert period_problems({"mon": [("08:00", "12:00"), ("12:00", "24:00")]}) == []


def test_a_paused_clock_is_due_later_by_the_business_time_it_spent_paused():
    config = SLAConfig({"normal": PolicyTargets(60, 60, 60)}, WEEKDAYS_0800_1730, HCM)
    timer = SLATimer(conversation_id=1, target="resolution", round=0, priority="normal", target_seconds=3600)
    start_timer(timer, at("2026-03-06 17:00"), config, fresh=True)
    assert timer.due_at == at("2026-03-09 08:30")
    pause_timer(timer, at("2026-03-06 17:15"), config)  # the agent answered; waiting on the customer
    assert (timer.status, timer.consumed_seconds, timer.due_at, timer.check_at) == (
        TimerStatus.paused, 900, None, None)
    start_timer(timer, at("2026-03-09 10:00"), config, fresh=False)  # the customer wrote back
    assert timer.due_at == at("2026-03-09 10:45")
    assert timer.warn_at == at("2026-03-09 10:33")  # 80% of 60 minutes is 48: 15 spent, 33 to go
    stop_timer(timer, at("2026-03-09 10:40"), config)
    assert (timer.met, timer.consumed_seconds) == (True, 900 + 40 * 60)


def test_a_clock_stopped_after_its_due_time_missed_its_target():
    config = SLAConfig({"normal": PolicyTargets(60, 60, 60)}, SPLIT_DAY, HCM)
    timer = SLATimer(conversation_id=1, target="first_response", round=0, priority="normal", target_seconds=3600)
    start_timer(timer, at("2026-03-02 11:30"), config, fresh=True)
    stop_timer(timer, at("2026-03-02 14:01"), config)
    assert timer.met is False and timer.consumed_seconds == 3660
