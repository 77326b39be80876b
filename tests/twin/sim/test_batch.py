"""Batch machines: a build is filled FCFS from the queue, one cycle time per build, orders split.

Hand-worked cases with deterministic cycle times (times in hours in the comments), then Poisson
arrivals against the theory of a bulk-service queue whose builds take everything queued.
"""

from __future__ import annotations

import math

import pytest

from tests.twin.sim.helpers import AS_OF, tiny_fleet
from twin.live import initial_state
from twin.sim.build import fork
from twin.sim.model import DemandData, MachineData, ModelData, OrderData, ProductData, simulate
from twin.sim.scenario import MachinesAdded, Scenario

H = 3600.0


def _printer(mid: str = "P1", batch: int = 12, cycle_s: float = 4 * H, **kw: float) -> MachineData:
    return MachineData(id=mid, site="s", role="print", cycle_mean_s=cycle_s, cycle_cv=0.0, batch_size=batch,
                       **kw)  # type: ignore[arg-type]


def _orders(*qtys: int) -> tuple[OrderData, ...]:
    return tuple(OrderData(id=f"o{i}", site="s", product="p", qty=q, created_s=0.0, due_s=1e9)
                 for i, q in enumerate(qtys, start=1))


def _data(machines: tuple[MachineData, ...], orders: tuple[OrderData, ...], routing: tuple[str, ...] = ("print",),
          horizon_s: float = 24 * H) -> ModelData:
    return ModelData(horizon_s=horizon_s, bin_s=H, sites=("s",), machines=machines,
                     products=(ProductData(id="p", routing=routing, due_s=math.inf),), orders=orders)


def test_a_build_takes_the_queued_orders_up_to_its_batch_size() -> None:
    # batch 12, 4 h per build, 5 orders of 3 units queued at 0: the first build takes o1..o4
    # (4 x 3 = 12 slots) and ends at 4 h; o5 waits for the second build, 4 h .. 8 h.
    out = simulate(_data((_printer(),), _orders(3, 3, 3, 3, 3)), seed=1)
    assert out.open_order_done_s == {"o1": 4 * H, "o2": 4 * H, "o3": 4 * H, "o4": 4 * H, "o5": 8 * H}
    assert out.units_done["s"] == 15
    assert out.machine_busy_s["s/P1"] == 8 * H  # two builds, not five (one per order was the old model)
    (st,) = out.stations
    # o1..o4 wait 0, o5 waits 4 h; the queue held 5 orders for 0 s, then 1 order for 4 h
    assert (st.waits_n, st.waits_sum_s) == (5, 4 * H)
    assert st.queue_area == 4 * H


def test_an_order_larger_than_the_room_left_is_split_across_builds() -> None:
    # orders of 5, 5, 5 units, batch 12. One machine: build 1 takes o1 (5), o2 (5) and 2 units of o3;
    # o3's other 3 units go in build 2, so o3 is done when its last unit is, at 8 h.
    one = simulate(_data((_printer(),), _orders(5, 5, 5)), seed=1)
    assert one.open_order_done_s == {"o1": 4 * H, "o2": 4 * H, "o3": 8 * H}
    # two machines: P1's build is the same, the idle P2 takes o3's other 3 units at once: all done at 4 h
    two = simulate(_data((_printer("P1"), _printer("P2")), _orders(5, 5, 5)), seed=1)
    assert two.open_order_done_s == {"o1": 4 * H, "o2": 4 * H, "o3": 4 * H}
    assert two.machine_busy_s == {"s/P1": 4 * H, "s/P2": 4 * H}
    # an order of 30 units on one machine: builds of 12, 12 and 6, done at 12 h
    big = simulate(_data((_printer(),), _orders(30)), seed=1)
    assert big.open_order_done_s == {"o1": 12 * H}
    assert big.machine_busy_s["s/P1"] == 12 * H


