"""Machine and output KPIs: OEE and its factors over a window of two snapshots, MTBF/MTTR, throughput, scrap, plan.

OEE follows the plant definition: availability = run time ÷ planned time (from the shift
calendar), performance = ideal time per part × total count ÷ run time, quality = good ÷ total; each
factor is computed wherever its inputs exist, so a machine without counters still shows its
availability. Availability counts a machine's run time up to its planned time (a machine cannot
run more of the plan than there is: running outside its shifts never lifts availability above 1),
while performance divides the ideal time of every part made by the whole run time.

Performance over a short window is quantised by cycles: a machine counts its parts when a cycle
ends, so a cycle that began before the window and ends inside it brings all its parts while only
part of its run time falls in the window. For a print build of N parts that is N parts at once and
performance far above 1 (a 6 h build of 10 parts ending 1 h into a 2 h window: 3.0). The excess
ideal time is at most one whole cycle per machine (``ideal_cycle_time_s``, the batch's time), so
performance above 1 by no more than that allowance is reported as exactly 1 with
``performance_capped`` set, and the page says so; an excess beyond one cycle is not quantisation
(a wrong ideal cycle time, a counter jump) and is reported as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from twin.calendar import planned_seconds
from twin.frozen import FrozenDict
from twin.spec import MachineId, MachineSpec, MachineStatus, ProductFamily, Role, SignalKind, SiteSpec
from twin.state import MachineState, SiteState

__all__ = [
    "MachineWindow",
    "Oee",
    "OutputVsPlan",
    "capped_performance",
    "finishing_machines",
    "machine_oee",
    "machine_window",
    "mtbf_h",
    "mttr_h",
    "oee",
    "output_vs_plan",
    "planned_units_to",
    "scrap_rate",
    "site_oee",
    "site_windows",
    "throughput_per_h",
    "window_from_states",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Oee:
    """OEE with its three factors and the inputs they came from; a factor is None when unknown.

    >>> r = oee(planned_s=8 * 3600, run_s=7.5 * 3600, ideal_cycle_time_s=60, total_count=400,
    ...         good_count=392)
    >>> round(r.availability, 4), round(r.performance, 4), round(r.quality, 4), round(r.oee, 4)
    (0.9375, 0.8889, 0.98, 0.8167)
    >>> oee(planned_s=8 * 3600, run_s=7.5 * 3600, ideal_cycle_time_s=60, total_count=None,
    ...     good_count=None).oee is None
    True
    """

    availability: float | None
    performance: float | None
    quality: float | None
    oee: float | None
    planned_s: float | None = None
    run_s: float | None = None
    total_count: int | None = None
    good_count: int | None = None
    performance_capped: bool = False  # above 1 by at most one cycle per machine: reported as 1 (see module doc)


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return num / den


def _in_plan(run_s: float | None, planned_s: float | None) -> float | None:
    """Run time counted in availability: at most the planned time."""
    return None if run_s is None or planned_s is None else min(run_s, planned_s)


def _combine(a: float | None, p: float | None, q: float | None) -> float | None:
    return None if a is None or p is None or q is None else a * p * q


def capped_performance(ideal_s: float, run_s: float | None, cycle_allowance_s: float) -> tuple[float | None, bool]:
    """Performance = ideal time of the parts made ÷ run time, and whether it was capped at 1.

    Above 1 by no more than ``cycle_allowance_s`` of ideal time (one whole cycle per machine: the
    parts of a cycle begun before the window) it is 1.0 and capped; beyond that it is reported as is.

    >>> capped_performance(10 * 2160.0, 7200.0, 21600.0)  # a 10-part, 6 h build ending in a 2 h window
    (1.0, True)
    >>> capped_performance(12 * 600.0, 3600.0, 600.0)  # 12 parts of 10 min in 1 h: not quantisation
    (2.0, False)
    """
    p = _ratio(ideal_s, run_s)
    if p is not None and p > 1.0 and run_s is not None and ideal_s - run_s <= cycle_allowance_s:
        return 1.0, True
    return p, False


def oee(
    planned_s: float | None,
    run_s: float | None,
    ideal_cycle_time_s: float | None,
    total_count: int | None,
    good_count: int | None,
    *,
    cycle_allowance_s: float = 0.0,
) -> Oee:
    """OEE from its inputs. ``ideal_cycle_time_s`` is the ideal time per *part* (see batch size).

    Availability needs planned and run time; performance needs run time, the ideal time and the
    total count; quality needs the counts. A zero denominator leaves its factor None.
    ``cycle_allowance_s`` is the ideal time of one whole cycle (a batch): performance above 1 by no
    more than that is window quantisation and reported as 1 (``performance_capped``).
    """
    availability = _ratio(_in_plan(run_s, planned_s), planned_s)
    performance: float | None = None
    capped = False
    if ideal_cycle_time_s is not None and total_count is not None:
        performance, capped = capped_performance(ideal_cycle_time_s * total_count, run_s, cycle_allowance_s)
    quality = _ratio(good_count, total_count)
    return Oee(
        availability=availability,
        performance=performance,
        quality=quality,
        oee=_combine(availability, performance, quality),
        planned_s=planned_s,
        run_s=run_s,
        total_count=total_count,
        good_count=good_count,
        performance_capped=capped,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineWindow:
    """What one machine did between two snapshots.

    ``status_s`` holds the seconds spent in each status (UNKNOWN included); ``known_s`` the seconds
    with a known status. ``good``/``scrap`` are None when the machine has no such counter or it has
    never reported. ``total`` is good + scrap (None if either is unknown).

    >>> from datetime import UTC
    >>> t0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
    >>> before = MachineState(id="M1", status=MachineStatus.RUNNING, status_since=t0)
    >>> after = MachineState(id="M1", status=MachineStatus.RUNNING, status_since=t0,
    ...                      status_seconds=FrozenDict())
    >>> w = window_from_states(before, after, t0, t0 + timedelta(hours=2), has_good=False,
    ...                        has_scrap=False)
    >>> w.run_s, w.good
    (7200.0, None)
    """

    machine: MachineId
    t0: datetime
    t1: datetime
    status_s: FrozenDict[MachineStatus, float] = field(default_factory=FrozenDict)
    run_s: float = 0.0
    known_s: float = 0.0
    good: int | None = None
    scrap: int | None = None
    failures: int = 0
    repairs: int = 0

    @property
    def total(self) -> int | None:
        return None if self.good is None or self.scrap is None else self.good + self.scrap

    @property
    def down_s(self) -> float:
        return self.status_s.get(MachineStatus.FAULT, 0.0)


def _cumulative(state: MachineState, at: datetime) -> dict[MachineStatus, float]:
    out = dict(state.status_seconds)
    since = state.status_since
    if since is not None and at > since:
        out[state.status] = out.get(state.status, 0.0) + (at - since).total_seconds()
    return out


def window_from_states(
    before: MachineState,
    after: MachineState,
    t0: datetime,
    t1: datetime,
    *,
    has_good: bool,
    has_scrap: bool,
) -> MachineWindow:
    """The window between two snapshots of one machine, given which counters it has."""
    c0, c1 = _cumulative(before, t0), _cumulative(after, t1)
    status_s = {s: c1.get(s, 0.0) - c0.get(s, 0.0) for s in MachineStatus if s in c0 or s in c1}
    known_s = sum(v for s, v in status_s.items() if s is not MachineStatus.UNKNOWN)
    good: int | None = None
    if has_good and after.last_raw_good is not None:
        good = after.good_total - before.good_total
    scrap: int | None = 0 if not has_scrap and good is not None else None
    if has_scrap and after.last_raw_scrap is not None:
        scrap = after.scrap_total - before.scrap_total
    return MachineWindow(
        machine=after.id,
        t0=t0,
        t1=t1,
        status_s=FrozenDict(status_s),
        run_s=status_s.get(MachineStatus.RUNNING, 0.0),
        known_s=known_s,
        good=good,
        scrap=scrap,
        failures=after.failures - before.failures,
        repairs=after.repairs - before.repairs,
    )


def machine_window(
    machine_spec: MachineSpec, before: MachineState, after: MachineState, t0: datetime, t1: datetime
) -> MachineWindow:
    """What ``machine_spec`` did between its snapshot ``before`` (at ``t0``) and ``after`` (at ``t1``).

    A machine without a scrap counter counts its scrap as 0 (good is then the total).
    """
    template = machine_spec.template
    return window_from_states(
        before,
        after,
        t0,
        t1,
        has_good=template.signal_of_kind(SignalKind.GOOD_COUNT) is not None,
        has_scrap=template.signal_of_kind(SignalKind.SCRAP_COUNT) is not None,
    )


def _ideal_per_part_s(machine_spec: MachineSpec) -> float:
    template = machine_spec.template
    return template.ideal_cycle_time_s / max(template.batch_size, 1)


def machine_oee(
    site_spec: SiteSpec,
    machine_spec: MachineSpec,
    before: MachineState,
    after: MachineState,
    t0: datetime,
    t1: datetime,
) -> Oee:
    """OEE of one machine over ``[t0, t1)``; planned time from the site's shift calendar.

    Run time is unknown (None) when the machine's status was never known in the window.
    """
    w = machine_window(machine_spec, before, after, t0, t1)
    planned = planned_seconds(site_spec.calendar, site_spec.timezone, t0, t1)
    return oee(
        planned_s=planned,
        run_s=w.run_s if w.known_s > 0 else None,
        ideal_cycle_time_s=_ideal_per_part_s(machine_spec),
        total_count=w.total,
        good_count=w.good,
        cycle_allowance_s=machine_spec.template.ideal_cycle_time_s,
    )


def site_windows(site_spec: SiteSpec, before: SiteState, after: SiteState) -> dict[MachineId, MachineWindow]:
    """Every machine's window between two snapshots of a site (machines missing in either skipped)."""
    out: dict[MachineId, MachineWindow] = {}
    for m in site_spec.machines:
        b, a = before.machines.get(m.id), after.machines.get(m.id)
        if b is not None and a is not None:
            out[m.id] = machine_window(m, b, a, before.as_of, after.as_of)
    return out


