r"""InfluxDB's answers as Python values: the one annotated-CSV parser and the cell and time converters.

Pure, tested on exact text. ``parse_annotated_csv`` reads the format of the 2.x query API (several
tables, ``#datatype``/``#group``/``#default`` rows, the ``error,reference`` form); the historian and
the feed call it and say its failures in their own words (``QueryFailed`` for an error InfluxDB
reported, ``ValueError`` for an answer that does not fit the format). Times: InfluxDB's RFC 3339
with nanoseconds, epoch nanoseconds and aware datetimes converted exactly.

>>> rows = parse_annotated_csv("#datatype,string,long,double\n,result,table,_value\n,_result,0,1.5\n")
>>> rows
[{'result': '_result', 'table': 0, '_value': 1.5}]
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

from twin.readings import Value

__all__ = [
    "QueryFailed",
    "convert_cell",
    "dt_to_ns",
    "ns_to_dt",
    "parse_annotated_csv",
    "parse_time",
    "parse_time_ns",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NS = 1_000_000_000
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|z|[+-]\d\d:\d\d)$"
)


class QueryFailed(Exception):
    """InfluxDB reported a failed query inside its answer (the ``error,reference`` table).

    Not a ``TwinError``: the historian and the feed turn it into theirs, each with its own text.
    """

    def __init__(self, error: Value, reference: Value) -> None:
        super().__init__(error)
        self.error, self.reference = error, reference


# --- time ------------------------------------------------------------------------------------------


def dt_to_ns(ts: datetime) -> int:
    """An aware datetime as integer nanoseconds since the Unix epoch (exact, no float rounding)."""
    d = ts - EPOCH
    return (d.days * 86_400 + d.seconds) * NS + d.microseconds * 1000


def ns_to_dt(ns: int) -> datetime:
    """Nanoseconds since the epoch as a UTC datetime, truncated to the microsecond."""
    return EPOCH + timedelta(microseconds=ns // 1000)


def parse_time_ns(value: object) -> int:
    """A time from an InfluxDB response (epoch nanoseconds, or RFC 3339 up to nanoseconds) as epoch ns.

    >>> parse_time_ns("2026-01-05T08:00:01.000000001Z"), parse_time_ns(1767600001000000001)
    (1767600001000000001, 1767600001000000001)
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r}")
    m = _RFC3339.match(value.strip())
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {value!r}")
    y, mo, d, h, mi, s, frac, tz = m.groups()
    base = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=UTC)
    ns = dt_to_ns(base) + int(((frac or "") + "000000000")[:9])
    if tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        ns -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60) * NS
    return ns


def parse_time(text: str) -> datetime:
    """RFC 3339 with up to nanoseconds (InfluxDB's format) as an aware UTC datetime, truncated to µs.

    >>> parse_time("2026-01-05T00:00:00.000001999Z").isoformat()
    '2026-01-05T00:00:00.000001+00:00'
    """
    return ns_to_dt(parse_time_ns(text))


# --- annotated CSV -----------------------------------------------------------------------------------


def convert_cell(text: str, datatype: str) -> Value:
    """One non-empty cell as its ``#datatype`` says; ``ValueError`` when it does not fit."""
    if datatype in ("long", "unsignedLong"):
        return int(text)
    if datatype == "double":
        return float(text)
    if datatype == "boolean":
        if text not in ("true", "false"):
            raise ValueError(f"not a boolean: {text!r}")
        return text == "true"
    return text  # string, dateTime:RFC3339 (kept as text: nanoseconds), duration, base64Binary


def parse_annotated_csv(text: str) -> list[dict[str, Value]]:
    """The rows of an InfluxDB annotated-CSV answer, typed by each table's ``#datatype`` annotation.

    Tables follow each other, each with its own annotation rows and header, separated by empty lines;
    a table may also start with new annotations without an empty line. An empty cell takes the
    ``#default`` annotation's value, and is None when that is empty too; columns without a name
    (the annotation column) are left out. The error form (an ``error`` and a ``reference`` column)
    raises ``QueryFailed``; a cell that does not fit its type, or text that is not CSV, ``ValueError``.
    """
    rows: list[dict[str, Value]] = []
    datatypes: list[str] = []
    defaults: list[str] = []
    header: list[str] | None = None
    try:
        for cells in csv.reader(io.StringIO(text)):
            if not cells or all(c == "" for c in cells):
                header, datatypes, defaults = None, [], []
                continue
            first = cells[0]
            if first.startswith("#"):
                header = None  # annotations start a new table
                if first == "#datatype":
                    datatypes = cells
                elif first == "#default":
                    defaults = cells
                continue
            if header is None:
                header = cells
                continue
            row: dict[str, Value] = {}
            for i, name in enumerate(header):
                if name == "":
                    continue  # the annotation column
                cell = cells[i] if i < len(cells) else ""
                if cell == "":
                    cell = defaults[i] if i < len(defaults) else ""
                row[name] = None if cell == "" else convert_cell(cell, datatypes[i] if i < len(datatypes) else "")
            if "error" in row and "reference" in header:
                raise QueryFailed(row["error"], row.get("reference"))
            rows.append(row)
    except csv.Error as exc:
        raise ValueError(str(exc)) from exc
    return rows
