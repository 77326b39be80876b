"""Readings the reducer could not apply, counted per (site, asset, signal, reason) for the collector to log once.

``IgnoredCounter`` accumulates them during one ``apply`` call (local, never shared);
``IgnoredReadings`` is what ``ApplyResult.ignored`` reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from twin.readings import Reading

__all__ = ["IgnoredCounter", "IgnoredReadings"]

_IgnoredKey = tuple[str, str, str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class IgnoredReadings:
    """Readings that could not be applied, counted per (site, asset, signal, reason).

    >>> from datetime import UTC
    >>> IgnoredReadings(site="s1", asset="X9", signal="temp", reason="unknown asset", count=3,
    ...                 first_ts=datetime(2026, 1, 5, tzinfo=UTC)).count
    3
    """

    site: str
    asset: str
    signal: str
    reason: str
    count: int
    first_ts: datetime



class IgnoredCounter:
    """Accumulates ignored readings during one ``apply`` call (local, never shared)."""

    __slots__ = ("counts", "first_ts")

    def __init__(self) -> None:
        self.counts: dict[_IgnoredKey, int] = {}
        self.first_ts: dict[_IgnoredKey, datetime] = {}

    def add(self, r: Reading, reason: str) -> None:
        key = (r.site, r.asset, r.signal, reason)
        count = self.counts.get(key)
        if count is None:
            self.counts[key] = 1
            self.first_ts[key] = r.ts
        else:
            self.counts[key] = count + 1

    def result(self) -> tuple[IgnoredReadings, ...]:
        return tuple(
            IgnoredReadings(site=site, asset=asset, signal=signal, reason=reason, count=count,
                            first_ts=self.first_ts[(site, asset, signal, reason)])
            for (site, asset, signal, reason), count in self.counts.items()
        )

