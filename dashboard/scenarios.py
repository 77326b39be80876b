"""What-if scenarios as the dashboard builds them: plain documents, validated, saved and loaded as TOML.

A scenario document is a plain ``dict`` (it lives in a ``dcc.Store``)::

    name = "P3 maintenance"
    site = "berlin"
    horizon_h = 168
    replications = 50
    [[interventions]]
    kind = "machine_down"
    machine = "P3"
    start_h = 24
    duration_h = 8

``INTERVENTIONS`` lists each kind with its fields; the page builds one form per kind from it and
the what-if service turns the document into the engine's typed scenario.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import Any

import tomli_w

from twin.errors import ConfigError, Problem
from twin.spec import FleetSpec

__all__ = ["FIELDS", "INTERVENTIONS", "FieldSpec", "scenario_from_toml", "scenario_problems", "scenario_to_toml"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldSpec:
    """One parameter of an intervention: its key, label, type and bounds."""

    key: str
    label: str
    type: str  # "machine" | "template" | "sku" | "product" | "site" | "float" | "int" | "weekdays" | "time"
    minimum: float | None = None
    maximum: float | None = None
    optional: bool = False


FIELDS: dict[str, FieldSpec] = {
    f.key: f
    for f in (
        FieldSpec(key="machine", label="Machine", type="machine"),
        FieldSpec(key="template", label="Machine template", type="template"),
        FieldSpec(key="sku", label="SKU", type="sku"),
        FieldSpec(key="product", label="Product family (empty: all)", type="product", optional=True),
        FieldSpec(key="target_site", label="Overflow to site", type="site"),
        FieldSpec(key="start_h", label="Starts after (h)", type="float", minimum=0.0),
        FieldSpec(key="duration_h", label="Duration (h)", type="float", minimum=0.0),
        FieldSpec(key="factor", label="Factor (×)", type="float", minimum=0.0, maximum=10.0),
        FieldSpec(key="count", label="Count", type="int", minimum=1, maximum=20),
        FieldSpec(key="days", label="Days", type="float", minimum=0.0, maximum=120.0),
        FieldSpec(key="reorder_point", label="Reorder point", type="float", minimum=0.0),
        FieldSpec(key="reorder_qty", label="Reorder quantity", type="float", minimum=0.0),
        FieldSpec(key="weekdays", label="Weekdays (0 = Mon)", type="weekdays"),
        FieldSpec(key="shift_start", label="Shift start (HH:MM)", type="time"),
        FieldSpec(key="shift_end", label="Shift end (HH:MM)", type="time"),
    )
}

# kind -> (label, fields)
INTERVENTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "machine_down": ("Machine down (maintenance, breakdown)", ("machine", "start_h", "duration_h")),
    "add_machines": ("Add machines", ("template", "count")),
    "remove_machine": ("Remove a machine", ("machine",)),
    "cycle_time_factor": ("Cycle-time factor", ("template", "factor")),
    "demand_multiplier": ("Demand multiplier", ("product", "factor", "start_h", "duration_h")),
    "shipment_delay": ("Shipment delay", ("sku", "days")),
    "lead_time_change": ("Supplier lead time", ("sku", "days")),
    "reorder_policy": ("Reorder policy (s, Q)", ("sku", "reorder_point", "reorder_qty")),
    "shift_change": ("Add a shift", ("weekdays", "shift_start", "shift_end")),
    "overflow_routing": ("Overflow orders to another site", ("target_site", "factor", "duration_h")),
}


def _check_value(fs: FieldSpec, value: Any, fleet: FleetSpec, site: str) -> str | None:
    if value is None or value == "":
        return None if fs.optional else "is required"
    if fs.type in ("float", "int"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        if fs.type == "int" and not float(value).is_integer():
            return "must be a whole number"
        if fs.minimum is not None and value < fs.minimum:
            return f"must be at least {fs.minimum:g}"
        if fs.maximum is not None and value > fs.maximum:
            return f"must be at most {fs.maximum:g}"
        return None
    if fs.type == "weekdays":
        ok = isinstance(value, list) and value and all(isinstance(d, int) and 0 <= d <= 6 for d in value)
        return None if ok else "must be a list of weekdays 0..6"
    if fs.type == "time":
        parts = str(value).split(":")
        ok = len(parts) == 2 and all(p.isdigit() for p in parts) and int(parts[0]) < 24 and int(parts[1]) < 60
        return None if ok else "must be HH:MM"
    try:
        spec = fleet.site(site)
    except KeyError:
        return None  # reported on the site itself
    known_by_type: dict[str, set[str]] = {
        "machine": {m.id for m in spec.machines},
        "template": {t.id for t in fleet.templates},
        "sku": {i.sku for i in spec.inventory},
        "product": {p.id for p in fleet.products},
        "site": {str(s.id) for s in fleet.sites} - {site},
    }
    return None if value in known_by_type[fs.type] else f"unknown {fs.type}"


def scenario_problems(doc: dict[str, Any], fleet: FleetSpec) -> list[Problem]:
    """Every problem of a scenario document (empty when it is valid)."""
    problems: list[Problem] = []
    site = doc.get("site")
    if site not in {s.id for s in fleet.sites}:
        problems.append(Problem(path="site", message="unknown site", got=site))
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(Problem(path="name", message="a scenario needs a name", got=name))
    horizon = doc.get("horizon_h")
    if not isinstance(horizon, int | float) or isinstance(horizon, bool) or not 1 <= horizon <= 24 * 60:
        problems.append(Problem(path="horizon_h", message="must be between 1 and 1440 hours", got=horizon))
    reps = doc.get("replications")
    if not isinstance(reps, int) or isinstance(reps, bool) or not 1 <= reps <= 1000:
        problems.append(Problem(path="replications", message="must be a whole number from 1 to 1000", got=reps))
    known_keys = {"name", "site", "at", "horizon_h", "replications", "interventions", "seed"}
    for key in sorted(set(doc) - known_keys):
        problems.append(Problem(path=key, message="unknown key", got=doc[key]))
    interventions = doc.get("interventions", [])
    if not isinstance(interventions, list):
        return [*problems, Problem(path="interventions", message="must be a list", got=interventions)]
    for i, item in enumerate(interventions):
        where = f"interventions[{i}]"
        if not isinstance(item, dict) or item.get("kind") not in INTERVENTIONS:
            got = item.get("kind") if isinstance(item, dict) else item
            problems.append(Problem(path=f"{where}.kind", message="unknown intervention kind", got=got))
            continue
        fields = INTERVENTIONS[item["kind"]][1]
        for key in sorted(set(item) - {"kind", *fields}):
            problems.append(Problem(path=f"{where}.{key}", message="unknown key", got=item[key]))
        for key in fields:
            msg = _check_value(FIELDS[key], item.get(key), fleet, str(site))
            if msg:
                problems.append(Problem(path=f"{where}.{key}", message=msg, got=item.get(key)))
    return problems


def scenario_to_toml(doc: dict[str, Any]) -> str:
    """A scenario document as TOML text (None values are left out: TOML has no null)."""
    clean = {k: v for k, v in doc.items() if v is not None}
    clean["interventions"] = [{k: v for k, v in i.items() if v is not None} for i in doc.get("interventions", [])]
    return tomli_w.dumps(clean)


def scenario_from_toml(text: str, fleet: FleetSpec, source: str = "scenario.toml") -> dict[str, Any]:
    """Parse and validate a scenario; raises ``ConfigError`` listing every problem."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [Problem(path="", message=f"not valid TOML: {exc}", has_got=False)]) from exc
    doc.setdefault("interventions", [])
    problems = scenario_problems(doc, fleet)
    if problems:
        raise ConfigError(source, problems)
    return doc
