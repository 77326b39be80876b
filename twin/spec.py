"""The static description of a fleet of micro-factories: sites, machines, stock, products, alarms.

These are plain frozen dataclasses built once from the validated configuration
(``connectors.config.load``) and then shared by the live twin, the KPIs, the simulator and the
dashboard. They carry no protocol details (register maps live in ``connectors``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, time
from typing import NewType

from twin.frozen import FrozenDict

__all__ = [
    "DEFAULT_DOWNTIME",
    "AlarmId",
    "AlarmKind",
    "AlarmRule",
    "DemandSpec",
    "DowntimeCategory",
    "DowntimeReason",
    "DowntimeSpec",
    "FleetSpec",
    "InventoryItemSpec",
    "ItemKind",
    "MachineId",
    "MachineSpec",
    "MachineStatus",
    "MachineTemplate",
    "Priority",
    "ProductFamily",
    "ProductId",
    "Role",
    "Shift",
    "ShiftCalendar",
    "SignalKind",
    "SignalName",
    "SignalSpec",
    "SiteId",
    "SiteKind",
    "SiteSpec",
    "Sku",
    "TemplateId",
    "Transport",
    "consuming_step",
    "default_downtime",
]

SiteId = NewType("SiteId", str)
MachineId = NewType("MachineId", str)
TemplateId = NewType("TemplateId", str)
SignalName = NewType("SignalName", str)
Sku = NewType("Sku", str)
ProductId = NewType("ProductId", str)
AlarmId = NewType("AlarmId", str)


class MachineStatus(enum.Enum):
    """What a machine is doing. ``UNKNOWN`` whenever the status signal is not current and good."""

    OFF = "off"
    IDLE = "idle"
    RUNNING = "running"
    FAULT = "fault"
    MAINTENANCE = "maintenance"
    SETUP = "setup"
    UNKNOWN = "unknown"


class Role(enum.Enum):
    """The routing role of a machine: which operation of a product's routing it performs."""

    PRINT = "print"
    MACHINE = "machine"
    POST_PROCESS = "post-process"
    ASSEMBLE = "assemble"
    INSPECT = "inspect"
    PACK = "pack"


class SignalKind(enum.Enum):
    """What a machine signal means to the twin."""

    STATUS = "status"
    GOOD_COUNT = "good_count"
    SCRAP_COUNT = "scrap_count"
    CYCLE_TIME = "cycle_time"
    TEMPERATURE = "temperature"
    POWER = "power"
    VIBRATION = "vibration"
    FAULT_CODE = "fault_code"
    JOB = "job"
    LEVEL = "level"
    OTHER = "other"


class ItemKind(enum.Enum):
    """Kind of inventory item."""

    RAW = "raw"
    SUB_ASSEMBLY = "sub-assembly"
    PACKAGING = "packaging"
    FINISHED = "finished"


class Transport(enum.Enum):
    """How a supplier ships: decides the shape of lead-time uncertainty."""

    LOCAL = "local"
    AIR = "air"
    SEA = "sea"


class SiteKind(enum.Enum):
    """Point-of-demand plants make products; last-mile plants assemble shipped sub-assemblies."""

    POINT_OF_DEMAND = "point-of-demand"
    LAST_MILE = "last-mile"


