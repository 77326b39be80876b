"""Calibrate a fleet over a window: read each site's history once, run every figure's estimator, assemble the result."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from twin.calibrate.demand import calibrate_demand, order_arrivals
from twin.calibrate.estimates import Calibration, MinSamples, ParamEstimate, Source, estimate
from twin.calibrate.machines import cycle_estimate, machine_history, units_by_role
from twin.calibrate.supply import calibrate_consumption, calibrate_lead_times
from twin.frozen import FrozenDict
from twin.historian import HistorianReader, SeriesKey, SeriesPoint
from twin.sim.params import DemandParams, LeadTimeParams, MachineParams, SimParams
from twin.sim.uncertainty import FigureLaw, Law, Uncertainty
from twin.spec import FleetSpec, MachineStatus, SignalKind, SiteSpec

__all__ = ["MAX_POINTS", "calibrate"]

log = logging.getLogger("twin.calibrate")  # the name calibration has always logged under

MAX_POINTS = 10_000_000  # ask for raw points: draws and counter steps must not be averaged away


def _series(
    historian: HistorianReader, keys: list[SeriesKey], t0: datetime, t1: datetime
) -> dict[SeriesKey, list[SeriesPoint]]:
    if not keys:
        return {}
    result = historian.series(keys, t0, t1, MAX_POINTS)
    out: dict[SeriesKey, list[SeriesPoint]] = {}
    thinned = [r.key for r in result if r.downsampled]
    if thinned:  # one line per read, not one per series: a site reads dozens of them
        log.warning("%d series %s downsampled (e.g. %s/%s/%s): counts and draws may be undercounted",
                    len(thinned), "was" if len(thinned) == 1 else "were", thinned[0].site, thinned[0].asset,
                    thinned[0].signal)
    for r in result:
        out[r.key] = list(r.points)
    return out


_COUNTED = (SignalKind.GOOD_COUNT, SignalKind.SCRAP_COUNT, SignalKind.CYCLE_TIME, SignalKind.JOB)


def _calibrate_site(
    fleet: FleetSpec, site: SiteSpec, historian: HistorianReader, t0: datetime, t1: datetime, mins: MinSamples,
    estimates: list[ParamEstimate], machines: dict[tuple[str, str], MachineParams],
    demand: dict[tuple[str, str], DemandParams], consumption: dict[tuple[str, str], float],
    lead_times: dict[tuple[str, str], LeadTimeParams], laws: dict[tuple[str, str, str], FigureLaw],
    default_cv: float,
) -> None:
    sid = str(site.id)
    events = historian.events(sid, t0, t1)
    start_state = historian.state_at(sid, t0)
    keys: list[SeriesKey] = []
    for m in site.machines:
        for kind in _COUNTED:
            sig = m.template.signal_of_kind(kind)
            if sig is not None:
                keys.append(SeriesKey(site=sid, asset=str(m.id), signal=str(sig.name)))
    keys += [SeriesKey(site=sid, asset=str(i.sku), signal="on_hand") for i in site.inventory]
    series = _series(historian, keys, t0, t1)
    made_by_machine: dict[str, float] = {}
    for m in site.machines:
        t = m.template
        subject = f"{sid}/{m.id}"
        initial = MachineStatus.UNKNOWN
        if start_state is not None and m.id in start_state.machines:
            initial = start_state.machines[m.id].status
        counters: dict[SignalKind, Sequence[SeriesPoint]] = {}
        for kind in _COUNTED:
            sig = t.signal_of_kind(kind)
            if sig is not None:
                counters[kind] = series.get(SeriesKey(site=sid, asset=str(m.id), signal=str(sig.name)), [])
        h = machine_history(m, [e for e in events if e.asset == m.id], initial, counters, t0, t1)
        made_by_machine[str(m.id)] = h.good + h.scrap
        mtbf = estimate("mtbf_h", subject, h.running_s / 3600.0 / h.failures if h.failures else None, h.failures,
                        mins.failures, t.mtbf_h, "h")
        n_rep = len(h.repair_durations_s)
        mttr = estimate("mttr_h", subject, sum(h.repair_durations_s) / n_rep / 3600.0 if n_rep else None, n_rep,
                        mins.repairs, t.mttr_h, "h")
        parts = h.good + h.scrap
        cycle, cycles, cv = cycle_estimate(subject, t, h, mins)
        scrap = estimate("scrap_rate", subject, h.scrap / parts if parts else None, int(parts), mins.parts,
                         t.scrap_rate, "")
        estimates.extend([mtbf, mttr, cycle, scrap])
        mid = str(m.id)
        if mtbf.source is Source.HISTORY:
            laws[("mtbf", sid, mid)] = FigureLaw(law=Law.MEAN_TIME, n=float(h.failures))
        if mttr.source is Source.HISTORY:
            laws[("mttr", sid, mid)] = FigureLaw(law=Law.MEAN_TIME, n=float(n_rep))
        if cycle.source is Source.HISTORY:
            laws[("cycle", sid, mid)] = FigureLaw(law=Law.NORMAL, n=cycles, cv=cv if cv is not None else default_cv)
        if scrap.source is Source.HISTORY:
            laws[("scrap", sid, mid)] = FigureLaw(law=Law.PROPORTION, n=parts, k=h.scrap)
        machines[(sid, str(m.id))] = MachineParams(
            cycle_time_s=cycle.value if cycle.source is Source.HISTORY else None,
            cycle_cv=cv,
            mtbf_h=mtbf.value if mtbf.source is Source.HISTORY else None,
            mttr_h=mttr.value if mttr.source is Source.HISTORY else None,
            scrap_rate=scrap.value if scrap.source is Source.HISTORY else None,
        )
    made = units_by_role(site, series, made_by_machine)
    arrivals = order_arrivals(events, t0, t1)
    calibrate_lead_times(site, events, t0, t1, mins, estimates, lead_times, laws)
    calibrate_consumption(fleet, site, events, t0, t1, mins, series, made, arrivals, estimates, consumption, laws)
    calibrate_demand(fleet, site, historian, t0, t1, mins, series, arrivals, estimates, demand, consumption, laws)


def calibrate(
    fleet: FleetSpec,
    historian: HistorianReader,
    t0: datetime,
    t1: datetime,
    *,
    sites: Sequence[str] | None = None,
    min_samples: MinSamples | None = None,
) -> Calibration:
    """Estimate the simulation parameters of ``sites`` (default: all) from history in ``[t0, t1]``."""
    mins = min_samples or MinSamples()
    estimates: list[ParamEstimate] = []
    machines: dict[tuple[str, str], MachineParams] = {}
    demand: dict[tuple[str, str], DemandParams] = {}
    consumption: dict[tuple[str, str], float] = {}
    lead_times: dict[tuple[str, str], LeadTimeParams] = {}
    laws: dict[tuple[str, str, str], FigureLaw] = {}
    default_cv = SimParams().default_cycle_cv
    for site in fleet.sites:
        if sites is not None and site.id not in sites:
            continue
        _calibrate_site(fleet, site, historian, t0, t1, mins, estimates, machines, demand, consumption, lead_times,
                        laws, default_cv)
    n_default = sum(1 for e in estimates if e.source is Source.DEFAULT)
    if n_default:
        log.info("calibration: %d of %d figures fell back to the configuration", n_default, len(estimates))
    params = SimParams(machines=FrozenDict(machines), demand=FrozenDict(demand), consumption=FrozenDict(consumption),
                       lead_times=FrozenDict(lead_times))
    return Calibration(t0=t0, t1=t1, estimates=tuple(estimates), params=params,
                       uncertainty=Uncertainty(figures=FrozenDict(laws)))
