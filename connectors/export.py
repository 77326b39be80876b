"""CSV export of history: series, events and the alarm journal, from any historian.

Each function writes one CSV (header first, UTC ISO-8601 times, values unformatted) to an open text
stream and returns the number of data rows. Text cells pass through ``spreadsheet_safe``: a cell a
spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab or CR first, e.g. an alarm
acknowledgement's comment ``=HYPERLINK(...)``) is written with a leading ``'``; numbers are kept.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import TextIO

from twin.codec import value_to_json
from twin.historian import ALARM_EVENT_KINDS, Historian, SeriesKey

__all__ = ["export_alarms", "export_events", "export_series", "parse_time", "spreadsheet_safe"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def spreadsheet_safe(value: object) -> str:
    """``value`` as a CSV cell no spreadsheet runs as a formula (OWASP "CSV injection").

    A text starting with ``= + - @``, a tab or a carriage return gets a leading ``'`` (shown as text,
    the rest unchanged); a plain number such as ``-3.5`` is left as it is. ``None`` is an empty cell.

    >>> print(spreadsheet_safe('=HYPERLINK("http://x","y")'), spreadsheet_safe("-3.5"), spreadsheet_safe("-1+2"))
    '=HYPERLINK("http://x","y") -3.5 '-1+2
    """
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def parse_time(text: str) -> datetime:
    """An ISO-8601 time from the command line; a time without offset is taken as UTC.

    >>> parse_time("2026-01-05T08:00").isoformat()
    '2026-01-05T08:00:00+00:00'
    >>> parse_time("2026-01-05T09:00+01:00").isoformat()
    '2026-01-05T08:00:00+00:00'
    """
    from datetime import UTC

    ts = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _iso(ts: datetime) -> str:
    return ts.isoformat()


def export_series(
    historian: Historian,
    keys: Sequence[SeriesKey],
    t0: datetime,
    t1: datetime,
    out: TextIO,
    *,
    max_points: int = 1_000_000,
) -> int:
    """One row per point: raw values when there are at most ``max_points`` per series, else buckets."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["ts", "site", "asset", "signal", "value", "min", "max", "count"])
    n = 0
    for res in historian.series(keys, t0, t1, max_points):
        k = res.key
        for p in res.points:
            w.writerow([_iso(p.ts), *(spreadsheet_safe(x) for x in (k.site, k.asset, k.signal)), repr(p.value),
                        repr(p.min), repr(p.max), p.count])
            n += 1
    return n


def export_events(historian: Historian, site: str | None, t0: datetime, t1: datetime, out: TextIO) -> int:
    """One row per event; ``data`` as JSON."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["ts", "site", "asset", "kind", "message", "data"])
    n = 0
    for e in historian.events(site, t0, t1):
        data = json.dumps({k: value_to_json(v) for k, v in e.data.items()}, sort_keys=True)
        w.writerow([_iso(e.ts), *(spreadsheet_safe(x) for x in (e.site, e.asset, e.kind.value, e.message, data))])
        n += 1
    return n


def export_alarms(historian: Historian, site: str | None, t0: datetime, t1: datetime, out: TextIO) -> int:
    """The alarm journal: raised, cleared and acknowledged events, with the alarm's fields in columns."""
    w = csv.writer(out, lineterminator="\n")
    cols = ("rule", "priority", "value", "user", "comment")  # the data keys twin.alarms writes
    w.writerow(["ts", "site", "asset", "kind", "message", *cols])
    n = 0
    for e in historian.events(site, t0, t1):
        if e.kind not in ALARM_EVENT_KINDS:
            continue
        cells = (e.site, e.asset, e.kind.value, e.message, *(e.data.get(c) for c in cols))
        w.writerow([_iso(e.ts), *(spreadsheet_safe(x) for x in cells)])
        n += 1
    return n
