"""Downtime classification, Pareto and OEE waterfall on a hand-written day of stops through the real reducer.

The day (Monday 2026-01-05, site in UTC, shifts 06:00-14:00 and 14:00-22:00, a break 11:30-12:00,
fault code 101 mapped to ``nozzle_jam``) exercises each rule once; the readings go through
``twin.live.apply`` minute by minute, so the stops come from real STATUS_CHANGE events and the
OEE the waterfall must reproduce is ``twin.kpi.machine_oee`` of the same two snapshots.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from connectors.config import load_text
from twin import live
from twin.downtime import (
    RAN_OUTSIDE_SHIFT,
    StatusSpan,
    classify,
    clip,
    fault_code_at,
    materials_of,
    pareto,
    spans_from_events,
    upstream_queue_empty,
    waterfall,
    zero_intervals,
)
from twin.kpi import machine_oee
from twin.readings import Reading
from twin.spec import DowntimeCategory, FleetSpec, MachineStatus
from twin.state import Event, OpenOrder

PLANT = """\
[fleet]
id = "f1"
name = "Downtime test"

[[templates]]
id = "printer"
role = "print"
ideal_cycle_time_s = 60
status_codes = { 0 = "off", 1 = "idle", 2 = "running", 3 = "fault", 4 = "maintenance", 5 = "setup" }
signals = [
  { name = "status", kind = "status" },
  { name = "good_count", kind = "good_count" },
  { name = "scrap_count", kind = "scrap_count" },
  { name = "fault_code", kind = "fault_code" },
]

[[templates]]
id = "packer"
role = "pack"
ideal_cycle_time_s = 30
status_codes = { 0 = "off", 1 = "idle", 2 = "running" }
signals = [{ name = "status", kind = "status" }, { name = "good_count", kind = "good_count" }]

[[products]]
id = "bracket"
name = "Bracket"
routing = ["print", "pack"]
bom = { "PLA" = 0.1, "BOX" = 1 }

[[sites]]
id = "s1"
name = "Site one"
kind = "point-of-demand"
timezone = "UTC"
shifts = [
  { name = "early", days = ["mon"], start = "06:00", end = "14:00" },
  { name = "late", days = ["mon"], start = "14:00", end = "22:00" },
]
machines = [{ template = "printer", id = "P1" }, { template = "packer", id = "K1" }]
inventory = [
  { sku = "PLA", name = "PLA", kind = "raw", unit = "kg", reorder_point = 5, reorder_qty = 10, supplier = "X", \
lead_time_d = 2 },
  { sku = "BOX", name = "Box", kind = "packaging", unit = "pcs", reorder_point = 5, reorder_qty = 10, supplier = "X", \
lead_time_d = 2 },
]
demand = [{ product = "bracket", orders_per_day = 5 }]

