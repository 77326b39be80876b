r"""What-if scenarios: typed interventions on a fork, and their TOML form validated all at once.

A :class:`Scenario` is a name and a tuple of interventions; build them in code or parse a TOML
document with :func:`loads_scenario` (the caller reads the file). Validation lists every problem
as ``file: path.to.key: what (got X)`` in one :class:`twin.errors.ConfigError` (each table a pydantic
model producing its intervention, through :mod:`twin.validation`; the types live in
:mod:`twin.sim.interventions`); given the fleet,
it also checks that the machines, sites, templates, SKUs and products named exist. Numbers must be
finite, and a scenario is held to ``twin.limits`` (interventions per scenario, machines added or
removed, demand factor, durations and offsets, orders one (s, Q) review may place) so that one
request cannot exhaust the server.

TOML layout (every table is an array of tables, so a scenario may hold several of each)::

    name = "Printer P3 maintenance"
    [[machine_down]]      machine, site?, start (datetime) or start_in_h, duration_h
    [[maintenance]]       machine, site?, start (datetime) or start_in_h, duration_h (down, then wear reset)
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

import enum
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, ClassVar, cast

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, ValidationInfo, model_validator

from twin.errors import ConfigError, Problem
from twin.limits import DEFAULT_LIMITS, Limits
from twin.sim.interventions import (
    CycleTimeFactor,
    DemandMultiplier,
    Intervention,
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
    TimeRef,
)
from twin.spec import FleetSpec, Role, Shift, ShiftCalendar, Transport
from twin.tomltext import loads_toml
from twin.validation import Wording, collect, fail

__all__ = [
    "CycleTimeFactor",
    "DemandMultiplier",
    "Intervention",
    "LeadTimeChange",
    "MachineDown",
    "MachinesAdded",
    "MachinesRemoved",
    "Maintenance",
    "OverflowRouting",
    "ReorderPolicy",
    "Scenario",
    "ShiftChange",
    "ShipmentDelay",
    "TimeRef",
    "loads_scenario",
    "parse_scenario",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Known:
    """What the fleet holds (None: no fleet given, anything goes)."""

    sites: set[str] | None = None
    machines: set[str] | None = None
    machine_sites: dict[str, set[str]] | None = None
    templates: set[str] | None = None
    skus: set[str] | None = None
    products: set[str] | None = None
    suppliers: set[str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Context:
    """What the validators of one scenario read: the request limits and the fleet's names."""

    limits: Limits
    known: _Known


# Field checks. A value given as None (a dict from code) is taken as not given, as it always was.
_Bound = float | Callable[[Limits], float] | None


def _ctx(info: ValidationInfo) -> _Context:
    return cast(_Context, info.context)


def _hours(limits: Limits) -> float:
    return limits.max_scenario_offset_h


def _days(limits: Limits) -> float:
    return limits.max_scenario_offset_h / 24.0


def _number(*, positive: bool = False, minimum: _Bound = None, maximum: _Bound = None) -> Any:
    def check(v: object, info: ValidationInfo) -> float | None:
        if v is None:
            return None
        limits = _ctx(info).limits
        lo = minimum(limits) if callable(minimum) else minimum
        hi = maximum(limits) if callable(maximum) else maximum
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise fail("must be a number", v)
        if not math.isfinite(v):
            raise fail("must be a number (finite)", v)
        if positive and v <= 0:
            raise fail("must be > 0", v)
        if lo is not None and v < lo:
            raise fail(f"must be >= {lo:g}", v)
        if hi is not None and v > hi:
            raise fail(f"must be <= {hi:g} (request limit)", v)
        if abs(v) > 1e15:  # an integer TOML accepts but a float cannot hold usefully
            raise fail("is out of range", v)
        return float(v)

    return PlainValidator(check)


def _integer(*, minimum: int = 0, maximum: Callable[[Limits], int] | None = None) -> Any:
    def check(v: object, info: ValidationInfo) -> int | None:
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            raise fail("must be an integer", v)
        if v < minimum:
            raise fail(f"must be >= {minimum}", v)
        most = maximum(_ctx(info).limits) if maximum is not None else None
        if most is not None and v > most:
            raise fail(f"must be <= {most} (request limit)", v)
        return v

    return PlainValidator(check)


