"""Backfill emulated history: the plant process over a past period, stored as a collector would.

Readings, twin states, events and the plant's order and shipment records are written much faster
than real time. The history is EMULATED, and every caller labels it so. The same seed, truth and
start give the same history, and an emulator started with ``history_from=start`` (same seed, same
truth) continues it seamlessly.

How it is written, sample by sample (``step_s``; history before ``fine_from`` every
``older_step_s``, which makes long histories cheap):

* the plant is advanced to the sample time and its readings are folded in by ``twin.live.apply``,
  exactly as the collector folds one poll (the truth's ``[[episodes]]``, if any, raise the
  temperatures they name first: ``sensors.apply_episodes``);
* the order and shipment record versions the plant emitted since the previous sample
  (``Plant.take_records``) are folded in by ``twin.business.apply_records`` *at the time each
  happened*, before the sample's readings (at the sample's own time: after them, as the collector
  does), and every site they touch is checkpointed at that moment. ``state_at(site, t)`` replays
  readings only, so this is what makes it show, at any past moment, the open orders (operation,
  done_qty) and in-transit shipments the plant had then. Moving a site to such a moment does not
  sweep its signals for staleness: a replay to a later time sweeps them as it would from the
  previous sample, and no status change is invented between samples;
* the records go through ``intake`` (``connectors.feeds.intake.Intake``: validated, committed to
  the feeds ledger) before the historian batch that holds their effects, as the collector's feeds
  do: a live feed of the same ids and versions later is a duplicate for the ledger, and a
  collector restarted on this history re-applies the ledger without changing anything. Every
  valid record is applied to the history, also when the ledger already had it (a backfill into a
  fresh historian beside an old ledger still shows the orders); records the ledger refuses
  (conflicts: the same id and version with another content) are counted in ``rejected``.

A checkpoint is a whole site state (25-80 kB with its 200 recent events, ~1.5 ms to encode), so
the checkpoints of the order changes are most of a backfill's cost after the readings themselves;
``older_orders_every_s`` thins them before ``fine_from`` (see :func:`backfill`). The historian and
ledger writes run in a writer thread, one batch in flight, while the next batch is sampled.

:func:`existing_data` says what a historian already holds in a range (backfills refuse to overlap).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from connectors.emulator.plant import Plant
from connectors.emulator.sensors import apply_episodes
from connectors.emulator.truth import Episode, Truth
from connectors.feeds.intake import Intake
from connectors.feeds.parse import Line
from twin import business, live
from twin.business import BusinessRecord, OrderRecord
from twin.calendar import in_shift
from twin.historian import Historian, SeriesKey
from twin.readings import Reading
from twin.spec import FleetSpec, SiteId
from twin.state import Event, SiteState, TwinState

__all__ = ["BackfillResult", "Existing", "backfill", "episode_spans", "existing_data", "sample_times"]

log = logging.getLogger(__name__)

_RESOLVE_POINTS = 500  # buckets per pass when locating the first and last reading of a range


@dataclass(frozen=True, slots=True, kw_only=True)
class BackfillResult:
    """What a backfill wrote, and the twin's state at its end."""

    state: TwinState
    samples: int
    readings: int
    events: int
    checkpoints: int
    orders: int  # distinct order ids the plant reported
    order_records: int  # their record versions
    shipments: int  # distinct shipment ids
    shipment_records: int
    open_orders: int  # open at the end
    in_transit: int  # feed shipments in transit at the end
    duplicates: int = 0  # records the ledger already held (same id, version and content)
    rejected: tuple[str, ...] = ()  # why the intake refused records (conflicts with the ledger)


def sample_times(start: datetime, end: datetime, step_s: float, *, older_step_s: float | None = None,
                 fine_from: datetime | None = None) -> Iterator[datetime]:
    """``start``, then every ``older_step_s`` until ``fine_from``, every ``step_s`` after it, and ``end``.

    >>> t0 = datetime(2026, 1, 5, tzinfo=UTC)
    >>> [int((t - t0).total_seconds()) for t in sample_times(t0, t0 + timedelta(seconds=250), 60,
    ...                                                       older_step_s=100, fine_from=t0 + timedelta(seconds=150))]
    [0, 100, 150, 210, 250]
    """
    fine = timedelta(seconds=step_s)
    coarse = timedelta(seconds=older_step_s if older_step_s is not None else step_s)
    switch = fine_from if fine_from is not None else start
    t = start
    while t < end:
        yield t
        t = min(t + coarse, switch) if t < switch else t + fine
    yield end


