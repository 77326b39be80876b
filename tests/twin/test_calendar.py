"""Shift calendar: planned time in UTC across midnight, holidays, overlaps and DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from twin.calendar import in_shift, planned_seconds, shift_intervals
from twin.errors import ConfigError
from twin.spec import Shift, ShiftCalendar

NY = "America/New_York"
BERLIN = "Europe/Berlin"
EVERY_DAY = frozenset(range(7))
DAY = ShiftCalendar(shifts=(Shift(name="day", weekdays=frozenset(range(5)), start=time(6), end=time(14)),))
NIGHT = ShiftCalendar(shifts=(Shift(name="night", weekdays=EVERY_DAY, start=time(22), end=time(6)),))


def local(tz: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(tz))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# (calendar, tz, window start, window end (local), expected planned hours, reasoning)
PLANNED_CASES = [
    # Mon 5 .. Mon 12 Jan 2026: five 8 h day shifts, the weekend has none
    pytest.param(DAY, BERLIN, (2026, 1, 5), (2026, 1, 12), 40.0, id="week-of-day-shifts"),
    # Monday in New York: Sunday's night shift 00:00-06:00 (6 h) + Monday's 22:00-24:00 (2 h)
    pytest.param(NIGHT, NY, (2026, 1, 5), (2026, 1, 6), 8.0, id="across-midnight"),
    # Sat 7 Mar 12:00 .. Sun 8 Mar 12:00: clocks spring forward at 02:00, the 22:00-06:00 shift lasts 7 h
    pytest.param(NIGHT, NY, (2026, 3, 7, 12), (2026, 3, 8, 12), 7.0, id="dst-spring-forward"),
    # Sat 31 Oct 12:00 .. Sun 1 Nov 12:00: clocks fall back at 02:00, the shift lasts 9 h
    pytest.param(NIGHT, NY, (2026, 10, 31, 12), (2026, 11, 1, 12), 9.0, id="dst-fall-back"),
    # Berlin springs forward on Sun 29 Mar: the Monday after still has its 8 h shift
    pytest.param(DAY, BERLIN, (2026, 3, 29), (2026, 3, 31), 8.0, id="day-shift-after-dst"),
    # the window cuts a shift: Mon 10:00-12:00 inside 06:00-14:00 is 2 h
    pytest.param(DAY, BERLIN, (2026, 1, 5, 10), (2026, 1, 5, 12), 2.0, id="clipped"),
    # a Saturday: no shift
    pytest.param(DAY, BERLIN, (2026, 1, 10), (2026, 1, 11), 0.0, id="weekend"),
]


@pytest.mark.parametrize(("cal", "tz", "start", "end", "hours"), PLANNED_CASES)
def test_planned_seconds(cal, tz, start, end, hours):
    assert planned_seconds(cal, tz, local(tz, *start), local(tz, *end)) == hours * 3600


def test_intervals_across_midnight_are_in_utc():
    # New York is UTC-5 in January: 00:00-06:00 local = 05:00-11:00Z, 22:00-24:00 = 03:00-05:00Z next day
    got = shift_intervals(NIGHT, NY, local(NY, 2026, 1, 5), local(NY, 2026, 1, 6))
    assert got == [(utc(2026, 1, 5, 5), utc(2026, 1, 5, 11)), (utc(2026, 1, 6, 3), utc(2026, 1, 6, 5))]
    assert all(a.tzinfo is UTC and b.tzinfo is UTC for a, b in got)


def test_holiday_skips_shifts_by_start_date():
    cal = ShiftCalendar(shifts=NIGHT.shifts, holidays=frozenset({date(2026, 1, 5)}))
    # Sunday's shift (ending Monday 06:00) still counts, Monday's 22:00 shift is cancelled: 6 h
    assert planned_seconds(cal, NY, local(NY, 2026, 1, 5), local(NY, 2026, 1, 6)) == 6 * 3600
    day_cal = ShiftCalendar(shifts=DAY.shifts, holidays=frozenset({date(2026, 1, 6)}))
    # a week with Tuesday off: 4 × 8 h
    assert planned_seconds(day_cal, BERLIN, local(BERLIN, 2026, 1, 5), local(BERLIN, 2026, 1, 12)) == 32 * 3600


def test_overlapping_shifts_are_not_counted_twice():
    cal = ShiftCalendar(shifts=(
        Shift(name="early", weekdays=EVERY_DAY, start=time(6), end=time(14)),
        Shift(name="late", weekdays=EVERY_DAY, start=time(12), end=time(20)),
    ))
    # 06:00-20:00 = 14 h, not 16 h
    assert planned_seconds(cal, BERLIN, local(BERLIN, 2026, 1, 5), local(BERLIN, 2026, 1, 6)) == 14 * 3600
    assert len(shift_intervals(cal, BERLIN, local(BERLIN, 2026, 1, 5), local(BERLIN, 2026, 1, 6))) == 1


def test_end_equal_to_start_is_a_24_hour_shift():
    cal = ShiftCalendar(shifts=(Shift(name="24/7", weekdays=EVERY_DAY, start=time(0), end=time(0)),))
    # a full week, DST-free January: 168 h
    assert planned_seconds(cal, BERLIN, local(BERLIN, 2026, 1, 5), local(BERLIN, 2026, 1, 12)) == 168 * 3600


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (utc(2026, 1, 5, 5, 0), True),  # 06:00 Berlin: start inclusive
        (utc(2026, 1, 5, 12, 59), True),
        (utc(2026, 1, 5, 13, 0), False),  # 14:00 Berlin: end exclusive
        (utc(2026, 1, 5, 4, 59), False),
        (utc(2026, 1, 10, 9, 0), False),  # Saturday
    ],
)
def test_in_shift(t, expected):
    assert in_shift(DAY, BERLIN, t) is expected


def test_in_shift_at_night_after_midnight():
    assert in_shift(NIGHT, NY, local(NY, 2026, 1, 6, 3)) is True
    assert in_shift(NIGHT, NY, local(NY, 2026, 1, 6, 12)) is False


def test_empty_or_reversed_window():
    assert shift_intervals(DAY, BERLIN, utc(2026, 1, 5, 12), utc(2026, 1, 5, 12)) == []
    assert planned_seconds(DAY, BERLIN, utc(2026, 1, 6), utc(2026, 1, 5)) == 0.0
    assert planned_seconds(ShiftCalendar(shifts=()), BERLIN, utc(2026, 1, 5), utc(2026, 1, 6)) == 0.0


def test_unknown_time_zone_and_naive_times_are_errors():
    with pytest.raises(ConfigError, match="unknown time zone"):
        planned_seconds(DAY, "Mars/Olympus_Mons", utc(2026, 1, 5), utc(2026, 1, 6))
    with pytest.raises(ValueError, match="timezone-aware"):
        planned_seconds(DAY, BERLIN, datetime(2026, 1, 5), utc(2026, 1, 6))
