"""KPIs: OEE and its factors (by hand), missing inputs, MTBF/MTTR, cover, plan; and the doc examples."""

from __future__ import annotations

import doctest
import importlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from twin.frozen import FrozenDict
from twin.kpi import (
    days_of_cover,
    machine_oee,
    machine_window,
    mtbf_h,
    mttr_h,
    oee,
    output_vs_plan,
    planned_units_to,
    scrap_rate,
    site_oee,
    throughput_per_h,
)
from twin.live import apply, initial_state
from twin.spec import MachineStatus
from twin.state import MachineState

S = MachineStatus
SHIFT_START = datetime(2026, 1, 5, 5, 0, tzinfo=UTC)  # Monday 06:00 in Berlin
SHIFT_END = datetime(2026, 1, 5, 13, 0, tzinfo=UTC)  # 14:00 in Berlin


def h(hours: float) -> datetime:
    return SHIFT_START + timedelta(hours=hours)


def test_oee_worked_example():
    # 8 h shift, 30 min down, ideal cycle 60 s, 400 parts of which 8 scrap:
    # A = 450 / 480 = 0.9375; P = 400 × 60 / 27000 = 0.8889; Q = 392 / 400 = 0.98;
    # OEE = 0.9375 × 0.8889 × 0.98 = 0.8167
    r = oee(planned_s=8 * 3600, run_s=7.5 * 3600, ideal_cycle_time_s=60, total_count=400, good_count=392)
    assert r.availability == pytest.approx(0.9375)
    assert r.performance == pytest.approx(400 * 60 / 27000)
    assert r.quality == pytest.approx(0.98)
    assert r.oee == pytest.approx(0.81667, abs=5e-5)
    assert (r.planned_s, r.run_s, r.total_count, r.good_count) == (28800, 27000, 400, 392)


@pytest.mark.parametrize(
    ("kwargs", "present"),
    [
        # no counters: availability only
        (dict(planned_s=3600, run_s=1800, ideal_cycle_time_s=60, total_count=None, good_count=None),
         {"availability"}),
        # no planned time (weekend): performance and quality still there
        (dict(planned_s=0, run_s=1800, ideal_cycle_time_s=60, total_count=20, good_count=19),
         {"performance", "quality"}),
        # run time unknown: only quality
        (dict(planned_s=3600, run_s=None, ideal_cycle_time_s=60, total_count=20, good_count=19), {"quality"}),
        # nothing made: no quality, performance 0
        (dict(planned_s=3600, run_s=1800, ideal_cycle_time_s=60, total_count=0, good_count=0),
         {"availability", "performance"}),
        # no ideal cycle time: no performance
        (dict(planned_s=3600, run_s=1800, ideal_cycle_time_s=None, total_count=20, good_count=19),
         {"availability", "quality"}),
    ],
)
def test_missing_inputs_leave_only_that_factor_empty(kwargs, present):
    r = oee(**kwargs)
    for factor in ("availability", "performance", "quality"):
        assert (getattr(r, factor) is not None) == (factor in present), factor
    assert r.oee is None


@pytest.fixture
def shift_day(fleet, rd):
    """Site s1 through Monday's 06:00-14:00 shift, applied by the live reducer.

    P1: RUNNING all shift except FAULT 09:00-09:30 local (4:00-4:30 into the shift); counters
    good 1000 -> 1392, scrap 50 -> 58. P2: RUNNING the first 4 h then IDLE; good 0 -> 200, scrap 0.
    B1 never reports. Staleness is switched off (readings are sparse here on purpose).
    """
    spec = replace(fleet, stale_after_polls=1e9)
    state = initial_state(spec, SHIFT_START)

    def r(hours, asset, signal, value):
        return rd((h(hours) - datetime(2026, 1, 5, 8, 0, tzinfo=UTC)).total_seconds(), asset, signal, value)

    state, _ = apply(spec, state, [
        r(0, "P1", "status", 2), r(0, "P1", "good", 1000), r(0, "P1", "scrap", 50),
        r(0, "P2", "status", 2), r(0, "P2", "good", 0), r(0, "P2", "scrap", 0),
    ])
    before = state
    state, _ = apply(spec, state, [r(3, "P1", "status", 3)])
    state, _ = apply(spec, state, [r(3.5, "P1", "status", 2)])
    state, _ = apply(spec, state, [r(4, "P2", "status", 1)])
    state, _ = apply(spec, state, [r(8, "P1", "good", 1392), r(8, "P1", "scrap", 58), r(8, "P2", "good", 200),
                                   r(8, "P2", "scrap", 0)])
    assert before.as_of == SHIFT_START and state.as_of == SHIFT_END
    return spec, before.sites["s1"], state.sites["s1"]


