"""What a machine did in a window (status events and counters) and the figures estimated from it.

MTBF, MTTR, cycle time and scrap rate come from ``machine_history``; ``cycle_count`` and
``cycle_estimate`` say how cycles are counted (see ``twin.calibrate``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

import numpy as np

from twin.calibrate.estimates import MinSamples, ParamEstimate, Source, estimate
from twin.historian import SeriesKey, SeriesPoint
from twin.spec import MachineSpec, MachineStatus, MachineTemplate, SignalKind, SiteSpec
from twin.state import Event, EventKind

__all__ = ["MachineHistory", "cycle_count", "cycle_estimate", "machine_history", "units_by_role"]

@dataclass(frozen=True, slots=True, kw_only=True)
class MachineHistory:
    """What a machine did in a window, from its status events and counters."""

    running_s: float
    failures: int
    repair_durations_s: tuple[float, ...]
    good: float
    scrap: float
    cycle_samples: tuple[float, ...]
    jobs: float | None = None  # cycles counted by a JOB signal (None: the template has none)
    output_steps: int = 0  # sample intervals in which the good or scrap counter rose


def _status(value: object) -> MachineStatus:
    try:
        return MachineStatus(value)
    except ValueError:
        return MachineStatus.UNKNOWN


def _counter_increase(points: Sequence[SeriesPoint]) -> float:
    if len(points) < 2:
        return 0.0
    v = np.fromiter((p.value for p in points), dtype=float, count=len(points))
    step = np.diff(v)
    # a counter that went down restarted from zero: it counted its new value since
    return float(step[step >= 0.0].sum() + v[1:][step < 0.0].sum())


def machine_history(
    machine: MachineSpec,
    events: Sequence[Event],
    initial: MachineStatus,
    counters: dict[SignalKind, Sequence[SeriesPoint]],
    t0: datetime,
    t1: datetime,
) -> MachineHistory:
    """Fold one machine's STATUS_CHANGE events and counter series over ``[t0, t1]``."""
    status, since = initial, t0
    running = 0.0
    failures = 0
    fault_start: datetime | None = None
    repairs: list[float] = []
    for ev in sorted(events, key=lambda e: e.ts):
        if ev.kind is not EventKind.STATUS_CHANGE or not t0 <= ev.ts <= t1:
            continue
        to = _status(ev.data.get("to"))
        if status is MachineStatus.RUNNING:
            running += (ev.ts - since).total_seconds()
        if to is MachineStatus.FAULT and status is not MachineStatus.FAULT:
            failures += 1
            fault_start = ev.ts
        elif status is MachineStatus.FAULT and to not in (MachineStatus.FAULT, MachineStatus.UNKNOWN):
            if fault_start is not None:
                repairs.append((ev.ts - fault_start).total_seconds())
            fault_start = None
        if to is not MachineStatus.UNKNOWN or status is not MachineStatus.FAULT:
            status = to
        since = ev.ts
    if status is MachineStatus.RUNNING:
        running += (t1 - since).total_seconds()
    cycle_values = counters.get(SignalKind.CYCLE_TIME, ())
    samples = [p.value for prev, p in pairwise(cycle_values) if p.value != prev.value]
    rose: set[datetime] = set()  # a batch machine's counters rise once per cycle, when the build ends
    for kind in (SignalKind.GOOD_COUNT, SignalKind.SCRAP_COUNT):
        # a counter that went down restarted: it rose only if it counted something since
        rose.update(p.ts for prev, p in pairwise(counters.get(kind, ()))
                    if p.value > prev.value or 0.0 < p.value < prev.value)
    job_points = counters.get(SignalKind.JOB)
    return MachineHistory(
        running_s=running,
        failures=failures,
        repair_durations_s=tuple(repairs),
        good=_counter_increase(counters.get(SignalKind.GOOD_COUNT, ())),
        scrap=_counter_increase(counters.get(SignalKind.SCRAP_COUNT, ())),
        cycle_samples=tuple(samples),
        jobs=_counter_increase(job_points) if job_points is not None else None,
        output_steps=len(rose),
    )


def cycle_count(batch_size: int, h: MachineHistory) -> float:
    """Cycles a machine ran: JOB counts them; a batch machine's output steps; else parts / batch size.

    A batch machine starts a build with whatever is queued (partly filled builds), so parts /
    batch size undercounts its cycles; its counters rise once per build instead, so the intervals
    in which they rose count builds (two builds ending within one sample interval count once:
    never fewer than parts / batch size). Batch-1 machines make one part a cycle.
    """
    parts = h.good + h.scrap
    if h.jobs is not None and h.jobs > 0:
        return h.jobs
    if batch_size > 1:
        return max(float(h.output_steps), parts / batch_size)
    return parts


def cycle_estimate(subject: str, t: MachineTemplate, h: MachineHistory, mins: MinSamples
                   ) -> tuple[ParamEstimate, float, float | None]:
    """The cycle-time estimate, its number of cycles and the cycle cv (None: not measured)."""
    cv: float | None = None
    xs = h.cycle_samples
    mean = sum(xs) / len(xs) if xs else 0.0
    if len(xs) >= 2 and mean > 0:
        cv = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) / mean
    cycles = cycle_count(t.batch_size, h)
    value = h.running_s / cycles if cycles else None
    est = estimate("cycle_time_s", subject, value, int(cycles), mins.cycles, t.ideal_cycle_time_s, "s")
    if (est.source is Source.DEFAULT and cv is not None and len(xs) >= mins.measured_cycles
            and cv / math.sqrt(len(xs)) <= mins.cycle_rel_se):
        # few long cycles, each measured: their mean duration
        est = estimate("cycle_time_s", subject, mean, len(xs), mins.measured_cycles, t.ideal_cycle_time_s, "s")
        cycles = float(len(xs))
    if len(xs) < mins.cycles and est.samples != len(xs):
        cv = None
    return est, cycles, cv


def units_by_role(site: SiteSpec, series: dict[SeriesKey, list[SeriesPoint]],
                  made_by_machine: dict[str, float]) -> dict[str, float]:
    """Parts made (good + scrap) per role at the site, for the roles whose machines all count them."""
    made: dict[str, float] = {}
    missing: set[str] = set()
    for m in site.machines:
        role = m.role.value
        sig = m.template.signal_of_kind(SignalKind.GOOD_COUNT)
        if sig is None or not series.get(SeriesKey(site=str(site.id), asset=str(m.id), signal=str(sig.name))):
            missing.add(role)
            continue
        made[role] = made.get(role, 0.0) + made_by_machine.get(str(m.id), 0.0)
    return {r: v for r, v in made.items() if r not in missing}