def test_a_build_starts_as_soon_as_something_is_queued_without_waiting_to_fill() -> None:
    # a pack station (batch 1, 1 h per unit) feeds the printer one unit at 1 h, 2 h and 3 h.
    # build 1 starts at 1 h with o1 alone and ends at 5 h; o2 and o3 queue meanwhile and fill
    # build 2, 5 h .. 9 h. Then pack -> print, finish: o1 at 5 h, o2 and o3 at 9 h.
    packer = MachineData(id="K1", site="s", role="pack", cycle_mean_s=H, cycle_cv=0.0)
    out = simulate(_data((packer, _printer()), _orders(1, 1, 1), routing=("pack", "print")), seed=1)
    assert out.open_order_done_s == {"o1": 5 * H, "o2": 9 * H, "o3": 9 * H}
    assert out.machine_busy_s["s/P1"] == 8 * H
    # the printer's queue: o2 waits 2 .. 5 h, o3 waits 3 .. 5 h: 3 h + 2 h
    printer = next(s for s in out.stations if s.role == "print")
    assert printer.waits_sum_s == 5 * H


def _scrap_run(qty: int, seed: int) -> tuple[float, int, int]:
    """One printer (batch 12, 4 h), parts scrapped with probability 0.5, 1 kg per attempt: (done, builds, scrap)."""
    from twin.sim.model import ItemData

    data = ModelData(
        horizon_s=1000 * H, bin_s=1000 * H, sites=("s",), machines=(_printer(scrap_rate=0.5),),
        products=(ProductData(id="p", routing=("print",), bom=(("pla", 1.0),), due_s=math.inf),),
        items=(ItemData(site="s", sku="pla", on_hand=1e6, reorder_point=0.0, reorder_qty=0.0, lead_mean_s=0.0),),
        orders=_orders(qty),
    )
    out = simulate(data, seed=seed)
    assert out.units_done["s"] == qty
    builds = out.machine_busy_s["s/P1"] / (4 * H)
    assert builds == int(builds)
    # every attempt draws 1 kg: the stock falls by the good units plus the scrapped ones
    return out.open_order_done_s["o1"], int(builds), round(1e6 - out.stock[("s", "pla")][-1]) - qty


def test_scrapped_parts_go_to_the_front_of_the_queue_for_the_next_build() -> None:
    # As in the plant, a part scrapped in a build is made again in a LATER build (the next one, first in
    # the queue), not in a spare slot of its own build (the old model). One printer, scrap 0.5.
    # 2 units: each build takes the units still to make; E[builds] from q units: E1 = 1 + E1 / 2, so
    # E1 = 2 (geometric); E2 = 1 + E1 / 2 + E2 / 4 (1 or 2 of the 2 scrapped), so E2 = 8 / 3 = 2.667
    # (sd 1.63: over 400 seeds within +- 0.33, 4 standard errors). The old model made both in the
    # first build unless 11 of its 12 slots were scrapped: E ~ 1.
    # In every run the order is done when its last build ends: done = builds x 4 h.
    runs = [_scrap_run(2, seed) for seed in range(400)]
    for done, builds, _ in runs:
        assert done == builds * 4 * H
    assert sum(b for _, b, _ in runs) / len(runs) == pytest.approx(8 / 3, abs=0.33)
    assert sum(b == 1 for _, b, _ in runs) / len(runs) == pytest.approx(0.25, abs=0.09)  # both good: 1/4
    # 24 units: build 1 takes 12; each later build takes the scrapped parts of the one before, then new
    # units up to 12 while they last. Builds are full while 12 or more wait, so builds >=
    # ceil(attempts / 12) in every run. Scrapped parts before 24 good ones: negative binomial, mean
    # 24 x 0.5 / 0.5 = 24, sd sqrt(24 x 0.5) / 0.5 = 6.9 (over 200 seeds within 24 +- 2). E[builds]
    # from the recursion E(q) = 1 + sum_s Binomial(min(12, q), 0.5)(s) E(q - min(12, q) + s), E(0) = 0:
    # E(24) = 7.04 (sd 1.85: within +- 0.5 over 200 seeds).
    expected = _expected_builds(24, batch=12, p=0.5)
    assert expected == pytest.approx(7.04, abs=0.01)
    runs = [_scrap_run(24, seed) for seed in range(200)]
    for done, builds, scrap in runs:
        assert done == builds * 4 * H and builds >= math.ceil((24 + scrap) / 12)
    assert sum(s for _, _, s in runs) / len(runs) == pytest.approx(24.0, abs=2.0)
    assert sum(b for _, b, _ in runs) / len(runs) == pytest.approx(expected, abs=0.5)