def episode_spans(fleet: FleetSpec, truth: Truth, start: datetime, end: datetime) -> list[tuple[Episode, datetime]]:
    """When each of the truth's episodes starts in ``start``..``end``.

    At ``at`` (site time) on the ``days_back``-th most recent day on which ``at`` is in a shift and
    before ``end`` (0: ``end``'s own day). An episode whose day falls before ``start`` is left out (logged).
    """
    out = []
    for e in truth.episodes:
        site = fleet.site(e.site)
        zone = ZoneInfo(site.timezone)
        hh, mm = int(e.at[:2]), int(e.at[3:])
        day = end.astimezone(zone).date()
        found: list[datetime] = []
        for back in range(0, 60):
            t = datetime.combine(day - timedelta(days=back), time(hh, mm), tzinfo=zone).astimezone(UTC)
            if t < start:
                break
            if t < end and in_shift(site.calendar, site.timezone, t):
                found.append(t)
                if len(found) > e.days_back:
                    break
        if len(found) > e.days_back:
            out.append((e, found[e.days_back]))
        else:
            log.warning("backfill: the episode of %s at %s, %d shift day(s) back, is before %s: left out",
                        e.site, e.at, e.days_back, start.isoformat())
    return out


def _at(state: TwinState, sites: set[SiteId], t: datetime) -> TwinState:
    """``state`` with ``sites`` (and the whole) moved to ``t`` without new readings or a staleness sweep."""
    moved = {sid: replace(ss, as_of=t) for sid, ss in state.sites.items() if sid in sites and ss.as_of < t}
    return replace(state, as_of=max(state.as_of, t), sites=state.sites.merge(moved) if moved else state.sites)


def backfill(
    fleet: FleetSpec,
    historian: Historian,
    *,
    start: datetime,
    end: datetime,
    step_s: float,
    seed: int,
    truth: Truth | None = None,
    intake: Intake | None = None,
    older_step_s: float | None = None,
    fine_from: datetime | None = None,
    older_orders_every_s: float = 0.0,
    checkpoint_every_s: float = 900.0,
    batch_readings: int = 50_000,
    progress: Callable[[float], None] | None = None,
) -> BackfillResult:
    """Sample the seeded plant from ``start`` to ``end`` into ``historian`` (see the module docstring).

    Every sample goes through the live reducer, exactly as the collector does. A site's state is
    checkpointed whenever its orders or shipments change (at that moment), at the first sample
    ``checkpoint_every_s`` of plant time after its previous checkpoint (before ``fine_from``
    that many *samples*' worth: ``checkpoint_every_s x older_step_s / step_s``), and at the end.

    ``older_orders_every_s`` > 0 thins the checkpoints of order and shipment changes before
    ``fine_from``: the records are still folded in at their own times (their events keep their
    times), but a site's changes are checkpointed once per window of that many seconds, at the last
    change of the window, so ``state_at`` there may show orders and shipments up to one window late.
    ``intake`` (optional) is where the records are committed; without it they are only applied.
    ``progress`` receives the fraction done.
    """
    coarse = older_step_s if older_step_s is not None else step_s
    if not (step_s > 0 and coarse > 0 and older_orders_every_s >= 0 and checkpoint_every_s > 0) or end <= start:
        raise ValueError(f"need steps > 0 and end after start (got step {step_s}, older step {coarse}, "
                         f"older orders every {older_orders_every_s}, {start} .. {end})")
    run = _Run(fleet, historian, intake, start=start, fine_from=fine_from if fine_from is not None else start,
               orders_every_s=older_orders_every_s)
    plant = Plant(fleet, seed=seed, start=start, truth=truth)
    episodes = episode_spans(fleet, truth, start, end) if truth is not None else []
    fine_every = timedelta(seconds=checkpoint_every_s)
    older_every = timedelta(seconds=checkpoint_every_s * coarse / step_s)
    total_s = (end - start).total_seconds()
    try:
        for t in sample_times(start, end, step_s, older_step_s=older_step_s, fine_from=fine_from):
            batch = plant.readings(t)
            if episodes:  # the truth's scheduled disturbances, as the PLCs show them (none: unchanged)
                batch = apply_episodes(batch, episodes, t)
            timed = plant.take_records()
            run.take(timed)
            at_sample: list[BusinessRecord] = []
            group: list[BusinessRecord] = []
            group_t = start
            for when, rec in timed:
                if when >= t:
                    at_sample.append(rec)  # at the sample's own time: after its readings, as the collector does
                    continue
                when = max(when, run.state.as_of)
                if group and when != group_t:
                    run.fold(group, group_t)
                    group = []
                group.append(rec)
                group_t = when
            if group:
                run.fold(group, group_t)
            run.sample(batch, t)
            if at_sample:
                run.fold(at_sample, t)
            last = t >= end
            run.checkpoint(t, fine_every if t >= run.fine_from else older_every, everything=last)
            if len(run.readings) >= batch_readings or last:
                run.flush(wait=last)
                if progress is not None:
                    progress(min(1.0, (t - start).total_seconds() / total_s))
    finally:
        run.close()
    if run.rejected:
        log.warning("backfill: the intake refused %d records (first: %s)", len(run.rejected), run.rejected[0])
    state = run.state
    open_orders = sum(len(ss.orders) for ss in state.sites.values())
    in_transit = sum(1 for ss in state.sites.values() for it in ss.inventory.values() for s in it.in_transit if s.id)
    log.info("backfilled %d readings, %d events, %d checkpoints, %d order and %d shipment records",
             run.n_readings, run.n_events, run.n_checkpoints, run.order_records, run.shipment_records)
    return BackfillResult(state=state, samples=run.n_samples, readings=run.n_readings, events=run.n_events,
                          checkpoints=run.n_checkpoints, orders=len(run.orders), order_records=run.order_records,
                          shipments=len(run.shipments), shipment_records=run.shipment_records,
                          open_orders=open_orders, in_transit=in_transit, duplicates=run.duplicates,
                          rejected=tuple(run.rejected))


