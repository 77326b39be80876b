"""The InfluxDB feed source: poll InfluxDB incrementally and turn its points into readings, as the Modbus poller does.

Two layers:

* **Pure query building and parsing** (tested on exact text): InfluxQL for the v1 API
  (``influxql_query``, with identifier and string quoting), Flux for the v2 API (``flux_query``);
  the v1 JSON response (``parse_influxql_response``, ``epoch=ns`` or RFC 3339 times) and InfluxDB's
  annotated CSV (``parse_annotated_csv``: several tables, ``#datatype``/``#group``/``#default``
  rows, the ``error,reference`` form); ``FeedReader``, which keeps the incremental cursor and turns
  points into de-duplicated readings.
* **The poller** (asyncio): one task per feed under a ``TaskGroup``, so a failing feed never delays
  the others. v1 goes over HTTP with aiohttp (``GET /query?db=..&q=..&epoch=ns``); v2 through
  influxdb-client (``connectors.influx.historian.FluxQueryClient``, the only influxdb-client import) in a worker
  thread. Every query has a timeout.

Incremental reading: each poll asks for the points newer than (newest point seen − ``overlap_s``),
so late points inside that window are read again; a point already emitted (same asset, signal and
nanosecond timestamp) is never emitted twice, and one seen for the first time is, even if it is older
than the newest. Each reading keeps its point's own timestamp. The first poll reads ``lookback_s``
back from the clock. The cursor never moves past the clock, so one device writing in the future
cannot make the feed skip everybody else's points.

Health mirrors ``connectors.modbus.poller``: an unreachable server, an HTTP error (``HTTP 401 ...``),
an unknown database or bucket or a malformed answer makes the feed's mapped signals STALE at once
and BAD once it has failed for ``bad_after_s``, with the reason (``influx unreachable: ...``); the
next attempt waits an exponential backoff with jitter; the failure is logged when it starts and
when it ends. A query error confined to one measurement (one InfluxQL statement) makes only that
measurement's signals BAD. A value a mapping cannot translate (a status text not in its enum map)
is a BAD reading with the reason.

Usage::

    poller = InfluxFeedPoller(cfg.influx, collector.ingest)
    await poller.run(stop_event)
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import logging
import os
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from connectors.config.influx_feed import InfluxApi, InfluxConnection, InfluxFeed, InfluxMapping
from connectors.pacing import every
from twin.errors import SourceError
from twin.frozen import FrozenDict
from twin.readings import Quality, Reading, Value

__all__ = [
    "FeedError",
    "FeedPoller",
    "FeedReader",
    "FieldPoint",
    "InfluxFeedPoller",
    "QueryGroup",
    "StatementResult",
    "dt_to_ns",
    "flux_query",
    "flux_string",
    "influxql_ident",
    "influxql_query",
    "influxql_string",
    "ns_to_dt",
    "parse_annotated_csv",
    "parse_influxql_response",
    "parse_time_ns",
    "plan_groups",
    "points_from_flux_rows",
    "read_secret",
    "utc_now",
]

log = logging.getLogger(__name__)

Emit = Callable[[Sequence[Reading]], None]
Clock = Callable[[], datetime]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NS = 1_000_000_000
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|z|[+-]\d\d:\d\d)$"
)
# Columns of a Flux result that are not tags of the series.
_FLUX_META = frozenset({"", "result", "table", "_start", "_stop", "_time", "_value", "_field", "_measurement"})


def utc_now() -> datetime:
    """The wall clock, in UTC (the default clock of the poller)."""
    return datetime.now(UTC)


class FeedError(SourceError):
    """A feed query failed as a whole; ``reason`` is what its readings say (``influx unreachable: ...``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- time ------------------------------------------------------------------------------------------


def dt_to_ns(ts: datetime) -> int:
    """An aware datetime as integer nanoseconds since the Unix epoch (exact, no float rounding)."""
    d = ts - _EPOCH
    return (d.days * 86_400 + d.seconds) * _NS + d.microseconds * 1000


def ns_to_dt(ns: int) -> datetime:
    """Nanoseconds since the epoch as a UTC datetime, truncated to the microsecond."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


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
        ns -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60) * _NS
    return ns


def _rfc3339_ns(ns: int) -> str:
    """Epoch nanoseconds as RFC 3339 with all nine fraction digits (Flux time literal)."""
    secs, frac = divmod(ns, _NS)
    return (_EPOCH + timedelta(seconds=secs)).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


# --- query building (pure) -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryGroup:
    """The mappings that share a measurement and tag filter: one InfluxQL statement selecting their fields."""

    measurement: str
    tags: FrozenDict[str, str]
    fields: tuple[str, ...]


def plan_groups(mappings: Iterable[InfluxMapping]) -> tuple[QueryGroup, ...]:
    """Group mappings by (measurement, tag filter), fields in first-seen order, groups in first-seen order."""
    order: dict[tuple[str, tuple[tuple[str, str], ...]], list[str]] = {}
    for m in mappings:
        fields = order.setdefault((m.measurement, tuple(sorted(m.tags.items()))), [])
        if m.field not in fields:
            fields.append(m.field)
    return tuple(QueryGroup(measurement=meas, tags=FrozenDict(tags), fields=tuple(fields))
                 for (meas, tags), fields in order.items())


def influxql_ident(name: str) -> str:
    r"""An InfluxQL identifier, double-quoted with ``\`` and ``"`` escaped.

    >>> print(influxql_ident('my "odd" name'))
    "my \"odd\" name"
    """
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def influxql_string(text: str) -> str:
    r"""An InfluxQL string literal, single-quoted with ``\`` and ``'`` escaped.

    >>> print(influxql_string("it's"))
    'it\'s'
    """
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def influxql_query(groups: Sequence[QueryGroup], after_ns: int) -> str:
    """InfluxQL for every point of ``groups`` newer than ``after_ns``, one statement per group.

    ``GROUP BY *`` returns each series with all its tags (needed to tell series apart and for
    ``asset_tag``); ``::field``/``::tag`` keep a tag and a field of the same name apart.

    >>> g = QueryGroup(measurement="printer", tags=FrozenDict({"host": "p-3"}), fields=("state", "parts_ok"))
    >>> print(influxql_query([g], 1767600000000000000))
    SELECT "state"::field, "parts_ok"::field FROM "printer" WHERE time > 1767600000000000000 \
AND "host"::tag = 'p-3' GROUP BY *
    """
    statements = []
    for g in groups:
        where = [f"time > {int(after_ns)}"]
        where += [f"{influxql_ident(k)}::tag = {influxql_string(v)}" for k, v in sorted(g.tags.items())]
        fields = ", ".join(f"{influxql_ident(f)}::field" for f in g.fields)
        statements.append(f"SELECT {fields} FROM {influxql_ident(g.measurement)} WHERE {' AND '.join(where)}"
                          " GROUP BY *")
    return "; ".join(statements)


def flux_string(text: str) -> str:
    r"""A Flux string literal (``\``, ``"`` and the ``${`` of interpolation escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${") + '"'


def flux_query(bucket: str, groups: Sequence[QueryGroup], after_ns: int) -> str:
    """Flux for every point of ``groups`` newer than ``after_ns``: ``_time``, ``_value``, field and tags.

    ``range`` includes its start, so it starts one nanosecond after ``after_ns``; ``_start`` and
    ``_stop`` are dropped and every other column (the tags) kept.

    >>> g = QueryGroup(measurement="printer", tags=FrozenDict({"host": "p-3"}), fields=("state",))
    >>> print(flux_query("telegraf", [g], 1767600000000000000))
    from(bucket: "telegraf")
      |> range(start: 2026-01-05T08:00:00.000000001Z)
      |> filter(fn: (r) => (r._measurement == "printer" and r["host"] == "p-3" and (r._field == "state")))
      |> drop(columns: ["_start", "_stop"])
    """
    alternatives = []
    for g in groups:
        parts = [f"r._measurement == {flux_string(g.measurement)}"]
        parts += [f"r[{flux_string(k)}] == {flux_string(v)}" for k, v in sorted(g.tags.items())]
        parts.append("(" + " or ".join(f"r._field == {flux_string(f)}" for f in g.fields) + ")")
        alternatives.append("(" + " and ".join(parts) + ")")
    return "\n".join([
        f"from(bucket: {flux_string(bucket)})",
        f"  |> range(start: {_rfc3339_ns(after_ns + 1)})",
        f"  |> filter(fn: (r) => {' or '.join(alternatives)})",
        '  |> drop(columns: ["_start", "_stop"])',
    ])


# --- response parsing (pure) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldPoint:
    """One field value of one point: the unit the feed maps to a reading."""

    measurement: str
    tags: FrozenDict[str, str]
    field: str
    time_ns: int
    value: Value


@dataclass(frozen=True, slots=True, kw_only=True)
class StatementResult:
    """The answer to one InfluxQL statement: its points, or the error InfluxDB gave for it."""

    statement_id: int
    points: tuple[FieldPoint, ...] = ()
    error: str = ""


def _malformed(what: str) -> FeedError:
    return FeedError(f"malformed response: {what}")


def parse_influxql_response(text: str | bytes) -> list[StatementResult]:
    """The results of a v1 ``/query`` JSON answer, one per statement, in statement order.

    Each series (``name``, ``tags``, ``columns``, ``values``) is split into one ``FieldPoint`` per
    non-null field value. A top-level ``error`` raises ``FeedError``; an error of one statement is
    returned on its result. Anything else that does not fit the documented shape raises
    ``FeedError("malformed response: ...")``.
    """
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _malformed(f"not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise _malformed("not a JSON object")
    if "error" in doc:
        raise FeedError(f"influx query failed: {doc['error']}")
    results = doc.get("results")
    if not isinstance(results, list):
        raise _malformed("no 'results' list")
    out = []
    for i, res in enumerate(results):
        if not isinstance(res, dict):
            raise _malformed(f"results[{i}] is not an object")
        sid = res.get("statement_id", i)
        if not isinstance(sid, int):
            raise _malformed(f"results[{i}].statement_id is not a number")
        if "error" in res:
            out.append(StatementResult(statement_id=sid, error=str(res["error"])))
            continue
        points: list[FieldPoint] = []
        for j, series in enumerate(res.get("series") or ()):
            points.extend(_series_points(series, f"results[{i}].series[{j}]"))
        out.append(StatementResult(statement_id=sid, points=tuple(points)))
    return out


def _series_points(series: object, where: str) -> list[FieldPoint]:
    if not isinstance(series, dict):
        raise _malformed(f"{where} is not an object")
    name, tags, columns, values = (series.get(k) for k in ("name", "tags", "columns", "values"))
    if not isinstance(name, str) or not isinstance(columns, list) or not isinstance(values, list):
        raise _malformed(f"{where} lacks name, columns or values")
    if tags is None:
        tags = {}
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise _malformed(f"{where}.tags is not an object of strings")
    if not columns or columns[0] != "time":
        raise _malformed(f"{where}.columns does not start with 'time'")
    ftags = FrozenDict({str(k): v for k, v in tags.items() if v != ""})  # "" = tag absent on this series
    points = []
    for k, row in enumerate(values):
        if not isinstance(row, list) or len(row) != len(columns):
            raise _malformed(f"{where}.values[{k}] does not match columns")
        try:
            t = parse_time_ns(row[0])
        except ValueError as exc:
            raise _malformed(f"{where}.values[{k}][0]: {exc}") from exc
        for col, value in zip(columns[1:], row[1:], strict=True):
            if value is None:
                continue
            if not isinstance(value, int | float | str | bool):
                raise _malformed(f"{where}.values[{k}]: value of {col!r} is {type(value).__name__}")
            points.append(FieldPoint(measurement=name, tags=ftags, field=str(col), time_ns=t, value=value))
    return points


def _convert_cell(text: str, datatype: str) -> Value:
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
    ``#default`` annotation's value, and is None when that is empty too. The error form
    (an ``error`` and a ``reference`` column) raises ``FeedError("influx query failed: ...")``.
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
                if i == 0 and name == "":
                    continue  # the annotation column
                cell = cells[i] if i < len(cells) else ""
                if cell == "":
                    cell = defaults[i] if i < len(defaults) else ""
                row[name] = None if cell == "" else _convert_cell(cell, datatypes[i] if i < len(datatypes) else "")
            if "error" in row and "reference" in header:
                raise FeedError(f"influx query failed: {row['error']}"
                                + (f" (reference {row['reference']})" if row.get("reference") else ""))
            rows.append(row)
    except (csv.Error, ValueError) as exc:
        raise _malformed(f"annotated CSV: {exc}") from exc
    return rows


def points_from_flux_rows(rows: Iterable[Mapping[str, Value]]) -> list[FieldPoint]:
    """``FieldPoint``s from the rows of :func:`flux_query`'s answer; every non-meta column is a tag."""
    points = []
    for k, row in enumerate(rows):
        meas, fld, t, value = row.get("_measurement"), row.get("_field"), row.get("_time"), row.get("_value")
        if not isinstance(meas, str) or not isinstance(fld, str) or t is None:
            raise _malformed(f"row {k} lacks _measurement, _field or _time")
        if value is None:
            continue
        try:
            t_ns = parse_time_ns(t)
        except ValueError as exc:
            raise _malformed(f"row {k}: {exc}") from exc
        tags = FrozenDict({c: str(v) for c, v in row.items() if c not in _FLUX_META and v not in (None, "")})
        points.append(FieldPoint(measurement=meas, tags=tags, field=fld, time_ns=t_ns, value=value))
    return points


# --- incremental reading (pure) ---------------------------------------------------------------------


@dataclass
class FeedReader:
    """The incremental state of one feed: where the next query starts, which points were already emitted.

    ``after_ns(now)`` is the exclusive lower bound of the next query; ``readings(points, now)`` maps
    the answer to readings, skipping (asset, signal, timestamp) already emitted, and moves the cursor.
    Pure: no I/O, the time is passed in.
    """

    feed: InfluxFeed
    cursor_ns: int | None = None  # newest point seen (never past the clock)
    floor_ns: int | None = None  # the first query's start: now - lookback_s
    duplicates: int = 0  # points skipped because already emitted
    _seen: set[tuple[str, str, int]] = field(default_factory=set)
    _by_key: dict[tuple[str, str], list[InfluxMapping]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for m in self.feed.mappings:
            self._by_key.setdefault((m.measurement, m.field), []).append(m)

    @property
    def overlap_ns(self) -> int:
        return int(self.feed.overlap_s * _NS)

    def after_ns(self, now_ns: int) -> int:
        if self.floor_ns is None:
            self.floor_ns = now_ns - int(self.feed.lookback_s * _NS)
        if self.cursor_ns is None:
            return self.floor_ns
        return max(self.floor_ns, self.cursor_ns - self.overlap_ns)

    def readings(self, points: Iterable[FieldPoint], now_ns: int) -> list[Reading]:
        """New readings for ``points`` (sorted by time), each at its point's own timestamp."""
        out: list[Reading] = []
        newest = self.cursor_ns
        site = self.feed.site
        for p in points:
            for m in self._by_key.get((p.measurement, p.field), ()):
                if not m.matches(p.measurement, p.tags):
                    continue
                asset = m.asset_of(p.tags)
                if asset is None:
                    continue
                key = (asset, m.signal, p.time_ns)
                if key in self._seen:
                    self.duplicates += 1
                    continue
                self._seen.add(key)
                value, why = m.convert(p.value)
                out.append(Reading(ts=ns_to_dt(p.time_ns), site=site, asset=asset, signal=m.signal, value=value,
                                   quality=Quality.BAD if why else Quality.GOOD, reason=why))
            if newest is None or p.time_ns > newest:
                newest = p.time_ns
        if newest is not None:
            self.cursor_ns = min(newest, now_ns) if self.cursor_ns is None else max(self.cursor_ns,
                                                                                   min(newest, now_ns))
            horizon = self.cursor_ns - self.overlap_ns
            self._seen = {k for k in self._seen if k[2] > horizon}
        out.sort(key=lambda r: r.ts)
        return out


# --- secrets and transports ------------------------------------------------------------------------


def read_secret(env: str | None, file: str | Path | None, what: str) -> str:
    """A secret from an environment variable or a file (never from the configuration itself)."""
    if env:
        value = os.environ.get(env, "").strip()
        if value:
            return value
    if file:
        try:
            value = Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise FeedError(f"cannot read the {what} file {file}: {exc.strerror}") from exc
        except UnicodeDecodeError:  # never quote the content: it may be a secret
            raise FeedError(f"the {what} file {file} is not UTF-8 text") from None
        if value:
            return value
    where = [f"the environment variable {env!r} is not set" if env else "",
             f"the file {str(file)!r} is empty" if file else ""]
    raise FeedError(f"no {what}: " + " and ".join(w for w in where if w))


class _Transport(Protocol):
    async def fetch(self, groups: Sequence[QueryGroup], after_ns: int) -> list[StatementResult]: ...

    async def close(self) -> None: ...


class _V1Transport:
    """InfluxDB 1.x ``/query`` over HTTP with aiohttp: all statements of a poll in one request."""

    def __init__(self, conn: InfluxConnection, timeout_s: float) -> None:
        self.conn = conn
        self.timeout_s = timeout_s
        self._session: Any = None

    async def fetch(self, groups: Sequence[QueryGroup], after_ns: int) -> list[StatementResult]:
        import aiohttp

        conn = self.conn
        headers = {}
        if conn.username:  # HTTP basic auth, built here (aiohttp's BasicAuth is deprecated from 3.14 on)
            secret = read_secret(conn.password_env, conn.password_file, "password")
            headers["Authorization"] = "Basic " + base64.b64encode(f"{conn.username}:{secret}".encode()).decode()
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        params = {"db": conn.database, "q": influxql_query(groups, after_ns), "epoch": "ns"}
        try:
            async with asyncio.timeout(self.timeout_s + 0.25), \
                    self._session.get(f"{conn.url}/query", params=params, headers=headers) as resp:
                body = await resp.read()
                status, reason = resp.status, resp.reason or ""
        except TimeoutError as exc:
            raise FeedError(f"influx unreachable: no answer from {conn.url} within {self.timeout_s:g} s") from exc
        except aiohttp.ClientConnectorError as exc:
            raise FeedError(f"influx unreachable: cannot connect to {conn.url}: {exc.os_error}") from exc
        except aiohttp.ClientError as exc:
            raise FeedError(f"influx unreachable: {type(exc).__name__}: {exc}") from exc
        if status != 200:
            raise FeedError(f"HTTP {status} {reason}: {_error_text(body)}".rstrip(": "))
        results = parse_influxql_response(body)
        failed = [r.error for r in results if r.error]
        if failed and len(failed) == len(results):  # "database not found" comes as one result for all statements
            if failed[0] == "not executed" and len(groups) > 1:
                # InfluxDB 1.6 answers only "not executed" for a batch of statements on a missing database:
                # ask with the first statement alone to learn why (only on this failure path)
                await self.fetch(groups[:1], after_ns)
            raise FeedError(f"influx query failed: {failed[0]}")
        if len(results) != len(groups):
            raise _malformed(f"{len(results)} results for {len(groups)} statements")
        return sorted(results, key=lambda r: r.statement_id)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _error_text(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:200]
    if isinstance(doc, dict):
        return str(doc.get("error") or doc.get("message") or "")[:200]
    return ""


class _V2Transport:
    """InfluxDB 2.x ``/api/v2/query`` (Flux) through influxdb-client's synchronous API in a worker thread."""

    def __init__(self, conn: InfluxConnection, timeout_s: float) -> None:
        self.conn = conn
        self.timeout_s = timeout_s
        self._client: Any = None

    async def fetch(self, groups: Sequence[QueryGroup], after_ns: int) -> list[StatementResult]:
        if self._client is None:
            from connectors.influx.historian import FluxQueryClient  # the one module importing influxdb-client

            token = read_secret(self.conn.token_env, self.conn.token_file, "token")
            self._client = FluxQueryClient(self.conn.url, self.conn.org, token, timeout_s=self.timeout_s)
        flux = flux_query(self.conn.bucket, groups, after_ns)
        try:
            async with asyncio.timeout(self.timeout_s + 0.5):
                text = await asyncio.to_thread(self._client.query_csv, flux)
        except TimeoutError as exc:
            raise FeedError(f"influx unreachable: no answer from {self.conn.url} within "
                            f"{self.timeout_s:g} s") from exc
        except SourceError as exc:
            raise FeedError(str(exc)) from exc
        return [StatementResult(statement_id=0, points=tuple(points_from_flux_rows(parse_annotated_csv(text))))]

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


# --- the poller ------------------------------------------------------------------------------------


class FeedPoller:
    """Polls one feed. ``poll_once`` runs one query and returns the readings (new points or health).

    ``reachable`` tells whether the last query got an answer. Counters ``queries`` (answered),
    ``failed_queries`` and ``points`` (readings emitted from points) serve tests and benchmarks.
    """

    def __init__(self, feed: InfluxFeed, *, clock: Clock = utc_now, rng: random.Random | None = None) -> None:
        self.feed = feed
        self.groups = plan_groups(feed.mappings)
        self.reader = FeedReader(feed)
        self._clock = clock
        self._rng = rng or random.Random()
        self._transport: _Transport = (_V1Transport(feed.connection, feed.timeout_s)
                                       if feed.connection.api is InfluxApi.V1
                                       else _V2Transport(feed.connection, feed.timeout_s))
        self._targets_of_group = [
            sorted({(a, m.signal) for m in feed.mappings
                    if m.measurement == g.measurement and m.tags == g.tags for a in m.assets})
            for g in self.groups
        ]
        self._attempts = 0
        self._next_try = 0.0
        self._down_since: float | None = None
        self._down_reason = ""
        self._group_errors: dict[int, str] = {}
        self.reachable = False
        self.queries = 0
        self.failed_queries = 0
        self.points = 0

    def _backoff(self) -> float:
        f = self.feed
        base: float = min(f.reconnect_max_s, f.reconnect_min_s * 2.0 ** min(self._attempts, 30))
        return base * self._rng.uniform(0.5, 1.0)

    def _went_down(self, now: float, reason: str) -> None:
        if self._down_since is None:
            self._down_since = now
            log.warning("influx feed %s (%s, %s): %s; its signals are STALE, BAD after %g s", self.feed.id,
                        self.feed.connection.url, self.feed.connection.where, reason, self.feed.bad_after_s)
        elif reason != self._down_reason:
            log.warning("influx feed %s: %s", self.feed.id, reason)
        self._down_reason = reason
        self.reachable = False

    def _unreachable(self, now: float) -> list[Reading]:
        down = now - (self._down_since if self._down_since is not None else now)
        quality = Quality.BAD if down >= self.feed.bad_after_s else Quality.STALE
        ts = self._clock()
        return [Reading(ts=ts, site=self.feed.site, asset=a, signal=s, value=None, quality=quality,
                        reason=self._down_reason) for a, s in self.feed.targets]

    async def poll_once(self) -> list[Reading]:
        """Query once (unless backing off after a failure) and return the readings."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._down_since is not None and now < self._next_try:
            return self._unreachable(now)
        now_ns = dt_to_ns(self._clock())
        try:
            results = await self._transport.fetch(self.groups, self.reader.after_ns(now_ns))
        except FeedError as exc:
            now = loop.time()
            self.failed_queries += 1
            self._attempts += 1
            self._next_try = now + self._backoff()
            self._went_down(now, exc.reason)
            return self._unreachable(now)
        self.queries += 1
        if self._down_since is not None:
            log.warning("influx feed %s: answers again after %.1f s", self.feed.id, loop.time() - self._down_since)
        self._attempts = 0
        self._down_since = None
        self.reachable = True
        readings = self.reader.readings((p for r in results for p in r.points), now_ns)
        self.points += len(readings)
        ts = self._clock()
        for i, r in enumerate(results):
            if r.error:
                if self._group_errors.get(i) != r.error:
                    log.warning("influx feed %s: query of %r failed: %s", self.feed.id,
                                self.groups[i].measurement, r.error)
                self._group_errors[i] = r.error
                readings.extend(Reading(ts=ts, site=self.feed.site, asset=a, signal=s, value=None,
                                        quality=Quality.BAD, reason=f"influx query failed: {r.error}")
                                for a, s in self._targets_of_group[i])
            elif self._group_errors.pop(i, None) is not None:
                log.warning("influx feed %s: query of %r works again", self.feed.id, self.groups[i].measurement)
        return readings

    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        """Poll at the feed's fixed rate until ``stop`` is set; missed ticks are skipped, not queued."""

        async def step() -> None:
            readings = await self.poll_once()
            if readings:
                emit(readings)

        try:
            await every(self.feed.poll_interval_s, stop, step)
        finally:
            await self.close()

    async def close(self) -> None:
        await self._transport.close()


class InfluxFeedPoller:
    """Polls many InfluxDB feeds concurrently: one task per feed under a ``TaskGroup``.

    ``emit(readings)`` is called from the event loop with each poll's readings (the collector's
    ``ingest``). ``seed`` makes the backoff jitter reproducible.
    """

    def __init__(self, feeds: Sequence[InfluxFeed], emit: Emit, *, clock: Clock = utc_now,
                 seed: int | None = None) -> None:
        rng = random.Random(seed)
        self.feeds = {f.id: FeedPoller(f, clock=clock, rng=random.Random(rng.random())) for f in feeds}
        self._emit = emit

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tg:
            for fp in self.feeds.values():
                tg.create_task(fp.run(self._emit, stop), name=f"influx-feed-{fp.feed.id}")