def _text(v: object) -> str | None:
    if v is not None and (not isinstance(v, str) or not v):
        raise fail("must be a non-empty string", v)
    return v


def _member(known: str, what: str) -> Any:
    """A non-empty string naming one of the fleet's ``known`` (a ``_Known`` field) things."""
    def check(v: object, info: ValidationInfo) -> str | None:
        text = _text(v)
        names = getattr(_ctx(info).known, known)
        if text is not None and names is not None and text not in names:
            raise fail(f"unknown {what}", text)
        return text

    return PlainValidator(check)


def _choice(kind: type[enum.Enum], what: str) -> Any:
    def check(v: object) -> Any:
        text = _text(v)
        try:
            return None if text is None else kind(text)
        except ValueError:
            raise fail(f"unknown {what} (one of {', '.join(k.value for k in kind)})", text) from None

    return PlainValidator(check)


def _clock(v: object) -> time | None:
    text = _text(v)
    try:
        return None if text is None else time.fromisoformat(text)
    except ValueError:
        raise fail("must be a time of day like 06:00", text) from None


def _moment(key: str, *, required: bool = False) -> Any:
    """``key`` (a datetime with offset) or ``key_in_h`` (hours after the fork, checked before)."""
    def check(_: object, info: ValidationInfo) -> TimeRef | None:
        raw, rel = info.data["raw"], info.data.get(f"{key}_in_h")
        at_raw = raw.get(key)
        if at_raw is not None and f"{key}_in_h" in raw:
            raise fail(f"give either {key} or {key}_in_h, not both", at_raw, at=key)
        if at_raw is None:
            if required and rel is None and key not in raw and f"{key}_in_h" not in raw:
                raise fail(f"is required (or {key}_in_h)", None, at=key)
            return None if rel is None else TimeRef(in_h=rel)
        at = at_raw
        if isinstance(at_raw, str):
            try:
                at = datetime.fromisoformat(at_raw)
            except ValueError:
                raise fail("must be a date-time like 2026-11-24T06:00:00Z", at_raw, at=key) from None
        if not isinstance(at, datetime) or at.tzinfo is None:
            raise fail("must be a date-time with a UTC offset, like 2026-11-24T06:00:00Z", at_raw, at=key)
        return TimeRef(at=at.astimezone(UTC))

    return PlainValidator(check)


def _at_site(_: object, info: ValidationInfo) -> None:
    """The machine named is one of the site named (and a machine at several sites needs the site)."""
    machine, site = info.data.get("machine"), info.data.get("site")
    machine_sites = _ctx(info).known.machine_sites
    if machine is None or machine_sites is None or machine not in machine_sites:
        return
    where = machine_sites[machine]
    if site is None and len(where) > 1:
        raise fail(f"is required: machine {machine!r} exists at sites {', '.join(sorted(where))}", None, at="site")
    if site is not None and site not in where:
        raise fail(f"is not a machine of site {site!r}", machine, at="machine")


_Text = Annotated[str | None, PlainValidator(_text)]
_Site = Annotated[str | None, _member("sites", "site")]
_Sku = Annotated[str | None, _member("skus", "SKU")]
_Hours = Annotated[float | None, _number(minimum=0.0, maximum=_hours)]
_AtSite = Annotated[None, PlainValidator(_at_site)]


_CHECKS = itertools.count()


def _check() -> Any:
    """A check of several keys, run in its place among the fields (its alias is never a key of a file)."""
    return Field(default=None, validate_default=True, alias=f"\x00check{next(_CHECKS)}")


