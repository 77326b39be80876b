"""Calibration: simulation parameters estimated from history, each with its sample size.

Reads the history of a window ``[t0, t1]`` through the :class:`twin.historian.Historian` protocol and
returns a :class:`Calibration`: one :class:`ParamEstimate` per figure (value, sample size, whether it
came from history or fell back to the configuration because history was too short) and the
resulting :class:`twin.sim.params.SimParams`.

Where each figure comes from:

- **MTBF** = time RUNNING / failures (changes into FAULT), **MTTR** = mean length of FAULT spells
  that start and end in the window; statuses from STATUS_CHANGE events (``data["from"]/["to"]``),
  the status at ``t0`` from ``state_at``. Samples: failures, repairs.
- **Cycle time** = time RUNNING / cycles (:func:`cycle_count`): cycles from a JOB counter when the
  template has one; else, for a batch machine, the sample intervals in which its GOOD_COUNT or
  SCRAP_COUNT rose (a build adds its parts at once; a plant starts builds with whatever is queued, so
  parts / batch size undercounts partly filled builds; never fewer than that); parts / batch size
  only for batch-1 machines (one part a cycle; a counter that goes down restarted from zero).
  Samples: cycles (``MinSamples.cycles``). Machines with long cycles (a 4 h print: ~25 a week)
  never reach that: when a CYCLE_TIME signal measured at least ``MinSamples.measured_cycles``
  durations (its distinct values: the last cycle's duration) whose mean has a relative standard error
  of at most ``MinSamples.cycle_rel_se``, the mean duration is taken. The cycle's coefficient of
  variation from those durations, when there are as many as the cycles counted or ``cycles``.
- **Scrap rate** = scrap / (good + scrap). Samples: parts.
- **Demand** per (site, product): from the order records in history when there are any
  (ORDER_RECEIVED events in the window: exact counts; samples: orders). The rate is the maximum
  likelihood estimate of a Poisson process shaped by the configured weekday and hour factors: orders
  / the window's length weighted by those factors (orders / days when they are flat). Hour-of-day
  factors are estimated from at least 20 orders per hour of the day on average; weekday factors
  replace the configured ones only from at least 30 orders per weekday, every weekday seen twice
  (14 days), and counts per weekday that the configured profile does not explain (chi-square, 6
  degrees of freedom, at 1 %): a week of Poisson noise is not a profile. Without order records: from open orders
  seen in hourly snapshots (``state_at``); otherwise from stock draws of a SKU that only this
  product uses at the site (the one with the most decreases). A unit draws at its consuming step
  (one decrease a unit at a one-piece-flow station, one a build at a batch machine), so decreases
  count neither orders nor units: orders = quantity drawn / what an order draws (BOM x mean batch x
  the consumption factor found from units made, else 1), per second of the intervals that count;
  intervals in which stock rose (a delivery hides the draws) or that start with nothing on hand are
  left out. Samples: orders so estimated. The product's other own SKUs get a consumption factor from
  their draws against those orders. Hour-of-day factors (from the times of the decreases) are
  estimated only with at least 20 decreases per hour of the day on average. (:func:`stock_draws`
  also gives the Poisson MLE of the decrease rate, robust to two draws between two samples.)
- **Lead time** per (site, SKU): from shipment history (SHIPMENT_ARRIVED events with their
  ``planned_eta``): ordered = planned ETA - configured lead time, lead = arrival - ordered; the mean
  and standard deviation (days) of at least ``MinSamples.arrivals`` arrivals go to
  ``SimParams.lead_times``. Samples: arrivals.
- **Consumption** per (site, SKU): 1.0 means the bill of materials is right. When the machines of
  the step that draws the SKU (``twin.spec.consuming_step``) count their parts: stock drawn /
  (units made at that step x BOM quantity), units made = good + scrap (a scrapped unit draws
  again), shared among the products through that step by the units counted at a step only each
  of them passes through (by their order volume when one has no such step); stock drawn = the
  decreases of on hand plus, where it rose, the deliveries recorded then less the rise (a feed's
  arrivals, or the PLC's receipts without a feed: never both). Samples:
  decreases; standard error taken as value / sqrt(decreases). Otherwise (demand from stock draws):
  a product's other own SKUs against the orders estimated from the best-resolved one (see Demand).

Every figure from history also gets the law of its estimate (``Calibration.uncertainty``, see
``twin.sim.uncertainty``): MTBF and MTTR ``MEAN_TIME`` with n failures / repairs, cycle time
``NORMAL`` with n cycles and the cycle cv, scrap ``PROPORTION`` (scrap of parts), demand ``RATE``
with n orders, lead time ``NORMAL`` with n arrivals, consumption ``NORMAL`` with its standard error.
Figures that fell back to the configuration are not listed there: they get the prior widths.

History is read only within ``[t0, t1]``: nothing after the window's end is seen.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from twin.frozen import FrozenDict
from twin.historian import Historian, SeriesKey, SeriesPoint
from twin.sim.clock import local_hour_segments
from twin.sim.params import DemandParams, LeadTimeParams, MachineParams, SimParams
from twin.sim.projection import to_plain
from twin.sim.uncertainty import FigureLaw, Law, Uncertainty
from twin.spec import (
    FleetSpec,
    MachineSpec,
    MachineStatus,
    MachineTemplate,
    SignalKind,
    SiteSpec,
    Sku,
    consuming_step,
)
from twin.state import Event, EventKind

__all__ = ["Calibration", "Draws", "MachineHistory", "MinSamples", "ParamEstimate", "Source", "calibrate",
           "cycle_count", "machine_history", "order_arrivals", "shipment_lead_times", "stock_draws"]

log = logging.getLogger(__name__)

DAY_S = 86400.0
MAX_POINTS = 10_000_000  # ask for raw points: draws and counter steps must not be averaged away


class Source(enum.Enum):
    """Where an estimate's value comes from."""

    HISTORY = "history"
    DEFAULT = "default"  # history too short: the configuration's value


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamEstimate:
    """One calibrated figure: ``name`` of ``subject`` (``site/machine``, ``site/product``, ``site/sku``)."""

    name: str
    subject: str
    value: float
    samples: int
    source: Source
    default: float
    unit: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class MinSamples:
    """The smallest sample that replaces a configured default."""

    failures: int = 5
    repairs: int = 5
    cycles: int = 30
    # a machine with long cycles (a 4 h print: ~25 a week in shifts) never reaches ``cycles``: when
    # a CYCLE_TIME signal measured at least ``measured_cycles`` durations whose mean has a relative
    # standard error of at most ``cycle_rel_se``, that mean is taken
    measured_cycles: int = 5
    cycle_rel_se: float = 0.02
    parts: int = 200
    orders: int = 30
    arrivals: int = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class Calibration:
    """Estimates over ``[t0, t1]`` and the simulation parameters built from them."""

    t0: datetime
    t1: datetime
    estimates: tuple[ParamEstimate, ...]
    params: SimParams = field(default_factory=SimParams)
    uncertainty: Uncertainty = field(default_factory=Uncertainty)

    def get(self, name: str, subject: str) -> ParamEstimate:
        for e in self.estimates:
            if e.name == name and e.subject == subject:
                return e
        raise KeyError((name, subject))

    @property
    def defaults_used(self) -> tuple[ParamEstimate, ...]:
        return tuple(e for e in self.estimates if e.source is Source.DEFAULT)

    def to_dict(self) -> dict[str, Any]:
        return {"t0": self.t0.isoformat(), "t1": self.t1.isoformat(), "estimates": to_plain(self.estimates)}


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


