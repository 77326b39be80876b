"""The engine's bookkeeping: series bins closed at their end (the last one too), station busy time."""

from __future__ import annotations

import pytest

from twin.sim.model import ItemData, MachineData, ModelData, OrderData, ProductData, simulate


def test_every_bin_holds_the_state_at_its_end_the_last_one_included() -> None:
    # three open orders for a role no machine serves: they stay open to the end; no demand, so stock
    # never moves. Every bin (5 of 1 h) must show 3 open orders, 2 + 4 + 6 = 12 units on the floor
    # and the 40 units on hand, the bin that ends at the horizon as much as the others.
    data = ModelData(
        horizon_s=5 * 3600.0, bin_s=3600.0, sites=("s",),
        machines=(MachineData(id="m", site="s", role="pack", cycle_mean_s=60.0),),
        products=(ProductData(id="p", routing=("print",)),),
        items=(ItemData(site="s", sku="x", on_hand=40.0, reorder_point=0.0, reorder_qty=0.0,
                        lead_mean_s=0.0),),
        orders=tuple(OrderData(id=f"o{q}", site="s", product="p", qty=q, created_s=-60.0, due_s=1e9)
                     for q in (2, 4, 6)),
    )
    out = simulate(data, seed=1)
    assert out.backlog["s"] == [3] * 5
    assert out.wip["s"] == [12] * 5
    assert out.stock[("s", "x")] == [40.0] * 5


def test_station_busy_time_counts_the_running_before_each_failure() -> None:
    # one machine failing often (MTBF 50 s of running, MTTR 5 s) working through 20 s jobs: the
    # station's busy time is all the machine's running time, the parts run before a failure included
    data = ModelData(
        horizon_s=20_000.0, bin_s=1000.0, sites=("s",),
        machines=(MachineData(id="m", site="s", role="pack", cycle_mean_s=20.0, mtbf_s=50.0, mttr_s=5.0),),
        products=(ProductData(id="p", routing=("pack",), due_s=float("inf")),),
        orders=tuple(OrderData(id=f"o{i}", site="s", product="p", qty=1, created_s=0.0, due_s=1e9)
                     for i in range(2000)),
    )
    out = simulate(data, seed=3)
    station = out.stations[0]
    assert out.machine_down_s["s/m"] > 1000.0  # it did fail: ~ 20,000 / (50 + 5) failures of 5 s
    assert station.busy_s == pytest.approx(out.machine_busy_s["s/m"], rel=1e-6)
    # always busy (a long queue): running + repairing fills the horizon up to the job in progress
    assert out.machine_busy_s["s/m"] + out.machine_down_s["s/m"] == pytest.approx(20_000.0, abs=60.0)
