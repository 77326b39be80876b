"""``twin browse opc.tcp://HOST:PORT [--depth N]``: print an OPC UA server's address space, for commissioning.

One line per variable under Objects: its browse path (what ``browse_path`` in ``[[sources.opcua]]``
takes), its node id (what ``node`` takes), its data type and its current value (or its status when
that is not Good). An engineer runs it to write the ``nodes`` of a new machine. Reads only.
Exit code 1 when the server cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Sequence

from twin.errors import SourceError

__all__ = ["register", "render", "run"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("browse", help="print an OPC UA server's variables: browse path, node id, type, value")
    p.add_argument("endpoint", help="the server, opc.tcp://HOST:PORT")
    p.add_argument("--depth", type=int, default=4, metavar="N", help="levels below Objects (default 4)")
    p.add_argument("--timeout", type=float, default=4.0, metavar="S", help="seconds per request (default 4)")
    p.add_argument("--user", default=None, help="log in as this user (password from --password-env)")
    p.add_argument("--password-env", default=None, metavar="VAR", help="environment variable holding the password")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from connectors.opcua.client import BrowseRow, OpcUaConnection, OpcUaError

    if not str(args.endpoint).startswith("opc.tcp://"):
        raise SourceError(f"expected opc.tcp://HOST:PORT, got {args.endpoint!r}")
    password = os.environ.get(args.password_env, "") if args.password_env else None
    conn = OpcUaConnection(args.endpoint, timeout_s=args.timeout, user=args.user, password=password or None)

    async def browse() -> list[BrowseRow]:
        try:
            await conn.connect()
            return await conn.browse(max(1, args.depth))
        finally:
            await conn.close()

    try:
        rows = asyncio.run(browse())
    except OpcUaError as exc:
        raise SourceError(f"{args.endpoint}: {exc.reason}") from None
    print(render(rows))
    return 0


def render(rows: Sequence[object]) -> str:
    """The table ``twin browse`` prints: aligned columns and a count."""
    head = ("browse path", "node id", "type", "value")
    cells = [[str(getattr(r, k)) for k in ("path", "node_id", "data_type", "value")] for r in rows]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.append(f"{len(rows)} variables")
    return "\n".join(lines)