[sites.downtime]
breaks = [{ name = "lunch", days = ["mon"], start = "11:30", end = "12:00" }]
[sites.downtime.reasons]
children = { breakdown = ["nozzle_jam"] }
[sites.downtime.rules]
fault_codes = { 101 = "nozzle_jam" }
"""

T0 = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday


def at(h: int, m: int = 0) -> datetime:
    return T0 + timedelta(hours=h, minutes=m)


# (from, status, fault code) in minutes of the day; each status lasts until the next line.
DAY = [
    ((0, 0), MachineStatus.OFF, 0),  # 00:00-06:00 outside the shifts: no_shift
    ((6, 0), MachineStatus.SETUP, 0),  # 30 min changeover
    ((6, 30), MachineStatus.RUNNING, 0),
    ((9, 0), MachineStatus.FAULT, 101),  # 45 min nozzle_jam (mapped code)
    ((9, 45), MachineStatus.RUNNING, 0),
    ((11, 30), MachineStatus.IDLE, 0),  # 30 min scheduled_break
    ((12, 0), MachineStatus.RUNNING, 0),
    ((13, 0), MachineStatus.FAULT, 0),  # 20 min breakdown (no code)
    ((13, 20), MachineStatus.RUNNING, 0),
    ((15, 0), MachineStatus.IDLE, 0),  # PLA at zero 15:00-15:30: 30 min material_shortage, then 10 min nobody knows
    ((15, 40), MachineStatus.RUNNING, 0),
    ((17, 0), MachineStatus.IDLE, 0),  # 15 min starved (the queue was known empty)
    ((17, 15), MachineStatus.RUNNING, 0),
    ((19, 0), MachineStatus.MAINTENANCE, 0),  # 60 min maintenance
    ((20, 0), MachineStatus.RUNNING, 0),
    ((21, 30), MachineStatus.FAULT, 107),  # unmapped code: breakdown 21:30-22:00, then no_shift to 22:30
    ((22, 30), MachineStatus.OFF, 0),  # no_shift to midnight
]
CODE = {MachineStatus.OFF: 0, MachineStatus.IDLE: 1, MachineStatus.RUNNING: 2, MachineStatus.FAULT: 3,
        MachineStatus.MAINTENANCE: 4, MachineStatus.SETUP: 5}
RUN_MIN = 690  # run time in the shifts: 150 + 105 + 60 + 100 + 80 + 105 + 90 minutes
GOOD, SCRAP = 500, 20


def _fleet() -> FleetSpec:
    fleet = load_text(PLANT, source="plant.toml").fleet
    # readings every minute: the machine is expected every 60 s (not the default 1 s, it would go stale)
    site = fleet.sites[0]
    site = replace(site, machines=tuple(replace(m, poll_interval_s=60.0) for m in site.machines),
                   inventory=tuple(replace(i, poll_interval_s=60.0) for i in site.inventory))
    return replace(fleet, sites=(site,))


def _status(minute: int) -> tuple[MachineStatus, int]:
    current = DAY[0]
    for line in DAY:
        (h, m), _, _ = line
        if h * 60 + m <= minute:
            current = line
    return current[1], current[2]


def _day() -> tuple[FleetSpec, list[Event], object, object, list[tuple[datetime, float]], list[tuple[datetime, float]]]:
    fleet = _fleet()
    state = live.initial_state(fleet, T0)
    events: list[Event] = []
    codes: list[tuple[datetime, float]] = []
    pla: list[tuple[datetime, float]] = []
    before = None
    run = 0
    for minute in range(24 * 60 + 1):
        t = T0 + timedelta(minutes=minute)
        status, code = _status(minute)
        stock = 0.0 if 15 * 60 <= minute < 15 * 60 + 30 else 20.0
        readings = [
            Reading(ts=t, site="s1", asset="P1", signal="status", value=CODE[status]),
            Reading(ts=t, site="s1", asset="P1", signal="fault_code", value=code),
            # counters rise with the run time: 500 good and 20 scrap by the end of the last run
            Reading(ts=t, site="s1", asset="P1", signal="good_count", value=GOOD * run // RUN_MIN),
            Reading(ts=t, site="s1", asset="P1", signal="scrap_count", value=SCRAP * run // RUN_MIN),
            Reading(ts=t, site="s1", asset="PLA", signal="on_hand", value=stock),
        ]
        codes.append((t, float(code)))
        pla.append((t, stock))
        state, evs = live.apply(fleet, state, readings, t)
        events.extend(evs)
        if minute == 0:
            before = state.sites["s1"].machines["P1"]
        if status is MachineStatus.RUNNING and 6 * 60 <= minute < 22 * 60:
            run += 1
    after = state.sites["s1"].machines["P1"]
    return fleet, events, before, after, codes, pla


@pytest.fixture(scope="module")
def day() -> tuple[FleetSpec, list[Event], object, object, list[tuple[datetime, float]], list[tuple[datetime, float]]]:
    return _day()


def _stops(day):  # type: ignore[no-untyped-def]
    fleet, events, _, _, codes, pla = day
    site = fleet.sites[0]
    spans = spans_from_events("P1", MachineStatus.OFF, events, T0, at(24))
    spans = [replace(s, fault_code=fault_code_at(codes, s.start, s.end)) if s.status is MachineStatus.FAULT else s
             for s in spans]
    return site, classify(site, "P1", spans, stock_zero=zero_intervals(pla, at(24)),
                          queue_empty=[(at(17), at(17, 15))])


def test_each_rule_classifies_its_stop(day) -> None:  # type: ignore[no-untyped-def]
    _, stops = _stops(day)
    got = [(s.start.strftime("%H:%M"), s.end.strftime("%H:%M"), s.reason, s.planned) for s in stops]
    assert got == [
        ("00:00", "06:00", "no_shift", False),  # rule 1: outside the shifts
        ("06:00", "06:30", "changeover", True),  # rule 3: setup
        ("09:00", "09:45", "nozzle_jam", True),  # rule 2: fault code 101 mapped
        ("11:30", "12:00", "scheduled_break", True),  # rule 4
        ("13:00", "13:20", "breakdown", True),  # rule 2: fault without a code
        ("15:00", "15:30", "material_shortage", True),  # rule 5: PLA (drawn at the print step) at zero
        ("15:30", "15:40", None, True),  # rule 7: idle, stock back, nobody knows why
        ("17:00", "17:15", "starved", True),  # rule 6
        ("19:00", "20:00", "maintenance", True),  # rule 3
        ("21:30", "22:00", "breakdown", True),  # rule 2: code 107 not mapped
        ("22:00", "22:30", "no_shift", False),  # the same fault past the shift's end
        ("22:30", "00:00", "no_shift", False),
    ]
    jam = stops[2]
    assert (jam.fault_code, jam.why, jam.category) == (101, "fault code 101", DowntimeCategory.UNPLANNED)
    assert stops[9].why == "fault code 107 (not mapped)"
    assert stops[3].category is DowntimeCategory.PLANNED


def test_pareto_of_lost_time(day) -> None:  # type: ignore[no-untyped-def]
    _, stops = _stops(day)
    rows = pareto(stops)
    # lost time in the shifts: 270 min = 16200 s; no_shift (7.5 h) is not lost time
    assert math.fsum(r.seconds for r in rows) == 270 * 60
    assert [(r.reason, r.seconds / 60, r.stops) for r in rows] == [
        ("maintenance", 60, 1),
        ("breakdown", 50, 2),  # 20 + 30 min
        ("nozzle_jam", 45, 1),
        ("changeover", 30, 1),
        ("material_shortage", 30, 1),
        ("scheduled_break", 30, 1),
        ("starved", 15, 1),
        (None, 10, 1),
    ]
    assert rows[0].share == pytest.approx(60 / 270)
    assert rows[1].cumulative == pytest.approx(110 / 270)
    assert rows[-1].cumulative == pytest.approx(1.0)
    # a period: the early shift alone lost 30 + 45 + 30 + 20 = 125 min
    early = pareto(clip(stops, at(6), at(14)))
    assert math.fsum(r.seconds for r in early) == 125 * 60


def test_waterfall_adds_up_to_planned_time_and_ends_at_the_kpi_oee(day) -> None:  # type: ignore[no-untyped-def]
    _, _, before, after, _, _ = day
    site, stops = _stops(day)
    kpi = machine_oee(site, site.machines[0], before, after, T0, at(24))
    # by hand: planned 16 h = 57600 s; run 690 min = 41400 s; A = 41400/57600; P = 520 parts x 60 s / 41400;
    # Q = 500/520; OEE = 500 x 60 / 57600 = 0.5208333
    assert kpi.planned_s == 57600 and kpi.run_s == 41400
    assert (kpi.good_count, kpi.total_count) == (GOOD, GOOD + SCRAP)
    w = waterfall(kpi, stops)
    losses = {(s.kind, s.reason): s.seconds for s in w.steps}
    assert losses[("availability", "maintenance")] == 3600
    assert math.fsum(s.seconds for s in w.steps if s.kind == "availability") == 57600 - 41400
    assert losses[("performance", None)] == pytest.approx(41400 - 520 * 60)  # 10200 s
    assert losses[("quality", None)] == pytest.approx(20 * 60)  # the ideal time of the scrap
    assert w.productive_s == pytest.approx(500 * 60)
    assert math.fsum([*(s.seconds for s in w.steps), w.productive_s]) == pytest.approx(57600, abs=1e-9)
    assert w.oee == pytest.approx(kpi.oee, rel=1e-12) and w.oee == pytest.approx(30000 / 57600)


def test_run_outside_the_shift_is_a_credit() -> None:
    fleet = _fleet()
    site = fleet.sites[0]
    # running 05:00-06:00 (outside) and 06:00-13:00, idle 13:00-14:00 (nobody knows) on an 8 h window 06-14
    spans = [StatusSpan(start=at(5), end=at(13), status=MachineStatus.RUNNING),
             StatusSpan(start=at(13), end=at(14), status=MachineStatus.IDLE)]
    stops = classify(site, "P1", spans)
    from twin.kpi import oee

    # the KPI counts 8 h of run toward 8 h planned (5:00-14:00 is 9 h of window; planned 06-14 = 8 h):
    # availability min(8 h, 8 h) / 8 h = 1, although 1 h of the shift was idle
    kpi = oee(planned_s=8 * 3600, run_s=8 * 3600, ideal_cycle_time_s=60, total_count=480, good_count=480)
    w = waterfall(kpi, stops)
    assert [(s.kind, s.reason, s.seconds) for s in w.steps if s.kind == "availability"] == [
        ("availability", None, 3600.0), ("availability", RAN_OUTSIDE_SHIFT, -3600.0)]
    assert w.productive_s == 480 * 60 and w.oee == pytest.approx(kpi.oee)


def test_materials_and_queue() -> None:
    fleet = _fleet()
    site = fleet.sites[0]
    printer, packer = site.machines
    # PLA (raw) leaves the shelf at the first step (print), the box (packaging) at pack
    assert materials_of(site, fleet.products, printer) == {"PLA"}
    assert materials_of(site, fleet.products, packer) == {"BOX"}

    def order(qty: int, steps: tuple[int, ...]) -> OpenOrder:
        return OpenOrder(id="o", product="bracket", qty=qty, created=T0, due=at(48), done_by_step=steps)

    # 5 ordered, 5 printed, 2 packed: 3 wait at pack, none at print
    orders = [order(5, (5, 2))]
    assert upstream_queue_empty(site, fleet.products, printer, orders) is True
    assert upstream_queue_empty(site, fleet.products, packer, orders) is False
    assert upstream_queue_empty(site, fleet.products, packer, [order(5, (2, 2))]) is True
    assert upstream_queue_empty(site, fleet.products, packer, []) is True  # no open order: nothing to do
    unknown = OpenOrder(id="o", product="bracket", qty=5, created=T0, due=at(48))
    assert upstream_queue_empty(site, fleet.products, packer, [unknown]) is None


def test_fault_code_and_zero_stock_helpers() -> None:
    samples = [(at(9), 0.0), (at(9, 1), 101.0), (at(9, 45), 0.0)]
    assert fault_code_at(samples, at(9), at(9, 45)) == 101  # the code comes a poll after the status
    assert fault_code_at([(at(8), 0.0)], at(9), at(10)) == 0
    assert fault_code_at([], at(9), at(10)) is None
    assert zero_intervals([(at(1), 3.0), (at(2), 0.0), (at(3), 1.0), (at(4), -1.0)], at(5)) == [
        (at(2), at(3)), (at(4), at(5))]


@pytest.mark.parametrize("name", ["twin.downtime"])
def test_docstring_examples(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0
