"""The InfluxDB feed source: poll InfluxDB incrementally and turn its points into readings, as the Modbus poller does.

Two layers:

* **Pure parsing** (tested on exact text): the v1 JSON response (``parse_influxql_response``,
  ``epoch=ns`` or RFC 3339 times) and the v2 annotated CSV (``flux_rows``, through
  ``connectors.influx.csv``), their failures as the reasons readings show; ``FeedReader``, which
  keeps the incremental cursor and turns points into de-duplicated readings. The query text
  (``influxql_query``, ``flux_query``) is ``connectors.influx.query``'s.
* **The poller** (asyncio): one task per feed under a ``TaskGroup``, so a failing feed never delays
  the others (a ``connectors.collector.Source``, like the Modbus poller). v1 goes over HTTP
  (``GET /query?db=..&q=..&epoch=ns``), v2 through influxdb-client in a worker thread, both through
  ``connectors.influx.client``. Every query has a timeout.

Incremental reading: each poll asks for the points newer than (newest point seen − ``overlap_s``),
so late points inside that window are read again; a point already emitted (same asset, signal and
nanosecond timestamp) is never emitted twice, and one seen for the first time is, even if it is older
than the newest. Each reading keeps its point's own timestamp. The first poll reads ``lookback_s``
back from the clock. The cursor never moves past the clock, so one device writing in the future
cannot make the feed skip everybody else's points.

Health mirrors ``connectors.modbus.poller``: an unreachable server, an HTTP error (``HTTP 401 ...``),
an unknown database or bucket or a malformed answer makes the feed's mapped signals STALE at once
and BAD once it has failed for ``bad_after_s``, with the reason (``influx unreachable: ...``); the
next attempt waits an exponential backoff with jitter; the failure is logged when it starts, when
its reason changes and when it ends (``connectors.linkhealth``). A query error confined to one
measurement (one InfluxQL statement) makes only that measurement's signals BAD. A value a mapping
cannot translate (a status text not in its enum map) is a BAD reading with the reason.

Usage::

    poller = InfluxFeedPoller(cfg.influx, collector.ingest)
    await poller.run(stop_event)
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from connectors.config.influx_feed import InfluxApi, InfluxConnection, InfluxFeed, InfluxMapping
from connectors.config.secrets import SecretProblem, SecretUnavailable, read_secret
from connectors.influx import csv
from connectors.influx.client import FluxQueryClient, InfluxQLClient, basic_auth
from connectors.influx.csv import NS, dt_to_ns, ns_to_dt, parse_time_ns
from connectors.influx.query import QueryGroup, flux_query, influxql_query, plan_groups
from connectors.linkhealth import Backoff, Change, LinkHealth, PartFaults
from connectors.pacing import every
from twin.clock import Clock, utc_now
from twin.errors import SourceError
from twin.frozen import FrozenDict
from twin.readings import Quality, Reading, Value

__all__ = [
    "FeedError",
    "FeedPoller",
    "FeedReader",
    "FieldPoint",
    "InfluxFeedPoller",
    "StatementResult",
    "feed_secret",
    "flux_rows",
    "parse_influxql_response",
    "points_from_flux_rows",
]

log = logging.getLogger(__name__)

Emit = Callable[[Sequence[Reading]], None]
# Columns of a Flux result that are not tags of the series.
_FLUX_META = frozenset({"", "result", "table", "_start", "_stop", "_time", "_value", "_field", "_measurement"})


class FeedError(SourceError):
    """A feed query failed as a whole; ``reason`` is what its readings say (``influx unreachable: ...``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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

    >>> [(p.field, p.time_ns, p.value) for r in parse_influxql_response(
    ...     '{"results": [{"statement_id": 0, "series": [{"name": "printer", "columns": ["time", "state"],'
    ...     ' "values": [[1767600000000000000, "RUN"]]}]}]}') for p in r.points]
    [('state', 1767600000000000000, 'RUN')]
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


def flux_rows(text: str) -> list[dict[str, Value]]:
    """The rows of an annotated-CSV answer (``connectors.influx.csv``), its failures as the feed's reasons.

    The error form raises ``FeedError("influx query failed: ...")``, an answer that does not fit the
    format ``FeedError("malformed response: annotated CSV: ...")``.
    """
    try:
        return csv.parse_annotated_csv(text)
    except csv.QueryFailed as exc:
        raise FeedError(f"influx query failed: {exc.error}"
                        + (f" (reference {exc.reference})" if exc.reference else "")) from exc
    except ValueError as exc:
        raise _malformed(f"annotated CSV: {exc}") from exc


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
        return int(self.feed.overlap_s * NS)

    def after_ns(self, now_ns: int) -> int:
        if self.floor_ns is None:
            self.floor_ns = now_ns - int(self.feed.lookback_s * NS)
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


def feed_secret(env: str | None, file: str | Path | None, what: str) -> str:
    """A secret from an environment variable or a file (``connectors.config.secrets``), failures as ``FeedError``."""
    try:
        return read_secret(env, file)
    except SecretUnavailable as exc:
        if exc.problem is SecretProblem.UNREADABLE:
            raise FeedError(f"cannot read the {what} file {file}: {exc.strerror}") from exc
        if exc.problem is SecretProblem.NOT_TEXT:  # never quote the content: it may be a secret
            raise FeedError(f"the {what} file {file} is not UTF-8 text") from None
    where = [f"the environment variable {env!r} is not set" if env else "",
             f"the file {str(file)!r} is empty" if file else ""]
    raise FeedError(f"no {what}: " + " and ".join(w for w in where if w))


class _Transport(Protocol):
    async def fetch(self, groups: Sequence[QueryGroup], after_ns: int) -> list[StatementResult]: ...

    async def close(self) -> None: ...


class _V1Transport:
    """InfluxDB 1.x ``/query`` over HTTP (``InfluxQLClient``): all statements of a poll in one request."""

    def __init__(self, conn: InfluxConnection, timeout_s: float) -> None:
        self.conn = conn
        self._client = InfluxQLClient(conn.url, timeout_s=timeout_s)

    async def fetch(self, groups: Sequence[QueryGroup], after_ns: int) -> list[StatementResult]:
        conn = self.conn
        headers = {}
        if conn.username:
            headers = basic_auth(conn.username, feed_secret(conn.password_env, conn.password_file, "password"))
        params = {"db": conn.database, "q": influxql_query(groups, after_ns), "epoch": "ns"}
        try:
            body = await self._client.query(params, headers)
        except SourceError as exc:
            raise FeedError(str(exc)) from exc
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
        await self._client.close()


class _V2Transport:
    """InfluxDB 2.x ``/api/v2/query`` (Flux) through ``FluxQueryClient``."""

    def __init__(self, conn: InfluxConnection, timeout_s: float) -> None:
        self.conn = conn
        self.timeout_s = timeout_s
        self._client: FluxQueryClient | None = None

    async def fetch(self, groups: Sequence[QueryGroup], after_ns: int) -> list[StatementResult]:
        if self._client is None:
            token = feed_secret(self.conn.token_env, self.conn.token_file, "token")
            self._client = FluxQueryClient(self.conn.url, self.conn.org, token, timeout_s=self.timeout_s)
        try:
            text = await self._client.query_csv(flux_query(self.conn.bucket, groups, after_ns))
        except SourceError as exc:
            raise FeedError(str(exc)) from exc
        return [StatementResult(statement_id=0, points=tuple(points_from_flux_rows(flux_rows(text))))]

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
        self.link = LinkHealth(bad_after_s=feed.bad_after_s,  # loop times, as the Modbus poller's
                               backoff=Backoff(feed.reconnect_min_s, feed.reconnect_max_s, jitter=True,
                                               rng=rng or random.Random()))
        self._transport: _Transport = (_V1Transport(feed.connection, feed.timeout_s)
                                       if feed.connection.api is InfluxApi.V1
                                       else _V2Transport(feed.connection, feed.timeout_s))
        self._targets_of_group = [
            sorted({(a, m.signal) for m in feed.mappings
                    if m.measurement == g.measurement and m.tags == g.tags for a in m.assets})
            for g in self.groups
        ]
        self._group_errors: PartFaults[int, str] = PartFaults()
        self.reachable = False
        self.queries = 0
        self.failed_queries = 0
        self.points = 0

    def _went_down(self, now: float, reason: str) -> None:
        change = self.link.fail(now, reason)
        if change is Change.DOWN:
            log.warning("influx feed %s (%s, %s): %s; its signals are STALE, BAD after %g s", self.feed.id,
                        self.feed.connection.url, self.feed.connection.where, reason, self.feed.bad_after_s)
        elif change is Change.REASON:  # unlike a Modbus device's: a feed's reasons are few and telling
            log.warning("influx feed %s: %s", self.feed.id, reason)
        self.reachable = False

    def _unreachable(self, now: float) -> list[Reading]:
        quality = self.link.quality(now)
        ts = self._clock()
        return [Reading(ts=ts, site=self.feed.site, asset=a, signal=s, value=None, quality=quality,
                        reason=self.link.reason) for a, s in self.feed.targets]

    async def poll_once(self) -> list[Reading]:
        """Query once (unless backing off after a failure) and return the readings."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not self.link.up and not self.link.may_try(now):
            return self._unreachable(now)
        now_ns = dt_to_ns(self._clock())
        try:
            results = await self._transport.fetch(self.groups, self.reader.after_ns(now_ns))
        except FeedError as exc:
            now = loop.time()
            self.failed_queries += 1
            self._went_down(now, exc.reason)
            return self._unreachable(now)
        self.queries += 1
        downtime = self.link.answered(loop.time())
        if downtime is not None:
            log.warning("influx feed %s: answers again after %.1f s", self.feed.id, downtime)
        self.reachable = True
        readings = self.reader.readings((p for r in results for p in r.points), now_ns)
        self.points += len(readings)
        ts = self._clock()
        for i, r in enumerate(results):
            if r.error:
                if self._group_errors.failed(i, r.error):
                    log.warning("influx feed %s: query of %r failed: %s", self.feed.id,
                                self.groups[i].measurement, r.error)
                readings.extend(Reading(ts=ts, site=self.feed.site, asset=a, signal=s, value=None,
                                        quality=Quality.BAD, reason=f"influx query failed: {r.error}")
                                for a, s in self._targets_of_group[i])
            elif self._group_errors.cleared(i):
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
