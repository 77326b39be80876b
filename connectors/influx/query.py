"""The text of every query the product sends InfluxDB: Flux (2.x) and InfluxQL (1.x), with the one escaper of each.

Pure, tested on exact text. The historian's Flux (``flux_series``, ``flux_readings``,
``flux_checkpoint``, ``flux_events``, ``flux_signals``) and the feed's (``flux_query``, and InfluxQL
``influxql_query`` with its identifier and string quoting) share ``flux_string``, the one Flux
string literal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from connectors.config.influx_feed import InfluxMapping
from connectors.influx.csv import EPOCH, NS, dt_to_ns
from twin.codec import dt_to_json
from twin.frozen import FrozenDict
from twin.historian import SeriesKey

__all__ = [
    "QueryGroup",
    "flux_checkpoint",
    "flux_events",
    "flux_query",
    "flux_readings",
    "flux_series",
    "flux_signals",
    "flux_string",
    "influxql_checkpoint",
    "influxql_events",
    "influxql_ident",
    "influxql_points",
    "influxql_query",
    "influxql_readings",
    "influxql_series",
    "influxql_signals",
    "influxql_string",
    "plan_groups",
]


def flux_string(text: str) -> str:
    r"""A Flux string literal (``\``, ``"`` and the ``${`` of interpolation escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${") + '"'



# --- the feed's queries ----------------------------------------------------------------------------


def _rfc3339_ns(ns: int) -> str:
    """Epoch nanoseconds as RFC 3339 with all nine fraction digits (Flux time literal)."""
    secs, frac = divmod(ns, NS)
    return (EPOCH + timedelta(seconds=secs)).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


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


# --- the historian's queries -----------------------------------------------------------------------


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
        f"data = from(bucket: {flux_string(bucket)})",
        f"  |> range(start: {_flux_time(t0)}, stop: {_flux_time(t1 + timedelta(microseconds=1))})",
        '  |> filter(fn: (r) => r._measurement == "reading" and r._field == "value" and r.quality == "good")',
        f"  |> filter(fn: (r) => r.site == {flux_string(key.site)} and r.asset == {flux_string(key.asset)}"
        f" and r.signal == {flux_string(key.signal)})",
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
        f"from(bucket: {flux_string(bucket)})",
        f"  |> range(start: {start}, stop: {_flux_time(until + timedelta(microseconds=1))})",
        f'  |> filter(fn: (r) => r._measurement == "reading" and r.site == {flux_string(site)})',
        '  |> pivot(rowKey: ["_time", "site", "asset", "signal", "quality"], columnKey: ["_field"],'
        ' valueColumn: "_value")',
        '  |> group()',
        '  |> sort(columns: ["_time"])',
    ])


def flux_checkpoint(bucket: str, site: str, t: datetime) -> str:
    """Flux for the latest checkpoint of ``site`` at or before ``t``."""
    return "\n".join([
        f"from(bucket: {flux_string(bucket)})",
        f"  |> range(start: 0, stop: {_flux_time(t + timedelta(microseconds=1))})",
        f'  |> filter(fn: (r) => r._measurement == "checkpoint" and r.site == {flux_string(site)}'
        ' and r._field == "state")',
        "  |> last()",
    ])


def flux_events(bucket: str, site: str | None, t0: datetime, t1: datetime) -> str:
    """Flux for the events in [t0, t1] (of ``site``), pivoted, in time order."""
    where = '' if site is None else f" and r.site == {flux_string(site)}"
    return "\n".join([
        f"from(bucket: {flux_string(bucket)})",
        f"  |> range(start: {_flux_time(t0)}, stop: {_flux_time(t1 + timedelta(microseconds=1))})",
        f'  |> filter(fn: (r) => r._measurement == "event"{where})',
        '  |> pivot(rowKey: ["_time", "site", "asset", "kind"], columnKey: ["_field"], valueColumn: "_value")',
        '  |> group()',
        '  |> sort(columns: ["_time"])',
    ])


def flux_signals(bucket: str, site: str | None) -> str:
    """Flux listing the series of the bucket (one row per series and quality: the last one)."""
    where = "" if site is None else f" and r.site == {flux_string(site)}"
    return "\n".join([
        f"from(bucket: {flux_string(bucket)})",
        "  |> range(start: 0)",
        f'  |> filter(fn: (r) => r._measurement == "reading" and r._field == "vtype"{where})',
        "  |> last()",
        '  |> keep(columns: ["site", "asset", "signal"])',
        "  |> group()",
    ])


