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
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TextIO

from twin.alarm_shelving import alarm_marks, shelf_label
from twin.codec import value_to_json
from twin.historian import ALARM_EVENT_KINDS, HistorianReader, SeriesKey
from twin.spec import FleetSpec, MachineStatus, Priority, SignalKind
from twin.state import Event, EventKind

__all__ = [
    "ALARM_JOURNAL_FIELDS",
    "JOURNAL_EVENT_KINDS",
    "SHELVING_LOOKBACK",
    "export_alarms",
    "export_events",
    "export_series",
    "journal_rows",
    "parse_time",
    "priority_name",
    "probability_text",
    "spreadsheet_safe",
    "status_codes",
    "status_label",
]

# the columns of the alarm journal CSV, here and in the dashboard's Alarms page (Export CSV)
# shelved: one-shot / timed until T / out of service / no, with shelved_by and shelved_why (the comment);
# suppressed: yes when raised while its machine was OFF or in maintenance (suppression by design);
# probability, predicted_at: a predictive alarm's, from its raised event's data (``twin.forecast``: the
# probability as stored, e.g. 0.4604, and the predicted time, UTC ISO-8601 or empty); empty for other alarms
ALARM_JOURNAL_FIELDS = ("site", "asset", "priority", "message", "state", "raised", "cleared", "acked_by", "acked_at",
                        "comment", "shelved", "shelved_by", "shelved_why", "suppressed", "probability", "predicted_at")
# the events the journal is made of: the alarms', the people's shelving and the machines' status
JOURNAL_EVENT_KINDS = ALARM_EVENT_KINDS | {EventKind.ALARM_SHELVING, EventKind.STATUS_CHANGE}
_SHELVING_KINDS = frozenset({EventKind.ALARM_SHELVING, EventKind.ALARM_RAISED, EventKind.ALARM_CLEARED})
SHELVING_LOOKBACK = timedelta(days=2)  # shelves and out-of-service this long before the window are known in it

StatusCodes = Mapping[tuple[str, str, str], Mapping[int, MachineStatus]]

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


def status_codes(fleet: FleetSpec) -> dict[tuple[str, str, str], Mapping[int, MachineStatus]]:
    """``(site, asset, signal)`` of every status signal of the fleet -> its template's code table."""
    out: dict[tuple[str, str, str], Mapping[int, MachineStatus]] = {}
    for site in fleet.sites:
        for m in site.machines:
            for sig in m.template.signals:
                if sig.kind is SignalKind.STATUS:
                    out[(str(site.id), str(m.id), sig.name)] = m.template.status_codes
    return out


def status_label(value: object, codes: Mapping[int, MachineStatus]) -> str | None:
    """A status code as a person reads it, ``running (2)``; ``unknown code (9)`` for a code not in the table.

    None when ``value`` is not a whole number (no value, or the mean of a bucket mixing codes).
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        return None
    code = int(value)
    st = codes.get(code)
    return f"{st.value if st is not None else 'unknown code'} ({code})"


def priority_name(value: object) -> str:
    """An alarm priority as the dashboard shows it: ``MEDIUM`` for 2 (a name is kept; an unknown value as is)."""
    text = "" if value is None else str(value).strip()
    try:
        return Priority(int(float(text))).name
    except ValueError:
        return text


def export_series(
    historian: HistorianReader,
    keys: Sequence[SeriesKey],
    t0: datetime,
    t1: datetime,
    out: TextIO,
    *,
    max_points: int = 1_000_000,
    status: StatusCodes | None = None,
) -> int:
    """One row per point: raw values when there are at most ``max_points`` per series, else buckets.

    A status signal (a key of ``status``, see ``status_codes``) is written as its integer code with the
    status name in the ``status`` column (``2``, ``running``), not as ``2.0``; a bucket mixing codes
    keeps its mean and leaves ``status`` empty. Other signals leave ``status`` empty.
    """
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["ts", "site", "asset", "signal", "value", "min", "max", "count", "status"])
    n = 0
    for res in historian.series(keys, t0, t1, max_points):
        k = res.key
        codes = (status or {}).get((k.site, k.asset, k.signal))
        for p in res.points:
            name = ""
            nums = [repr(p.value), repr(p.min), repr(p.max)]
            if codes is not None:
                nums = [_code(x) for x in (p.value, p.min, p.max)]
                st = codes.get(int(p.value)) if p.min == p.max == p.value == int(p.value) else None
                name = st.value if st is not None else ""
            w.writerow([_iso(p.ts), *(spreadsheet_safe(x) for x in (k.site, k.asset, k.signal)), *nums, p.count,
                        name])
            n += 1
    return n


def _code(x: float) -> str:
    return str(int(x)) if x == int(x) else repr(x)


def export_events(historian: HistorianReader, site: str | None, t0: datetime, t1: datetime, out: TextIO) -> int:
    """One row per event; ``data`` as JSON."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["ts", "site", "asset", "kind", "message", "data"])
    n = 0
    for e in historian.events(site, t0, t1):
        data = json.dumps({k: value_to_json(v) for k, v in e.data.items()}, sort_keys=True)
        w.writerow([_iso(e.ts), *(spreadsheet_safe(x) for x in (e.site, e.asset, e.kind.value, e.message, data))])
        n += 1
    return n


