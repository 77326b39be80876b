"""The collector loop: poll the devices, fold the readings into the twin, hand everything to a sink.

``Collector`` gathers the poller's readings, and every ``flush_interval_s`` applies the batch with
``twin.live.apply_detailed`` and calls ``sink.write(readings, states, events)`` (a ``Historian``,
or ``LoggingSink`` when there is none). Site states go to the sink when the site had events and
otherwise every ``checkpoint_interval_s``, or sooner once ``checkpoint_every_readings`` readings of
the site have arrived since its last checkpoint (so ``state_at``, which replays the readings after
a checkpoint, stays fast whatever the poll rate; the historian thins old checkpoints).
Readings the twin could not place are logged once per
(site, asset, signal, reason). The sink and the clock are injected, so tests run it without a
store and with a controlled clock.

Open orders and inbound shipments (``twin.business`` records, from ``connectors.feeds``) arrive
through ``submit(records)`` and are folded in by ``twin.business.apply_records`` in the same
``apply_pending``, after the readings; a site with business events gets a checkpoint. Other live
sources (e.g. an InfluxDB feed poller) are passed as ``sources``: objects with
``async def run(self, stop)``, started in the collector's task group, that call ``ingest(readings)``.

Forecasts of the predictive alarms (``twin.forecast.Forecast``, from ``connectors.forecaster``)
arrive through ``submit_forecast``; the latest is folded in by ``twin.forecast.apply_forecast`` in
the next ``apply_pending``, after the readings and records, so its raised/cleared events are in that
batch (and the site gets a checkpoint).

Operator events (alarm acknowledgements from the dashboard, through the feed endpoint) arrive
through ``record(events)``: they go to the sink with the next batch, unchanged, and the future
``record`` returns is done once that batch is committed, so the endpoint answers only then. If the
sink refuses the batch, the future fails with the sink's error and those events are taken out of
the batch kept to retry: the sender was told they were not recorded, and may send them again.

In ``run`` the sink's write (a SQLite commit with fsync, or a forward to InfluxDB) runs in a worker
thread, one batch at a time and in order, so a slow disk or network never stalls the polling. A
batch the sink refuses (``TwinError``, e.g. the database is locked) is kept and written again with
the next one; the failure is logged when it starts and when it ends. At most ``max_backlog``
readings wait: beyond that the oldest are dropped, and each drop is logged as an error.

Usage::

    collector = Collector(cfg.fleet, cfg.modbus, sink=historian)
    await collector.run(stop_event)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from connectors.modbus.poller import Poller
from connectors.modbus.spec import ModbusDevice
from twin import business, live
from twin.business import BusinessRecord
from twin.clock import Clock, utc_now
from twin.errors import TwinError
from twin.forecast import Forecast, apply_forecast
from twin.frozen import FrozenDict
from twin.historian import HistorianReader
from twin.readings import Reading
from twin.spec import FleetSpec, SiteId
from twin.state import Event, SiteState, TwinState

__all__ = ["Batch", "Collector", "LoggingSink", "Sink", "Source", "resume_state", "tune_gc"]

log = logging.getLogger(__name__)

Batch = tuple[list[Reading], list[SiteState], list[Event]]  # what one sink.write receives
_Waiter = tuple[tuple[Event, ...], asyncio.Future[None]]  # operator events and who waits for their commit


class Sink(Protocol):
    """Where the collector hands its output (``twin.historian.HistorianWriter`` without ``close``)."""

    def write(self, readings: Sequence[Reading], states: Sequence[SiteState] = (),
              events: Sequence[Event] = ()) -> None: ...


class Source(Protocol):
    """A live source the collector runs (the Modbus poller, an InfluxDB feed, the orders/shipments feeds)."""

    async def run(self, stop: asyncio.Event) -> None: ...


class LoggingSink:
    """A sink that only logs: counts per batch at DEBUG, each event at INFO. Keeps running totals."""

    def __init__(self) -> None:
        self.readings = 0
        self.states = 0
        self.events = 0

    def write(self, readings: Sequence[Reading], states: Sequence[SiteState] = (),
              events: Sequence[Event] = ()) -> None:
        self.readings += len(readings)
        self.states += len(states)
        self.events += len(events)
        log.debug("%d readings, %d site states, %d events", len(readings), len(states), len(events))
        for e in events:
            log.info("%s %s %s: %s", e.ts.isoformat(timespec="seconds"), e.site, e.asset, e.message)


def tune_gc() -> None:
    """Set the garbage collector for a long-running collector process; call it once, after startup.

    Readings live for one flush (0.5 s) before the historian takes them, so with CPython's default
    thresholds (700, 10, 10) the young generation is collected a few hundred times a second, each
    time walking the readings still waiting: about 3 us per block read at 10,000 reads/s, 3 % of
    the read itself (bench/modbus_bench.py). A young generation of 20,000 objects (a few MB at
    most) is collected a hundred times less often, and ``gc.freeze()`` moves everything built at
    startup (configuration, modules, the first state) out of the full collections' way.
    Reference cycles are still collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


