"""Fork: turn a snapshot of the twin, a scenario and parameters into the model's plain data.

:func:`fork` never touches a running simulation: it reads the immutable snapshot and the fleet
description and returns a :class:`Fork` (plain, picklable data) from which every replication
builds a fresh ``simpy.Environment``.

Assumptions when the snapshot lacks information (each one reported as a :class:`ForkNote`):

- status UNKNOWN, OFF or IDLE: the machine is idle and takes work in its next shift;
- status RUNNING or SETUP: it is in the middle of one cycle; the time left is the cycle time minus
  the RUNNING time since its last counted cycle end (``MachineState.running_s_at_count``: the
  counter goes up when a cycle ends, so this holds through back-to-back builds, repairs and shift
  ends); without one, minus the time since ``status_since`` (modulo the cycle time; a full cycle
  when it is unknown). For a
  batch machine the cycle is one build (the template's ``ideal_cycle_time_s``, or the calibrated
  time per build). The cycle is assumed to be working on the oldest units queued at the machine's
  station, the machine whose cycle started first on the oldest (a batch machine: up to
  ``batch_size`` units of orders created before its build started; a unit machine: one unit of the
  oldest order), whose material was drawn; they finish when the time left ends (see
  :mod:`twin.sim.model`). With nothing queued at its station, the machine is busy and makes nothing;
- status FAULT or MAINTENANCE: under repair; the time left is exponential with mean MTTR
  (memoryless, so the time already spent does not matter). A machine in FAULT failed while
  running (failures come in running time): it holds the oldest queued units like a running one
  and, after the repair, finishes the interrupted cycle: the cycle time minus its RUNNING time
  since the last counted cycle end, or half a cycle without one (the failure fell at a uniform
  point of it). MAINTENANCE holds nothing;
- stock on hand unknown: the item's configured ``initial_on_hand``;
- open orders, in FIFO order of creation (the plant's queues are first come first served): each
  order's units are where its per-step confirmations put them (``OpenOrder.done_by_step``, good
  units through each routing step): ``done_by_step[k-1] - done_by_step[k]`` units at step k (with
  ``done_by_step[-1]`` = ``qty``), queued or in a cycle there, the material of the steps before it
  drawn. Without them (``()``: not reported) the remaining quantity (``qty - done_qty``) is at the
  order's current operation (``OpenOrder.operation``); an order with no operation ("" = not started
  or not reported) or one outside its routing is at the first step; no open orders: the floor
  starts empty;
- materials: each bill-of-materials line is drawn at ``twin.spec.consuming_step`` of the SKU's item
  kind (the kind of the first chosen site stocking it; a SKU no site stocks is raw material), times
  the calibrated consumption factor of that SKU at that site (``SimParams.consumption``, 1.0 when
  absent; per site, never averaged over the sites);
- lead times: the calibrated ``SimParams.lead_times[(site, sku)]`` (mean and spread, days) when
  present, else the item's configured ones, for new replenishment orders and for shipments in
  transit. A shipment whose ETA is still the first one announced (``planned_eta``) was ordered
  the item's configured (nominal) lead time before it, and arrives a lead time after that, drawn
  given that it has not arrived yet: it may come before its ETA. One with a later ETA (a delay
  was announced), or with no planned ETA (reported by a PLC), arrives about its ETA, the best
  estimate announced (its median, as likely early as late, never before the fork): normal with
  the lead-time standard deviation scaled by the square root of the share of the lead time left;
- a site calendar without shifts: the site runs around the clock;
- demand: ``orders_per_day`` times the weekday factor, spread over the day by the hour factors
  normalised to a mean of 1, in the site's local time; calibrated figures (``SimParams.demand``:
  rate, hour and weekday profiles) replace the configured ones where given.

Each machine carries its template's ``batch_size`` (parts per build), which the model uses to
fill builds from the queue (see :mod:`twin.sim.model`).

Failures: the constant hazard 1 / MTBF (calibrated, else the template's), unless ``hazards`` gives
the machine a condition hazard (``twin.sim.condition``: from the fitted health model and the
machine's wear at the fork). A ``Maintenance`` intervention takes the machine out of its windows
like a ``MachineDown`` and resets its wear at its start (``MachineData.renewals_s``). A machine
with a condition hazard is noted (``failures_follow_condition_hazard``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from twin.errors import SimulationError
from twin.sim.clock import HOUR_S, Window, local_hour_segments, shift_windows, subtract_windows, to_sim
from twin.sim.model import (
    DemandData,
    Hazard,
    InTransit,
    ItemData,
    MachineData,
    ModelData,
    OrderData,
    OverflowData,
    ProductData,
)
from twin.sim.params import SimParams
from twin.sim.scenario import (
    CycleTimeFactor,
    DemandMultiplier,
    LeadTimeChange,
    MachineDown,
    MachinesAdded,
    MachinesRemoved,
    Maintenance,
    OverflowRouting,
    ReorderPolicy,
    Scenario,
    ShiftChange,
    ShipmentDelay,
)
from twin.spec import (
    FleetSpec,
    InventoryItemSpec,
    ItemKind,
    MachineId,
    MachineSpec,
    MachineStatus,
    MachineTemplate,
    ProductFamily,
    SiteSpec,
    consuming_step,
)
from twin.state import MachineState, Shipment, SiteState, TwinState

__all__ = ["Fork", "ForkNote", "fork"]

log = logging.getLogger(__name__)

DAY_S = 86400.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ForkNote:
    """An assumption the fork made for missing data: ``kind`` is a stable code, ``subject`` what."""

    kind: str
    subject: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Fork:
    """The model data of one fork, when it starts, and the assumptions made to build it."""

    as_of: datetime
    data: ModelData
    notes: tuple[ForkNote, ...]


def _site_states(state: TwinState | SiteState | Sequence[SiteState]) -> tuple[datetime, dict[str, SiteState]]:
    if isinstance(state, TwinState):
        return state.as_of, {str(k): v for k, v in state.sites.items()}
    if isinstance(state, SiteState):
        return state.as_of, {str(state.site): state}
    states = list(state)
    if not states:
        raise SimulationError("fork needs at least one site state")
    return max(s.as_of for s in states), {str(s.site): s for s in states}


def _machines(
    site: SiteSpec, fleet: FleetSpec, scenario: Scenario
) -> list[MachineSpec]:
    machines = list(site.machines)
    templates = {str(t.id): t for t in fleet.templates}
    for iv in scenario.interventions:
        if isinstance(iv, MachinesRemoved) and iv.site == site.id:
            of_kind = [m for m in machines if m.template.id == iv.template]
            if len(of_kind) < iv.count:
                raise SimulationError(
                    f"cannot remove {iv.count} machine(s) of template {iv.template!r} at site {site.id!r}: "
                    f"it has {len(of_kind)}"
                )
            drop = {m.id for m in sorted(of_kind, key=lambda m: m.id)[len(of_kind) - iv.count :]}
            machines = [m for m in machines if m.id not in drop]
        elif isinstance(iv, MachinesAdded) and iv.site == site.id:
            template: MachineTemplate | None = templates.get(iv.template)
            if template is None:
                raise SimulationError(f"unknown machine template {iv.template!r}")
            for n in range(1, iv.count + 1):
                mid = f"{site.id}-{iv.template}-new{n}"
                machines.append(MachineSpec(id=MachineId(mid), site=site.id, template=template))
    return machines


def _cycle_factor(m: MachineSpec, scenario: Scenario) -> float:
    factor = 1.0
    for iv in scenario.interventions:
        if isinstance(iv, CycleTimeFactor) and (
            (iv.machine is not None and iv.machine == m.id and iv.site in (None, m.site))
            or (iv.role is not None and iv.role is m.role)
            or (iv.machine is None and iv.site is not None and iv.site == m.site)
            or (iv.machine is None and iv.role is None and iv.site is None)
        ):
            factor *= iv.factor
    return factor


def _initial(
    m: MachineSpec, site_state: SiteState | None, as_of: datetime, cycle_s: float, mttr_s: float,
    notes: list[ForkNote],
) -> tuple[float, float]:
    """(remaining busy, remaining repair) of a machine at the fork."""
    ms = site_state.machines.get(m.id) if site_state is not None else None
    status = ms.status if ms is not None else MachineStatus.UNKNOWN
    progress = _cycle_progress(ms, as_of, cycle_s)
    if status in (MachineStatus.RUNNING, MachineStatus.SETUP):
        if progress is not None:
            return cycle_s - progress, 0.0
        if ms is not None and ms.status_since is not None and cycle_s > 0:
            elapsed = max(0.0, to_sim(ms.status_since, as_of))
            return cycle_s - math.fmod(elapsed, cycle_s), 0.0
        notes.append(ForkNote(kind="running_since_unknown", subject=m.id))
        return cycle_s, 0.0
    if status is MachineStatus.FAULT:
        # failures come in running time and the plant resumes the interrupted cycle after the repair
        if progress is not None:
            return cycle_s - progress, mttr_s
        # without a counted cycle end the failure fell at a uniform point of it: half a cycle left on average
        notes.append(ForkNote(kind="fault_machine_assumed_mid_cycle_half_left", subject=m.id))
        return cycle_s / 2.0, mttr_s
    if status is MachineStatus.MAINTENANCE:
        return 0.0, mttr_s
    if status is MachineStatus.UNKNOWN:
        notes.append(ForkNote(kind="status_unknown_assumed_idle", subject=m.id))
    return 0.0, 0.0


def _cycle_progress(ms: MachineState | None, as_of: datetime, cycle_s: float) -> float | None:
    """Running seconds of the cycle in progress: RUNNING time since the last counted cycle end.

    A counter goes up when a cycle ends, so the RUNNING time since then is how far the cycle now
    running has got, through back-to-back builds (the status stays RUNNING), a failure and repair
    in the middle of it, or a shift end. None when no cycle end was counted, or when it is a cycle
    or more ago (a counter not counting, or a cycle much slower than its mean: the caller falls back).
    """
    if ms is None or ms.running_s_at_count is None or cycle_s <= 0:
        return None
    if ms.counted_at is not None and ms.counted_at > as_of:
        return None
    progress = ms.running_s(as_of) - ms.running_s_at_count
    return progress if 0.0 <= progress < cycle_s else None


def _order_step(oid: str, operation: str, product: ProductFamily, notes: list[ForkNote]) -> int:
    """The routing step an open order is at: its operation's index; the first step when unknown."""
    if not operation:
        notes.append(ForkNote(kind="order_operation_unknown_assumed_first_step", subject=oid))
        return 0
    roles = [r.value for r in product.routing]
    if operation not in roles:
        notes.append(ForkNote(kind="order_operation_not_in_routing_assumed_first_step", subject=oid))
        return 0
    return roles.index(operation)


