"""``twin replay CONFIG --site S --at TIME [--json]``: print a site's state as it was at TIME.

TIME is ISO-8601; a time without offset is UTC. The state is rebuilt by the historian from the
latest checkpoint before TIME and the readings after it (``Historian.state_at``).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from twin.codec import site_state_to_dict
from twin.errors import HistorianError
from twin.historian import HistorianReader
from twin.state import SiteState

__all__ = ["describe", "register", "replay", "run"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("replay", help="print a site's state as it was at a moment of history")
    p.add_argument("config", help="plant configuration file (TOML)")
    p.add_argument("--site", required=True, help="site id")
    p.add_argument("--at", required=True, help="ISO-8601 time; without offset it is UTC")
    p.add_argument("--json", action="store_true", help="print the full state as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.historians import open_historian
    from connectors.config import load
    from connectors.export import parse_time

    config = load(args.config)
    try:
        at = parse_time(args.at)
    except ValueError:
        print(f"twin replay: --at: not an ISO-8601 time (got {args.at!r})", file=sys.stderr)
        return 2
    historian = open_historian(config.historian, config.fleet, "read")
    try:
        print(replay(historian, args.site, at, as_json=args.json))
    finally:
        historian.close()
    return 0


def replay(historian: HistorianReader, site: str, at: datetime, *, as_json: bool = False) -> str:
    """The text (or JSON) ``twin replay`` prints for ``site`` at ``at``."""
    state = historian.state_at(site, at)
    if state is None:
        raise HistorianError(f"no history of site {site!r} at or before {at.isoformat()}")
    if as_json:
        return json.dumps(site_state_to_dict(state), indent=2, sort_keys=True)
    return describe(state)


def describe(state: SiteState) -> str:
    """A few lines a person reads: machines, stock, alarms."""
    lines = [f"site {state.site} as of {state.as_of.isoformat()}"]
    for m in sorted(state.machines.values(), key=lambda m: m.id):
        since = "" if m.status_since is None else f" since {m.status_since.isoformat()}"
        why = f" ({m.status_reason})" if m.status_reason else ""
        lines.append(f"  machine {m.id:<12} {m.status.value:<11}{since}{why}; good {m.good_total}, "
                     f"scrap {m.scrap_total}, failures {m.failures}")
    for i in sorted(state.inventory.values(), key=lambda i: i.sku):
        on_hand = "no data" if i.on_hand is None else f"{i.on_hand:g}"
        lines.append(f"  stock   {i.sku:<12} on hand {on_hand} ({i.quality.value})")
    for a in sorted(state.alarms.values(), key=lambda a: (-a.priority, a.key)):
        lifecycle = ("active" if a.active else "cleared") + (", acknowledged" if a.acknowledged else "")
        lines.append(f"  alarm   {a.key:<20} {a.priority.name:<7} {lifecycle}: {a.message}")
    return "\n".join(lines)