class Collector:
    """Poll → ``twin.live`` → sink, for ``devices`` of ``fleet``. ``state`` is the latest twin state."""

    def __init__(self, fleet: FleetSpec, devices: Sequence[ModbusDevice], sink: Sink, *, clock: Clock = utc_now,
                 flush_interval_s: float = 0.5, checkpoint_interval_s: float = 300.0,
                 state: TwinState | None = None, seed: int | None = None,
                 max_backlog: int = 500_000, sources: Sequence[Source] = (),
                 checkpoint_every_readings: int = 2_000, sites: Collection[str] | None = None) -> None:
        self.fleet = fleet
        # the sites this collector owns (None: every site of the fleet). With one collector per site
        # writing one central historian, each writes only its own sites' checkpoints and events: the
        # others' staleness as seen from here (no readings of them) is not theirs to record.
        self.sites: frozenset[str] | None = frozenset(sites) if sites is not None else None
        self.sink = sink
        self._clock = clock
        self.flush_interval_s = flush_interval_s
        self.checkpoint_interval_s = checkpoint_interval_s
        self.checkpoint_every_readings = checkpoint_every_readings
        self._since_checkpoint: dict[str, int] = {}  # readings per site since its last checkpoint
        self.state = state or live.initial_state(fleet, clock())
        self.poller = Poller(devices, self.ingest, clock=clock, seed=seed)
        self._pending: list[Reading] = []
        self._pending_records: list[BusinessRecord] = []
        self._pending_forecast: Forecast | None = None  # the latest forecast, for the next batch
        self._pending_events: list[_Waiter] = []  # operator events for the next batch
        self._committing: list[_Waiter] = []  # operator events of the batch being written
        self.sources: tuple[Source, ...] = (self.poller, *sources)  # the Modbus poller is a source like the others
        self._checkpointed: dict[SiteId, float] = {}
        self._ignored_logged: set[tuple[str, str, str, str]] = set()
        self._unsent: Batch | None = None  # a batch the sink refused, written again with the next one
        self.max_backlog = max_backlog
        self._in_flight = 0
        self.flushes = 0
        self.readings_written = 0
        self.write_failures = 0
        self.readings_dropped = 0

    def ingest(self, readings: Sequence[Reading]) -> None:
        """The poller's callback: queue readings for the next flush."""
        self._pending.extend(readings)

    def add_source(self, source: Source) -> None:
        """Run ``source`` beside the poller (before ``run``); for sources that need ``submit``/``ingest``."""
        self.sources = (*self.sources, source)

    def submit(self, records: Sequence[BusinessRecord]) -> None:
        """Queue order/shipment records for the next flush (call it in the event loop's thread)."""
        self._pending_records.extend(records)

    def submit_forecast(self, forecast: Forecast) -> None:
        """Queue the forecaster's latest risks for the next flush (call it in the event loop's thread)."""
        self._pending_forecast = forecast

    def record(self, events: Sequence[Event]) -> asyncio.Future[None]:
        """Queue operator events for the next batch; the future is done once they are committed.

        Call it in the event loop's thread. The future fails with the sink's ``TwinError`` when the
        batch was refused (the events are then not written later), or when the collector stops first.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending_events.append((tuple(events), future))
        return future

    def flush(self) -> None:
        """Apply what has been gathered and hand it to the sink (also with no readings: staleness moves on)."""
        self._settle(self.write_batch(self.apply_pending()))

    def apply_pending(self) -> Batch:
        """Fold the gathered readings into ``state``; returns the batch for the sink (with any unsent one)."""
        readings, self._pending = self._pending, []
        now = self._clock()
        if now < self.state.as_of:
            now = self.state.as_of
        result = live.apply_detailed(self.fleet, self.state, readings, now)
        for ig in result.ignored:
            key = (ig.site, ig.asset, ig.signal, ig.reason)
            if key not in self._ignored_logged:
                self._ignored_logged.add(key)
                log.warning("readings of %s/%s/%s not applied: %s", ig.site, ig.asset, ig.signal, ig.reason)
        state, events = result.state, result.events
        if self.sites is not None:
            events = tuple(e for e in events if e.site in self.sites)
        if self._pending_records:
            records, self._pending_records = self._pending_records, []
            state, business_events = business.apply_records(self.fleet, state, records, now)
            events = events + business_events
        if self._pending_forecast is not None:
            forecast, self._pending_forecast = self._pending_forecast, None
            state, risk_events = apply_forecast(self.fleet, state, replace(forecast, at=max(forecast.at, now)),
                                                self.sites)
            events = events + risk_events
        self.state = state
        with_events = {e.site for e in events}
        counts = self._since_checkpoint
        for r in readings:
            counts[r.site] = counts.get(r.site, 0) + 1
        t = now.timestamp()
        states: list[SiteState] = []
        for site_id, site_state in state.sites.items():
            if self.sites is not None and site_id not in self.sites:
                continue
            last = self._checkpointed.get(site_id)
            if (site_id in with_events or last is None or t - last >= self.checkpoint_interval_s
                    or counts.get(site_id, 0) >= self.checkpoint_every_readings):
                states.append(site_state)
                self._checkpointed[site_id] = t
                counts[site_id] = 0
        waiting, self._pending_events = self._pending_events, []
        self._committing.extend(waiting)
        batch: Batch = (readings, states, [*events, *(e for evs, _ in waiting for e in evs)])
        unsent, self._unsent = self._unsent, None
        if unsent is not None:
            batch = (unsent[0] + batch[0], unsent[1] + batch[1], unsent[2] + batch[2])
            excess = len(batch[0]) - self.max_backlog
            if excess > 0:
                self.readings_dropped += excess
                log.error("historian backlog over %d readings: the oldest %d readings are dropped "
                          "(%d so far)", self.max_backlog, excess, self.readings_dropped)
                batch = (batch[0][excess:], batch[1], batch[2])
        return batch

    def write_batch(self, batch: Batch) -> TwinError | None:
        """Hand ``batch`` to the sink; if the sink refuses it (``TwinError``), keep it for the next flush.

        Returns the sink's error (None: committed). The operator events of the batch are not kept:
        their sender is told (``record``'s future, settled in the loop's thread).
        """
        readings, states, events = batch
        self._in_flight = len(readings)
        try:
            self.sink.write(readings, states, events)
        except TwinError as exc:
            if self._unsent is None and self.write_failures == 0:
                log.warning("historian write failed (%s); %d readings kept to retry", exc, len(readings))
            self.write_failures += 1
            refused = {id(e) for evs, _ in self._committing for e in evs}
            self._unsent = (readings, states, [e for e in events if id(e) not in refused]) if refused else batch
            self._in_flight = 0
            return exc
        self._in_flight = 0
        if self.write_failures:
            log.warning("historian write works again after %d failed attempts", self.write_failures)
            self.write_failures = 0
        self.flushes += 1
        self.readings_written += len(readings)
        return None

    def _settle(self, error: TwinError | None) -> None:
        """Tell the senders of the operator events just written whether they are committed (loop thread)."""
        committing, self._committing = self._committing, []
        for _, future in committing:
            if future.done():  # the request gave up waiting
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    @property
    def backlog(self) -> int:
        """Readings not yet acknowledged: gathered, being written, or refused and kept."""
        unsent = len(self._unsent[0]) if self._unsent is not None else 0
        return len(self._pending) + self._in_flight + unsent

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.flush_interval_s)
            batch = self.apply_pending()  # in the loop: the twin state has one writer
            self._settle(await asyncio.to_thread(self.write_batch, batch))  # the slow part, off the loop, in order
        stopped = TwinError("the collector stopped before recording the events; send them again")
        for _, future in self._pending_events:
            if not future.done():
                future.set_exception(stopped)
        self._pending_events = []

    async def run(self, stop: asyncio.Event) -> None:
        """Poll and flush until ``stop`` is set; the last batch is flushed before returning."""
        async with asyncio.TaskGroup() as tg:
            for i, source in enumerate(self.sources):
                tg.create_task(source.run(stop), name=f"collector-source-{i}")
            tg.create_task(self._flush_loop(stop), name="collector-flush")


def resume_state(fleet: FleetSpec, historian: HistorianReader, now: datetime) -> TwinState:
    """The twin as the historian last knew it, so a restarted collector continues its totals.

    Each site's state is ``historian.state_at(site, now)`` (checkpoint plus the readings after it),
    reconciled with the current configuration: machines and items added since are fresh, removed
    ones are dropped. Sites without history start from ``twin.live.initial_state``.
    """
    fresh = live.initial_state(fleet, now)
    sites: dict[SiteId, SiteState] = {}
    for site_id, fresh_site in fresh.sites.items():
        known = historian.state_at(site_id, now)
        if known is None:
            sites[site_id] = fresh_site
            continue
        machines = FrozenDict({mid: known.machines.get(mid, m) for mid, m in fresh_site.machines.items()})
        items = FrozenDict({sku: known.inventory.get(sku, it) for sku, it in fresh_site.inventory.items()})
        sites[site_id] = replace(known, machines=machines, inventory=items, as_of=max(known.as_of, now))
    return replace(fresh, sites=FrozenDict(sites))
