"""What-if scenarios as the dashboard builds them: plain documents in the engine's own TOML format.

A scenario document is a plain ``dict`` (it lives in a ``dcc.Store``): run settings (``name``,
``site``, ``at``, ``horizon_h``, ``replications``) and a list of interventions, each one table of
``twin.sim.scenario``'s TOML format with its table name in ``kind``::

    {"name": "P3 maintenance", "site": "pod-berlin", "horizon_h": 168, "replications": 50,
     "interventions": [{"kind": "machine_down", "site": "pod-berlin", "machine": "P3",
                        "start_in_h": 18, "duration_h": 8}]}

Saved as TOML, the interventions become the engine's ``[[machine_down]]`` tables, so
``twin whatif CONFIG --scenario FILE`` and ``twin.sim.scenario.loads_scenario`` read what the page
saves; the run settings the engine does not know go into ``#@ key = value`` comment lines (the
engine ignores comments, the page reads them back). Validation of the interventions is the
engine's own (``parse_scenario``): one set of rules, one set of messages. The server-side limits of
a dashboard run (replications, horizon) are in ``WhatIfLimits`` (within the server-wide request
limits of ``twin.limits.Limits``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import tomli_w

from twin.errors import ConfigError, Problem
from twin.sim.scenario import Scenario, parse_scenario
from twin.spec import FleetSpec
from twin.tomltext import loads_toml

__all__ = [
    "FIELDS",
    "INTERVENTIONS",
    "FieldSpec",
    "WhatIfLimits",
    "describe",
    "engine_document",
    "intervention_from_form",
    "scenario_from_toml",
    "scenario_problems",
    "scenario_to_toml",
    "to_scenario",
]

RUN_KEYS = ("site", "at", "horizon_h", "replications", "seed")
HEADER_PREFIX = "#@ "


@dataclass(frozen=True, slots=True, kw_only=True)
class WhatIfLimits:
    """What one dashboard what-if run may ask for (checked on the server before and when it runs).

    A policy of the dashboard inside the engine's own caps (``twin.limits.Limits``: 1000
    replications, 90 days), so the two are different things with different names.
    """

    max_replications: int = 500
    max_horizon_h: float = 30 * 24.0


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldSpec:
    """One form field of an intervention: its key in the engine's table, label, type and bounds."""

    key: str
    label: str
    type: str  # "machine" | "template" | "sku" | "product" | "site" | "float" | "int" | "weekdays" | "time"
    minimum: float | None = None
    maximum: float | None = None


FIELDS: dict[str, FieldSpec] = {
    f.key: f
    for f in (
        FieldSpec(key="machine", label="Machine", type="machine"),
        FieldSpec(key="template", label="Machine template", type="template"),
        FieldSpec(key="count", label="Count", type="int", minimum=1, maximum=20),
        FieldSpec(key="sku", label="SKU", type="sku"),
        FieldSpec(key="product", label="Product family (empty: all)", type="product"),
        FieldSpec(key="to", label="Overflow to site", type="site"),
        FieldSpec(key="start_in_h", label="Starts after (h)", type="float", minimum=0.0),
        FieldSpec(key="duration_h", label="Duration (h)", type="float", minimum=0.0),
        FieldSpec(key="end_in_h", label="Ends after (h)", type="float", minimum=0.0),
        FieldSpec(key="factor", label="Factor (×)", type="float", minimum=0.0, maximum=10.0),
        FieldSpec(key="delay_d", label="Delay (days)", type="float", minimum=0.0, maximum=120.0),
        FieldSpec(key="lead_time_d", label="Lead time (days)", type="float", minimum=0.0, maximum=120.0),
        FieldSpec(key="reorder_point", label="Reorder point", type="float", minimum=0.0),
        FieldSpec(key="reorder_qty", label="Reorder quantity", type="float", minimum=0.0),
        FieldSpec(key="threshold", label="When open orders reach", type="int", minimum=0),
        FieldSpec(key="transfer_h", label="Transfer time (h)", type="float", minimum=0.0),
        FieldSpec(key="weekdays", label="Weekdays", type="weekdays"),
        FieldSpec(key="shift_start", label="Shift start (HH:MM)", type="time"),
        FieldSpec(key="shift_end", label="Shift end (HH:MM)", type="time"),
    )
}

