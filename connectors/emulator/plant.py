"""A pure, seeded, time-steppable plant process: what the emulated PLCs report.

Machines cycle RUNNING → (IDLE) → RUNNING (idle gaps sized so each station makes what the
site's demand asks of its role, or short random gaps where no demand is configured), fail
after exponentially distributed operating time
(mean ``template.mtbf_h``), are repaired after exponentially distributed time (mean
``template.mttr_h``) and resume the interrupted cycle; a planned maintenance stop comes every
``maintenance_every_h`` operating hours. A cycle lasts ``ideal_cycle_time_s`` with ±3 % noise and
makes ``batch_size`` parts, each scrapped with probability ``scrap_rate``. Temperatures approach a
load-dependent target exponentially; power and vibration follow the status. Stock falls as orders
(``sites.demand`` × BOM) consume it and rises when (s, Q) replenishment shipments arrive after
their lead time plus a random delay (a long right tail for sea freight).

No I/O and no wall clock: ``advance(to)`` moves the process to ``to`` and returns the raw values
keyed by ``(site, asset, signal)``. The same seed and the same sequence of calls give the same
values, so the demo can backfill days of history at full speed.

>>> from twin.spec import FleetSpec
>>> plant = Plant(FleetSpec(id="f", name="f", sites=(), templates=()), seed=1,
...               start=datetime(2026, 1, 5, tzinfo=UTC))
>>> plant.advance(datetime(2026, 1, 5, 1, tzinfo=UTC))
{}
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from twin.calendar import planned_seconds, shift_intervals
from twin.readings import Quality, Reading, Value
from twin.spec import FleetSpec, InventoryItemSpec, MachineSpec, MachineStatus, Role, SignalKind, SiteSpec, Transport

__all__ = ["MachineStats", "PlacedShipment", "Plant", "ValueKey"]

ValueKey = tuple[str, str, str]  # (site, asset, signal)

_DEFAULT_CODES = {MachineStatus.OFF: 0, MachineStatus.IDLE: 1, MachineStatus.RUNNING: 2, MachineStatus.FAULT: 3,
                  MachineStatus.MAINTENANCE: 4, MachineStatus.SETUP: 5}
_RATED_KW = {Role.PRINT: 1.2, Role.MACHINE: 7.5, Role.POST_PROCESS: 2.0, Role.ASSEMBLE: 1.5, Role.INSPECT: 0.5,
             Role.PACK: 0.4}
_AMBIENT_C = 22.0
_TAU_S = 600.0  # thermal time constant
_IDLE_P = 0.1  # chance of an idle gap after a cycle
_DAY_S = 86400.0


def _hot_c(name: str) -> float:
    """The running temperature of a signal, guessed from its name."""
    for hint, t in (("nozzle", 215.0), ("bed", 60.0), ("chamber", 170.0), ("spindle", 38.0)):
        if hint in name:
            return t
    return 45.0


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineStats:
    """Totals of one machine since the plant started (not reset by a PLC restart, unlike counters)."""

    run_s: float  # time RUNNING (operating time)
    fault_s: float  # time in FAULT
    failures: int
    repairs: int
    cycles: int  # completed cycles
    cycle_s: float  # their summed durations
    good: int  # since the last restart
    scrap: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PlacedShipment:
    """A replenishment shipment the plant ordered: when, the nominal ETA, and when it really arrives."""

    id: str
    site: str
    sku: str
    qty: float
    origin: str
    ordered: datetime
    planned_eta: datetime  # ordered + the item's nominal lead time
    arrival: datetime  # lead time plus the random delay the plant drew


@dataclass(slots=True)
class _Machine:
    spec: MachineSpec
    rng: random.Random
    codes: dict[MachineStatus, int]
    status: MachineStatus = MachineStatus.RUNNING
    t: float = 0.0
    cycle_len: float = 0.0
    cycle_left: float = 0.0
    ttf_left: float = 0.0
    until_maint: float = 0.0
    phase_end: float = 0.0
    good: int = 0
    scrap: int = 0
    job: int = 0
    last_cycle_s: float = 0.0
    fault_code: int = 0
    level: float = 1.0
    temp_from: dict[str, float] = field(default_factory=dict)
    status_t: float = 0.0
    run_s: float = 0.0
    fault_s: float = 0.0
    failures: int = 0
    repairs: int = 0
    cycles: int = 0
    cycle_s: float = 0.0
    utilisation: float | None = None  # share of shift time running to meet demand; None: no demand


@dataclass(slots=True)
class _Item:
    spec: InventoryItemSpec
    rng: random.Random
    daily_orders: float
    draw: tuple[tuple[float, float, int, int], ...]  # (share of orders, qty per unit, batch min, batch max)
    on_hand: float
    t: float = 0.0
    next_use: float = 0.0
    shipments: list[tuple[float, float]] = field(default_factory=list)  # (arrival s, qty)
    site: str = ""
    placed: list[tuple[float, float, float]] = field(default_factory=list)  # (ordered s, arrival s, qty)


class Plant:
    """The emulated plant. ``advance(to)`` returns ``{(site, asset, signal): value}`` at ``to``.

    ``maintenance_every_h`` spaces planned maintenance stops (1 h each) in operating hours.
    With ``follow_shifts`` (default) machines run only in their site's shifts and are OFF between
    them (an interrupted cycle resumes at the next shift; repairs go on outside shifts). With
    ``demand_driven`` (default) stations idle between cycles so they make what demand asks of
    them; without, they run flat out with short random gaps (for statistical tests that need many
    cycles and failures).
    ``sites`` limits the process to some sites (default: all).
    """

    def __init__(self, fleet: FleetSpec, *, seed: int, start: datetime, maintenance_every_h: float = 160.0,
                 sites: Iterable[str] | None = None, follow_shifts: bool = True,
                 demand_driven: bool = True) -> None:
        if start.tzinfo is None:
            raise ValueError(f"start must be timezone-aware (got {start!r})")
        self.fleet = fleet
        self.start = start.astimezone(UTC)
        self._t = 0.0
        self._maint_s = maintenance_every_h * 3600.0
        self._follow_shifts = follow_shifts
        self._demand_driven = demand_driven
        self._shifts: dict[str, tuple[list[float], list[float]]] = {}  # per site: shift starts, ends (plant s)
        self._shifts_to: dict[str, float] = {}  # how far the shift lists reach
        wanted = set(sites) if sites is not None else None
        self._machines: list[_Machine] = []
        self._items: list[tuple[str, _Item]] = []
        self._noise = random.Random(f"{seed}:noise")
        for site in fleet.sites:
            if wanted is not None and site.id not in wanted:
                continue
            for m in site.machines:
                self._machines.append(self._new_machine(m, random.Random(f"{seed}:{site.id}:{m.id}")))
            for it in site.inventory:
                self._items.append((site.id, self._new_item(site, it, random.Random(f"{seed}:{site.id}:{it.sku}"))))
        for mach in self._machines:
            mach.utilisation = self._utilisation(mach.spec)
            if not self._shift_state(mach.spec.site, 0.0)[0]:
                mach.status = MachineStatus.OFF
        self._values = self._compute()

    @property
    def now(self) -> datetime:
        return self.start + timedelta(seconds=self._t)

    # ------------------------------------------------------------------ machines
    def _new_machine(self, spec: MachineSpec, rng: random.Random) -> _Machine:
        codes = dict(_DEFAULT_CODES)
        for code, status in sorted(spec.template.status_codes.items(), reverse=True):
            codes[status] = code  # the lowest code of each status wins
        m = _Machine(spec=spec, rng=rng, codes=codes)
        m.cycle_len = self._cycle_len(m)
        m.cycle_left = rng.uniform(0.0, m.cycle_len)
        m.ttf_left = rng.expovariate(1.0 / (spec.template.mtbf_h * 3600.0))
        m.until_maint = rng.uniform(0.0, self._maint_s)
        m.last_cycle_s = m.cycle_len
        for s in spec.template.signals:
            if s.kind is SignalKind.TEMPERATURE:
                m.temp_from[s.name] = _hot_c(s.name)
        return m

    @staticmethod
    def _cycle_len(m: _Machine) -> float:
        return m.spec.template.ideal_cycle_time_s * max(0.5, m.rng.gauss(1.0, 0.03))

    def _set_status(self, m: _Machine, status: MachineStatus) -> None:
        for name in m.temp_from:
            m.temp_from[name] = self._temp(m, name)
        m.status, m.status_t = status, m.t

    def _temp(self, m: _Machine, name: str) -> float:
        target = _hot_c(name) if m.status is MachineStatus.RUNNING else _AMBIENT_C + 0.1 * (_hot_c(name) - _AMBIENT_C)
        return target + (m.temp_from[name] - target) * math.exp(-(m.t - m.status_t) / _TAU_S)

    def _utilisation(self, spec: MachineSpec) -> float | None:
        """The share of shift time a machine must run so its role meets the site's mean demand."""
        if not self._demand_driven:
            return None
        site = self.fleet.site(spec.site)
        units_per_day = 0.0
        for d in site.demand:
            product = self.fleet.product(d.product)
            if product is None or spec.role not in product.routing:
                continue
            mean_batch = (product.batch_min + product.batch_max) / 2.0
            units_per_day += d.orders_per_day * sum(d.weekday_factors) / 7.0 * mean_batch
        if units_per_day <= 0.0:
            return None
        if self._follow_shifts:
            week = self.start + timedelta(days=7)
            shift_s_per_day = planned_seconds(site.calendar, site.timezone, self.start, week) / 7.0
        else:
            shift_s_per_day = _DAY_S
        peers = sum(1 for m in site.machines if m.role is spec.role)
        tpl = spec.template
        capacity = shift_s_per_day / tpl.ideal_cycle_time_s * tpl.batch_size * peers
        if capacity <= 0.0:
            return None
        return min(1.0, max(0.02, units_per_day / capacity))

    def _shift_state(self, site: str, t: float) -> tuple[bool, float]:
        """Whether ``t`` (plant seconds) is in a shift of ``site``, and when that next changes."""
        if not self._follow_shifts:
            return True, math.inf
        starts, ends = self._shifts.setdefault(site, ([], []))
        covered = self._shifts_to.get(site, 0.0)
        spec = self.fleet.site(site)
        # keep the shift list at least 8 days ahead of t and past the next shift start (holidays),
        # looking no more than a year ahead (a site without any shift then stays off)
        while covered < t + 366 * _DAY_S and (covered < t + 8 * _DAY_S or not starts or starts[-1] <= t):
            chunk_end = covered + 14 * _DAY_S
            for a, b in shift_intervals(spec.calendar, spec.timezone, self.start + timedelta(seconds=covered),
                                        self.start + timedelta(seconds=chunk_end)):
                a_s, b_s = (a - self.start).total_seconds(), (b - self.start).total_seconds()
                if ends and abs(ends[-1] - a_s) < 1e-6:
                    ends[-1] = b_s  # a shift split by the chunk boundary
                else:
                    starts.append(a_s)
                    ends.append(b_s)
            covered = chunk_end
            self._shifts_to[site] = covered
        i = bisect.bisect_right(starts, t) - 1
        if i >= 0 and t < ends[i]:
            return True, ends[i]
        return False, starts[i + 1] if i + 1 < len(starts) else math.inf

    def _step_machine(self, m: _Machine, to: float) -> None:
        tpl = m.spec.template
        site = m.spec.site
        while m.t < to:
            inside, boundary = self._shift_state(site, m.t)
            if not inside and m.status in (MachineStatus.RUNNING, MachineStatus.IDLE):
                self._set_status(m, MachineStatus.OFF)  # end of shift: the interrupted cycle resumes later
            if m.status is MachineStatus.OFF:
                if inside:
                    self._set_status(m, MachineStatus.RUNNING)
                    continue
                m.t = min(boundary, to)
                continue
            limit = min(to, boundary) if inside else to
            if m.status is MachineStatus.RUNNING:
                dt = min(m.cycle_left, m.ttf_left, m.until_maint, limit - m.t)
                m.t += dt
                m.cycle_left -= dt
                m.ttf_left -= dt
                m.until_maint -= dt
                m.run_s += dt
                if m.ttf_left <= 0.0:
                    m.failures += 1
                    m.ttf_left = m.rng.expovariate(1.0 / (tpl.mtbf_h * 3600.0))
                    m.fault_code = m.rng.randint(100, 120)
                    m.phase_end = m.t + m.rng.expovariate(1.0 / (tpl.mttr_h * 3600.0))
                    self._set_status(m, MachineStatus.FAULT)
                elif m.cycle_left <= 0.0:
                    scrap = sum(1 for _ in range(tpl.batch_size) if m.rng.random() < tpl.scrap_rate)
                    m.scrap += scrap
                    m.good += tpl.batch_size - scrap
                    m.job += 1
                    m.last_cycle_s = m.cycle_len
                    m.cycles += 1
                    m.cycle_s += m.cycle_len
                    m.level -= 0.02
                    if m.level < 0.1:
                        m.level = 1.0
                    m.cycle_len = m.cycle_left = self._cycle_len(m)
                    if m.utilisation is not None:
                        # demand-driven: idle after each cycle long enough that the station makes
                        # about what the site's demand asks of it (mean gap = cycle × (1/u − 1))
                        gap_mean = m.cycle_len * (1.0 / m.utilisation - 1.0)
                        if gap_mean > 1.0:
                            m.phase_end = m.t + m.rng.expovariate(1.0 / gap_mean)
                            self._set_status(m, MachineStatus.IDLE)
                    elif m.rng.random() < _IDLE_P:
                        m.phase_end = m.t + m.rng.expovariate(2.0 / tpl.ideal_cycle_time_s)
                        self._set_status(m, MachineStatus.IDLE)
                elif m.until_maint <= 0.0:
                    m.until_maint = self._maint_s
                    m.phase_end = m.t + 3600.0
                    self._set_status(m, MachineStatus.MAINTENANCE)
            else:
                # an idle gap ends with the shift; a repair or maintenance goes on outside shifts
                end = min(m.phase_end, limit if m.status is MachineStatus.IDLE else to)
                if m.status is MachineStatus.FAULT:
                    m.fault_s += end - m.t
                m.t = end
                if end < m.phase_end:
                    continue
                if m.status is MachineStatus.FAULT:
                    m.repairs += 1
                m.fault_code = 0
                self._set_status(m, MachineStatus.RUNNING)

    def _machine_values(self, site: str, m: _Machine, out: dict[ValueKey, Value]) -> None:
        tpl = m.spec.template
        rated = _RATED_KW[tpl.role] * (3.0 if "sls" in tpl.id else 1.0)
        running = m.status is MachineStatus.RUNNING
        n = self._noise
        for s in tpl.signals:
            k = s.kind
            v: Value
            if k is SignalKind.STATUS:
                v = m.codes[m.status]
            elif k is SignalKind.GOOD_COUNT:
                v = m.good % (1 << s.counter_bits)
            elif k is SignalKind.SCRAP_COUNT:
                v = m.scrap % (1 << s.counter_bits)
            elif k is SignalKind.CYCLE_TIME:
                v = round(m.last_cycle_s, 1)
            elif k is SignalKind.TEMPERATURE:
                v = round(self._temp(m, s.name) + n.gauss(0.0, 0.3), 1)
            elif k is SignalKind.POWER:
                factor = {MachineStatus.RUNNING: 0.9 + 0.2 * n.random(), MachineStatus.IDLE: 0.15,
                          MachineStatus.FAULT: 0.05}.get(m.status, 0.0)
                v = round(rated * factor, 2)
            elif k is SignalKind.VIBRATION:
                v = round(max(0.0, n.gauss(2.5, 0.3)) if running else 0.2, 2)
            elif k is SignalKind.FAULT_CODE:
                v = m.fault_code
            elif k is SignalKind.JOB:
                v = m.job
            elif k is SignalKind.LEVEL:
                v = round(m.level * (1000.0 if s.unit == "g" else 100.0), 1)
            else:
                v = 0
            out[(site, m.spec.id, s.name)] = v

    # ------------------------------------------------------------------ stock
    def _new_item(self, site: SiteSpec, spec: InventoryItemSpec, rng: random.Random) -> _Item:
        draws: list[tuple[float, float, int, int]] = []
        total = 0.0
        for d in site.demand:
            product = self.fleet.product(d.product)
            if product is None or spec.sku not in product.bom:
                continue
            draws.append((d.orders_per_day, product.bom[spec.sku], product.batch_min, product.batch_max))
            total += d.orders_per_day
        if not draws:  # not in any bill of materials here: a slow steady draw
            total = 4.0
            draws.append((4.0, spec.reorder_qty / 28.0, 1, 1))
        shares = tuple((rate / total, qty, lo, hi) for rate, qty, lo, hi in draws)
        item = _Item(spec=spec, rng=rng, daily_orders=total, draw=shares, on_hand=spec.initial_on_hand,
                     site=site.id)
        item.next_use = rng.expovariate(total / _DAY_S)
        return item

    def _delay_d(self, it: _Item) -> float:
        s = it.spec
        lead = max(0.25 * s.lead_time_d, s.lead_time_d + it.rng.gauss(0.0, s.lead_time_sd_d))
        tail_p, tail_mean = {Transport.SEA: (0.2, 5.0), Transport.AIR: (0.1, 1.0)}.get(s.transport, (0.05, 0.5))
        if it.rng.random() < tail_p:
            lead += it.rng.expovariate(1.0 / tail_mean)
        return lead

    def _reorder(self, it: _Item) -> None:
        s = it.spec
        if it.on_hand + sum(q for _, q in it.shipments) <= s.reorder_point:
            arrival = it.t + self._delay_d(it) * _DAY_S
            it.shipments.append((arrival, s.reorder_qty))
            it.shipments.sort()
            it.placed.append((it.t, arrival, s.reorder_qty))

    def _step_item(self, it: _Item, to: float) -> None:
        self._reorder(it)
        while True:
            arrival = it.shipments[0][0] if it.shipments else math.inf
            nxt = min(arrival, it.next_use)
            if nxt > to:
                it.t = to
                return
            it.t = nxt
            if arrival <= it.next_use:
                it.on_hand += it.shipments.pop(0)[1]
            else:
                u = it.rng.random()
                chosen = it.draw[-1]
                for d in it.draw:
                    if u <= d[0]:
                        chosen = d
                        break
                    u -= d[0]
                _, qty, lo, hi = chosen
                it.on_hand = max(0.0, it.on_hand - qty * it.rng.randint(lo, hi))
                it.next_use = it.t + it.rng.expovariate(it.daily_orders / _DAY_S)
            self._reorder(it)

    def _item_values(self, site: str, it: _Item, out: dict[ValueKey, Value]) -> None:
        sku = it.spec.sku
        out[(site, sku, "on_hand")] = round(it.on_hand, 3)
        out[(site, sku, "in_transit")] = round(sum(q for _, q in it.shipments), 3)
        eta = (self.start + timedelta(seconds=it.shipments[0][0])).timestamp() if it.shipments else 0
        out[(site, sku, "eta")] = int(eta)

    # ------------------------------------------------------------------ public
    def advance(self, to: datetime) -> dict[ValueKey, Value]:
        """Move the process to ``to`` (never backwards) and return every value at that moment."""
        target = (to - self.start).total_seconds()
        if target < self._t:
            raise ValueError(f"cannot go back in time: now {self.now.isoformat()}, asked {to.isoformat()}")
        self._t = target
        for m in self._machines:
            self._step_machine(m, target)
        for _, it in self._items:
            self._step_item(it, target)
        self._values = self._compute()
        return self.values()

    def values(self) -> dict[ValueKey, Value]:
        """Every value at the current moment (the same on every call until the next ``advance``)."""
        return dict(self._values)

    def _compute(self) -> dict[ValueKey, Value]:
        out: dict[ValueKey, Value] = {}
        for m in self._machines:
            self._machine_values(m.spec.site, m, out)
        for site, it in self._items:
            self._item_values(site, it, out)
        return out

    def readings(self, to: datetime) -> list[Reading]:
        """``advance(to)`` as GOOD readings stamped ``to`` (for backfilling history without servers)."""
        ts = to.astimezone(UTC)
        return [Reading(ts=ts, site=site, asset=asset, signal=signal, value=v, quality=Quality.GOOD)
                for (site, asset, signal), v in self.advance(to).items()]

    def shipments(self) -> list[PlacedShipment]:
        """Every replenishment shipment ordered so far (arrived or not), with ids ``SITE-SKU-N``."""
        out: list[PlacedShipment] = []
        for site, it in self._items:
            s = it.spec
            for n, (ordered, arrival, qty) in enumerate(it.placed, start=1):
                t_ordered = self.start + timedelta(seconds=ordered)
                out.append(PlacedShipment(
                    id=f"{site}-{s.sku}-{n}", site=site, sku=s.sku, qty=qty, origin=s.supplier,
                    ordered=t_ordered,
                    planned_eta=t_ordered + timedelta(days=s.lead_time_d),
                    arrival=self.start + timedelta(seconds=arrival)))
        return out

    def restart(self, site: str, asset: str) -> None:
        """A PLC restart: the asset's counters start again from 0."""
        for m in self._machines:
            if m.spec.site == site and m.spec.id == asset:
                m.good = m.scrap = m.job = 0
        self._values = self._compute()

    def stats(self, site: str, asset: str) -> MachineStats:
        """What a machine has done since the start: the ground truth calibration must recover."""
        for m in self._machines:
            if m.spec.site == site and m.spec.id == asset:
                return MachineStats(run_s=m.run_s, fault_s=m.fault_s, failures=m.failures, repairs=m.repairs,
                                    cycles=m.cycles, cycle_s=m.cycle_s, good=m.good, scrap=m.scrap)
        raise KeyError(f"no machine {asset!r} at {site!r}")

    def status(self, site: str, asset: str) -> MachineStatus:
        """The current status of a machine (for tests)."""
        for m in self._machines:
            if m.spec.site == site and m.spec.id == asset:
                return m.status
        raise KeyError(f"no machine {asset!r} at {site!r}")