def test_machine_oee_from_reducer_snapshots(shift_day):
    spec, before, after = shift_day
    site = spec.site("s1")
    p1 = site.machine("P1")
    # The worked example again, now from the twin's own snapshots and the Berlin shift calendar:
    # planned 8 h, run 7.5 h, 392 good + 8 scrap -> A 0.9375, P 0.8889, Q 0.98, OEE 0.8167
    r = machine_oee(site, p1, before.machines["P1"], after.machines["P1"], before.as_of, after.as_of)
    assert (r.planned_s, r.run_s, r.total_count, r.good_count) == (28800, 27000, 400, 392)
    assert r.oee == pytest.approx(0.9375 * (400 * 60 / 27000) * 0.98)
    w = machine_window(p1, before.machines["P1"], after.machines["P1"], before.as_of, after.as_of)
    assert (w.run_s, w.down_s, w.good, w.scrap, w.failures, w.repairs) == (27000, 1800, 392, 8, 1, 1)
    # MTBF = 7.5 h operating / 1 failure; MTTR = 0.5 h repair / 1 repair
    assert mtbf_h(w.run_s, w.failures) == 7.5 and mttr_h(w.down_s, w.repairs) == 0.5
    assert throughput_per_h(w.total, 8 * 3600) == 50.0  # 400 parts / 8 h
    assert scrap_rate(w.good, w.scrap) == 0.02  # 8 / 400


def test_machine_without_counters_keeps_availability(shift_day, fleet):
    spec, before, after = shift_day
    site = spec.site("s1")
    # B1 has no counters and never reported a status: nothing is known
    r = machine_oee(site, site.machine("B1"), before.machines["B1"], after.machines["B1"], SHIFT_START, SHIFT_END)
    assert (r.availability, r.performance, r.quality, r.oee) == (None, None, None, None)
    assert r.planned_s == 28800
    # the same machine RUNNING all shift: availability 1.0, the counter factors empty
    running = MachineState(id="B1", status=S.RUNNING, status_since=SHIFT_START)
    r = machine_oee(site, site.machine("B1"), running, running, SHIFT_START, SHIFT_END)
    assert (r.availability, r.performance, r.quality, r.oee) == (1.0, None, None, None)


def test_site_oee_aggregates_machines(shift_day):
    spec, before, after = shift_day
    r = site_oee(spec.site("s1"), before, after)
    # B1 (status never known) is left out. Σplanned = 2 × 8 h = 57600 s; Σrun = 27000 + 14400 = 41400 s
    # A = 41400 / 57600 = 0.71875; P = 60 × (400 + 200) / 41400 = 0.869565; Q = (392 + 200) / 600 = 0.986667
    assert (r.planned_s, r.run_s, r.total_count, r.good_count) == (57600, 41400, 600, 592)
    assert r.availability == pytest.approx(0.71875)
    assert r.performance == pytest.approx(0.869565, abs=1e-6)
    assert r.quality == pytest.approx(0.986667, abs=1e-6)
    assert r.oee == pytest.approx(0.71875 * 0.869565 * 0.986667, abs=1e-6)


