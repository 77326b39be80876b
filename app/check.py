"""``twin check CONFIG``: validate a plant configuration and print a short summary of the fleet."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from connectors.config import PlantConfig, load

__all__ = ["register", "run", "summary"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("check", help="validate a plant configuration and summarise the fleet")
    p.add_argument("config", help="plant configuration file (TOML)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load(args.config)
    print(summary(config))
    return 0


def summary(config: PlantConfig) -> str:
    """A few lines describing the fleet: one per site, then totals."""
    fleet = config.fleet
    lines = [f"{config.source}: OK: fleet {fleet.id!r} ({fleet.name})"]
    for site in fleet.sites:
        roles = Counter(m.role.value for m in site.machines)
        role_text = ", ".join(f"{n} {r}" for r, n in sorted(roles.items()))
        lines.append(
            f"  {site.id:<14} {site.kind.value:<15} {site.timezone:<18} "
            f"{len(site.machines):>3} machines ({role_text}); {len(site.inventory)} stock items; "
            f"{len(site.calendar.shifts)} shift(s)"
        )
    n_machines = sum(len(s.machines) for s in fleet.sites)
    n_points = sum(len(d.points) for d in config.modbus)
    lines.append(
        f"  total: {len(fleet.sites)} sites, {n_machines} machines from {len(fleet.templates)} templates, "
        f"{len(fleet.products)} product families, {len(fleet.alarms)} alarm rules, "
        f"{len(config.modbus)} Modbus devices ({n_points} points); historian: {config.historian.kind} "
        f"({config.historian.path if config.historian.kind == 'sqlite' else config.historian.url})"
    )
    for feed in config.influx:
        c = feed.connection
        lines.append(f"  InfluxDB feed {feed.id}: site {feed.site}, {c.api.value} {c.url} {c.where}, "
                     f"{len(feed.mappings)} mappings, every {feed.poll_interval_s:g} s")
    for server in config.opcua:
        lines.append(f"  OPC UA server {server.id}: site {server.site}, {server.endpoint} "
                     f"(security {server.security}), {len(server.nodes)} nodes")
    feeds = config.feeds
    if feeds is not None:
        ways = []
        if feeds.drop_dir is not None:
            ways.append(f"file drop {_shown(feeds.drop_dir)} every {feeds.poll_s:g} s")
        if feeds.http is not None:
            ways.append(f"HTTP endpoint {feeds.http.host}:{feeds.http.port}")
        lines.append(f"  orders and shipments: {'; '.join(ways)}")
    return "\n".join(lines)


def _shown(path: Path) -> str:
    """``path`` relative to the working folder when it is inside it (as the user would type it)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
