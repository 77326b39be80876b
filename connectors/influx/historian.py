"""The InfluxDB 2.x historian: line protocol out, Flux in. The only module importing ``influxdb_client``.

Data model in the bucket:

* ``reading`` — tags ``site``, ``asset``, ``signal``, ``quality``; fields ``value`` (float, for
  numbers and bools), ``value_str`` (strings), ``vtype`` (``i`` int, ``f`` float, ``b`` bool,
  ``s`` str, ``n`` none, ``nan``) and ``reason``. ``vtype`` lets a reading come back exactly.
* ``event`` — tags ``site``, ``asset``, ``kind``; fields ``message``, ``data`` (JSON). The
  timestamp is the event's microsecond plus its index in the batch in the nanosecond digits, so two
  events of one instant do not overwrite each other.
* ``checkpoint`` — tag ``site``; field ``state`` (the codec's JSON of a ``SiteState``).

Writes are pre-built line protocol sent in explicit chunks through the synchronous write API (no
background batching, no shared ``PointSettings``). A point is identified by measurement, tags and
timestamp, so sending a batch twice stores it once: that is what makes store-and-forward exactly
once. Building Flux and parsing annotated CSV are pure functions, tested on exact text.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from influxdb_client import InfluxDBClient, WritePrecision  # type: ignore[attr-defined]
from influxdb_client.client.write_api import WriteOptions, WriteType

from twin.codec import dt_to_json, event_to_dict, site_state_from_dict, site_state_to_dict, value_from_json
from twin.errors import HistorianError, SourceError
from twin.historian import SeriesKey, SeriesPoint, SeriesResult, replay_site
from twin.limits import Limits, check_series_request
from twin.readings import Quality, Reading, Value
from twin.spec import FleetSpec, SiteId
from twin.state import Event, EventKind, SiteState

__all__ = [
    "FluxQueryClient",
    "InfluxHistorian",
    "batch_lines",
    "checkpoint_line",
    "event_from_row",
    "event_line",
    "flux_checkpoint",
    "flux_events",
    "flux_readings",
    "flux_series",
    "flux_signals",
    "parse_annotated_csv",
    "read_token",
    "reading_from_row",
    "reading_line",
    "series_points",
]

log = logging.getLogger(__name__)

NS_PER_US = 1000


# --- line protocol (pure) --------------------------------------------------------------------------


def _tag(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ").replace("\n", "\\n")


def _str_field(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _ns(ts: datetime) -> int:
    from connectors.store import to_us  # one definition of the epoch arithmetic

    return to_us(ts) * NS_PER_US


def _vtype(v: Value) -> str:
    if v is None:
        return "n"
    if isinstance(v, bool):
        return "b"
    if isinstance(v, int):
        return "i"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else "f"
    return "s"


def reading_line(r: Reading) -> str:
    """One reading as a line of InfluxDB line protocol (see the module docstring for its layout)."""
    vt = _vtype(r.value)
    if vt in ("i", "f", "b"):
        number = float(r.value)  # type: ignore[arg-type]
        value = repr(number) if math.isfinite(number) else None
    else:
        value = None
    fields = []
    if value is not None:
        fields.append(f"value={value}")
    elif vt == "s":
        fields.append(f"value_str={_str_field(str(r.value))}")
    elif vt == "f":  # ±inf: line protocol has no infinity, keep it as text
        fields.append(f"value_str={_str_field(repr(r.value))}")
    fields.append(f'vtype="{vt}"')
    fields.append(f"reason={_str_field(r.reason)}")
    return (
        f"reading,site={_tag(r.site)},asset={_tag(r.asset)},signal={_tag(r.signal)},quality={r.quality.value} "
        f"{','.join(fields)} {_ns(r.ts)}"
    )


def event_line(e: Event, index: int = 0) -> str:
    """One event as line protocol; ``index`` (its place in the batch) goes into the nanoseconds."""
    data = json.dumps(event_to_dict(e)["data"], allow_nan=False)
    return (
        f"event,site={_tag(e.site)},asset={_tag(e.asset)},kind={e.kind.value} "
        f"message={_str_field(e.message)},data={_str_field(data)} {_ns(e.ts) + index % NS_PER_US}"
    )


def checkpoint_line(s: SiteState) -> str:
    """A site state checkpoint as line protocol."""
    state = json.dumps(site_state_to_dict(s), allow_nan=False)
    return f"checkpoint,site={_tag(s.site)} state={_str_field(state)} {_ns(s.as_of)}"


def batch_lines(readings: Sequence[Reading], states: Sequence[SiteState], events: Sequence[Event]) -> str:
    """Everything of one historian write as line protocol, one point per line."""
    lines = [reading_line(r) for r in readings]
    lines += [checkpoint_line(s) for s in states]
    lines += [event_line(e, i) for i, e in enumerate(events)]
    return "\n".join(lines)


# --- Flux (pure) -----------------------------------------------------------------------------------


def _flux_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${") + '"'


def _flux_time(ts: datetime) -> str:
    return dt_to_json(ts).replace("+00:00", "Z")


def flux_series(bucket: str, key: SeriesKey, t0: datetime, t1: datetime, every: timedelta) -> str:
    """Flux for one series in [t0, t1], windowed by ``every``: min, max, mean and count per window.

    >>> from datetime import UTC
    >>> print(flux_series("b", SeriesKey(site="s1", asset="P1", signal="t"),
    ...                   datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 6, tzinfo=UTC), timedelta(minutes=10)))
    data = from(bucket: "b")
      |> range(start: 2026-01-05T00:00:00Z, stop: 2026-01-06T00:00:00.000001Z)
      |> filter(fn: (r) => r._measurement == "reading" and r._field == "value" and r.quality == "good")
      |> filter(fn: (r) => r.site == "s1" and r.asset == "P1" and r.signal == "t")
    w = (fn, name) => data
      |> aggregateWindow(every: 600000000us, fn: fn, timeSrc: "_start", createEmpty: false)
      |> set(key: "agg", value: name)
    union(tables: [w(fn: min, name: "min"), w(fn: max, name: "max"), w(fn: mean, name: "mean"),
                   w(fn: count, name: "count")])
      |> keep(columns: ["_time", "_value", "agg"])
    """
    every_us = max(1, every // timedelta(microseconds=1))
    return "\n".join([
        f"data = from(bucket: {_flux_str(bucket)})",
        f"  |> range(start: {_flux_time(t0)}, stop: {_flux_time(t1 + timedelta(microseconds=1))})",
        '  |> filter(fn: (r) => r._measurement == "reading" and r._field == "value" and r.quality == "good")',
        f"  |> filter(fn: (r) => r.site == {_flux_str(key.site)} and r.asset == {_flux_str(key.asset)}"
        f" and r.signal == {_flux_str(key.signal)})",
        "w = (fn, name) => data",
        f'  |> aggregateWindow(every: {every_us}us, fn: fn, timeSrc: "_start", createEmpty: false)',
        '  |> set(key: "agg", value: name)',
        'union(tables: [w(fn: min, name: "min"), w(fn: max, name: "max"), w(fn: mean, name: "mean"),',
        '               w(fn: count, name: "count")])',
        '  |> keep(columns: ["_time", "_value", "agg"])',
    ])


def flux_readings(bucket: str, site: str, after: datetime | None, until: datetime) -> str:
    """Flux for every reading of ``site`` with ``after < ts <= until``, one row per reading (pivoted)."""
    start = "0" if after is None else _flux_time(after + timedelta(microseconds=1))
    return "\n".join([
        f"from(bucket: {_flux_str(bucket)})",
        f"  |> range(start: {start}, stop: {_flux_time(until + timedelta(microseconds=1))})",
        f'  |> filter(fn: (r) => r._measurement == "reading" and r.site == {_flux_str(site)})',
        '  |> pivot(rowKey: ["_time", "site", "asset", "signal", "quality"], columnKey: ["_field"],'
        ' valueColumn: "_value")',
        '  |> group()',
        '  |> sort(columns: ["_time"])',
    ])


def flux_checkpoint(bucket: str, site: str, t: datetime) -> str:
    """Flux for the latest checkpoint of ``site`` at or before ``t``."""
    return "\n".join([
        f"from(bucket: {_flux_str(bucket)})",
        f"  |> range(start: 0, stop: {_flux_time(t + timedelta(microseconds=1))})",
        f'  |> filter(fn: (r) => r._measurement == "checkpoint" and r.site == {_flux_str(site)}'
        ' and r._field == "state")',
        "  |> last()",
    ])


def flux_events(bucket: str, site: str | None, t0: datetime, t1: datetime) -> str:
    """Flux for the events in [t0, t1] (of ``site``), pivoted, in time order."""
    where = '' if site is None else f" and r.site == {_flux_str(site)}"
    return "\n".join([
        f"from(bucket: {_flux_str(bucket)})",
        f"  |> range(start: {_flux_time(t0)}, stop: {_flux_time(t1 + timedelta(microseconds=1))})",
        f'  |> filter(fn: (r) => r._measurement == "event"{where})',
        '  |> pivot(rowKey: ["_time", "site", "asset", "kind"], columnKey: ["_field"], valueColumn: "_value")',
        '  |> group()',
        '  |> sort(columns: ["_time"])',
    ])


def flux_signals(bucket: str, site: str | None) -> str:
    """Flux listing the series of the bucket (one row per series and quality: the last one)."""
    where = "" if site is None else f" and r.site == {_flux_str(site)}"
    return "\n".join([
        f"from(bucket: {_flux_str(bucket)})",
        "  |> range(start: 0)",
        f'  |> filter(fn: (r) => r._measurement == "reading" and r._field == "vtype"{where})',
        "  |> last()",
        '  |> keep(columns: ["site", "asset", "signal"])',
        "  |> group()",
    ])


# --- annotated CSV (pure) --------------------------------------------------------------------------


def _convert(text: str, datatype: str) -> Any:
    if text == "":
        return None
    if datatype in ("long", "unsignedLong"):
        return int(text)
    if datatype == "double":
        return float(text)
    if datatype == "boolean":
        return text == "true"
    if datatype.startswith("dateTime"):
        return text  # kept as text: nanoseconds do not fit a datetime; see _parse_time
    return text


def parse_annotated_csv(text: str) -> list[dict[str, Any]]:
    """Rows of an InfluxDB annotated-CSV response, typed by its ``#datatype`` annotation.

    Several tables may follow each other, each with its own annotations and header, separated by
    blank lines. Empty cells take the ``#default`` annotation's value. An ``error`` column (the way
    InfluxDB reports a failed query inside a 200 response) raises ``HistorianError``.
    """
    rows: list[dict[str, Any]] = []
    datatypes: list[str] = []
    defaults: list[str] = []
    header: list[str] | None = None
    for cells in csv.reader(io.StringIO(text)):
        if not cells or all(c == "" for c in cells):
            header = None
            datatypes, defaults = [], []
            continue
        first = cells[0]
        if first == "#datatype":
            datatypes, header = cells, None
            continue
        if first == "#default":
            defaults = cells
            continue
        if first.startswith("#"):
            continue
        if header is None:
            header = cells
            if "error" in header and "reference" in header:
                header = ["__error__" if c == "error" else c for c in header]
            continue
        row: dict[str, Any] = {}
        for i, name in enumerate(header):
            if name == "" or i >= len(cells):
                continue
            cell = cells[i]
            if cell == "" and i < len(defaults):
                cell = defaults[i]
            row[name] = _convert(cell, datatypes[i] if i < len(datatypes) else "string")
        if "__error__" in row:
            raise HistorianError(f"InfluxDB query failed: {row['__error__']}")
        rows.append(row)
    return rows


def _parse_time(text: str) -> datetime:
    """RFC 3339 with up to nanoseconds (InfluxDB's format) as an aware datetime, truncated to µs."""
    from twin.codec import dt_from_json

    main, _, frac = text.rstrip("Z").partition(".")
    frac = (frac + "000000")[:6]
    return dt_from_json(f"{main}.{frac}+00:00")


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
    from twin.frozen import FrozenDict

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
    if token_env:
        token = os.environ.get(token_env, "")
        if token:
            return token.strip()
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise HistorianError(f"cannot read the InfluxDB token file {token_file}: {exc.strerror}") from exc
        except UnicodeDecodeError:  # never quote the content: it may be a secret
            raise HistorianError(f"the InfluxDB token file {token_file} is not UTF-8 text") from None
        if token:
            return token
    raise HistorianError(
        f"no InfluxDB token: set the environment variable {token_env!r} or the token file (got {token_file!r})"
    )


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
        self._client = InfluxDBClient(url=url, token=token, org=org, timeout=int(timeout_s * 1000),
                                      enable_gzip=False)
        # synchronous, no retries inside the library: our forwarder decides when to try again
        self._write = self._client.write_api(
            write_options=WriteOptions(write_type=WriteType.synchronous, batch_size=batch_size, max_retries=0)
        )
        self._query = self._client.query_api()

    def __repr__(self) -> str:
        return f"InfluxHistorian(url={self.url!r}, org={self.org!r}, bucket={self.bucket!r})"

    def write_lines(self, payload: str) -> None:
        """Send line protocol (one point per line) in chunks; returns once all were accepted."""
        lines = [ln for ln in payload.split("\n") if ln]
        for i in range(0, len(lines), self.batch_size):
            chunk = "\n".join(lines[i:i + self.batch_size])
            try:
                self._write.write(bucket=self.bucket, org=self.org, record=chunk, write_precision=WritePrecision.NS)  # type: ignore[arg-type]
            except Exception as exc:  # the library raises urllib3, ApiException, OSError...
                raise HistorianError(f"InfluxDB write to {self.url} failed: {_short(exc)}") from exc

    def write(
        self,
        readings: Sequence[Reading],
        states: Sequence[SiteState] = (),
        events: Sequence[Event] = (),
    ) -> None:
        self.write_lines(batch_lines(readings, states, events))

    def _rows(self, flux: str) -> list[dict[str, Any]]:
        try:
            resp = self._query.query_raw(flux, org=self.org)
            text = resp.data.decode("utf-8") if hasattr(resp, "data") else str(resp)
        except Exception as exc:
            raise HistorianError(f"InfluxDB query to {self.url} failed: {_short(exc)}") from exc
        return parse_annotated_csv(text)

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
        try:
            self._write.close()  # type: ignore[no-untyped-call]
            self._client.close()  # type: ignore[no-untyped-call]
        except Exception as exc:  # pragma: no cover - closing a pool
            raise HistorianError(f"closing the InfluxDB client: {_short(exc)}") from exc


class FluxQueryClient:
    """Raw Flux queries for the InfluxDB feed source (``connectors.influx.feed``); failures become ``SourceError``.

    ``query_csv`` returns the annotated CSV as text (parsed by the feed's pure code). Its errors say
    what the feed's readings show: ``HTTP 401 Unauthorized: ...`` for an answer with an error status,
    ``influx unreachable: ...`` when no answer came. Synchronous: the feed runs it in a worker thread.
    """

    def __init__(self, url: str, org: str, token: str, *, timeout_s: float = 5.0) -> None:
        self.url, self.org = url, org
        self._client = InfluxDBClient(url=url, token=token, org=org, timeout=int(timeout_s * 1000),
                                      enable_gzip=False)
        self._query = self._client.query_api()

    def __repr__(self) -> str:
        return f"FluxQueryClient(url={self.url!r}, org={self.org!r})"

    def query_csv(self, flux: str) -> str:
        from influxdb_client.rest import ApiException

        try:
            resp = self._query.query_raw(flux, org=self.org)
            data = resp.data if hasattr(resp, "data") else resp
            return data.decode("utf-8") if isinstance(data, bytes) else str(data)
        except ApiException as exc:
            detail = _api_message(exc)
            raise SourceError(f"HTTP {exc.status} {exc.reason or ''}".rstrip()
                              + (f": {detail}" if detail else "")) from exc
        except Exception as exc:  # urllib3 connection/timeout errors, OSError
            raise SourceError(f"influx unreachable: {_short(exc)}") from exc

    def close(self) -> None:
        try:
            self._client.close()  # type: ignore[no-untyped-call]
        except Exception as exc:  # pragma: no cover - closing a pool
            raise SourceError(f"closing the InfluxDB client: {_short(exc)}") from exc


def _api_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not body:
        return ""
    try:
        doc = json.loads(body)
    except ValueError:
        return str(body).strip()[:200]
    return str(doc.get("message") or doc.get("error") or "")[:200] if isinstance(doc, dict) else ""


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
