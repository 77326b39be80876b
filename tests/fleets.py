"""One builder for the fleets the tests write in code: each part of a ``twin.spec.FleetSpec`` with defaults.

Every constructor takes the few values a test usually means as positional arguments and the rest of the
dataclass's fields as keyword overrides under their ``twin.spec`` names, so a builder says only what
differs from these defaults:

- ``codes(*numbers)``: status codes in the house numbering 0 off, 1 idle, 2 running, 3 fault,
  4 maintenance, 5 setup (``CODES`` = 0-4);
- ``signal(name, kind, ...)``; ``COUNTERS``: the status, good and scrap signals;
- ``template(id, role, cycle_s, ...)``: status codes ``CODES``, signals ``COUNTERS``, otherwise the
  ``MachineTemplate`` defaults (batch 1, MTBF 200 h, MTTR 1 h, scrap 2 %);
- ``machine(id, template, ...)``: poll every second; ``site`` puts it at its own site;
- ``item(sku, ...)``: a raw material in pieces from a local supplier, reorder point 0, reorder
  quantity 1, lead time 1 day, nothing on hand, polled every 5 s;
- ``rule(id, kind, ...)``: priority medium, the id as message; sites, templates, machines and
  SKUs as any iterable of strings;
- ``always_on()`` (no shifts: open around the clock) and ``day_shift(start, end, ...)``
  (one shift, Monday-Friday, named "day");
- ``product(id, routing, ...)`` and ``demand(product, orders_per_day, ...)``;
- ``site(id, *machines, ...)``: a point of demand in UTC, always on, named ``id.capitalize()``;
- ``fleet(*sites, ...)``: id "f", named ``id.capitalize()``, its templates those its machines use
  (each once, in order of first use) unless given.

>>> f = fleet(site("s1", machine("P1", template("printer", Role.PRINT, 60.0))))
>>> f.site("s1").machines[0].site, [t.id for t in f.templates]
('s1', ['printer'])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import time
from typing import Any

from twin.frozen import FrozenDict
from twin.spec import (
    AlarmId,
    AlarmKind,
    AlarmRule,
    DemandSpec,
    FleetSpec,
    InventoryItemSpec,
    ItemKind,
    MachineId,
    MachineSpec,
    MachineStatus,
    MachineTemplate,
    Priority,
    ProductFamily,
    ProductId,
    Role,
    Shift,
    ShiftCalendar,
    SignalKind,
    SignalName,
    SignalSpec,
    SiteId,
    SiteKind,
    SiteSpec,
    Sku,
    TemplateId,
)

__all__ = [
    "CODES",
    "COUNTERS",
    "EVERY_DAY",
    "WEEKDAYS",
    "always_on",
    "codes",
    "day_shift",
    "demand",
    "fleet",
    "item",
    "machine",
    "product",
    "rule",
    "signal",
    "site",
    "template",
]

WEEKDAYS = frozenset(range(5))
EVERY_DAY = frozenset(range(7))

# the numbering the emulator and the example register maps use
_NUMBERED = (MachineStatus.OFF, MachineStatus.IDLE, MachineStatus.RUNNING, MachineStatus.FAULT,
             MachineStatus.MAINTENANCE, MachineStatus.SETUP)


def codes(*numbers: int) -> FrozenDict[int, MachineStatus]:
    """The status codes ``numbers`` in the house numbering (``codes(1, 2, 3)``: idle, running, fault)."""
    return FrozenDict({n: _NUMBERED[n] for n in numbers})


CODES = codes(0, 1, 2, 3, 4)


def signal(name: str, kind: SignalKind, **overrides: Any) -> SignalSpec:
    """A signal; ``overrides``: ``unit``, ``description``, ``counter_bits``."""
    return SignalSpec(name=SignalName(name), kind=kind, **overrides)


COUNTERS = (signal("status", SignalKind.STATUS), signal("good", SignalKind.GOOD_COUNT),
            signal("scrap", SignalKind.SCRAP_COUNT))


def template(tid: str, role: Role, cycle_s: float, **overrides: Any) -> MachineTemplate:
    """A machine template of ``role`` with an ideal cycle of ``cycle_s``; any other field by keyword."""
    fields: dict[str, Any] = {"status_codes": CODES, "signals": COUNTERS, **overrides}
    return MachineTemplate(id=TemplateId(tid), role=role, ideal_cycle_time_s=cycle_s, **fields)


def machine(mid: str, tpl: MachineTemplate, *, site: str = "", poll_interval_s: float = 1.0) -> MachineSpec:
    """A machine built from ``tpl``; ``site`` may stay empty when ``site()`` places it."""
    return MachineSpec(id=MachineId(mid), site=SiteId(site), template=tpl, poll_interval_s=poll_interval_s)


def item(sku: str, **overrides: Any) -> InventoryItemSpec:
    """A stock item (named ``sku`` unless ``name`` is given); any other field by keyword."""
    fields: dict[str, Any] = {"name": sku, "kind": ItemKind.RAW, "unit": "pcs", "reorder_point": 0.0,
                              "reorder_qty": 1.0, "supplier": "local", "lead_time_d": 1.0, **overrides}
    return InventoryItemSpec(sku=Sku(sku), **fields)


def rule(aid: str, kind: AlarmKind, *, priority: Priority = Priority.MEDIUM, message: str | None = None,
         signal: str | None = None, sites: Iterable[str] = (), templates: Iterable[str] = (),
         machines: Iterable[str] = (), skus: Iterable[str] = (), **overrides: Any) -> AlarmRule:
    """An alarm rule; ``overrides``: ``threshold``, ``for_s``."""
    return AlarmRule(id=AlarmId(aid), kind=kind, priority=priority, message=aid if message is None else message,
                     signal=None if signal is None else SignalName(signal),
                     sites=frozenset(SiteId(s) for s in sites), templates=frozenset(TemplateId(t) for t in templates),
                     machines=frozenset(MachineId(m) for m in machines), skus=frozenset(Sku(s) for s in skus),
                     **overrides)


def always_on() -> ShiftCalendar:
    """A calendar without shifts: the site works around the clock."""
    return ShiftCalendar(shifts=())


def day_shift(start_h: int, end_h: int, *, weekdays: frozenset[int] = WEEKDAYS, name: str = "day") -> ShiftCalendar:
    """A calendar of one shift from ``start_h`` to ``end_h`` o'clock (past midnight when end <= start)."""
    return ShiftCalendar(shifts=(Shift(name=name, weekdays=weekdays, start=time(start_h), end=time(end_h)),))