# --- the historian's InfluxQL (the v1 query API: InfluxDB 1.x, 2.x through DBRP, 3 Core) ---------


def _site_is(site: str) -> str:
    return f'"site"::tag = {influxql_string(site)}'


def influxql_readings(site: str, after: datetime | None, until: datetime) -> str:
    """InfluxQL for every reading of ``site`` with ``after < ts <= until``, one series per asset/signal/quality.

    >>> from datetime import UTC
    >>> print(influxql_readings("s1", None, datetime(2026, 1, 5, tzinfo=UTC)))
    SELECT "value", "value_str", "vtype", "reason" FROM "reading" WHERE "site"::tag = 's1' AND time > 0 \
AND time < 1767571200000001000 GROUP BY "site", "asset", "signal", "quality"
    """
    start = 0 if after is None else dt_to_ns(after)
    return ('SELECT "value", "value_str", "vtype", "reason" FROM "reading" WHERE '
            f'{_site_is(site)} AND time > {start} AND time < {_after(until)} GROUP BY "site", "asset", "signal", '
            '"quality"')


def _after(t: datetime) -> int:
    """The first nanosecond after ``t``'s microsecond: an event's nanosecond digits hold its index in the batch."""
    return dt_to_ns(t) + 1000


def influxql_checkpoint(site: str, t: datetime) -> str:
    """InfluxQL for the latest checkpoint of ``site`` at or before ``t``."""
    return f'SELECT last("state") FROM "checkpoint" WHERE {_site_is(site)} AND time < {_after(t)}'


def influxql_events(site: str | None, t0: datetime, t1: datetime) -> str:
    """InfluxQL for the events in [t0, t1] (of ``site``), one series per site/asset/kind."""
    where = f"time >= {dt_to_ns(t0)} AND time < {_after(t1)}"
    if site is not None:
        where = f"{_site_is(site)} AND {where}"
    return f'SELECT "message", "data" FROM "event" WHERE {where} GROUP BY "site", "asset", "kind"'


def influxql_series(key: SeriesKey, t0: datetime, t1: datetime, every: timedelta) -> str:
    """InfluxQL for one series in [t0, t1]: min, max, mean and count per window of ``every``, from ``t0``.

    The windows are aligned to ``t0`` (``GROUP BY time(every, offset)``), as Flux's are.

    >>> from datetime import UTC
    >>> print(influxql_series(SeriesKey(site="s1", asset="P1", signal="t"), datetime(2026, 1, 5, 0, 7, tzinfo=UTC),
    ...                       datetime(2026, 1, 6, tzinfo=UTC), timedelta(minutes=10)))
    SELECT min("value"), max("value"), mean("value"), count("value") FROM "reading" WHERE "site"::tag = 's1' \
AND "asset"::tag = 'P1' AND "signal"::tag = 't' AND "quality"::tag = 'good' AND time >= 1767571620000000000 \
AND time < 1767657600000001000 GROUP BY time(600000000u, 420000000u) fill(none)
    """
    every_us = max(1, every // timedelta(microseconds=1))
    offset_us = (dt_to_ns(t0) // 1000) % every_us
    return ('SELECT min("value"), max("value"), mean("value"), count("value") FROM "reading" WHERE '
            f'{_site_is(key.site)} AND "asset"::tag = {influxql_string(key.asset)} AND "signal"::tag = '
            f"{influxql_string(key.signal)} AND \"quality\"::tag = 'good' AND time >= {dt_to_ns(t0)} AND time < "
            f"{_after(t1)} GROUP BY time({every_us}u, {offset_us}u) fill(none)")


def influxql_points(key: SeriesKey, t0: datetime, t1: datetime, *, count_only: bool = False) -> str:
    """InfluxQL for the GOOD points of one series in [t0, t1] (or only how many there are)."""
    what = 'count("value")' if count_only else '"value"'
    return (f'SELECT {what} FROM "reading" WHERE {_site_is(key.site)} AND "asset"::tag = '
            f"{influxql_string(key.asset)} AND \"signal\"::tag = {influxql_string(key.signal)} AND "
            f"\"quality\"::tag = 'good' AND time >= {dt_to_ns(t0)} AND time < {_after(t1)}")


def influxql_signals(site: str | None) -> str:
    """InfluxQL listing the series of readings (``SHOW SERIES``: one key per asset/signal/quality)."""
    where = "" if site is None else f' WHERE "site" = {influxql_string(site)}'
    return f'SHOW SERIES FROM "reading"{where}'
