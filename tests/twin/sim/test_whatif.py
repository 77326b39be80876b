"""The what-if orchestration (twin.sim.whatif) and the KPI table (twin.sim.kpis)."""

from __future__ import annotations

import doctest
import math
from datetime import timedelta

import twin.sim.kpis
from tests.twin.sim.helpers import AS_OF, tiny_fleet
from tests.twin.sim.memhistorian import MemoryHistorian
from twin.live import initial_site_state
from twin.sim.kpis import KPIS, SHARE_KPIS
from twin.sim.projection import KPI_NAMES
from twin.sim.scenario import CycleTimeFactor, Scenario
from twin.sim.uncertainty import Uncertainty
from twin.sim.whatif import RunSettings, prepare, run_whatif


def test_kpi_table_examples_run_and_cover_every_kpi() -> None:
    result = doctest.testmod(twin.sim.kpis)
    assert result.attempted > 0 and result.failed == 0
    assert tuple(KPIS) == KPI_NAMES and set(SHARE_KPIS) <= set(KPIS)
    assert [k.heading for k in KPIS.values()] == [
        "units finished", "orders finished", "on-time delivery %", "lead time h", "open orders (avg)",
        "utilisation %", "SKUs stocked out"]
    assert KPIS["stockout_skus"].text(math.nan) == "-" and KPIS["utilisation"].text(0.2287) == "22.9"
    assert not KPIS["lead_time_h"].higher_is_better and KPIS["units_done"].higher_is_better


def test_without_a_historian_every_site_starts_from_its_configuration() -> None:
    fleet = tiny_fleet()
    inputs = prepare(fleet, None, AS_OF, None, calibrate_days=7)
    assert inputs.sites == ("s1",) and inputs.unrecorded == ("s1",)
    assert inputs.calibration is None and inputs.params is None and inputs.uncertainty == Uncertainty()
    assert inputs.recorded_snapshot() is None
    assert inputs.snapshot().sites["s1"] == initial_site_state(fleet.site("s1"), AS_OF)
    assert inputs.initial().sites == inputs.snapshot().sites


def test_recorded_states_are_read_at_the_fork_and_calibration_before_it() -> None:
    fleet = tiny_fleet()
    store = MemoryHistorian()
    earlier = initial_site_state(fleet.site("s1"), AS_OF - timedelta(hours=2))
    store.write([], states=[earlier, initial_site_state(fleet.site("s1"), AS_OF + timedelta(hours=1))])
    inputs = prepare(fleet, store, AS_OF, ["s1"], calibrate_days=1)
    assert inputs.recorded["s1"] is earlier and inputs.unrecorded == ()
    snap = inputs.recorded_snapshot()
    assert snap is not None and snap.as_of == AS_OF and snap.sites["s1"] is earlier
    assert inputs.calibration is not None and inputs.params is inputs.calibration.params


def test_run_whatif_forks_both_on_the_same_sites_and_measures_the_shares() -> None:
    fleet = tiny_fleet(always_on=True)
    inputs = prepare(fleet, None, AS_OF)
    slower = Scenario(name="slower", interventions=(CycleTimeFactor(factor=1.5),))
    settings = RunSettings(horizon_s=12 * 3600.0, bin_s=3600.0, replications=4, seed=3, shares=True)
    done = run_whatif(inputs, inputs.snapshot(), slower, settings)
    assert done.baseline.data.sites == done.scenario.data.sites == ("s1",)
    assert done.result.replications == 4 and done.result.second_order
    assert set(done.shares) == set(SHARE_KPIS)
    assert done.result.comparison().delta("units_done").n == 4
    first = run_whatif(inputs, inputs.snapshot(), slower, RunSettings(
        horizon_s=12 * 3600.0, bin_s=3600.0, replications=4, seed=3, second_order=False, shares=True))
    assert not first.result.second_order and not first.shares  # no companion run in first order