def product(pid: str, routing: Iterable[Role], bom: Mapping[str, float] | None = None,
            **overrides: Any) -> ProductFamily:
    """A product family (named ``pid.capitalize()`` unless ``name`` is given); any other field by keyword."""
    fields: dict[str, Any] = {"name": pid.capitalize(), **overrides}
    return ProductFamily(id=ProductId(pid), routing=tuple(routing),
                         bom=FrozenDict({Sku(k): v for k, v in (bom or {}).items()}), **fields)


def demand(pid: str, orders_per_day: float, **overrides: Any) -> DemandSpec:
    """The demand for product ``pid`` at a site; ``overrides``: ``weekday_factors``, ``hour_factors``."""
    return DemandSpec(product=ProductId(pid), orders_per_day=orders_per_day, **overrides)


def site(sid: str = "s", *machines: MachineSpec, name: str | None = None, calendar: ShiftCalendar | None = None,
         **overrides: Any) -> SiteSpec:
    """A site holding ``machines`` (each placed here); any other field by keyword (``inventory``, ``demand`` ...)."""
    fields: dict[str, Any] = {"kind": SiteKind.POINT_OF_DEMAND, "timezone": "UTC", **overrides}
    placed = tuple(replace(m, site=SiteId(sid)) for m in machines)
    return SiteSpec(id=SiteId(sid), name=sid.capitalize() if name is None else name,
                    calendar=always_on() if calendar is None else calendar, machines=placed, **fields)


def fleet(*sites: SiteSpec, id: str = "f", name: str | None = None,
          templates: Iterable[MachineTemplate] | None = None, **overrides: Any) -> FleetSpec:
    """The fleet of ``sites``; its templates those the machines use unless given; ``products``, ``alarms`` ..."""
    if templates is None:
        used = {m.template.id: m.template for s in sites for m in s.machines}  # first use wins the order
        templates = used.values()
    return FleetSpec(id=id, name=id.capitalize() if name is None else name, sites=sites,
                     templates=tuple(templates), **overrides)