# engine table name -> (label, form fields)
INTERVENTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "machine_down": ("Machine down (maintenance, breakdown)", ("machine", "start_in_h", "duration_h")),
    "maintenance": ("Maintenance: down, then its wear reset", ("machine", "start_in_h", "duration_h")),
    "machines_added": ("Add machines", ("template", "count")),
    "machines_removed": ("Remove machines", ("template", "count")),
    "cycle_time": ("Cycle-time factor (no machine: whole site)", ("machine", "factor")),
    "demand": ("Demand multiplier", ("product", "factor", "start_in_h", "end_in_h")),
    "shipment_delay": ("Shipments in transit delayed", ("sku", "delay_d")),
    "lead_time": ("Supplier lead time of new orders", ("sku", "lead_time_d")),
    "reorder_policy": ("Reorder policy (s, Q)", ("sku", "reorder_point", "reorder_qty")),
    "shifts": ("Add a shift", ("weekdays", "shift_start", "shift_end")),
    "overflow": ("Overflow orders to another site", ("to", "threshold", "transfer_h")),
}
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != []


def intervention_from_form(kind: str, values: dict[str, Any], site: str, fleet: FleetSpec) -> dict[str, Any]:
    """The engine table (with its ``kind``) an intervention form describes, at ``site``.

    "Add a shift" keeps the site's configured shifts and holidays and adds the new one (the
    engine's ``[[shifts]]`` replaces a site's calendar).
    """
    if kind not in INTERVENTIONS:
        raise ConfigError("form", [Problem(path="kind", message="unknown intervention kind", got=kind)])
    given = {k: values.get(k) for k in INTERVENTIONS[kind][1] if _present(values.get(k))}
    if kind == "overflow":
        return {"kind": kind, "from": site, **given}
    if kind != "shifts":
        return {"kind": kind, "site": site, **given}
    try:
        calendar = fleet.site(site).calendar
    except KeyError:
        calendar = None
    shifts: list[dict[str, Any]] = []
    holidays: list[str] = []
    if calendar is not None:
        shifts = [{"name": s.name, "weekdays": sorted(s.weekdays), "start": s.start.strftime("%H:%M"),
                   "end": s.end.strftime("%H:%M")} for s in calendar.shifts]
        holidays = sorted(d.isoformat() for d in calendar.holidays)
    new: dict[str, Any] = {"name": f"extra {given.get('shift_start', '')}-{given.get('shift_end', '')}"}
    days = given.get("weekdays")
    if isinstance(days, list):
        new["weekdays"] = sorted(int(d) for d in days)
    for form_key, key in (("shift_start", "start"), ("shift_end", "end")):
        if form_key in given:
            new[key] = given[form_key]
    item: dict[str, Any] = {"kind": kind, "site": site, "shift": [*shifts, new]}
    if holidays:
        item["holidays"] = holidays
    return item


def describe(item: dict[str, Any]) -> str:
    """One line for the list of interventions on the page."""
    label = INTERVENTIONS.get(str(item.get("kind")), (str(item.get("kind")), ()))[0]
    if "(no machine: whole site)" in label:  # the form's hint; a line says which it is
        label = label.replace(" (no machine: whole site)", "" if item.get("machine") else " (whole site)")
    parts = []
    for key, value in item.items():
        if key in ("kind", "site", "holidays"):
            continue
        if key == "shift":
            shifts = value if isinstance(value, list) else []
            parts.append("shifts " + "; ".join(
                f"{s.get('name')} {'/'.join(WEEKDAY_NAMES[d] for d in s.get('weekdays', []) if 0 <= d < 7)} "
                f"{s.get('start')}–{s.get('end')}" for s in shifts if isinstance(s, dict)))
        else:
            parts.append(f"{key} {value}")
    return f"{label}: " + ", ".join(parts)