class Priority(enum.IntEnum):
    """Alarm priority (ISA-18.2 style); higher value is more urgent."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    URGENT = 4


class AlarmKind(enum.Enum):
    """The kinds of alarm rules."""

    ABOVE = "above"  # a machine signal above a threshold for at least for_s
    BELOW = "below"  # a machine signal below a threshold for at least for_s
    STOCK_BELOW_REORDER = "stock_below_reorder"  # on hand below the item's reorder point
    MACHINE_DOWN = "machine_down"  # status FAULT for at least for_s
    # predictive (evaluated by the forecaster, ``twin.forecast``, not by the live reducer):
    FAILURE_RISK = "failure_risk"  # P(the machine fails within horizon_h) > threshold
    STOCKOUT_RISK = "stockout_risk"  # P(the SKU's shelf empties within horizon_h) > threshold
    LATE_ORDER_RISK = "late_order_risk"  # P(an open order due within horizon_h finishes late) > threshold

    @property
    def predictive(self) -> bool:
        """Whether the forecaster evaluates this kind (a probability over ``horizon_h``), not the reducer."""
        return self in _PREDICTIVE

    @property
    def watches_machines(self) -> bool:
        """Whether an instance of this kind is per machine (else per SKU or, for late orders, per order)."""
        return self not in (AlarmKind.STOCK_BELOW_REORDER, AlarmKind.STOCKOUT_RISK, AlarmKind.LATE_ORDER_RISK)


_PREDICTIVE = frozenset({AlarmKind.FAILURE_RISK, AlarmKind.STOCKOUT_RISK, AlarmKind.LATE_ORDER_RISK})


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalSpec:
    """One signal a machine template exposes."""

    name: SignalName
    kind: SignalKind
    unit: str = ""
    description: str = ""
    counter_bits: int = 32  # width of a GOOD_COUNT/SCRAP_COUNT counter in the PLC (wrap-around)


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineTemplate:
    """A kind of machine: its signals, status codes, role and nominal figures."""

    id: TemplateId
    role: Role
    ideal_cycle_time_s: float
    status_codes: FrozenDict[int, MachineStatus]
    signals: tuple[SignalSpec, ...]
    description: str = ""
    batch_size: int = 1  # parts per cycle (a print build holds several parts)
    mtbf_h: float = 200.0
    mttr_h: float = 1.0
    scrap_rate: float = 0.02

    def signal(self, name: str) -> SignalSpec | None:
        """The signal called ``name``, or None."""
        for s in self.signals:
            if s.name == name:
                return s
        return None

    def signal_of_kind(self, kind: SignalKind) -> SignalSpec | None:
        """The first signal of ``kind``, or None."""
        for s in self.signals:
            if s.kind is kind:
                return s
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineSpec:
    """One machine of a site, built from a template."""

    id: MachineId
    site: SiteId
    template: MachineTemplate
    poll_interval_s: float = 1.0  # how often its signals are expected to be refreshed

    @property
    def role(self) -> Role:
        return self.template.role


@dataclass(frozen=True, slots=True, kw_only=True)
class Shift:
    """A working shift on some weekdays (0 = Monday). ``end <= start`` means it ends the next day."""

    name: str
    weekdays: frozenset[int]
    start: time
    end: time


@dataclass(frozen=True, slots=True, kw_only=True)
class ShiftCalendar:
    """When a site plans to produce, in the site's local time."""

    shifts: tuple[Shift, ...]
    holidays: frozenset[date] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class InventoryItemSpec:
    """A stocked item of a site and its replenishment policy (s, Q): order Q when on hand falls below s."""

    sku: Sku
    name: str
    kind: ItemKind
    unit: str
    reorder_point: float
    reorder_qty: float
    supplier: str
    lead_time_d: float
    transport: Transport = Transport.LOCAL
    lead_time_sd_d: float = 0.0
    initial_on_hand: float = 0.0
    poll_interval_s: float = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductFamily:
    """A family of configure-to-order products: its routing and bill of materials per unit."""

    id: ProductId
    name: str
    routing: tuple[Role, ...]
    bom: FrozenDict[Sku, float]
    batch_min: int = 1
    batch_max: int = 1
    due_h: float = 48.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DemandSpec:
    """How orders of a family arrive at a site (a base rate shaped by weekday and hour)."""

    product: ProductId
    orders_per_day: float
    weekday_factors: tuple[float, ...] = (1.0,) * 7
    hour_factors: tuple[float, ...] = (1.0,) * 24


class DowntimeCategory(enum.Enum):
    """Whether a stop was planned (maintenance, changeover, a break, no shift) or not."""

    PLANNED = "planned"
    UNPLANNED = "unplanned"


@dataclass(frozen=True, slots=True, kw_only=True)
class DowntimeReason:
    """One reason of a site's downtime tree; ``parent`` is "" for a top-level reason."""

    id: str
    category: DowntimeCategory
    parent: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DowntimeSpec:
    """A site's downtime reasons and the rules that classify a stop automatically (``twin.downtime``).

    ``fault_codes`` maps a machine's fault code to a reason; ``fault`` is the reason of a fault whose
    code is not mapped; ``maintenance`` and ``setup`` those of the statuses of the same names.
    ``breaks`` are scheduled breaks in the site's local time (a stop inside one is ``scheduled_break``).
    """

    reasons: tuple[DowntimeReason, ...]
    fault_codes: FrozenDict[int, str] = field(default_factory=FrozenDict)
    fault: str = "breakdown"
    maintenance: str = "maintenance"
    setup: str = "changeover"
    breaks: tuple[Shift, ...] = ()

    def reason(self, reason_id: str) -> DowntimeReason | None:
        """The reason with this id, or None."""
        for r in self.reasons:
            if r.id == reason_id:
                return r
        return None


_PLANNED_REASONS = ("maintenance", "changeover", "scheduled_break", "no_shift")
_UNPLANNED_REASONS = ("breakdown", "material_shortage", "starved", "blocked", "quality_hold")