def test_batch_size_divides_the_ideal_cycle_time(fleet):
    site = fleet.site("s1")
    p1 = site.machine("P1")
    # a print build of 4 parts takes 1 h ideally: 900 s per part; 28 parts in an 8 h run -> P = 28×900/28800
    builder = replace(p1, template=replace(p1.template, ideal_cycle_time_s=3600.0, batch_size=4))
    before = MachineState(id="P1", status=S.RUNNING, status_since=SHIFT_START, last_raw_good=0, last_raw_scrap=0)
    after = replace(before, good_total=28, last_raw_good=28)
    r = machine_oee(site, builder, before, after, SHIFT_START, SHIFT_END)
    assert r.performance == pytest.approx(0.875)
    assert r.quality == 1.0 and r.availability == 1.0


def test_window_counts_the_ongoing_status_up_to_each_snapshot(fleet):
    p1 = fleet.site("s1").machine("P1")
    # before (at t0): RUNNING since t0 - 1 h with 5 h of IDLE behind it
    before = MachineState(id="P1", status=S.RUNNING, status_since=h(-1), status_seconds=FrozenDict({S.IDLE: 18000.0}))
    # after (at t0 + 3 h): FAULT since t0 + 1 h; RUNNING accumulated 2 h (t0-1h .. t0+1h)
    after = MachineState(id="P1", status=S.FAULT, status_since=h(1),
                         status_seconds=FrozenDict({S.IDLE: 18000.0, S.RUNNING: 7200.0}), failures=1)
    w = machine_window(p1, before, after, h(0), h(3))
    # in the window: RUNNING t0 .. t0+1h = 3600 s, FAULT t0+1h .. t0+3h = 7200 s, IDLE none
    assert (w.run_s, w.down_s, w.status_s[S.IDLE], w.known_s) == (3600.0, 7200.0, 0.0, 10800.0)
    assert (w.failures, w.good, w.total) == (1, None, None)  # no counter data: counts unknown


def test_mtbf_mttr_without_events_are_none():
    assert mtbf_h(100 * 3600, 0) is None and mttr_h(0.0, 0) is None
    assert mtbf_h(100 * 3600, 2) == 50.0  # 100 h operating / 2 failures
    assert mttr_h(3 * 3600, 2) == 1.5  # 3 h in repair / 2 repairs


@pytest.mark.parametrize(
    ("on_hand", "consumed", "days", "expected"),
    [
        (120.0, 60.0, 7.0, 14.0),  # 60 used in 7 days = 8.571/day; 120 / 8.571 = 14 days
        (5.0, 30.0, 3.0, 0.5),  # 10 a day, 5 left: half a day
        (0.0, 30.0, 3.0, 0.0),  # empty shelf
        (120.0, 0.0, 7.0, None),  # no consumption: cover undefined, not infinite
        (None, 10.0, 7.0, None),  # stock unknown
    ],
)
def test_days_of_cover(on_hand, consumed, days, expected):
    assert days_of_cover(on_hand, consumed, days) == (pytest.approx(expected) if expected is not None else None)


def test_output_vs_plan_and_plan_to_date(fleet):
    r = output_vs_plan(150, 200.0)
    assert (r.ratio, r.gap) == (0.75, -50.0)
    assert output_vs_plan(3, 0.0).ratio is None
    site = fleet.site("s1")
    day = datetime(2026, 1, 5, tzinfo=ZoneInfo("Europe/Berlin"))
    # plan 400/day spread over 06:00-14:00: at 10:00 half the shift has passed -> 200 due
    assert planned_units_to(site, day, day.replace(hour=10)) == 200.0
    assert planned_units_to(site, day, day.replace(hour=23)) == 400.0
    assert planned_units_to(site, day, day.replace(hour=5)) == 0.0


@pytest.mark.parametrize("name", ["twin.calendar", "twin.live.reducer", "twin.live.machines", "twin.live.ignored",
                                  "twin.alarms", "twin.alarm_shelving", "twin.kpi.production", "twin.kpi.supply"])
