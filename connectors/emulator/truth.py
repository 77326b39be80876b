"""The hidden truth of the emulated plant: the figures reality has where they differ from the configuration.

A twin is configured with what its engineers believe (``fleet.toml``); the real plant differs. The
emulator runs the *truth*, so calibration and backtests can be judged by whether they recover it.
Without a truth file the plant runs the configured figures.

Format (TOML; every table array optional, every figure optional; a figure left out keeps the
configured one)::

    [[templates]]                 # every machine of a template
    template = "fdm-printer"
    cycle_factor = 1.1            # real cycle = ideal_cycle_time_s x cycle_factor (> 0)
    mtbf_h = 150                  # mean operating hours between failures (> 0)
    mttr_h = 2.5                  # mean repair hours (> 0)
    scrap_rate = 0.05             # chance a unit is scrapped at this machine (0 <= x < 1)

    [[machines]]                  # one machine; overrides its template's entry figure by figure
    site = "pod-berlin"
    machine = "CNC1"
    cycle_factor = 1.3

    [[sites]]
    site = "pod-lyon"
    demand_factor = 1.25          # multiplies every product's orders_per_day at the site (> 0)

    [[products]]
    product = "smart-lamp"
    site = "lm-rotterdam"         # optional: without it, at every site (a site entry wins)
    demand_factor = 1.1           # multiplies orders_per_day (on top of the site's factor)

    [[skus]]
    sku = "DRIVE-UNIT"
    site = "lm-rotterdam"         # optional: without it, at every site (a site entry wins)
    lead_time_d = 38              # real mean lead time, days (> 0)
    lead_time_sd_d = 7            # its spread (standard deviation), days (>= 0)
    delay_factor = 2.0            # multiplies the random delay beyond the lead time: the right tail
                                  # of late shipments (sea 20 % of shipments, 5 d mean; air 10 %, 1 d;
                                  # local 5 %, 0.5 d; see connectors.emulator.plant) (>= 0)
    bom_factor = 1.2              # real usage per unit = BOM qty x bom_factor (> 0)

    [[degradation]]               # hidden wear of every machine of a template (off without an entry)
    template = "fdm-printer"
    wear_per_h = 0.01             # wear gained per operating hour at full load (> 0); load = the cycle's
                                  # fill (units / batch_size), 1 for a unit machine
    hazard_k = 20                 # failure hazard h = (1 + hazard_k x wear^hazard_shape) / MTBF (>= 0)
    hazard_shape = 2              # (> 0)
    vibration_per_wear = 1.5      # mm/s added to vibration while running, per unit of wear (>= 0)
    temperature_per_wear = 4      # degC added to every temperature signal, per unit of wear (>= 0)
    power_per_wear = 0.2          # share of rated power added while running, per unit of wear (>= 0)
    maintenance_reset = 0.8       # share of the wear a planned maintenance removes (0 <= x <= 1)
    repair_reset = 1.0            # share a repair removes (0 <= x <= 1)
    maintenance_every_h = 120     # operating hours between planned maintenance stops (> 0; default:
                                  # the plant's maintenance_every_h)

    [[episodes]]                  # a scheduled disturbance of a temperature signal (off without an entry;
    site = "pod-berlin"           # the demo's truth file has some): at local time `time` of the site on
    machines = ["P1", "P2"]       # the days_back-th most recent day before the backfilled history's
    signal = "nozzle_temp_c"      # end on which `time` is in a shift (0: the end's own day, if `time`
    days_back = 1                 # is before the end), for for_min minutes, the signal reads at least
    time = "10:00"                # to_c degC (a heater running away). machines: optional, default every
    for_min = 20                  # machine of the site with that temperature signal. period_s (> 0,
    to_c = 280                    # optional): a chattering sensor, at least to_c for the first 2/3 of
    period_s = 180                # each period only. Only the backfilled readings change (no random
                                  # draw, no event of the plant): the same plant, the same draws.

``load_truth(path, fleet)`` checks the whole file and raises ``twin.errors.ConfigError`` listing
every problem, e.g. ``truth.toml: machines[0].mtbf_h: must be > 0 (got -3)``; unknown keys and
sites, machines, templates, products and SKUs the fleet does not have are named. Each section's
entries are pydantic models checked through ``twin.validation``, like every other input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, cast

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationInfo

from twin.errors import ConfigError, Problem
from twin.frozen import FrozenDict
from twin.spec import FleetSpec, InventoryItemSpec, MachineSpec
from twin.tomltext import loads_toml
from twin.validation import Wording, collect, fail

__all__ = ["Degradation", "Episode", "ItemTruth", "MachineTruth", "ResolvedItem", "ResolvedMachine", "Truth",
           "load_truth", "parse_truth"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineTruth:
    """A machine's real figures (None: as configured)."""

    cycle_factor: float | None = None
    mtbf_h: float | None = None
    mttr_h: float | None = None
    scrap_rate: float | None = None

    def over(self, base: MachineTruth) -> MachineTruth:
        """These figures, falling back to ``base`` where unset."""
        return MachineTruth(
            cycle_factor=self.cycle_factor if self.cycle_factor is not None else base.cycle_factor,
            mtbf_h=self.mtbf_h if self.mtbf_h is not None else base.mtbf_h,
            mttr_h=self.mttr_h if self.mttr_h is not None else base.mttr_h,
            scrap_rate=self.scrap_rate if self.scrap_rate is not None else base.scrap_rate)


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemTruth:
    """An inventory item's real figures (None: as configured)."""

    lead_time_d: float | None = None
    lead_time_sd_d: float | None = None
    delay_factor: float | None = None
    bom_factor: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Degradation:
    """The hidden wear law of a template's machines (see the module docstring for each figure)."""

    wear_per_h: float = 0.01
    hazard_k: float = 20.0
    hazard_shape: float = 2.0
    vibration_per_wear: float = 0.0
    temperature_per_wear: float = 0.0
    power_per_wear: float = 0.0
    maintenance_reset: float = 1.0
    repair_reset: float = 1.0
    maintenance_every_h: float | None = None

    def hazard_factor(self, wear: float) -> float:
        """How many times the base hazard (1 / MTBF) a machine with ``wear`` has: 1 + k x wear^shape.

        >>> Degradation(hazard_k=20, hazard_shape=2).hazard_factor(0.5)
        6.0
        """
        return 1.0 + self.hazard_k * float(max(0.0, wear) ** self.hazard_shape)


