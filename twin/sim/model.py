"""The micro-factory model: plain data in, SimPy processes, plain per-replication outputs out.

A :class:`ModelData` is everything one replication needs, as picklable plain data (times in
simulation seconds from the fork's ``as_of``). :func:`simulate` builds a fresh
``simpy.Environment`` from it, runs to the horizon and returns a :class:`ReplicationOutput`.

Modelling choices (documented here once):

- **Orders** arrive as a non-homogeneous Poisson process per (site, product): a piecewise-constant
  rate (one piece per local clock hour). Quantity is uniform in ``batch_min..batch_max``.
- **Kitting:** an arriving order takes its whole bill of materials from stock before its first
  operation, strictly first come first served; if any SKU is short the order (and the ones behind
  it) waits, and the SKU's first such moment is its **stockout** time. Scrapped units take their
  material again at the station that scrapped them.
- **Stations** are the machines of one role at one site with a FIFO queue. A job (an order at one
  routing step) is processed by one machine in ``ceil(units / batch_size)`` cycles, each gamma
  distributed with the machine's mean and coefficient of variation (cv 1 = exponential, 0 =
  deterministic); the job time is drawn once as the sum. Scrap is re-made on the spot: each unit is
  scrapped with probability ``scrap_rate`` until a good one is made.
- **Failures** are operation-dependent: time to failure is exponential in *running* time with mean
  MTBF, repair exponential with mean MTTR; a failure pauses the job, which resumes after repair.
- **Shifts and planned downtime:** a machine starts a job only inside its availability windows
  (shifts minus planned downtime); a started job runs to its end (non-preemptive).
- **Replenishment:** (s, Q): whenever the inventory position (on hand + on order) is at or below s,
  Q is ordered; lead time is lognormal with the item's mean and standard deviation. Shipments in
  transit at the fork arrive at their ETA plus a half-normal delay (scale ``eta_sd_s``).
- **Overflow:** an order arriving at a site whose backlog (open orders) is at or above a
  threshold is sent to another site, where it arrives after the transfer time.
"""

from __future__ import annotations

import math
import random
import zlib
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import simpy

__all__ = [
    "DemandData",
    "ItemData",
    "MachineData",
    "ModelData",
    "OrderData",
    "OverflowData",
    "ProductData",
    "ReplicationOutput",
    "StationStats",
    "simulate",
    "stream_seed",
]

INF = math.inf


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineData:
    """One machine as the model sees it. ``windows`` None means always available."""

    id: str
    site: str
    role: str
    cycle_mean_s: float
    cycle_cv: float = 0.0
    batch_size: int = 1
    mtbf_s: float = INF
    mttr_s: float = 0.0
    scrap_rate: float = 0.0
    windows: tuple[tuple[float, float], ...] | None = None
    initial_busy_s: float = 0.0  # remaining time of the cycle running at the fork
    initial_repair_s: float = 0.0  # remaining repair or maintenance at the fork


