"""Calibration recovers MTBF, MTTR, cycle time and demand rate from history produced by the emulator.

The whole chain is real: ``connectors.emulator.plant.Plant`` (seeded, no I/O) -> the live reducer ->
a real ``connectors.store.SqliteHistorian`` file (``connectors.emulator.backfill``, as the demo
writes its history) -> ``twin.calibrate`` through the historian protocol. The fleet is made for
statistics: at the site "lab" eight cells that fail often (MTBF 1 h, MTTR 0.2 h) and run flat out
around the clock (a plant with ``demand_driven=False``: they always have work); at the site "shop"
one product ordered 300 times a day, one unit an order, whose only SKU the plant draws when the
unit starts at the pack station (a demand-driven plant of that site: one fast, reliable station,
1.7 % loaded, so a unit starts about when its order arrives).

Two checks per figure:

- against the **realised sample** (what the plant really did, from ``plant.stats`` and the stock it
  really drew): within 5 %. This isolates the measurement chain (sampling every 10 s, status events,
  counters, stock draws), which must not distort what happened;
- against the **configured value**, within the sampling error of the sample size: an exponential
  mean estimated from n observations has relative standard error 1/sqrt(n) (MTBF: n failures,
  MTTR: n repairs); a Poisson count of n orders also 1/sqrt(n); the cycle time (lognormal noise of
  mean 1, sd 3 %) is held to 1 %. The bound is 3 standard errors (99.7 %); the seed is
  fixed, so the test is deterministic and the bound only says the figure is plausible.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.emulator.plant import MachineStats, Plant
from tests import fleets as fl
from twin.readings import Reading
from twin.spec import FleetSpec, MachineStatus, Role
from twin.state import Event

pytestmark = pytest.mark.slow

T0 = datetime(2026, 11, 16, tzinfo=UTC)
DAYS = 2.0
# sampling step: a fault shorter than it may fall between two samples (~ STEP_S / 2 MTTR = 1.4 % do)
STEP_S = 20.0
MTBF_H, MTTR_H, CYCLE_S, SCRAP = 1.0, 0.2, 300.0, 0.02
CELLS = 8
ORDERS_PER_DAY, BATCH, PER_UNIT, STOCK = 300.0, 1, 3.0, 1_000_000.0
# the shop's pack station: 300 units a day x 5 s = 25 min of 24 h, 1.7 % loaded: a unit starts (and
# draws) within seconds of its order's arrival, so the draws are as random as the orders (Poisson)
PACK_S = 5.0
Z = 3.0  # standard errors allowed against the configured values


def _fleet() -> FleetSpec:
    cell = fl.template("cell", Role.ASSEMBLE, CYCLE_S, mtbf_h=MTBF_H, mttr_h=MTTR_H, scrap_rate=SCRAP)
    # never fails, never scraps: each unit of the shop draws exactly once
    packer = fl.template("packer", Role.PACK, PACK_S, mtbf_h=1e9, mttr_h=0.1, scrap_rate=0.0)
    lab = fl.site("lab", *(fl.machine(f"C{i}", cell, poll_interval_s=STEP_S) for i in range(1, CELLS + 1)))
    shop = fl.site(
        "shop", fl.machine("K1", packer, poll_interval_s=STEP_S),
        # stock that never runs out and is never reordered: every unit's draw is visible
        inventory=(fl.item("PART", name="part", initial_on_hand=STOCK, poll_interval_s=STEP_S),),
        demand=(fl.demand("kit", ORDERS_PER_DAY),),
    )
    kit = fl.product("kit", (Role.PACK,), {"PART": PER_UNIT}, batch_min=BATCH, batch_max=BATCH)
    return fl.fleet(lab, shop, id="lab", products=(kit,))


def _within_se(estimate: float, configured: float, n: int, rel_sd: float = 1.0) -> bool:
    return abs(estimate / configured - 1.0) <= Z * rel_sd / math.sqrt(n)


def _emulate(fleet: FleetSpec, db: Path) -> tuple[Plant, dict[str, MachineStats], float]:
    """Emulate ``DAYS`` into a real SQLite historian, as ``connectors.emulator.backfill`` does (its loop,
    with the lab's plant running flat out around the clock and the shop's driven by its orders).

    Returns the plant, each machine's totals at the last sample it was not in FAULT (the repairs
    completed by then and their time: a repair still going on at the end is not a sample of MTTR)
    and the stock left.
    """
    from connectors.store import SqliteHistorian
    from twin.live import apply, initial_state

    plant = Plant(fleet, seed=7, start=T0, sites=["lab"], follow_shifts=False, demand_driven=False)
    shop = Plant(fleet, seed=7, start=T0, sites=["shop"], follow_shifts=False)
    state = initial_state(fleet, T0)
    hist = SqliteHistorian(db, fleet)
    try:
        readings: list[Reading] = []
        events: list[Event] = []
        t, end, step = T0, T0 + timedelta(days=DAYS), timedelta(seconds=STEP_S)
        n = 0
        settled: dict[str, MachineStats] = {}
        while t <= end:
            batch = plant.readings(t) + shop.readings(t)
            state, new_events = apply(fleet, state, batch, t)
            readings += batch
            events += new_events
            n += 1
            for i in range(1, CELLS + 1):
                if plant.status("lab", f"C{i}") is not MachineStatus.FAULT:
                    settled[f"C{i}"] = plant.stats("lab", f"C{i}")
            if n % 180 == 1 or t + step > end:  # a checkpoint at the start and every hour of plant time
                hist.write(readings, list(state.sites.values()), events)
                readings, events = [], []
            t += step
    finally:
        hist.close()
    left = shop.values()[("shop", "PART", "on_hand")]
    assert isinstance(left, float)
    return plant, settled, left


def test_calibration_from_emulator_history_recovers_the_plant(tmp_path: Path) -> None:
    from connectors.store import SqliteHistorian
    from twin.calibrate import Source, calibrate

    fleet = _fleet()
    plant, settled, left = _emulate(fleet, tmp_path / "h.db")
    hist = SqliteHistorian(tmp_path / "h.db", fleet, readonly=True)
    try:
        cal = calibrate(fleet, hist, T0, T0 + timedelta(days=DAYS))
    finally:
        hist.close()

    failures = repairs = cycles = cycle_s = 0.0
    for i in range(1, CELLS + 1):
        real = plant.stats("lab", f"C{i}")
        done = settled[f"C{i}"]
        subject = f"lab/C{i}"
        mtbf, mttr, cycle = (cal.get(n, subject) for n in ("mtbf_h", "mttr_h", "cycle_time_s"))
        assert {mtbf.source, mttr.source, cycle.source} == {Source.HISTORY}, subject
        # each machine against what it really did. The chain sees the machine every STEP_S = 20 s, so:
        # - its operating time is right to a few samples (~80 status changes, each off by < 20 s, of
        #   ~40 h running: < 1.1 % at worst, far less as the errors have both signs);
        # - a failure whose repair ends before the next sample is not seen (chance ~ STEP_S / (2 MTTR)
        #   = 20 / 1440 = 1.4 %), nor the second of two failures within one sample interval (~0.3 %):
        #   of ~40 failures a cell ~0.7 go unseen (Poisson; 5 or more: 0.07 %). The few unseen ones are
        #   the shortest repairs, so the mean repair seen is a little longer than the realised mean, but
        #   the total time in FAULT is right (an unseen repair is under 20 s);
        # - the mean cycle (running time / counted parts) is right to the sampling of the counters.
        assert mtbf.value * mtbf.samples == pytest.approx(real.run_s / 3600.0, rel=0.01), subject
        assert 0 <= real.failures - mtbf.samples <= 4, (subject, real.failures, mtbf.samples)
        assert mttr.value * mttr.samples == pytest.approx(done.fault_s / 3600.0, rel=0.02), subject
        assert cycle.value == pytest.approx(real.cycle_s / real.cycles, rel=0.05), subject
        failures += real.failures
        repairs += done.repairs
        cycles += real.cycles
        cycle_s += real.cycle_s
    # the fleet of cells against the configuration, within the sampling error of the pooled sample:
    # about 38 h of operating time per cell in 2 days, so ~300 failures and repairs (SE ~ 6 %)
    assert failures >= 250 and repairs >= 250
    mtbf_all = sum(cal.get("mtbf_h", f"lab/C{i}").value * cal.get("mtbf_h", f"lab/C{i}").samples
                   for i in range(1, CELLS + 1)) / sum(cal.get("mtbf_h", f"lab/C{i}").samples
                                                       for i in range(1, CELLS + 1))
    mttr_all = sum(cal.get("mttr_h", f"lab/C{i}").value * cal.get("mttr_h", f"lab/C{i}").samples
                   for i in range(1, CELLS + 1)) / sum(cal.get("mttr_h", f"lab/C{i}").samples
                                                       for i in range(1, CELLS + 1))
    assert _within_se(mtbf_all, MTBF_H, int(failures)), (mtbf_all, failures)
    assert _within_se(mttr_all, MTTR_H, int(repairs)), (mttr_all, repairs)
    # cycle: 1.03 x ideal at most, mean ideal; sd of one cycle 3 %/sqrt(3), over thousands of cycles
    assert _within_se(cycle_s / cycles, CYCLE_S, int(cycles), rel_sd=0.03 / math.sqrt(3.0))
    assert cal.get("cycle_time_s", "lab/C1").value == pytest.approx(CYCLE_S, rel=0.01)

    # demand: every order's one unit draws PER_UNIT = 3 parts of PART when it starts at the pack
    # station (never scrapped: no re-make draws again) and nothing restocks it, so the orders the
    # plant really made are (stock at start - stock left) / 3
    realised = (STOCK - left) / (BATCH * PER_UNIT)
    demand = cal.get("orders_per_day", "shop/kit")
    assert demand.source is Source.HISTORY
    assert demand.value * DAYS == pytest.approx(realised, rel=0.05), (demand.value, realised)
    # ~600 orders: Poisson, SE 1/sqrt(600) = 4 %
    assert _within_se(demand.value, ORDERS_PER_DAY, int(realised)), (demand.value, realised)
    # the orders are the quantity drawn / what an order draws (3 parts), so two draws between two
    # samples (300/day x 20 s: ~3 % of the orders) lose nothing: here (no delivery, never empty) the
    # estimate is the realised count; and the bill of materials holds
    assert demand.samples == round(realised)
    assert cal.get("consumption_factor", "shop/PART").value == pytest.approx(1.0, rel=0.05)


# A batch machine fed one unit at a time: a wash-cure station (builds of up to 12, 1800 s a build
# whatever the fill) at a site with 100 one-unit orders a day and nothing else. The plant starts a
# build with whatever is queued, so builds are partly filled: a unit arrives every 864 s on average
# and a build takes 1800 s, so a build holds the ~1800 / 864 = 2.08 units that arrived during the one
# before (or, when none did, the next one: P(0) = exp(-2.08) = 0.12): ~2.2 units, far from 12.
CURE_S, CURE_BATCH, CURE_ORDERS, CURE_DAYS = 1800.0, 12, 100.0, 3.0


def _cure_fleet() -> FleetSpec:
    # no CYCLE_TIME, no JOB signal: the cycles must come from the counters
    wash = fl.template("wash", Role.POST_PROCESS, CURE_S, batch_size=CURE_BATCH, mtbf_h=1e9, mttr_h=0.1,
                       scrap_rate=0.0)
    site = fl.site("cure", fl.machine("W1", wash, poll_interval_s=STEP_S), demand=(fl.demand("part", CURE_ORDERS),))
    part = fl.product("part", (Role.POST_PROCESS,))
    return fl.fleet(site, id="cure", products=(part,))


def test_batch_machine_cycles_are_counted_by_builds_not_parts(tmp_path: Path) -> None:
    from connectors.store import SqliteHistorian
    from twin.calibrate import Source, calibrate
    from twin.live import apply, initial_state

    fleet = _cure_fleet()
    plant = Plant(fleet, seed=7, start=T0, follow_shifts=False)
    state = initial_state(fleet, T0)
    hist = SqliteHistorian(tmp_path / "h.db", fleet)
    try:
        readings: list[Reading] = []
        events: list[Event] = []
        t, end, step = T0, T0 + timedelta(days=CURE_DAYS), timedelta(seconds=STEP_S)
        n = 0
        while t <= end:
            batch = plant.readings(t)
            state, new_events = apply(fleet, state, batch, t)
            readings += batch
            events += new_events
            n += 1
            if n % 180 == 1 or t + step > end:
                hist.write(readings, list(state.sites.values()), events)
                readings, events = [], []
            t += step
    finally:
        hist.close()
    hist = SqliteHistorian(tmp_path / "h.db", fleet, readonly=True)
    try:
        cal = calibrate(fleet, hist, T0, T0 + timedelta(days=CURE_DAYS))
    finally:
        hist.close()
    real = plant.stats("cure", "W1")
    cycle = cal.get("cycle_time_s", "cure/W1")
    # ~100 units a day in builds of ~2.2: ~45 builds a day, ~135 in 3 days (>= 30: from history); parts /
    # batch size would count ~300 / 12 = 25 cycles and make each ~5 times too long
    assert real.cycles >= 60 and (real.good + real.scrap) / CURE_BATCH < real.cycles / 2
    assert cycle.source is Source.HISTORY
    assert abs(cycle.samples - real.cycles) <= 1, (cycle.samples, real.cycles)  # a build across t1 at most
    # against what the plant did (running time / builds): each build's start and end are seen at the
    # next 20 s sample, the same delay for both, so the mean is right to well under 1 %
    assert cycle.value == pytest.approx(real.cycle_s / real.cycles, rel=0.01)
    # against the true cycle: lognormal noise of cv 3 %, so the mean of n builds has a standard error of
    # 3 % / sqrt(n) (~0.26 % for ~135 builds); within 3 of them
    assert _within_se(cycle.value, CURE_S, real.cycles, rel_sd=0.03), (cycle.value, real.cycles)