def _expected_builds(q: int, *, batch: int, p: float) -> float:
    """E[builds] to make ``q`` good parts when each build takes min(batch, waiting) and its scrap waits again."""
    memo: dict[int, float] = {0: 0.0}
    for n in range(1, q + 1):
        f = min(batch, n)
        prob = [math.comb(f, s) * p**s * (1 - p) ** (f - s) for s in range(f + 1)]
        # s = f scrapped leaves n waiting again: E(n) (1 - P(f)) = 1 + sum_{s < f} P(s) E(n - f + s)
        memo[n] = (1.0 + sum(prob[s] * memo[n - f + s] for s in range(f))) / (1.0 - prob[f])
    return memo[q]


def _poisson(lam_per_s: float, batch: int, horizon_s: float) -> ModelData:
    return ModelData(
        horizon_s=horizon_s, bin_s=horizon_s, sites=("s",), machines=(_printer(batch=batch),),
        products=(ProductData(id="p", routing=("print",), due_s=math.inf),),
        demand=(DemandData(site="s", product="p", starts_s=(0.0,), rates_per_s=(lam_per_s,)),),
    )


def test_poisson_arrivals_partly_filled_builds_utilisation_waits_and_little() -> None:
    # orders of 1 unit at rate lam, builds of up to B = 12 taking everything queued, C = 4 h fixed.
    # With lam C = 1 unit per build a queue above 12 is practically impossible (P(Poisson(1) > 12) ~ 1e-10),
    # so each build takes what arrived during the previous one, A ~ Poisson(lam C), and the machine idles
    # after a build with probability P(A = 0) = e^-1 until the next arrival (mean 1 / lam = C).
    # Busy fraction U = C / (C + e^-1 C) = 1 / (1 + e^-1) = 0.7311: far above the offered units over
    # the capacity, 1 / 12 = 0.083, since builds run almost empty (no waiting to fill).
    # An arrival waits only while a build runs (PASTA): P = U, mean residual C / 2, so Wq = U C / 2.
    c = 4 * H
    lam = 1.0 / c
    horizon = 4000 * c
    u_theory = 1.0 / (1.0 + math.exp(-1.0))
    busy, wq, lq, little_l, little_lw = [], [], [], [], []
    for seed in range(4):
        out = simulate(_poisson(lam, 12, horizon), seed=seed)
        busy.append(out.machine_busy_s["s/P1"] / horizon)
        (st,) = out.stations
        wq.append(st.waits_sum_s / st.waits_n)
        lq.append(st.queue_area / horizon)
        # Little on the whole system: L = (orders done / T) x mean lead time
        little_l.append(out.system_area["s"] / horizon)
        little_lw.append(out.orders_done["s"] / horizon * out.lead_time_sum_s["s"] / out.orders_done["s"])
        # stable: every arrival but the last few is served, one unit each
        assert out.units_done["s"] == pytest.approx(lam * horizon, rel=0.05)
    mean = sum(busy) / len(busy)
    assert mean == pytest.approx(u_theory, rel=0.01)
    assert sum(wq) / len(wq) == pytest.approx(u_theory * c / 2.0, rel=0.03)
    # Little at the queue: Lq = lam Wq
    assert sum(lq) / len(lq) == pytest.approx(lam * u_theory * c / 2.0, rel=0.03)
    for a, b in zip(little_l, little_lw, strict=True):
        assert a == pytest.approx(b, rel=0.01)


def test_an_overloaded_batch_machine_runs_full_builds() -> None:
    # lam C = 18 units offered per 4 h build, capacity 12: the queue grows, every build after the
    # first (which starts with the first arrival alone) is full: units done over T = 500 builds is
    # between 12 x 498 + 1 and 12 x 500.
    c = 4 * H
    horizon = 500 * c
    out = simulate(_poisson(18.0 / c, 12, horizon), seed=5)
    assert 12 * 498 + 1 <= out.units_done["s"] <= 12 * 500
    assert out.machine_busy_s["s/P1"] == pytest.approx(horizon, rel=0.01)