@dataclass(frozen=True, slots=True, kw_only=True)
class Episode:
    """A scheduled disturbance: temperature ``signal`` of ``machines`` at ``site`` reads at least ``to_c``.

    For ``for_s`` seconds from ``at`` (local ``HH:MM``) of the ``days_back``-th shift day before the
    history's end (``connectors.emulator.backfill.episode_spans``); with ``period_s``, only in the
    first two thirds of each period (a chattering alarm).
    """

    site: str
    machines: tuple[str, ...]
    signal: str
    days_back: int
    at: str
    for_s: float
    to_c: float
    period_s: float | None = None

    def raised(self, elapsed_s: float) -> bool:
        """Whether the signal is forced up ``elapsed_s`` seconds after the episode's start.

        >>> e = Episode(site="s", machines=("P1",), signal="x", days_back=1, at="10:00", for_s=540, to_c=280,
        ...             period_s=180)
        >>> [e.raised(t) for t in (-1, 0, 60, 120, 180, 240, 540)]
        [False, True, True, False, True, True, False]
        """
        if not 0 <= elapsed_s < self.for_s:
            return False
        return self.period_s is None or elapsed_s % self.period_s < self.period_s * 2.0 / 3.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedMachine:
    """The figures a machine really runs with."""

    cycle_factor: float
    mtbf_h: float
    mttr_h: float
    scrap_rate: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedItem:
    """The figures an item's supply and use really follow."""

    lead_time_d: float
    lead_time_sd_d: float
    delay_factor: float
    bom_factor: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Truth:
    """The real figures where they differ from the configuration; ``Truth()`` is the configuration itself."""

    templates: FrozenDict[str, MachineTruth] = field(default_factory=FrozenDict)
    machines: FrozenDict[tuple[str, str], MachineTruth] = field(default_factory=FrozenDict)  # (site, machine)
    site_demand: FrozenDict[str, float] = field(default_factory=FrozenDict)
    product_demand: FrozenDict[tuple[str, str], float] = field(default_factory=FrozenDict)  # (site or "", product)
    items: FrozenDict[tuple[str, str], ItemTruth] = field(default_factory=FrozenDict)  # (site or "", sku)
    degradation: FrozenDict[str, Degradation] = field(default_factory=FrozenDict)  # template -> wear law
    episodes: tuple[Episode, ...] = ()
    source: str = ""

    def wear(self, spec: MachineSpec) -> Degradation | None:
        """The wear law of ``spec`` (by its template), or None: the machine does not degrade."""
        return self.degradation.get(str(spec.template.id))

    def machine(self, spec: MachineSpec) -> ResolvedMachine:
        """The real cycle factor, MTBF, MTTR and scrap rate of ``spec``."""
        tpl = spec.template
        t = self.machines.get((str(spec.site), str(spec.id)), MachineTruth()).over(
            self.templates.get(str(tpl.id), MachineTruth()))
        return ResolvedMachine(cycle_factor=t.cycle_factor if t.cycle_factor is not None else 1.0,
                               mtbf_h=t.mtbf_h if t.mtbf_h is not None else tpl.mtbf_h,
                               mttr_h=t.mttr_h if t.mttr_h is not None else tpl.mttr_h,
                               scrap_rate=t.scrap_rate if t.scrap_rate is not None else tpl.scrap_rate)

    def demand_factor(self, site: str, product: str) -> float:
        """How much more (or less) demand for ``product`` really comes to ``site`` than configured."""
        p = self.product_demand.get((site, product), self.product_demand.get(("", product), 1.0))
        return self.site_demand.get(site, 1.0) * p

    def item(self, site: str, spec: InventoryItemSpec) -> ResolvedItem:
        """The real lead time, its spread, the delay factor and the BOM usage factor of an item at ``site``."""
        own = self.items.get((site, str(spec.sku)), ItemTruth())
        every = self.items.get(("", str(spec.sku)), ItemTruth())

        def pick(name: str, configured: float) -> float:
            for t in (own, every):
                v = getattr(t, name)
                if v is not None:
                    return float(v)
            return configured

        return ResolvedItem(lead_time_d=pick("lead_time_d", spec.lead_time_d),
                            lead_time_sd_d=pick("lead_time_sd_d", spec.lead_time_sd_d),
                            delay_factor=pick("delay_factor", 1.0), bom_factor=pick("bom_factor", 1.0))