def _units_at(qty: int, done_by_step: Sequence[int], product: ProductFamily) -> tuple[int, ...] | None:
    """Units of an order at each routing step from its good units through each step; None when not reported.

    Step k holds ``done_by_step[k - 1] - done_by_step[k]`` units (queued or in a cycle there), with
    ``done_by_step[-1]`` taken as ``qty``.
    """
    n = len(product.routing)
    if not done_by_step or len(done_by_step) != n:
        return None
    before = [qty, *done_by_step[:-1]]
    at = tuple(max(0, b - d) for b, d in zip(before, done_by_step, strict=True))
    return at


def _item_kinds(fleet: FleetSpec, sites: Sequence[str], notes: list[ForkNote]) -> dict[str, ItemKind]:
    """The item kind of each SKU: that of the first chosen site stocking it (then any site of the fleet)."""
    kinds: dict[str, ItemKind] = {}
    order = [s for s in fleet.sites if str(s.id) in sites] + [s for s in fleet.sites if str(s.id) not in sites]
    for site in order:
        for item in site.inventory:
            sku = str(item.sku)
            seen = kinds.setdefault(sku, item.kind)
            if seen is not item.kind and str(site.id) in sites:
                notes.append(ForkNote(kind="item_kind_differs_between_sites_first_used", subject=f"{site.id}/{sku}"))
    return kinds


