"""Readings: timestamped samples of one signal of one asset, each with its data quality."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["Quality", "Reading", "Value"]

Value = float | int | str | bool | None
_ZERO = timedelta(0)


class Quality(enum.Enum):
    """Data quality of a value. ``GOOD`` is current and valid; the others say why not."""

    GOOD = "good"
    STALE = "stale"  # not refreshed within its expected interval, or its source is unreachable
    BAD = "bad"  # the source answered with an error, garbage or an out-of-map value


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """One sample: ``value`` of ``signal`` on ``asset`` (a machine id or an inventory SKU) at ``site``.

    ``ts`` is the UTC time the value was sampled. A BAD or STALE reading says why in ``reason``;
    its ``value`` may be None (there is no trustworthy value).

    >>> r = Reading(ts=datetime(2026, 1, 5, 8, 0, tzinfo=UTC), site="s1", asset="P1",
    ...             signal="status", value=2)
    >>> r.quality.value
    'good'
    """

    ts: datetime
    site: str
    asset: str
    signal: str
    value: Value
    quality: Quality = Quality.GOOD
    reason: str = ""

    def __post_init__(self) -> None:
        tz = self.ts.tzinfo
        if tz is not UTC and (tz is None or self.ts.utcoffset() != _ZERO):  # fast path: UTC itself
            raise ValueError(f"Reading.ts must be timezone-aware UTC (got {self.ts!r})")

    @classmethod
    def new(
        cls, ts: datetime, site: str, asset: str, signal: str, value: Value, quality: Quality = Quality.GOOD,
        reason: str = "",
    ) -> Reading:
        """The same reading as the constructor gives, about three times faster: for pollers' hot paths.

        When ``ts.tzinfo`` is ``datetime.UTC`` itself (as from ``datetime.now(UTC)``) the fields are
        set straight into the slots, skipping the frozen dataclass's per-field ``__setattr__``;
        any other ``ts`` goes through the constructor and its validation.

        >>> t = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
        >>> r = Reading.new(t, "s1", "P1", "status", 2)
        >>> r == Reading(ts=t, site="s1", asset="P1", signal="status", value=2)
        True
        """
        if cls is not Reading or ts.tzinfo is not UTC:
            return cls(ts=ts, site=site, asset=asset, signal=signal, value=value, quality=quality,
                       reason=reason)
        r = _new(cls)
        _set_ts(r, ts)
        _set_site(r, site)
        _set_asset(r, asset)
        _set_signal(r, signal)
        _set_value(r, value)
        _set_quality(r, quality)
        _set_reason(r, reason)
        return r

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
        good = Quality.GOOD
        out: list[Reading] = []
        append = out.append
        for (asset, signal), value in zip(keys, values, strict=True):
            r = _new(cls)
            _set_ts(r, ts)
            _set_site(r, site)
            _set_asset(r, asset)
            _set_signal(r, signal)
            _set_value(r, value)
            _set_quality(r, good)
            _set_reason(r, "")
            append(r)
        return out


_new = object.__new__
_Setter = Callable[[Reading, Any], None]


def _slot_setter(name: str) -> _Setter:
    setter: _Setter = vars(Reading)[name].__set__  # the slot's own descriptor: no frozen __setattr__
    return setter


_set_ts, _set_site, _set_asset, _set_signal, _set_value, _set_quality, _set_reason = (
    _slot_setter(name) for name in ("ts", "site", "asset", "signal", "value", "quality", "reason")
)