def load_truth(path: Path, fleet: FleetSpec) -> Truth:
    """Read and check the truth file at ``path`` against ``fleet``; ``ConfigError`` lists every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [Problem(path="", message=f"cannot read file: {exc.strerror}",
                                              has_got=False)]) from exc
    return parse_truth(text, fleet, source=str(path))


@dataclass(frozen=True, slots=True, kw_only=True)
class _Context:
    """The fleet's names, and which entry set each template, machine, site, product and SKU so far."""

    fleet: FleetSpec
    sites: set[str]
    templates: set[str]
    products: set[str]
    skus: set[str]
    seen: dict[object, str] = field(default_factory=dict)


def _ctx(info: ValidationInfo) -> _Context:
    return cast(_Context, info.context)


def _figure(rule: Callable[[float], bool], why: str) -> Any:
    def check(v: object) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise fail("must be a finite number", v)
        if not rule(float(v)):
            raise fail(why, v)
        return float(v)

    return PlainValidator(check)


_Positive = Annotated[float | None, _figure(lambda v: v > 0, "must be > 0")]
_NonNegative = Annotated[float | None, _figure(lambda v: v >= 0, "must be >= 0")]


def _name_of(v: object, known: set[str], what: str) -> str:
    if not isinstance(v, str):
        raise fail("must be a string", v)
    if v not in known:
        raise fail(f"unknown {what}", v)
    return v


