"""``twin poll CONFIG [--device ID] --once [--json]``: read every configured point and show it.

The commissioning command: an engineer runs it to check a new register map against a PLC. It
prints one line per point (device, asset, signal, where it is read, decoded value, unit, quality
and reason), or JSON. A status point shows its status with its code, ``running (2)``. Exit code 1
when any device could not be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from connectors.modbus.spec import ModbusDevice
from twin.errors import ConfigError, Problem
from twin.readings import Reading

__all__ = ["register", "render_json", "render_table", "run", "select_devices"]

if TYPE_CHECKING:  # the poller imports pymodbus: only at run time, inside the command
    from connectors.export import StatusCodes
    from connectors.modbus.poller import DevicePoller


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("poll", help="read every Modbus point once and print value, unit and quality")
    p.add_argument("config", help="plant configuration file (TOML)")
    p.add_argument("--device", action="append", default=[], metavar="ID", help="only this device (repeatable)")
    p.add_argument("--once", action="store_true", help="read once and exit (default: keep polling)")
    p.add_argument("--count", type=int, default=0, metavar="N", help="stop after N polls (without --once)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from connectors.config import load

    cfg = load(args.config)
    devices = select_devices(cfg.modbus, args.device, str(cfg.source))
    polls = 1 if args.once else args.count
    from connectors.export import status_codes

    return asyncio.run(_poll(devices, polls, args.json, status_codes(cfg.fleet)))


def select_devices(devices: Sequence[ModbusDevice], wanted: Sequence[str], source: str) -> list[ModbusDevice]:
    known = {d.id: d for d in devices}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise ConfigError(source, [Problem(path="--device", message=f"no Modbus device with this id "
                                           f"(known: {', '.join(known) or 'none'})", got=u) for u in unknown])
    if not known:
        raise ConfigError(source, [Problem(path="sources.modbus", message="no Modbus device configured",
                                           has_got=False)])
    return [known[w] for w in wanted] if wanted else list(devices)


async def _poll(devices: Sequence[ModbusDevice], polls: int, as_json: bool, status: StatusCodes) -> int:
    from connectors.modbus.poller import DevicePoller

    pollers = [DevicePoller(d) for d in devices]
    interval = min(p.device.poll_interval_s for p in pollers)
    loop = asyncio.get_running_loop()
    n = 0
    code = 0
    try:
        while True:
            t0 = loop.time()
            results = await asyncio.gather(*(p.poll_once() for p in pollers))
            code = 0 if all(p.reachable for p in pollers) else 1
            print(render_json(pollers, results, status) if as_json else render_table(pollers, results, status))
            sys.stdout.flush()
            n += 1
            if polls and n >= polls:
                return code
            await asyncio.sleep(max(0.0, interval - (loop.time() - t0)))
    finally:
        for p in pollers:
            p.close()


def _rows(pollers: Sequence[DevicePoller], results: Sequence[Sequence[Reading]], status: StatusCodes | None = None
          ) -> list[dict[str, object]]:
    """One dict per point; ``status`` is ``running (2)`` for a status point with a value, else None."""
    from connectors.export import status_label

    rows: list[dict[str, object]] = []
    for dp, readings in zip(pollers, results, strict=True):
        d = dp.device
        points = {(p.asset, p.signal): p for p in d.points}
        for r in readings:
            p = points[(r.asset, r.signal)]
            where = f"{p.kind.value} {p.address + d.address_base}" + (f".{p.bit}" if p.bit is not None else "")
            rows.append({
                "device": d.id, "site": d.site, "asset": r.asset, "signal": r.signal, "register": where,
                "type": p.type.value, "byte_order": p.byte_order.value, "value": r.value, "unit": p.unit,
                "quality": r.quality.value, "reason": r.reason, "ts": r.ts.isoformat(),
                "reachable": dp.reachable, "status": None,
            })
            codes = (status or {}).get((str(d.site), r.asset, r.signal))
            if codes is not None and r.value is not None:
                rows[-1]["status"] = status_label(r.value, codes)
    return rows


def render_json(pollers: Sequence[DevicePoller], results: Sequence[Sequence[Reading]],
                status: StatusCodes | None = None) -> str:
    return json.dumps(_rows(pollers, results, status), indent=1)


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def render_table(pollers: Sequence[DevicePoller], results: Sequence[Sequence[Reading]],
                 status: StatusCodes | None = None) -> str:
    """The table ``twin poll`` prints; a status point's value as ``running (2)`` (given ``status``)."""
    rows = _rows(pollers, results, status)
    head = ("device", "asset", "signal", "register", "type", "value", "unit", "quality", "reason")
    cells = [[str(r["status"] or _fmt(r[h])) if h == "value" else str(r[h]) for h in head] for r in rows]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    bad = sum(1 for r in rows if r["quality"] != "good")
    down = sorted({str(r["device"]) for r in rows if not r["reachable"]})
    lines.append(f"{len(rows)} points, {bad} not good" + (f"; unreachable: {', '.join(down)}" if down else ""))
    return "\n".join(lines)
