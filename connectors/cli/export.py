"""``twin export CONFIG --what series|events|alarms --from T0 --to T1 [--site S] --out FILE.csv``.

Times are ISO-8601; a time without offset is UTC. ``series`` exports every signal of the site (of
every site without ``--site``), raw when there are at most ``--max-points`` per series.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from twin.historian import Historian

WHAT = ("series", "events", "alarms")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("export", help="export series, events or the alarm journal to CSV")
    p.add_argument("config", help="plant configuration file (TOML)")
    p.add_argument("--what", choices=WHAT, required=True)
    p.add_argument("--from", dest="t0", required=True, help="ISO-8601 start; without offset it is UTC")
    p.add_argument("--to", dest="t1", required=True, help="ISO-8601 end; without offset it is UTC")
    p.add_argument("--site", default=None, help="only this site")
    p.add_argument("--max-points", type=int, default=1_000_000, help="per series (series only)")
    p.add_argument("--out", required=True, help="CSV file to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from connectors.config import load
    from connectors.export import parse_time
    from connectors.forward import open_reader

    config = load(args.config)
    try:
        t0, t1 = parse_time(args.t0), parse_time(args.t1)
    except ValueError as exc:
        print(f"twin export: --from/--to: not an ISO-8601 time ({exc})", file=sys.stderr)
        return 2
    historian = open_reader(config.historian, config.fleet)
    try:
        n = export(historian, args.what, t0, t1, args.site, Path(args.out), max_points=args.max_points)
    finally:
        historian.close()
    print(f"{args.out}: {n} rows")
    return 0


def export(historian: Historian, what: str, t0: datetime, t1: datetime, site: str | None, out: Path,
           *, max_points: int = 1_000_000) -> int:
    """Write the CSV ``twin export`` writes; returns its number of data rows."""
    from connectors.export import export_alarms, export_events, export_series
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as f:
        if what == "series":
            return export_series(historian, historian.signals(site), t0, t1, f, max_points=max_points)
        if what == "events":
            return export_events(historian, site, t0, t1, f)
        return export_alarms(historian, site, t0, t1, f)
