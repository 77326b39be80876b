"""The emulated plant's working records: orders in progress, stock items, machines, stations, sites, demand streams.

Mutable, owned by one ``connectors.emulator.plant.Plant`` and changed only by its event loop; each
record also keeps the rules that concern it alone (an order's next reported version, an item's
lead-time draw, a site's shift list, a demand stream's rate). Never imports ``twin.sim``.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from twin.business import OrderRecord, OrderStatus, ShipmentRecord, ShipmentStatus
from twin.calendar import shift_intervals
from twin.spec import (
    DemandSpec,
    InventoryItemSpec,
    MachineSpec,
    MachineStatus,
    ProductFamily,
    Role,
    SiteSpec,
    Transport,
    consuming_step,
)

__all__ = ["DAY_S", "Demand", "Item", "Machine", "Need", "Order", "Site", "Station", "ValueKey", "record_time"]

ValueKey = tuple[str, str, str]  # (site, asset, signal)

DAY_S = 86400.0
TAILS = {Transport.SEA: (0.2, 5.0), Transport.AIR: (0.1, 1.0)}  # (chance, mean days) of a late tail
LOCAL_TAIL = (0.05, 0.5)


def record_time(start: datetime, t: float) -> datetime:
    """Plant time ``t`` as a record time: whole seconds (rounded down), as the feed files write them."""
    return (start + timedelta(seconds=t)).replace(microsecond=0)


@dataclass(slots=True, eq=False)
class Order:
    """An order on its way through the routing of its product, and the versions of it reported so far."""

    id: str
    site: str
    product: ProductFamily
    qty: int
    created: datetime
    due: datetime
    at: list[int]  # unfinished units per routing step (queued, waiting or in a cycle there)
    through: list[int]  # good units that finished each routing step (cumulative; the last is done)
    version: int = 0
    reported: tuple[str, tuple[int, ...]] = ("", ())  # (operation, through) of the last version

    def report(self) -> OrderRecord | None:
        """A new version of the order if its operation or the good units through any step changed."""
        routing = self.product.routing
        done = self.through[-1]
        through = tuple(self.through)
        # the earliest step holding an unfinished unit (the last one when every unit is through)
        if done >= self.qty:
            operation = routing[-1].value
        else:
            operation = next(routing[k].value for k, n in enumerate(self.at) if n)
        if (operation, through) == self.reported:
            return None
        self.reported = (operation, through)
        self.version += 1
        status = OrderStatus.DONE if done >= self.qty else OrderStatus.OPEN
        return OrderRecord(id=self.id, version=self.version, site=self.site, product=str(self.product.id),
                           qty=self.qty, created=self.created, due=self.due, status=status, done_qty=done,
                           operation=operation, done_by_step=through)


@dataclass(slots=True, eq=False)
class Item:
    """One stocked SKU of a site: on hand, in transit, the shipments placed and its real lead-time law."""

    spec: InventoryItemSpec
    site: str
    rng: random.Random
    lead_d: float
    lead_sd_d: float
    delay_factor: float
    bom_factor: float
    on_hand: float
    in_transit: float = 0.0
    pending: list[tuple[float, int]] = field(default_factory=list)  # (arrival s, shipment index) not arrived
    placed: list[tuple[float, float, float]] = field(default_factory=list)  # (ordered s, arrival s, qty)
    drawn: float = 0.0
    dirty: bool = True

    def shipment_record(self, idx: int, version: int, status: ShipmentStatus, eta_s: float,
                        start: datetime) -> ShipmentRecord:
        """Version ``version`` of shipment ``idx`` (ids ``SITE-SKU-N``), ETA ``eta_s`` seconds after ``start``."""
        ordered, _, qty = self.placed[idx]
        s = self.spec
        return ShipmentRecord(id=f"{self.site}-{s.sku}-{idx + 1}", version=version, site=self.site, sku=str(s.sku),
                              qty=qty, eta=record_time(start, eta_s), origin=s.supplier, status=status,
                              planned_eta=record_time(start, ordered + s.lead_time_d * DAY_S))

    def draw_lead_d(self) -> float:
        """The lead time (days) of a shipment placed now: normal, at least a quarter of the mean, plus a late tail."""
        lead = max(0.25 * self.lead_d, self.lead_d + self.rng.gauss(0.0, self.lead_sd_d))
        tail_p, tail_mean = TAILS.get(self.spec.transport, LOCAL_TAIL)
        if self.rng.random() < tail_p:
            lead += self.rng.expovariate(1.0 / tail_mean) * self.delay_factor
        return lead


Need = tuple[tuple[Item, float], ...]  # what one unit draws at a step: (item, qty)


@dataclass(slots=True, eq=False)
class Machine:
    """One machine: its real figures, where it is in its cycle, its totals and the values it shows."""

    spec: MachineSpec
    site: str
    rng: random.Random
    codes: dict[MachineStatus, int]
    station: Station
    cycle_mean_s: float
    mtbf_s: float
    mttr_s: float
    scrap_rate: float
    sigma: float  # of the lognormal cycle factor
    status: MachineStatus = MachineStatus.OFF
    status_t: float = 0.0
    busy: bool = False  # in a cycle (running or paused by a failure)
    units: list[tuple[Order, int]] = field(default_factory=list)  # the cycle's units: (order, step)
    n_units: int = 0
    cycle_len: float = 0.0
    cycle_left: float = 0.0
    run_dt: float = 0.0  # length of the running stretch now scheduled
    run_from: float = 0.0  # when it started
    ttf_left: float = 0.0
    until_maint: float = 0.0
    repair_start: float = 0.0
    good: int = 0
    scrap: int = 0
    job: int = 0
    last_cycle_s: float = 0.0
    fault_code: int = 0
    level: float = 1.0
    temp_from: dict[str, float] = field(default_factory=dict)
    run_s: float = 0.0
    fault_s: float = 0.0
    failures: int = 0
    repairs: int = 0
    cycles: int = 0
    cycle_s: float = 0.0
    plan: list[tuple[ValueKey, int, int, float]] = field(default_factory=list)  # (key, code, bits, level scale)
    temps: list[tuple[ValueKey, str, float, float]] = field(default_factory=list)  # (key, name, hot, idle degC)
    powers: list[tuple[ValueKey, float]] = field(default_factory=list)  # (key, rated kW)
    vibs: list[ValueKey] = field(default_factory=list)
    dirty: bool = True


@dataclass(slots=True, eq=False)
class Station:
    """The machines of one role at a site and their FIFO queue of (order, routing step) units."""

    site: Site
    role: Role
    machines: list[Machine] = field(default_factory=list)
    queue: deque[tuple[Order, int]] = field(default_factory=deque)


@dataclass(slots=True, eq=False)
class Site:
    """One site: its stations and stock, what a unit draws at each step, and its shift list."""

    spec: SiteSpec
    tz: ZoneInfo
    stations: dict[Role, Station] = field(default_factory=dict)
    items: dict[str, Item] = field(default_factory=dict)
    needs: dict[tuple[str, int], Need] = field(default_factory=dict)  # (product, step) -> draws per unit
    inside: bool = True
    starts: list[float] = field(default_factory=list)  # shift starts (plant s)
    ends: list[float] = field(default_factory=list)
    covered: float = 0.0  # how far the shift lists reach
    orders: int = 0

    def plan_needs(self, products: Iterable[ProductFamily]) -> None:
        """Fill ``needs``: what one unit of each product draws at each routing step (BOM x truth factor)."""
        for p in products:
            for step in range(len(p.routing)):
                need = []
                for sku, qty in p.bom.items():
                    item = self.items.get(str(sku))
                    if item is not None and consuming_step(p, item.spec.kind) == step:
                        need.append((item, qty * item.bom_factor))
                self.needs[(str(p.id), step)] = tuple(need)

    def shift_state(self, t: float, start: datetime) -> tuple[bool, float]:
        """Whether ``t`` (seconds after ``start``) is in a shift, and when that next changes."""
        spec, starts, ends = self.spec, self.starts, self.ends
        # keep the shift list at least 8 days ahead of t and past the next shift start (holidays),
        # looking no more than a year ahead (a site without any shift then stays off)
        while self.covered < t + 366 * DAY_S and (self.covered < t + 8 * DAY_S or not starts or starts[-1] <= t):
            chunk_end = self.covered + 14 * DAY_S
            for a, b in shift_intervals(spec.calendar, spec.timezone, start + timedelta(seconds=self.covered),
                                        start + timedelta(seconds=chunk_end)):
                a_s, b_s = (a - start).total_seconds(), (b - start).total_seconds()
                if ends and abs(ends[-1] - a_s) < 1e-6:
                    ends[-1] = b_s  # a shift split by the chunk boundary
                else:
                    starts.append(a_s)
                    ends.append(b_s)
            self.covered = chunk_end
        i = bisect.bisect_right(starts, t) - 1
        if i >= 0 and t < ends[i]:
            return True, ends[i]
        return False, starts[i + 1] if i + 1 < len(starts) else math.inf


@dataclass(slots=True, eq=False)
class Demand:
    """The order stream of one (site, product): a Poisson process drawn by thinning at ``peak_per_s``."""

    site: Site
    spec: DemandSpec
    product: ProductFamily
    rng: random.Random
    factor: float
    peak_per_s: float
    hour_norm: float

    def rate_per_s(self, at: datetime) -> float:
        """The order rate at ``at``: configured per day x truth factor x local weekday and hour factors."""
        local = at.astimezone(self.site.tz)
        wfs, hfs = self.spec.weekday_factors, self.spec.hour_factors
        wf = wfs[local.weekday() % len(wfs)] if wfs else 1.0
        hf = hfs[local.hour % len(hfs)] if hfs else 1.0
        return self.spec.orders_per_day * self.factor * wf * hf / self.hour_norm / DAY_S
