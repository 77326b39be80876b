"""``twin emulate CONFIG``: emulated Modbus PLCs and OPC UA servers on 127.0.0.1, from one plant.

Every configured Modbus device gets an emulated PLC, every ``[[sources.opcua]]`` an OPC UA server.

The registers follow the configured register maps, the OPC UA nodes their sources' node ids and
browse paths (``connectors.emulator.opcua_server.OpcUaServers``), and all are driven by the same
seeded plant process (``connectors.emulator.plant``), in real time or faster (``--speed``). Fault
flags reproduce field problems for demos: ``--hang ID`` and ``--freeze ID`` (a Modbus device or an
OPC UA source), ``--exception ID:START-END[:CODE]`` (protocol addresses), ``--drop-every S`` (drop
all client connections every S seconds, Modbus and OPC UA).

``--truth FILE`` runs the plant with its hidden truth (``connectors.emulator.truth``: the real
cycle times, failure rates, demand, lead times where they differ from the configuration); give
the same file, ``--seed`` and ``--history-from`` as ``twin backfill`` to continue its history.

``--feeds-dir DIR`` also writes the emulated ERP/logistics exports (orders arriving by the sites'
demand, the plant's replenishment shipments, some delayed) into DIR every ``--feeds-every`` seconds,
for a collector's ``[feeds] drop_dir`` (see ``connectors.emulator.feeds``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.poll import select_devices, select_sources
from connectors.config.opcua import OpcUaSource
from connectors.modbus.spec import ModbusDevice
from twin.clock import utc_now
from twin.errors import ConfigError, Problem
from twin.spec import FleetSpec

__all__ = ["register", "run"]

if TYPE_CHECKING:
    from connectors.emulator.truth import Truth

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("emulate", help="serve emulated Modbus PLCs and OPC UA servers driven by a simulated plant")
    p.add_argument("config", help="plant configuration file (TOML)")
    p.add_argument("--device", action="append", default=[], metavar="ID",
                   help="only this Modbus device or OPC UA source (repeatable)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address the emulated PLCs and OPC UA servers listen on (default 127.0.0.1; 0.0.0.0 "
                        "inside a container)")
    p.add_argument("--speed", type=float, default=1.0, help="plant time runs this many times faster (default 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the plant process (default 0)")
    p.add_argument("--start", type=datetime.fromisoformat, default=None,
                   help="plant start time, ISO 8601 with offset (default: now)")
    p.add_argument("--truth", type=Path, default=None, metavar="FILE",
                   help="the plant's hidden truth (TOML, see connectors.emulator.truth; default: as configured)")
    p.add_argument("--history-from", type=datetime.fromisoformat, default=None, metavar="TIME",
                   help="the plant's history begins at TIME (ISO 8601 with offset) and is fast-forwarded to now "
                        "before serving: continues a backfill made with the same --seed from the same TIME")
    p.add_argument("--duration", type=float, default=0.0, metavar="S", help="stop after S seconds (default: never)")
    p.add_argument("--hang", action="append", default=[], metavar="ID",
                   help="device (or OPC UA source) stops answering")
    p.add_argument("--freeze", action="append", default=[], metavar="ID",
                   help="device (or OPC UA source) values stop changing")
    p.add_argument("--exception", action="append", default=[], metavar="ID:START-END[:CODE]",
                   help="device answers exception CODE (default 2) for reads touching START..END")
    p.add_argument("--feeds-dir", type=Path, default=None, metavar="DIR",
                   help="also write emulated order and shipment files into DIR (a collector's drop_dir)")
    p.add_argument("--feeds-every", type=float, default=10.0, metavar="S",
                   help="write the feed files every S seconds of wall time (default 10)")
    p.add_argument("--feeds-after", type=_utc_time, default=None, metavar="T",
                   help="write no feed records of plant time T or before (a backfill already committed them)")
    p.add_argument("--drop-every", type=float, default=0.0, metavar="S", help="drop all connections every S s")
    p.set_defaults(func=run)


def _utc_time(text: str) -> datetime:
    """An ISO 8601 time with its offset (``argparse`` reports the ValueError as a bad value)."""
    t = datetime.fromisoformat(text)
    if t.tzinfo is None:
        raise ValueError(f"needs an offset or Z (got {text!r})")
    return t


def _parse_exception(spec: str, source: str) -> tuple[str, int, int, int]:
    try:
        dev, rng, *rest = spec.split(":")
        start, end = (int(x) for x in rng.split("-"))
        code = int(rest[0]) if rest else 2
    except ValueError as exc:
        raise ConfigError(source, [Problem(path="--exception", message="expected ID:START-END[:CODE]",
                                           got=spec)]) from exc
    return dev, start, end, code


def run(args: argparse.Namespace) -> int:
    from connectors.config import load

    cfg = load(args.config)
    devices, servers = select_sources(cfg, args.device)
    names = {d.id for d in devices} | {s.id for s in servers}
    for flag in ("hang", "freeze"):
        unknown = [d for d in getattr(args, flag) if d not in names]
        if unknown:
            raise ConfigError(str(cfg.source), [Problem(
                path=f"--{flag}", message=f"no emulated Modbus device or OPC UA source with this id (known: "
                f"{', '.join(sorted(names))})", got=u) for u in unknown])
    modbus_ids = {d.id for d in devices}
    for s in args.exception:
        if s.split(":")[0] not in modbus_ids:
            select_devices(devices, [s.split(":")[0]], str(cfg.source))
    ranges = [_parse_exception(s, str(cfg.source)) for s in args.exception]
    truth = None
    if args.truth is not None:
        from connectors.emulator.truth import load_truth

        if not args.truth.is_file():
            print(f"twin emulate: --truth: no such file {args.truth}", file=sys.stderr)
            return 2
        truth = load_truth(args.truth, cfg.fleet)
    return asyncio.run(_emulate(cfg.fleet, devices, args, ranges, truth, servers))


async def _emulate(fleet: FleetSpec, devs: list[ModbusDevice], args: argparse.Namespace,
                   ranges: list[tuple[str, int, int, int]], truth: Truth | None,
                   servers: list[OpcUaSource] | None = None) -> int:
    from connectors.emulator.opcua_server import OpcUaServers, signal_units
    from connectors.emulator.server import Emulator

    sources = servers or []
    sites = {s.site for s in sources}
    if args.history_from is not None:
        emu = Emulator(fleet, devs, seed=args.seed, speed=args.speed, start=args.history_from,
                       resume_at=utc_now(), host=args.host, truth=truth, sites=sites)
    else:
        emu = Emulator(fleet, devs, seed=args.seed, speed=args.speed, start=args.start, host=args.host,
                       truth=truth, sites=sites)
    try:
        ua = OpcUaServers(sources, emu.plant.values(), host=args.host, units=signal_units(fleet))
    except ValueError as exc:
        print(f"twin emulate: {exc}", file=sys.stderr)
        return 2
    modbus_ids = {d.id for d in devs}
    for d in args.hang:
        if d in modbus_ids:
            emu.fault(d).hang = True
    for d in args.freeze:
        if d in modbus_ids:
            emu.fault(d).frozen = True
        else:
            ua.freeze(d)
    for d, start, end, code in ranges:
        emu.fault(d).fail_range(start, end, code)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # stop cleanly and report, e.g. when `twin demo` stops us
        loop.add_signal_handler(sig, stop.set)
    if args.duration:
        loop.call_later(args.duration, stop.set)

    async def dropper() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=args.drop_every)
            for d in devs:
                emu.drop_connections(d.id)
            for ep in ua.endpoints.values():
                ep.drop_connections()

    def announce() -> None:
        for d in devs:
            print(f"{d.id}: {args.host}:{d.port} unit {d.device_id} ({d.site}: {', '.join(d.assets)})", flush=True)
        for s in sources:
            port = s.endpoint.rsplit(":", 1)[1].split("/")[0]
            print(f"{s.id}: opc.tcp://{args.host}:{port} OPC UA ({s.site}: "
                  f"{', '.join(dict.fromkeys(n.asset for n in s.nodes))})", flush=True)
        what = f"{len(devs)} device(s)" + (f" and {len(sources)} OPC UA source(s)" if sources else "")
        print(f"emulating {what} at speed {args.speed:g}, seed {args.seed}, truth: "
              f"{args.truth or 'as configured'}; Ctrl-C to stop", flush=True)

    async def serve() -> None:
        """The PLCs and OPC UA servers, written from the plant at each step (announced once listening)."""
        await emu.start()
        try:
            await ua.start()
            for s in sources:
                if s.id in args.hang:
                    await ua.hang(s.id)
            announce()
            while not stop.is_set():
                emu.update()
                await ua.update(emu.plant.values())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=emu.tick_s)
        finally:
            await ua.stop()
            await emu.stop()

    async def feeds_writer() -> None:
        from connectors.emulator.feeds import FeedEmulator

        feeds = FeedEmulator(fleet, emu.plant, args.feeds_dir, seed=args.seed, after=args.feeds_after)
        while not stop.is_set():
            feeds.step(emu.plant.now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=args.feeds_every)
        print(f"feeds: {feeds.orders_written} order and {feeds.shipments_written} shipment records "
              f"written to {args.feeds_dir}", flush=True)

    failed: list[BaseException] = []
    try:
        await _serve_all(serve, dropper if args.drop_every > 0 else None,
                         feeds_writer if args.feeds_dir is not None else None)
    except* OSError as group:  # a port in use: one line each
        failed += group.exceptions
    if failed:
        for problem in failed:
            print(f"twin emulate: {problem}", file=sys.stderr)
        return 1
    print(f"stopped; write requests received: {emu.writes_received}", flush=True)
    return 0


async def _serve_all(*jobs: Callable[[], Coroutine[Any, Any, None]] | None) -> None:
    async with asyncio.TaskGroup() as tg:
        for job in jobs:
            if job is not None:
                tg.create_task(job())