class _Table(BaseModel):
    """One table of a scenario: unknown keys are problems; ``raw`` is the table as given (for checks)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    raw: Any = Field(default=None, alias="\x00raw")

    @model_validator(mode="before")
    @classmethod
    def _keep_raw(cls, data: Any) -> Any:
        return {**data, "\x00raw": data} if isinstance(data, Mapping) else data

    def build(self) -> Intervention | None:  # pragma: no cover - every table defines it
        raise NotImplementedError


class _MachineDown(_Table):
    machine: Annotated[str | None, _member("machines", "machine")]
    site: _Site = None
    at_site: _AtSite = _check()
    start_in_h: Annotated[float | None, _number(maximum=_hours)] = None
    start: Any = None
    start_ref: Annotated[TimeRef | None, _moment("start", required=True)] = _check()
    duration_h: Annotated[float | None, _number(positive=True, maximum=_hours)]

    def build(self) -> Intervention | None:
        if self.machine is None or self.start_ref is None or self.duration_h is None:
            return None
        return MachineDown(machine=self.machine, start=self.start_ref, duration_h=self.duration_h, site=self.site)


class _Maintenance(_MachineDown):
    def build(self) -> Intervention | None:
        if self.machine is None or self.start_ref is None or self.duration_h is None:
            return None
        return Maintenance(machine=self.machine, start=self.start_ref, duration_h=self.duration_h, site=self.site)


class _Machines(_Table):
    made: ClassVar[type[MachinesAdded] | type[MachinesRemoved]] = MachinesAdded
    site: _Site
    template: Annotated[str | None, _member("templates", "machine template")]
    count: Annotated[int | None, _integer(minimum=1, maximum=lambda limits: limits.max_machines_changed)]

    def build(self) -> Intervention | None:
        if self.site is None or self.template is None or self.count is None:
            return None
        return self.made(site=self.site, template=self.template, count=self.count)


class _MachinesRemoved(_Machines):
    made = MachinesRemoved


def _role_scope(_: object, info: ValidationInfo) -> None:
    role = info.data["raw"].get("role")
    if isinstance(role, str) and role and (info.data.get("machine") is not None or info.data.get("site") is not None):
        raise fail("give either role, or machine and/or site", role, at="role")


class _CycleTime(_Table):
    factor: Annotated[float | None, _number(positive=True)]
    machine: Annotated[str | None, _member("machines", "machine")] = None
    site: _Site = None
    role: Annotated[Role | None, _choice(Role, "role")] = None
    role_scope: Annotated[None, PlainValidator(_role_scope)] = _check()
    at_site: _AtSite = _check()

    def build(self) -> Intervention | None:
        if self.factor is None:
            return None
        return CycleTimeFactor(factor=self.factor, machine=self.machine, role=self.role, site=self.site)


def _demand_order(_: object, info: ValidationInfo) -> None:
    start, end = info.data.get("start_ref"), info.data.get("end_ref")
    if start is None or end is None:
        return
    if start.in_h is not None and end.in_h is not None and end.in_h <= start.in_h:
        raise fail("must be after start_in_h", end.in_h, at="end_in_h")
    if start.at is not None and end.at is not None and end.at <= start.at:
        raise fail("must be after start", info.data["raw"].get("end"), at="end")


class _Demand(_Table):
    factor: Annotated[float | None, _number(minimum=0.0, maximum=lambda limits: limits.max_demand_factor)]
    site: _Site = None
    product: Annotated[str | None, _member("products", "product")] = None
    start_in_h: Annotated[float | None, _number(maximum=_hours)] = None
    start: Any = None
    start_ref: Annotated[TimeRef | None, _moment("start")] = _check()
    end_in_h: Annotated[float | None, _number(maximum=_hours)] = None
    end: Any = None
    end_ref: Annotated[TimeRef | None, _moment("end")] = _check()
    order: Annotated[None, PlainValidator(_demand_order)] = _check()

    def build(self) -> Intervention | None:
        if self.factor is None:
            return None
        return DemandMultiplier(factor=self.factor, site=self.site, product=self.product, start=self.start_ref,
                                end=self.end_ref)


class _ShipmentDelay(_Table):
    sku: _Sku
    delay_d: Annotated[float | None, _number(minimum=lambda limits: -_days(limits), maximum=_days)]
    site: _Site = None
    shipment: _Text = None

    def build(self) -> Intervention | None:
        if self.sku is None or self.delay_d is None:
            return None
        return ShipmentDelay(sku=self.sku, delay_d=self.delay_d, site=self.site, shipment=self.shipment)


def _sku_or_supplier(_: object, info: ValidationInfo) -> None:
    if "sku" not in info.data["raw"] and "supplier" not in info.data["raw"]:
        raise fail("give sku or supplier", None, at="sku")


class _LeadTime(_Table):
    sku: _Sku = None
    supplier: Annotated[str | None, _member("suppliers", "supplier")] = None
    either: Annotated[None, PlainValidator(_sku_or_supplier)] = _check()
    site: _Site = None
    lead_time_d: Annotated[float | None, _number(positive=True, maximum=_days)]
    lead_time_sd_d: Annotated[float | None, _number(minimum=0.0, maximum=_days)] = None
    transport: Annotated[Transport | None, _choice(Transport, "transport")] = None

    def build(self) -> Intervention | None:
        if self.lead_time_d is None:
            return None
        return LeadTimeChange(lead_time_d=self.lead_time_d, sku=self.sku, supplier=self.supplier, site=self.site,
                              lead_time_sd_d=self.lead_time_sd_d, transport=self.transport)


def _one_review(_: object, info: ValidationInfo) -> None:
    s, q = info.data.get("reorder_point"), info.data.get("reorder_qty")
    most = _ctx(info).limits.max_orders_per_review
    if s is not None and q is not None and s > q * most:
        # one review orders Q until the position exceeds s: s/Q orders at once (a loop in the model)
        raise fail(f"must be at least reorder_point / {most} (request limit: {most} orders per review)", q,
                   at="reorder_qty")


class _Reorder(_Table):
    sku: _Sku
    site: _Site = None
    reorder_point: Annotated[float | None, _number(minimum=0.0)]
    reorder_qty: Annotated[float | None, _number(positive=True)]
    one_review: Annotated[None, PlainValidator(_one_review)] = _check()

    def build(self) -> Intervention | None:
        if self.sku is None or self.reorder_point is None or self.reorder_qty is None:
            return None
        return ReorderPolicy(sku=self.sku, reorder_point=self.reorder_point, reorder_qty=self.reorder_qty,
                             site=self.site)


def _weekdays(days: object) -> frozenset[int]:
    if not isinstance(days, list) or not days or not all(
        isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in days
    ):
        raise fail("must be a non-empty list of weekdays 0 (Monday) .. 6", days)
    return frozenset(days)


def _not_a_table(v: object) -> None:
    if v is not None:
        raise fail("must be a table", v, at="")


class _Shift(_Table):
    table: Annotated[None, PlainValidator(_not_a_table)] = Field(default=None, alias="\x00table")
    name: _Text
    weekdays: Annotated[frozenset[int], PlainValidator(_weekdays)] = Field(default=None, validate_default=True)
    start: Annotated[time | None, PlainValidator(_clock)]
    end: Annotated[time | None, PlainValidator(_clock)]


def _shift_list(v: object) -> object:
    if not isinstance(v, list):
        raise fail("must be an array of tables [[shifts.shift]]", v)
    # a shift that is not a table is reported so, and then as lacking every key (as it always was)
    return [t if isinstance(t, Mapping) else {"\x00table": t} for t in v]


def _holidays(v: object) -> object:
    if not isinstance(v, list):
        raise fail("must be a list of dates", v)
    return v


def _holiday(h: object) -> date:
    if isinstance(h, date) and not isinstance(h, datetime):
        return h
    raise fail("must be a date like 2026-12-25", h)


class _Shifts(_Table):
    site: _Site
    shift: Annotated[list[_Shift], BeforeValidator(_shift_list)] = Field(default=None, validate_default=True)
    holidays: Annotated[list[Annotated[date, PlainValidator(_holiday)]], BeforeValidator(_holidays)] = []

    def build(self) -> Intervention | None:
        shifts = []
        for s in self.shift:
            if s.name is None or s.start is None or s.end is None:
                return None
            shifts.append(Shift(name=s.name, weekdays=s.weekdays, start=s.start, end=s.end))
        if self.site is None:
            return None
        calendar = ShiftCalendar(shifts=tuple(shifts), holidays=frozenset(self.holidays))
        return ShiftChange(site=self.site, calendar=calendar)


def _differ(_: object, info: ValidationInfo) -> None:
    src, dst = info.data.get("from_site"), info.data.get("to")
    if src is not None and src == dst:
        raise fail("must differ from 'from'", dst, at="to")


class _Overflow(_Table):
    from_site: _Site = Field(alias="from")
    to: _Site
    differ: Annotated[None, PlainValidator(_differ)] = _check()
    transfer_h: _Hours
    threshold: Annotated[int | None, _integer(minimum=0)]

    def build(self) -> Intervention | None:
        if self.from_site is None or self.to is None or self.transfer_h is None or self.threshold is None:
            return None
        return OverflowRouting(from_site=self.from_site, to_site=self.to, transfer_h=self.transfer_h,
                               threshold=self.threshold)


_TABLES: dict[str, type[_Table]] = {
    "machine_down": _MachineDown,
    "maintenance": _Maintenance,
    "machines_added": _Machines,
    "machines_removed": _MachinesRemoved,
    "cycle_time": _CycleTime,
    "demand": _Demand,
    "shipment_delay": _ShipmentDelay,
    "lead_time": _LeadTime,
    "reorder_policy": _Reorder,
    "shifts": _Shifts,
    "overflow": _Overflow,
}


def _name(v: object) -> str:
    if not isinstance(v, str) or not v:
        raise fail("must be a non-empty string", v)
    return v


def _description(v: object) -> str:
    if not isinstance(v, str):
        raise fail("must be a string", v)
    return v


class _Scenario(BaseModel):
    """The top of a scenario file; its tables (arrays of tables) are checked one by one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, PlainValidator(_name)] = "scenario"
    description: Annotated[str, PlainValidator(_description)] = ""
    machine_down: Any = None
    maintenance: Any = None
    machines_added: Any = None
    machines_removed: Any = None
    cycle_time: Any = None
    demand: Any = None
    shipment_delay: Any = None
    lead_time: Any = None
    reorder_policy: Any = None
    shifts: Any = None
    overflow: Any = None