def _demand_segments(
    rate_per_day: float, weekday_factors: Sequence[float], hour_factors: Sequence[float],
    hours: Sequence[tuple[float, int, int]], multipliers: Iterable[tuple[float, float, float]], horizon_s: float,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    mean_h = sum(hour_factors) / len(hour_factors) if hour_factors and sum(hour_factors) > 0 else 1.0
    base = [
        (start, rate_per_day / DAY_S * weekday_factors[wd % len(weekday_factors)]
         * (hour_factors[h % len(hour_factors)] / mean_h if hour_factors else 1.0))
        for start, wd, h in hours
    ]
    mults = list(multipliers)
    cuts = sorted({s for s, _ in base} | {t for a, b, _ in mults for t in (a, b) if 0 <= t < horizon_s})
    starts: list[float] = []
    rates: list[float] = []
    j = 0
    for c in cuts:
        while j + 1 < len(base) and base[j + 1][0] <= c:
            j += 1
        rate = base[j][1]
        for a, b, f in mults:
            if a <= c < b:
                rate *= f
        starts.append(c)
        rates.append(rate)
    return tuple(starts), tuple(rates)


def fork(
    fleet: FleetSpec,
    state: TwinState | SiteState | Sequence[SiteState],
    scenario: Scenario | None = None,
    params: SimParams | None = None,
    *,
    horizon_s: float,
    bin_s: float = HOUR_S,
    sites: Iterable[str] | None = None,
    hazards: Mapping[str, Hazard] | None = None,
) -> Fork:
    """Build the model data of a what-if starting from ``state``.

    ``sites`` restricts the model to some sites (default: every site of the snapshot, or the
    fleet when the snapshot has none); sites an overflow rule sends orders to are added.
    ``hazards`` ("site/machine" -> condition hazard) replaces those machines' constant hazard.
    """
    scenario = scenario or Scenario()
    params = params or SimParams()
    if horizon_s <= 0:
        raise SimulationError(f"horizon must be > 0 s (got {horizon_s!r})")
    as_of, states = _site_states(state)
    overflow = [iv for iv in scenario.interventions if isinstance(iv, OverflowRouting)]
    chosen = _chosen_sites(fleet, states, sites, overflow)
    notes: list[ForkNote] = []
    parts = _Parts()
    for sid in chosen:
        try:
            site = fleet.site(sid)
        except KeyError as exc:
            raise SimulationError(f"site {sid!r} is not in fleet {fleet.id!r}") from exc
        _add_site(parts, fleet, site, states.get(sid), scenario, params, as_of, horizon_s, notes, hazards or {})
    for md in parts.running:
        kind = ("running_machine_assumed_on_oldest_units" if parts.queued.get((md.site, md.role), 0) > 0
                else "running_machine_without_queued_units_makes_nothing")
        notes.append(ForkNote(kind=kind, subject=md.id))
    products = _products(fleet, _item_kinds(fleet, chosen, notes))
    data = ModelData(
        horizon_s=horizon_s, bin_s=bin_s, sites=tuple(chosen), machines=tuple(parts.machines),
        products=tuple(products), items=tuple(parts.items), demand=tuple(parts.demand), orders=tuple(parts.orders),
        overflow=tuple(OverflowData(from_site=ov.from_site, to_site=ov.to_site, transfer_s=ov.transfer_h * HOUR_S,
                                    threshold=ov.threshold) for ov in overflow if ov.from_site in chosen),
    )
    _check_routings(data, fleet)
    log.debug("fork at %s: %d machines, %d items, %d open orders", as_of, len(parts.machines), len(parts.items),
              len(parts.orders))
    return Fork(as_of=as_of, data=data, notes=tuple(notes))


def _chosen_sites(fleet: FleetSpec, states: dict[str, SiteState], sites: Iterable[str] | None,
                  overflow: Sequence[OverflowRouting]) -> list[str]:
    """The sites to simulate: ``sites``, else the snapshot's, else the fleet's; plus overflow targets."""
    chosen = list(sites) if sites is not None else (list(states) or [str(s.id) for s in fleet.sites])
    for ov in overflow:
        if ov.from_site in chosen and ov.to_site not in chosen:
            chosen.append(ov.to_site)
    return chosen


@dataclass(slots=True)
class _Parts:
    """The model's pieces as the sites are added (a builder: mutable while ``fork`` runs, then frozen)."""

    machines: list[MachineData] = field(default_factory=list)
    running: list[MachineData] = field(default_factory=list)  # busy at the fork: they hold the oldest queued units
    queued: dict[tuple[str, str], int] = field(default_factory=dict)  # units of open orders queued per (site, role)
    items: list[ItemData] = field(default_factory=list)
    demand: list[DemandData] = field(default_factory=list)
    orders: list[OrderData] = field(default_factory=list)


def _add_site(parts: _Parts, fleet: FleetSpec, site: SiteSpec, ss: SiteState | None, scenario: Scenario,
              params: SimParams, as_of: datetime, horizon_s: float, notes: list[ForkNote],
              hazards: Mapping[str, Hazard]) -> None:
    """One site's machines, stock, demand and open orders, in that order (the notes' order)."""
    sid = str(site.id)
    if ss is None:
        notes.append(ForkNote(kind="no_site_state_assumed_empty", subject=sid))
    shift_w = _shift_windows(site, scenario, as_of, horizon_s, notes)
    for m in _machines(site, fleet, scenario):
        md = _machine_data(m, sid, ss, scenario, params, shift_w, as_of, horizon_s, notes,
                           hazards.get(f"{sid}/{m.id}"))
        parts.machines.append(md)
        if md.initial_busy_s > 0:
            parts.running.append(md)
    parts.items.extend(_item_data(item, sid, ss, scenario, params, as_of, notes) for item in site.inventory)
    parts.demand.extend(_site_demand(site, scenario, params, as_of, horizon_s))
    if ss is not None:
        parts.orders.extend(_open_orders(fleet, sid, ss, as_of, parts.queued, notes))
        if not ss.orders:
            notes.append(ForkNote(kind="no_open_orders_empty_queue", subject=sid))


def _shift_windows(site: SiteSpec, scenario: Scenario, as_of: datetime, horizon_s: float,
                   notes: list[ForkNote]) -> tuple[Window, ...] | None:
    """The site's working windows over the horizon (the scenario's calendar if it changes it); None: always."""
    calendar = site.calendar
    for iv in scenario.interventions:
        if isinstance(iv, ShiftChange) and iv.site == site.id:
            calendar = iv.calendar
    if calendar.shifts:
        return shift_windows(calendar, site.timezone, as_of, horizon_s)
    notes.append(ForkNote(kind="no_shifts_runs_around_the_clock", subject=str(site.id)))
    return None


def _machine_data(m: MachineSpec, sid: str, ss: SiteState | None, scenario: Scenario, params: SimParams,
                  shift_w: tuple[Window, ...] | None, as_of: datetime, horizon_s: float,
                  notes: list[ForkNote], hazard: Hazard | None = None) -> MachineData:
    """A machine's figures (calibrated, else its template's; the scenario's factors) and its state at the fork."""
    t = m.template
    mp = params.machines.get((sid, str(m.id)))
    cycle = (mp.cycle_time_s if mp and mp.cycle_time_s else t.ideal_cycle_time_s) * _cycle_factor(m, scenario)
    cv = mp.cycle_cv if mp and mp.cycle_cv is not None else params.default_cycle_cv
    mtbf_h = mp.mtbf_h if mp and mp.mtbf_h else t.mtbf_h
    mttr_h = mp.mttr_h if mp and mp.mttr_h is not None else t.mttr_h
    scrap = mp.scrap_rate if mp and mp.scrap_rate is not None else t.scrap_rate
    downs = [
        (iv.start.seconds_from(as_of), iv.start.seconds_from(as_of) + iv.duration_h * HOUR_S)
        for iv in scenario.interventions
        if isinstance(iv, MachineDown | Maintenance) and iv.machine == m.id and iv.site in (None, sid)
    ]
    renewals = sorted(iv.start.seconds_from(as_of) for iv in scenario.interventions
                      if isinstance(iv, Maintenance) and iv.machine == m.id and iv.site in (None, sid))
    windows = shift_w
    if downs:
        windows = subtract_windows(shift_w if shift_w is not None else ((0.0, horizon_s),), downs)
    busy, repair = _initial(m, ss, as_of, cycle, mttr_h * HOUR_S, notes)
    if hazard is not None:
        notes.append(ForkNote(kind="failures_follow_condition_hazard", subject=m.id))
    return MachineData(
        id=m.id, site=sid, role=m.role.value, cycle_mean_s=cycle, cycle_cv=cv,
        batch_size=max(1, t.batch_size), mtbf_s=mtbf_h * HOUR_S if mtbf_h > 0 else math.inf,
        mttr_s=mttr_h * HOUR_S, scrap_rate=min(max(scrap, 0.0), 0.95), windows=windows,
        initial_busy_s=busy, initial_repair_s=repair, hazard=hazard, renewals_s=tuple(renewals),
    )


def _item_data(item: InventoryItemSpec, sid: str, ss: SiteState | None, scenario: Scenario, params: SimParams,
               as_of: datetime, notes: list[ForkNote]) -> ItemData:
    """A stocked item at the fork: on hand, its (s, Q) policy and lead time (scenario applied), shipments."""
    inv = ss.inventory.get(item.sku) if ss is not None else None
    on_hand = inv.on_hand if inv is not None else None
    if on_hand is None:
        notes.append(ForkNote(kind="stock_unknown_assumed_initial", subject=f"{sid}/{item.sku}"))
        on_hand = item.initial_on_hand
    s, q = item.reorder_point, item.reorder_qty
    lp = params.lead_times.get((sid, str(item.sku)))
    lead_d, sd_d = (lp.mean_d, lp.sd_d) if lp is not None else (item.lead_time_d, item.lead_time_sd_d)
    transit_mean_d, transit_sd_d = lead_d, sd_d  # the spread of shipments already on their way
    for iv in scenario.interventions:
        if isinstance(iv, ReorderPolicy) and iv.sku == item.sku and iv.site in (None, sid):
            s, q = iv.reorder_point, iv.reorder_qty
        if (
            isinstance(iv, LeadTimeChange)
            and iv.site in (None, sid)
            and (iv.sku in (None, item.sku))
            and (iv.supplier in (None, item.supplier))
        ):
            # without a new spread, keep the old coefficient of variation
            sd_d = iv.lead_time_sd_d if iv.lead_time_sd_d is not None else sd_d * iv.lead_time_d / lead_d
            lead_d = iv.lead_time_d
    transit = tuple(_in_transit(shp, item, sid, scenario, as_of, transit_mean_d, transit_sd_d)
                    for shp in (inv.inbound if inv is not None else ()))
    return ItemData(site=sid, sku=item.sku, on_hand=float(on_hand), reorder_point=s, reorder_qty=q,
                    lead_mean_s=lead_d * DAY_S, lead_sd_s=sd_d * DAY_S, in_transit=transit,
                    consumption=params.consumption.get((sid, str(item.sku)), 1.0))


def _in_transit(shp: Shipment, item: InventoryItemSpec, sid: str, scenario: Scenario, as_of: datetime,
                mean_d: float, sd_d: float) -> InTransit:
    """A shipment on its way at the fork (see the module docstring: first ETA vs a delay announced)."""
    eta = to_sim(as_of, shp.eta)
    extra = sum(
        iv.delay_d * DAY_S
        for iv in scenario.interventions
        if isinstance(iv, ShipmentDelay) and iv.sku == item.sku and iv.site in (None, sid)
        and iv.shipment in (None, shp.id)
    )
    share = min(1.0, max(eta, 0.0) / (mean_d * DAY_S)) if mean_d > 0 else 0.0
    ordered: float | None = None
    if shp.planned_eta is not None and shp.eta == shp.planned_eta and item.lead_time_d > 0:
        # the first ETA announced is the order time + the nominal lead time: the shipment
        # comes a lead time after it was ordered, early or late, not at the ETA plus a delay
        ordered = to_sim(as_of, shp.planned_eta) - item.lead_time_d * DAY_S
    return InTransit(eta_s=eta, qty=shp.qty, eta_sd_s=sd_d * DAY_S * math.sqrt(share),
                     extra_delay_s=extra, ordered_s=ordered,
                     lead_mean_s=mean_d * DAY_S if ordered is not None else 0.0,
                     lead_sd_s=sd_d * DAY_S if ordered is not None else 0.0)


def _site_demand(site: SiteSpec, scenario: Scenario, params: SimParams, as_of: datetime,
                 horizon_s: float) -> list[DemandData]:
    """The site's order arrival rate per product over the horizon (calibrated profiles, the scenario's factors)."""
    sid = str(site.id)
    hours = local_hour_segments(site.timezone, as_of, horizon_s)
    out = []
    for d in site.demand:
        dp = params.demand.get((sid, str(d.product)))
        per_day = dp.orders_per_day if dp is not None else d.orders_per_day
        hf = dp.hour_factors if dp is not None and dp.hour_factors else d.hour_factors
        wf = dp.weekday_factors if dp is not None and dp.weekday_factors else d.weekday_factors
        mults = []
        for iv in scenario.interventions:
            if isinstance(iv, DemandMultiplier) and iv.site in (None, sid) and iv.product in (None, d.product):
                a = iv.start.seconds_from(as_of) if iv.start is not None else 0.0
                b = iv.end.seconds_from(as_of) if iv.end is not None else math.inf
                mults.append((max(a, 0.0), b, iv.factor))
        starts, rates = _demand_segments(per_day, wf, hf, hours, mults, horizon_s)
        out.append(DemandData(site=sid, product=str(d.product), starts_s=starts, rates_per_s=rates))
    return out


def _open_orders(fleet: FleetSpec, sid: str, ss: SiteState, as_of: datetime, queued: dict[tuple[str, str], int],
                 notes: list[ForkNote]) -> list[OrderData]:
    """The site's open orders, FIFO, their units placed on the routing steps (counted into ``queued``)."""
    out = []
    for o in sorted(ss.orders, key=lambda o: (o.created, o.id)):  # FIFO, as the plant's queues
        left = o.qty - o.done_qty
        if left <= 0:
            continue
        product = fleet.product(o.product)
        if product is None:
            notes.append(ForkNote(kind="order_of_unknown_product_ignored", subject=o.id))
            continue
        at = _units_at(o.qty, o.done_by_step, product)
        step = 0
        if at is None:
            step = _order_step(o.id, o.operation, product, notes)
            at = tuple(left if k == step else 0 for k in range(len(product.routing)))
        for k, n in enumerate(at):
            if n:
                role = product.routing[k].value
                queued[(sid, role)] = queued.get((sid, role), 0) + n
        out.append(OrderData(id=o.id, site=sid, product=o.product, qty=sum(at) if at else left,
                             created_s=to_sim(as_of, o.created), due_s=to_sim(as_of, o.due), step=step, queued=at))
    return out


def _products(fleet: FleetSpec, kinds: dict[str, ItemKind]) -> list[ProductData]:
    """The product families with their bills of materials drawn at the consuming steps.

    The bill of materials is the designed one; a site's consumption factor is its item's
    (``ItemData.consumption``), so Berlin's filament usage does not move Austin's.
    """
    products = []
    for p in fleet.products:
        bom = tuple((str(sku), float(qty)) for sku, qty in p.bom.items())
        steps = tuple(consuming_step(p, kinds.get(str(sku), ItemKind.RAW)) for sku in p.bom)
        products.append(ProductData(id=str(p.id), routing=tuple(r.value for r in p.routing), bom=bom, bom_steps=steps,
                                    batch_min=p.batch_min, batch_max=max(p.batch_min, p.batch_max),
                                    due_s=p.due_h * HOUR_S))
    return products


def _check_routings(data: ModelData, fleet: FleetSpec) -> None:
    roles = {(m.site, m.role) for m in data.machines}
    products = {p.id: p for p in data.products}
    for d in data.demand:
        p = products.get(d.product)
        if p is None:
            raise SimulationError(f"site {d.site!r} has demand for unknown product {d.product!r}")
        missing = [r for r in p.routing if (d.site, r) not in roles]
        if missing:
            raise SimulationError(
                f"site {d.site!r} has demand for {d.product!r} but no machine for role(s) {', '.join(missing)}"
            )
