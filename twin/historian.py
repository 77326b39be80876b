"""The historian protocol: where readings, state checkpoints and events are kept and read back.

Two implementations live in ``connectors``: the embedded SQLite store (default) and InfluxDB.
Reading and writing are two protocols: the collector is the only writer (``HistorianWriter``); the
dashboard, replay, export and calibration get a ``HistorianReader``, and the dashboard records a
user's actions (acknowledgements) through an ``EventRecorder`` that goes to the collector.
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
    "EventRecorder",
    "Historian",
    "HistorianReader",
    "HistorianWriter",
    "SeriesKey",
    "SeriesPoint",
    "SeriesResult",
    "WriterRecorder",
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
class HistorianReader(Protocol):
    """Read the twin's history back: what the dashboard, replay, export and calibration are given."""

    def series(
        self, keys: Sequence[SeriesKey], t0: datetime, t1: datetime, max_points: int
    ) -> list[SeriesResult]: ...

    def state_at(self, site: str, t: datetime) -> SiteState | None: ...

    def events(self, site: str | None, t0: datetime, t1: datetime) -> list[Event]: ...

    def signals(self, site: str | None = None) -> list[SeriesKey]: ...

    def close(self) -> None: ...


@runtime_checkable
class HistorianWriter(Protocol):
    """Store the twin's history: only the collector (and the backfill, before it starts) holds one.

    ``write`` returns only once everything it was given is durable (committed): that is the
    acknowledgement the collector relies on.
    """

    def write(
        self,
        readings: Sequence[Reading],
        states: Sequence[SiteState] = (),
        events: Sequence[Event] = (),
    ) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Historian(HistorianReader, HistorianWriter, Protocol):
    """Both sides: the stores themselves (SQLite, InfluxDB, store-and-forward) implement this."""


@runtime_checkable
class EventRecorder(Protocol):
    """Where a user's action that must be on record goes (an alarm acknowledgement, a stop's reason).

    The dashboard holds one instead of a writer: in production it sends the events to the
    collector's authenticated endpoint, which writes them to the history like everything else and
    answers only once they are committed; they then come back to the dashboard through its reader.
    ``record`` raises ``twin.errors.TwinError`` with the reason when they were not recorded.
    """

    def record(self, events: Sequence[Event]) -> None: ...


class WriterRecorder:
    """An ``EventRecorder`` over a writer in the same process: the collector's own side of its endpoint.

    Tests of the dashboard's actions use it over a store of their own; the dashboard itself is given
    the collector's endpoint instead.
    """

    def __init__(self, writer: HistorianWriter) -> None:
        self.writer = writer

    def record(self, events: Sequence[Event]) -> None:
        self.writer.write((), (), tuple(events))


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


def history_start(historian: HistorianReader, site: str, now: datetime,
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
