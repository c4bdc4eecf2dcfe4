"""The pure parts of the reports: periods, percentiles, volume buckets, CSV cells (business time is
tested with the clock, tests/helpdesk/sla/test_clock.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from helpdesk.core.errors import BadRequest
from helpdesk.reports.export import safe_cell
from helpdesk.reports.period import InvalidReportQuery, Period, parse_period
from helpdesk.reports.service import percentile, ratio, volume_buckets

HCM = "Asia/Ho_Chi_Minh"
NOW = datetime(2026, 3, 18, 3, 0, tzinfo=UTC)  # 10:00 on Wednesday 18 March in Hồ Chí Minh City


def test_the_default_period_is_the_last_thirty_shop_days_including_today():
    period = parse_period(None, None, HCM, NOW)
    assert period.start == datetime(2026, 2, 16, 17, tzinfo=UTC)
    assert period.end == datetime(2026, 3, 18, 17, tzinfo=UTC)
    assert (period.first_day, period.last_day) == (date(2026, 2, 17), date(2026, 3, 18))


def test_dates_are_whole_shop_days_and_to_includes_its_day():
    period = parse_period("2026-03-01", "2026-03-31", HCM, NOW)
    assert period.start == datetime(2026, 2, 28, 17, tzinfo=UTC)
    assert period.end == datetime(2026, 3, 31, 17, tzinfo=UTC)
    only_to = parse_period("", "2026-03-31", HCM, NOW)
    assert only_to.start == datetime(2026, 3, 1, 17, tzinfo=UTC)
    same_day = parse_period("2026-03-05", "2026-03-05", HCM, NOW)
    assert same_day.end - same_day.start == timedelta(days=1)


def test_date_times_keep_their_offset_and_a_bare_one_is_shop_time():
    assert parse_period("2026-03-05T08:00", "2026-03-05T09:30:00+00:00", HCM, NOW).start == datetime(
        2026, 3, 5, 1, tzinfo=UTC)
    assert parse_period("2026-03-05T08:00:00Z", None, HCM, NOW).start == datetime(2026, 3, 5, 8, tzinfo=UTC)
    assert parse_period("2026-03-05 08:00", None, HCM, NOW).start == datetime(2026, 3, 5, 1, tzinfo=UTC)
    # "+07:00" sent unencoded in a query string arrives as " 07:00".
    unencoded = parse_period("2026-03-05T08:00:00 07:00", None, HCM, NOW)
    assert unencoded.start == datetime(2026, 3, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize(("start", "end"), [("31/03/2026", None), ("2026-02-30", None), (None, "yesterday"),
                                            ("9999-01-01", None)])
def test_unreadable_bounds_are_invalid(start, end):
    with pytest.raises(InvalidReportQuery):
        parse_period(start, end, HCM, NOW)


def test_from_after_to_is_a_bad_request():
    with pytest.raises(BadRequest):
        parse_period("2026-03-02", "2026-03-01", HCM, NOW)


def test_percentiles_interpolate_between_neighbours():
    assert percentile([], 0.5) is None
    assert percentile([42.0], 0.9) == 42
    assert percentile([60, 600, 900, 1200], 0.5) == 750
    assert percentile([60, 600, 900, 1200], 0.9) == 1110
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == 9.1


def test_a_ratio_of_nothing_is_none():
    assert ratio(0, 0) is None
    assert ratio(0, 3) == 0.0
    assert ratio(3, 4) == 0.75


def _period(start: str, end: str) -> Period:
    return parse_period(start, end, HCM, NOW)


def test_volume_is_daily_then_weekly_then_monthly_then_yearly():
    granularity, starts = volume_buckets(_period("2026-03-01", "2026-03-31"))
    assert (granularity, len(starts)) == ("day", 31)
    assert (starts[0], starts[-1]) == (date(2026, 3, 1), date(2026, 3, 31))
    granularity, starts = volume_buckets(_period("2026-01-01", "2026-06-30"))
    assert (granularity, starts[0], starts[-1]) == ("week", date(2025, 12, 29), date(2026, 6, 29))
    granularity, starts = volume_buckets(_period("2025-01-15", "2026-06-30"))
    assert (granularity, len(starts)) == ("month", 18)
    assert (starts[0], starts[-1]) == (date(2025, 1, 1), date(2026, 6, 1))
    granularity, starts = volume_buckets(_period("2010-01-01", "2026-06-30"))
    assert (granularity, len(starts)) == ("year", 17)


@pytest.mark.parametrize(("value", "safe"), [
    ("=1+2", "'=1+2"), ("+84 912", "'+84 912"), ("-5", "'-5"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
    ("giao-tre", "giao-tre"), ("Nguyễn Thị Lan", "Nguyễn Thị Lan"), (600, 600), ("", ""),
])
def test_formula_like_cells_get_a_leading_quote(value, safe):
    assert safe_cell(value) == safe
