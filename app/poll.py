"""``twin poll CONFIG [--device ID] --once [--json]``: read every configured point and show it.

The commissioning command: an engineer runs it to check a new register map against a PLC. It
prints one line per point (device, asset, signal, where it is read, decoded value, unit, quality
and reason), or JSON. A status point shows its status with its code, ``running (2)``. Exit code 1
when any device could not be reached. OPC UA servers (``[[sources.opcua]]``) are read the same way,
one line per node: the node id or browse path where a register would be, type ``OPC UA``, the unit
configured or else the server's EngineeringUnits; ``--device`` also takes an OPC UA source's id.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from connectors.config.opcua import OpcUaSource
from connectors.modbus.spec import ModbusDevice
from twin.errors import ConfigError, Problem
from twin.readings import Reading

__all__ = ["register", "render_json", "render_table", "run", "select_devices", "select_sources"]

if TYPE_CHECKING:  # the poller imports pymodbus (the reader asyncua): only at run time, inside the command
    from connectors.config import PlantConfig
    from connectors.export import StatusCodes
    from connectors.modbus.poller import DevicePoller
    from connectors.opcua.source import OpcUaReader

    Reader = DevicePoller | OpcUaReader


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("poll", help="read every Modbus point and OPC UA node and print value, unit and quality")
    p.add_argument("config", help="plant configuration file (TOML)")
    p.add_argument("--device", action="append", default=[], metavar="ID",
                   help="only this Modbus device or OPC UA source (repeatable)")
    p.add_argument("--once", action="store_true", help="read once and exit (default: keep polling)")
    p.add_argument("--count", type=int, default=0, metavar="N", help="stop after N polls (without --once)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from connectors.config import load

    cfg = load(args.config)
    devices, servers = select_sources(cfg, args.device)
    polls = 1 if args.once else args.count
    from connectors.export import status_codes

    return asyncio.run(_poll(devices, polls, args.json, status_codes(cfg.fleet), servers))


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


def select_sources(cfg: PlantConfig, wanted: Sequence[str]) -> tuple[list[ModbusDevice], list[OpcUaSource]]:
    """The Modbus devices and OPC UA servers ``--device`` names (all when none).

    Without OPC UA servers this is ``select_devices`` (its messages unchanged).
    """
    if not cfg.opcua:
        return select_devices(cfg.modbus, wanted, str(cfg.source)), []
    modbus, opcua = {d.id: d for d in cfg.modbus}, {s.id: s for s in cfg.opcua}
    unknown = [w for w in wanted if w not in modbus and w not in opcua]
    if unknown:
        known = ", ".join([*modbus, *opcua])
        raise ConfigError(str(cfg.source), [Problem(path="--device", message="no Modbus device or OPC UA source "
                                                    f"with this id (known: {known})", got=u) for u in unknown])
    if not wanted:
        return list(cfg.modbus), list(cfg.opcua)
    return [modbus[w] for w in wanted if w in modbus], [opcua[w] for w in wanted if w in opcua]


async def _poll(devices: Sequence[ModbusDevice], polls: int, as_json: bool, status: StatusCodes,
                servers: Sequence[OpcUaSource] = ()) -> int:
    from connectors.modbus.poller import DevicePoller

    pollers: list[Reader] = [DevicePoller(d) for d in devices]
    if servers:
        from connectors.opcua.source import OpcUaReader

        pollers += [OpcUaReader(s, polling=True) for s in servers]
    interval = min(p.device.poll_interval_s if isinstance(p, DevicePoller) else p.source.poll_interval_s
                   for p in pollers)
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
            if isinstance(p, DevicePoller):
                p.close()
            else:
                await p.close()


def _rows(pollers: Sequence[Reader], results: Sequence[Sequence[Reading]], status: StatusCodes | None = None
          ) -> list[dict[str, object]]:
    """One dict per point; ``status`` is ``running (2)`` for a status point with a value, else None."""
    from connectors.export import status_label

    rows: list[dict[str, object]] = []
    for dp, readings in zip(pollers, results, strict=True):
        if not hasattr(dp, "device"):  # an OPC UA server
            rows += _opcua_rows(dp, readings, status)
            continue
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


def _opcua_rows(reader: OpcUaReader, readings: Sequence[Reading], status: StatusCodes | None
                ) -> list[dict[str, object]]:
    from connectors.export import status_label

    s = reader.source
    where = {(n.asset, n.signal): n.where for n in s.nodes}
    rows: list[dict[str, object]] = []
    for r in readings:
        rows.append({
            "device": s.id, "site": s.site, "asset": r.asset, "signal": r.signal,
            "register": where[(r.asset, r.signal)],
            "type": "OPC UA", "byte_order": "", "value": r.value, "unit": reader.units.get((r.asset, r.signal), ""),
            "quality": r.quality.value, "reason": r.reason, "ts": r.ts.isoformat(),
            "reachable": reader.reachable, "status": None,
        })
        codes = (status or {}).get((str(s.site), r.asset, r.signal))
        if codes is not None and r.value is not None:
            rows[-1]["status"] = status_label(r.value, codes)
    return rows


def render_json(pollers: Sequence[Reader], results: Sequence[Sequence[Reading]],
                status: StatusCodes | None = None) -> str:
    return json.dumps(_rows(pollers, results, status), indent=1)


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def render_table(pollers: Sequence[Reader], results: Sequence[Sequence[Reading]],
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