def _est(name: str, subject: str, value: float | None, samples: int, enough: int, default: float,
         unit: str) -> ParamEstimate:
    if value is None or samples < enough or not math.isfinite(value):
        return ParamEstimate(name=name, subject=subject, value=default, samples=samples, source=Source.DEFAULT,
                             default=default, unit=unit)
    return ParamEstimate(name=name, subject=subject, value=value, samples=samples, source=Source.HISTORY,
                         default=default, unit=unit)


def _series(
    historian: Historian, keys: list[SeriesKey], t0: datetime, t1: datetime
) -> dict[SeriesKey, list[SeriesPoint]]:
    if not keys:
        return {}
    result = historian.series(keys, t0, t1, MAX_POINTS)
    out: dict[SeriesKey, list[SeriesPoint]] = {}
    for r in result:
        if r.downsampled:
            log.warning("series %s was downsampled: counts and draws may be undercounted", r.key)
        out[r.key] = list(r.points)
    return out


_COUNTED = (SignalKind.GOOD_COUNT, SignalKind.SCRAP_COUNT, SignalKind.CYCLE_TIME, SignalKind.JOB)


def _cycle_estimate(subject: str, t: MachineTemplate, h: MachineHistory, mins: MinSamples
                    ) -> tuple[ParamEstimate, float, float | None]:
    """The cycle-time estimate, its number of cycles and the cycle cv (None: not measured)."""
    cv: float | None = None
    xs = h.cycle_samples
    mean = sum(xs) / len(xs) if xs else 0.0
    if len(xs) >= 2 and mean > 0:
        cv = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) / mean
    cycles = cycle_count(t.batch_size, h)
    value = h.running_s / cycles if cycles else None
    est = _est("cycle_time_s", subject, value, int(cycles), mins.cycles, t.ideal_cycle_time_s, "s")
    if (est.source is Source.DEFAULT and cv is not None and len(xs) >= mins.measured_cycles
            and cv / math.sqrt(len(xs)) <= mins.cycle_rel_se):
        # few long cycles, each measured: their mean duration
        est = _est("cycle_time_s", subject, mean, len(xs), mins.measured_cycles, t.ideal_cycle_time_s, "s")
        cycles = float(len(xs))
    if len(xs) < mins.cycles and est.samples != len(xs):
        cv = None
    return est, cycles, cv


