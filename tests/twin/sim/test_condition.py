"""Maintenance as a what-if intervention, and failures that follow a condition hazard in the model.

The model tests use one machine that is always busy (a saturated queue, 60 s cycles), so that its
running time is its calendar time outside its maintenance, and hazards whose failure counts are
worked out by hand.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from tests.twin.sim.helpers import AS_OF, tiny_fleet
from twin.errors import ConfigError
from twin.live import initial_state
from twin.sim.build import fork
from twin.sim.model import DemandData, Hazard, MachineData, ModelData, ProductData, simulate
from twin.sim.scenario import MachineDown, Maintenance, Scenario, TimeRef, loads_scenario
from twin.sim.stats import mean_ci

H = 3600.0


def test_a_maintenance_table_is_parsed() -> None:
    sc = loads_scenario('name = "P1 tonight"\n[[maintenance]]\nmachine = "P1"\nsite = "s1"\n'
                        'start = 2026-11-23T20:00:00Z\nduration_h = 4\n', "m.toml", tiny_fleet())
    (iv,) = sc.interventions
    assert isinstance(iv, Maintenance) and not isinstance(iv, MachineDown)
    assert iv.machine == "P1" and iv.site == "s1" and iv.duration_h == 4.0
    assert iv.start.at == datetime(2026, 11, 23, 20, tzinfo=UTC)


@pytest.mark.parametrize(("text", "path", "words"), [
    ('[[maintenance]]\nmachine = "P9"\nstart_in_h = 1\nduration_h = 2', "maintenance[0].machine", "unknown machine"),
    ('[[maintenance]]\nmachine = "P1"\nstart_in_h = 1\nduration_h = 0', "maintenance[0].duration_h", "> 0"),
    ('[[maintenance]]\nmachine = "P1"\nduration_h = 3', "maintenance[0].start", "required"),
    ('[[maintenance]]\nmachine = "P1"\nstart = "soon"\nduration_h = 3', "maintenance[0].start", "date-time"),
    ('[[maintenance]]\nmachine = "P1"\nsite = "s9"\nstart_in_h = 1\nduration_h = 3', "maintenance[0].site",
     "unknown site"),
    ('[[maintenance]]\nmachine = "P1"\nstart_in_h = 1\nduration_h = 3\nreset = 0.5', "maintenance[0].reset",
     "unknown key"),
    ('maintenance = 1', "maintenance", "array of tables"),
])
def test_maintenance_errors_name_file_key_and_expectation(text: str, path: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        loads_scenario(text, "maint.toml", tiny_fleet())
    msg = str(err.value)
    assert "maint.toml" in msg and path in msg and words in msg, msg


def test_the_fork_takes_the_machine_down_and_resets_its_wear_at_the_start() -> None:
    fleet = tiny_fleet(always_on=True)
    sc = Scenario(interventions=(Maintenance(machine="P1", start=TimeRef(in_h=2), duration_h=3),))
    hazard = Hazard(step_s=H, now=(0.1 / H,), renewed=(0.01 / H,))
    f = fork(fleet, initial_state(fleet, AS_OF), sc, horizon_s=24 * H, hazards={"s1/P2": hazard})
    m = {x.id: x for x in f.data.machines}
    assert m["P1"].windows == ((0.0, 2 * H), (5 * H, 24 * H))  # around the clock but the 3 h from 2 h on
    assert m["P1"].renewals_s == (2 * H,) and m["P1"].hazard is None
    assert m["P2"].renewals_s == () and m["P2"].windows is None and m["P2"].hazard == hazard
    assert [n.subject for n in f.notes if n.kind == "failures_follow_condition_hazard"] == ["P2"]


def _busy_machine(hazard: Hazard | None, renewals: tuple[float, ...] = (), horizon_h: float = 10.0,
                  mtbf_s: float = math.inf) -> ModelData:
    """One machine with 60 s cycles and an order every 30 s: never idle. Repairs take 1 s."""
    windows = None
    if renewals:  # each maintenance takes 1 h
        windows = tuple(zip((0.0, *(r + H for r in renewals)), (*renewals, horizon_h * H), strict=True))
    return ModelData(
        horizon_s=horizon_h * H, bin_s=horizon_h * H, sites=("s",),
        machines=(MachineData(id="m", site="s", role="print", cycle_mean_s=60.0, mtbf_s=mtbf_s, mttr_s=1.0,
                              windows=windows, hazard=hazard, renewals_s=renewals),),
        products=(ProductData(id="p", routing=("print",), due_s=math.inf),),
        demand=(DemandData(site="s", product="p", starts_s=(0.0,), rates_per_s=(1 / 30.0,)),),
    )


def _failures(data: ModelData, n: int = 300) -> list[float]:
    return [float(simulate(data, seed=5, replication=r).machine_failures["s/m"]) for r in range(n)]


def test_a_worn_machine_fails_unless_maintained_first() -> None:
    # worn at the fork: hazard 0.5 / h until its first renewal, none after it. Running it for 10 h,
    # it fails once with probability 1 - exp(-0.5 x 10) = 0.993 (and never again); maintained after
    # 1 h of running (plus the end of the 60 s cycle in progress), 1 - exp(-0.5 x 1) = 0.39
    hazard = Hazard(step_s=H, now=(0.5 / H,), renewed=(0.0,))
    run = mean_ci(_failures(_busy_machine(hazard)))
    kept = mean_ci(_failures(_busy_machine(hazard, renewals=(1 * H,))))
    assert run.mean == pytest.approx(-math.expm1(-5.0), abs=0.02)
    assert abs(kept.mean - -math.expm1(-0.5)) < max(2 * kept.half_width, 0.06), kept
    assert kept.mean + kept.half_width < run.mean - run.half_width


def test_a_rising_hazard_is_inverted_segment_by_segment() -> None:
    # no hazard for the first 2 running hours, then 1 / h, renewed alike: over 10 h a machine fails
    # only after 2 h of running each time; with 1 s repairs, failures are a renewal process with
    # mean cycle 2 + 1 = 3 h, so about 10 / 3 = 3.3 in 10 h (the last cycle cut by the horizon:
    # between 3 and 4); and never in the first 2 h
    hazard = Hazard(step_s=H, now=(0.0, 0.0, 1.0 / H), renewed=(0.0, 0.0, 1.0 / H))
    counts = _failures(_busy_machine(hazard), n=200)
    assert 2.8 < mean_ci(counts).mean < 3.6
    assert max(counts) <= 5  # at most floor(10 / 2) failures fit
    early = _failures(_busy_machine(hazard, horizon_h=2.0), n=50)
    assert sum(early) == 0


def test_a_constant_hazard_without_condition_draws_what_the_mtbf_path_draws() -> None:
    # a one-step hazard of 1 / MTBF is the constant hazard: the same Exp(1) draw per failure, so the
    # same failures and output (up to rounding of the division)
    plain = _busy_machine(None, mtbf_s=2 * H)
    same = _busy_machine(Hazard(step_s=1e9, now=(1 / (2 * H),), renewed=(1 / (2 * H),)), mtbf_s=2 * H)
    for r in range(5):
        a, b = simulate(plain, seed=9, replication=r), simulate(same, seed=9, replication=r)
        assert a.machine_failures == b.machine_failures and a.units_done == b.units_done
        assert a.machine_busy_s["s/m"] == pytest.approx(b.machine_busy_s["s/m"])
    # and a maintenance on a constant hazard changes nothing but the downtime (memoryless)
    fails = mean_ci(_failures(_busy_machine(None, renewals=(H,), mtbf_s=2 * H), n=200))
    # 9 h of running (10 h minus the 1 h maintenance) / 2 h MTBF = 4.5 failures
    assert abs(fails.mean - 4.5) < max(2 * fails.half_width, 0.3), fails