def test_batch_one_stations_pull_units_one_at_a_time_over_every_free_machine() -> None:
    # batch 1 (one-piece flow, as in the plant): each free machine takes the next queued UNIT, so an
    # order's units spread over the machines. P1 and P2, 1 h per unit; o1 (3 units) then o2 (2):
    # 0 h: P1 and P2 take o1's first two; 1 h: P1 (first in configuration order) takes o1's third,
    # P2 o2's first; 2 h: o1 done, P1 takes o2's second, done at 3 h. (The old model made o1 one job
    # of 3 h on P1 and o2 one of 2 h on P2.)
    ms = (_printer("P1", batch=1, cycle_s=H), _printer("P2", batch=1, cycle_s=H))
    out = simulate(_data(ms, _orders(3, 2)), seed=1)
    assert out.open_order_done_s == {"o1": 2 * H, "o2": 3 * H}
    assert out.machine_busy_s == {"s/P1": 3 * H, "s/P2": 2 * H}
    assert out.throughput["s"][:3] == [2.0, 2.0, 1.0]  # each unit counted when it is done


def test_fork_carries_the_templates_batch_size_to_every_machine() -> None:
    fleet = tiny_fleet()
    scenario = Scenario(interventions=(MachinesAdded(site="s1", template="printer", count=1),))
    data = fork(fleet, initial_state(fleet, AS_OF), scenario, horizon_s=86400.0).data
    sizes = {m.id: m.batch_size for m in data.machines}
    # printers build 4 parts per cycle (tiny_fleet), the added one too; the packer 1
    assert sizes == {"P1": 4, "P2": 4, "s1-printer-new1": 4, "PK1": 1}


def test_a_finished_build_joins_the_next_batch_station_whole() -> None:
    # print (batch 12, 4 h) -> wash (batch 12, 1 h), two wash machines. One build takes o1 and o2 (3 units
    # each) and ends at 4 h; its 6 units all join the wash queue before a wash starts, as the plant moves a
    # build's units: W1 washes all 6 in one build, 4 h .. 5 h, and W2 stays idle. (Starting a wash for
    # each order as it arrived gave W1 o1 and W2 o2: two builds, two machines busy for one build's work.)
    washers = tuple(MachineData(id=w, site="s", role="post-process", cycle_mean_s=H, cycle_cv=0.0, batch_size=12)
                    for w in ("W1", "W2"))
    out = simulate(_data((_printer(), *washers), _orders(3, 3), routing=("print", "post-process")), seed=1)
    assert out.open_order_done_s == {"o1": 5 * H, "o2": 5 * H}
    assert out.machine_busy_s["s/W1"] == H and out.machine_busy_s.get("s/W2", 0.0) == 0.0
    # with one washer (the case where it costs output): o2 no longer waits a second wash cycle
    one = simulate(_data((_printer(), washers[0]), _orders(3, 3), routing=("print", "post-process")), seed=1)
    assert one.open_order_done_s == {"o1": 5 * H, "o2": 5 * H}


def test_the_cycle_in_progress_at_the_fork_ends_as_the_cycles_spread() -> None:
    # A printer of 4 h builds with cv 0.10 is 3 h into a build at the fork (1 h left by the mean). Its end
    # is drawn per replication: the build's length given that it is longer than the 3 h already done,
    # minus those 3 h. 3 h is 2.5 sd below the 4 h mean, so the conditioning barely matters: the end has
    # mean ~1 h and sd ~ 0.10 x 4 h = 0.4 h (a little less: the left tail is cut). Every replication ended
    # exactly at 1 h before, as if the plant's builds never varied.
    ends = []
    for seed in range(400):
        m = MachineData(id="P1", site="s", role="print", cycle_mean_s=4 * H, cycle_cv=0.10, batch_size=12,
                        initial_busy_s=H)
        held = (OrderData(id="o1", site="s", product="p", qty=3, created_s=-4 * H, due_s=1e9),)  # before the build
        out = simulate(_data((m,), held), seed=seed)
        ends.append(out.open_order_done_s["o1"] / H)
    mean = sum(ends) / len(ends)
    sd = math.sqrt(sum((e - mean) ** 2 for e in ends) / (len(ends) - 1))
    assert mean == pytest.approx(1.0, abs=0.06)  # standard error 0.4 / sqrt(400) = 0.02
    assert 0.32 <= sd <= 0.44
    assert min(ends) > 0.0