def test_doc_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_site_output_counts_the_last_routing_step_only() -> None:
    # A unit is printed, post-processed, inspected and packed: four stations report a good part each.
    # The site's output is what the last step of its routings (pack) reports, not the sum of all four.
    from dataclasses import replace

    from twin.frozen import FrozenDict
    from twin.kpi import finishing_machines
    from twin.spec import (
        DemandSpec,
        MachineId,
        MachineSpec,
        MachineTemplate,
        ProductFamily,
        ProductId,
        Role,
        ShiftCalendar,
        SiteId,
        SiteKind,
        SiteSpec,
        TemplateId,
    )

    def machine(mid: str, role: Role) -> MachineSpec:
        tpl = MachineTemplate(id=TemplateId(role.value), role=role, ideal_cycle_time_s=60.0,
                              status_codes=FrozenDict(), signals=())
        return MachineSpec(id=MachineId(mid), site=SiteId("s"), template=tpl)

    machines = (machine("P1", Role.PRINT), machine("W1", Role.POST_PROCESS), machine("QC1", Role.INSPECT),
                machine("PK1", Role.PACK), machine("PK2", Role.PACK))
    product = ProductFamily(id=ProductId("b"), name="b", routing=(Role.PRINT, Role.POST_PROCESS, Role.INSPECT,
                                                                     Role.PACK), bom=FrozenDict())
    site = SiteSpec(id=SiteId("s"), name="s", kind=SiteKind.POINT_OF_DEMAND, timezone="UTC",
                    calendar=ShiftCalendar(shifts=()), machines=machines,
                    demand=(DemandSpec(product=ProductId("b"), orders_per_day=1.0),))
    assert [m.id for m in finishing_machines(site, (product,))] == ["PK1", "PK2"]
    # a family that ends with inspection (shipped unpacked) makes the inspection station the last step
    inspect_last = replace(product, routing=(Role.PRINT, Role.INSPECT))
    assert [m.id for m in finishing_machines(site, (inspect_last,))] == ["QC1"]
    # no pack station and no demand: every machine counts
    bare = replace(site, machines=machines[:3], demand=())
    assert len(finishing_machines(bare)) == 3


def test_availability_counts_at_most_the_planned_time(fleet):
    site = fleet.site("s1")
    # P1 RUNNING from 2 h before its 8 h shift to its end: 10 h of run in a window of 8 h planned.
    # Availability is run time in plan ÷ planned time: at most 8 h ÷ 8 h = 100 %, never 10/8 = 125 %;
    # the parts of those 10 h (600 at 60 s) still count: P = 60 × 600 / 36000 s of run = 1.0
    early = SHIFT_START - timedelta(hours=2)
    before = MachineState(id="P1", status=S.RUNNING, status_since=early, last_raw_good=0, last_raw_scrap=0)
    after = replace(before, good_total=600, last_raw_good=600)
    r = machine_oee(site, site.machine("P1"), before, after, early, SHIFT_END)
    assert r.planned_s == 28800 and r.run_s == 36000
    assert r.availability == 1.0
    assert r.performance == pytest.approx(1.0)
    # the same at the site: Σrun in plan = min(36000, 28800) for P1
    s0 = replace(initial_state(fleet, early).sites["s1"], machines=FrozenDict({"P1": before}))
    s1 = replace(s0, as_of=SHIFT_END, machines=FrozenDict({"P1": after}))
    site_r = site_oee(replace(site, machines=(site.machine("P1"),)), s0, s1)
    assert site_r.availability == 1.0


def test_a_trickle_of_use_projects_no_stockout_instead_of_overflowing():
    from twin.kpi import project_stock

    t = datetime(2026, 12, 1, tzinfo=UTC)
    # 250 pcs used at 1e-9 pcs/day would last 2.5e11 days (past year 9999): no stockout in sight, no error
    p = project_stock(250.0, 1e-9, [], t, t + timedelta(days=7))
    assert (p.stockout_at, p.cover_d) == (None, None)
    assert p.level[-1] == pytest.approx(250.0)
    # 10 years of cover is still a date: 3650 pcs at 1 pcs/day
    assert project_stock(3650.0, 1.0, [], t, t + timedelta(days=7)).cover_d == pytest.approx(3650.0)
    # the same trickle in days of cover: 1.9 kg with 1e-7 kg used in a day is "no use seen", not 19 million days
    assert days_of_cover(1.9, 1e-7, 1.0) is None
    assert days_of_cover(30.0, 6.0, 1.0) == 5.0  # 30 kg at 6 kg/day