@dataclass(frozen=True, slots=True, kw_only=True)
class InTransit:
    """A shipment on its way at the fork."""

    eta_s: float
    qty: float
    eta_sd_s: float = 0.0
    extra_delay_s: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemData:
    """One stocked SKU at one site and its (s, Q) policy."""

    site: str
    sku: str
    on_hand: float
    reorder_point: float
    reorder_qty: float
    lead_mean_s: float
    lead_sd_s: float = 0.0
    in_transit: tuple[InTransit, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductData:
    """A product family: routing roles and bill of materials per unit."""

    id: str
    routing: tuple[str, ...]
    bom: tuple[tuple[str, float], ...] = ()
    batch_min: int = 1
    batch_max: int = 1
    due_s: float = 48 * 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DemandData:
    """Order arrivals of one product at one site: rate (orders/s) from each start time onwards."""

    site: str
    product: str
    starts_s: tuple[float, ...]
    rates_per_s: tuple[float, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderData:
    """An open order at the fork; ``created_s``/``due_s`` relative to the fork (created <= 0)."""

    id: str
    site: str
    product: str
    qty: int
    created_s: float
    due_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class OverflowData:
    """Send orders arriving at ``from_site`` to ``to_site`` while its backlog >= threshold."""

    from_site: str
    to_site: str
    transfer_s: float
    threshold: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelData:
    """Everything a replication needs, as plain data."""

    horizon_s: float
    bin_s: float = 3600.0
    sites: tuple[str, ...]
    machines: tuple[MachineData, ...]
    products: tuple[ProductData, ...]
    items: tuple[ItemData, ...] = ()
    demand: tuple[DemandData, ...] = ()
    orders: tuple[OrderData, ...] = ()
    overflow: tuple[OverflowData, ...] = ()

    @property
    def n_bins(self) -> int:
        return max(1, math.ceil(self.horizon_s / self.bin_s - 1e-9))


@dataclass(frozen=True, slots=True, kw_only=True)
class StationStats:
    """Queue statistics of one station (site, role) over the run."""

    site: str
    role: str
    servers: int
    queue_area: float  # integral of queue length over time
    waits_sum_s: float
    waits_n: int
    busy_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicationOutput:
    """What one replication produced, per site / SKU / open order, all plain numbers.

    Series are per bin: ``throughput`` units finished in the bin; ``backlog`` open orders and
    ``wip`` units released to the floor and not finished, at the bin's end; ``stock`` on hand at
    the bin's end; ``utilisation`` busy fraction of the site's machines in the bin.
    """

    horizon_s: float
    bin_s: float
    events: int  # events processed, when the environment counts them (``events_processed``), else 0
    throughput: dict[str, list[float]]
    backlog: dict[str, list[float]]
    wip: dict[str, list[float]]
    utilisation: dict[str, list[float]]
    stock: dict[tuple[str, str], list[float]]
    orders_done: dict[str, int]
    units_done: dict[str, int]
    on_time: dict[str, int]
    late: dict[str, int]  # finished late, or due within the horizon and not finished
    lead_time_sum_s: dict[str, float]
    system_area: dict[str, float]  # integral of open orders in the system (Little's L x T)
    stockout_s: dict[tuple[str, str], float]  # first stockout, inf if none
    open_order_done_s: dict[str, float]  # finish time of each open order of the fork, inf if not
    open_order_due_s: dict[str, float]
    open_order_site: dict[str, str]
    machine_busy_s: dict[str, float]  # keyed "site/machine"
    machine_down_s: dict[str, float]
    stations: tuple[StationStats, ...] = field(default=())


def stream_seed(seed: int, replication: int, name: str) -> int:
    """A stable seed for the random stream ``name`` of one replication (common random numbers).

    Streams are keyed by name, so adding a machine in a scenario leaves every other stream as in
    the baseline.
    """
    return (seed * 1_000_003 + replication) * 4_294_967_311 + zlib.crc32(name.encode())


class _Order:
    __slots__ = ("created", "done", "due", "id", "initial", "product", "qty", "site", "step")

    def __init__(self, oid: str, site: str, product: _Product, qty: int, created: float, due: float) -> None:
        self.id = oid
        self.site = site
        self.product = product
        self.qty = qty
        self.created = created
        self.due = due
        self.step = 0
        self.done = INF
        self.initial = False


class _Product:
    __slots__ = ("batch_max", "batch_min", "bom", "due_s", "id", "routing")

    def __init__(self, p: ProductData) -> None:
        self.id = p.id
        self.routing = p.routing
        self.bom = p.bom
        self.batch_min = p.batch_min
        self.batch_max = p.batch_max
        self.due_s = p.due_s


class _Station:
    __slots__ = ("busy", "enq", "idle", "last", "q_area", "queue", "role", "servers", "site", "w_n", "w_sum")

    def __init__(self, site: str, role: str) -> None:
        self.site = site
        self.role = role
        self.queue: deque[_Order] = deque()
        self.enq: deque[float] = deque()
        self.idle: list[simpy.Event] = []
        self.servers = 0
        self.q_area = 0.0
        self.last = 0.0
        self.w_sum = 0.0
        self.w_n = 0
        self.busy = 0.0


class _Run:
    """The mutable state of one replication (private to :func:`simulate`)."""

    def __init__(self, data: ModelData, seed: int, replication: int) -> None:
        self.data = data
        self.env = simpy.Environment()
        self.seed = seed
        self.rep = replication
        self.n_bins = data.n_bins
        self.bin_s = data.bin_s
        self.products = {p.id: _Product(p) for p in data.products}
        self.stations: dict[tuple[str, str], _Station] = {}
        for m in data.machines:
            st = self.stations.get((m.site, m.role))
            if st is None:
                st = self.stations[(m.site, m.role)] = _Station(m.site, m.role)
            st.servers += 1
        self.stock: dict[tuple[str, str], float] = {(i.site, i.sku): i.on_hand for i in data.items}
        self.on_order: dict[tuple[str, str], float] = {(i.site, i.sku): 0.0 for i in data.items}
        self.items = {(i.site, i.sku): i for i in data.items}
        self.kitting: dict[str, deque[_Order]] = {s: deque() for s in data.sites}
        self.overflow = {o.from_site: o for o in data.overflow}
        z = [0.0] * self.n_bins
        self.throughput = {s: list(z) for s in data.sites}
        self.busy_bins = {s: list(z) for s in data.sites}
        self.backlog = {s: list(z) for s in data.sites}
        self.wip_bins = {s: list(z) for s in data.sites}
        self.stock_bins = {k: list(z) for k in self.stock}
        self.open_n = dict.fromkeys(data.sites, 0)
        self.wip = dict.fromkeys(data.sites, 0)
        self.sys_area = dict.fromkeys(data.sites, 0.0)
        self.sys_last = dict.fromkeys(data.sites, 0.0)
        self.orders_done = dict.fromkeys(data.sites, 0)
        self.units_done = dict.fromkeys(data.sites, 0)
        self.on_time = dict.fromkeys(data.sites, 0)
        self.late = dict.fromkeys(data.sites, 0)
        self.lead_sum = dict.fromkeys(data.sites, 0.0)
        self.stockout = dict.fromkeys(self.stock, INF)
        self.open_orders: list[_Order] = []
        self.machine_busy: dict[str, float] = {}
        self.machine_down: dict[str, float] = {}
        self.pending: list[_Order] = []  # every order created, to count late ones at the end
        self.rng_supply = self.rng("supply")

    def rng(self, name: str) -> random.Random:
        return random.Random(stream_seed(self.seed, self.rep, name))

    # --- orders -------------------------------------------------------------------------------
    def _system_change(self, site: str, delta: int) -> None:
        now = self.env.now
        self.sys_area[site] += self.open_n[site] * (now - self.sys_last[site])
        self.sys_last[site] = now
        self.open_n[site] += delta

    def new_order(self, site: str, product: _Product, rng: random.Random) -> None:
        now = self.env.now
        qty = product.batch_min if product.batch_max <= product.batch_min else rng.randint(
            product.batch_min, product.batch_max
        )
        order = _Order("", site, product, qty, now, now + product.due_s)
        if order.due <= self.data.horizon_s:
            self.pending.append(order)
        ov = self.overflow.get(site) if self.overflow else None
        if ov is not None and self.open_n[site] >= ov.threshold:
            order.site = ov.to_site
            self._system_change(ov.to_site, +1)
            ev = self.env.timeout(ov.transfer_s, order)
            ev.callbacks.append(self._arrive_transferred)
            return
        self._system_change(site, +1)
        kit = self.kitting[site]
        if not product.bom and not kit:
            self.wip[site] += qty
            self.to_station(order)
            return
        kit.append(order)
        self.try_kit(site)

    def _arrive_transferred(self, ev: simpy.Event) -> None:
        order = cast(_Order, ev.value)
        self.kitting[order.site].append(order)
        self.try_kit(order.site)

    def try_kit(self, site: str) -> None:
        queue = self.kitting[site]
        stock = self.stock
        while queue:
            order = queue[0]
            short = False
            for sku, per_unit in order.product.bom:
                key = (site, sku)
                have = stock.get(key)
                if have is None:
                    continue  # not stocked at this site: not modelled as a constraint
                if have < per_unit * order.qty - 1e-9:
                    short = True
                    if self.stockout[key] == INF:
                        self.stockout[key] = self.env.now
            if short:
                return
            queue.popleft()
            for sku, per_unit in order.product.bom:
                self.consume(site, sku, per_unit * order.qty)
            self.wip[site] += order.qty
            self.to_station(order)

    def consume(self, site: str, sku: str, qty: float) -> None:
        key = (site, sku)
        item = self.items.get(key)
        if item is None:
            return
        self.stock[key] -= qty
        if self.stock[key] < -1e-9 and self.stockout[key] == INF:
            self.stockout[key] = self.env.now
        if item.reorder_qty > 0:
            while self.stock[key] + self.on_order[key] <= item.reorder_point + 1e-9:
                self.on_order[key] += item.reorder_qty
                lead = _lognormal(self.rng_supply, item.lead_mean_s, item.lead_sd_s)
                ev = self.env.timeout(lead, (key, item.reorder_qty, True))
                ev.callbacks.append(self._receive)

    def _receive(self, ev: simpy.Event) -> None:
        key, qty, ordered = cast(tuple[tuple[str, str], float, bool], ev.value)
        self.stock[key] += qty
        if ordered:
            self.on_order[key] -= qty
        self.try_kit(key[0])

    def to_station(self, order: _Order) -> None:
        routing = order.product.routing
        if order.step >= len(routing):
            self.finish(order)
            return
        key = (order.site, routing[order.step])
        st = self.stations.get(key)
        if st is None:  # no machine of this role at the site: the order waits forever
            st = self.stations[key] = _Station(*key)
        now = self.env.now
        if st.idle:
            st.w_n += 1
            st.idle.pop().succeed(order)
            return
        st.q_area += len(st.queue) * (now - st.last)
        st.last = now
        st.queue.append(order)
        st.enq.append(now)

    def finish(self, order: _Order) -> None:
        now = self.env.now
        site = order.site
        order.done = now
        self._system_change(site, -1)
        self.wip[site] -= order.qty
        self.orders_done[site] += 1
        self.units_done[site] += order.qty
        self.lead_sum[site] += now - order.created
        if now <= order.due + 1e-9:
            self.on_time[site] += 1
        else:
            self.late[site] += 1
        b = min(max(math.ceil(now / self.bin_s) - 1, 0), self.n_bins - 1)  # bins are (start, end]
        self.throughput[site][b] += order.qty

    # --- machines ------------------------------------------------------------------------------
    def add_busy(self, site: str, t0: float, t1: float) -> None:
        bins = self.busy_bins[site]
        size = self.bin_s
        b = int(t0 / size)
        last = self.n_bins - 1
        while t0 < t1 and b <= last:
            edge = (b + 1) * size
            upto = t1 if t1 < edge else edge
            bins[b] += upto - t0
            t0 = upto
            b += 1

    def machine(self, m: MachineData) -> Any:
        env = self.env
        st = self.stations[(m.site, m.role)]
        mid = f"{m.site}/{m.id}"
        rng_cycle = self.rng(f"cycle:{mid}")
        rng_fail = self.rng(f"fail:{mid}")
        rng_scrap = self.rng(f"scrap:{mid}")
        windows = m.windows
        starts = [w[0] for w in windows] if windows is not None else []
        open_until = -1.0  # end of the availability window known to contain now (a cache)
        mean, cv, batch, p_scrap = m.cycle_mean_s, m.cycle_cv, m.batch_size, m.scrap_rate
        log_ok = math.log(1.0 - p_scrap) if 0 < p_scrap < 1 else 0.0
        shape = 1.0 / (cv * cv) if cv > 0 else 0.0
        scale = mean * cv * cv
        fail_rate = 1.0 / m.mtbf_s if m.mtbf_s < INF else 0.0
        ttf = rng_fail.expovariate(fail_rate) if fail_rate > 0 else INF
        mttr = m.mttr_s
        busy_of, down_of = self.machine_busy, self.machine_down
        busy_of[mid] = down_of[mid] = 0.0
        site = m.site
        queue, enq, idle = st.queue, st.enq, st.idle
        if m.initial_repair_s > 0:  # memoryless: the time left is exponential with the mean given
            repair = rng_fail.expovariate(1.0 / m.initial_repair_s)
            yield env.timeout(repair)
            down_of[mid] += repair
        if m.initial_busy_s > 0:
            t0 = env.now
            yield env.timeout(m.initial_busy_s)
            busy_of[mid] += m.initial_busy_s
            self.add_busy(site, t0, env.now)
        while True:
            now = env.now
            if windows is not None and not now < open_until:
                i = bisect_right(starts, now) - 1
                if i < 0 or now >= windows[i][1]:
                    if i + 1 >= len(windows):
                        return
                    yield env.timeout(windows[i + 1][0] - now)
                    continue
                open_until = windows[i][1]
            if queue:
                order = queue.popleft()
                t_enq = enq.popleft()
                st.q_area += (len(queue) + 1) * (now - st.last)
                st.last = now
                st.w_sum += now - t_enq
                st.w_n += 1
            else:
                ev = env.event()
                idle.append(ev)
                order = yield ev
                now = env.now
                if windows is not None and not now < open_until:
                    i = bisect_right(starts, now) - 1
                    if i < 0 or now >= windows[i][1]:
                        # woken outside our windows: hand the job back to the queue's front
                        st.w_n -= 1
                        st.q_area += len(queue) * (now - st.last)
                        st.last = now
                        queue.appendleft(order)
                        enq.appendleft(now)
                        if idle:
                            self._redispatch(st)
                        continue
                    open_until = windows[i][1]
            units = order.qty
            if p_scrap > 0:
                # Bernoulli trials until `units` good parts: jump from failure to failure with
                # geometric runs of successes (one draw per scrapped part, not one per part)
                scrap = 0
                left = units
                rnd = rng_scrap.random
                while True:
                    run = int(math.log(1.0 - rnd()) / log_ok)
                    if run >= left:
                        break
                    left -= run
                    scrap += 1
                if scrap:
                    for sku, per_unit in order.product.bom:
                        self.consume(site, sku, per_unit * scrap)
                units += scrap
            cycles = -(-units // batch)
            if shape == 0.0:
                work = mean * cycles
            elif cv == 1.0 and cycles == 1:
                work = rng_cycle.expovariate(1.0 / mean)
            else:
                work = rng_cycle.gammavariate(shape * cycles, scale)
            t0 = env.now
            while work >= ttf:
                if ttf > 0:
                    yield env.timeout(ttf)
                work -= ttf
                busy_of[mid] += ttf
                self.add_busy(site, t0, env.now)
                repair = rng_fail.expovariate(1.0 / mttr) if mttr > 0 else 0.0
                yield env.timeout(repair)
                down_of[mid] += repair
                ttf = rng_fail.expovariate(fail_rate)
                t0 = env.now
            yield env.timeout(work)
            ttf -= work
            busy_of[mid] += work
            st.busy += env.now - t0
            self.add_busy(site, t0, env.now)
            order.step += 1
            self.to_station(order)

    def _redispatch(self, st: _Station) -> None:
        now = self.env.now
        order = st.queue.popleft()
        t_enq = st.enq.popleft()
        st.q_area += (len(st.queue) + 1) * (now - st.last)
        st.last = now
        st.w_sum += now - t_enq
        st.w_n += 1
        st.idle.pop().succeed(order)

    # --- sources -------------------------------------------------------------------------------
    def demand(self, d: DemandData) -> Any:
        env = self.env
        rng = self.rng(f"demand:{d.site}:{d.product}")
        rng_qty = self.rng(f"qty:{d.site}:{d.product}")
        product = self.products[d.product]
        starts, rates = d.starts_s, d.rates_per_s
        n = len(starts)
        horizon = self.data.horizon_s
        i = 0
        t = 0.0
        while True:
            # invert the cumulative rate: one Exp(1) spent across piecewise-constant pieces
            need = rng.expovariate(1.0)
            while True:
                end = starts[i + 1] if i + 1 < n else horizon
                rate = rates[i]
                if rate > 0 and t + need / rate <= end:
                    t += need / rate
                    break
                need -= rate * (end - t)
                t = end
                if i + 1 >= n:
                    return
                i += 1
            if t >= horizon:
                return
            yield env.timeout(t - env.now)
            self.new_order(d.site, product, rng_qty)

    def sampler(self) -> Any:
        env = self.env
        for b in range(self.n_bins):
            yield env.timeout(min((b + 1) * self.bin_s, self.data.horizon_s) - env.now)
            for s in self.data.sites:
                self.backlog[s][b] = self.open_n[s]
                self.wip_bins[s][b] = self.wip[s]
            for key, level in self.stock.items():
                self.stock_bins[key][b] = level

    def start(self) -> None:
        env = self.env
        for o in self.data.orders:
            product = self.products.get(o.product)
            if product is None:
                continue
            order = _Order(o.id, o.site, product, o.qty, o.created_s, o.due_s)
            order.initial = True
            self.open_orders.append(order)
            self.pending.append(order)
            self._system_change(o.site, +1)
            self.wip[o.site] += o.qty
            self.to_station(order)
        for i in self.data.items:
            for shp in i.in_transit:
                delay = abs(self.rng_supply.gauss(0.0, shp.eta_sd_s)) if shp.eta_sd_s > 0 else 0.0
                ev = env.timeout(max(0.0, shp.eta_s + shp.extra_delay_s + delay), ((i.site, i.sku), shp.qty, False))
                ev.callbacks.append(self._receive)
        for m in self.data.machines:
            env.process(self.machine(m))
        for d in self.data.demand:
            env.process(self.demand(d))
        env.process(self.sampler())

    def output(self, events: int) -> ReplicationOutput:
        horizon = self.data.horizon_s
        for s in self.data.sites:
            self.sys_area[s] += self.open_n[s] * (horizon - self.sys_last[s])
            self.sys_last[s] = horizon
        for order in self.pending:
            if order.done == INF and order.due <= horizon:
                self.late[order.site] += 1
        capacity: dict[str, int] = {s: 0 for s in self.data.sites}
        for m in self.data.machines:
            capacity[m.site] += 1
        util: dict[str, list[float]] = {}
        for s, bins in self.busy_bins.items():
            util[s] = [
                v / (capacity[s] * (min((b + 1) * self.bin_s, horizon) - b * self.bin_s)) if capacity[s] else 0.0
                for b, v in enumerate(bins)
            ]
        stations = []
        for st in self.stations.values():
            st.q_area += len(st.queue) * (horizon - st.last)
            stations.append(
                StationStats(
                    site=st.site, role=st.role, servers=st.servers, queue_area=st.q_area,
                    waits_sum_s=st.w_sum, waits_n=st.w_n, busy_s=st.busy,
                )
            )
        return ReplicationOutput(
            horizon_s=horizon,
            bin_s=self.bin_s,
            events=events,
            throughput=self.throughput,
            backlog=self.backlog,
            wip=self.wip_bins,
            utilisation=util,
            stock=self.stock_bins,
            orders_done=self.orders_done,
            units_done=self.units_done,
            on_time=self.on_time,
            late=self.late,
            lead_time_sum_s=self.lead_sum,
            system_area=self.sys_area,
            stockout_s=self.stockout,
            open_order_done_s={o.id: o.done for o in self.open_orders},
            open_order_due_s={o.id: o.due for o in self.open_orders},
            open_order_site={o.id: o.site for o in self.open_orders},
            machine_busy_s=self.machine_busy,
            machine_down_s=self.machine_down,
            stations=tuple(stations),
        )


def _lognormal(rng: random.Random, mean: float, sd: float) -> float:
    if sd <= 0 or mean <= 0:
        return max(mean, 0.0)
    sigma2 = math.log(1.0 + (sd / mean) ** 2)
    return rng.lognormvariate(math.log(mean) - sigma2 / 2.0, math.sqrt(sigma2))


def simulate(
    data: ModelData,
    seed: int,
    replication: int = 0,
    environment: Callable[[], simpy.Environment] | None = None,
) -> ReplicationOutput:
    """Run one replication of ``data`` with the random streams of (``seed``, ``replication``)."""
    run = _Run(data, seed, replication)
    if environment is not None:
        run.env = environment()
    run.start()
    run.env.run(until=data.horizon_s)
    # close machine generators so their totals are recorded
    return run.output(getattr(run.env, "events_processed", 0))
