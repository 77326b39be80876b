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

``load_truth(path, fleet)`` checks the whole file and raises ``twin.errors.ConfigError`` listing
every problem, e.g. ``truth.toml: machines[0].mtbf_h: must be > 0 (got -3)``; unknown keys and
sites, machines, templates, products and SKUs the fleet does not have are named.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twin.errors import ConfigError, Problem
from twin.frozen import FrozenDict
from twin.spec import FleetSpec, InventoryItemSpec, MachineSpec
from twin.tomltext import loads_toml

__all__ = ["ItemTruth", "MachineTruth", "ResolvedItem", "ResolvedMachine", "Truth", "load_truth", "parse_truth"]


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
    source: str = ""

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


def _positive(v: float) -> str | None:
    return None if v > 0 else "must be > 0"


def _non_negative(v: float) -> str | None:
    return None if v >= 0 else "must be >= 0"


def _rate(v: float) -> str | None:
    return None if 0 <= v < 1 else "must be >= 0 and < 1"


_MACHINE_FIGURES: dict[str, Callable[[float], str | None]] = {
    "cycle_factor": _positive, "mtbf_h": _positive, "mttr_h": _positive, "scrap_rate": _rate}
_ITEM_FIGURES: dict[str, Callable[[float], str | None]] = {
    "lead_time_d": _positive, "lead_time_sd_d": _non_negative, "delay_factor": _non_negative, "bom_factor": _positive}


class _Checker:
    def __init__(self, fleet: FleetSpec) -> None:
        self.fleet = fleet
        self.problems: list[Problem] = []

    def entries(self, raw: Mapping[str, Any], section: str) -> list[tuple[str, dict[str, Any]]]:
        value = raw.get(section, [])
        if not isinstance(value, list):
            self.problems.append(Problem(path=section, message="must be an array of tables ([[...]])", got=value))
            return []
        out: list[tuple[str, dict[str, Any]]] = []
        for i, entry in enumerate(value):
            where = f"{section}[{i}]"
            if isinstance(entry, dict):
                out.append((where, entry))
            else:
                self.problems.append(Problem(path=where, message="must be a table", got=entry))
        return out

    def keys(self, where: str, entry: Mapping[str, Any], allowed: set[str]) -> None:
        for k in sorted(set(entry) - allowed):
            self.problems.append(Problem(path=f"{where}.{k}", message="unknown key", got=entry[k]))

    def name(self, where: str, entry: Mapping[str, Any], key: str, known: set[str], what: str,
             required: bool = True) -> str | None:
        if key not in entry:
            if required:
                self.problems.append(Problem(path=f"{where}.{key}", message="required key is missing", has_got=False))
            return None
        v = entry[key]
        if not isinstance(v, str):
            self.problems.append(Problem(path=f"{where}.{key}", message="must be a string", got=v))
            return None
        if v not in known:
            self.problems.append(Problem(path=f"{where}.{key}", message=f"unknown {what}", got=v))
            return None
        return v

    def figures(self, where: str, entry: Mapping[str, Any],
                rules: Mapping[str, Callable[[float], str | None]]) -> dict[str, float]:
        out: dict[str, float] = {}
        for k, rule in rules.items():
            if k not in entry:
                continue
            v = entry[k]
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                self.problems.append(Problem(path=f"{where}.{k}", message="must be a finite number", got=v))
                continue
            why = rule(float(v))
            if why is not None:
                self.problems.append(Problem(path=f"{where}.{k}", message=why, got=v))
                continue
            out[k] = float(v)
        return out

    def unique(self, seen: dict[object, str], key: object, where: str, what: str) -> bool:
        if key in seen:
            self.problems.append(Problem(path=where, message=f"{what} already set at {seen[key]}", has_got=False))
            return False
        seen[key] = where
        return True


