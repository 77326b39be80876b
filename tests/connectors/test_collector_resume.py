"""A restarted collector continues from the historian: production totals are not lost or doubled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.collector import resume_state
from connectors.config import load
from connectors.emulator.plant import Plant
from connectors.store import SqliteHistorian
from twin import live
from twin.spec import MachineId, SiteId

ROOT = Path(__file__).resolve().parents[2]


def test_resume_continues_totals_from_the_store(tmp_path: Path) -> None:
    cfg = load(ROOT / "examples" / "fleet.toml")
    fleet = cfg.fleet
    start = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    # not demand-driven: the stations work from the first minute (a demand-driven plant waits for orders)
    plant = Plant(fleet, seed=3, start=start, demand_driven=False)
    store = SqliteHistorian(tmp_path / "h.db", fleet)
    state = live.initial_state(fleet, start)
    t = start
    for _ in range(40):  # 40 polls, 30 s apart: 20 minutes of a running plant
        t += timedelta(seconds=30)
        readings = plant.readings(t)
        state, events = live.apply(fleet, state, readings, t)
        store.write(readings, list(state.sites.values()), events)
    before = state.sites[SiteId("pod-berlin")].machines[MachineId("PK1")]
    assert before.good_total > 0  # the pack station (2 min cycle) made parts in 20 min

    resumed = resume_state(fleet, store, t)
    after = resumed.sites[SiteId("pod-berlin")].machines[MachineId("PK1")]
    # the same totals and counter baseline: the next reading adds only what is new
    assert (after.good_total, after.scrap_total, after.last_raw_good) == (
        before.good_total, before.scrap_total, before.last_raw_good)
    # a PLC restart after the collector restart: raw counters start again from a small number,
    # production continues from the stored total and never goes negative
    nxt = t + timedelta(seconds=30)
    plant.restart("pod-berlin", "PK1")
    state2, _ = live.apply(fleet, resumed, plant.readings(nxt), nxt)
    again = state2.sites[SiteId("pod-berlin")].machines[MachineId("PK1")]
    assert again.good_total >= before.good_total
    store.close()


def test_resume_without_history_starts_fresh(tmp_path: Path) -> None:
    cfg = load(ROOT / "examples" / "fleet.toml")
    store = SqliteHistorian(tmp_path / "empty.db", cfg.fleet)
    now = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    assert resume_state(cfg.fleet, store, now) == live.initial_state(cfg.fleet, now)
    store.close()
