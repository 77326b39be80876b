"""The InfluxDB historians: line protocol out, Flux (2.x) or InfluxQL (1.x, 2.x, 3.x) in, as the store reads.

The bucket's data model is ``connectors.influx.lineproto``'s; the Flux is ``connectors.influx.query``'s,
the answers are parsed by ``connectors.influx.csv`` and the wire is ``connectors.influx.client``.
Writes are pre-built line protocol sent in explicit chunks, synchronously; sending a batch twice
stores it once, which is what makes store-and-forward exactly once. ``read_token`` reads the API
token (``connectors.config.secrets``) when the historian is opened.

>>> row = {"_time": "2026-01-05T00:00:00.000001999Z", "site": "s1", "asset": "P1", "signal": "status",
...        "quality": "good", "value": 2.0, "vtype": "i", "reason": ""}
>>> reading_from_row(row).value
2
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.config.secrets import SecretProblem, SecretUnavailable, read_secret
from connectors.influx import csv
from connectors.influx.client import InfluxClient, InfluxHttpClient
from connectors.influx.csv import parse_time as _parse_time
from connectors.influx.lineproto import batch_lines
from connectors.influx.query import (
    flux_checkpoint,
    flux_events,
    flux_readings,
    flux_series,
    flux_signals,
    influxql_checkpoint,
    influxql_events,
    influxql_points,
    influxql_readings,
    influxql_series,
    influxql_signals,
)
from twin.codec import site_state_from_dict, value_from_json
from twin.errors import HistorianError
from twin.frozen import FrozenDict
from twin.historian import SeriesKey, SeriesPoint, SeriesResult, replay_site
from twin.limits import Limits, check_series_request
from twin.readings import Quality, Reading, Value
from twin.spec import FleetSpec, SiteId
from twin.state import Event, EventKind, SiteState

__all__ = [
    "InfluxHistorian",
    "InfluxQLHistorian",
    "event_from_row",
    "historian_rows",
    "influxql_rows",
    "read_token",
    "reading_from_row",
    "series_points",
]


def historian_rows(text: str) -> list[dict[str, Value]]:
    """The rows of an annotated-CSV answer (``connectors.influx.csv``); a query error is a ``HistorianError``."""
    try:
        return csv.parse_annotated_csv(text)
    except csv.QueryFailed as exc:
        raise HistorianError(f"InfluxDB query failed: {exc.error}") from exc


def reading_from_row(row: Mapping[str, Any]) -> Reading:
    """A reading from one pivoted row of :func:`flux_readings` (exact thanks to ``vtype``)."""
    vt = row.get("vtype") or "n"
    raw = row.get("value")
    value: Value
    if vt == "i":
        value = int(raw)  # type: ignore[arg-type]
    elif vt == "b":
        value = bool(raw)
    elif vt == "f":
        value = float(raw) if raw is not None else float(row.get("value_str") or "nan")
    elif vt == "nan":
        value = math.nan
    elif vt == "s":
        value = row.get("value_str") or ""
    else:
        value = None
    return Reading(ts=_parse_time(row["_time"]), site=row["site"], asset=row["asset"], signal=row["signal"],
                   value=value, quality=Quality(row["quality"]), reason=row.get("reason") or "")


def event_from_row(row: Mapping[str, Any]) -> Event:
    """An event from one pivoted row of :func:`flux_events`."""
    data = json.loads(row.get("data") or "{}")
    return Event(ts=_parse_time(row["_time"]), site=SiteId(row["site"]), asset=row["asset"],
                 kind=EventKind(row["kind"]), message=row.get("message") or "",
                 data=FrozenDict({k: value_from_json(v) for k, v in data.items()}))


def series_points(rows: Sequence[Mapping[str, Any]]) -> tuple[SeriesPoint, ...]:
    """Merge the min/max/mean/count rows of :func:`flux_series` into points, in time order."""
    by_time: dict[str, dict[str, Any]] = {}
    for row in rows:
        by_time.setdefault(row["_time"], {})[row["agg"]] = row["_value"]
    points = []
    for t in sorted(by_time):
        a = by_time[t]
        if a.get("mean") is None:
            continue
        points.append(SeriesPoint(ts=_parse_time(t), value=float(a["mean"]), min=float(a["min"]),
                                  max=float(a["max"]), count=int(a.get("count") or 1)))
    return tuple(points)


def read_token(token_env: str | None, token_file: str | Path | None) -> str:
    """The API token from an environment variable or a file (never from the configuration itself)."""
    try:
        return read_secret(token_env, token_file)
    except SecretUnavailable as exc:
        if exc.problem is SecretProblem.UNREADABLE:
            raise HistorianError(f"cannot read the InfluxDB token file {token_file}: {exc.strerror}") from exc
        if exc.problem is SecretProblem.NOT_TEXT:  # never quote the content: it may be a secret
            raise HistorianError(f"the InfluxDB token file {token_file} is not UTF-8 text") from None
        raise HistorianError(f"no InfluxDB token: set the environment variable {token_env!r} or the token file "
                             f"(got {token_file!r})") from None


# --- the historian --------------------------------------------------------------------------------


class InfluxHistorian:
    """The historian on an InfluxDB 2.x bucket. ``token`` is kept out of ``repr`` and logs.

    ``write`` sends pre-built line protocol in chunks of ``batch_lines`` lines, synchronously: it
    returns once InfluxDB has accepted every chunk, and raises ``HistorianError`` otherwise.
    ``limits``, when given, makes ``series`` refuse requests over ``twin.limits`` (``HistorianError``).
    """

    def __init__(
        self,
        url: str,
        org: str,
        bucket: str,
        token: str,
        fleet: FleetSpec,
        *,
        batch_size: int = 5000,
        timeout_s: float = 10.0,
        limits: Limits | None = None,
    ) -> None:
        self.url, self.org, self.bucket, self.fleet = url, org, bucket, fleet
        self.limits = limits
        self.batch_size = batch_size
        self._client = InfluxClient(url, org, token, batch_size=batch_size, timeout_s=timeout_s)

    def __repr__(self) -> str:
        return f"InfluxHistorian(url={self.url!r}, org={self.org!r}, bucket={self.bucket!r})"

    def write_lines(self, payload: str) -> None:
        """Send line protocol (one point per line) in chunks; returns once all were accepted."""
        lines = [ln for ln in payload.split("\n") if ln]
        for i in range(0, len(lines), self.batch_size):
            chunk = "\n".join(lines[i:i + self.batch_size])
            self._client.write(self.bucket, chunk)

    def write(
        self,
        readings: Sequence[Reading],
        states: Sequence[SiteState] = (),
        events: Sequence[Event] = (),
    ) -> None:
        self.write_lines(batch_lines(readings, states, events))

    def _rows(self, flux: str) -> list[dict[str, Any]]:
        return historian_rows(self._client.query_csv(flux))

    def series(
        self, keys: Sequence[SeriesKey], t0: datetime, t1: datetime, max_points: int
    ) -> list[SeriesResult]:
        check_series_request(len(keys), t0, t1, max_points, self.limits)  # one rule for both historians
        every = max(timedelta(microseconds=1), (t1 - t0 + timedelta(microseconds=1)) / max_points)
        every = timedelta(microseconds=math.ceil(every / timedelta(microseconds=1)))
        out = []
        for key in keys:
            pts = series_points(self._rows(flux_series(self.bucket, key, t0, t1, every)))
            out.append(SeriesResult(key=key, points=pts, downsampled=any(p.count > 1 for p in pts)))
        return out

    def state_at(self, site: str, t: datetime) -> SiteState | None:
        try:
            self.fleet.site(site)
        except KeyError:
            raise HistorianError(f"unknown site {site!r}") from None
        rows = self._rows(flux_checkpoint(self.bucket, site, t))
        checkpoint = site_state_from_dict(json.loads(rows[0]["_value"])) if rows else None
        after = None if checkpoint is None else checkpoint.as_of
        readings = [reading_from_row(r) for r in self._rows(flux_readings(self.bucket, site, after, t))]
        return replay_site(self.fleet, site, checkpoint, readings, t)

    def events(self, site: str | None, t0: datetime, t1: datetime) -> list[Event]:
        return [event_from_row(r) for r in self._rows(flux_events(self.bucket, site, t0, t1))]

    def signals(self, site: str | None = None) -> list[SeriesKey]:
        keys = {SeriesKey(site=r["site"], asset=r["asset"], signal=r["signal"])
                for r in self._rows(flux_signals(self.bucket, site))}
        return sorted(keys, key=lambda k: (k.site, k.asset, k.signal))

    def close(self) -> None:
        self._client.close()


# --- the historian over InfluxQL (the v1 query API) -----------------------------------------------


def influxql_rows(doc: Any, url: str) -> list[dict[str, Any]]:
    """The rows of an InfluxQL JSON answer, one dict per row with ``_time``, the series' tags and its columns.

    An ``error`` in the answer (the whole request's or a statement's) is a ``HistorianError``.

    >>> influxql_rows({"results": [{"statement_id": 0, "series": [{"name": "reading", "tags": {"asset": "P1"},
    ...     "columns": ["time", "value"], "values": [["2026-01-05T00:00:00Z", 2]]}]}]}, "u")
    [{'asset': 'P1', '_time': '2026-01-05T00:00:00Z', 'value': 2}]
    """
    if not isinstance(doc, dict):
        raise HistorianError(f"InfluxDB query to {url} failed: the answer is not a JSON object")
    if doc.get("error"):
        raise HistorianError(f"InfluxDB query failed: {str(doc['error'])[:300]}")
    rows: list[dict[str, Any]] = []
    for result in doc.get("results") or []:
        if not isinstance(result, dict):
            continue
        if result.get("error"):
            raise HistorianError(f"InfluxDB query failed: {str(result['error'])[:300]}")
        for series in result.get("series") or []:
            tags = series.get("tags") or {}
            columns = ["_time" if c == "time" else str(c) for c in series.get("columns") or []]
            for values in series.get("values") or []:
                rows.append({**tags, **dict(zip(columns, values, strict=False))})
    return rows


def _series_key(text: str) -> dict[str, str]:
    r"""The tags of a ``SHOW SERIES`` key such as ``reading,asset=P1,signal=a\ b``, unescaped."""
    parts, current, escaped = [], [], False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    tags = {}
    for part in parts[1:]:
        key, _, value = part.partition("=")
        tags[key] = value
    return tags


class InfluxQLHistorian:
    """The historian on InfluxDB read through InfluxQL: 1.x, 2.x through its v1 API (DBRP), InfluxDB 3 Core.

    The same data model as :class:`InfluxHistorian` (``connectors.influx.lineproto``), so either can
    read what the other wrote. Reads go to ``/query?db=DATABASE``; writes to ``/write?db=`` or, with
    ``bucket``, to ``/api/v2/write`` (``write_api="v2"``). ``headers`` carry the credentials.
    """

    def __init__(self, url: str, database: str, headers: dict[str, str], fleet: FleetSpec, *,
                 retention_policy: str = "", org: str = "", bucket: str = "", batch_size: int = 5000,
                 timeout_s: float = 10.0, limits: Limits | None = None) -> None:
        self.url, self.database, self.fleet = url, database, fleet
        self.retention_policy, self.org, self.bucket = retention_policy, org, bucket
        self.batch_size, self.limits = batch_size, limits
        self._client = InfluxHttpClient(url, headers, timeout_s=timeout_s)

    def __repr__(self) -> str:
        return f"InfluxQLHistorian(url={self.url!r}, database={self.database!r})"

    def write_lines(self, payload: str) -> None:
        """Send line protocol in chunks of ``batch_size`` lines; returns once all were accepted."""
        lines = [ln for ln in payload.split("\n") if ln]
        for i in range(0, len(lines), self.batch_size):
            self._client.write("\n".join(lines[i:i + self.batch_size]), database=self.database,
                               retention_policy=self.retention_policy, org=self.org, bucket=self.bucket)

    def write(self, readings: Sequence[Reading], states: Sequence[SiteState] = (),
              events: Sequence[Event] = ()) -> None:
        self.write_lines(batch_lines(readings, states, events))

    def _rows(self, influxql: str) -> list[dict[str, Any]]:
        return influxql_rows(self._client.query(self.database, influxql, self.retention_policy), self.url)

    def series(self, keys: Sequence[SeriesKey], t0: datetime, t1: datetime, max_points: int) -> list[SeriesResult]:
        check_series_request(len(keys), t0, t1, max_points, self.limits)  # one rule for every historian
        every = max(timedelta(microseconds=1), (t1 - t0 + timedelta(microseconds=1)) / max_points)
        every = timedelta(microseconds=math.ceil(every / timedelta(microseconds=1)))
        out = []
        for key in keys:
            counted = self._rows(influxql_points(key, t0, t1, count_only=True))
            if not counted or int(counted[0].get("count") or 0) <= max_points:  # raw, as the store answers
                pts = tuple(SeriesPoint(ts=_parse_time(r["_time"]), value=float(r["value"]), min=float(r["value"]),
                                        max=float(r["value"]))
                            for r in self._rows(influxql_points(key, t0, t1)) if r.get("value") is not None)
                out.append(SeriesResult(key=key, points=pts, downsampled=False))
                continue
            pts = tuple(SeriesPoint(ts=_parse_time(r["_time"]), value=float(r["mean"]), min=float(r["min"]),
                                    max=float(r["max"]), count=int(r["count"]))
                        for r in self._rows(influxql_series(key, t0, t1, every)) if r.get("mean") is not None)
            out.append(SeriesResult(key=key, points=pts, downsampled=True))
        return out

    def state_at(self, site: str, t: datetime) -> SiteState | None:
        try:
            self.fleet.site(site)
        except KeyError:
            raise HistorianError(f"unknown site {site!r}") from None
        rows = self._rows(influxql_checkpoint(site, t))
        checkpoint = site_state_from_dict(json.loads(rows[0]["last"])) if rows else None
        after = None if checkpoint is None else checkpoint.as_of
        rows = sorted(self._rows(influxql_readings(site, after, t)), key=lambda r: csv.parse_time_ns(r["_time"]))
        readings = [reading_from_row(r) for r in rows]
        return replay_site(self.fleet, site, checkpoint, readings, t)

    def events(self, site: str | None, t0: datetime, t1: datetime) -> list[Event]:
        # in time order to the nanosecond: an event's nanosecond digits are its place in its batch
        rows = sorted(self._rows(influxql_events(site, t0, t1)), key=lambda r: csv.parse_time_ns(r["_time"]))
        return [event_from_row(r) for r in rows]

    def signals(self, site: str | None = None) -> list[SeriesKey]:
        keys = set()
        for row in self._rows(influxql_signals(site)):
            tags = _series_key(str(row.get("key", "")))
            if {"site", "asset", "signal"} <= tags.keys():
                keys.add(SeriesKey(site=tags["site"], asset=tags["asset"], signal=tags["signal"]))
        return sorted(keys, key=lambda k: (k.site, k.asset, k.signal))

    def close(self) -> None:
        self._client.close()
