"""``twin import telegraf FILE.conf``: a Telegraf Modbus configuration as the plant file's Modbus sections.

Prints ``[[sources.register_maps]]`` and ``[[sources.modbus]]`` as TOML on standard output (or
writes ``--output FILE``) and says on standard error, one line each, what it could not map. Exit
0 when something was imported, 2 when the file is not readable TOML or nothing in it could be.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from twin.errors import ConfigError, Problem

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("import", help="import Modbus register maps from another tool's configuration (telegraf)")
    kinds = p.add_subparsers(dest="tool", metavar="TOOL", required=True)
    t = kinds.add_parser("telegraf", help="[[inputs.modbus]] sections of a Telegraf configuration")
    t.add_argument("file", type=Path, help="Telegraf configuration (TOML), e.g. telegraf.conf")
    t.add_argument("--site", default="SITE", help="the site the devices belong to (default: SITE, to edit)")
    t.add_argument("--asset", default=None,
                   help="the machine or stock item each device feeds (default: the device's Telegraf name)")
    t.add_argument("--rename", action="append", default=[], metavar="FIELD=SIGNAL",
                   help="name a Telegraf field after the machine template's signal, e.g. "
                        "--rename machine_state=status (repeatable)")
    t.add_argument("--output", type=Path, default=None, help="write the TOML to this file instead of stdout")
    t.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tomli_w

    from connectors.config import read_config_text
    from connectors.config.telegraf import from_telegraf

    rename: dict[str, str] = {}
    for item in args.rename:
        field, sep, signal = item.partition("=")
        if not sep or not field or not signal:
            raise ConfigError("--rename", [Problem(path="--rename", message="must be FIELD=SIGNAL", got=item)])
        rename[field] = signal
    text = read_config_text(args.file)
    maps, devices, notes = from_telegraf(text, str(args.file), site=args.site, asset=args.asset, rename=rename)
    for note in notes:
        print(f"{args.file}: {note}", file=sys.stderr)
    if not maps:
        print(f"twin import: nothing in {args.file} could be mapped", file=sys.stderr)
        return 2
    points = sum(len(m["points"]) for m in maps)
    out = (f"# imported from {args.file.name}: {len(maps)} register map(s), {points} point(s), "
           f"{len(devices)} device(s)\n# check the site, assets and signal names, then: twin check PLANT.toml\n"
           + tomli_w.dumps({"sources": {"register_maps": maps, "modbus": devices}}))
    if args.output is not None:
        args.output.write_text(out, encoding="utf-8")
        print(f"wrote {args.output}: {len(maps)} register map(s), {points} point(s)", file=sys.stderr)
    else:
        sys.stdout.write(out)
    return 0
