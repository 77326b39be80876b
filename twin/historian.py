"""The historian protocol: where readings, state checkpoints and events are kept and read back.

Two implementations live in ``connectors``: the embedded SQLite store (default) and InfluxDB.
The collector is the only writer; the dashboard, replay and calibration only read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from operator import attrgetter
from typing import Protocol, runtime_checkable

from twin import live
from twin.readings import Reading
from twin.spec import FleetSpec
from twin.state import Event, EventKind, SiteState

__all__ = [
    "ALARM_EVENT_KINDS",
    "Historian",
    "SeriesKey",
    "SeriesPoint",
    "SeriesResult",
    "fold_readings",
    "history_start",
    "replay_site",
]

ALARM_EVENT_KINDS = frozenset({EventKind.ALARM_RAISED, EventKind.ALARM_CLEARED, EventKind.ALARM_ACKNOWLEDGED})


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

    def signals(self, site: str | None = None) -> list[SeriesKey]: ...

    def close(self) -> None: ...


def replay_site(
    spec: FleetSpec,
    site: str,
    checkpoint: SiteState | None,
    readings: Sequence[Reading],
    t: datetime,
) -> SiteState | None:
    """Rebuild a site's state at ``t`` from a checkpoint and the readings that came after it.

    Each distinct sample time is folded as one batch at ``now`` = that time (the way a collector
    applies one poll), then the state is brought to ``t`` (staleness, duration alarms). Without a
    checkpoint the replay starts from the initial state at the first reading; with neither there is
    no state (None). Readings must be of ``site``, after the checkpoint and at or before ``t``.
    """
    site_spec = spec.site(site)
    state = checkpoint
    if state is None:
        if not readings:
            return None
        state = live.initial_site_state(site_spec, min(r.ts for r in readings))
    state = fold_readings(spec, site, state, readings)
    if state.as_of != t:
        state, _ = live.apply_site(spec, site_spec, state, (), t)
    return state


def fold_readings(spec: FleetSpec, site: str, state: SiteState, readings: Sequence[Reading]) -> SiteState:
    """Fold readings into ``state`` one sample time at a time (``now`` = that time), as a replay does.

    ``fold_readings(fold_readings(s, a), b) == fold_readings(s, a + b)`` when every reading of ``b``
    is later than every reading of ``a``: a replay can be continued.
    """
    site_spec = spec.site(site)
    for ts, group in groupby(sorted(readings, key=_by_ts), key=_by_ts):
        state, _ = live.apply_site(spec, site_spec, state, group, ts)
    return state


_by_ts = attrgetter("ts")


def history_start(historian: Historian, site: str, now: datetime,
                  search: timedelta = timedelta(days=400)) -> datetime | None:
    """The first minute of ``site``'s recorded history (up to ``search`` before ``now``); None without any.

    The historian has a state at ``t`` exactly from the first reading on (``state_at`` is None
    before), so a bisection over ``[now - search, now]`` finds it in a few dozen cheap reads. Forks
    from before it (or after ``now``) are refused by the what-if paths with this range.
    """
    now = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    if historian.state_at(site, now) is None:
        return None
    lo, hi = now - search, now  # state_at(lo) None (or the search's limit), state_at(hi) known
    if historian.state_at(site, lo) is not None:
        return lo
    while hi - lo > timedelta(minutes=1):
        mid = (lo + (hi - lo) / 2).replace(second=0, microsecond=0)
        if mid <= lo:
            mid = lo + timedelta(minutes=1)
        if historian.state_at(site, mid) is None:
            lo = mid
        else:
            hi = mid
    return hi