class _Run:
    """The working state of one backfill: the twin state, what waits to be written, the tallies."""

    def __init__(self, fleet: FleetSpec, historian: Historian, intake: Intake | None, *, start: datetime,
                 fine_from: datetime, orders_every_s: float) -> None:
        self.fleet = fleet
        self.historian = historian
        self.intake = intake
        self.start = start
        self.fine_from = fine_from
        self.orders_every_s = orders_every_s
        self.state = live.initial_state(fleet, start)
        self.readings: list[Reading] = []
        self.events: list[Event] = []
        self.states: list[SiteState] = []
        self.lines: list[Line] = []
        self.checkpointed: dict[SiteId, datetime] = {}  # when each site was last checkpointed
        self.pending: dict[SiteId, tuple[int, SiteState]] = {}  # a thinned change: (window, state after it)
        self.orders: set[str] = set()
        self.shipments: set[str] = set()
        self.order_records = self.shipment_records = self.duplicates = 0
        self.rejected: list[str] = []
        self.n_samples = self.n_readings = self.n_events = self.n_checkpoints = 0
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backfill-writer")
        self._writing: Future[None] | None = None

    def take(self, timed: list[tuple[datetime, BusinessRecord]]) -> None:
        """Count the plant's new records and queue them for the intake."""
        for _, r in timed:
            if isinstance(r, OrderRecord):
                self.orders.add(r.id)
                self.order_records += 1
            else:
                self.shipments.add(r.id)
                self.shipment_records += 1
            if self.intake is not None:
                self.lines.append(Line(line=len(self.lines) + 1, raw="", record=r))

    def _store(self, site_state: SiteState) -> None:
        self.states.append(site_state)
        self.checkpointed[site_state.site] = site_state.as_of
        self.n_checkpoints += 1

    def fold(self, recs: list[BusinessRecord], t: datetime) -> None:
        """Apply records at ``t`` (their time) and checkpoint the sites they touch (then or thinned)."""
        touched = {SiteId(r.site) for r in recs}
        self.state = _at(self.state, touched, t)
        self.state, new_events = business.apply_records(self.fleet, self.state, recs, t)
        touched |= {e.site for e in new_events}
        self.events.extend(new_events)
        self.n_events += len(new_events)
        window = -1
        if self.orders_every_s > 0 and t < self.fine_from:
            window = int((t - self.start).total_seconds() // self.orders_every_s)
        for sid in sorted(touched):
            site_state = self.state.sites.get(sid)
            if site_state is None:
                continue
            held = self.pending.pop(sid, None)
            if held is not None and held[0] != window:
                self._store(held[1])
            if window < 0:
                self._store(site_state)
            else:
                self.pending[sid] = (window, site_state)

    def sample(self, batch: list[Reading], t: datetime) -> None:
        """Fold one sample's readings in at ``t``, as the collector folds a poll."""
        self.state, new_events = live.apply(self.fleet, self.state, batch, t)
        self.readings.extend(batch)
        self.events.extend(new_events)
        self.n_samples += 1
        self.n_readings += len(batch)
        self.n_events += len(new_events)

    def checkpoint(self, t: datetime, every: timedelta, *, everything: bool) -> None:
        """Store thinned changes whose window has passed, and the sites not checkpointed for ``every``."""
        passed = (t - self.start).total_seconds()
        for sid, (window, site_state) in list(self.pending.items()):
            if everything or t >= self.fine_from or passed >= (window + 1) * self.orders_every_s:
                del self.pending[sid]
                self._store(site_state)
        for sid, site_state in self.state.sites.items():
            since = self.checkpointed.get(sid)
            if everything or since is None or t - since >= every:
                self._store(site_state)

    def flush(self, *, wait: bool = False) -> None:
        """Hand the batch to the writer thread (after the previous one is written); ``wait``: until written.

        The writer commits the batch's records to the ledger, then writes it to the historian (few
        large transactions: backfill is bulk work). SQLite works without the GIL, so the next batch
        is sampled and folded meanwhile; one batch at a time is in flight, in order.
        """
        if self._writing is not None:
            self._writing.result()  # in order, and an error of the writer stops the backfill here
            self._writing = None
        job = (self.lines, self.readings, self.states, self.events)
        self.readings, self.events, self.states, self.lines = [], [], [], []
        self._writing = self._writer.submit(self._write, *job)
        if wait:
            self._writing.result()
            self._writing = None

    def _write(self, lines: list[Line], readings: list[Reading], states: list[SiteState],
               events: list[Event]) -> None:
        if self.intake is not None and lines:
            got = self.intake.take(lines)  # the ledger first: what the historian holds is in the ledger
            self.duplicates += got.duplicates
            self.rejected.extend(rej.reason for rej in got.rejected)
        self.historian.write(readings, states, events)

    def close(self) -> None:
        """Wait for the batch in flight (its error, if any, is raised) and stop the writer thread."""
        try:
            if self._writing is not None:
                self._writing.result()
        finally:
            self._writing = None
            self._writer.shutdown(wait=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class Existing:
    """What a historian holds in a range: readings (first and last time), events and checkpoints."""

    readings: int
    signals: int
    first: datetime | None
    last: datetime | None
    events: int
    checkpoints: int  # sites whose latest checkpoint at or before the range's end lies in the range

    @property
    def empty(self) -> bool:
        return not (self.readings or self.events or self.checkpoints)

    def describe(self) -> str:
        parts: list[str] = []
        if self.readings:
            span = ""
            if self.first is not None and self.last is not None:
                span = f" from {_iso(self.first)} to {_iso(self.last)}"
            parts.append(f"{self.readings:,} readings of {self.signals} signals{span}")
        if self.events:
            parts.append(f"{self.events:,} events")
        if self.checkpoints:
            parts.append(f"checkpoints of {self.checkpoints} site(s)")
        return ", ".join(parts) or "nothing"


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def existing_data(historian: Historian, fleet: FleetSpec, start: datetime, end: datetime) -> Existing:
    """What ``historian`` already holds in ``[start, end]`` (backfills refuse to overlap it).

    Readings are found through the GOOD numeric series (every emulated or collected signal has
    some): their first and last times exactly, their number from the rollups between those two.
    Events of the range are counted, and sites whose latest checkpoint at or before ``end`` lies in
    the range (when the historian keeps checkpoints, as ``SqliteHistorian`` does).
    """
    keys = historian.signals()
    counts = historian.series(keys, start, end, 1) if keys else []
    with_data = [c.key for c in counts if any(p.count for p in c.points)]
    first = _edge(historian, with_data, start, end, first=True) if with_data else None
    last = _edge(historian, with_data, start, end, first=False) if first is not None else None
    n = n_signals = 0
    if first is not None and last is not None:
        inside = historian.series(with_data, first, last, 1)
        n = sum(p.count for c in inside for p in c.points)
        n_signals = sum(1 for c in inside if any(p.count for p in c.points))
    n_events = len(historian.events(None, start, end))
    n_checkpoints = 0
    checkpoint_at: Callable[[str, datetime], SiteState | None] | None = getattr(historian, "checkpoint_at", None)
    if checkpoint_at is not None:
        for site in fleet.sites:
            cp = checkpoint_at(site.id, end)
            if cp is not None and cp.as_of >= start:
                n_checkpoints += 1
    return Existing(readings=n, signals=n_signals, first=first, last=last, events=n_events,
                    checkpoints=n_checkpoints)


def _edge(historian: Historian, keys: list[SeriesKey], lo: datetime, hi: datetime, *, first: bool,
          depth: int = 0) -> datetime | None:
    """The first (or last) GOOD numeric reading of ``keys`` in ``[lo, hi]``, exactly.

    A downsampled answer names the buckets holding data; the edge is in the first (last) of them
    that really has a reading inside the window (a rollup bucket at the window's edge may only hold
    readings outside it), so the search narrows into it until the answer is raw points.
    """
    results = historian.series(keys, lo, hi, _RESOLVE_POINTS)
    times = sorted({p.ts for r in results for p in r.points if p.count})
    if not times:
        return None
    if depth >= 12 or all(not r.downsampled for r in results):
        inside = [t for t in times if lo <= t <= hi]
        if not inside:
            return None
        return inside[0] if first else inside[-1]
    starts = [max(t, lo) for t in times]
    ends = [max(lo, nxt - timedelta(microseconds=1)) for nxt in times[1:]] + [hi]
    order = range(len(times)) if first else range(len(times) - 1, -1, -1)
    for i in order:
        if starts[i] > ends[i]:
            continue
        got = _edge(historian, keys, starts[i], min(ends[i], hi), first=first, depth=depth + 1)
        if got is not None:
            return got
    return None
