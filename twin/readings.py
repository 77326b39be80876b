"""Readings: timestamped samples of one signal of one asset, each with its data quality."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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
