"""``twin.shift.build_report`` on the early shift (06:00-14:00) of the hand-written day of ``test_downtime``.

P1 follows that day (in the early shift: 30 min changeover, 45 min nozzle jam, 30 min break, 20 min
breakdown; 355 min run, 257 good and 10 scrap); the packer K1 runs the whole day and packs one
part a minute (480 in the shift). Orders, stock and the plan are set by hand on the snapshots.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from tests.twin.test_downtime import CODE, GOOD, RUN_MIN, SCRAP, T0, _fleet, _status, at
from twin import live
from twin.frozen import FrozenDict
from twin.kpi import site_oee
from twin.readings import Reading
from twin.shift import ShiftInputs, ShiftWindow, build_report, shift_windows
from twin.spec import MachineStatus
from twin.state import Event, EventKind, InventoryState, OpenOrder, SiteState


def _closed(t: datetime, order: str, due: datetime, status: str) -> Event:
    return Event(ts=t, site="s1", asset="bracket", kind=EventKind.ORDER_CLOSED,
                 message=f"order {order} (bracket) {status}",
                 data=FrozenDict({"order": order, "product": "bracket", "qty": 4, "done_qty": 4,
                                  "due": due.isoformat(), "version": 3}))


def _inputs() -> ShiftInputs:
    fleet = _fleet()
    site = replace(fleet.sites[0], daily_plan_units=320)
    fleet = replace(fleet, sites=(site,))
    state = live.initial_state(fleet, T0)
    events: list[Event] = []
    codes: list[tuple[datetime, float]] = []
    snaps: dict[int, SiteState] = {}
    run = 0
    for minute in range(14 * 60 + 1):
        t = T0 + timedelta(minutes=minute)
        status, code = _status(minute)
        readings = [
            Reading(ts=t, site="s1", asset="P1", signal="status", value=CODE[status]),
            Reading(ts=t, site="s1", asset="P1", signal="fault_code", value=code),
            Reading(ts=t, site="s1", asset="P1", signal="good_count", value=GOOD * run // RUN_MIN),
            Reading(ts=t, site="s1", asset="P1", signal="scrap_count", value=SCRAP * run // RUN_MIN),
            Reading(ts=t, site="s1", asset="K1", signal="status", value=2),
            Reading(ts=t, site="s1", asset="K1", signal="good_count", value=minute),
        ]
        codes.append((t, float(code)))
        state, evs = live.apply(fleet, state, readings, t)
        if minute >= 6 * 60:
            events.extend(evs)
        if minute in (6 * 60, 14 * 60):
            snaps[minute] = state.sites["s1"]
        if status is MachineStatus.RUNNING and 6 * 60 <= minute < 22 * 60:
            run += 1
    before, after = snaps[6 * 60], snaps[14 * 60]
    events += [_closed(at(10), "o1", at(9), "done"), _closed(at(11), "o2", at(12), "done"),
               _closed(at(12), "o3", at(9), "cancelled")]
    open_orders = (OpenOrder(id="o4", product="bracket", qty=2, created=T0, due=at(13)),
                   OpenOrder(id="o5", product="bracket", qty=2, created=T0, due=at(20)))
    before = replace(before, inventory=FrozenDict({"PLA": InventoryState(sku="PLA", on_hand=36.0)}))
    after = replace(after, orders=open_orders, inventory=FrozenDict({
        "PLA": InventoryState(sku="PLA", on_hand=20.0, consumed_total=16.0),
        "BOX": InventoryState(sku="BOX", on_hand=3.0)}))
    window = shift_windows(site, at(6), at(6, 1))[0]
    return ShiftInputs(fleet=fleet, site=site, window=window, before=before, after=after, events=tuple(events),
                       fault_codes={"P1": codes})


@pytest.fixture(scope="module")
def inputs() -> ShiftInputs:
    return _inputs()


def test_window_output_and_machines(inputs: ShiftInputs) -> None:
    rep = build_report(inputs)
    assert rep.window == ShiftWindow(name="early", start=at(6), end=at(14))
    # the packer is the finishing machine: 480 packed; the plan is 320 a day over 16 planned hours: 160
    assert (rep.output.actual, rep.output.plan) == (480, 160.0)
    p1 = next(r for r in rep.machines if r.machine == "P1")
    assert (p1.good, p1.scrap, p1.stops, p1.lost_s) == (257, 10, 4, 125 * 60)
    assert p1.oee.availability == pytest.approx(355 / 480)
    assert rep.oee == site_oee(inputs.site, inputs.before, inputs.after)


def test_pareto_and_waterfall(inputs: ShiftInputs) -> None:
    rep = build_report(inputs)
    assert [(r.reason, r.seconds / 60) for r in rep.pareto] == [
        ("nozzle_jam", 45), ("changeover", 30), ("scheduled_break", 30), ("breakdown", 20)]
    w = rep.waterfall
    # two machines x 8 h planned = 960 min; run counted 355 + 480 = 835 min; the stops are the 125 min lost
    assert (w.planned_s, w.run_s) == (960 * 60, 835 * 60)
    perf = (267 * 60 + 480 * 30) / (355 * 60 + 480 * 60)  # ideal time of all parts made / run time
    quality = (257 + 480) / (267 + 480)
    steps = {(s.kind, s.reason): s.seconds for s in w.steps}
    assert steps[("performance", None)] == pytest.approx(835 * 60 * (1 - perf))
    assert steps[("quality", None)] == pytest.approx(835 * 60 * perf * (1 - quality))
    assert math.fsum([*(s.seconds for s in w.steps), w.productive_s or 0.0]) == pytest.approx(960 * 60)
    assert w.oee == pytest.approx(rep.oee.oee) and w.oee == pytest.approx(835 / 960 * perf * quality)


def test_orders_and_stock_at_risk(inputs: ShiftInputs) -> None:
    rep = build_report(inputs)
    # o1 shipped an hour late, o2 on time, o3 cancelled (not shipped); o4 open an hour past due at 14:00
    assert [(r.order, r.late_s) for r in rep.shipped] == [("o1", 3600.0), ("o2", 0.0)]
    assert [(r.order, r.late_s) for r in rep.late_open] == [("o4", 3600.0)]
    # BOX 3 <= its reorder point 5; PLA used 16 kg in 1/3 day = 48 kg/day: 20 kg last 0.42 d < 2 d lead time
    risk = {r.sku: r for r in rep.stock_at_risk}
    assert risk["BOX"].why == "at or below its reorder point"
    assert risk["PLA"].why == "covers less than its lead time"
    assert risk["PLA"].cover_d == pytest.approx(20 / 48)


def test_docstring_examples() -> None:
    import doctest

    import twin.shift.report

    result = doctest.testmod(twin.shift.report)
    assert result.failed == 0 and result.attempted > 0