_WORDING = Wording(missing="is required", unknown="unknown key (allowed: {allowed})",
                   types={"model_type": "must be a table"}, unknown_first=True, dotted_quotes=True)


def _known(fleet: FleetSpec | None) -> _Known:
    if fleet is None:
        return _Known()
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
    context = _Context(limits=limits, known=_known(fleet))
    top = collect(_Scenario, data, problems, context=context, wording=_WORDING)
    if not isinstance(data, Mapping):
        raise ConfigError(source, problems)
    interventions: list[Intervention] = []
    for key, model in _TABLES.items():
        if key not in data:
            continue
        tables = data[key]
        if not isinstance(tables, list):
            problems.append(Problem(path=key, message=f"must be an array of tables [[{key}]]", got=tables))
            continue
        for i, table in enumerate(tables):
            checked = collect(model, table, problems, prefix=f"{key}[{i}]", context=context, wording=_WORDING)
            item = checked.build() if checked is not None else None
            if item is not None:
                interventions.append(item)
    if len(interventions) > limits.max_interventions:
        most = limits.max_interventions
        problems.append(Problem(path="", message=f"at most {most} interventions per scenario (request limit)",
                                got=len(interventions)))
    if problems or top is None:
        raise ConfigError(source, problems)
    return Scenario(name=top.name, description=top.description, interventions=tuple(interventions))


def loads_scenario(text: str, source: str, fleet: FleetSpec | None = None, *,
                   limits: Limits = DEFAULT_LIMITS) -> Scenario:
    """Parse a scenario from TOML ``text`` (``source`` names it in error messages)."""
    data = loads_toml(text, source)
    return parse_scenario(data, source, fleet, limits=limits)
