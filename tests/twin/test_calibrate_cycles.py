"""Cycle counts of the calibration: a JOB counter, a batch machine's output steps, measured cycle durations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest

from tests.twin.sim.helpers import AS_OF, tiny_fleet
from twin.calibrate import MachineHistory, MinSamples, Source, cycle_count, machine_history
from twin.calibrate.machines import cycle_estimate
from twin.frozen import FrozenDict
from twin.historian import SeriesPoint
from twin.spec import MachineSpec, MachineStatus, SignalKind, SiteId
from twin.state import Event, EventKind

T0 = AS_OF
T1 = T0 + timedelta(hours=100)


def _points(values: Sequence[tuple[float, float]]) -> list[SeriesPoint]:
    """(hours after T0, value) -> raw points."""
    return [SeriesPoint(ts=T0 + timedelta(hours=h), value=v, min=v, max=v) for h, v in values]


def _running(hours: float) -> list[Event]:
    """RUNNING from T0 for ``hours``, then IDLE."""
    return [Event(ts=T0 + timedelta(hours=hours), site=SiteId("s1"), asset="P1", kind=EventKind.STATUS_CHANGE,
                  data=FrozenDict({"from": "running", "to": "idle"}), message="")]


def _printer_history(counters: dict[SignalKind, Sequence[SeriesPoint]],
                     hours: float = 40.0) -> tuple[MachineSpec, MachineHistory]:
    fleet = tiny_fleet()
    m = fleet.sites[0].machines[0]  # printer: cycle 3600 s, batch 4
    return m, machine_history(m, _running(hours), MachineStatus.RUNNING, counters, T0, T1)


def test_a_job_counter_counts_the_cycles() -> None:
    # 10 builds (job 0 -> 10) of 25 parts: partly filled, so parts / batch (25 / 4 = 6.25) undercounts
    good = _points([(0, 0), (4, 3), (8, 6), (12, 25)])
    job = _points([(0, 0), (4, 3), (8, 6), (12, 10)])
    m, h = _printer_history({SignalKind.GOOD_COUNT: good, SignalKind.JOB: job})
    assert cycle_count(m.template.batch_size, h) == 10.0


def test_a_batch_machine_counts_the_steps_of_its_counters() -> None:
    # good rose at 1, 3, 4, 5, 7 h, scrap at 3 and 8 h: 6 intervals with a rise (the build ending in
    # the 3rd hour made good and scrap parts), so 6 builds of 9 parts; parts / batch = 2.25 undercounts
    good = _points([(0, 0), (1, 1), (2, 1), (3, 2), (4, 4), (5, 5), (6, 5), (7, 6), (8, 6)])
    scrap = _points([(0, 0), (1, 0), (2, 0), (3, 1), (4, 1), (5, 1), (6, 1), (7, 1), (8, 3)])
    m, h = _printer_history({SignalKind.GOOD_COUNT: good, SignalKind.SCRAP_COUNT: scrap})
    assert h.output_steps == 6
    assert cycle_count(m.template.batch_size, h) == 6.0
    # a PLC restart (the counter back to 0) is no build; counting 2 after it is one
    restarted = _points([(0, 5), (1, 9), (2, 0), (3, 0), (4, 2)])
    _, h = _printer_history({SignalKind.GOOD_COUNT: restarted})
    assert h.output_steps == 2  # at 1 h and 4 h
    # full builds of 4 every interval but seen as 2 steps: never fewer than parts / batch = 40 / 4
    full = _points([(0, 0), (1, 20), (2, 40)])
    _, h = _printer_history({SignalKind.GOOD_COUNT: full})
    assert cycle_count(4, h) == 10.0
    # a batch-1 machine: one part a cycle
    assert cycle_count(1, h) == 40.0


def test_few_long_cycles_measured_one_by_one_give_their_mean() -> None:
    # 10 builds measured by the CYCLE_TIME signal: 3600 s +- 36 s (alternating), mean 3600, sd 37.9 s
    # (cv 1.05 %): its mean has a relative standard error of 1.05 % / sqrt(10) = 0.33 % <= 2 %, so the
    # mean duration is taken although 10 < 30 cycles
    durations = [3636.0 if i % 2 else 3564.0 for i in range(10)]
    cycle = _points([(0, 3600.0)] + [(4 * (i + 1), d) for i, d in enumerate(durations)])
    m, h = _printer_history({SignalKind.CYCLE_TIME: cycle})
    est, n, cv = cycle_estimate("s1/P1", m.template, h, MinSamples())
    assert est.source is Source.HISTORY and est.samples == 10 and n == 10.0
    assert est.value == pytest.approx(3600.0)
    assert cv == pytest.approx(37.947 / 3600.0, rel=1e-3)  # sqrt(10 x 36^2 / 9) = 37.95 s
    # only 4 measured: too few (5), the configuration stays
    est, _, _ = cycle_estimate("s1/P1", m.template,
                                machine_history(m, _running(hours=40.0), MachineStatus.RUNNING,
                                                {SignalKind.CYCLE_TIME: cycle[:5]}, T0, T1), MinSamples())
    assert est.source is Source.DEFAULT and est.value == 3600.0