def export_alarms(historian: HistorianReader, site: str | None, t0: datetime, t1: datetime, out: TextIO) -> int:
    """The alarm journal of the window, one row per alarm instance, in the dashboard's columns.

    Each raised event opens an instance (oldest first); the cleared and acknowledged events of the same
    site and alarm key fill in ``cleared`` and ``acked_by``/``acked_at``/``comment``. ``priority`` is
    its name as the dashboard shows it (``MEDIUM``), ``state`` as there (``cleared/acked``); times are
    UTC ISO-8601. An acknowledgement or clearing of an alarm raised before the window is left out.
    ``shelved``/``suppressed`` come from the shelving and status events (``journal_rows``): those of the
    window, the shelving of the ``SHELVING_LOOKBACK`` before it (an alarm shelved the day before is
    shelved in it) and each site's machine status at ``t0`` (from the history's state then).
    """
    w = csv.writer(out, lineterminator="\n")
    w.writerow(ALARM_JOURNAL_FIELDS)
    events = [e for e in historian.events(site, t0, t1) if e.kind in JOURNAL_EVENT_KINDS]
    earlier = [e for e in historian.events(site, t0 - SHELVING_LOOKBACK, t0)
               if e.kind in _SHELVING_KINDS and e.ts < t0]
    initial: dict[tuple[str, str], MachineStatus] = {}
    for sid in sorted({str(e.site) for e in events}):
        state = historian.state_at(sid, t0)
        initial.update({(sid, str(m)): ms.status for m, ms in (state.machines.items() if state else ())})
    rows = journal_rows(events, t1, earlier=earlier, initial=initial)
    w.writerows([spreadsheet_safe(r.get(f)) for f in ALARM_JOURNAL_FIELDS] for r in rows)
    return len(rows)


def probability_text(value: object) -> str:
    """A predictive alarm's probability as a journal cell (``0.4604``); empty for none (not a number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    return str(float(value))


def _alarm_key(e: Event) -> str:
    key = e.data.get("key")
    return key if isinstance(key, str) and key else f"{e.data.get('rule', '')}:{e.asset}"


def journal_rows(events: Iterable[Event], t1: datetime | None = None, *, earlier: Sequence[Event] = (),
                 initial: Mapping[tuple[str, str], MachineStatus] | None = None) -> list[dict[str, str]]:
    """Alarm instances (ALARM_JOURNAL_FIELDS as text) from alarm events, in the order they were raised.

    ALARM_SHELVING and STATUS_CHANGE events among ``events`` fill ``shelved``, ``shelved_by``,
    ``shelved_why`` and ``suppressed`` (``twin.alarm_shelving.alarm_marks``, replayed up to ``t1``, by default
    the last event): a shelve or out-of-service in force at some time while the instance was active.
    ``earlier`` (alarm and shelving events before the window: no rows of their own) and ``initial``
    (``(site, asset)`` -> machine status at the window's start) complete what the window's events say.
    """
    events = sorted(events, key=lambda e: e.ts)
    end = t1 if t1 is not None else (events[-1].ts if events else None)
    marks = alarm_marks([*earlier, *events], end, initial=initial) if end is not None else {}
    rows: list[dict[str, str]] = []
    latest: dict[tuple[str, str], dict[str, str]] = {}
    for e in events:
        if e.kind not in ALARM_EVENT_KINDS:
            continue
        k = (str(e.site), _alarm_key(e))
        row = latest.get(k)
        if e.kind is EventKind.ALARM_RAISED:
            row = {"site": str(e.site), "asset": e.asset, "priority": priority_name(e.data.get("priority")),
                   "message": e.message, "state": "active", "raised": _iso(e.ts), "cleared": "", "acked_by": "",
                   "acked_at": "", "comment": ""}
            mark = marks.get((str(e.site), k[1], e.ts))
            row.update(shelved=shelf_label(mark), shelved_by=mark.by if mark else "",
                       shelved_why=mark.why if mark else "", suppressed="yes" if mark and mark.suppressed else "no",
                       probability=probability_text(e.data.get("probability")),
                       predicted_at=str(e.data.get("predicted_at") or ""))
            latest[k] = row
            rows.append(row)
        elif row is None:
            continue
        elif e.kind is EventKind.ALARM_CLEARED and not row["cleared"]:
            row["cleared"] = _iso(e.ts)
        elif e.kind is EventKind.ALARM_ACKNOWLEDGED and not row["acked_at"]:
            row["acked_by"] = str(e.data.get("user", ""))
            row["acked_at"] = _iso(e.ts)
            row["comment"] = str(e.data.get("comment", ""))
    for row in rows:
        row["state"] = ("cleared" if row["cleared"] else "active") + ("/acked" if row["acked_at"] else "/unacked")
    return rows
