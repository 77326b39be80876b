"""OEE performance of batch machines over short windows: cycle quantisation capped, other excess shown."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from twin.kpi import capped_performance, machine_oee, oee, site_oee
from twin.spec import MachineStatus
from twin.state import MachineState, SiteState

S = MachineStatus
T0 = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)  # Monday 08:00 in Berlin, inside site s1's 06:00-14:00 shift
T1 = T0 + timedelta(hours=2)


def _printer(fleet, build_s: float, batch: int):  # type: ignore[no-untyped-def]
    p1 = fleet.site("s1").machine("P1")
    return replace(p1, template=replace(p1.template, ideal_cycle_time_s=build_s, batch_size=batch))


def _running(good: int) -> MachineState:
    # RUNNING since before the window; counters reporting (raw values seen), scrap 0
    return MachineState(id="P1", status=S.RUNNING, status_since=T0 - timedelta(hours=5), good_total=good,
                        last_raw_good=good, scrap_total=0, last_raw_scrap=0)


def test_a_build_ending_in_a_short_window_is_capped_at_one(fleet):  # type: ignore[no-untyped-def]
    site = fleet.site("s1")
    printer = _printer(fleet, build_s=6 * 3600.0, batch=10)  # 6 h per build of 10 parts: 2160 s per part
    # window 08:00-10:00 local, running throughout (7200 s); the build begun at 03:00 ends at 09:00:
    # 10 parts × 2160 s = 21600 s of ideal time in 7200 s of run time -> 3.0 uncapped. The excess,
    # 21600 - 7200 = 14400 s, is less than one build (21600 s): quantisation, so P = 1.0, capped.
    r = machine_oee(site, printer, _running(100), _running(110), T0, T1)
    assert r.performance == 1.0 and r.performance_capped
    assert r.availability == 1.0 and r.quality == 1.0 and r.oee == 1.0
    # no build ending in the window: nothing counted, P = 0 (not capped)
    r = machine_oee(site, printer, _running(100), _running(100), T0, T1)
    assert r.performance == 0.0 and not r.performance_capped


def test_excess_beyond_one_cycle_is_reported_as_it_is(fleet):  # type: ignore[no-untyped-def]
    site = fleet.site("s1")
    printer = _printer(fleet, build_s=3600.0, batch=4)  # 1 h per build of 4 parts: 900 s per part
    # 2 h window, 16 parts = 4 builds = 14400 s ideal in 7200 s run: P = 2.0; the excess (7200 s) is two
    # builds, more than one cycle can explain: the ideal time or the counter is wrong, and it shows.
    r = machine_oee(site, printer, _running(0), _running(16), T0, T1)
    assert r.performance == pytest.approx(2.0) and not r.performance_capped
    # 12 parts = 3 builds = 10800 s: excess 3600 s = exactly one build -> quantisation, capped at 1
    r = machine_oee(site, printer, _running(0), _running(12), T0, T1)
    assert r.performance == 1.0 and r.performance_capped


def test_site_allowance_is_one_cycle_per_counting_machine(fleet):  # type: ignore[no-untyped-def]
    site = fleet.site("s1")
    printer = _printer(fleet, build_s=6 * 3600.0, batch=10)
    p2 = site.machine("P2")
    # P2 keeps its own template; make it count nothing in the window (running, no parts)
    one = replace(site, machines=(printer, p2))
    before = SiteState(site=site.id, as_of=T0, machines={"P1": _running(0), "P2": replace(_running(0), id="P2")})
    after = SiteState(site=site.id, as_of=T1, machines={"P1": _running(10), "P2": replace(_running(0), id="P2")})
    r = site_oee(one, before, after)
    # Σideal = 10 × 2160 = 21600 s; Σrun = 2 × 7200 = 14400 s -> 1.5; excess 7200 s ≤ allowance
    # 21600 + P2's cycle -> capped at 1
    assert r.performance == 1.0 and r.performance_capped
    assert r.run_s == 14400.0


def test_oee_and_capped_performance_by_hand() -> None:
    # a 10-part, 6 h build in a 2 h window: 21600 / 7200 = 3.0, excess 14400 ≤ 21600 -> 1.0
    assert capped_performance(21600.0, 7200.0, 21600.0) == (1.0, True)
    # with no allowance (the default of oee()), the raw ratio stands
    r = oee(planned_s=7200.0, run_s=7200.0, ideal_cycle_time_s=2160.0, total_count=10, good_count=10)
    assert r.performance == pytest.approx(3.0) and not r.performance_capped
    r = oee(planned_s=7200.0, run_s=7200.0, ideal_cycle_time_s=2160.0, total_count=10, good_count=10,
            cycle_allowance_s=21600.0)
    assert r.performance == 1.0 and r.performance_capped and r.oee == 1.0
    # below 1 nothing changes
    assert capped_performance(3600.0, 7200.0, 21600.0) == (0.5, False)
    assert capped_performance(3600.0, None, 21600.0) == (None, False)