def site_oee(site_spec: SiteSpec, before: SiteState, after: SiteState) -> Oee:
    """OEE of a site between two snapshots, aggregated over its machines.

    availability = Σmin(run, planned) ÷ Σplanned (machines with a known status), performance = Σ(ideal time per
    part × total) ÷ Σrun (machines with counts; capped at 1 when above it by no more than one cycle
    of each of those machines), quality = Σgood ÷ Σtotal. ``planned_s`` and ``run_s`` of the result
    are the sums used for availability.
    """
    windows = site_windows(site_spec, before, after)
    planned_each = planned_seconds(site_spec.calendar, site_spec.timezone, before.as_of, after.as_of)
    planned = run = perf_num = perf_run = allowance = 0.0
    good = total = 0
    any_status = any_counts = False
    for m in site_spec.machines:
        w = windows.get(m.id)
        if w is None or w.known_s <= 0:
            continue
        any_status = True
        planned += planned_each
        run += min(w.run_s, planned_each)
        if w.total is not None and w.good is not None:
            any_counts = True
            perf_num += _ideal_per_part_s(m) * w.total
            perf_run += w.run_s
            allowance += m.template.ideal_cycle_time_s
            good += w.good
            total += w.total
    availability = _ratio(run, planned) if any_status else None
    performance, capped = capped_performance(perf_num, perf_run, allowance) if any_counts else (None, False)
    quality = _ratio(good, total) if any_counts else None
    return Oee(
        availability=availability,
        performance=performance,
        quality=quality,
        oee=_combine(availability, performance, quality),
        planned_s=planned if any_status else None,
        run_s=run if any_status else None,
        total_count=total if any_counts else None,
        good_count=good if any_counts else None,
        performance_capped=capped,
    )