def _known(attr: str, what: str) -> Any:
    """A name of one of the fleet's ``attr`` (a ``_Context`` field)."""
    return PlainValidator(lambda v, info: _name_of(v, getattr(_ctx(info), attr), what))


_Site = Annotated[str | None, _known("sites", "site")]


def _machine(v: object, info: ValidationInfo) -> str | None:
    """A machine of the entry's site (not checked while the site is not known)."""
    sid = info.data.get("site")
    if sid is None:
        return None
    if v is None:
        raise fail("required key is missing", has_got=False)
    return _name_of(v, {str(m.id) for m in _ctx(info).fleet.site(sid).machines}, f"machine at {sid!r}")


def _sku(v: object, info: ValidationInfo) -> str:
    """A SKU of the entry's site, or of any site."""
    sid = info.data.get("site") or ""
    if not sid:
        return _name_of(v, _ctx(info).skus, "SKU")
    return _name_of(v, {str(i.sku) for i in _ctx(info).fleet.site(sid).inventory}, f"SKU at {sid!r}")


def _has_demand(_: object, info: ValidationInfo) -> None:
    sid, pid = info.data.get("site") or "", info.data.get("product")
    if sid and pid is not None and all(str(d.product) != pid for d in _ctx(info).fleet.site(sid).demand):
        raise fail(f"no demand for it at {sid!r}", pid, at="product")


def _once(key: Callable[[dict[str, Any]], tuple[object, ...] | None], what: Callable[[dict[str, Any]], str]) -> Any:
    """The entry is the first to set what it sets (its ``key``; None: nothing to set, its name is wrong)."""
    def check(_: object, info: ValidationInfo) -> None:
        k, seen = key(info.data), _ctx(info).seen
        if k is None:
            return
        if k in seen:
            raise fail(f"{what(info.data)} already set at {seen[k]}", at="", has_got=False)
        seen[k] = info.data["at"]

    return PlainValidator(check)


def _check(alias: str) -> Any:
    return Field(default=None, validate_default=True, alias=f"\x00{alias}")


