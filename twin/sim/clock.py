"""Simulation time: float seconds from the fork's ``as_of``, and the one place it is converted.

Everything inside a model runs on ``env.now`` seconds counted from the snapshot the model was forked
from. UTC datetimes enter and leave simulation time only through :func:`to_sim` and :func:`to_utc`.
Shift calendars (site local time, daylight saving included) are turned into sorted availability
windows in simulation seconds by :func:`shift_windows`.

>>> from datetime import UTC, datetime
>>> t0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
>>> to_sim(t0, datetime(2026, 1, 5, 9, 30, tzinfo=UTC))
5400.0
>>> to_utc(t0, 5400.0).isoformat()
'2026-01-05T09:30:00+00:00'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from twin.calendar import shift_intervals
from twin.spec import ShiftCalendar

__all__ = [
    "HOUR_S",
    "Window",
    "local_hour_segments",
    "shift_windows",
    "subtract_windows",
    "to_sim",
    "to_utc",
]

HOUR_S = 3600.0
Window = tuple[float, float]


def to_sim(as_of: datetime, t: datetime) -> float:
    """Seconds from ``as_of`` to ``t`` (both timezone-aware)."""
    return (t - as_of).total_seconds()


def to_utc(as_of: datetime, s: float) -> datetime:
    """The UTC time ``s`` simulated seconds after ``as_of``."""
    return (as_of + timedelta(seconds=s)).astimezone(UTC)


def shift_windows(calendar: ShiftCalendar, tz: str, as_of: datetime, horizon_s: float) -> tuple[Window, ...]:
    """Planned production windows in ``[0, horizon_s]`` (simulation seconds), sorted and merged.

    The calendar arithmetic (local time, daylight saving, holidays, night shifts) is
    ``twin.calendar.shift_intervals``: the simulator and the KPIs share one definition of planned time.
    """
    end = as_of + timedelta(seconds=horizon_s)
    return tuple((to_sim(as_of, a), to_sim(as_of, b)) for a, b in shift_intervals(calendar, tz, as_of, end))


def subtract_windows(windows: Sequence[Window], holes: Iterable[Window]) -> tuple[Window, ...]:
    """``windows`` minus the union of ``holes`` (both in simulation seconds)."""
    result = list(windows)
    for h0, h1 in holes:
        nxt: list[Window] = []
        for a, b in result:
            if h1 <= a or h0 >= b:
                nxt.append((a, b))
                continue
            if a < h0:
                nxt.append((a, h0))
            if h1 < b:
                nxt.append((h1, b))
        result = nxt
    return tuple(result)


def local_hour_segments(tz: str, as_of: datetime, horizon_s: float) -> tuple[tuple[float, int, int], ...]:
    """Local clock hours covering ``[0, horizon_s]``: ``(start_s, weekday, hour)``, the first from 0."""
    zone = ZoneInfo(tz)
    segments: list[tuple[float, int, int]] = []
    local = as_of.astimezone(zone)
    segments.append((0.0, local.weekday(), local.hour))
    # the next local :00 (offsets may be whole, half or quarter hours); then step in UTC hours,
    # which handles daylight-saving jumps
    step = timedelta(minutes=1)
    t = as_of.astimezone(UTC).replace(second=0, microsecond=0) + step
    while t.astimezone(zone).minute != 0:
        t += step
    while (s := to_sim(as_of, t)) < horizon_s:
        lt = t.astimezone(zone)
        segments.append((s, lt.weekday(), lt.hour))
        t += timedelta(hours=1)
    return tuple(segments)
