"""The ``twin`` command: a thin composition root over the packages.

Each subcommand lives in its own module of this package and exposes ``register(subparsers)``,
which adds its parser and sets ``func`` to a callable taking the parsed arguments and returning
an exit code. Subcommands import heavy modules (pymodbus, Dash, SimPy) inside their function, so
``twin check`` stays fast. Exit codes: 0 ok, 1 runtime failure, 2 invalid input or usage.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from twin.errors import ConfigError, TwinError

__all__ = ["build_parser", "main"]

# Modules of this package that define subcommands, in the order ``twin --help`` lists them.
SUBCOMMANDS: tuple[str, ...] = (
    "check",
    "demo",
    "dashboard",
    "poll",
    "browse",
    "emulate",
    "backfill",
    "collect",
    "whatif",
    "backtest",
    "replay",
    "health",
    "export",
    "report",
    "importer",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twin", description="Digital twin for networks of micro-factories.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"app.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``twin`` command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except TwinError as exc:
        print(f"twin {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