def _holiday(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return value
    return value


def engine_document(doc: dict[str, Any]) -> dict[str, Any]:
    """The scenario part of a document as ``twin.sim.scenario`` reads it (its TOML layout)."""
    out: dict[str, Any] = {"name": str(doc.get("name") or "scenario")}
    if doc.get("description"):
        out["description"] = doc["description"]
    items = doc.get("interventions", [])
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        table = {k: v for k, v in item.items() if k != "kind" and v is not None}
        if "holidays" in table and isinstance(table["holidays"], list):
            table["holidays"] = [_holiday(h) for h in table["holidays"]]
        out.setdefault(str(item.get("kind")), []).append(table)
    return out


def to_scenario(doc: dict[str, Any], fleet: FleetSpec | None, source: str = "scenario") -> Scenario:
    """The engine's typed scenario of a document (``ConfigError`` listing every problem)."""
    return parse_scenario(engine_document(doc), source, fleet)


def _plain(value: Any) -> Any:
    """TOML values as a ``dcc.Store`` keeps them (dates and times as ISO text)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def scenario_problems(doc: dict[str, Any], fleet: FleetSpec, limits: WhatIfLimits | None = None) -> list[Problem]:
    """Every problem of a scenario document: run settings, then the engine's own checks."""
    lim = limits or WhatIfLimits()
    problems: list[Problem] = []
    site = doc.get("site")
    if site not in {s.id for s in fleet.sites}:
        problems.append(Problem(path="site", message="unknown site", got=site))
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(Problem(path="name", message="a scenario needs a name", got=name))
    horizon = doc.get("horizon_h")
    if not isinstance(horizon, int | float) or isinstance(horizon, bool) or not 1 <= horizon <= lim.max_horizon_h:
        problems.append(Problem(path="horizon_h", got=horizon,
                                message=f"must be between 1 and {lim.max_horizon_h:g} hours (server limit)"))
    reps = doc.get("replications")
    if not isinstance(reps, int) or isinstance(reps, bool) or not 1 <= reps <= lim.max_replications:
        problems.append(Problem(path="replications", got=reps,
                                message=f"must be a whole number from 1 to {lim.max_replications} (server limit)"))
    at = doc.get("at")
    if at not in (None, ""):
        try:
            datetime.fromisoformat(str(at))
        except ValueError:
            problems.append(Problem(path="at", message="must be a date and time like 2026-01-07T06:00", got=at))
    known_keys = {"name", "description", "interventions", *RUN_KEYS}
    for key in sorted(set(doc) - known_keys):
        problems.append(Problem(path=key, message="unknown key", got=doc[key]))
    items = doc.get("interventions", [])
    if not isinstance(items, list):
        return [*problems, Problem(path="interventions", message="must be a list", got=items)]
    for i, item in enumerate(items):
        if not isinstance(item, dict) or item.get("kind") not in INTERVENTIONS:
            got = item.get("kind") if isinstance(item, dict) else item
            problems.append(Problem(path=f"interventions[{i}].kind", message="unknown intervention kind", got=got))
    try:
        to_scenario(doc, fleet)
    except ConfigError as exc:
        problems.extend(exc.problems)
    return problems


def scenario_to_toml(doc: dict[str, Any]) -> str:
    """A document as the engine's scenario TOML, the run settings in ``#@`` comment lines."""
    header = ["# What-if scenario saved by the dashboard: twin whatif CONFIG --scenario THIS_FILE runs it.",
              "# Lines starting with '#@' are the dashboard's run settings (the engine ignores comments)."]
    for key in RUN_KEYS:
        value = doc.get(key)
        if value is not None and value != "":
            header.append(HEADER_PREFIX + tomli_w.dumps({key: value}).strip())
    return "\n".join(header) + "\n\n" + tomli_w.dumps(engine_document(doc))


def scenario_from_toml(text: str, fleet: FleetSpec, source: str = "scenario.toml") -> dict[str, Any]:
    """A document from scenario TOML (saved by the page or written by hand); ``ConfigError`` if invalid.

    Run settings missing from the ``#@`` lines are absent from the result (the page keeps its own);
    the site defaults to the first site the interventions name.
    """
    data = loads_toml(text, source)
    run = loads_toml("\n".join(line[len(HEADER_PREFIX):] for line in text.splitlines()
                                if line.startswith(HEADER_PREFIX)), source)
    parse_scenario(data, source, fleet)  # the engine's rules, every problem at once
    unknown = [Problem(path=f"#@ {k}", message="unknown run setting", got=v) for k, v in run.items()
               if k not in RUN_KEYS]
    if unknown:
        raise ConfigError(source, unknown)
    items: list[dict[str, Any]] = []
    for kind in INTERVENTIONS:
        for table in data.get(kind, []):
            items.append({"kind": kind, **_plain(table)})
    doc: dict[str, Any] = {"name": data.get("name", "scenario"), **_plain(run), "interventions": items}
    if data.get("description"):
        doc["description"] = data["description"]
    if "site" not in doc:
        named = [i.get("site") or i.get("from") for i in items if i.get("site") or i.get("from")]
        if named:
            doc["site"] = named[0]
    return doc