def mtbf_h(operating_s: float, failures: int) -> float | None:
    """Mean time between failures in hours: operating time ÷ failures (None without failures)."""
    return None if failures <= 0 else operating_s / 3600.0 / failures


def mttr_h(repair_s: float, repairs: int) -> float | None:
    """Mean time to repair in hours: repair time ÷ repairs (None without repairs)."""
    return None if repairs <= 0 else repair_s / 3600.0 / repairs


def throughput_per_h(count: int | None, seconds: float) -> float | None:
    """Parts per hour over ``seconds`` (None if the count is unknown or the span empty)."""
    return None if count is None or seconds <= 0 else count * 3600.0 / seconds


def scrap_rate(good: int | None, scrap: int | None) -> float | None:
    """Scrap ÷ (good + scrap), None if unknown or nothing was made."""
    if good is None or scrap is None or good + scrap <= 0:
        return None
    return scrap / (good + scrap)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputVsPlan:
    """Actual output against the plan to date: ``ratio`` (None without a plan) and ``gap`` (units).

    >>> output_vs_plan(90, 120.0)
    OutputVsPlan(actual=90, plan=120.0, ratio=0.75, gap=-30.0)
    """

    actual: int
    plan: float
    ratio: float | None
    gap: float


def output_vs_plan(actual: int, plan: float) -> OutputVsPlan:
    """Compare ``actual`` units with ``plan`` units (negative gap: behind plan)."""
    return OutputVsPlan(actual=actual, plan=plan, ratio=_ratio(actual, plan), gap=actual - plan)


def planned_units_to(site_spec: SiteSpec, day_start: datetime, t: datetime) -> float:
    """The site's daily plan pro rata to the planned time elapsed from ``day_start`` to ``t``.

    ``day_start`` is the start of the (local) production day; the plan is spread over that day's
    shifts, so at the end of the last shift the whole ``daily_plan_units`` is due.
    """
    cal, tz = site_spec.calendar, site_spec.timezone
    day = planned_seconds(cal, tz, day_start, day_start + timedelta(days=1))
    if day <= 0:
        return 0.0
    elapsed = planned_seconds(cal, tz, day_start, min(t, day_start + timedelta(days=1)))
    return site_spec.daily_plan_units * elapsed / day



def finishing_machines(site_spec: SiteSpec, products: Sequence[ProductFamily] = ()) -> tuple[MachineSpec, ...]:
    """The machines whose good count is the site's output: those of the last step of its routings.

    A finished unit passes through every station of its routing, so summing all stations would count
    it several times. The last step of the routings of the families the site makes (``products``,
    matched by its demand) is usually ``pack``; without demand, the site's ``pack`` machines; a site
    with neither counts every machine.
    """
    made = {d.product for d in site_spec.demand}
    last_roles = {p.routing[-1] for p in products if p.id in made and p.routing}
    if not last_roles:
        last_roles = {Role.PACK}
    chosen = tuple(m for m in site_spec.machines if m.role in last_roles)
    return chosen or site_spec.machines