def default_downtime() -> DowntimeSpec:
    """The default tree (ISA-95 / OPC UA OEE style), used when a site has no ``[sites.downtime]``.

    >>> [r.id for r in default_downtime().reasons if r.category is DowntimeCategory.PLANNED]
    ['maintenance', 'changeover', 'scheduled_break', 'no_shift']
    """
    return DowntimeSpec(reasons=tuple(
        [DowntimeReason(id=r, category=DowntimeCategory.PLANNED) for r in _PLANNED_REASONS]
        + [DowntimeReason(id=r, category=DowntimeCategory.UNPLANNED) for r in _UNPLANNED_REASONS]
    ))


DEFAULT_DOWNTIME = default_downtime()


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteSpec:
    """A micro-factory."""

    id: SiteId
    name: str
    kind: SiteKind
    timezone: str
    calendar: ShiftCalendar
    machines: tuple[MachineSpec, ...]
    inventory: tuple[InventoryItemSpec, ...] = ()
    demand: tuple[DemandSpec, ...] = ()
    daily_plan_units: int = 0
    region: str = ""
    downtime: DowntimeSpec = DEFAULT_DOWNTIME

    def machine(self, machine_id: str) -> MachineSpec | None:
        """The machine with this id, or None."""
        for m in self.machines:
            if m.id == machine_id:
                return m
        return None

    def item(self, sku: str) -> InventoryItemSpec | None:
        """The inventory item with this SKU, or None."""
        for i in self.inventory:
            if i.sku == sku:
                return i
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmRule:
    """A rule that raises an alarm. Filters (sites, templates, machines, skus) narrow where it applies."""

    id: AlarmId
    kind: AlarmKind
    priority: Priority
    message: str
    signal: SignalName | None = None
    threshold: float | None = None
    for_s: float = 0.0
    horizon_h: float | None = None  # predictive kinds: how far ahead the probability looks
    sites: frozenset[SiteId] = frozenset()
    templates: frozenset[TemplateId] = frozenset()
    machines: frozenset[MachineId] = frozenset()
    skus: frozenset[Sku] = frozenset()

    def applies_to_machine(self, machine: MachineSpec) -> bool:
        """Whether this rule watches ``machine``."""
        if not self.kind.watches_machines:
            return False
        return (
            (not self.sites or machine.site in self.sites)
            and (not self.templates or machine.template.id in self.templates)
            and (not self.machines or machine.id in self.machines)
        )

    def applies_to_item(self, site: SiteId, item: InventoryItemSpec) -> bool:
        """Whether this rule watches the stock of ``item`` at ``site``."""
        if self.kind not in (AlarmKind.STOCK_BELOW_REORDER, AlarmKind.STOCKOUT_RISK):
            return False
        return (not self.sites or site in self.sites) and (not self.skus or item.sku in self.skus)


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetSpec:
    """The whole fleet: what every other part of the product is built from."""

    id: str
    name: str
    sites: tuple[SiteSpec, ...]
    templates: tuple[MachineTemplate, ...]
    products: tuple[ProductFamily, ...] = ()
    alarms: tuple[AlarmRule, ...] = ()
    stale_after_polls: float = 3.0  # a signal older than this many poll intervals is STALE
    _sites_by_id: FrozenDict[SiteId, SiteSpec] = field(
        default_factory=FrozenDict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_sites_by_id", FrozenDict({s.id: s for s in self.sites}))

    def site(self, site_id: str) -> SiteSpec:
        """The site with this id; ``KeyError`` if there is none."""
        return self._sites_by_id[SiteId(site_id)]

    def product(self, product_id: str) -> ProductFamily | None:
        """The product family with this id, or None."""
        for p in self.products:
            if p.id == product_id:
                return p
        return None


def consuming_step(product: ProductFamily, kind: ItemKind) -> int:
    """The index of the routing step of ``product`` that draws a material of ``kind`` from stock.

    Materials are drawn where they are used, not when the order arrives: packaging at the pack
    step (the last step when the routing has none), sub-assemblies at the assemble step (the first
    step when it has none), raw material and anything else at the first step. Both the emulated
    plant and the twin's model draw stock by this rule, so a stock forecast and the plant agree
    on *when* a unit's material leaves the shelf.

    >>> p = ProductFamily(id=ProductId("lamp"), name="lamp", bom=FrozenDict(),
    ...                   routing=(Role.ASSEMBLE, Role.INSPECT, Role.PACK))
    >>> consuming_step(p, ItemKind.PACKAGING), consuming_step(p, ItemKind.SUB_ASSEMBLY), consuming_step(p, ItemKind.RAW)
    (2, 0, 0)
    """
    routing = product.routing
    if not routing:
        return 0
    if kind is ItemKind.PACKAGING:
        return routing.index(Role.PACK) if Role.PACK in routing else len(routing) - 1
    if kind is ItemKind.SUB_ASSEMBLY and Role.ASSEMBLE in routing:
        return routing.index(Role.ASSEMBLE)
    return 0
