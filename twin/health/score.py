"""Live health: each machine's failure risk now, from a fitted :class:`twin.health.model.HealthModel`.

:func:`machine_health` takes the timeline of the recent history (its last grid time is "now") and
gives per machine P(failure within ``horizon_h``, 8 h) and P(failure within the rest of the current
shift), each with its 90 % interval, the covariates that drive it, and the model it came from (with
its sample sizes and fallback note). A machine runs its running share of the horizon (its share of
the history the model was fitted on), except that a machine at rest (OFF or IDLE) outside a shift
is taken not to run before the next shift starts; the shift's end comes from the site's calendar
(``twin.calendar.shift_intervals``); outside a shift there is no shift risk (None).

The model is fitted on a schedule (``twin health`` fits it per call; a service refits it, not per
request); scoring is cheap: 500 machines in a few milliseconds (``bench/health_bench.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from twin.calendar import shift_intervals
from twin.health.model import Driver, HealthModel, Risk, TemplateModel
from twin.health.timeline import MachineTimeline, Timeline
from twin.spec import FleetSpec, MachineStatus

__all__ = ["MachineHealth", "RiskTrend", "hours_to_next_shift", "machine_health", "risk_trend", "shift_hours_left"]

_DAY = timedelta(days=1)
_AT_REST = (MachineStatus.OFF, MachineStatus.IDLE)


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineHealth:
    """One machine's risk now."""

    site: str
    machine: str
    template: str
    status: MachineStatus
    risk: Risk  # within the horizon
    shift: Risk | None  # within the rest of the shift (None: not in a shift now)
    baseline: float  # P within the horizon under the constant-MTBF hazard
    drivers: tuple[Driver, ...]
    model: TemplateModel
    seen: bool = True  # False: no known status in the whole window (no history: the risk says nothing)


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskTrend:
    """A machine's risk over its timeline, and its driving signals with their learnt thresholds (a machine page)."""

    t: tuple[float, ...]  # grid times, unix s
    p: tuple[float, ...]  # P(failure within ``hours``) at each
    hours: float
    signals: dict[str, tuple[float, ...]]  # the model's condition features at each grid time
    thresholds: dict[str, float]  # where a feature alone makes 3 x the average hazard (only those that can)


def risk_trend(model: TemplateModel, m: MachineTimeline, *, horizon_h: float = 8.0,
               factor: float = 3.0) -> RiskTrend:
    """The risk of machine ``m`` at every grid time of its timeline, with its features and their thresholds."""
    share = model.share.get(f"{m.site}/{m.machine}", m.running_share)
    p = model.probability_many(m.features, len(m.t), horizon_h, share)
    thresholds = {f: x for f in model.features if (x := model.threshold(f, factor)) is not None}
    return RiskTrend(t=tuple(float(x) for x in m.t), p=tuple(float(x) for x in p), hours=horizon_h,
                     signals={f: tuple(float(x) for x in m.features[f]) for f in model.features if f in m.features},
                     thresholds=thresholds)


def shift_hours_left(fleet: FleetSpec, site: str, at: datetime) -> float | None:
    """Hours from ``at`` to the end of the site's shift going on (None: no shift at ``at``)."""
    spec = fleet.site(site)
    for a, b in shift_intervals(spec.calendar, spec.timezone, at, at.replace(microsecond=0) + _DAY):
        if a <= at < b:
            end = b
            # a shift split at the look-ahead's end goes on: look once more from there
            nxt = shift_intervals(spec.calendar, spec.timezone, b, b + _DAY)
            if nxt and nxt[0][0] == b:
                end = nxt[0][1]
            return (end - at).total_seconds() / 3600.0
        if a > at:
            break
    return None


def hours_to_next_shift(fleet: FleetSpec, site: str, at: datetime, horizon_h: float) -> float:
    """Hours from ``at`` to the next shift start of the site (0 inside a shift; ``horizon_h`` if none sooner)."""
    spec = fleet.site(site)
    end = at + timedelta(hours=horizon_h)
    for a, b in shift_intervals(spec.calendar, spec.timezone, at, end):
        if a <= at < b:
            return 0.0
        return min(horizon_h, (a - at).total_seconds() / 3600.0)
    return horizon_h


def _latest(m: MachineTimeline) -> dict[str, float]:
    return {name: float(v[-1]) for name, v in m.features.items()} if len(m.t) else {}


def machine_health(fleet: FleetSpec, model: HealthModel, timeline: Timeline, *,
                   horizon_h: float = 8.0) -> list[MachineHealth]:
    """Every machine of ``timeline`` that ``model`` has a template for, scored at its last grid time."""
    out: list[MachineHealth] = []
    shifts: dict[str, float | None] = {}
    for m in timeline.machines:
        tm = model.templates.get(m.template)
        if tm is None or not len(m.t):
            continue
        now = datetime.fromtimestamp(float(m.t[-1]), UTC)
        if m.site not in shifts:
            shifts[m.site] = shift_hours_left(fleet, m.site, now)
        share = tm.share.get(f"{m.site}/{m.machine}", m.running_share)
        values = _latest(m)
        left = shifts[m.site]
        status = m.status[-1]
        # a machine that is off outside a shift cannot fail before the next shift starts
        idle = hours_to_next_shift(fleet, m.site, now, horizon_h) if left is None and status in _AT_REST else 0.0
        out.append(MachineHealth(
            site=m.site, machine=m.machine, template=m.template, status=status,
            risk=tm.risk(values, horizon_h, share, idle),
            shift=tm.risk(values, left, share) if left is not None and left > 0 and math.isfinite(left) else None,
            baseline=tm.baseline_probability(max(0.0, horizon_h - idle), share), drivers=tm.drivers(values),
            model=tm, seen=any(s is not MachineStatus.UNKNOWN for s in m.status)))
    return out

