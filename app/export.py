"""``twin export CONFIG --what series|events|alarms --from T0 --to T1 [--site S] --out FILE.csv``.

Times are ISO-8601; a time without offset is UTC. ``series`` exports every signal of the site (of
every site without ``--site``), raw when there are at most ``--max-points`` per series.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from twin.historian import HistorianReader

__all__ = ["export", "register", "run"]

if TYPE_CHECKING:
    from connectors.export import StatusCodes

WHAT = ("series", "events", "alarms")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("export", help="export series, events or the alarm journal to CSV")
    p.add_argument("config", help="plant configuration file (TOML)")
    p.add_argument("--what", choices=WHAT, required=True)
    p.add_argument("--from", dest="t0", required=True, help="ISO-8601 start; without offset it is UTC")
    p.add_argument("--to", dest="t1", required=True, help="ISO-8601 end; without offset it is UTC")
    p.add_argument("--site", default=None, help="only this site")
    p.add_argument("--max-points", type=int, default=1_000_000, help="per series (series only)")
    p.add_argument("--out", required=True, help="CSV file to write (its folder must exist, see --mkdir)")
    p.add_argument("--mkdir", action="store_true", help="create the folder of --out when it is missing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.historians import open_historian
    from connectors.config import load
    from connectors.export import parse_time, status_codes

    config = load(args.config)
    try:
        t0, t1 = parse_time(args.t0), parse_time(args.t1)
    except ValueError as exc:
        print(f"twin export: --from/--to: not an ISO-8601 time ({exc})", file=sys.stderr)
        return 2
    if t0 > t1:
        print(f"twin export: --from {t0.isoformat()} is after --to {t1.isoformat()}: the range is reversed "
              "(nothing written)", file=sys.stderr)
        return 2
    out = Path(args.out)
    if not out.parent.is_dir():
        if not args.mkdir:
            print(f"twin export: --out: folder {out.parent} does not exist (create it, or pass --mkdir)",
                  file=sys.stderr)
            return 2
        out.parent.mkdir(parents=True, exist_ok=True)
    historian = open_historian(config.historian, config.fleet, "read")
    try:
        n = export(historian, args.what, t0, t1, args.site, out, max_points=args.max_points,
                   status=status_codes(config.fleet))
    finally:
        historian.close()
    print(f"{args.out}: {n} rows")
    return 0


def export(historian: HistorianReader, what: str, t0: datetime, t1: datetime, site: str | None, out: Path,
           *, max_points: int = 1_000_000, status: StatusCodes | None = None) -> int:
    """Write the CSV ``twin export`` writes (``out``'s folder exists); returns its number of data rows."""
    from connectors.export import export_alarms, export_events, export_series
    with out.open("w", encoding="utf-8", newline="") as f:
        if what == "series":
            return export_series(historian, historian.signals(site), t0, t1, f, max_points=max_points,
                                 status=status)
        if what == "events":
            return export_events(historian, site, t0, t1, f)
        return export_alarms(historian, site, t0, t1, f)