class _Entry(BaseModel):
    """One entry of a section; ``at`` is its path (for "already set at")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: str = Field(alias="\x00at")


_Rate = Annotated[float | None, _figure(lambda v: 0 <= v < 1, "must be >= 0 and < 1")]


def _machine_truth(e: _TemplateEntry | _MachineEntry) -> MachineTruth:
    return MachineTruth(cycle_factor=e.cycle_factor, mtbf_h=e.mtbf_h, mttr_h=e.mttr_h, scrap_rate=e.scrap_rate)


class _TemplateEntry(_Entry):
    template: Annotated[str, _known("templates", "template")]
    cycle_factor: _Positive = None
    mtbf_h: _Positive = None
    mttr_h: _Positive = None
    scrap_rate: _Rate = None
    once: Annotated[None, _once(lambda d: ("template", d["template"]) if "template" in d else None,
                                lambda d: f"template {d['template']!r}")] = _check("once")


def _machine_key(d: dict[str, Any]) -> tuple[object, ...] | None:
    return ("machine", d["site"], d["machine"]) if d.get("site") and d.get("machine") else None


class _MachineEntry(_Entry):
    site: Annotated[str, _known("sites", "site")]
    machine: Annotated[str | None, PlainValidator(_machine)] = Field(default=None, validate_default=True)
    cycle_factor: _Positive = None
    mtbf_h: _Positive = None
    mttr_h: _Positive = None
    scrap_rate: _Rate = None
    once: Annotated[None, _once(_machine_key, lambda d: f"machine {d['site']}/{d['machine']}")] = _check("once")


class _SiteEntry(_Entry):
    site: Annotated[str, _known("sites", "site")]
    demand_factor: _Positive = None
    once: Annotated[None, _once(lambda d: ("site", d["site"]) if "site" in d else None,
                                lambda d: f"site {d['site']!r}")] = _check("once")


class _ProductEntry(_Entry):
    product: Annotated[str, _known("products", "product")]
    site: _Site = None
    has_demand: Annotated[None, PlainValidator(_has_demand)] = _check("has_demand")
    demand_factor: _Positive = None
    once: Annotated[None, _once(lambda d: ("product", d.get("site") or "", d["product"]) if "product" in d else None,
                                lambda d: f"product {d['product']!r}")] = _check("once")


class _SkuEntry(_Entry):
    site: _Site = None
    sku: Annotated[str, PlainValidator(_sku)]
    lead_time_d: _Positive = None
    lead_time_sd_d: _NonNegative = None
    delay_factor: _NonNegative = None
    bom_factor: _Positive = None
    once: Annotated[None, _once(lambda d: ("sku", d.get("site") or "", d["sku"]) if "sku" in d else None,
                                lambda d: f"SKU {d['sku']!r}")] = _check("once")


_Share = Annotated[float | None, _figure(lambda v: 0 <= v <= 1, "must be >= 0 and <= 1")]


class _DegradationEntry(_Entry):
    template: Annotated[str, _known("templates", "template")]
    wear_per_h: _Positive = None
    hazard_k: _NonNegative = None
    hazard_shape: _Positive = None
    vibration_per_wear: _NonNegative = None
    temperature_per_wear: _NonNegative = None
    power_per_wear: _NonNegative = None
    maintenance_reset: _Share = None
    repair_reset: _Share = None
    maintenance_every_h: _Positive = None
    once: Annotated[None, _once(lambda d: ("degradation", d["template"]) if "template" in d else None,
                                lambda d: f"template {d['template']!r}")] = _check("once")


def _temperature_signal(v: object, info: ValidationInfo) -> str | None:
    """A temperature signal of every machine of the episode (not checked while its site is not known)."""
    if not isinstance(v, str):
        raise fail("must be a string", v)
    sid = info.data.get("site")
    if sid is None:
        return v
    wanted = info.data.get("machines")
    machines = [m for m in _ctx(info).fleet.site(sid).machines if wanted is None or str(m.id) in wanted]
    lacking = [str(m.id) for m in machines
               if (sig := m.template.signal(v)) is None or sig.kind.value != "temperature"]
    if wanted is None and len(lacking) < len(machines):
        lacking = []  # every machine of the site with that signal
    if not machines or lacking:
        raise fail(f"not a temperature signal of {', '.join(lacking) or 'any machine'} at {sid!r}", v)
    return v


def _machines(v: object, info: ValidationInfo) -> tuple[str, ...] | None:
    if v is None:
        return None
    if not isinstance(v, list) or not v:
        raise fail("must be a non-empty list of machine ids", v)
    sid = info.data.get("site")
    if sid is None:
        return tuple(str(x) for x in v)
    return tuple(_name_of(x, {str(m.id) for m in _ctx(info).fleet.site(sid).machines}, f"machine at {sid!r}")
                 for x in v)


def _days_back(v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 30:
        raise fail("must be a whole number of days from 0 to 30", v)
    return v


def _hhmm(v: object) -> str:
    if not isinstance(v, str) or len(v) != 5 or v[2] != ":" or not (v[:2] + v[3:]).isdigit() \
            or int(v[:2]) > 23 or int(v[3:]) > 59:
        raise fail("must be a local time HH:MM", v)
    return v


class _EpisodeEntry(_Entry):
    site: Annotated[str, _known("sites", "site")]
    machines: Annotated[tuple[str, ...] | None, PlainValidator(_machines)] = None
    signal: Annotated[str, PlainValidator(_temperature_signal)]
    days_back: Annotated[int, PlainValidator(_days_back)]
    time: Annotated[str, PlainValidator(_hhmm)]
    for_min: Annotated[float, _figure(lambda v: v > 0, "must be > 0")]
    to_c: Annotated[float, _figure(lambda v: True, "")]
    period_s: _Positive = None


def _episode(e: _EpisodeEntry, fleet: FleetSpec) -> Episode:
    machines = e.machines or tuple(str(m.id) for m in fleet.site(e.site).machines
                                   if (sig := m.template.signal(e.signal)) is not None
                                   and sig.kind.value == "temperature")
    return Episode(site=e.site, machines=machines, signal=e.signal, days_back=e.days_back, at=e.time,
                   for_s=e.for_min * 60.0, to_c=e.to_c, period_s=e.period_s)


def _degradation(e: _DegradationEntry) -> Degradation:
    given = {k: v for k, v in e.model_dump().items() if k not in ("at", "template", "once") and v is not None}
    return Degradation(**given)


# entries' unknown keys sorted and first, paths as written (the truth file's messages since the start)
_WORDING = Wording(types={"model_type": "must be a table"}, unknown_first=True, bare_keys=True)
_SECTIONS: dict[str, type[_Entry]] = {"templates": _TemplateEntry, "machines": _MachineEntry, "sites": _SiteEntry,
                                      "products": _ProductEntry, "skus": _SkuEntry,
                                      "degradation": _DegradationEntry, "episodes": _EpisodeEntry}


def _entries(raw: Mapping[str, Any], section: str, context: _Context, problems: list[Problem]) -> list[Any]:
    value = raw.get(section, [])
    if not isinstance(value, list):
        problems.append(Problem(path=section, message="must be an array of tables ([[...]])", got=value))
        return []
    out: list[Any] = []
    for i, entry in enumerate(value):
        where = f"{section}[{i}]"
        data = {**dict(sorted(entry.items())), "\x00at": where} if isinstance(entry, dict) else entry
        checked = collect(_SECTIONS[section], data, problems, prefix=where, context=context, wording=_WORDING)
        if checked is not None:
            out.append(checked)
    return out


def parse_truth(text: str, fleet: FleetSpec, *, source: str = "<truth>") -> Truth:
    """Check truth ``text`` (TOML) against ``fleet``; ``source`` names it in error messages."""
    raw = loads_toml(text, source)
    problems = [Problem(path=k, message="unknown key", got=raw[k]) for k in sorted(set(raw) - set(_SECTIONS))]
    context = _Context(fleet=fleet, sites={str(s.id) for s in fleet.sites},
                       templates={str(t.id) for t in fleet.templates}, products={str(p.id) for p in fleet.products},
                       skus={str(i.sku) for s in fleet.sites for i in s.inventory})
    templates = {e.template: _machine_truth(e) for e in _entries(raw, "templates", context, problems)}
    machines = {(e.site, e.machine): _machine_truth(e) for e in _entries(raw, "machines", context, problems)}
    site_demand = {e.site: e.demand_factor for e in _entries(raw, "sites", context, problems)
                   if e.demand_factor is not None}
    product_demand = {(e.site or "", e.product): e.demand_factor for e in _entries(raw, "products", context, problems)
                      if e.demand_factor is not None}
    items = {(e.site or "", e.sku): ItemTruth(lead_time_d=e.lead_time_d, lead_time_sd_d=e.lead_time_sd_d,
                                              delay_factor=e.delay_factor, bom_factor=e.bom_factor)
             for e in _entries(raw, "skus", context, problems)}
    degradation = {e.template: _degradation(e) for e in _entries(raw, "degradation", context, problems)}
    episodes = tuple(_episode(e, fleet) for e in _entries(raw, "episodes", context, problems))
    if problems:
        raise ConfigError(source, problems)
    return Truth(templates=FrozenDict(templates), machines=FrozenDict(machines), site_demand=FrozenDict(site_demand),
                 product_demand=FrozenDict(product_demand), items=FrozenDict(items),
                 degradation=FrozenDict(degradation), episodes=episodes, source=source)
