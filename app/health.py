"""``twin health CONFIG [--site S] [--at T] [--days D] [--horizon H] [--json]``: each machine's failure risk now.

Reads the history of the ``--days`` (14) before ``--at`` (default: now; ISO-8601, UTC without an
offset), fits the failure-risk model per template (``twin.health``: a Cox time-varying model from
the condition signals, or the constant-MTBF hazard when history is short, each with its sample
sizes and the reason), and prints per machine the probability of a failure within ``--horizon``
hours (8) and within the rest of its shift, each with a 90 % interval, and the signals that drive
it (a machine with no known status in the window: "no history", ``seen`` false in JSON); then each
template's model. ``--json`` writes the same as one JSON document.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

__all__ = ["register", "report", "run"]

if TYPE_CHECKING:
    from twin.health.model import HealthModel, Risk
    from twin.health.score import MachineHealth
    from twin.historian import HistorianReader
    from twin.spec import FleetSpec


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("health", help="failure risk of each machine (8 h and rest of the shift) from its history")
    p.add_argument("config", help="plant configuration file (TOML)")
    p.add_argument("--site", default=None, help="only this site")
    p.add_argument("--at", default=None, help="ISO-8601 time to score at (default: now); without offset it is UTC")
    p.add_argument("--days", type=float, default=14.0, help="days of history to fit on (default 14)")
    p.add_argument("--horizon", type=float, default=8.0, help="hours ahead (default 8)")
    p.add_argument("--json", action="store_true", help="write JSON instead of text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.historians import open_historian
    from connectors.config import load
    from connectors.export import parse_time
    from twin.clock import utc_now

    config = load(args.config)
    fleet = config.fleet
    if args.site is not None and all(str(s.id) != args.site for s in fleet.sites):
        print(f"twin health: --site: unknown site {args.site!r} (sites: "
              f"{', '.join(str(s.id) for s in fleet.sites)})", file=sys.stderr)
        return 2
    if not (math.isfinite(args.days) and args.days > 0) or not (math.isfinite(args.horizon) and args.horizon > 0):
        print(f"twin health: --days and --horizon must be > 0 (got {args.days}, {args.horizon})", file=sys.stderr)
        return 2
    try:
        at = parse_time(args.at) if args.at is not None else utc_now()
    except ValueError as exc:
        print(f"twin health: --at: not an ISO-8601 time ({exc})", file=sys.stderr)
        return 2
    historian = open_historian(config.historian, fleet, "read")
    try:
        doc = report(historian, fleet, at, days=args.days, horizon_h=args.horizon, site=args.site)
    finally:
        historian.close()
    print(json.dumps(doc, indent=2) if args.json else _text(doc))
    return 0


def report(historian: HistorianReader, fleet: FleetSpec, at: datetime, *, days: float = 14.0,
           horizon_h: float = 8.0, site: str | None = None) -> dict[str, Any]:
    """Fit on the ``days`` before ``at`` and score every machine at ``at``: the document ``--json`` prints."""
    from twin.health.monitor import HealthMonitor

    monitor = HealthMonitor(fleet, days=days, horizon_h=horizon_h, site=site)
    refresh = monitor.refresh(historian, at)
    return {"at": at.isoformat(), "from": monitor.window_start(at).isoformat(), "horizon_h": horizon_h,
            "machines": [_machine(h) for h in refresh.machines], "models": _models(refresh.model)}


def _risk(r: Risk | None) -> dict[str, float | str] | None:
    return None if r is None else {"p": r.p, "low": r.low, "high": r.high, "hours": r.hours, "vague": r.vague}


def _machine(h: MachineHealth) -> dict[str, Any]:
    return {"site": h.site, "machine": h.machine, "template": h.template, "status": h.status.value,
            "seen": h.seen, "risk": _risk(h.risk), "shift": _risk(h.shift), "baseline": h.baseline,
            "model": h.model.kind,
            "drivers": [{"name": d.name, "value": d.value, "mean": d.mean, "factor": d.factor} for d in h.drivers]}


def _models(model: HealthModel) -> dict[str, Any]:
    return {tpl: {"kind": m.kind, "failures": m.failures, "machines": m.machines,
                  "operating_h": m.operating_h, "rows": m.rows, "base_per_h": m.base_per_h, "note": m.note,
                  "effects": dict(zip(m.terms, m.coefs, strict=True))}
            for tpl, m in model.templates.items()}


def _pct(r: dict[str, Any] | None) -> str:
    if r is None:
        return "no shift now"
    if r["vague"]:  # the interval says nothing usable: say so (the model's note gives the sample sizes)
        return f"{100 * r['p']:.1f} % (too little history)"
    return f"{100 * r['p']:.1f} % ({100 * r['low']:.1f}-{100 * r['high']:.1f})"


def _text(doc: dict[str, Any]) -> str:
    lines = [f"failure risk at {doc['at']} (fitted on the history from {doc['from']}; 90 % intervals)",
             f"{'site':<14} {'machine':<8} {'status':<12} {'within ' + format(doc['horizon_h'], 'g') + ' h':<24} "
             f"{'rest of shift':<30} drivers"]
    for m in sorted(doc["machines"], key=lambda m: -m["risk"]["p"]):
        if not m["seen"]:
            lines.append(f"{m['site']:<14} {m['machine']:<8} {m['status']:<12} no history in the window")
            continue
        shift = _pct(m["shift"])
        if m["shift"] is not None:
            shift += f" in {m['shift']['hours']:.1f} h"
        drivers = ", ".join(f"{d['name']} {d['value']:.4g} (mean {d['mean']:.4g}, x{d['factor']:.1f})"
                            for d in m["drivers"]) or "-"
        lines.append(f"{m['site']:<14} {m['machine']:<8} {m['status']:<12} {_pct(m['risk']):<24} {shift:<30} "
                     f"{drivers}")
    lines.append("models:")
    for tpl, m in doc["models"].items():
        lines.append(f"  {tpl}: {m['note']}")
    return "\n".join(lines)
