"""``twin demo`` end to end without the wire: backfill -> collector resumes -> today's KPIs equal the counters.

The demo starts the dashboard while it backfills the EMULATED history, so the dashboard's first
reads see a store that is still being filled. A snapshot of the past (the state at local midnight,
today's baseline) read then must not be kept as if final: kept for its 5-minute TTL, it made every
site's output and OEE about twice the truth for the first minutes (everything since the history
began counted as today), then halve with nothing happening.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

from plant import SEED, write_config

from connectors.collector import Collector, resume_state
from connectors.config import load
from connectors.emulator.backfill import backfill
from connectors.emulator.plant import Plant
from connectors.store import SqliteHistorian
from dashboard.queries import QueryService
from twin import kpi
from twin.spec import SignalKind
from twin.state import EventKind

NOW = datetime(2026, 1, 7, 2, 0, tzinfo=UTC)  # a Wednesday, 03:00 in Berlin, Lyon and Rotterdam
START = NOW - timedelta(hours=6)  # 21:00 local the evening before: the history crosses local midnight
STEP_S = 60.0


def _raw_counter(store: SqliteHistorian, site: str, machine: str, signal: str, t: datetime) -> int:
    """The last raw value the PLC's counter register reported at or before ``t`` (what an export shows)."""
    values = [r.value for r in store.readings(site, None, t) if r.asset == machine and r.signal == signal]
    assert values, f"{site}/{machine}/{signal}: no readings before {t}"
    return int(values[-1])  # type: ignore[arg-type]


def test_todays_output_equals_the_counters_from_the_first_read_after_a_backfill(tmp_path: Path) -> None:
    ports = (15700 + i for i in itertools.count())  # never opened: the collector is fed without its poller
    cfg = load(write_config(tmp_path, ports, stale_after_polls=3))  # round the clock: parts made at night too
    fleet = cfg.fleet
    store = SqliteHistorian(cfg.historian.path, fleet)
    reader = SqliteHistorian(cfg.historian.path, fleet)  # the dashboard's own connection
    clock = [NOW]
    queries = QueryService(fleet=fleet, historian=reader, clock=lambda: clock[0])
    # the dashboard is open while the backfill writes (twin demo starts both at once): it reads the
    # fleet tiles after every batch the backfill commits
    reads = []
    backfill(fleet, store, start=START, end=NOW, step_s=STEP_S, seed=SEED, batch_readings=5_000,
             progress=lambda _: reads.append(queries.fleet_tiles()))
    assert len(reads) > 3  # the tiles were read with the store a quarter, half, ... filled

    # the collector resumes the twin's totals from the history and goes on polling the same plant
    plant = Plant(fleet, seed=SEED, start=START)
    plant.advance(NOW)
    t = NOW
    collector = Collector(fleet, cfg.modbus, sink=store, clock=lambda: t, state=resume_state(fleet, store, NOW))
    for _ in range(10):  # ten polls a minute apart
        t += timedelta(seconds=STEP_S)
        collector.ingest(plant.readings(t))
        collector.flush()
    clock[0] = t
    queries.invalidate(keep_past=True)  # a new live read; the snapshots of the past keep their (long) TTL

    tiles = {tile.site: tile for tile in queries.fleet_tiles()}
    resets = [e for e in store.events(None, START, t) if e.kind is EventKind.COUNTER_RESET]
    assert resets == []  # no PLC restarts: output is the difference of the raw counters
    for site in fleet.sites:
        tile = tiles[site.id]
        midnight = datetime.combine(t.astimezone(_tz(site.timezone)).date(), datetime.min.time(), _tz(site.timezone))
        assert START < midnight < t or site.id == "pod-austin"
        # by hand: output today = Σ over the finishing machines (pack) of the good-parts counter now
        # minus at local midnight (Austin, 20:10 local, has had no midnight in the history: its
        # counters count from their first reading, 0 parts before it)
        expected = 0
        for m in kpi.finishing_machines(site, fleet.products):
            sig = m.template.signal_of_kind(SignalKind.GOOD_COUNT)
            assert sig is not None
            at_midnight = _raw_counter(store, site.id, m.id, sig.name, midnight) if midnight > START else \
                _first_raw(store, site.id, m.id, sig.name, t)
            expected += _raw_counter(store, site.id, m.id, sig.name, t) - at_midnight
        assert tile.output_today == expected, (site.id, tile.output_today, expected)
        # availability = run time in plan ÷ planned time: never above 100 %
        assert tile.oee.availability is None or tile.oee.availability <= 1.0, (site.id, tile.oee)
    berlin = tiles["pod-berlin"]
    assert berlin.output_today is not None and berlin.output_today > 0  # the pack station packed at night
    queries.close()
    reader.close()
    store.close()


def _first_raw(store: SqliteHistorian, site: str, machine: str, signal: str, t: datetime) -> int:
    values = [r.value for r in store.readings(site, None, t) if r.asset == machine and r.signal == signal]
    return int(values[0])  # type: ignore[arg-type]


def _tz(name: str):  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)