def parse_truth(text: str, fleet: FleetSpec, *, source: str = "<truth>") -> Truth:
    """Check truth ``text`` (TOML) against ``fleet``; ``source`` names it in error messages."""
    raw = loads_toml(text, source)
    c = _Checker(fleet)
    sections = {"templates", "machines", "sites", "products", "skus"}
    for k in sorted(set(raw) - sections):
        c.problems.append(Problem(path=k, message="unknown key", got=raw[k]))
    site_ids = {str(s.id) for s in fleet.sites}
    template_ids = {str(t.id) for t in fleet.templates}
    product_ids = {str(p.id) for p in fleet.products}
    skus = {str(i.sku) for s in fleet.sites for i in s.inventory}

    templates: dict[str, MachineTruth] = {}
    seen: dict[object, str] = {}
    for where, e in c.entries(raw, "templates"):
        c.keys(where, e, {"template", *_MACHINE_FIGURES})
        tid = c.name(where, e, "template", template_ids, "template")
        figs = c.figures(where, e, _MACHINE_FIGURES)
        if tid is not None and c.unique(seen, ("template", tid), where, f"template {tid!r}"):
            templates[tid] = MachineTruth(**figs)

    machines: dict[tuple[str, str], MachineTruth] = {}
    for where, e in c.entries(raw, "machines"):
        c.keys(where, e, {"site", "machine", *_MACHINE_FIGURES})
        sid = c.name(where, e, "site", site_ids, "site")
        known = {str(m.id) for m in fleet.site(sid).machines} if sid is not None else set()
        mid = c.name(where, e, "machine", known, f"machine at {sid!r}") if sid is not None else None
        figs = c.figures(where, e, _MACHINE_FIGURES)
        if sid is not None and mid is not None and c.unique(seen, ("machine", sid, mid), where,
                                                            f"machine {sid}/{mid}"):
            machines[(sid, mid)] = MachineTruth(**figs)

    site_demand: dict[str, float] = {}
    for where, e in c.entries(raw, "sites"):
        c.keys(where, e, {"site", "demand_factor"})
        sid = c.name(where, e, "site", site_ids, "site")
        figs = c.figures(where, e, {"demand_factor": _positive})
        if sid is not None and c.unique(seen, ("site", sid), where, f"site {sid!r}") and "demand_factor" in figs:
            site_demand[sid] = figs["demand_factor"]

    product_demand: dict[tuple[str, str], float] = {}
    for where, e in c.entries(raw, "products"):
        c.keys(where, e, {"product", "site", "demand_factor"})
        pid = c.name(where, e, "product", product_ids, "product")
        sid = c.name(where, e, "site", site_ids, "site", required=False) or ""
        if sid and pid is not None and all(str(d.product) != pid for d in fleet.site(sid).demand):
            c.problems.append(Problem(path=f"{where}.product", message=f"no demand for it at {sid!r}", got=pid))
        figs = c.figures(where, e, {"demand_factor": _positive})
        if pid is not None and c.unique(seen, ("product", sid, pid), where, f"product {pid!r}") \
                and "demand_factor" in figs:
            product_demand[(sid, pid)] = figs["demand_factor"]

    items: dict[tuple[str, str], ItemTruth] = {}
    for where, e in c.entries(raw, "skus"):
        c.keys(where, e, {"sku", "site", *_ITEM_FIGURES})
        sid = c.name(where, e, "site", site_ids, "site", required=False) or ""
        known = {str(i.sku) for i in fleet.site(sid).inventory} if sid else skus
        sku = c.name(where, e, "sku", known, f"SKU at {sid!r}" if sid else "SKU")
        figs = c.figures(where, e, _ITEM_FIGURES)
        if sku is not None and c.unique(seen, ("sku", sid, sku), where, f"SKU {sku!r}"):
            items[(sid, sku)] = ItemTruth(**figs)

    if c.problems:
        raise ConfigError(source, c.problems)
    return Truth(templates=FrozenDict(templates), machines=FrozenDict(machines), site_demand=FrozenDict(site_demand),
                 product_demand=FrozenDict(product_demand), items=FrozenDict(items), source=source)
