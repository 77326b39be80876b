"""A test double of the Historian protocol: keeps what it is given in lists and returns it."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime

from twin.historian import SeriesKey, SeriesPoint, SeriesResult
from twin.readings import Reading
from twin.state import Event, SiteState


class MemoryHistorian:
    """Stores readings, states and events; no downsampling (tests ask for raw points)."""

    def __init__(self) -> None:
        self.readings: dict[tuple[str, str, str], list[Reading]] = {}
        self.states: dict[str, list[SiteState]] = {}
        self.stored_events: list[Event] = []
        self.state_times: dict[str, list[datetime]] = {}

    def write(self, readings: Sequence[Reading], states: Sequence[SiteState] = (),
              events: Sequence[Event] = ()) -> None:
        for r in readings:
            self.readings.setdefault((r.site, r.asset, r.signal), []).append(r)
        for s in states:
            self.states.setdefault(s.site, []).append(s)
            self.states[s.site].sort(key=lambda x: x.as_of)
            self.state_times = {k: [x.as_of for x in v] for k, v in self.states.items()}
        self.stored_events.extend(events)

    def series(self, keys: Sequence[SeriesKey], t0: datetime, t1: datetime, max_points: int) -> list[SeriesResult]:
        out = []
        for k in keys:
            pts = tuple(
                SeriesPoint(ts=r.ts, value=float(r.value), min=float(r.value), max=float(r.value))  # type: ignore[arg-type]
                for r in self.readings.get((k.site, k.asset, k.signal), [])
                if t0 <= r.ts <= t1 and r.value is not None
            )
            out.append(SeriesResult(key=k, points=pts[:max_points], downsampled=len(pts) > max_points))
        return out

    def state_at(self, site: str, t: datetime) -> SiteState | None:
        states = self.states.get(site, [])
        i = bisect_right(self.state_times.get(site, []), t)
        return states[i - 1] if i else None

    def events(self, site: str | None, t0: datetime, t1: datetime) -> list[Event]:
        return [e for e in self.stored_events if (site is None or e.site == site) and t0 <= e.ts <= t1]

    def signals(self, site: str | None = None) -> list[SeriesKey]:
        return [SeriesKey(site=k[0], asset=k[1], signal=k[2]) for k in self.readings if site in (None, k[0])]

    def close(self) -> None:
        pass
