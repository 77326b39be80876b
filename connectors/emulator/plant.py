"""A pure, seeded, time-steppable discrete-event process of the configured plant: what the PLCs and the ERP report.

One coherent plant per site, written independently of the twin's simulation engine (``twin.sim``
is never imported: an emulator running the twin's own model would make every backtest circular).
Its own event loop is a heap of ``(time, seq, callback, argument)``; ``advance(to)`` runs every
event up to ``to``.

* **Orders** arrive per (site, product) as a non-homogeneous Poisson process drawn by thinning:
  ``orders_per_day`` x truth demand factor x weekday factor x hour factor (normalised to mean 1),
  weekday and hour in the site's local time. ``batch_min..batch_max`` units (uniform), due
  ``due_h`` after creation, ids ``{site}-O{n:06d}``. A product whose routing needs a role the site
  has no machine for gets no orders there.
* **Routing**: one station per (site, role) with a FIFO queue of units. A unit machine
  (``batch_size`` 1) processes one unit per cycle; a batch machine (a printer) starts a build at
  once with the queued units, first come first served, up to ``batch_size`` (it never waits for
  a full build) and takes one cycle whatever the fill. A unit that finishes a step joins the next
  station's queue; an order split across builds goes on as its units finish.
* **Cycle time**: ``ideal_cycle_time_s`` x truth cycle factor x a lognormal factor of mean 1 and
  coefficient of variation 3 % (10 % for manual benches: templates whose id contains ``bench``).
  The cycle-time signal shows the last completed cycle.
* **Materials** are drawn by the bill of materials where they are used
  (``twin.spec.consuming_step``): when a unit starts the consuming step it draws BOM qty x truth
  BOM factor of every such item the site stocks (an item the site does not stock is not
  limited). A unit whose material is short waits at the head of its station's queue: the station
  does NOT skip to later units (strict FIFO, head-of-line blocking) and starts again when a
  shipment arrives. A batch machine fills its build up to the first unit that cannot start.
  (An item whose reorder point is below one unit's draw can leave a station waiting for good, as
  the (s, Q) rule orders only at or below s: configure s above a unit's draw.)
* **Scrap**: each unit of a cycle is scrapped with the machine's (truth) scrap rate and re-made
  at that station: it goes back to the FRONT of the station's queue and, at a consuming step,
  draws its material again. An order needs ``qty`` good units. ``good_count``/``scrap_count``
  count units per machine (wrapping at the signal's ``counter_bits``).
* **Failures** come in RUNNING time: operating time to failure is exponential with mean MTBF
  (truth), the repair exponential with mean MTTR (truth; exponential so that a mean estimated
  from n repairs has relative standard error 1/sqrt(n)). A failure pauses the cycle, which
  resumes after the repair (inside or outside the shift). Planned maintenance (1 h) comes every
  ``maintenance_every_h`` operating hours, taken when the cycle that reached it ends.
* **Degradation** (only for templates with a ``[[degradation]]`` entry in the truth file; without
  one a machine takes exactly the code path and random draws above): a hidden wear grows while
  running at ``wear_per_h`` x load (the cycle's fill, units / batch_size), the failure hazard is
  (1 + k wear^shape) / MTBF (the same exponential failure budget, spent faster as wear grows),
  wear shows in the condition signals on top of their noise (vibration and power while running,
  temperatures always), and a planned maintenance removes ``maintenance_reset`` of it, a repair
  ``repair_reset`` (see ``Wear``). Starting wear is uniform up to one maintenance interval's worth.
* **Shifts** (``twin.calendar.shift_intervals``): a machine starts a cycle only inside its site's
  shifts; a started cycle runs to its end (non-preemptive: a print build runs overnight). Status
  OFF outside shifts when not running, repairing or in maintenance; IDLE in a shift with nothing
  it can start. The configuration has no setup times and no overtime, so neither exists here.
* **Stock** falls only through the draws above and rises when a replenishment arrives. (s, Q)
  per item: when on hand + in transit <= ``reorder_point`` (checked at the start and after each
  draw) ``reorder_qty`` is ordered; the lead time is normal(truth mean, truth spread), at least a
  quarter of the mean, plus with some chance a random delay, exponential (sea 20 %, mean 5 d; air
  10 %, 1 d; local 5 %, 0.5 d) times the truth delay factor. The planned ETA is ordered + the
  configured (nominal) lead time.
* **Records** (``take_records``): every order and shipment record version, stamped with the plant
  time it happened: an order's version 1 on arrival (open, operation = the first step's role,
  done 0, ``done_by_step`` all 0), a new version whenever its operation (the role of the EARLIEST
  routing step holding one of its unfinished units) or ``done_by_step`` (the good units that
  finished each step of its routing, cumulative, as an MES's per-operation confirmations; the
  last is ``done_qty``, the units through the whole routing) changes, at most one per order per
  cycle end, and a final one with status done and every count = qty; shipments announced in
  transit with the planned ETA, a new ETA at 3/4 of the planned lead time when the delay is more
  than an hour, and arrived on arrival.

``demand_driven=False`` is for statistical tests that need many cycles: no orders, every station
always has work (full builds, no material), so machines run flat out in their shifts (always,
with ``follow_shifts=False``).

No I/O and no wall clock. The same seed and the same sequence of ``advance`` calls give the same
values and records (the machine, order and stock processes do not depend on the step at all;
only sensor noise is drawn per call). Values are kept up to date in place: what an event touched
is refreshed after it, and each ``advance`` recomputes only the sensors that move between events
(temperatures, and power and vibration of running machines; at rest these are constant), so a
step costs little more than its readings (14 days of the example fleet at 60 s steps: ~1.2 s CPU
for ``advance``, ~3.6 s for ``readings``, 4.7 million of them). ``readings`` gives them site by
site. Random streams: ``{seed}:{site}:{machine}``, ``{seed}:{site}:{sku}``,
``{seed}:demand:{site}:{product}``, ``{seed}:noise``, ``{seed}:wear:{site}:{machine}``.

>>> from twin.spec import FleetSpec
>>> plant = Plant(FleetSpec(id="f", name="f", sites=(), templates=()), seed=1,
...               start=datetime(2026, 1, 5, tzinfo=UTC))
>>> plant.advance(datetime(2026, 1, 5, 1, tzinfo=UTC))
{}
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from connectors.emulator.sensors import (
    DEFAULT_CODES,
    item_values,
    live_values,
    plan_signals,
    static_values,
    temperature,
)
from connectors.emulator.shopfloor import DAY_S, Demand, Item, Machine, Order, Site, Station, ValueKey, record_time
from connectors.emulator.truth import Truth
from connectors.emulator.wear import Wear, new_wear, show_wear
from twin.business import BusinessRecord, ShipmentStatus
from twin.live import INVENTORY_SIGNALS
from twin.readings import Reading, Value
from twin.spec import (
    DemandSpec,
    FleetSpec,
    MachineSpec,
    MachineStatus,
    Role,
    SiteSpec,
)

__all__ = ["MachineStats", "PlacedShipment", "Plant"]

_MAINT_S = 3600.0  # a planned maintenance stop
_CYCLE_CV = 0.03  # cycle-time noise of a machine (coefficient of variation)
_MANUAL_CV = 0.10  # of a manual bench
_DELAY_NOTICE = 0.75  # a shipment delay becomes known at this share of the planned lead time


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineStats:
    """Totals of one machine since the plant started (not reset by a PLC restart, unlike counters)."""

    run_s: float  # time RUNNING (operating time)
    fault_s: float  # time in FAULT (repairs finished or going on)
    failures: int
    repairs: int
    cycles: int  # completed cycles
    cycle_s: float  # their summed durations (running time, repairs excluded)
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


class Plant:
    """The emulated plant. ``advance(to)`` returns ``{(site, asset, signal): value}`` at ``to``.

    ``truth`` holds the real figures where they differ from the configuration (default: none).
    ``maintenance_every_h`` spaces planned maintenance stops (1 h each) in operating hours.
    With ``follow_shifts`` (default) machines start cycles only in their site's shifts. With
    ``demand_driven`` (default) orders flow through the routings; without, every station always
    has work. ``sites`` limits the process to some sites (default: all).
    """

    def __init__(self, fleet: FleetSpec, *, seed: int, start: datetime, truth: Truth | None = None,
                 maintenance_every_h: float = 160.0, sites: Iterable[str] | None = None,
                 follow_shifts: bool = True, demand_driven: bool = True) -> None:
        if start.tzinfo is None:
            raise ValueError(f"start must be timezone-aware (got {start!r})")
        self.fleet = fleet
        self.start = start.astimezone(UTC)
        self.truth = truth if truth is not None else Truth()
        self._t = 0.0
        self._maint_s = maintenance_every_h * 3600.0
        self._follow_shifts = follow_shifts
        self._demand_driven = demand_driven
        self._heap: list[tuple[float, int, Callable[[Any], None], Any]] = []
        self._seq = 0
        self._records: list[tuple[float, int, BusinessRecord]] = []
        # every value, updated in place: those that change only at events when they do, sensor values
        # (with their noise) at every advance; site by site, the order readings() gives them in
        self._values: dict[ValueKey, Value] = {}
        self._blocks: list[tuple[str, list[tuple[str, str]], int, int]] = []  # (site, keys, first, end)
        self._noise = random.Random(f"{seed}:noise")
        self._machines: list[Machine] = []
        self._wear: dict[Machine, Wear] = {}  # only degrading machines: without, the old code path exactly
        self._seed = seed
        self._by_id: dict[tuple[str, str], Machine] = {}
        self._items: list[Item] = []
        self._sites: list[Site] = []
        wanted = set(sites) if sites is not None else None
        for spec in fleet.sites:
            if wanted is not None and spec.id not in wanted:
                continue
            self._sites.append(self._new_site(spec, seed))
        for site in self._sites:
            self._init_shifts(site)
            for it in site.items.values():
                self._reorder(it)
            if demand_driven:
                for d in site.spec.demand:
                    self._new_demand(site, d, seed)
            for st in site.stations.values():
                self._dispatch(st)
        self._sensing = [m for m in self._machines if m.temps or m.powers or m.vibs]
        self._layout()
        self._compute()

    def _layout(self) -> None:
        """Fix the order of the values: site by site, its machines' event values, its stock, its sensors."""
        values = self._values
        for site in self._sites:
            sid = str(site.spec.id)
            first = len(values)
            machines = [m for m in self._machines if m.site == sid]
            keys = [key for m in machines for key, *_ in m.plan]
            keys += [(sid, it.spec.sku, name) for it in site.items.values()
                     for name in INVENTORY_SIGNALS]
            keys += [k for m in machines for k in (*(t[0] for t in m.temps), *(w[0] for w in m.powers), *m.vibs)]
            for key in keys:
                values[key] = None
            self._blocks.append((sid, [(a, g) for _, a, g in keys], first, len(values)))

    @property
    def now(self) -> datetime:
        return self.start + timedelta(seconds=self._t)

    # ------------------------------------------------------------------ event loop
    def _at(self, t: float, fn: Callable[[Any], None], arg: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, fn, arg))

    def _emit(self, record: BusinessRecord) -> None:
        self._seq += 1
        self._records.append((self._t, self._seq, record))

    def _dt(self, t: float) -> datetime:
        return self.start + timedelta(seconds=t)

    def _rt(self, t: float) -> datetime:
        """Plant time ``t`` as a record time: whole seconds (rounded down), as the feed files write them."""
        return record_time(self.start, t)

    # ------------------------------------------------------------------ set-up
    def _new_site(self, spec: SiteSpec, seed: int) -> Site:
        site = Site(spec=spec, tz=ZoneInfo(spec.timezone))
        for it in spec.inventory:
            real = self.truth.item(str(spec.id), it)
            site.items[str(it.sku)] = Item(
                spec=it, site=str(spec.id), rng=random.Random(f"{seed}:{spec.id}:{it.sku}"), lead_d=real.lead_time_d,
                lead_sd_d=real.lead_time_sd_d, delay_factor=real.delay_factor, bom_factor=real.bom_factor,
                on_hand=it.initial_on_hand)
            self._items.append(site.items[str(it.sku)])
        for m in spec.machines:
            st = site.stations.get(m.role)
            if st is None:
                st = site.stations[m.role] = Station(site=site, role=m.role)
            st.machines.append(self._new_machine(m, st, random.Random(f"{seed}:{spec.id}:{m.id}")))
        site.plan_needs(self.fleet.products)
        return site

    def _new_machine(self, spec: MachineSpec, station: Station, rng: random.Random) -> Machine:
        codes = dict(DEFAULT_CODES)
        for code, status in sorted(spec.template.status_codes.items(), reverse=True):
            codes[status] = code  # the lowest code of each status wins
        real = self.truth.machine(spec)
        tpl = spec.template
        cv = _MANUAL_CV if "bench" in str(tpl.id) else _CYCLE_CV
        m = Machine(spec=spec, site=str(spec.site), rng=rng, codes=codes, station=station,
                    cycle_mean_s=tpl.ideal_cycle_time_s * real.cycle_factor, mtbf_s=real.mtbf_h * 3600.0,
                    mttr_s=real.mttr_h * 3600.0, scrap_rate=real.scrap_rate, sigma=math.sqrt(math.log1p(cv * cv)))
        m.ttf_left = rng.expovariate(1.0 / m.mtbf_s)
        law = self.truth.wear(spec)
        if law is None:
            m.until_maint = rng.uniform(0.0, self._maint_s)
        else:
            w = self._wear[m] = new_wear(law, f"{self._seed}:wear:{spec.site}:{spec.id}", self._maint_s)
            m.until_maint = rng.uniform(0.0, w.maint_s)
        m.last_cycle_s = m.cycle_mean_s
        plan_signals(m, tpl)
        self._machines.append(m)
        self._by_id[(m.site, str(spec.id))] = m
        return m

    def _new_demand(self, site: Site, d: DemandSpec, seed: int) -> None:
        product = self.fleet.product(d.product)
        if product is None or any(r not in site.stations for r in product.routing) or not product.routing:
            return  # the site cannot make it: no orders
        hf = d.hour_factors or (1.0,)
        norm = sum(hf) / len(hf) or 1.0
        factor = self.truth.demand_factor(str(site.spec.id), str(d.product))
        peak = d.orders_per_day * factor * max(d.weekday_factors or (1.0,)) * max(hf) / norm
        if peak <= 0:
            return
        rng = random.Random(f"{seed}:demand:{site.spec.id}:{d.product}")
        dem = Demand(site=site, spec=d, product=product, rng=rng, factor=factor, peak_per_s=peak / DAY_S,
                     hour_norm=norm)
        self._at(dem.rng.expovariate(dem.peak_per_s), self._arrival, dem)

    # ------------------------------------------------------------------ shifts
    def _init_shifts(self, site: Site) -> None:
        if not self._follow_shifts:
            site.inside = True
            return
        inside, boundary = site.shift_state(0.0, self.start)
        site.inside = inside
        if boundary < math.inf:
            self._at(boundary, self._shift_change, site)

    def _shift_change(self, site: Site) -> None:
        inside, boundary = site.shift_state(self._t, self.start)
        site.inside = inside
        if boundary < math.inf:
            self._at(boundary, self._shift_change, site)
        for st in site.stations.values():
            self._dispatch(st)

    # ------------------------------------------------------------------ orders
    def _arrival(self, d: Demand) -> None:
        t = self._t
        self._at(t + d.rng.expovariate(d.peak_per_s), self._arrival, d)
        if d.rng.random() * d.peak_per_s > d.rate_per_s(self._dt(t)):
            return  # thinned: the rate is lower at this hour or weekday
        p = d.product
        site = d.site
        site.orders += 1
        qty = d.rng.randint(p.batch_min, max(p.batch_min, p.batch_max))
        created = self._rt(t)
        n_steps = len(p.routing)
        order = Order(id=f"{site.spec.id}-O{site.orders:06d}", site=str(site.spec.id), product=p, qty=qty,
                      created=created, due=created + timedelta(hours=p.due_h), at=[qty] + [0] * (n_steps - 1),
                      through=[0] * n_steps)
        self._report(order)
        st = site.stations[p.routing[0]]
        st.queue.extend((order, 0) for _ in range(qty))
        self._dispatch(st)

    def _report(self, o: Order) -> None:
        """Emit a new version of ``o`` if its operation or the good units through any step changed."""
        record = o.report()
        if record is not None:
            self._emit(record)

    # ------------------------------------------------------------------ machines
    def _set_status(self, m: Machine, status: MachineStatus) -> None:
        if status is m.status:
            return
        for name in m.temp_from:
            m.temp_from[name] = temperature(m, name, self._t)
        m.status, m.status_t = status, self._t
        m.dirty = True

    def _take(self, m: Machine) -> int:
        """Take the units of the next cycle from the station's queue (drawing their material); how many."""
        cap = m.spec.template.batch_size
        if not self._demand_driven:
            return cap
        q = m.station.queue
        needs = m.station.site.needs
        taken: list[tuple[Order, int]] = []
        while q and len(taken) < cap:
            order, step = q[0]
            need = needs[(str(order.product.id), step)]
            if any(item.on_hand < qty - 1e-9 for item, qty in need):
                break  # short of material: the unit waits at the head of the queue
            q.popleft()
            for item, qty in need:
                item.on_hand = max(0.0, item.on_hand - qty)
                item.drawn += qty
                item.dirty = True
                self._reorder(item)
            taken.append((order, step))
        m.units = taken
        return len(taken)

    def _dispatch(self, st: Station) -> None:
        """Give every free machine of ``st`` a cycle if it can start one; else IDLE (in shift) or OFF."""
        for m in st.machines:
            if m.busy or m.status is MachineStatus.MAINTENANCE:
                continue
            if not st.site.inside:
                self._set_status(m, MachineStatus.OFF)
                continue
            n = self._take(m)
            if n == 0:
                self._set_status(m, MachineStatus.IDLE)
                continue
            m.busy = True
            m.n_units = n
            m.cycle_len = m.cycle_left = m.cycle_mean_s * m.rng.lognormvariate(-m.sigma * m.sigma / 2.0, m.sigma)
            self._run(m)

    def _run(self, m: Machine) -> None:
        self._set_status(m, MachineStatus.RUNNING)
        m.run_from = self._t
        w = self._wear.get(m)
        if w is None:
            m.run_dt = min(m.cycle_left, m.ttf_left)
        else:
            cap = m.spec.template.batch_size
            w.rate = w.law.wear_per_h / 3600.0 * (min(1.0, m.n_units / cap) if cap > 1 else 1.0)
            m.run_dt = w.time_to_spend(m.ttf_left, m.cycle_left)
        self._at(self._t + m.run_dt, self._run_end, m)

    def _run_end(self, m: Machine) -> None:
        dt = m.run_dt
        m.run_s += dt
        m.cycle_left -= dt
        w = self._wear.get(m)
        if w is None:
            m.ttf_left -= dt
        else:
            m.ttf_left -= w.budget(dt)
            w.wear += w.rate * dt
            w.rate = 0.0
        m.until_maint -= dt
        if m.cycle_left > 1e-9:  # the running stretch ended in a failure
            m.failures += 1
            m.ttf_left = m.rng.expovariate(1.0 / m.mtbf_s)
            m.fault_code = m.rng.randint(100, 120)
            m.repair_start = self._t
            self._set_status(m, MachineStatus.FAULT)
            self._at(self._t + m.rng.expovariate(1.0 / m.mttr_s), self._repair_end, m)
            return
        self._finish(m)

    def _repair_end(self, m: Machine) -> None:
        w = self._wear.get(m)
        if w is not None:
            w.wear *= 1.0 - w.law.repair_reset
            w.repairs.append(self._t)
        m.repairs += 1
        m.fault_s += self._t - m.repair_start
        m.fault_code = 0
        self._run(m)  # the paused cycle goes on

    def _maint_end(self, m: Machine) -> None:
        self._set_status(m, MachineStatus.IDLE)
        self._dispatch(m.station)

    def _finish(self, m: Machine) -> None:
        m.busy = False
        m.dirty = True
        m.cycles += 1
        m.cycle_s += m.cycle_len
        m.last_cycle_s = m.cycle_len
        m.job += 1
        m.level -= 0.02
        if m.level < 0.1:
            m.level = 1.0
        rng = m.rng
        maintenance = m.until_maint <= 0.0
        if maintenance:  # due: taken now, before the machine could be given more work
            w = self._wear.get(m)
            if w is None:
                m.until_maint = self._maint_s
            else:
                m.until_maint = w.maint_s
                w.wear *= 1.0 - w.law.maintenance_reset
                w.maintenances.append(self._t)
            self._set_status(m, MachineStatus.MAINTENANCE)
            self._at(self._t + _MAINT_S, self._maint_end, m)
        if not self._demand_driven:
            scrap = sum(1 for _ in range(m.n_units) if rng.random() < m.scrap_rate)
            m.scrap += scrap
            m.good += m.n_units - scrap
        else:
            site = m.station.site
            touched: dict[str, Order] = {}
            remake: list[tuple[Order, int]] = []
            onward: dict[Role, Station] = {}
            for order, step in m.units:
                if rng.random() < m.scrap_rate:
                    m.scrap += 1
                    remake.append((order, step))
                    continue
                m.good += 1
                order.at[step] -= 1
                order.through[step] += 1
                routing = order.product.routing
                if step + 1 < len(routing):
                    order.at[step + 1] += 1
                    nxt = site.stations[routing[step + 1]]
                    nxt.queue.append((order, step + 1))
                    onward[nxt.role] = nxt
                touched[order.id] = order
            m.station.queue.extendleft(reversed(remake))  # re-made first, in their order
            m.units = []
            for order in touched.values():
                self._report(order)
            for st in onward.values():
                self._dispatch(st)
        if not maintenance:
            self._dispatch(m.station)

    # ------------------------------------------------------------------ stock
    def _reorder(self, it: Item) -> None:
        s = it.spec
        if it.on_hand + it.in_transit > s.reorder_point:
            return
        t = self._t
        arrival = t + it.draw_lead_d() * DAY_S
        it.placed.append((t, arrival, s.reorder_qty))
        it.in_transit += s.reorder_qty
        it.dirty = True
        idx = len(it.placed) - 1
        it.pending.append((arrival, idx))
        planned = t + s.lead_time_d * DAY_S
        self._emit(it.shipment_record(idx, 1, ShipmentStatus.IN_TRANSIT, planned, self.start))
        notice = t + s.lead_time_d * DAY_S * _DELAY_NOTICE
        if arrival - planned > 3600.0 and notice < arrival:
            self._at(notice, self._delay_notice, (it, idx))
        self._at(arrival, self._delivery, (it, idx))

    def _delay_notice(self, arg: tuple[Item, int]) -> None:
        it, idx = arg
        self._emit(it.shipment_record(idx, 2, ShipmentStatus.IN_TRANSIT, it.placed[idx][1], self.start))

    def _delivery(self, arg: tuple[Item, int]) -> None:
        it, idx = arg
        ordered, arrival, qty = it.placed[idx]
        planned = ordered + it.spec.lead_time_d * DAY_S
        notice = ordered + it.spec.lead_time_d * DAY_S * _DELAY_NOTICE
        version = 3 if arrival - planned > 3600.0 and notice < arrival else 2
        it.pending.remove((arrival, idx))
        it.on_hand += qty
        it.in_transit = max(0.0, it.in_transit - qty)
        it.dirty = True
        self._emit(it.shipment_record(idx, version, ShipmentStatus.ARRIVED, arrival, self.start))
        self._reorder(it)
        site = next(s for s in self._sites if str(s.spec.id) == it.site)
        for st in site.stations.values():
            if st.queue:
                self._dispatch(st)

    # ------------------------------------------------------------------ public
    def advance(self, to: datetime) -> dict[ValueKey, Value]:
        """Move the process to ``to`` (never backwards) and return every value at that moment."""
        self._move(to)
        return dict(self._values)

    def _move(self, to: datetime) -> None:
        target = (to - self.start).total_seconds()
        if target < self._t:
            raise ValueError(f"cannot go back in time: now {self.now.isoformat()}, asked {to.isoformat()}")
        heap = self._heap
        while heap and heap[0][0] <= target:
            t, _, fn, arg = heapq.heappop(heap)
            self._t = t
            fn(arg)
        self._t = target
        self._compute()

    def values(self) -> dict[ValueKey, Value]:
        """Every value at the current moment (the same on every call until the next ``advance``)."""
        return dict(self._values)

    def _compute(self) -> None:
        """Bring the values to now: those of what an event touched, then the sensors (noise drawn here)."""
        for m in self._machines:
            if m.dirty:
                static_values(m, self._values)
        for it in self._items:
            if it.dirty:
                item_values(it, self._values, self.start)
        out = self._values
        for m in self._sensing:
            if m.temps or m.status is MachineStatus.RUNNING:
                live_values(m, out, self._t, self._noise)
        for m, w in self._wear.items():
            show_wear(m, w, self.wear(m.site, str(m.spec.id)), out)

    def readings(self, to: datetime) -> list[Reading]:
        """``advance(to)`` as GOOD readings stamped ``to`` (for backfilling history without servers), site by site."""
        ts = to.astimezone(UTC)
        self._move(to)
        values = list(self._values.values())
        out: list[Reading] = []
        for site, keys, first, end in self._blocks:
            out += Reading.good_many(ts, site, keys, values[first:end])
        return out

    def take_records(self) -> list[tuple[datetime, BusinessRecord]]:
        """The order and shipment record versions emitted since the last call, in time order, with their plant time.

        Times in records (and the time each comes with) are whole seconds, rounded down, so a record
        written to a feed file and read back is the same record.
        """
        out = [(self._rt(t), r) for t, _, r in self._records]
        self._records = []
        return out

    def shipments(self) -> list[PlacedShipment]:
        """Every replenishment shipment ordered so far (arrived or not), with ids ``SITE-SKU-N``."""
        out: list[PlacedShipment] = []
        for it in self._items:
            s = it.spec
            for n, (ordered, arrival, qty) in enumerate(it.placed, start=1):
                t_ordered = self._dt(ordered)
                out.append(PlacedShipment(
                    id=f"{it.site}-{s.sku}-{n}", site=it.site, sku=s.sku, qty=qty, origin=s.supplier,
                    ordered=t_ordered, planned_eta=t_ordered + timedelta(days=s.lead_time_d),
                    arrival=self._dt(arrival)))
        return out

    def _machine(self, site: str, asset: str) -> Machine:
        m = self._by_id.get((site, asset))
        if m is None:
            raise KeyError(f"no machine {asset!r} at {site!r}")
        return m

    def restart(self, site: str, asset: str) -> None:
        """A PLC restart: the asset's counters start again from 0."""
        m = self._by_id.get((site, asset))
        if m is not None:
            m.good = m.scrap = m.job = 0
            m.dirty = True
        self._compute()

    def stats(self, site: str, asset: str) -> MachineStats:
        """What a machine has done since the start: the ground truth calibration must recover."""
        m = self._machine(site, asset)
        run_s, fault_s = m.run_s, m.fault_s
        if m.status is MachineStatus.RUNNING and m.busy:
            run_s += self._t - m.run_from  # the running stretch going on
        elif m.status is MachineStatus.FAULT:
            fault_s += self._t - m.repair_start  # the repair going on
        return MachineStats(run_s=run_s, fault_s=fault_s, failures=m.failures, repairs=m.repairs,
                            cycles=m.cycles, cycle_s=m.cycle_s, good=m.good, scrap=m.scrap)

    def has(self, site: str, asset: str) -> bool:
        """Whether the plant runs this machine (``sites`` may leave some out)."""
        return (site, asset) in self._by_id

    def wear(self, site: str, asset: str) -> float:
        """The hidden wear of a machine now (0 for one that does not degrade): for tests and measurements."""
        m = self._machine(site, asset)
        w = self._wear.get(m)
        if w is None:
            return 0.0
        if m.status is MachineStatus.RUNNING and m.busy:
            return w.wear + w.rate * (self._t - m.run_from)
        return w.wear

    def wear_state(self, site: str, asset: str) -> Wear | None:
        """The wear record of a degrading machine (its law, resets), or None."""
        return self._wear.get(self._machine(site, asset))

    def status(self, site: str, asset: str) -> MachineStatus:
        """The current status of a machine (for tests)."""
        return self._machine(site, asset).status
