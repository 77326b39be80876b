"""Planned production time: a site's shift calendar (local time) turned into UTC intervals.

Shifts are written in the site's local wall-clock time; the intervals returned here are aware UTC
datetimes, so a night shift across midnight and a shift across a daylight-saving change have their
true length (a 22:00-06:00 shift lasts 7 h on the night clocks spring forward). A holiday cancels
every shift that *starts* on that date. Overlapping shifts are merged, never counted twice.

>>> from datetime import UTC, datetime, time
>>> from twin.spec import Shift, ShiftCalendar
>>> cal = ShiftCalendar(shifts=(Shift(name="day", weekdays=frozenset(range(5)),
...                                   start=time(6), end=time(14)),))
>>> t0, t1 = datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 6, tzinfo=UTC)  # a Monday
>>> [(a.isoformat(), b.isoformat()) for a, b in shift_intervals(cal, "Europe/Berlin", t0, t1)]
[('2026-01-05T05:00:00+00:00', '2026-01-05T13:00:00+00:00')]
>>> planned_seconds(cal, "Europe/Berlin", t0, t1) / 3600
8.0
>>> in_shift(cal, "Europe/Berlin", datetime(2026, 1, 5, 12, 59, tzinfo=UTC))
True
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from twin.errors import ConfigError, Problem
from twin.spec import ShiftCalendar

__all__ = ["in_shift", "planned_seconds", "shift_intervals"]

_ONE_DAY = timedelta(days=1)


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError("timezone", [Problem(path="timezone", message="unknown time zone", got=tz)]) from exc


def _require_aware(name: str, t: datetime) -> None:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (got {t!r})")


def shift_intervals(
    calendar: ShiftCalendar, tz: str, t0: datetime, t1: datetime
) -> list[tuple[datetime, datetime]]:
    """The planned production intervals within ``[t0, t1)``, in UTC, sorted and non-overlapping.

    A shift whose ``end <= start`` ends on the next local day (``end == start`` is a 24 h shift).
    Holidays skip shifts by their start date. Intervals are clipped to ``[t0, t1)``.
    """
    _require_aware("t0", t0)
    _require_aware("t1", t1)
    if t1 <= t0 or not calendar.shifts:
        return []
    zone = _zone(tz)
    t0_utc, t1_utc = t0.astimezone(UTC), t1.astimezone(UTC)
    # A shift that started the local day before t0 can still be running at t0.
    day: date = t0_utc.astimezone(zone).date() - _ONE_DAY
    last_day: date = t1_utc.astimezone(zone).date()
    raw: list[tuple[datetime, datetime]] = []
    while day <= last_day:
        if day not in calendar.holidays:
            weekday = day.weekday()
            for shift in calendar.shifts:
                if weekday not in shift.weekdays:
                    continue
                end_day = day + _ONE_DAY if shift.end <= shift.start else day
                start = datetime.combine(day, shift.start, tzinfo=zone).astimezone(UTC)
                end = datetime.combine(end_day, shift.end, tzinfo=zone).astimezone(UTC)
                start, end = max(start, t0_utc), min(end, t1_utc)
                if end > start:
                    raw.append((start, end))
        day += _ONE_DAY
    raw.sort()
    merged: list[tuple[datetime, datetime]] = []
    for start, end in raw:
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def planned_seconds(calendar: ShiftCalendar, tz: str, t0: datetime, t1: datetime) -> float:
    """Planned production time in ``[t0, t1)``, in seconds (true elapsed time, DST included)."""
    return sum((end - start).total_seconds() for start, end in shift_intervals(calendar, tz, t0, t1))


def in_shift(calendar: ShiftCalendar, tz: str, t: datetime) -> bool:
    """Whether ``t`` falls inside a planned shift (start inclusive, end exclusive)."""
    return bool(shift_intervals(calendar, tz, t, t + timedelta(microseconds=1)))
