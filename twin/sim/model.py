"""The micro-factory model: plain data in, a SimPy run, plain per-replication outputs out.

A :class:`ModelData` is everything one replication needs, as picklable plain data (times in
simulation seconds from the fork's ``as_of``). :func:`simulate` builds a fresh
``simpy.Environment`` from it, runs to the horizon and returns a :class:`ReplicationOutput`.

Implementation, for speed (the engine's per-event overhead is what a Monte Carlo pays a million
times): machines, order sources and deliveries are small state machines driven by callbacks on
SimPy timeouts, not generator processes; a unit reaching an idle machine starts at once (no
wake-up event), so one job (a unit at a unit station, a build at a batch one) costs one event.
Statistics are integrals updated when the state changes (queue length, orders in the system), and
the per-bin series of backlog, WIP and stock are closed lazily: before the first change after a
bin's end, that bin (and any skipped ones) takes the state at its end. Bins are (start, end]: a
bin holds the state after every event at or before its end, the bin ending at the horizon
included.

Modelling choices (documented here once):

- **Orders** arrive as a non-homogeneous Poisson process per (site, product): a piecewise-constant
  rate (one piece per local clock hour). Quantity is uniform in ``batch_min..batch_max``.
- **Materials are drawn where they are used** (``twin.spec.consuming_step``, the same rule as the
  emulated plant): each bill-of-materials line has the routing step that draws it
  (``ProductData.bom_steps``: packaging at pack, sub-assemblies at assemble, raw material at the
  first step). A unit takes its share of a SKU when it starts at that step; every attempt does, so
  a scrapped unit draws again. A unit whose material is short waits at that station, first come
  first served (the units behind it wait too); the first such moment is the SKU's **stockout**
  time. A build takes as many units as the material covers, the rest of the lot stays at the head
  of the queue until a delivery arrives. A SKU the site does not stock is not a constraint.
- **Stations** are the machines of one role at one site with a FIFO queue of **lots** (units of
  one order at one step): an order enters the floor (WIP) as one lot when it arrives and queues at
  its first step; a machine that takes only part of a lot makes a lot of the units it took, which
  goes on to the next step as soon as they are done. Output (``throughput``, ``units_done``) counts
  units as they leave the last step; an order is done with its last unit. Free machines take work
  in configuration order (the first free one first, as the plant dispatches).
- **Unit stations** (every machine ``batch_size`` 1) work one-piece flow, as the plant: a free
  machine takes the next queued *unit* (one job, one event), so an order's units spread over all
  free machines of the station and each goes on when it is done. A cycle is gamma distributed with
  the machine's mean and coefficient of variation (cv 1 = exponential, 0 = deterministic). Scrap
  is re-made on the spot: each attempt is scrapped with probability ``scrap_rate`` until a good
  unit is made, one job time (the sum of the attempts' cycles) drawn at once.
- **Batch machines** (a station with any machine of ``batch_size`` > 1, e.g. a printer building 12
  parts per build): a machine that is free and available starts a **build** at once with the queued
  units, first come first served, filling up to ``batch_size`` slots; it never waits for a full
  build (the emulated plant follows the same rule). A lot of q units takes q slots; when fewer slots
  are left, the build takes what fits and the rest of the lot stays at the head of the queue for the
  next build (on this or another machine), as print farms split a large order across builds; the
  good units of each build go on when it ends. One cycle time per build (the same gamma
  distribution), whatever its fill. Each part of a build is scrapped with probability
  ``scrap_rate``; as in the plant, the scrapped parts go back to the FRONT of the queue when the
  build ends and are made again in a later build (drawing their material again). A batch-1 machine
  at such a station builds one unit per cycle. A lot leaves the queue (its wait ends) when its last
  unit starts.
- **Failures** are operation-dependent: time to failure is exponential in *running* time with mean
  MTBF, repair exponential with mean MTTR; a failure pauses the job, which resumes after repair.
  A machine with a condition hazard (``MachineData.hazard``, a :class:`Hazard` from the fitted
  health model, see :mod:`twin.sim.condition`) fails instead after a running time drawn from its
  piecewise-constant hazard in running time: the curve from its wear at the fork until its first
  repair or maintenance, the renewed curve from each of them (inverse transform of one Exp(1) draw on
  the cumulative hazard: one draw of the same stream, as the constant hazard takes).
- **Maintenance** (``MachineData.renewals_s``): the machine is unavailable during the maintenance
  (its windows say so) and the job in progress at its start runs to its end; the first job the
  machine starts at or after the maintenance's start begins on the renewed hazard (its wear was
  reset). A repair resets the wear too. With a constant hazard (memoryless) a renewal changes
  nothing and draws nothing.
- **Shifts and planned downtime:** a machine starts a job only inside its availability windows
  (shifts minus planned downtime); a started job runs to its end (non-preemptive: a unit started
  before the shift ends is finished, a print build runs overnight).
- **The fork** (``OrderData.step``/``queued``, ``MachineData.initial_busy_s``): an open order's
  remaining units queue where they are (a lot at each step holding some, in the order given), each
  with the material of the steps before it drawn. A machine with ``initial_busy_s`` > 0 is in the
  middle of a cycle on the oldest queued units of its station, taken before any other machine
  starts: a batch machine holds a build of up to ``batch_size`` of them, a unit machine the first
  unit of the lot at the head of the queue. That material was drawn before the fork; the held
  units finish when the time left ends, drawn per replication from the machine's cycle law given
  the time already done (:meth:`_Machine.time_left`). A machine under repair at the fork (``initial_repair_s``)
  first finishes the repair, then its held units if it holds any. With no queued units a busy
  machine makes nothing.
- **Replenishment:** (s, Q): whenever the inventory position (on hand + on order) is at or below s,
  Q is ordered; lead time is lognormal with the item's mean and standard deviation. A shipment in
  transit at the fork whose order time is known arrives after a lognormal lead time from then,
  drawn given that it has not arrived yet (so it may come early); otherwise about its ETA, the
  best estimate announced: normal around it (sd ``eta_sd_s``), never before the fork. See
  :class:`InTransit`.
- **Overflow:** an order arriving at a site whose backlog (open orders) is at or above a
  threshold is sent to another site, where it arrives after the transfer time.
"""

from __future__ import annotations

import math
import random
import zlib
from bisect import bisect_right, insort
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import cast

import simpy

from twin.errors import SimulationError

