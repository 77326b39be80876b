"""Monte Carlo: determinism across executors, common random numbers, stopping, progress, Dask."""

from __future__ import annotations

import math
from concurrent.futures import Executor

import pytest

from tests.twin.sim.helpers import AS_OF, tiny_fleet
from twin.live import initial_state
from twin.sim.build import fork
from twin.sim.montecarlo import StopRule, chunks, run
from twin.sim.projection import FLEET
from twin.sim.scenario import CycleTimeFactor, Scenario
from twin.spec import Role


def _data(scenario: Scenario | None = None, orders_per_day: float = 24.0):  # type: ignore[no-untyped-def]
    fleet = tiny_fleet(orders_per_day)
    return fork(fleet, initial_state(fleet, AS_OF), scenario, horizon_s=3 * 86400.0).data


def test_same_seed_same_numbers_in_process_and_in_a_process_pool(pool: Executor) -> None:
    data = _data()
    a = run(data, replications=6, seed=42)
    b = run(data, replications=6, seed=42)
    c = run(data, replications=6, seed=42, executor=pool)
    assert a.projection().to_dict() == b.projection().to_dict() == c.projection().to_dict()
    assert [o.throughput for o in a.baseline] == [o.throughput for o in c.baseline]
    d = run(data, replications=6, seed=43)
    # another seed, other draws: the per-replication outputs differ (their mean may tie by chance)
    assert [o.units_done for o in d.baseline] != [o.units_done for o in a.baseline]


def test_identical_scenario_gives_zero_deltas_by_common_random_numbers() -> None:
    data = _data()
    res = run(data, data, replications=5, seed=7)
    for delta in res.comparison().deltas:
        assert delta.mean == 0.0 or math.isnan(delta.mean)


def test_faster_printers_raise_output_with_a_tight_paired_interval() -> None:
    # demand 40 orders/day x 2 units = 80 units/day against 2 printers x 4 parts/h x 16 h = 128 units/day:
    # halving print time cuts lead time; paired replications make the delta's interval narrow.
    base = _data(orders_per_day=40.0)
    faster = _data(Scenario(interventions=(CycleTimeFactor(factor=0.5, role=Role.PRINT),)), orders_per_day=40.0)
    cmp = run(base, faster, replications=12, seed=3).comparison()
    lead = cmp.delta("lead_time_h")
    assert lead.high < 0  # shorter lead time, significantly
    # independent runs would give a delta half-width of sqrt(hb^2 + hs^2); pairing must do better
    hb = cmp.baseline.kpi("lead_time_h").high - cmp.baseline.kpi("lead_time_h").mean
    hs = cmp.scenario.kpi("lead_time_h").high - cmp.scenario.kpi("lead_time_h").mean
    assert lead.high - lead.mean < math.hypot(hb, hs)


def test_progress_callbacks_and_partial_results_stream() -> None:
    seen: list[tuple[int, int]] = []
    partial: list[int] = []
    res = run(_data(), replications=9, seed=1, on_progress=lambda d, t: seen.append((d, t)),
              on_partial=lambda r: partial.append(r.replications))
    assert seen[-1] == (9, 9)
    assert seen[0][0] == 1  # the first chunk holds one replication: first bands come early
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert partial and partial[0] == 1 and res.replications == 9


def test_chunks_cover_every_replication_once() -> None:
    plan = chunks(100, workers=2)
    assert plan[0] == (0, 1) and plan[1] == (1, 1)
    assert sum(n for _, n in plan) == 100
    assert [f for f, _ in plan] == sorted(f for f, _ in plan)


def test_sequential_stopping_is_deterministic_and_stops_early() -> None:
    data = _data()
    rule = StopRule(kpi="utilisation", site=FLEET, half_width=0.05, min_replications=4)
    a = run(data, replications=60, seed=5, stop=rule)
    b = run(data, replications=60, seed=5, stop=rule)
    assert a.stopped_early and 4 <= a.replications < 60
    assert a.replications == b.replications
    k = a.projection().kpi("utilisation")
    assert (k.high - k.low) / 2 <= 0.05


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_numbers() -> None:
    distributed = pytest.importorskip("distributed")
    data = _data()
    local = run(data, replications=4, seed=9)
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = run(data, replications=4, seed=9, executor=client.get_executor())
    assert remote.projection().to_dict() == local.projection().to_dict()
