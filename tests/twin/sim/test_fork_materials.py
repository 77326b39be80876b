"""Forking from what is known and drawing materials where they are used, against hand calculations.

Deterministic cycle times (cv 0) and no failures or scrap unless a test says otherwise, so every
time and stock level below is exact arithmetic (times in hours or seconds in the comments).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from tests.twin.sim.helpers import AS_OF, tiny_fleet
from twin.errors import SimulationError
from twin.frozen import FrozenDict
from twin.live import initial_state
from twin.sim.build import fork
from twin.sim.model import InTransit, ItemData, MachineData, ModelData, OrderData, ProductData, simulate
from twin.sim.params import LeadTimeParams, MachineParams, SimParams
from twin.spec import FleetSpec, InventoryItemSpec, ItemKind, MachineId, MachineStatus, SiteId, Sku
from twin.state import InventoryState, MachineState, OpenOrder, Shipment, SiteState

H = 3600.0
DAY = 86400.0


def _exact() -> SimParams:
    # deterministic cycles, no scrap: the tiny fleet's printers scrap 2 % otherwise
    return SimParams(default_cycle_cv=0.0, machines=FrozenDict({
        ("s1", "P1"): MachineParams(scrap_rate=0.0), ("s1", "P2"): MachineParams(scrap_rate=0.0)}))


def _site(fleet: FleetSpec, **changes: Any) -> SiteState:
    return replace(initial_state(fleet, AS_OF).sites[SiteId("s1")], **changes)


def test_an_order_at_its_second_operation_finishes_without_drawing_step_0_material_again() -> None:
    # tiny fleet, round the clock, no demand: widget = print -> pack, bom 0.1 kg FIL + 1 SUB, both drawn
    # at print (raw; a sub-assembly with no assemble step). Order "a" (3 units) is at pack: the packer
    # (300 s per unit) makes it in 3 x 300 = 900 s and the stock never moves (30 kg FIL, 100 SUB).
    # Order "b" (2 units) has not started: one printer builds both (batch 4) from 0 to 1 h, drawing
    # 2 x 0.1 = 0.2 kg FIL and 2 SUB at 0 s; then pack 1 h .. 1 h + 600 s.
    fleet = tiny_fleet(orders_per_day=0.0, always_on=True)
    site = _site(fleet, orders=(
        OpenOrder(id="a", product="widget", qty=3, created=AS_OF - timedelta(hours=3), due=AS_OF + timedelta(hours=9),
                  operation="pack"),
    ))
    f = fork(fleet, site, params=_exact(), horizon_s=4 * H)
    assert [(o.id, o.step, o.qty) for o in f.data.orders] == [("a", 1, 3)]
    out = simulate(f.data, seed=1)
    assert out.open_order_done_s == {"a": 900.0}
    assert out.stock[("s1", "FIL")] == [30.0] * 4 and out.stock[("s1", "SUB")] == [100.0] * 4
    # the same with a second order not started: only it draws, at its print step
    site = replace(site, orders=(*site.orders, OpenOrder(id="b", product="widget", qty=2,
                                                          created=AS_OF - timedelta(hours=1),
                                                          due=AS_OF + timedelta(hours=20))))
    f = fork(fleet, site, params=_exact(), horizon_s=4 * H)
    assert ("order_operation_unknown_assumed_first_step", "b") in {(n.kind, n.subject) for n in f.notes}
    out = simulate(f.data, seed=1)
    assert out.open_order_done_s == {"a": 900.0, "b": H + 600.0}
    assert out.stock[("s1", "FIL")][0] == pytest.approx(29.8) and out.stock[("s1", "SUB")][0] == 98.0


def test_an_orders_units_are_placed_at_the_steps_its_confirmations_say() -> None:
    # widget = print -> pack; o of 5 units with done_by_step (3, 1): 3 good units through print, 1
    # through pack (done_qty 1). So 5 - 3 = 2 units are at print and 3 - 1 = 2 at pack (the operation
    # "print", the earliest step holding units, would have put all 4 at print). Round the clock, exact
    # cycles: the packer (300 s per unit) packs the 2 at 300 s and 600 s; a printer builds the other 2
    # (batch 4, 1 h) from 0, drawing 2 x 0.1 kg FIL and 2 SUB then (the 2 at pack drew theirs before
    # the fork), and they are packed at 1 h + 300 s and 1 h + 600 s.
    fleet = tiny_fleet(orders_per_day=0.0, always_on=True)
    site = _site(fleet, orders=(
        OpenOrder(id="o", product="widget", qty=5, created=AS_OF - timedelta(hours=3), due=AS_OF + timedelta(hours=9),
                  operation="print", done_qty=1, done_by_step=(3, 1)),
    ))
    f = fork(fleet, site, params=_exact(), horizon_s=3 * H)
    assert [(o.id, o.qty, o.queued) for o in f.data.orders] == [("o", 4, (2, 2))]
    assert not any(n.subject == "o" for n in f.notes)
    out = simulate(f.data, seed=1)
    assert out.open_order_done_s == {"o": H + 600.0}
    assert out.throughput["s1"] == [2.0, 2.0, 0.0]
    assert out.stock[("s1", "FIL")][0] == pytest.approx(29.8) and out.stock[("s1", "SUB")][0] == 98.0
    # not reported (()): all 4 at the operation's step, print, with its note-free fallback
    f = fork(fleet, replace(site, orders=(replace(site.orders[0], done_by_step=()),)), params=_exact(), horizon_s=H)
    assert [(o.qty, o.step, o.queued) for o in f.data.orders] == [(4, 0, (4, 0))]


def _print_line(busy_s: float, orders: tuple[OrderData, ...], on_hand: float = 100.0) -> ModelData:
    # a printer (batch 12, 4 h per build) and a packer (300 s per unit); 1 kg of resin per unit at print
    return ModelData(
        horizon_s=12 * H, bin_s=H, sites=("s",),
        machines=(MachineData(id="P1", site="s", role="print", cycle_mean_s=4 * H, batch_size=12,
                              initial_busy_s=busy_s),
                  MachineData(id="K1", site="s", role="pack", cycle_mean_s=300.0)),
        products=(ProductData(id="p", routing=("print",), bom=(("RES", 1.0),), due_s=math.inf),
                  ProductData(id="q", routing=("pack",), due_s=math.inf)),
        items=(ItemData(site="s", sku="RES", on_hand=on_hand, reorder_point=-1.0, reorder_qty=0.0, lead_mean_s=0.0),),
        orders=orders,
    )


def test_a_printer_running_at_the_fork_delivers_the_oldest_queued_units_when_its_time_left_ends() -> None:
    # 2 h left on the build in progress; 5 units of o1 queued at print: they are in that build and
    # finish at 2 h (not at 2 h + a 4 h build of their own, as when the busy printer held nothing).
    orders: tuple[OrderData, ...] = (OrderData(id="o1", site="s", product="p", qty=5, created_s=-3 * H, due_s=1e9),)
    out = simulate(_print_line(2 * H, orders), seed=1)
    assert out.open_order_done_s == {"o1": 2 * H}
    assert out.throughput["s"][:3] == [0.0, 5.0, 0.0]  # bins (1 h, 2 h] holds the finish at 2 h
    assert out.stock[("s", "RES")] == [100.0] * 12  # their resin was drawn before the fork
    # o2's 10 units behind, created 1 h ago: the build in progress started 4 h - 2 h = 2 h ago, before
    # o2 came, so o2 is not in it (its 7 free slots stay empty, as in the plant); o2 starts a new build
    # at 2 h, drawing 10 kg then, and finishes at 2 h + 4 h = 6 h
    orders = (*orders, OrderData(id="o2", site="s", product="p", qty=10, created_s=-H, due_s=1e9))
    out = simulate(_print_line(2 * H, orders), seed=1)
    assert out.open_order_done_s == {"o1": 2 * H, "o2": 6 * H}
    assert out.stock[("s", "RES")][:3] == [100.0, 90.0, 90.0]
    # created 3 h ago instead, o2 was queued when the build started: 7 of its units are in it (12
    # slots), the other 3 start a new build at 2 h, drawing 3 kg, and finish at 6 h
    orders = (orders[0], replace(orders[1], created_s=-3 * H))
    out = simulate(_print_line(2 * H, orders), seed=1)
    assert out.open_order_done_s == {"o1": 2 * H, "o2": 6 * H}
    assert out.stock[("s", "RES")][:3] == [100.0, 97.0, 97.0]
    # two printers busy at the fork, P1 with 3 h left, P2 with 1 h: P2's build started first (3 h ago,
    # P1's 1 h ago), so P2 holds the oldest units: o1 (5 units, 3 h old) is done at 1 h, not at 3 h
    data = _print_line(3 * H, orders[:1])
    data = replace(data, machines=(data.machines[0], replace(data.machines[0], id="P2", initial_busy_s=H),
                                   data.machines[1]))
    out = simulate(data, seed=1)
    assert out.open_order_done_s == {"o1": H}


def test_a_unit_machine_running_at_the_fork_holds_the_head_order() -> None:
    # the packer has 100 s left on the first unit of o1 (3 units): it is the only packer, so the other
    # two follow on it, 300 s each: o1 done at 100 + 2 x 300 = 700 s; o2 (1 unit) behind it at 1000 s
    orders = (OrderData(id="o1", site="s", product="q", qty=3, created_s=-H, due_s=1e9),
              OrderData(id="o2", site="s", product="q", qty=1, created_s=-H, due_s=1e9))
    data = _print_line(0.0, orders)
    data = replace(data, machines=(data.machines[0], replace(data.machines[1], initial_busy_s=100.0)))
    out = simulate(data, seed=1)
    assert out.open_order_done_s == {"o1": 700.0, "o2": 1000.0}
    assert out.machine_busy_s["s/K1"] == 1000.0


def test_packaging_is_drawn_at_the_pack_step_not_when_the_order_arrives() -> None:
    # print (batch 4, 1.5 h) -> pack (300 s per unit); bom 0.2 kg FIL at print, 1 BOX at pack.
    # One order of 2 units not started at 0: FIL falls at 0 (print starts), BOX at 1.5 h when the
    # units reach pack: bin 0 (0, 1 h] shows 10 boxes, bin 1 (1 h, 2 h] 8; done at 1.5 h + 600 s.
    data = ModelData(
        horizon_s=3 * H, bin_s=H, sites=("s",),
        machines=(MachineData(id="P1", site="s", role="print", cycle_mean_s=1.5 * H, batch_size=4),
                  MachineData(id="K1", site="s", role="pack", cycle_mean_s=300.0)),
        products=(ProductData(id="p", routing=("print", "pack"), bom=(("FIL", 0.2), ("BOX", 1.0)), bom_steps=(0, 1)),),
        items=tuple(ItemData(site="s", sku=sku, on_hand=10.0, reorder_point=-1.0, reorder_qty=0.0, lead_mean_s=0.0)
                    for sku in ("FIL", "BOX")),
        orders=(OrderData(id="o", site="s", product="p", qty=2, created_s=0.0, due_s=1e9),),
    )
    out = simulate(data, seed=1)
    assert out.stock[("s", "FIL")] == [pytest.approx(9.6)] * 3
    assert out.stock[("s", "BOX")] == [10.0, 8.0, 8.0]
    assert out.open_order_done_s == {"o": 1.5 * H + 600.0}
    # the fork puts the steps there by item kind (twin.spec.consuming_step): FIL raw and SUB (no
    # assemble step in print -> pack) at print, step 0; a packaging SKU at pack, step 1
    fleet = tiny_fleet()
    box = InventoryItemSpec(sku=Sku("BOX"), name="box", kind=ItemKind.PACKAGING, unit="pcs", reorder_point=5,
                            reorder_qty=50, supplier="local", lead_time_d=1, initial_on_hand=20)
    s1 = replace(fleet.sites[0], inventory=(*fleet.sites[0].inventory, box))
    widget = replace(fleet.products[0], bom=FrozenDict({**fleet.products[0].bom, Sku("BOX"): 1.0}))
    fleet = replace(fleet, sites=(s1,), products=(widget,))
    (p,) = fork(fleet, initial_state(fleet, AS_OF), horizon_s=H).data.products
    assert dict(zip((sku for sku, _ in p.bom), p.bom_steps, strict=True)) == {"FIL": 0, "SUB": 0, "BOX": 1}


def test_a_unit_short_of_material_waits_at_its_station_and_marks_the_stockout() -> None:
    # pack at 100 s per unit, 1 BOX each, 2 boxes on hand, 100 arriving at 1000 s; o1 of 5 units at
    # pack: its first 2 units 0 .. 100 s and 100 .. 200 s, the other 3 wait (stockout at 200 s: the
    # third unit finds 0 boxes when the packer is free for it) and start when the boxes come,
    # 1000 .. 1300 s; o2 (1 unit) waits behind them although it arrived when the packer was idle
    # (first come first served): 1300 .. 1400 s.
    data = ModelData(
        horizon_s=2000.0, bin_s=500.0, sites=("s",),
        machines=(MachineData(id="K1", site="s", role="pack", cycle_mean_s=100.0),),
        products=(ProductData(id="p", routing=("pack",), bom=(("BOX", 1.0),), due_s=math.inf),),
        items=(ItemData(site="s", sku="BOX", on_hand=2.0, reorder_point=-1.0, reorder_qty=0.0, lead_mean_s=0.0,
                        in_transit=(InTransit(eta_s=1000.0, qty=100.0),)),),
        orders=(OrderData(id="o1", site="s", product="p", qty=5, created_s=0.0, due_s=1e9),
                OrderData(id="o2", site="s", product="p", qty=1, created_s=0.0, due_s=1e9)),
    )
    out = simulate(data, seed=1)
    assert out.open_order_done_s == {"o1": 1300.0, "o2": 1400.0}
    assert out.stockout_s[("s", "BOX")] == 200.0
    # bins (start, end] of 500 s; each unit's box leaves when the unit starts: 2 - 2 = 0 by 100 s; the
    # 3 units start at 1000, 1100, 1200 s, so (500, 1000] ends with 100 - 1 = 99; then 97, and o2's
    # box at 1300 s: 96
    assert out.stock[("s", "BOX")] == [0.0, 99.0, 96.0, 96.0]
    # a batch machine fills its build with what the material covers: batch 12, 4 boxes on hand, an
    # order of 6: a build of 4 at 0 .. 4 h; the other 2 start when the boxes come at 1000 s, on the
    # second printer (idle, woken by the delivery): 1000 s .. 1000 s + 4 h
    printers = tuple(MachineData(id=f"P{i}", site="s", role="pack", cycle_mean_s=4 * H, batch_size=12)
                     for i in (1, 2))
    batch = replace(data, horizon_s=6 * H, bin_s=H, machines=printers,
                    items=(replace(data.items[0], on_hand=4.0),),
                    orders=(OrderData(id="o1", site="s", product="p", qty=6, created_s=0.0, due_s=1e9),))
    out = simulate(batch, seed=1)
    assert out.open_order_done_s == {"o1": 1000.0 + 4 * H}
    assert out.machine_busy_s == {"s/P1": 4 * H, "s/P2": 4 * H}
    assert out.stock[("s", "BOX")][0] == 98.0  # 4 - 4 + 100 - 2


def test_calibrated_lead_times_replace_the_configured_ones() -> None:
    # SUB configured 30 d +- 5 d (sea); calibrated 10 d +- 2 d. New orders use 10 d / 2 d, and the
    # shipment due in 3 days spreads by 2 d x sqrt(3 / 10) (the share of the lead time left), not by
    # 5 d x sqrt(3 / 30). FIL has no calibrated figure: its configured 2 d +- 0.5 d stay.
    fleet = tiny_fleet()
    site = _site(fleet, inventory=FrozenDict({Sku("SUB"): InventoryState(sku=Sku("SUB"), on_hand=7.0, in_transit=(
        Shipment(sku=Sku("SUB"), qty=200, eta=AS_OF + timedelta(days=3), id="c1"),))}))
    params = SimParams(lead_times=FrozenDict({("s1", "SUB"): LeadTimeParams(mean_d=10.0, sd_d=2.0)}))
    items = {i.sku: i for i in fork(fleet, site, params=params, horizon_s=H).data.items}
    assert (items["SUB"].lead_mean_s, items["SUB"].lead_sd_s) == (10 * DAY, 2 * DAY)
    assert items["SUB"].in_transit[0].eta_sd_s == pytest.approx(2 * DAY * math.sqrt(0.3))
    assert (items["FIL"].lead_mean_s, items["FIL"].lead_sd_s) == (2 * DAY, 0.5 * DAY)


def test_fork_notes_say_which_busy_machines_hold_units() -> None:
    # P1 prints (status RUNNING) with one order queued at print; PK1 packs (RUNNING) with none at pack;
    # P2 is in FAULT: it failed while running, so it holds units too, half its 1 h cycle left after
    # the repair (mean time left MTTR = 2 h, memoryless)
    fleet = tiny_fleet()
    running = MachineState(id=MachineId("P1"), status=MachineStatus.RUNNING, status_since=AS_OF - timedelta(minutes=15))
    site = _site(fleet, machines=FrozenDict({
        MachineId("P1"): running, MachineId("PK1"): replace(running, id=MachineId("PK1")),
        MachineId("P2"): MachineState(id=MachineId("P2"), status=MachineStatus.FAULT, status_since=AS_OF)}),
        orders=(OpenOrder(id="a", product="widget", qty=2, created=AS_OF, due=AS_OF + timedelta(hours=9),
                          operation="print"),))
    f = fork(fleet, site, horizon_s=H)
    notes = {(n.kind, n.subject) for n in f.notes}
    assert ("running_machine_assumed_on_oldest_units", "P1") in notes
    assert ("running_machine_without_queued_units_makes_nothing", "PK1") in notes
    assert ("fault_machine_assumed_mid_cycle_half_left", "P2") in notes
    assert not any(n[1] == "a" for n in notes)  # its operation is known
    p2 = next(m for m in f.data.machines if m.id == "P2")
    assert (p2.initial_busy_s, p2.initial_repair_s) == (1800.0, 2 * H)


def test_a_machine_failed_mid_build_finishes_its_units_after_the_repair() -> None:
    # P1 failed mid-build (repair left: exponential, mean 1 h; then 2 h of the build) holding the 5
    # queued units; P2 is idle beside it and gets nothing (the units are inside P1): o1 is done at
    # P1's repair + 2 h, whatever the repair drawn; P2 never runs.
    orders = (OrderData(id="o1", site="s", product="p", qty=5, created_s=-3 * H, due_s=1e9),)
    data = _print_line(2 * H, orders)
    p1 = replace(data.machines[0], initial_repair_s=H)
    data = replace(data, machines=(p1, replace(p1, id="P2", initial_busy_s=0.0, initial_repair_s=0.0)))
    for seed in range(5):
        out = simulate(data, seed=seed)
        down = out.machine_down_s["s/P1"]
        assert down > 0 and out.open_order_done_s["o1"] == pytest.approx(down + 2 * H)
        assert out.machine_busy_s["s/P2"] == 0.0


def test_bad_steps_are_refused() -> None:
    data = _print_line(0.0, (OrderData(id="o", site="s", product="p", qty=1, created_s=0.0, due_s=1.0, step=1),))
    with pytest.raises(SimulationError, match="open order 'o': step must index the routing"):
        simulate(data, seed=1)
    queued = replace(data, orders=(OrderData(id="o", site="s", product="p", qty=2, created_s=0.0, due_s=1.0,
                                             queued=(1,)),))
    with pytest.raises(SimulationError, match=r"open order 'o': queued needs a count >= 0 per routing step"):
        simulate(queued, seed=1)
    bad = replace(data, orders=(), products=(ProductData(id="p", routing=("print",), bom=(("RES", 1.0),),
                                                         bom_steps=(0, 0)),))
    with pytest.raises(SimulationError, match="bom_steps needs one step per bom line"):
        simulate(bad, seed=1)


def test_units_of_an_order_split_across_builds_go_on_when_their_build_is_done() -> None:
    # one printer (batch 12, 4 h) -> packer (300 s per unit); o1 and o2 of 8 units at print.
    # Build 1 (0 .. 4 h) takes o1's 8 and 4 of o2; those 4 go on to pack at 4 h with o1, not with
    # o2's last 4 (build 2, 4 .. 8 h). Pack: o1 4 h .. 4 h 40 min, o2's first 4 .. 5 h, its last 4
    # 8 h .. 8 h 20 min. Output counts units as they leave the last step: 12 in (4 h, 5 h], 4 in
    # (8 h, 9 h]; o2 is done with its last unit.
    data = ModelData(
        horizon_s=10 * H, bin_s=H, sites=("s",),
        machines=(MachineData(id="P1", site="s", role="print", cycle_mean_s=4 * H, batch_size=12),
                  MachineData(id="K1", site="s", role="pack", cycle_mean_s=300.0)),
        products=(ProductData(id="p", routing=("print", "pack"), due_s=math.inf),),
        orders=tuple(OrderData(id=f"o{i}", site="s", product="p", qty=8, created_s=0.0, due_s=1e9) for i in (1, 2)),
    )
    out = simulate(data, seed=1)
    assert out.open_order_done_s == {"o1": 4 * H + 2400.0, "o2": 8 * H + 1200.0}
    assert out.throughput["s"] == [0.0] * 4 + [12.0, 0.0, 0.0, 0.0, 4.0, 0.0]
    assert out.wip["s"][4] == 4.0 and out.backlog["s"][4] == 1.0  # o2's last 4 units still printing


def test_a_shipment_on_its_first_eta_arrives_a_lead_time_after_it_was_ordered() -> None:
    # FIL: nominal lead 2 d. A shipment whose ETA is still the planned one, fork + 1 d, was ordered at
    # -1 d; with a calibrated lead of 2.5 d +- 0 it arrives at -1 d + 2.5 d = 36 h (not at its ETA).
    fleet = tiny_fleet(orders_per_day=0.0)
    eta = AS_OF + timedelta(days=1)
    shp = Shipment(sku=Sku("FIL"), qty=40, eta=eta, planned_eta=eta, id="s9")
    site = _site(fleet, inventory=FrozenDict({Sku("FIL"): InventoryState(sku=Sku("FIL"), on_hand=30.0,
                                                                          in_transit=(shp,))}))
    params = SimParams(lead_times=FrozenDict({("s1", "FIL"): LeadTimeParams(mean_d=2.5, sd_d=0.0)}))
    f = fork(fleet, site, params=params, horizon_s=2 * DAY)
    (t,) = next(i for i in f.data.items if i.sku == "FIL").in_transit
    assert (t.ordered_s, t.lead_mean_s, t.lead_sd_s) == (-DAY, 2.5 * DAY, 0.0)
    stock = simulate(f.data, seed=1).stock[("s1", "FIL")]
    assert stock[34] == 30.0 and stock[35] == 70.0  # bin 35 = (35 h, 36 h] holds the arrival at 36 h
    # a delay announced (ETA moved): the ETA is what is known, with a normal error around it
    late = replace(shp, eta=eta + timedelta(days=1))
    site = replace(site, inventory=FrozenDict({Sku("FIL"): replace(site.inventory[Sku("FIL")], in_transit=(late,))}))
    (t,) = next(i for i in fork(fleet, site, params=params, horizon_s=H).data.items if i.sku == "FIL").in_transit
    assert t.ordered_s is None and t.eta_s == 2 * DAY


def test_shipments_ordered_with_a_spread_lead_time_come_early_about_half_the_time() -> None:
    # ordered at -1 d, lead lognormal mean 2 d, sd 0.5 d: sigma^2 = ln(1 + 0.25^2) = 0.0606, mu = ln 2 -
    # sigma^2 / 2; P(L < 2 d) = Phi(sigma / 2) = 0.549, P(L < 1 d) = Phi((ln 0.5 - mu) / sigma) = 0.0036.
    # Given it has not come by the fork (L > 1 d), it beats its ETA (L < 2 d) with probability
    # (0.549 - 0.0036) / 0.9964 = 0.547; over 400 runs the share is within 0.547 +- 0.1 (4 sd).
    data = ModelData(
        horizon_s=4 * DAY, bin_s=H, sites=("s",), machines=(), products=(),
        items=(ItemData(site="s", sku="X", on_hand=0.0, reorder_point=-1.0, reorder_qty=0.0, lead_mean_s=0.0,
                        in_transit=(InTransit(eta_s=DAY, qty=1.0, ordered_s=-DAY, lead_mean_s=2 * DAY,
                                              lead_sd_s=0.5 * DAY),)),),
    )
    early = 0
    for r in range(400):
        stock = simulate(data, seed=7, replication=r).stock[("s", "X")]
        early += stock[23] == 1.0  # arrived by 24 h, its ETA
    assert early / 400 == pytest.approx(0.547, abs=0.1)


def test_a_unit_machine_starts_no_unit_after_the_shift_end() -> None:
    # packer, 600 s per unit, 1 BOX per unit, shift [0, 2000 s) then [10,000 s, 20,000 s); o1 of 5
    # units at pack. Units start at 0, 600, 1200, 1800 s (before the shift ends; a started unit runs
    # to its end: the 4th ends at 2400 s); the 5th waits for the next shift: 10,000 .. 10,600 s.
    # Output, bins of 1000 s, (start, end]: 600 | 1200, 1800 | 2400 | ... | 10,600. Stock: each unit's
    # box leaves when it starts: 10 - 2 = 8 by 1000 s, then 6; the 5th at 10,000 s, the end of bin 9
    # (9000, 10,000]: 5 from there.
    data = ModelData(
        horizon_s=12_000.0, bin_s=1000.0, sites=("s",),
        machines=(MachineData(id="K1", site="s", role="pack", cycle_mean_s=600.0,
                              windows=((0.0, 2000.0), (10_000.0, 20_000.0))),),
        products=(ProductData(id="p", routing=("pack",), bom=(("BOX", 1.0),), due_s=math.inf),),
        items=(ItemData(site="s", sku="BOX", on_hand=10.0, reorder_point=-1.0, reorder_qty=0.0, lead_mean_s=0.0),),
        orders=(OrderData(id="o1", site="s", product="p", qty=5, created_s=0.0, due_s=1e9),),
    )
    out = simulate(data, seed=1)
    assert out.open_order_done_s == {"o1": 10_600.0}
    assert out.throughput["s"] == [1.0, 2.0, 1.0] + [0.0] * 7 + [1.0, 0.0]
    assert out.stock[("s", "BOX")] == [8.0, 6.0] + [6.0] * 7 + [5.0] * 3
    assert out.machine_busy_s["s/K1"] == 3000.0


def test_free_machines_share_an_orders_units_until_the_shift_ends() -> None:
    # two packers, 600 s per unit, shift [0, 1200 s) then [10,000 s, 20,000 s); o1 of 6 units. Each free
    # packer takes the next unit: 0 s: K1 and K2 one each; 600 s: one each again; 1200 s: the shift is
    # over, no unit starts; 2 units out at 600 s and 2 at 1200 s. The last 2 start at 10,000 s, one on
    # each packer: done at 10,600 s. Busy: 6 x 600 s.
    machines = tuple(MachineData(id=f"K{i}", site="s", role="pack", cycle_mean_s=600.0,
                                 windows=((0.0, 1200.0), (10_000.0, 20_000.0))) for i in (1, 2))
    data = ModelData(
        horizon_s=12_000.0, bin_s=1000.0, sites=("s",), machines=machines,
        products=(ProductData(id="p", routing=("pack",), due_s=math.inf),),
        orders=(OrderData(id="o1", site="s", product="p", qty=6, created_s=0.0, due_s=1e9),),
    )
    out = simulate(data, seed=1)
    assert out.open_order_done_s == {"o1": 10_600.0}
    assert out.throughput["s"] == [2.0, 2.0] + [0.0] * 8 + [2.0, 0.0]
    assert out.machine_busy_s == {"s/K1": 1800.0, "s/K2": 1800.0}


def test_a_shipment_with_an_announced_eta_is_as_likely_early_as_late() -> None:
    # no order time known (a delay was announced, or a PLC reported it): ETA 24 h, error normal with sd
    # 6 h around it, so P(arrived by 24 h) = Phi(0) = 0.5; over 400 runs the share has sd
    # sqrt(0.25 / 400) = 0.025, so it lies within 0.5 +- 0.1 (4 sd). (The old half-normal delay made
    # it 0: always after the ETA, though the ETA announced is the best estimate.) By 36 h = ETA + 2 sd:
    # Phi(2) = 0.977, at least 0.977 - 4 x sqrt(0.977 x 0.023 / 400) = 0.947.
    data = ModelData(
        horizon_s=2 * DAY, bin_s=H, sites=("s",), machines=(), products=(),
        items=(ItemData(site="s", sku="X", on_hand=0.0, reorder_point=-1.0, reorder_qty=0.0, lead_mean_s=0.0,
                        in_transit=(InTransit(eta_s=DAY, qty=1.0, eta_sd_s=6 * H),)),),
    )
    by_eta = by_36h = 0
    for r in range(400):
        stock = simulate(data, seed=3, replication=r).stock[("s", "X")]
        by_eta += stock[23] == 1.0  # bin 23 = (23 h, 24 h]
        by_36h += stock[35] == 1.0
    assert 0.4 <= by_eta / 400 <= 0.6
    assert by_36h / 400 >= 0.947


def test_a_consumption_factor_scales_the_draws_at_its_own_site_only() -> None:
    # two sites, each a printer (batch 4, 1 h) -> pack; widget draws 0.1 kg FIL at print. Calibrated
    # consumption of FIL: 1.2 at s1, 1.0 at s2. One order of 2 units at each site, not started: s1's
    # build draws 2 x 0.1 x 1.2 = 0.24 kg, s2's 2 x 0.1 = 0.2 kg (the bill of materials used to be
    # global, each factor the mean over the forked sites, 1.1: 0.22 kg at both).
    base = tiny_fleet(orders_per_day=0.0, always_on=True)
    s1 = base.sites[0]
    s2 = replace(s1, id=SiteId("s2"), machines=tuple(replace(m, site=SiteId("s2")) for m in s1.machines))
    fleet = replace(base, sites=(s1, s2))
    state = initial_state(fleet, AS_OF)
    sites = {}
    for sid in ("s1", "s2"):
        order = OpenOrder(id=f"o-{sid}", product="widget", qty=2, created=AS_OF, due=AS_OF + timedelta(hours=9))
        sites[SiteId(sid)] = replace(state.sites[SiteId(sid)], orders=(order,))
    state = replace(state, sites=FrozenDict(sites))
    exact = {(sid, m): MachineParams(scrap_rate=0.0) for sid in ("s1", "s2") for m in ("P1", "P2")}
    params = SimParams(default_cycle_cv=0.0, machines=FrozenDict(exact),
                       consumption=FrozenDict({("s1", "FIL"): 1.2, ("s2", "FIL"): 1.0}))
    f = fork(fleet, state, params=params, horizon_s=2 * H)
    assert {(i.site, i.sku): i.consumption for i in f.data.items if i.sku == "FIL"} == {("s1", "FIL"): 1.2,
                                                                                      ("s2", "FIL"): 1.0}
    out = simulate(f.data, seed=1)
    assert out.stock[("s1", "FIL")][0] == pytest.approx(30.0 - 0.24)
    assert out.stock[("s2", "FIL")][0] == pytest.approx(30.0 - 0.2)
