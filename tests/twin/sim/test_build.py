"""Fork from snapshots, scenario effects, and outputs checked against hand calculations."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import timedelta

import pytest

from tests.twin.sim.helpers import AS_OF, tiny_fleet
from twin.errors import SimulationError
from twin.frozen import FrozenDict
from twin.live import initial_state
from twin.sim.build import fork
from twin.sim.model import DemandData, InTransit, ItemData, MachineData, ModelData, OrderData, ProductData, simulate
from twin.sim.montecarlo import run
from twin.sim.params import DemandParams, SimParams
from twin.sim.scenario import (
    DemandMultiplier,
    MachineDown,
    MachinesAdded,
    MachinesRemoved,
    OverflowRouting,
    Scenario,
    ShipmentDelay,
    TimeRef,
)
from twin.spec import MachineId, MachineStatus, SiteId, Sku
from twin.state import InventoryState, MachineState, OpenOrder, Shipment

H = 3600.0


def _state(**site_changes):  # type: ignore[no-untyped-def]
    fleet = tiny_fleet()
    st = initial_state(fleet, AS_OF)
    site = replace(st.sites[SiteId("s1")], **site_changes)
    return fleet, site


def test_fork_reads_machine_status_stock_shipments_and_orders() -> None:
    fleet, site = _state(
        machines=FrozenDict({
            MachineId("P1"): MachineState(id=MachineId("P1"), status=MachineStatus.RUNNING,
                                          status_since=AS_OF - timedelta(minutes=30)),
            MachineId("P2"): MachineState(id=MachineId("P2"), status=MachineStatus.FAULT, status_since=AS_OF),
        }),
        inventory=FrozenDict({Sku("SUB"): InventoryState(sku=Sku("SUB"), on_hand=7.0, in_transit=(
            Shipment(sku=Sku("SUB"), qty=200, eta=AS_OF + timedelta(days=3), id="c1"),))}),
        orders=(
            OpenOrder(id="o2", product="widget", qty=3, created=AS_OF - timedelta(hours=5),
                      due=AS_OF + timedelta(hours=9), done_qty=1),
            OpenOrder(id="o1", product="widget", qty=2, created=AS_OF - timedelta(hours=2),
                      due=AS_OF + timedelta(hours=4)),
        ),
    )
    f = fork(fleet, site, Scenario(interventions=(ShipmentDelay(sku="SUB", delay_d=5),)), horizon_s=48 * H)
    m = {x.id: x for x in f.data.machines}
    assert m["P1"].initial_busy_s == pytest.approx(1800.0)  # 1 h cycle, 30 min done
    assert m["P2"].initial_repair_s == pytest.approx(2 * H)  # mean time left = MTTR (memoryless)
    assert m["PK1"].initial_busy_s == 0.0
    assert ("status_unknown_assumed_idle", "PK1") in {(n.kind, n.subject) for n in f.notes}
    items = {i.sku: i for i in f.data.items}
    assert items["SUB"].on_hand == 7.0 and items["FIL"].on_hand == 30.0  # unknown -> initial_on_hand
    assert items["SUB"].in_transit == (InTransit(eta_s=3 * 86400.0, qty=200, eta_sd_s=5 * 86400.0 * math.sqrt(0.1),
                                                 extra_delay_s=5 * 86400.0),)
    # FIFO in order of creation (o2 came 5 h ago, o1 2 h ago), as the plant's queues, not by due date
    assert [(o.id, o.qty, o.due_s) for o in f.data.orders] == [("o2", 2, 9 * H), ("o1", 2, 4 * H)]
    # Monday 2026-11-23, Berlin (UTC+1) shift 06:00-22:00 local = 05:00-21:00 UTC; fork at 06:00 UTC
    assert m["P1"].windows is not None and m["P1"].windows[:2] == ((0.0, 15 * H), (23 * H, 39 * H))


def test_machine_down_added_removed_and_demand_window() -> None:
    fleet, site = _state()
    sc = Scenario(interventions=(
        MachineDown(machine="P1", start=TimeRef(in_h=2), duration_h=8),
        MachinesAdded(site="s1", template="printer", count=2),
        MachinesRemoved(site="s1", template="packer", count=1),
        MachinesAdded(site="s1", template="packer", count=1),
        DemandMultiplier(factor=2.0, start=TimeRef(in_h=24), end=TimeRef(in_h=30)),
    ))
    f = fork(fleet, site, sc, horizon_s=48 * H)
    ids = sorted(m.id for m in f.data.machines)
    assert ids == ["P1", "P2", "s1-packer-new1", "s1-printer-new1", "s1-printer-new2"]
    p1 = next(m for m in f.data.machines if m.id == "P1")
    assert p1.windows is not None and p1.windows[:2] == ((0.0, 2 * H), (10 * H, 15 * H))
    d = f.data.demand[0]
    # 24 orders/day, flat factors -> 1 per hour; doubled from 24 h to 30 h
    rate_at = {s: r for s, r in zip(d.starts_s, d.rates_per_s, strict=True)}
    assert rate_at[0.0] == pytest.approx(1 / H)
    assert rate_at[24 * H] == pytest.approx(2 / H) and rate_at[29 * H] == pytest.approx(2 / H)
    assert rate_at[30 * H] == pytest.approx(1 / H)
    with pytest.raises(SimulationError, match="cannot remove 3"):
        fork(fleet, site, Scenario(interventions=(MachinesRemoved(site="s1", template="printer", count=3),)),
             horizon_s=H)


def test_calibrated_weekday_factors_replace_the_configured_ones() -> None:
    # tiny fleet: 24 orders/day, flat weekday and hour factors. Calibrated: 24 orders/day with weekday
    # factors (Monday first) 2, 0, 1, 1, 1, 1, 1: the fork is Monday 07:00 in Berlin, so 2 x 24 / 24 h =
    # 2 per hour until Monday 24:00 local (17 h on), none on Tuesday (17 h .. 41 h), then 1 per hour.
    fleet, site = _state()
    wf = (2.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    params = SimParams(demand=FrozenDict({("s1", "widget"): DemandParams(orders_per_day=24.0, weekday_factors=wf)}))
    d = fork(fleet, site, params=params, horizon_s=48 * H).data.demand[0]
    rate_at = {s: r for s, r in zip(d.starts_s, d.rates_per_s, strict=True)}
    assert rate_at[0.0] == pytest.approx(2 / H) and rate_at[16 * H] == pytest.approx(2 / H)
    assert rate_at[17 * H] == 0.0 and rate_at[40 * H] == 0.0
    assert rate_at[41 * H] == pytest.approx(1 / H)
    # not calibrated: the configured (flat) factors
    d = fork(fleet, site, params=SimParams(demand=FrozenDict({("s1", "widget"): DemandParams(orders_per_day=24.0)})),
             horizon_s=48 * H).data.demand[0]
    assert d.rates_per_s == pytest.approx([1 / H] * len(d.rates_per_s))


def _line(windows: tuple[tuple[float, float], ...] | None, horizon_s: float) -> ModelData:
    # one deterministic machine, 60 s per unit, 100 one-unit orders waiting at the fork
    return ModelData(
        horizon_s=horizon_s, bin_s=600.0, sites=("s",),
        machines=(MachineData(id="m", site="s", role="pack", cycle_mean_s=60.0, windows=windows),),
        products=(ProductData(id="p", routing=("pack",)),),
        orders=tuple(OrderData(id=f"o{i}", site="s", product="p", qty=1, created_s=-1.0, due_s=1800.0)
                     for i in range(100)),
    )


def test_deterministic_line_matches_hand_calculation() -> None:
    out = simulate(_line(None, 3601.0), seed=1)
    assert out.units_done["s"] == 60  # 3600 s / 60 s
    assert out.throughput["s"][:6] == [10.0] * 6  # 10 units per 600 s bin
    assert out.on_time["s"] == 30  # units done by 1800 s are on time; 30 more finished late
    assert out.late["s"] == 70  # 30 late finished + 40 due at 1800 s and not finished
    assert out.utilisation["s"][0] == pytest.approx(1.0)
    # down from 600 s to 2400 s: 10 jobs before, 20 after (2400 + 20 x 60 = 3600)
    down = simulate(_line(((0.0, 600.0), (2400.0, 3601.0)), 3601.0), seed=1)
    assert down.units_done["s"] == 30
    assert down.utilisation["s"][1] == 0.0


def test_stock_arriving_late_holds_orders_and_records_the_stockout() -> None:
    data = ModelData(
        horizon_s=10 * H, bin_s=H, sites=("s",),
        machines=(MachineData(id="m", site="s", role="pack", cycle_mean_s=10.0),),
        products=(ProductData(id="p", routing=("pack",), bom=(("BOX", 1.0),)),),
        items=(ItemData(site="s", sku="BOX", on_hand=0.0, reorder_point=-1.0, reorder_qty=0.0, lead_mean_s=H,
                        in_transit=(InTransit(eta_s=2 * H, qty=1000.0, extra_delay_s=3 * H),)),),
        demand=(DemandData(site="s", product="p", starts_s=(0.0,), rates_per_s=(20 / H,)),),
    )
    out = simulate(data, seed=2)
    # no boxes until 2 h ETA + 3 h delay = 5 h: nothing ships before, the stockout starts at the first order
    assert out.throughput["s"][:5] == [0.0] * 5
    assert sum(out.throughput["s"][5:]) > 0
    assert out.stockout_s[("s", "BOX")] < H  # first order arrives within the hour (rate 20/h)
    assert out.stock[("s", "BOX")][3] == 0.0 and out.stock[("s", "BOX")][5] > 800.0


def test_overflow_sends_orders_to_the_other_site() -> None:
    fleet = tiny_fleet(always_on=True)
    site2 = replace(fleet.sites[0], id=SiteId("s2"), demand=())
    machines = tuple(replace(m, site=SiteId("s2")) for m in site2.machines)
    fleet = replace(fleet, sites=(fleet.sites[0], replace(site2, machines=machines)))
    st = initial_state(fleet, AS_OF)
    sc = Scenario(interventions=(OverflowRouting(from_site="s1", to_site="s2", transfer_h=1, threshold=0),))
    f = fork(fleet, st, sc, horizon_s=24 * H, sites=["s1"])
    assert f.data.sites == ("s1", "s2")
    out = simulate(f.data, seed=3)
    assert out.orders_done["s1"] == 0 and out.orders_done["s2"] > 0  # threshold 0: every order moves
    assert out.throughput["s2"][0] == 0.0  # 1 h transfer: nothing can finish in the first hour


def test_projection_is_plain_json() -> None:
    fleet, site = _state()
    res = run(fork(fleet, site, horizon_s=24 * H).data, replications=3, seed=1)
    doc = res.projection().to_dict()
    json.dumps(doc, allow_nan=False)
    assert {b["metric"] for b in doc["bands"]} == {"throughput", "cumulative_units", "backlog", "wip", "utilisation",
                                                     "stock"}
    band = res.projection().band("stock", "s1/FIL")
    assert len(band.t_s) == 24 and all(lo <= mid <= hi for lo, mid, hi in zip(band.p10, band.p50, band.p90,
                                                                             strict=True))


def test_open_order_on_time_probability_with_wilson_interval() -> None:
    from twin.sim.projection import project

    # deterministic line: unit i finishes at 60 (i + 1) s; due at 1800 s -> orders o0..o29 on time
    outs = [simulate(_line(None, 3601.0), seed=1, replication=r) for r in range(3)]
    p = project(outs)
    by_id = {o.order: o for o in p.orders}
    assert by_id["o29"].probability == 1.0 and by_id["o30"].probability == 0.0
    # Wilson 95 % for 3 of 3: centre (1 + z^2/6) / (1 + z^2/3), half z sqrt(z^2/36) / (1 + z^2/3)
    z2 = 1.959963984540054**2
    assert by_id["o29"].low == pytest.approx((1 + z2 / 6 - z2 / 6) / (1 + z2 / 3))
    assert by_id["o29"].high == 1.0 and by_id["o30"].low == 0.0
    assert by_id["o0"].finish_p50_s == 60.0 and by_id["o0"].site == "s"
    assert p.kpi("on_time_rate", "s").mean == pytest.approx(30 / 100)


def test_an_idle_machine_woken_outside_its_shift_waits_for_the_next_one() -> None:
    # orders arrive only in [500 s, 501 s) while the machine's shifts are [0, 100) and [1000, 2000):
    # nothing may start before 1000 s; with 60 s per unit the k-th unit ends at 1000 + 60 k
    data = ModelData(
        horizon_s=2000.0, bin_s=500.0, sites=("s",),
        machines=(MachineData(id="m", site="s", role="pack", cycle_mean_s=60.0,
                              windows=((0.0, 100.0), (1000.0, 2000.0))),),
        products=(ProductData(id="p", routing=("pack",), due_s=10_000.0),),
        demand=(DemandData(site="s", product="p", starts_s=(0.0, 500.0, 501.0), rates_per_s=(0.0, 5.0, 0.0)),),
    )
    out = simulate(data, seed=4)
    n = out.orders_done["s"]
    assert n >= 1
    assert out.throughput["s"][:2] == [0.0, 0.0]  # nothing before 1000 s
    st = out.stations[0]
    assert st.waits_n == n  # every started job counted once
    assert st.waits_sum_s / st.waits_n >= 499.0  # each waited from ~500 s to >= 1000 s


def test_fork_takes_the_cycle_in_progress_from_the_last_counted_cycle_end() -> None:
    # Printers of 1 h cycles. P1 has been RUNNING for 3 h (back-to-back builds: the status never
    # changed), its counter last went up 10 min ago: 10 min of the build done, 50 min left. By its
    # status alone (3 h mod 1 h = 0) it would be a full hour. P2 failed after 45 min of running since
    # its last counted cycle end (RUNNING seconds 7200 at the count, 9900 at the failure): after the
    # repair 15 min are left, not the half cycle assumed without a count.
    p1 = MachineState(id=MachineId("P1"), status=MachineStatus.RUNNING, status_since=AS_OF - timedelta(hours=3),
                      status_seconds=FrozenDict({MachineStatus.RUNNING: 1000.0}),
                      counted_at=AS_OF - timedelta(minutes=10), running_s_at_count=1000.0 + 3 * H - 600.0)
    assert p1.running_s(AS_OF) - (p1.running_s_at_count or 0.0) == 600.0
    p2 = MachineState(id=MachineId("P2"), status=MachineStatus.FAULT, status_since=AS_OF - timedelta(minutes=20),
                      status_seconds=FrozenDict({MachineStatus.RUNNING: 9900.0}),
                      counted_at=AS_OF - timedelta(hours=2), running_s_at_count=7200.0)
    fleet, site = _state(machines=FrozenDict({MachineId("P1"): p1, MachineId("P2"): p2}))
    f = fork(fleet, site, None, horizon_s=24 * H)
    m = {x.id: x for x in f.data.machines}
    assert m["P1"].initial_busy_s == pytest.approx(50 * 60.0)
    assert m["P2"].initial_busy_s == pytest.approx(15 * 60.0) and m["P2"].initial_repair_s == pytest.approx(2 * H)
    assert ("fault_machine_assumed_mid_cycle_half_left", "P2") not in {(n.kind, n.subject) for n in f.notes}
    # a count a cycle or more ago (a counter that stopped counting) is not trusted: back to the status
    stale = replace(p1, running_s_at_count=1000.0)  # 3 h of running since the count
    fleet, site = _state(machines=FrozenDict({MachineId("P1"): stale}))
    assert {x.id: x for x in fork(fleet, site, None, horizon_s=24 * H).data.machines}["P1"].initial_busy_s == H