__all__ = [
    "DemandData",
    "Hazard",
    "InTransit",
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
_log = math.log
_STD_NORMAL = NormalDist()


@dataclass(frozen=True, slots=True, kw_only=True)
class Hazard:
    """A failure hazard per running second, piecewise constant in steps of ``step_s`` of running time.

    ``now[k]`` is the hazard over running time ``[k step, (k + 1) step)`` after the fork (the machine's
    wear at the fork, growing), ``renewed[k]`` the same after a repair or maintenance; beyond the
    last step the last value holds.

    >>> h = Hazard(step_s=10.0, now=(0.0, 0.1), renewed=(0.1,))
    >>> h.time_to_failure(h.now, 0.5), h.time_to_failure(h.renewed, 0.5)
    (15.0, 5.0)
    """

    step_s: float
    now: tuple[float, ...]
    renewed: tuple[float, ...]

    def time_to_failure(self, rates: tuple[float, ...], e: float) -> float:
        """The running time at which the cumulative hazard of ``rates`` reaches ``e`` (an Exp(1) draw)."""
        step = self.step_s
        t = 0.0
        rate = 0.0
        for rate in rates:
            seg = rate * step
            if e < seg:
                return t + e / rate
            e -= seg
            t += step
        return t + e / rate if rate > 0 else INF


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
    initial_busy_s: float = 0.0  # remaining time of the cycle running at the fork, on the oldest queued units
    initial_repair_s: float = 0.0  # remaining repair or maintenance at the fork
    hazard: Hazard | None = None  # a condition hazard (None: the constant hazard 1 / mtbf_s)
    renewals_s: tuple[float, ...] = ()  # planned maintenance starts, ascending: the wear is reset there


@dataclass(frozen=True, slots=True, kw_only=True)
class InTransit:
    """A shipment on its way at the fork.

    With ``ordered_s`` (when it was ordered, <= 0) and a lead time (``lead_mean_s``/``lead_sd_s``)
    it arrives at ``ordered_s`` + a lognormal lead time drawn given that it has not arrived by the
    fork (it may come before its ETA); otherwise at ``eta_s`` plus a normal error of sd
    ``eta_sd_s`` (an announced ETA is the best estimate, its median: as likely early as late;
    not before the fork). Then ``extra_delay_s`` later (a scenario's delay).
    """

    eta_s: float
    qty: float
    eta_sd_s: float = 0.0
    extra_delay_s: float = 0.0
    ordered_s: float | None = None
    lead_mean_s: float = 0.0
    lead_sd_s: float = 0.0


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
    consumption: float = 1.0  # real use per unit at this site = bill of materials x this (1.0: as designed)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductData:
    """A product family: routing roles, bill of materials per unit and the step drawing each line."""

    id: str
    routing: tuple[str, ...]
    bom: tuple[tuple[str, float], ...] = ()
    bom_steps: tuple[int, ...] = ()  # routing step drawing each bom line (``twin.spec.consuming_step``); () = step 0
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
    """An open order at the fork; ``created_s``/``due_s`` relative to the fork (created <= 0).

    ``qty`` units (the remaining ones, not through the whole routing) are queued at routing step
    ``step``, or, when ``queued`` is given (one count per routing step, summing to ``qty``), that
    many at each step; a unit at a step has drawn the material of the steps before it.
    """

    id: str
    site: str
    product: str
    qty: int
    created_s: float
    due_s: float
    step: int = 0
    queued: tuple[int, ...] = ()


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

    Series are per bin: ``throughput`` units through the whole routing in the bin; ``backlog`` open
    orders and ``wip`` units released to the floor and not through, at the bin's end; ``stock`` on hand at
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
    machine_failures: dict[str, int] = field(default_factory=dict)  # failures in the run, keyed "site/machine"


def _neg_rank(m: _Machine) -> int:
    return -m.rank


def stream_seed(seed: int, replication: int, name: str) -> int:
    """A stable seed for the random stream ``name`` of one replication (common random numbers).

    Streams are keyed by name, so adding a machine in a scenario leaves every other stream as in
    the baseline.
    """
    return (seed * 1_000_003 + replication) * 4_294_967_311 + zlib.crc32(name.encode())


class _Site:
    """Counters and per-bin series of one site (attributes, not dicts keyed by site, in the hot path)."""

    __slots__ = (
        "backlog", "busy_bins", "id", "late", "lead_sum", "on_time", "open_n", "orders_done",
        "overflow", "sys_area", "sys_last", "throughput", "units_done", "wip", "wip_bins",
    )

    def __init__(self, sid: str, n_bins: int) -> None:
        self.id = sid
        self.open_n = 0
        self.wip = 0
        self.sys_area = 0.0
        self.sys_last = 0.0
        self.orders_done = 0
        self.units_done = 0
        self.on_time = 0
        self.late = 0
        self.lead_sum = 0.0
        self.overflow: OverflowData | None = None
        self.throughput = [0.0] * n_bins
        self.busy_bins = [0.0] * n_bins
        self.backlog = [0.0] * n_bins
        self.wip_bins = [0.0] * n_bins


Draws = tuple[tuple[tuple[str, str], float], ...]  # ((site, sku), per unit) drawn at one step


class _Lot:
    """Units of one order at one routing step that move on together.

    An order enters the floor as one lot (the order itself); a job or build that takes only part of
    a lot makes a new lot of the units it took, which goes on when they are done. In a queue ``n``
    is the lot's units not started yet.
    """

    __slots__ = ("draws", "n", "order", "path", "step")
    order: _Order
    path: tuple[_Station, ...]
    draws: tuple[Draws, ...]
    step: int
    n: int

    def __init__(self, order: _Order, step: int, n: int) -> None:
        self.order = order
        self.path = order.path
        self.draws = order.draws
        self.step = step
        self.n = n


class _Order(_Lot):
    __slots__ = ("at", "created", "done", "due", "id", "left", "product", "qty")

    def __init__(
        self, oid: str, at: _Site, product: _Product, qty: int, created: float, due: float,
        route: tuple[tuple[_Station, ...], tuple[Draws, ...]],
    ) -> None:
        self.order = self
        self.path, self.draws = route  # the stations of the routing, the stocked material each step draws (or ())
        self.step = 0
        self.n = qty
        self.id = oid
        self.at = at
        self.product = product
        self.qty = qty
        self.created = created
        self.due = due
        self.done = INF
        self.left = qty  # units not through the whole routing yet


class _Product:
    __slots__ = ("batch_max", "batch_min", "bom", "due_s", "id", "routing", "steps")

    def __init__(self, p: ProductData) -> None:
        self.id = p.id
        self.routing = p.routing
        self.bom = p.bom
        if p.bom_steps and len(p.bom_steps) != len(p.bom):
            raise SimulationError(
                f"product {p.id!r}: bom_steps needs one step per bom line ({len(p.bom)}) (got {p.bom_steps!r})"
            )
        steps = p.bom_steps or (0,) * len(p.bom)
        bad = [k for k in steps if not 0 <= k < max(1, len(p.routing))]
        if bad:
            raise SimulationError(f"product {p.id!r}: bom_steps must index its routing {p.routing!r} (got {bad!r})")
        self.steps = steps
        self.batch_min = p.batch_min
        self.batch_max = p.batch_max
        self.due_s = p.due_s


class _Station:
    __slots__ = (
        "busy", "enq", "idle", "last", "made", "pooled", "q_area", "queue", "role", "servers", "site", "w_n", "w_sum",
    )

    def __init__(self, site: str, role: str) -> None:
        self.site = site
        self.role = role
        self.queue: deque[_Lot] = deque()
        self.enq: deque[float] = deque()
        self.idle: list[_Machine] = []
        self.servers = 0
        self.made = 0  # machines built so far (each one's rank)
        self.pooled = False  # a batch station: its machines run builds filled from the queue
        self.q_area = 0.0
        self.last = 0.0
        self.w_sum = 0.0
        self.w_n = 0
        self.busy = 0.0


class _Machine:
    """One machine as a small state machine driven by timeout callbacks (no generator process).

    idle (in its station's ``idle`` list) -> running a job (``on_done`` or ``on_fail`` pending) ->
    under repair (``on_repaired`` pending) -> running again ...; outside its availability windows
    it sleeps (``on_wake`` pending at the next window's start) and is in no list.
    """

    __slots__ = (
        "batch", "build", "busy", "busy_bins", "cv", "cycle_random", "down", "env", "expo_rate", "fail_rate",
        "failures", "hazard", "held", "log_ok", "lot", "mean", "mid", "mttr", "on_done", "on_fail", "on_repaired",
        "on_wake", "open_until", "p_scrap", "plain", "pooled", "rank", "remake", "renew_at", "renewals", "repair",
        "rng_cycle", "rng_fail", "rng_scrap", "run", "scale", "shape", "st", "starts", "t0", "timeout", "ttf",
        "windows", "work",
    )

    def __init__(self, run: _Run, m: MachineData, st: _Station, busy_bins: list[float]) -> None:
        self.run = run
        self.env = run.env
        self.timeout = run.env.timeout
        self.st = st
        self.busy_bins = busy_bins
        self.mid = mid = f"{m.site}/{m.id}"
        self.rng_cycle = run.rng(f"cycle:{mid}")
        self.cycle_random = self.rng_cycle.random
        self.rng_fail = run.rng(f"fail:{mid}")
        self.rng_scrap = run.rng(f"scrap:{mid}")
        self.windows = m.windows
        self.starts = [w[0] for w in m.windows] if m.windows is not None else []
        self.open_until = -1.0  # end of the availability window known to contain now (a cache)
        if not 0.0 <= m.scrap_rate < 1.0:
            raise SimulationError(f"machine {mid!r}: scrap_rate must be in [0, 1) (got {m.scrap_rate!r})")
        self.mean, self.cv, self.batch, self.p_scrap = m.cycle_mean_s, m.cycle_cv, m.batch_size, m.scrap_rate
        self.log_ok = math.log(1.0 - m.scrap_rate) if 0 < m.scrap_rate < 1 else 0.0
        self.shape = 1.0 / (m.cycle_cv * m.cycle_cv) if m.cycle_cv > 0 else 0.0
        self.scale = m.cycle_mean_s * m.cycle_cv * m.cycle_cv
        # cv 1: exponential, drawn with expovariate
        self.expo_rate = 1.0 / m.cycle_mean_s if m.cycle_cv == 1.0 and m.cycle_mean_s > 0 else 0.0
        self.fail_rate = 1.0 / m.mtbf_s if m.mtbf_s < INF else 0.0
        self.hazard = hazard = m.hazard
        if hazard is not None:  # one Exp(1) draw, as expovariate takes: the same stream
            curve = hazard.renewed if m.initial_repair_s > 0 else hazard.now
            self.ttf = hazard.time_to_failure(curve, self.rng_fail.expovariate(1.0))
        else:
            self.ttf = self.rng_fail.expovariate(self.fail_rate) if self.fail_rate > 0 else INF
        self.renewals = list(m.renewals_s)
        self.renew_at = self.renewals[0] if self.renewals else INF  # the next maintenance start
        self.failures = 0
        self.mttr = m.mttr_s
        self.busy = 0.0
        self.down = 0.0
        self.repair = 0.0
        self.lot: _Lot | None = None  # a unit machine's job: the lot it makes
        self.held = False  # busy at the fork (see ``hold``)
        self.plain = m.scrap_rate == 0 and m.windows is None  # begin's fast path applies
        self.pooled = st.pooled
        self.build: list[_Lot] = []  # a batch machine's build: the lots of good units it makes
        self.remake: list[_Lot] = []  # and the scrapped ones, back to the queue when it ends
        self.rank = st.made  # its place at the station (configuration order): free machines take work in it
        st.made += 1
        self.work = 0.0
        self.t0 = 0.0
        # bound once: appending a callback then allocates nothing
        self.on_done = self._done_build if st.pooled else self._done
        self.on_fail = self._fail
        self.on_repaired = self._repaired
        self.on_wake = self._wake

    def hold(self, busy_s: float) -> None:
        """At the fork: the cycle in progress (``busy_s`` left) holds the oldest queued units of the station.

        Their material was drawn before the fork. A batch machine holds a build of up to ``batch``
        slots, of orders created before the build started (one mean cycle before it ends); a unit
        machine the first unit of the lot at the head of the queue (one piece: the others wait for
        the next free machine). A scrapped unit is made again on the spot, drawing its material
        again.
        """
        self.held = True
        busy_s = self.time_left(busy_s)
        self.work = busy_s
        if self.pooled:  # the build started a cycle before it ends (as the fork computed the time left)
            self.fill(0.0, False, busy_s - self.mean + 1.0)
            return
        queue = self.st.queue
        if not queue:
            return
        lot = queue[0]
        attempts = self.take(lot, 0.0, 1)
        rest = self.job_time(attempts - 1)
        self.work = busy_s + rest
        draws = lot.draws[lot.step] if lot.draws else ()
        if attempts > 1 and draws:  # the re-makes start one after another
            self.run.defer(draws, [busy_s + rest * j / (attempts - 1) for j in range(attempts - 1)])
        if self.lot is lot:
            self.leave_queue(0.0)

    def start(self, m: MachineData) -> None:
        """Begin the run: a repair in progress first, then the held units, or else the queue."""
        if m.initial_repair_s > 0:  # memoryless: the time left is exponential with the mean given
            self.repair = self.rng_fail.expovariate(1.0 / m.initial_repair_s)
            self.timeout(self.repair).callbacks.append(self._initial_repaired)
        elif self.held:
            self.resume(0.0)
        else:
            self.next_job(0.0)

    def _initial_repaired(self, ev: simpy.Event) -> None:
        self.down += self.repair
        self.passed(self.env.now)
        if self.held:
            self.resume(self.env.now)
        else:
            self.next_job(self.env.now)

    def resume(self, now: float) -> None:
        """Run the held job (``work`` seconds left) from ``now``."""
        self.t0 = now
        if self.work >= self.ttf:
            self.timeout(self.ttf).callbacks.append(self.on_fail)
        else:
            self.timeout(self.work).callbacks.append(self.on_done)

    def passed(self, now: float) -> None:
        """Drop the maintenances started by ``now`` (a repair renewed the machine anyway)."""
        renewals = self.renewals
        while renewals and renewals[0] <= now:
            renewals.pop(0)
        self.renew_at = renewals[0] if renewals else INF

    def renew(self, now: float) -> None:
        """A maintenance started by ``now``: the wear is reset before the machine's next job."""
        self.passed(now)
        hazard = self.hazard
        if hazard is not None:
            self.ttf = hazard.time_to_failure(hazard.renewed, self.rng_fail.expovariate(1.0))

    def in_window(self, now: float) -> bool:
        """Whether ``now`` is inside an availability window; if not, sleep until the next one (if any)."""
        windows = self.windows
        assert windows is not None
        i = bisect_right(self.starts, now) - 1
        if i < 0 or now >= windows[i][1]:
            if i + 1 < len(windows):
                self.timeout(windows[i + 1][0] - now).callbacks.append(self.on_wake)
            return False
        self.open_until = windows[i][1]
        return True

    def _wake(self, ev: simpy.Event) -> None:
        self.next_job(self.env.now)

    def next_job(self, now: float) -> bool:
        """Take the next job of the station's queue, or wait in its idle list; whether a job started."""
        if self.windows is not None and not now < self.open_until and not self.in_window(now):
            return False
        if self.pooled:
            return self.start_build(now)
        st = self.st
        queue = st.queue
        if queue:
            lot = queue[0]
            if self.begin(lot, now):
                if self.lot is lot:  # its last unit started: it leaves the queue (leave_queue, inlined)
                    queue.popleft()
                    t_enq = st.enq.popleft()
                    st.q_area += (len(queue) + 1) * (now - st.last)
                    st.last = now
                    st.w_sum += now - t_enq
                    st.w_n += 1
                return True
        self.park()
        return False

    def park(self) -> None:
        """Wait in the station's idle list, kept so that ``pop()`` gives the first free machine in configuration order.

        (The plant gives work to its free machines in that order.)
        """
        idle = self.st.idle
        if idle and idle[-1].rank < self.rank:
            insort(idle, self, key=_neg_rank)
        else:
            idle.append(self)

    def leave_queue(self, now: float) -> None:
        """The lot at the head of the queue started its last unit: its wait ends."""
        st = self.st
        queue = st.queue
        queue.popleft()
        t_enq = st.enq.popleft()
        st.q_area += (len(queue) + 1) * (now - st.last)
        st.last = now
        st.w_sum += now - t_enq
        st.w_n += 1

    def attempts(self, need: int, room: float) -> tuple[int, int]:
        """(good units, attempts) making up to ``need`` good units in at most ``room`` attempts.

        Bernoulli trials with the scrap rate: jump from scrapped attempt to scrapped attempt with
        geometric runs of good ones (one draw per scrapped part, not one per part).
        """
        rnd = self.rng_scrap.random
        log_ok = self.log_ok
        good = scrap = 0
        while room > 0 and need > 0:
            run = int(math.log(1.0 - rnd()) / log_ok)
            if run >= need or run >= room:
                good += need if need < room else int(room)
                break
            good += run
            need -= run
            room -= run + 1
            scrap += 1
        return good, good + scrap

    def take(self, lot: _Lot, now: float, free: int = 0) -> int:
        """Start a job of one unit of ``lot`` at this unit machine, re-made on the spot while scrapped.

        ``free`` attempts need no material (drawn before the fork); the others draw theirs, as many
        as the stock covers. Returns the attempts started (0: the material is short) and sets the
        job's lot: ``lot`` itself when it was its last unit, else a new lot of that one unit (None
        if every attempt was scrapped and the material ran out: the unit stays at the head).
        """
        draws = lot.draws[lot.step] if lot.draws else ()
        run = self.run
        room: float = INF
        if draws:
            room = run.coverable(draws) + free
            if room == 0:
                run.short(self.st, draws, now)
                return 0
        if self.p_scrap > 0:
            good, attempts = self.attempts(1, room)
        else:
            good = attempts = 1
        if draws:
            if attempts > free:
                run.draw(draws, attempts - free)
            if not good:
                run.short(self.st, draws, now)
        if not good:
            self.lot = None
        elif lot.n == 1:
            self.lot = lot
        else:
            lot.n -= 1
            self.lot = _Lot(lot.order, lot.step, 1)
        return attempts

    def time_left(self, busy_s: float) -> float:
        """The time left of the cycle in progress at the fork, drawn: ``busy_s`` is its estimate.

        The cycle started ``mean - busy_s`` ago (as the fork computed it); its length is one draw of
        the machine's cycle law given that it is longer than that (rejection, a few tries), so the
        replications spread its end as the plant's cycles spread. Deterministic cycles keep ``busy_s``.
        """
        if self.shape == 0.0 or busy_s <= 0.0:
            return busy_s
        elapsed = self.mean - busy_s
        if elapsed <= 0.0:
            return self.job_time(1)
        for _ in range(8):
            length = self.job_time(1)
            if length > elapsed:
                return length - elapsed
        return busy_s

    def job_time(self, cycles: int) -> float:
        """The time of ``cycles`` cycles: one gamma draw for their sum."""
        if cycles <= 0:
            return 0.0
        shape = self.shape
        if shape == 0.0:
            return self.mean * cycles
        if self.expo_rate and cycles == 1:
            return self.rng_cycle.expovariate(self.expo_rate)
        return self.rng_cycle.gammavariate(shape * cycles, self.scale)

    def begin(self, lot: _Lot, now: float) -> bool:
        """Start a job of one unit of ``lot`` (a unit machine: one-piece flow); False when its material is short.

        The rest of the lot stays at the head of the queue for the next free machine of the
        station, and the unit goes on to its next step as soon as it is done.
        """
        if not self.plain or lot.draws:
            return self.begin_any(lot, now)
        # the common case, inlined: no scrap, no windows, no material drawn on the route: one unit
        if lot.n == 1:
            self.lot = lot
        else:
            lot.n -= 1
            self.lot = _Lot(lot.order, lot.step, 1)
        shape = self.shape
        if shape == 0.0:
            work = self.mean
        elif self.expo_rate:  # expovariate, inlined (the same numbers)
            work = -_log(1.0 - self.cycle_random()) / self.expo_rate
        else:
            work = self.rng_cycle.gammavariate(shape, self.scale)
        self.t0 = now
        self.work = work
        if work >= self.ttf:
            self.timeout(self.ttf).callbacks.append(self.on_fail)
        else:
            self.timeout(work).callbacks.append(self.on_done)
        return True

    def begin_any(self, lot: _Lot, now: float) -> bool:
        """:meth:`begin` with scrap, windows or material to draw (callers start a unit only inside a window)."""
        if now >= self.renew_at:
            self.renew(now)
        draws = lot.draws[lot.step] if lot.draws else ()
        if self.p_scrap > 0 or draws:
            cycles = self.take(lot, now)
            if cycles == 0:
                return False
        else:
            cycles = 1
            if lot.n == 1:
                self.lot = lot
            else:
                lot.n -= 1
                self.lot = _Lot(lot.order, lot.step, 1)
        work = self.job_time(cycles)
        if cycles > 1 and draws:  # a scrapped unit's re-make j starts at about now + work j / cycles
            self.run.defer(draws, [now + work * j / cycles for j in range(1, cycles)])
        self.t0 = now
        self.work = work
        if work >= self.ttf:
            self.timeout(self.ttf).callbacks.append(self.on_fail)
        else:
            self.timeout(work).callbacks.append(self.on_done)
        return True

    def scrapped(self, n: int) -> int:
        """How many of ``n`` parts are scrapped (binomial, by geometric runs of good ones: a draw per scrapped part)."""
        rnd = self.rng_scrap.random
        log_ok = self.log_ok
        scrap = 0
        while n > 0:
            run = int(math.log(1.0 - rnd()) / log_ok)  # good parts before the next scrapped one
            if run >= n:
                break
            scrap += 1
            n -= run + 1
        return scrap

    def fill(self, now: float, draw: bool = True, before: float = INF) -> int:
        """Fill a build with the queued units, FCFS, up to ``batch`` slots and the material; the slots used.

        Each slot draws its material (unless ``draw`` is False: the build in progress at the fork).
        A unit whose material is short stops the filling (first come first served): the units
        behind it wait too. Which parts of the build are scrapped is drawn here; they go back to
        the front of the queue when the build ends (``remake``), as in the plant. Only units of
        orders created at or before ``before`` are taken (the build in progress at the fork started
        then: later orders were not there yet).
        """
        st = self.st
        queue = st.queue
        run = self.run
        slots = self.batch
        build = self.build
        p_scrap = self.p_scrap
        while queue and slots > 0:
            lot = queue[0]
            if lot.order.created > before:
                break
            need = lot.n
            draws = lot.draws[lot.step] if draw and lot.draws else ()
            room = slots
            if draws:
                avail = run.coverable(draws)
                if avail < room:
                    room = avail
                if room == 0:
                    run.short(st, draws, now)
                    break
            used = need if need < room else room
            slots -= used
            if draws:
                run.draw(draws, used)
            scrap = self.scrapped(used) if p_scrap > 0 else 0
            good = used - scrap
            if used == need:  # its last unit started: it leaves the queue
                self.leave_queue(now)
                if not scrap:
                    build.append(lot)
                    continue
                if good:
                    lot.n = good
                    build.append(lot)
                    self.remake.append(_Lot(lot.order, lot.step, scrap))
                else:
                    self.remake.append(lot)
                continue
            lot.n = need - used
            if good:
                build.append(_Lot(lot.order, lot.step, good))
            if scrap:
                self.remake.append(_Lot(lot.order, lot.step, scrap))
            if room < slots + used:  # the material ran out before the slots: the head waits
                run.short(st, draws, now)
                break
        return self.batch - slots

    def start_build(self, now: float) -> bool:
        """Start a build with the queued units; idle if nothing can start. Whether a build started."""
        if not self.st.queue or self.fill(now) == 0:
            self.park()
            return False
        if now >= self.renew_at:
            self.renew(now)
        shape = self.shape
        if shape == 0.0:
            work = self.mean
        elif self.expo_rate:
            work = self.rng_cycle.expovariate(self.expo_rate)
        else:
            work = self.rng_cycle.gammavariate(shape, self.scale)
        self.t0 = now
        self.work = work
        if work >= self.ttf:
            self.timeout(self.ttf).callbacks.append(self.on_fail)
        else:
            self.timeout(work).callbacks.append(self.on_done)
        return True

    def _fail(self, ev: simpy.Event) -> None:
        now = self.env.now
        ttf = self.ttf
        self.work -= ttf
        self.busy += ttf
        self.st.busy += now - self.t0
        self.run.add_busy(self.busy_bins, self.t0, now)
        self.failures += 1
        self.repair = repair = self.rng_fail.expovariate(1.0 / self.mttr) if self.mttr > 0 else 0.0
        self.timeout(repair).callbacks.append(self.on_repaired)

    def _repaired(self, ev: simpy.Event) -> None:
        self.down += self.repair
        hazard = self.hazard
        if hazard is not None:  # the repair reset the wear (and stands for the maintenances due meanwhile)
            self.passed(self.env.now)
            self.ttf = ttf = hazard.time_to_failure(hazard.renewed, self.rng_fail.expovariate(1.0))
        else:
            self.ttf = ttf = self.rng_fail.expovariate(self.fail_rate)
        self.t0 = self.env.now
        if self.work >= ttf:
            self.timeout(ttf).callbacks.append(self.on_fail)
        else:
            self.timeout(self.work).callbacks.append(self.on_done)

    def _done(self, ev: simpy.Event) -> None:
        now = self.env.now
        work = self.work
        t0 = self.t0
        self.ttf -= work
        self.busy += work
        self.st.busy += now - t0
        run = self.run
        size = run.bin_s
        b = int(t0 / size)
        if b < run.n_bins and now <= (b + 1) * size:  # within one bin: add_busy's common case, inlined
            self.busy_bins[b] += now - t0
        else:
            run.add_busy(self.busy_bins, t0, now)
        lot = self.lot
        if lot is not None:  # (None: busy at the fork with nothing queued, or every attempt scrapped)
            self.lot = None
            lot.step += 1
            if lot.step < len(lot.path):
                run.to_station(lot, now)
            else:
                run.finish(lot, now)
        if self.windows is None and not self.st.queue:  # next_job's common case, inlined
            idle = self.st.idle
            if idle and idle[-1].rank < self.rank:
                self.park()
            else:
                idle.append(self)
        else:
            self.next_job(now)

    def _done_build(self, ev: simpy.Event) -> None:
        now = self.env.now
        work = self.work
        self.ttf -= work
        self.busy += work
        self.st.busy += now - self.t0
        run = self.run
        run.add_busy(self.busy_bins, self.t0, now)
        remake = self.remake
        if remake:  # the scrapped parts go to the front of the queue, in their order, for the next build
            st = self.st
            queue = st.queue
            st.q_area += len(queue) * (now - st.last)
            st.last = now
            for lot in reversed(remake):
                queue.appendleft(lot)
                st.enq.appendleft(now)
        # each lot goes on as soon as its build is done; at a batch station the whole build joins
        # the queue before a free machine starts a build there (as the plant does: one build of
        # the arriving units, not one per order of them)
        onward: list[_Station] = []
        for lot in self.build:
            lot.step += 1
            if lot.step < len(lot.path):
                nxt = lot.path[lot.step]
                if nxt.pooled:
                    run.enqueue(nxt, lot, now)
                    if nxt not in onward:
                        onward.append(nxt)
                else:
                    run.to_station(lot, now)
            else:
                run.finish(lot, now)
        self.build.clear()
        for nxt in onward:
            run.start_builds(nxt, now)
        if remake:  # every free machine of the station may take them, this one first
            remake.clear()
            self.park()
            run.kick(self.st, now)
        else:
            self.next_job(now)


class _Source:
    """Order arrivals of one (site, product): a self-rescheduling timeout, no generator process."""

    __slots__ = ("at", "end", "env", "horizon", "i", "n", "on_arrival", "product", "random", "rate", "rates", "rng",
                 "rng_qty", "route", "run", "starts", "t")

    def __init__(self, run: _Run, d: DemandData) -> None:
        self.run = run
        self.env = run.env
        self.at = run.sites[d.site]
        self.product = run.products[d.product]
        self.route = run.route(d.site, self.product)
        self.rng = run.rng(f"demand:{d.site}:{d.product}")
        self.random = self.rng.random
        self.rng_qty = run.rng(f"qty:{d.site}:{d.product}")
        self.starts, self.rates = d.starts_s, d.rates_per_s
        self.n = len(d.starts_s)
        self.horizon = run.data.horizon_s
        self.i = 0
        self.t = 0.0
        self.rate = d.rates_per_s[0]  # the current piece's rate and end
        self.end = d.starts_s[1] if self.n > 1 else self.horizon
        self.on_arrival = self._arrive

    def schedule(self, now: float, need: float | None = None) -> None:
        """Schedule the next arrival by inverting the cumulative rate.

        One Exp(1) (``need``, drawn here when not given) is spent across the piecewise-constant
        rate from the last arrival on.
        """
        if need is None:
            need = self.rng.expovariate(1.0)
        t = self.t
        rate = self.rate
        if rate > 0 and t + need / rate <= self.end:  # within the current piece: the common case
            t += need / rate
            self.t = t
            if t < self.horizon:
                self.env.timeout(t - now).callbacks.append(self.on_arrival)
            return
        starts, rates, n, horizon = self.starts, self.rates, self.n, self.horizon
        i = self.i
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
        self.i, self.t = i, t
        self.rate = rates[i]
        self.end = starts[i + 1] if i + 1 < n else horizon
        if t >= horizon:
            return
        self.env.timeout(t - now).callbacks.append(self.on_arrival)

    def _arrive(self, ev: simpy.Event) -> None:
        now = self.env.now
        self.run.new_order(self.at, self.product, self.rng_qty, self.route, now)
        # schedule(now), its common case inlined: the next arrival within the current piece
        need = -_log(1.0 - self.random())  # rng.expovariate(1.0), inlined (the same numbers)
        rate = self.rate
        t = self.t
        if rate > 0 and t + need / rate <= self.end:
            t += need / rate
            self.t = t
            if t < self.horizon:
                self.env.timeout(t - now).callbacks.append(self.on_arrival)
        else:
            self.schedule(now, need)


class _Run:
    """The mutable state of one replication (private to :func:`simulate`).

    Everything is driven by timeout callbacks (machines, order sources, deliveries): no generator
    processes. Backlog, WIP and stock per bin are recorded lazily: before a change of any of them,
    every bin that has ended is closed with the state at its end (bins are (start, end]).
    """

    def __init__(self, data: ModelData, seed: int, replication: int, env: simpy.Environment) -> None:
        self.data = data
        self.env = env
        self.seed = seed
        self.rep = replication
        self.n_bins = data.n_bins
        self.bin_s = data.bin_s
        self.horizon_s = data.horizon_s
        self.products = {p.id: _Product(p) for p in data.products}
        self.stations: dict[tuple[str, str], _Station] = {}
        for m in data.machines:
            st = self.stations.get((m.site, m.role))
            if st is None:
                st = self.stations[(m.site, m.role)] = _Station(m.site, m.role)
            st.servers += 1
            if m.batch_size > 1:
                st.pooled = True
        self.sites = {s: _Site(s, self.n_bins) for s in data.sites}
        self.routes: dict[tuple[str, str], tuple[tuple[_Station, ...], tuple[Draws, ...]]] = {}
        self.stock: dict[tuple[str, str], float] = {(i.site, i.sku): i.on_hand for i in data.items}
        self.on_order: dict[tuple[str, str], float] = {(i.site, i.sku): 0.0 for i in data.items}
        self.items = {(i.site, i.sku): i for i in data.items}
        for o in data.overflow:
            self.sites[o.from_site].overflow = o
        self.stock_bins = {k: [0.0] * self.n_bins for k in self.stock}
        self.bin_i = 0  # the first bin not closed yet
        self.edge = min(self.bin_s, data.horizon_s)  # its end
        self.stockout = dict.fromkeys(self.stock, INF)
        self.waiting: dict[tuple[str, str], list[_Station]] = {}  # stations whose head waits for a SKU
        # per SKU (attempt start time, qty): material a unit job drew at its start for the re-makes of a
        # scrapped unit; the stock series shows it on hand until each attempt starts
        self.deferred: dict[tuple[str, str], list[tuple[float, float]]] = {}
        self.open_orders: list[_Order] = []
        self.machines: list[_Machine] = []
        self.pending: list[_Order] = []  # every order created, to count late ones at the end
        self.rng_supply = self.rng("supply")

    def rng(self, name: str) -> random.Random:
        return random.Random(stream_seed(self.seed, self.rep, name))

    def route(self, site: str, product: _Product) -> tuple[tuple[_Station, ...], tuple[Draws, ...]]:
        """The stations of ``product``'s routing at ``site`` and the stocked material each step draws per unit.

        A role the site lacks gets an empty station (its orders wait forever).
        """
        key = (site, product.id)
        route = self.routes.get(key)
        if route is None:
            stations = []
            for role in product.routing:
                st = self.stations.get((site, role))
                if st is None:
                    st = self.stations[(site, role)] = _Station(site, role)
                stations.append(st)
            draws = tuple(
                tuple(((site, sku), per_unit * self.items[(site, sku)].consumption)
                      for (sku, per_unit), k in zip(product.bom, product.steps, strict=True)
                      if k == step and per_unit > 0 and (site, sku) in self.items)
                for step in range(len(stations))
            )
            route = self.routes[key] = (tuple(stations), draws if any(draws) else ())  # (): nothing drawn
        return route

    # --- bins ---------------------------------------------------------------------------------
    def close_bins(self, now: float) -> None:
        """Record backlog, WIP and stock at the end of every bin that ended before ``now``."""
        b, n = self.bin_i, self.n_bins
        sites = self.sites.values()
        while b < n and now > self.edge:
            for s in sites:
                s.backlog[b] = s.open_n
                s.wip_bins[b] = s.wip
            deferred = self.deferred
            for key, level in self.stock.items():
                later = deferred.get(key)
                if later:  # drawn at the job's start for units that start after this bin's end
                    edge = self.edge
                    left = [(t, q) for t, q in later if t > edge]
                    level += sum(q for _, q in left)
                    deferred[key] = left
                self.stock_bins[key][b] = level
            b += 1
            self.edge = min((b + 1) * self.bin_s, self.data.horizon_s) if b < n else INF
        self.bin_i = b

    # --- orders -------------------------------------------------------------------------------
    def _system_change(self, at: _Site, delta: int, now: float) -> None:
        if now > self.edge:
            self.close_bins(now)
        at.sys_area += at.open_n * (now - at.sys_last)
        at.sys_last = now
        at.open_n += delta

    def new_order(
        self, at: _Site, product: _Product, rng: random.Random,
        route: tuple[tuple[_Station, ...], tuple[Draws, ...]], now: float,
    ) -> None:
        qty = product.batch_min if product.batch_max <= product.batch_min else rng.randint(
            product.batch_min, product.batch_max
        )
        order = _Order("", at, product, qty, now, now + product.due_s, route)
        if order.due <= self.horizon_s:
            self.pending.append(order)
        ov = at.overflow
        if ov is not None and at.open_n >= ov.threshold:
            to = self.sites[ov.to_site]
            order.at = to
            self._system_change(to, +1, now)
            ev = self.env.timeout(ov.transfer_s, order)
            ev.callbacks.append(self._arrive_transferred)
            return
        if now > self.edge:
            self.close_bins(now)
        at.sys_area += at.open_n * (now - at.sys_last)  # _system_change(at, +1, now), inlined
        at.sys_last = now
        at.open_n += 1
        at.wip += qty
        self.to_station(order, now)

    def _arrive_transferred(self, ev: simpy.Event) -> None:
        order = cast(_Order, ev.value)
        now = self.env.now
        if now > self.edge:
            self.close_bins(now)
        order.path, order.draws = self.route(order.at.id, order.product)
        order.at.wip += order.qty
        self.to_station(order, now)

    # --- material ---------------------------------------------------------------------------
    def coverable(self, draws: Draws) -> int:
        """How many units the stock on hand covers at a step drawing ``draws`` (0: short)."""
        stock = self.stock
        n = 1 << 62
        for key, per_unit in draws:
            c = int((stock[key] + 1e-9) / per_unit)
            if c < n:
                n = c
        return n if n > 0 else 0

    def defer(self, draws: Draws, starts: list[float]) -> None:
        """Show the material drawn for units starting at ``starts`` on hand until then (series only)."""
        deferred = self.deferred
        for key, per_unit in draws:
            later = deferred.setdefault(key, [])
            for t in starts:
                later.append((t, per_unit))

    def draw(self, draws: Draws, units: int) -> None:
        """Take the material of ``units`` attempts at a step from stock."""
        for key, per_unit in draws:
            self.consume(key, per_unit * units)

    def short(self, st: _Station, draws: Draws, now: float) -> None:
        """The head of ``st`` waits for material: the first such moment of a SKU is its stockout."""
        stock = self.stock
        for key, per_unit in draws:
            if stock[key] < per_unit - 1e-9:
                if self.stockout[key] == INF:
                    self.stockout[key] = now
                waiting = self.waiting.setdefault(key, [])
                if st not in waiting:
                    waiting.append(st)

    def consume(self, key: tuple[str, str], qty: float) -> None:
        item = self.items[key]
        now = self.env.now
        if now > self.edge:
            self.close_bins(now)
        self.stock[key] -= qty
        if self.stock[key] < -1e-9 and self.stockout[key] == INF:
            self.stockout[key] = now
        if item.reorder_qty > 0:
            while self.stock[key] + self.on_order[key] <= item.reorder_point + 1e-9:
                self.on_order[key] += item.reorder_qty
                lead = _lognormal(self.rng_supply, item.lead_mean_s, item.lead_sd_s)
                ev = self.env.timeout(lead, (key, item.reorder_qty, True))
                ev.callbacks.append(self._receive)

    def _receive(self, ev: simpy.Event) -> None:
        key, qty, ordered = cast(tuple[tuple[str, str], float, bool], ev.value)
        now = self.env.now
        if now > self.edge:
            self.close_bins(now)
        self.stock[key] += qty
        if ordered:
            self.on_order[key] -= qty
        for st in self.waiting.pop(key, ()):
            self.kick(st, now)

    def kick(self, st: _Station, now: float) -> None:
        """Material arrived: the idle machines of ``st`` try the head of its queue again."""
        idle = st.idle
        while idle and st.queue:
            m = idle.pop()
            if (m.windows is None or now < m.open_until or m.in_window(now)) and not m.next_job(now):
                break  # still short: m is idle again

    @staticmethod
    def enqueue(st: _Station, lot: _Lot, now: float) -> None:
        """Queue ``lot`` at the batch station ``st`` (no build starts: see ``start_builds``)."""
        st.q_area += len(st.queue) * (now - st.last)
        st.last = now
        st.queue.append(lot)
        st.enq.append(now)

    @staticmethod
    def start_builds(st: _Station, now: float) -> None:
        """The free machines of the batch station ``st`` start builds with its queue, first free first."""
        idle = st.idle
        queue = st.queue
        while idle and queue:
            m = idle.pop()
            if (m.windows is None or now < m.open_until or m.in_window(now)) and not m.start_build(now):
                break  # the head waits for material: m is idle again

    def to_station(self, lot: _Lot, now: float) -> None:
        path = lot.path
        step = lot.step
        if step >= len(path):
            self.finish(lot, now)
            return
        st = path[step]
        idle = st.idle
        queue = st.queue
        if st.pooled:
            self.enqueue(st, lot, now)
            self.start_builds(st, now)
            return
        if not queue:  # (a queue with idle machines beside it waits for material: join it)
            while idle:
                m = idle.pop()
                # a machine whose window closed while it was idle goes to sleep until its next one
                if m.windows is None or now < m.open_until or m.in_window(now):
                    if not m.begin(lot, now):
                        idle.append(m)
                        break  # short of material: the lot queues
                    if m.lot is lot:
                        st.w_n += 1
                        return
                    # part of the lot started (the window closes, or the material ran out): the next
                    # idle machine tries the rest
        st.q_area += len(queue) * (now - st.last)
        st.last = now
        queue.append(lot)
        st.enq.append(now)

    def finish(self, lot: _Lot, now: float) -> None:
        """``lot``'s units are through the whole routing (output); its order is done with its last unit."""
        order = lot.order
        at = order.at
        if now > self.edge:
            self.close_bins(now)
        n = lot.n
        at.wip -= n
        at.units_done += n
        # the bins ending before now are closed (above): the first open one holds now, (start, end]
        b = self.bin_i
        at.throughput[b if b < self.n_bins else self.n_bins - 1] += n
        order.left -= n
        if order.left > 0:
            return
        order.done = now
        at.sys_area += at.open_n * (now - at.sys_last)  # _system_change(at, -1, now), inlined
        at.sys_last = now
        at.open_n -= 1
        at.orders_done += 1
        at.lead_sum += now - order.created
        if now <= order.due + 1e-9:
            at.on_time += 1
        else:
            at.late += 1

    def add_busy(self, bins: list[float], t0: float, t1: float) -> None:
        size = self.bin_s
        b = int(t0 / size)
        last = self.n_bins - 1
        if b <= last and t1 <= (b + 1) * size:  # within one bin: the common case
            bins[b] += t1 - t0
            return
        while t0 < t1 and b <= last:
            edge = (b + 1) * size
            upto = t1 if t1 < edge else edge
            bins[b] += upto - t0
            t0 = upto
            b += 1

    # --- set-up and results ---------------------------------------------------------------------
    def start(self) -> None:
        env = self.env
        for o in self.data.orders:
            product = self.products.get(o.product)
            if product is None:
                continue
            if not 0 <= o.step < max(1, len(product.routing)):
                raise SimulationError(
                    f"open order {o.id!r}: step must index the routing {product.routing!r} of {o.product!r} "
                    f"(got {o.step!r})"
                )
            queued = o.queued or (0,) * o.step + (o.qty,)
            if o.queued and (len(o.queued) != len(product.routing) or min(o.queued) < 0 or sum(o.queued) != o.qty):
                raise SimulationError(
                    f"open order {o.id!r}: queued needs a count >= 0 per routing step of {o.product!r} "
                    f"({len(product.routing)}) summing to qty {o.qty} (got {o.queued!r})"
                )
            at = self.sites[o.site]
            order = _Order(o.id, at, product, o.qty, o.created_s, o.due_s, self.route(o.site, product))
            self.open_orders.append(order)
            self.pending.append(order)
            self._system_change(at, +1, 0.0)
            at.wip += o.qty
            lot: _Lot | None = None
            for step, n in enumerate(queued):  # its units where they are: a lot at each step
                if n <= 0:
                    continue
                if lot is None:
                    lot = order
                    order.step, order.n = step, n
                else:
                    lot = _Lot(order, step, n)
                self.to_station(lot, 0.0)  # no machine is idle yet: it queues
        for i in self.data.items:
            for shp in i.in_transit:
                due = _arrival(self.rng_supply, shp)
                ev = env.timeout(due, ((i.site, i.sku), shp.qty, False))
                ev.callbacks.append(self._receive)
        for md in self.data.machines:
            self.machines.append(_Machine(self, md, self.stations[(md.site, md.role)], self.sites[md.site].busy_bins))
        # machines mid-cycle at the fork hold the oldest queued units before any other machine starts,
        # the one whose cycle started first (the least time left of a cycle) the oldest
        busy = [(md.initial_busy_s - md.cycle_mean_s, k) for k, md in enumerate(self.data.machines)
                if md.initial_busy_s > 0]
        for _, k in sorted(busy):
            self.machines[k].hold(self.data.machines[k].initial_busy_s)
        for m, md in zip(self.machines, self.data.machines, strict=True):
            m.start(md)
        for d in self.data.demand:
            _Source(self, d).schedule(0.0)

    def output(self, events: int) -> ReplicationOutput:
        horizon = self.data.horizon_s
        self.close_bins(INF)
        sites = self.sites.values()
        for s in sites:
            s.sys_area += s.open_n * (horizon - s.sys_last)
            s.sys_last = horizon
        for order in self.pending:
            if order.done == INF and order.due <= horizon:
                order.at.late += 1
        capacity: dict[str, int] = {s: 0 for s in self.data.sites}
        for md in self.data.machines:
            capacity[md.site] += 1
        util: dict[str, list[float]] = {}
        for s in sites:
            c = capacity[s.id]
            util[s.id] = [
                v / (c * (min((b + 1) * self.bin_s, horizon) - b * self.bin_s)) if c else 0.0
                for b, v in enumerate(s.busy_bins)
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
            throughput={s.id: s.throughput for s in sites},
            backlog={s.id: s.backlog for s in sites},
            wip={s.id: s.wip_bins for s in sites},
            utilisation=util,
            stock=self.stock_bins,
            orders_done={s.id: s.orders_done for s in sites},
            units_done={s.id: s.units_done for s in sites},
            on_time={s.id: s.on_time for s in sites},
            late={s.id: s.late for s in sites},
            lead_time_sum_s={s.id: s.lead_sum for s in sites},
            system_area={s.id: s.sys_area for s in sites},
            stockout_s=self.stockout,
            open_order_done_s={o.id: o.done for o in self.open_orders},
            open_order_due_s={o.id: o.due for o in self.open_orders},
            open_order_site={o.id: o.at.id for o in self.open_orders},
            machine_busy_s={m.mid: m.busy for m in self.machines},
            machine_down_s={m.mid: m.down for m in self.machines},
            stations=tuple(stations),
            machine_failures={m.mid: m.failures for m in self.machines},
        )


def _arrival(rng: random.Random, shp: InTransit) -> float:
    """When a shipment in transit at the fork arrives (simulation seconds, >= 0)."""
    if shp.ordered_s is not None and shp.lead_mean_s > 0:
        elapsed = -shp.ordered_s  # the lead time is longer than this: it has not arrived yet
        mean, sd = shp.lead_mean_s, shp.lead_sd_s
        if sd <= 0:
            if mean > elapsed:
                return mean - elapsed + shp.extra_delay_s
        else:
            sigma = math.sqrt(math.log(1.0 + (sd / mean) ** 2))
            mu = math.log(mean) - sigma * sigma / 2.0
            # inverse transform on the lognormal's tail beyond the time elapsed since it was ordered
            lo = _STD_NORMAL.cdf((math.log(elapsed) - mu) / sigma) if elapsed > 0 else 0.0
            if lo < 1.0 - 1e-9:
                u = lo + (1.0 - lo) * rng.random()
                lead = math.exp(mu + sigma * _STD_NORMAL.inv_cdf(min(max(u, 1e-12), 1.0 - 1e-12)))
                return max(0.0, lead - elapsed) + shp.extra_delay_s
        # overdue beyond what the lead time explains: by its ETA (or now), as below
    error = rng.gauss(0.0, shp.eta_sd_s) if shp.eta_sd_s > 0 else 0.0
    return max(0.0, shp.eta_s + shp.extra_delay_s + error)


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
    env = environment() if environment is not None else simpy.Environment()
    run = _Run(data, seed, replication, env)
    run.start()
    env.run(until=data.horizon_s)
    return run.output(getattr(env, "events_processed", 0))
