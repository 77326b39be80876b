r"""What-if scenarios: typed interventions on a fork, and their TOML form validated all at once.

A :class:`Scenario` is a name and a tuple of interventions; build them in code or parse a TOML
document with :func:`loads_scenario` (the caller reads the file). Validation lists every problem
as ``file: path.to.key: what (got X)`` in one :class:`twin.errors.ConfigError`; given the fleet,
it also checks that the machines, sites, templates, SKUs and products named exist. Numbers must be
finite, and a scenario is held to ``twin.limits`` (interventions per scenario, machines added or
removed, demand factor, durations and offsets, orders one (s, Q) review may place) so that one
request cannot exhaust the server.

TOML layout (every table is an array of tables, so a scenario may hold several of each)::

    name = "Printer P3 maintenance"
    [[machine_down]]      machine, site?, start (datetime) or start_in_h, duration_h
    [[machines_added]]    site, template, count
    [[machines_removed]]  site, template, count
    [[cycle_time]]        factor, and role, or machine and/or site (none: everywhere)
    [[demand]]            factor, site?, product?, start|start_in_h?, end|end_in_h?
    [[shipment_delay]]    sku, delay_d, site?, shipment?
    [[lead_time]]         sku? supplier?, site?, lead_time_d, lead_time_sd_d?, transport?
    [[reorder_policy]]    sku, site?, reorder_point, reorder_qty
    [[shifts]]            site, holidays?, [[shifts.shift]] name, weekdays, start "HH:MM", end
    [[overflow]]          from, to, transfer_h, threshold

>>> s = loads_scenario('name = "x"\n[[cycle_time]]\nrole = "print"\nfactor = 1.2', "s.toml")
>>> s.interventions[0].factor
1.2
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from twin.errors import ConfigError, Problem
from twin.limits import DEFAULT_LIMITS, Limits
from twin.spec import FleetSpec, Role, Shift, ShiftCalendar, Transport
from twin.tomltext import loads_toml

__all__ = [
    "CycleTimeFactor",
    "DemandMultiplier",
    "Intervention",
    "LeadTimeChange",
    "MachineDown",
    "MachinesAdded",
    "MachinesRemoved",
    "OverflowRouting",
    "ReorderPolicy",
    "Scenario",
    "ShiftChange",
    "ShipmentDelay",
    "TimeRef",
    "loads_scenario",
    "parse_scenario",
]


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeRef:
    """A moment of a scenario: an absolute UTC time, or hours after the fork."""

    at: datetime | None = None
    in_h: float | None = None

    def seconds_from(self, as_of: datetime) -> float:
        if self.at is not None:
            return (self.at - as_of).total_seconds()
        return (self.in_h or 0.0) * 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineDown:
    """A machine is unavailable (planned maintenance, breakdown) from ``start`` for ``duration_h``."""

    machine: str
    start: TimeRef
    duration_h: float
    site: str | None = None  # needed when the machine id exists at several sites


@dataclass(frozen=True, slots=True, kw_only=True)
class MachinesAdded:
    """``count`` new machines of ``template`` at ``site``."""

    site: str
    template: str
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MachinesRemoved:
    """``count`` machines of ``template`` at ``site`` taken out (the last ones by id)."""

    site: str
    template: str
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CycleTimeFactor:
    """Cycle times multiplied by ``factor`` for one machine (of a site), a role, a site, or everywhere."""

    factor: float
    machine: str | None = None
    role: Role | None = None
    site: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DemandMultiplier:
    """Order rate multiplied by ``factor`` (for a site and/or product) between start and end."""

    factor: float
    site: str | None = None
    product: str | None = None
    start: TimeRef | None = None
    end: TimeRef | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ShipmentDelay:
    """Shipments of ``sku`` in transit at the fork arrive ``delay_d`` days later than their ETA."""

    sku: str
    delay_d: float
    site: str | None = None
    shipment: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadTimeChange:
    """New supplier lead times for replenishments ordered during the run."""

    lead_time_d: float
    sku: str | None = None
    supplier: str | None = None
    site: str | None = None
    lead_time_sd_d: float | None = None
    transport: Transport | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReorderPolicy:
    """A new (s, Q) policy for ``sku`` (at one site or all)."""

    sku: str
    reorder_point: float
    reorder_qty: float
    site: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ShiftChange:
    """A new shift calendar for ``site``."""

    site: str
    calendar: ShiftCalendar


@dataclass(frozen=True, slots=True, kw_only=True)
class OverflowRouting:
    """Orders arriving at ``from_site`` with ``threshold`` or more open go to ``to_site``."""

    from_site: str
    to_site: str
    transfer_h: float
    threshold: int


Intervention = (
    MachineDown
    | MachinesAdded
    | MachinesRemoved
    | CycleTimeFactor
    | DemandMultiplier
    | ShipmentDelay
    | LeadTimeChange
    | ReorderPolicy
    | ShiftChange
    | OverflowRouting
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """A named set of interventions; the empty scenario is the baseline."""

    name: str = "baseline"
    description: str = ""
    interventions: tuple[Intervention, ...] = ()


class _Checker:
    """Collects problems while reading one table."""

    def __init__(self, problems: list[Problem], path: str, table: Any, allowed: set[str],
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.problems = problems
        self.path = path
        self.limits = limits
        self.table: Mapping[str, Any] = table if isinstance(table, Mapping) else {}
        self.ok = True
        if not isinstance(table, Mapping):
            self.fail("", "must be a table", table)
            return
        for key in table:
            if key not in allowed:
                # a key a user could not type bare is shown quoted, escapes visible (never a raw line break)
                shown = key if _PLAIN_KEY.fullmatch(str(key)) else f"[{str(key)!r}]"
                self.fail(shown, f"unknown key (allowed: {', '.join(sorted(allowed))})", table[key])

    def fail(self, key: str, message: str, got: object) -> None:
        self.ok = False
        where = f"{self.path}.{key}" if self.path and key else (key or self.path)
        self.problems.append(Problem(path=where, message=message, got=got))

    def _get(self, key: str, required: bool) -> Any:
        if key not in self.table:
            if required:
                self.ok = False
                where = f"{self.path}.{key}" if self.path else key
                self.problems.append(Problem(path=where, message="is required", has_got=False))
            return None
        return self.table[key]

    def text(self, key: str, required: bool = False) -> str | None:
        v = self._get(key, required)
        if v is None:
            return None
        if not isinstance(v, str) or not v:
            self.fail(key, "must be a non-empty string", v)
            return None
        return v

    def number(
        self, key: str, required: bool = False, *, minimum: float | None = None, positive: bool = False,
        maximum: float | None = None,
    ) -> float | None:
        v = self._get(key, required)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float):
            self.fail(key, "must be a number", v)
            return None
        if not math.isfinite(v):
            self.fail(key, "must be a number (finite)", v)
            return None
        if positive and v <= 0:
            self.fail(key, "must be > 0", v)
            return None
        if minimum is not None and v < minimum:
            self.fail(key, f"must be >= {minimum:g}", v)
            return None
        if maximum is not None and v > maximum:
            self.fail(key, f"must be <= {maximum:g} (request limit)", v)
            return None
        if abs(v) > 1e15:  # an integer TOML accepts but a float cannot hold usefully
            self.fail(key, "is out of range", v)
            return None
        return float(v)

    def hours(self, key: str, required: bool = False, *, minimum: float | None = None,
              positive: bool = False) -> float | None:
        """A duration or offset in hours (``*_h``) within the scenario limit."""
        most = self.limits.max_scenario_offset_h
        return self.number(key, required, minimum=minimum, positive=positive, maximum=most)

    def days(self, key: str, required: bool = False, *, minimum: float | None = None,
             positive: bool = False) -> float | None:
        """A duration in days (``*_d``) within the scenario limit."""
        return self.number(key, required, minimum=minimum, positive=positive,
                           maximum=self.limits.max_scenario_offset_h / 24.0)

    def integer(
        self, key: str, required: bool = False, *, minimum: int = 0, maximum: int | None = None
    ) -> int | None:
        v = self._get(key, required)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            self.fail(key, "must be an integer", v)
            return None
        if v < minimum:
            self.fail(key, f"must be >= {minimum}", v)
            return None
        if maximum is not None and v > maximum:
            self.fail(key, f"must be <= {maximum} (request limit)", v)
            return None
        return v

    def moment(self, key: str) -> TimeRef | None:
        """``key`` (a datetime with offset) or ``key_in_h`` (hours after the fork)."""
        at_raw = self.table.get(key)
        rel = self.hours(f"{key}_in_h")
        if at_raw is not None and f"{key}_in_h" in self.table:
            self.fail(key, f"give either {key} or {key}_in_h, not both", at_raw)
            return None
        if at_raw is None:
            return None if rel is None else TimeRef(in_h=rel)
        at = at_raw
        if isinstance(at_raw, str):
            try:
                at = datetime.fromisoformat(at_raw)
            except ValueError:
                self.fail(key, "must be a date-time like 2026-11-24T06:00:00Z", at_raw)
                return None
        if not isinstance(at, datetime) or at.tzinfo is None:
            self.fail(key, "must be a date-time with a UTC offset, like 2026-11-24T06:00:00Z", at_raw)
            return None
        return TimeRef(at=at.astimezone(UTC))

    def member(self, key: str, known: set[str] | None, what: str, required: bool = False) -> str | None:
        v = self.text(key, required)
        if v is not None and known is not None and v not in known:
            self.fail(key, f"unknown {what}", v)
            return None
        return v


def _clock(chk: _Checker, key: str) -> time | None:
    v = chk.text(key, required=True)
    if v is None:
        return None
    try:
        return time.fromisoformat(v)
    except ValueError:
        chk.fail(key, "must be a time of day like 06:00", v)
        return None


_Parser = Callable[[_Checker, "_Known"], Intervention | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Known:
    sites: set[str] | None
    machines: set[str] | None
    machine_sites: dict[str, set[str]] | None
    templates: set[str] | None
    skus: set[str] | None
    products: set[str] | None
    suppliers: set[str] | None


def _machine_at_site(c: _Checker, k: _Known, machine: str | None, site: str | None) -> None:
    if machine is None or k.machine_sites is None or machine not in k.machine_sites:
        return
    where = k.machine_sites[machine]
    if site is None and len(where) > 1:
        c.fail("site", f"is required: machine {machine!r} exists at sites {', '.join(sorted(where))}", None)
    elif site is not None and site not in where:
        c.fail("machine", f"is not a machine of site {site!r}", machine)


def _machine_down(c: _Checker, k: _Known) -> Intervention | None:
    machine = c.member("machine", k.machines, "machine", required=True)
    site = c.member("site", k.sites, "site")
    _machine_at_site(c, k, machine, site)
    start = c.moment("start")
    if start is None and "start" not in c.table and "start_in_h" not in c.table:
        c.fail("start", "is required (or start_in_h)", None)
    duration = c.hours("duration_h", True, positive=True)
    if not c.ok or machine is None or start is None or duration is None:
        return None
    return MachineDown(machine=machine, start=start, duration_h=duration, site=site)


def _machines(removed: bool) -> _Parser:
    def parse(c: _Checker, k: _Known) -> Intervention | None:
        site = c.member("site", k.sites, "site", required=True)
        template = c.member("template", k.templates, "machine template", required=True)
        count = c.integer("count", True, minimum=1, maximum=c.limits.max_machines_changed)
        if not c.ok or site is None or template is None or count is None:
            return None
        cls = MachinesRemoved if removed else MachinesAdded
        return cls(site=site, template=template, count=count)

    return parse


def _cycle_time(c: _Checker, k: _Known) -> Intervention | None:
    factor = c.number("factor", True, positive=True)
    machine = c.member("machine", k.machines, "machine")
    site = c.member("site", k.sites, "site")
    role_raw = c.text("role")
    role = None
    if role_raw is not None:
        try:
            role = Role(role_raw)
        except ValueError:
            c.fail("role", f"unknown role (one of {', '.join(r.value for r in Role)})", role_raw)
    if role_raw is not None and (machine is not None or site is not None):
        c.fail("role", "give either role, or machine and/or site", role_raw)
    _machine_at_site(c, k, machine, site)
    if not c.ok or factor is None:
        return None
    return CycleTimeFactor(factor=factor, machine=machine, role=role, site=site)


def _demand(c: _Checker, k: _Known) -> Intervention | None:
    factor = c.number("factor", True, minimum=0.0, maximum=c.limits.max_demand_factor)
    site = c.member("site", k.sites, "site")
    product = c.member("product", k.products, "product")
    start, end = c.moment("start"), c.moment("end")
    if start is not None and end is not None:
        if start.in_h is not None and end.in_h is not None and end.in_h <= start.in_h:
            c.fail("end_in_h", "must be after start_in_h", end.in_h)
        if start.at is not None and end.at is not None and end.at <= start.at:
            c.fail("end", "must be after start", c.table.get("end"))
    if not c.ok or factor is None:
        return None
    return DemandMultiplier(factor=factor, site=site, product=product, start=start, end=end)


def _shipment_delay(c: _Checker, k: _Known) -> Intervention | None:
    sku = c.member("sku", k.skus, "SKU", required=True)
    delay = c.days("delay_d", True, minimum=-c.limits.max_scenario_offset_h / 24.0)
    site = c.member("site", k.sites, "site")
    shipment = c.text("shipment")
    if not c.ok or sku is None or delay is None:
        return None
    return ShipmentDelay(sku=sku, delay_d=delay, site=site, shipment=shipment)


def _lead_time(c: _Checker, k: _Known) -> Intervention | None:
    sku = c.member("sku", k.skus, "SKU")
    supplier = c.member("supplier", k.suppliers, "supplier")
    if sku is None and supplier is None and "sku" not in c.table and "supplier" not in c.table:
        c.fail("sku", "give sku or supplier", None)
    site = c.member("site", k.sites, "site")
    lead = c.days("lead_time_d", True, positive=True)
    sd = c.days("lead_time_sd_d", minimum=0.0)
    transport_raw = c.text("transport")
    transport = None
    if transport_raw is not None:
        try:
            transport = Transport(transport_raw)
        except ValueError:
            c.fail("transport", f"unknown transport (one of {', '.join(t.value for t in Transport)})", transport_raw)
    if not c.ok or lead is None:
        return None
    return LeadTimeChange(
        lead_time_d=lead, sku=sku, supplier=supplier, site=site, lead_time_sd_d=sd, transport=transport
    )


def _reorder(c: _Checker, k: _Known) -> Intervention | None:
    sku = c.member("sku", k.skus, "SKU", required=True)
    site = c.member("site", k.sites, "site")
    s = c.number("reorder_point", True, minimum=0.0)
    q = c.number("reorder_qty", True, positive=True)
    most = c.limits.max_orders_per_review
    if s is not None and q is not None and s > q * most:
        # one review orders Q until the position exceeds s: s/Q orders at once (a loop in the model)
        c.fail("reorder_qty",
               f"must be at least reorder_point / {most} (request limit: {most} orders per review)", q)
        return None
    if not c.ok or sku is None or s is None or q is None:
        return None
    return ReorderPolicy(sku=sku, reorder_point=s, reorder_qty=q, site=site)


def _shifts(c: _Checker, k: _Known) -> Intervention | None:
    site = c.member("site", k.sites, "site", required=True)
    raw = c.table.get("shift")
    shifts: list[Shift] = []
    if not isinstance(raw, list):
        c.fail("shift", "must be an array of tables [[shifts.shift]]", raw)
        raw = []
    for j, t in enumerate(raw):
        sc = _Checker(c.problems, f"{c.path}.shift[{j}]", t, {"name", "weekdays", "start", "end"}, c.limits)
        name = sc.text("name", True)
        days = sc.table.get("weekdays")
        if not isinstance(days, list) or not days or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in days
        ):
            sc.fail("weekdays", "must be a non-empty list of weekdays 0 (Monday) .. 6", days)
        start, end = _clock(sc, "start"), _clock(sc, "end")
        if sc.ok and name is not None and start is not None and end is not None and isinstance(days, list):
            shifts.append(Shift(name=name, weekdays=frozenset(days), start=start, end=end))
        else:
            c.ok = False
    holidays_raw = c.table.get("holidays", [])
    holidays: set[date] = set()
    if not isinstance(holidays_raw, list):
        c.fail("holidays", "must be a list of dates", holidays_raw)
    else:
        for j, h in enumerate(holidays_raw):
            if isinstance(h, date) and not isinstance(h, datetime):
                holidays.add(h)
            else:
                c.fail(f"holidays[{j}]", "must be a date like 2026-12-25", h)
    if not c.ok or site is None:
        return None
    return ShiftChange(site=site, calendar=ShiftCalendar(shifts=tuple(shifts), holidays=frozenset(holidays)))


def _overflow(c: _Checker, k: _Known) -> Intervention | None:
    src = c.member("from", k.sites, "site", required=True)
    dst = c.member("to", k.sites, "site", required=True)
    if src is not None and src == dst:
        c.fail("to", "must differ from 'from'", dst)
    transfer = c.hours("transfer_h", True, minimum=0.0)
    threshold = c.integer("threshold", True, minimum=0)
    if not c.ok or src is None or dst is None or transfer is None or threshold is None:
        return None
    return OverflowRouting(from_site=src, to_site=dst, transfer_h=transfer, threshold=threshold)


_TABLES: dict[str, tuple[set[str], _Parser]] = {
    "machine_down": ({"machine", "site", "start", "start_in_h", "duration_h"}, _machine_down),
    "machines_added": ({"site", "template", "count"}, _machines(removed=False)),
    "machines_removed": ({"site", "template", "count"}, _machines(removed=True)),
    "cycle_time": ({"factor", "machine", "role", "site"}, _cycle_time),
    "demand": ({"factor", "site", "product", "start", "start_in_h", "end", "end_in_h"}, _demand),
    "shipment_delay": ({"sku", "delay_d", "site", "shipment"}, _shipment_delay),
    "lead_time": ({"sku", "supplier", "site", "lead_time_d", "lead_time_sd_d", "transport"}, _lead_time),
    "reorder_policy": ({"sku", "site", "reorder_point", "reorder_qty"}, _reorder),
    "shifts": ({"site", "shift", "holidays"}, _shifts),
    "overflow": ({"from", "to", "transfer_h", "threshold"}, _overflow),
}


def _known(fleet: FleetSpec | None) -> _Known:
    if fleet is None:
        return _Known(sites=None, machines=None, machine_sites=None, templates=None, skus=None, products=None,
                      suppliers=None)
    machine_sites: dict[str, set[str]] = {}
    for s in fleet.sites:
        for m in s.machines:
            machine_sites.setdefault(m.id, set()).add(s.id)
    return _Known(
        sites={s.id for s in fleet.sites},
        machines=set(machine_sites),
        machine_sites=machine_sites,
        templates={t.id for t in fleet.templates},
        skus={i.sku for s in fleet.sites for i in s.inventory},
        products={p.id for p in fleet.products},
        suppliers={i.supplier for s in fleet.sites for i in s.inventory},
    )


def parse_scenario(data: Mapping[str, Any], source: str, fleet: FleetSpec | None = None, *,
                   limits: Limits = DEFAULT_LIMITS) -> Scenario:
    """A :class:`Scenario` from a parsed TOML document; raises ``ConfigError`` listing every problem."""
    problems: list[Problem] = []
    top = _Checker(problems, "", data, {"name", "description", *_TABLES}, limits)
    if not isinstance(data, Mapping):
        raise ConfigError(source, problems)
    name = data.get("name", "scenario")
    if not isinstance(name, str) or not name:
        problems.append(Problem(path="name", message="must be a non-empty string", got=name))
    description = data.get("description", "")
    if not isinstance(description, str):
        problems.append(Problem(path="description", message="must be a string", got=description))
    del top
    known = _known(fleet)
    interventions: list[Intervention] = []
    for key, (allowed, parser) in _TABLES.items():
        if key not in data:
            continue
        tables = data[key]
        if not isinstance(tables, list):
            problems.append(Problem(path=key, message=f"must be an array of tables [[{key}]]", got=tables))
            continue
        for i, table in enumerate(tables):
            chk = _Checker(problems, f"{key}[{i}]", table, allowed, limits)
            if chk.ok or isinstance(table, Mapping):
                item = parser(chk, known)
                if item is not None and chk.ok:
                    interventions.append(item)
    if len(interventions) > limits.max_interventions:
        most = limits.max_interventions
        problems.append(Problem(path="", message=f"at most {most} interventions per scenario (request limit)",
                                got=len(interventions)))
    if problems:
        raise ConfigError(source, problems)
    return Scenario(
        name=name if isinstance(name, str) else "scenario",
        description=description if isinstance(description, str) else "",
        interventions=tuple(interventions),
    )


def loads_scenario(text: str, source: str, fleet: FleetSpec | None = None, *,
                   limits: Limits = DEFAULT_LIMITS) -> Scenario:
    """Parse a scenario from TOML ``text`` (``source`` names it in error messages)."""
    data = loads_toml(text, source)
    return parse_scenario(data, source, fleet, limits=limits)