def _calibrate_site(
    fleet: FleetSpec, site: SiteSpec, historian: Historian, t0: datetime, t1: datetime, mins: MinSamples,
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
        mtbf = _est("mtbf_h", subject, h.running_s / 3600.0 / h.failures if h.failures else None, h.failures,
                    mins.failures, t.mtbf_h, "h")
        n_rep = len(h.repair_durations_s)
        mttr = _est("mttr_h", subject, sum(h.repair_durations_s) / n_rep / 3600.0 if n_rep else None, n_rep,
                    mins.repairs, t.mttr_h, "h")
        parts = h.good + h.scrap
        cycle, cycles, cv = _cycle_estimate(subject, t, h, mins)
        scrap = _est("scrap_rate", subject, h.scrap / parts if parts else None, int(parts), mins.parts, t.scrap_rate,
                     "")
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
    made = _units_by_role(site, series, made_by_machine)
    arrivals = order_arrivals(events, t0, t1)
    _calibrate_lead_times(site, events, t0, t1, mins, estimates, lead_times, laws)
    _calibrate_consumption(fleet, site, events, t0, t1, mins, series, made, arrivals, estimates, consumption, laws)
    _calibrate_demand(fleet, site, historian, t0, t1, mins, series, arrivals, estimates, demand, consumption, laws)


def _units_by_role(site: SiteSpec, series: dict[SeriesKey, list[SeriesPoint]],
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


def order_arrivals(events: Sequence[Event], t0: datetime, t1: datetime) -> dict[str, list[datetime]]:
    """Times of the orders received in ``[t0, t1]`` per product (ORDER_RECEIVED events, one per order id)."""
    out: dict[str, list[datetime]] = {}
    seen: set[object] = set()
    for ev in events:
        if ev.kind is not EventKind.ORDER_RECEIVED or not t0 <= ev.ts <= t1:
            continue
        oid = ev.data.get("order", None)
        if oid is not None:
            if oid in seen:
                continue
            seen.add(oid)
        product = str(ev.data.get("product", ev.asset))
        out.setdefault(product, []).append(ev.ts)
    for times in out.values():
        times.sort()
    return out


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def shipment_lead_times(site: SiteSpec, events: Sequence[Event], t0: datetime, t1: datetime) -> dict[str, list[float]]:
    """Lead times (days) of the shipments that arrived in ``[t0, t1]``, per SKU.

    ordered = planned ETA - the item's configured lead time; lead = arrival time - ordered.
    """
    out: dict[str, list[float]] = {}
    for ev in events:
        if ev.kind is not EventKind.SHIPMENT_ARRIVED or not t0 <= ev.ts <= t1:
            continue
        sku = str(ev.data.get("sku", ev.asset))
        item = site.item(sku)
        planned = _parse_time(ev.data.get("planned_eta"))
        if item is None or planned is None:
            continue
        ordered = planned - timedelta(days=item.lead_time_d)
        out.setdefault(sku, []).append((ev.ts - ordered).total_seconds() / DAY_S)
    return out


def _calibrate_lead_times(
    site: SiteSpec, events: Sequence[Event], t0: datetime, t1: datetime, mins: MinSamples,
    estimates: list[ParamEstimate], lead_times: dict[tuple[str, str], LeadTimeParams],
    laws: dict[tuple[str, str, str], FigureLaw],
) -> None:
    sid = str(site.id)
    leads = shipment_lead_times(site, events, t0, t1)
    for item in site.inventory:
        xs = leads.get(str(item.sku), [])
        n = len(xs)
        mean = sum(xs) / n if n else None
        sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if mean is not None and n > 1 else None
        subject = f"{sid}/{item.sku}"
        est_mean = _est("lead_time_d", subject, mean, n, mins.arrivals, item.lead_time_d, "d")
        est_sd = _est("lead_time_sd_d", subject, sd, n, mins.arrivals, item.lead_time_sd_d, "d")
        estimates.extend([est_mean, est_sd])
        if est_mean.source is Source.HISTORY:
            sd_d = est_sd.value if est_sd.source is Source.HISTORY else item.lead_time_sd_d
            lead_times[(sid, str(item.sku))] = LeadTimeParams(mean_d=est_mean.value, sd_d=sd_d)
            cv = sd_d / est_mean.value if est_mean.value > 0 else 0.0
            laws[("lead", sid, str(item.sku))] = FigureLaw(law=Law.NORMAL, n=float(n), cv=cv)


def _stock_drawn(points: Sequence[SeriesPoint], deliveries: Sequence[tuple[datetime, float]]) -> tuple[float, int]:
    """Quantity drawn from an on-hand series and the number of intervals with a draw.

    Where on hand rose, the deliveries recorded in that interval less the rise were drawn.
    """
    drawn = 0.0
    n = 0
    for prev, cur in pairwise(points):
        if cur.value < prev.value:
            drawn += prev.value - cur.value
            n += 1
        elif cur.value > prev.value:
            delivered = sum(q for ts, q in deliveries if prev.ts < ts <= cur.ts)
            hidden = delivered - (cur.value - prev.value)
            if hidden > 1e-9:
                drawn += hidden
                n += 1
    return drawn, n


def _deliveries(events: Sequence[Event], t0: datetime, t1: datetime) -> dict[str, list[tuple[datetime, float]]]:
    """Deliveries per SKU in ``[t0, t1]``: a logistics feed's arrivals, or the PLC's when there is no feed.

    A delivery can show twice, as the feed's shipment (``shipment`` id) and as the receipt the live
    twin saw in on hand (``received``); a SKU with feed arrivals counts only those, never both.
    """
    feed: dict[str, list[tuple[datetime, float]]] = {}
    plc: dict[str, list[tuple[datetime, float]]] = {}
    for ev in events:
        if ev.kind is not EventKind.SHIPMENT_ARRIVED or not t0 <= ev.ts <= t1:
            continue
        sku = str(ev.data.get("sku", ev.asset))
        if "shipment" in ev.data:
            qty = ev.data.get("qty", 0.0)
            feed.setdefault(sku, []).append((ev.ts, float(qty) if isinstance(qty, int | float) else 0.0))
        else:
            qty = ev.data.get("received", ev.data.get("qty", 0.0))
            plc.setdefault(sku, []).append((ev.ts, float(qty) if isinstance(qty, int | float) else 0.0))
    return {sku: feed.get(sku) or plc[sku] for sku in {*feed, *plc}}


def _calibrate_consumption(
    fleet: FleetSpec, site: SiteSpec, events: Sequence[Event], t0: datetime, t1: datetime, mins: MinSamples,
    series: dict[SeriesKey, list[SeriesPoint]], made: dict[str, float], arrivals: dict[str, list[datetime]],
    estimates: list[ParamEstimate], consumption: dict[tuple[str, str], float],
    laws: dict[tuple[str, str, str], FigureLaw],
) -> None:
    """Consumption factors from the units made at the consuming step (when those counters exist)."""
    sid = str(site.id)
    days = (t1 - t0).total_seconds() / DAY_S
    volume: dict[str, float] = {}  # units ordered per product, to share a role's output among products
    products = {}
    for d in site.demand:
        p = fleet.product(d.product)
        if p is None:
            continue
        products[str(d.product)] = p
        n_orders = len(arrivals.get(str(d.product), [])) or d.orders_per_day * max(days, 0.0)
        volume[str(d.product)] = n_orders * (p.batch_min + p.batch_max) / 2.0
    # units of a product counted at a step only it passes through (the last such step) share a
    # common step's output better than order volume does (batch sizes and the truth may differ)
    own_units: dict[str, float] = {}
    for pid, p in products.items():
        own = [r for r in p.routing if r.value in made
               and not any(r in q.routing for qid, q in products.items() if qid != pid)]
        if own:
            own_units[pid] = made[own[-1].value]
    deliveries = _deliveries(events, t0, t1)
    for item in site.inventory:
        sku = str(item.sku)
        expected = 0.0
        usable = True
        users = [p for p in products.values() if sku in p.bom and p.routing]
        for p in users:
            role = p.routing[consuming_step(p, item.kind)]
            if role.value not in made:
                usable = False
                break
            via = [q for q in products.values() if role in q.routing]
            weight = own_units if all(str(q.id) in own_units for q in via) else volume
            through = sum(weight[str(q.id)] for q in via)
            share = weight[str(p.id)] / through if through > 0 else 0.0
            expected += made[role.value] * share * p.bom[item.sku]
        if not users or not usable or expected <= 0.0:
            continue
        points = series.get(SeriesKey(site=sid, asset=sku, signal="on_hand"), [])
        drawn, n_draws = _stock_drawn(points, deliveries.get(sku, []))
        est = _est("consumption_factor", f"{sid}/{sku}", drawn / expected, n_draws, mins.orders, 1.0, "")
        estimates.append(est)
        if est.source is Source.HISTORY:
            consumption[(sid, sku)] = est.value
            laws[("consumption", sid, sku)] = FigureLaw(law=Law.NORMAL, n=float(n_draws), cv=1.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Draws:
    """The draws of one stock series: decreases, and the orders behind them (see :func:`stock_draws`)."""

    times: tuple[datetime, ...]  # sample times that closed an interval with a decrease
    drawn: float  # quantity drawn in those intervals
    exposure_s: float  # length of the intervals that count (no delivery, stock on hand at the start)
    rate_per_s: float  # estimated orders per second; NaN without intervals

    @property
    def orders(self) -> float:
        return self.rate_per_s * self.exposure_s if self.exposure_s > 0 else 0.0


def _poisson_rate(hits: dict[float, int], miss_s: float) -> float:
    """MLE of a Poisson rate from intervals with (``hits``: length -> count) and without events.

    Maximises sum_hits log(1 - exp(-lam d)) - lam miss_s: the root of
    sum_hits d / (exp(lam d) - 1) = miss_s, found by bisection (the left side falls with lam).
    """
    n_hits = sum(hits.values())
    if n_hits == 0:
        return 0.0
    total = miss_s + sum(d * c for d, c in hits.items())
    if miss_s <= 0.0:
        return n_hits / total  # every interval had a draw: only a lower bound is known
    def excess(lam: float) -> float:
        return sum(c * d / math.expm1(lam * d) for d, c in hits.items()) - miss_s
    lo = n_hits / total  # the simple count is a lower bound of the root
    hi = lo * 2.0
    while excess(hi) > 0.0:
        lo, hi = hi, hi * 2.0
    for _ in range(100):
        mid = (lo + hi) / 2.0
        if excess(mid) > 0.0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return (lo + hi) / 2.0


def stock_draws(points: Sequence[SeriesPoint]) -> Draws:
    """Draws of an on-hand series sampled at any times, robust to several draws between two samples."""
    hits: dict[float, int] = {}
    miss_s = 0.0
    times: list[datetime] = []
    drawn = 0.0
    for prev, cur in pairwise(points):
        d = (cur.ts - prev.ts).total_seconds()
        if d <= 0.0 or cur.value > prev.value or prev.value <= 0.0:
            continue  # a delivery hides the draws; nothing on hand, nothing to draw
        if cur.value < prev.value:
            hits[d] = hits.get(d, 0) + 1
            times.append(cur.ts)
            drawn += prev.value - cur.value
        else:
            miss_s += d
    exposure = miss_s + sum(d * c for d, c in hits.items())
    rate = _poisson_rate(hits, miss_s) if exposure > 0 else math.nan
    return Draws(times=tuple(times), drawn=drawn, exposure_s=exposure, rate_per_s=rate)


def _exposure_d(site: SiteSpec, weekday_factors: Sequence[float], hour_factors: Sequence[float], t0: datetime,
                t1: datetime) -> float:
    """Days in ``[t0, t1]`` weighted by the weekday and hour factors, as ``twin.sim.build`` applies them."""
    length = (t1 - t0).total_seconds()
    if length <= 0:
        return 0.0
    mean_h = sum(hour_factors) / len(hour_factors) if hour_factors and sum(hour_factors) > 0 else 1.0
    segs = local_hour_segments(site.timezone, t0, length)
    total = 0.0
    for i, (start, wd, hour) in enumerate(segs):
        end = segs[i + 1][0] if i + 1 < len(segs) else length
        wf = weekday_factors[wd % len(weekday_factors)] if weekday_factors else 1.0
        hf = hour_factors[hour % len(hour_factors)] / mean_h if hour_factors else 1.0
        total += (end - start) * wf * hf
    return total / DAY_S


# the 1 % critical value of the chi-square law with 6 degrees of freedom (7 weekdays, total fixed)
CHI2_6_1PCT = 16.812


def _weekday_factors(site: SiteSpec, times: Sequence[datetime], t0: datetime, t1: datetime,
                     configured: Sequence[float]) -> tuple[float, ...] | None:
    """Orders per hour on each local weekday over the mean rate, or None: the configured profile stands.

    Estimated only from 30 orders per weekday on average, every weekday seen at least twice (48 h) and
    counts that the configured profile does not explain: a chi-square test of the counts per weekday
    against those expected under the configured factors (a Poisson process), rejected at 1 %. One
    week of noise (a Thursday at 1.4 where the truth is 1.0) does not replace the profile.
    """
    if len(times) < 7 * 30:
        return None
    length = (t1 - t0).total_seconds()
    segs = local_hour_segments(site.timezone, t0, length)
    hours = [0.0] * 7
    for i, (start, wd, _) in enumerate(segs):
        end = segs[i + 1][0] if i + 1 < len(segs) else length
        hours[wd] += (end - start) / 3600.0
    if min(hours) < 48.0:
        return None
    zone = ZoneInfo(site.timezone)
    counts = [0] * 7
    for ts in times:
        counts[ts.astimezone(zone).weekday()] += 1
    cfg = [configured[wd % len(configured)] if configured else 1.0 for wd in range(7)]
    weight = sum(h * f for h, f in zip(hours, cfg, strict=True))
    if weight > 0:
        expected = [len(times) * h * f / weight for h, f in zip(hours, cfg, strict=True)]
        if all(e > 0 for e in expected):
            chi2 = sum((c - e) ** 2 / e for c, e in zip(counts, expected, strict=True))
            if chi2 <= CHI2_6_1PCT:
                return None
    mean_rate = len(times) / sum(hours)
    return tuple(c / h / mean_rate for c, h in zip(counts, hours, strict=True))


def _calibrate_demand(
    fleet: FleetSpec, site: SiteSpec, historian: Historian, t0: datetime, t1: datetime, mins: MinSamples,
    series: dict[SeriesKey, list[SeriesPoint]], arrivals: dict[str, list[datetime]],
    estimates: list[ParamEstimate], demand: dict[tuple[str, str], DemandParams],
    consumption: dict[tuple[str, str], float], laws: dict[tuple[str, str, str], FigureLaw],
) -> None:
    sid = str(site.id)
    days = (t1 - t0).total_seconds() / DAY_S
    zone = ZoneInfo(site.timezone)
    created: dict[str, list[datetime]] = dict(arrivals)
    from_records = bool(arrivals)
    if not from_records:  # no order records: orders seen in hourly snapshots
        seen: set[str] = set()
        t = t0
        while t <= t1:
            st = historian.state_at(sid, t)
            for o in st.orders if st is not None else ():
                if o.id not in seen and t0 <= o.created <= t1:
                    seen.add(o.id)
                    created.setdefault(o.product, []).append(o.created)
            t += timedelta(hours=1)
    users: dict[str, list[str]] = {}
    for d in site.demand:
        p = fleet.product(d.product)
        for sku in p.bom if p is not None else ():
            users.setdefault(str(sku), []).append(str(d.product))
    for d in site.demand:
        pid = str(d.product)
        subject = f"{sid}/{pid}"
        times = created.get(pid, [])
        weekday_factors: tuple[float, ...] | None = None
        exposure = _exposure_d(site, d.weekday_factors, d.hour_factors, t0, t1)
        per_day = len(times) / exposure if exposure > 0 else None
        if from_records:
            weekday_factors = _weekday_factors(site, times, t0, t1, d.weekday_factors)
            if weekday_factors is not None:  # the estimated profile replaces the configured one
                per_day = len(times) / days if days > 0 else None
        n_orders: float = float(len(times))
        product = fleet.product(pid)
        if not times and not from_records and product is not None:
            own = [s for s, who in users.items() if who == [pid] and site.item(s) is not None]
            drawn = {sku: stock_draws(series.get(SeriesKey(site=sid, asset=Sku(sku), signal="on_hand"), []))
                     for sku in own}
            mean_batch = (product.batch_min + product.batch_max) / 2.0
            # stock an order draws: BOM x units x consumption factor
            per_order = {sku: product.bom[Sku(sku)] * mean_batch * consumption.get((sid, sku), 1.0) for sku in own}

            # a unit draws at its consuming step, so the decreases count units or builds, not orders:
            # orders = quantity drawn / stock an order draws, over the intervals that count; from the SKU
            # with the most decreases (its draws resolved best)
            best = max((sku for sku in own if drawn[sku].times and drawn[sku].exposure_s > 0),
                       key=lambda sku: len(drawn[sku].times), default=None)
            times, per_day, n_orders = [], None, 0.0
            if best is not None:
                draws = drawn[best]
                n_orders = draws.drawn / per_order[best]
                times = list(draws.times)
                per_day = n_orders / draws.exposure_s * DAY_S
                for other_sku in own:  # the other SKUs' draws against those orders
                    other = drawn[other_sku]
                    if other_sku == best or not other.times or (sid, other_sku) in consumption:
                        continue
                    expected = per_day / DAY_S * other.exposure_s * per_order[other_sku]
                    factor = other.drawn / expected if expected > 0 else None
                    est = _est("consumption_factor", f"{sid}/{other_sku}", factor, len(other.times), mins.orders, 1.0,
                               "")
                    estimates.append(est)
                    if est.source is Source.HISTORY:
                        consumption[(sid, other_sku)] = est.value
                        laws[("consumption", sid, other_sku)] = FigureLaw(
                            law=Law.NORMAL, n=float(len(other.times)), cv=1.0)
        rate = _est("orders_per_day", subject, per_day, round(n_orders), mins.orders, d.orders_per_day, "1/d")
        estimates.append(rate)
        hour_factors: tuple[float, ...] | None = None
        if len(times) >= 24 * 20:
            counts = [0] * 24
            for ts in times:
                counts[ts.astimezone(zone).hour] += 1
            mean = sum(counts) / 24.0
            hour_factors = tuple(c / mean for c in counts)
        if rate.source is Source.HISTORY:
            demand[(sid, pid)] = DemandParams(orders_per_day=rate.value, hour_factors=hour_factors,
                                              weekday_factors=weekday_factors)
            laws[("demand", sid, pid)] = FigureLaw(law=Law.RATE, n=n_orders)


def calibrate(
    fleet: FleetSpec,
    historian: Historian,
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
