"""Times as people read them: the site's local time with its zone, UTC on hover and in exports.

Every time the dashboard shows goes through here. A time belonging to a site is shown in that
site's zone (``SiteSpec.timezone``) with the zone's abbreviation, 24 h, ISO order
("2026-11-30 14:05 CET"); a time of the whole fleet says UTC. The exact UTC instant goes into the
element's ``title`` (``utc_title``). The global time control keeps its choice in the URL as UTC
ISO-8601 (``?at=`` or ``?from=&to=``): ``TimeChoice`` reads and writes it, ``preset_range`` turns
the presets (last hour, this shift, yesterday, last 7 days) into a range.

    >>> from datetime import UTC, datetime
    >>> t = datetime(2026, 11, 30, 13, 5, tzinfo=UTC)
    >>> fmt_datetime(t, "Europe/Paris"), fmt_datetime(t, "America/Chicago"), fmt_time(t, "UTC")
    ('2026-11-30 14:05 CET', '2026-11-30 07:05 CST', '13:05 UTC')
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from twin.calendar import shift_intervals
from twin.spec import ShiftCalendar

__all__ = [
    "FLEET_ZONE",
    "INPUT_FMT",
    "PRESETS",
    "TimeChoice",
    "fmt_datetime",
    "fmt_input",
    "fmt_time",
    "fmt_utc",
    "local",
    "parse_input",
    "parse_url_time",
    "preset_range",
    "url_time",
    "utc_title",
    "zone",
    "zone_abbr",
]

FLEET_ZONE = "UTC"  # times of the whole fleet (no single site) are shown in UTC, and say so
INPUT_FMT = "%Y-%m-%d %H:%M"  # what a time input shows and accepts: 24 h, ISO order, no AM/PM
PRESETS = ("live", "last-hour", "this-shift", "yesterday", "last-7-days")


@lru_cache(maxsize=64)
def zone(tz: str | None) -> ZoneInfo:
    """The zone named ``tz``; UTC for None, "" or a name the system does not know."""
    try:
        return ZoneInfo(tz or FLEET_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(FLEET_ZONE)


def local(ts: datetime, tz: str | None) -> datetime:
    """``ts`` (aware; naive is read as UTC) in the zone ``tz``."""
    aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
    return aware.astimezone(zone(tz))


def zone_abbr(ts: datetime, tz: str | None) -> str:
    """The zone's abbreviation at ``ts``: "CET" in winter, "CEST" in summer; "UTC" for UTC.

    >>> zone_abbr(datetime(2026, 7, 1, tzinfo=UTC), "Europe/Paris")
    'CEST'
    """
    return local(ts, tz).tzname() or "UTC"


def fmt_time(ts: datetime | None, tz: str | None, *, seconds: bool = False) -> str:
    """The time of day in ``tz`` with its zone: "14:05 CET" (``seconds``: "14:05:07 CET"); "–" for None."""
    if ts is None:
        return "–"
    t = local(ts, tz)
    return t.strftime("%H:%M:%S" if seconds else "%H:%M") + f" {t.tzname() or 'UTC'}"


def fmt_datetime(ts: datetime | None, tz: str | None, *, seconds: bool = False) -> str:
    """Date and time in ``tz`` with its zone: "2026-11-30 14:05 CET"; "–" for None."""
    if ts is None:
        return "–"
    t = local(ts, tz)
    return t.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + f" {t.tzname() or 'UTC'}"


def fmt_utc(ts: datetime | None) -> str:
    """The exact instant in UTC, ISO-8601 ("2026-11-30T13:05:07Z"): hover titles, links, exports."""
    if ts is None:
        return ""
    return local(ts, FLEET_ZONE).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_title(ts: datetime | None) -> str:
    """The hover text of a shown time: its UTC instant in words ("UTC 2026-11-30T13:05:07Z")."""
    return f"UTC {fmt_utc(ts)}" if ts is not None else ""


def url_time(ts: datetime) -> str:
    """A time as the URL carries it: UTC ISO-8601 to the second (``?at=2026-11-30T13:05:07Z``)."""
    return fmt_utc(ts)


def parse_url_time(text: str | None) -> datetime | None:
    """A URL's time (ISO-8601; without offset it is UTC, "Z" accepted), or None when absent or malformed.

    >>> parse_url_time("2026-11-30T13:05Z").isoformat(), parse_url_time("soon")
    ('2026-11-30T13:05:00+00:00', None)
    """
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def fmt_input(ts: datetime | None, tz: str | None) -> str:
    """A time as a 24 h ISO input shows it, in ``tz`` without the zone (the input's label says it)."""
    return local(ts, tz).strftime(INPUT_FMT) if ts is not None else ""


def parse_input(text: str | None, tz: str | None) -> datetime | None:
    """What a person typed ("2026-11-30 14:05", "2026-11-30T14:05:30") read in ``tz``, as UTC; None if not a time.

    An explicit offset or "Z" wins over ``tz``. A wall time that happens twice (the hour the clocks go
    back) is its first occurrence; one that never happens (the hour they go forward) is read with
    the offset before the change, as ``zoneinfo`` does.

    >>> parse_input("2026-11-30 14:05", "Europe/Paris").isoformat()
    '2026-11-30T13:05:00+00:00'
    """
    if not text or not text.strip():
        return None
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=zone(tz))
    return t.astimezone(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeChoice:
    """The global time control's choice: live (nothing set), a moment ``at``, or a range ``start``..``end``.

    A range's pages show the state at ``at`` when it lies in the range, else at ``end``.
    """

    at: datetime | None = None
    start: datetime | None = None
    end: datetime | None = None
    preset: str = ""

    @property
    def live(self) -> bool:
        return self.at is None and self.end is None

    def moment(self, now: datetime) -> datetime:
        """The moment the pages show: ``at``, else the range's end, else ``now``; never after ``now``."""
        t = self.at or self.end or now
        return min(t, now)

    def window(self, now: datetime, default: timedelta) -> tuple[datetime, datetime]:
        """The range the pages chart: the chosen one, else ``default`` up to the moment shown."""
        end = min(self.end or self.moment(now), now)
        start = self.start if self.start is not None and self.start < end else end - default
        return start, end

    @classmethod
    def from_search(cls, search: str | None) -> TimeChoice:
        """The choice in a URL's query string (``?at=``, ``?from=&to=``; ``start``/``end`` are read too)."""
        q = dict(parse_qsl((search or "").lstrip("?")))
        start = parse_url_time(q.get("from") or q.get("start"))
        end = parse_url_time(q.get("to") or q.get("end"))
        at = parse_url_time(q.get("at"))
        if start is not None and end is not None and end <= start:
            start = None
        return cls(at=at, start=start, end=end, preset=q.get("preset", ""))

    def search(self, current: str | None) -> str:
        """``current``'s query string with this choice in place of the old one (other keys kept, e.g. site)."""
        keep = [(k, v) for k, v in parse_qsl((current or "").lstrip("?"))
                if k not in ("at", "from", "to", "start", "end", "preset")]
        if self.start is not None:
            keep.append(("from", url_time(self.start)))
        if self.end is not None:
            keep.append(("to", url_time(self.end)))
        if self.at is not None:
            keep.append(("at", url_time(self.at)))
        if self.preset and not self.live:
            keep.append(("preset", self.preset))
        return "?" + urlencode(keep) if keep else ""


def _shift_start(calendar: ShiftCalendar | None, tz: str | None, now: datetime) -> datetime | None:
    """When the shift running at ``now`` began (None: no shift is running)."""
    if calendar is None:
        return None
    running = [(s, e) for s, e in shift_intervals(calendar, tz or FLEET_ZONE, now - timedelta(days=2), now)
               if e >= now]
    return running[-1][0] if running else None


def preset_range(name: str, now: datetime, tz: str | None = None,
                 calendar: ShiftCalendar | None = None) -> TimeChoice:
    """A preset of the header's time control as a range ending at ``now`` or before (in ``tz``'s days).

    "this shift" is the site's shift running now (from its calendar), else the last 8 hours;
    "yesterday" is the local calendar day before today in ``tz`` (23 or 25 h on the days the clocks change).

    >>> r = preset_range("yesterday", datetime(2026, 11, 30, 13, 5, tzinfo=UTC), "Europe/Paris")
    >>> fmt_datetime(r.start, "Europe/Paris"), fmt_datetime(r.end, "Europe/Paris")
    ('2026-11-29 00:00 CET', '2026-11-30 00:00 CET')
    """
    z = zone(tz)
    if name == "last-hour":
        return TimeChoice(start=now - timedelta(hours=1), end=now, preset=name)
    if name == "this-shift":
        begun = _shift_start(calendar, tz, now)
        return TimeChoice(start=begun or now - timedelta(hours=8), end=now, preset=name)
    if name == "yesterday":
        today: date = local(now, tz).date()
        start = datetime.combine(today - timedelta(days=1), time(0), z).astimezone(UTC)
        return TimeChoice(start=start, end=datetime.combine(today, time(0), z).astimezone(UTC), preset=name)
    if name == "last-7-days":
        return TimeChoice(start=now - timedelta(days=7), end=now, preset=name)
    return TimeChoice()
