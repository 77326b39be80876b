"""Readings: timestamped samples of one signal of one asset, each with its data quality."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

__all__ = ["Quality", "Reading", "Value"]

Value = float | int | str | bool | None
_ZERO = timedelta(0)


class Quality(enum.Enum):
    """Data quality of a value. ``GOOD`` is current and valid; the others say why not."""

    GOOD = "good"
    STALE = "stale"  # not refreshed within its expected interval, or its source is unreachable
    BAD = "bad"  # the source answered with an error, garbage or an out-of-map value


class _Fields(NamedTuple):
    ts: datetime
    site: str
    asset: str
    signal: str
    value: Value
    quality: Quality = Quality.GOOD
    reason: str = ""


class Reading(_Fields):
    """One sample: ``value`` of ``signal`` on ``asset`` (a machine id or an inventory SKU) at ``site``.

    ``ts`` is the UTC time the value was sampled. A BAD or STALE reading says why in ``reason``;
    its ``value`` may be None (there is no trustworthy value).

    An immutable named tuple (readings are made by the ten thousand a second: a tuple is built in
    one step, where a frozen dataclass sets each field on its own); construct it by keyword.

    >>> r = Reading(ts=datetime(2026, 1, 5, 8, 0, tzinfo=UTC), site="s1", asset="P1",
    ...             signal="status", value=2)
    >>> r.quality.value
    'good'
    """

    __slots__ = ()

    def __new__(
        cls, ts: datetime, site: str, asset: str, signal: str, value: Value, quality: Quality = Quality.GOOD,
        reason: str = "",
    ) -> Reading:
        tz = ts.tzinfo
        if tz is not UTC and (tz is None or ts.utcoffset() != _ZERO):  # fast path: UTC itself
            raise ValueError(f"Reading.ts must be timezone-aware UTC (got {ts!r})")
        return _tuple_new(cls, (ts, site, asset, signal, value, quality, reason))

    @classmethod
    def new(
        cls, ts: datetime, site: str, asset: str, signal: str, value: Value, quality: Quality = Quality.GOOD,
        reason: str = "",
    ) -> Reading:
        """The same reading as the constructor gives, by position: for pollers' hot paths.

        When ``ts.tzinfo`` is ``datetime.UTC`` itself (as from ``datetime.now(UTC)``) the tuple is
        built straight away; any other ``ts`` goes through the constructor and its validation.

        >>> t = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
        >>> r = Reading.new(t, "s1", "P1", "status", 2)
        >>> r == Reading(ts=t, site="s1", asset="P1", signal="status", value=2)
        True
        """
        if cls is not Reading or ts.tzinfo is not UTC:
            return cls(ts=ts, site=site, asset=asset, signal=signal, value=value, quality=quality,
                       reason=reason)
        return _tuple_new(cls, (ts, site, asset, signal, value, quality, reason))

    @classmethod
    def good_many(
        cls, ts: datetime, site: str, keys: Iterable[tuple[str, str]], values: Iterable[Value]
    ) -> list[Reading]:
        """GOOD readings sampled together: one per ``(asset, signal)`` of ``keys``, with its value.

        The same as ``[Reading.new(ts, site, a, s, v) for (a, s), v in zip(keys, values)]``, in one
        call (a poller's answered block).

        >>> t = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
        >>> rs = Reading.good_many(t, "s1", [("P1", "status"), ("P1", "temp")], [2, 41.5])
        >>> [(r.signal, r.value, r.quality.value) for r in rs]
        [('status', 2, 'good'), ('temp', 41.5, 'good')]
        """
        if cls is not Reading or ts.tzinfo is not UTC:
            return [cls.new(ts, site, asset, signal, value)
                    for (asset, signal), value in zip(keys, values, strict=True)]
        good, new = Quality.GOOD, _tuple_new
        return [new(cls, (ts, site, asset, signal, value, good, ""))
                for (asset, signal), value in zip(keys, values, strict=True)]


_tuple_new = tuple.__new__
