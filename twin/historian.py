"""The historian protocol: where readings, state checkpoints and events are kept and read back.

Two implementations live in ``connectors``: the embedded SQLite store (default) and InfluxDB.
The collector is the only writer; the dashboard, replay and calibration only read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from twin.readings import Reading
from twin.state import Event, SiteState

__all__ = ["Historian", "SeriesKey", "SeriesPoint", "SeriesResult"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesKey:
    """Names one series: a signal of an asset at a site."""

    site: str
    asset: str
    signal: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesPoint:
    """One (possibly downsampled) point. Raw points have ``min == max == value``."""

    ts: datetime
    value: float
    min: float
    max: float
    count: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesResult:
    """A series between two times, downsampled to at most ``max_points`` with spikes kept."""

    key: SeriesKey
    points: tuple[SeriesPoint, ...]
    downsampled: bool


@runtime_checkable
class Historian(Protocol):
    """Store and read back the twin's history.

    ``write`` returns only once everything it was given is durable (committed): that is the
    acknowledgement the collector relies on.
    """

    def write(
        self,
        readings: Sequence[Reading],
        states: Sequence[SiteState] = (),
        events: Sequence[Event] = (),
    ) -> None: ...

    def series(
        self, keys: Sequence[SeriesKey], t0: datetime, t1: datetime, max_points: int
    ) -> list[SeriesResult]: ...

    def state_at(self, site: str, t: datetime) -> SiteState | None: ...

    def events(self, site: str | None, t0: datetime, t1: datetime) -> list[Event]: ...

    def close(self) -> None: ...
