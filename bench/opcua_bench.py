"""OPC UA throughput: asyncua's own client beside our source, through one subscription and by polling.

    .venv/bin/python bench/opcua_bench.py [--nodes 200] [--change-hz 10] [--seconds 3] [--rounds 3]
                                          [--mode subscription|polling|both]

Setup: the emulator's OPC UA server (``connectors.emulator.opcua_endpoint.OpcUaEndpoint``) runs in a
separate process on 127.0.0.1 with ``--nodes`` Double variables, every one changed ``--change-hz``
times a second (200 x 10 = 2,000 changes/s). The clients run in this process, one at a time, in
rounds (raw, ours, raw, ours...: interleaving cancels the slow drifts of a shared machine); each
phase connects, waits 0.5 s, then counts values and this process's CPU time for ``--seconds``.

* **subscription**: one subscription, every node monitored (sampling 0, queue 1, publishing every
  100 ms). *raw* is asyncua's ``Client.create_subscription`` + ``subscribe_data_change`` with a
  handler that counts its notifications; *ours* is ``OpcUaReader.run`` (the collector's source:
  each notification becomes a ``Sample``, then a ``Reading`` with its quality, handed to the sink,
  and each session check re-sends the latest values). Both receive what the server changes, so
  values/s is the server's rate; what differs is the client CPU per value.
* **polling**: every node read in one request, back to back. *raw* is ``Client.read_attributes``;
  *ours* is ``OpcUaReader.poll_once`` (the same request, then the readings). Values/s here is the
  capacity of the pair (client and server share the machine's cores).

The process runs with the collector's garbage-collector settings (``connectors.collector.tune_gc``),
for both clients.

Overhead = ours' client CPU per value / raw's - 1 (target: <= 25 %), with the per-round figures'
median. Printed with ``nproc`` and the load average, which the figures depend on.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asyncua import Client, ua  # bench/ may import asyncua: it is the baseline

from connectors.collector import tune_gc
from connectors.config.opcua import OpcUaNode, OpcUaSource
from connectors.opcua.source import OpcUaReader
from twin.readings import Reading

PUBLISH_S = 0.1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(port: int, n: int, change_hz: float, ready: Any, stop: Any) -> None:
    """The server process: ``n`` Double variables, each changed ``change_hz`` times a second."""
    from connectors.emulator.opcua_endpoint import OpcUaEndpoint

    async def main() -> None:
        ep = OpcUaEndpoint(port, [("M", f"v{i}", 0.0, "") for i in range(n)])
        await ep.start()
        ready.set()
        k = 0
        period = 1.0 / change_hz
        loop = asyncio.get_running_loop()
        next_t = loop.time()
        while not stop.is_set():
            k += 1
            for i in range(n):
                await ep.set("M", f"v{i}", k + i / n)
            next_t += period
            await asyncio.sleep(max(0.0, next_t - loop.time()))
        await ep.stop()

    asyncio.run(main())


def source(port: int, n: int) -> OpcUaSource:
    nodes = tuple(OpcUaNode(asset="M", signal=f"v{i}", ref=("node", f"ns=2;s=M.v{i}")) for i in range(n))
    return OpcUaSource(id="bench", site="s1", endpoint=f"opc.tcp://127.0.0.1:{port}", nodes=nodes,
                       sampling_interval_s=0.0, publish_interval_s=PUBLISH_S, timeout_s=4.0, bad_after_s=4.0)


@dataclass
class Figures:
    values: list[int] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)

    def add(self, values: int, cpu_s: float, wall_s: float) -> None:
        self.values.append(values)
        self.cpu_s.append(cpu_s)
        self.wall_s.append(wall_s)

    @property
    def rate(self) -> float:
        return sum(self.values) / sum(self.wall_s)

    @property
    def us_per_value(self) -> float:
        return 1e6 * sum(self.cpu_s) / max(1, sum(self.values))

    def per_round(self) -> list[float]:
        return [1e6 * c / max(1, v) for c, v in zip(self.cpu_s, self.values, strict=True)]


class _Count:
    """asyncua's subscription handler, counting."""

    def __init__(self) -> None:
        self.n = 0

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        self.n += 1


async def _measure(seconds: float, count: Any) -> tuple[int, float, float]:
    """Values counted, CPU and wall seconds over ``seconds`` after a 0.5 s warm-up."""
    await asyncio.sleep(0.5)
    c0, t0, v0 = time.process_time(), time.perf_counter(), count()
    await asyncio.sleep(seconds)
    return count() - v0, time.process_time() - c0, time.perf_counter() - t0


async def raw_subscription(port: int, n: int, seconds: float) -> tuple[int, float, float]:
    client = Client(f"opc.tcp://127.0.0.1:{port}", timeout=4.0)
    await client.connect()
    try:
        handler = _Count()
        sub = await client.create_subscription(1000 * PUBLISH_S, handler)
        nodes = [client.get_node(f"ns=2;s=M.v{i}") for i in range(n)]
        await sub.subscribe_data_change(nodes, queuesize=1, sampling_interval=0.0)
        return await _measure(seconds, lambda: handler.n)
    finally:
        await client.disconnect()


async def our_subscription(port: int, n: int, seconds: float) -> tuple[int, float, float]:
    reader = OpcUaReader(source(port, n))
    got: list[int] = [0]

    def sink(readings: Sequence[Reading]) -> None:
        got[0] += len(readings)

    stop = asyncio.Event()
    task = asyncio.create_task(reader.run(sink, stop))
    try:
        while reader.notifications < n:  # subscribed, every node's first value in
            await asyncio.sleep(0.05)
        return await _measure(seconds, lambda: reader.notifications)
    finally:
        stop.set()
        await task


async def raw_polling(port: int, n: int, seconds: float) -> tuple[int, float, float]:
    client = Client(f"opc.tcp://127.0.0.1:{port}", timeout=4.0)
    await client.connect()
    nodes = [client.get_node(f"ns=2;s=M.v{i}") for i in range(n)]
    done = [0]
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            values = await client.read_attributes(nodes, ua.AttributeIds.Value)
            done[0] += len(values)

    task = asyncio.create_task(loop())
    try:
        return await _measure(seconds, lambda: done[0])
    finally:
        stop.set()
        await task
        await client.disconnect()


async def our_polling(port: int, n: int, seconds: float) -> tuple[int, float, float]:
    reader = OpcUaReader(source(port, n), polling=True)
    await reader.poll_once()  # connected, nodes resolved
    done = [0]
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            done[0] += len(await reader.poll_once())

    task = asyncio.create_task(loop())
    try:
        return await _measure(seconds, lambda: done[0])
    finally:
        stop.set()
        await task
        await reader.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=200)
    ap.add_argument("--change-hz", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mode", choices=["subscription", "polling", "both"], default="both")
    args = ap.parse_args()
    port = free_port()
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    server = ctx.Process(target=serve, args=(port, args.nodes, args.change_hz, ready, stop), daemon=True)
    server.start()
    if not ready.wait(60):
        raise SystemExit("the OPC UA server did not start")
    tune_gc()  # the collector's garbage-collector settings, as in bench/modbus_bench.py (both clients alike)
    load0 = os.getloadavg()
    modes = {"subscription": (raw_subscription, our_subscription), "polling": (raw_polling, our_polling)}
    modes = {k: v for k, v in modes.items() if args.mode in (k, "both")}
    figures: dict[tuple[str, str], Figures] = {}
    try:
        for _ in range(args.rounds):
            for mode, (raw, ours) in modes.items():
                for who, fn in (("asyncua", raw), ("ours", ours)):
                    got = asyncio.run(fn(port, args.nodes, args.seconds))
                    figures.setdefault((mode, who), Figures()).add(*got)
    finally:
        stop.set()
        server.join(30)
    load1 = os.getloadavg()
    print(f"OPC UA bench: {args.nodes} nodes changed {args.change_hz:g} times/s ({args.nodes * args.change_hz:,.0f} "
          f"changes/s), {args.rounds} rounds of {args.seconds:g} s per client and mode; nproc {os.cpu_count()}, "
          f"load average {load0[0]:.2f} before, {load1[0]:.2f} after")
    print(f"{'mode':<13} {'client':<8} {'values/s':>9} {'CPU us/value':>13} {'overhead (median of rounds)':>28}")
    for mode in modes:
        raw, ours = figures[(mode, "asyncua")], figures[(mode, "ours")]
        ratios = [o / r - 1 for o, r in zip(ours.per_round(), raw.per_round(), strict=True)]
        for who, f in (("asyncua", raw), ("ours", ours)):
            extra = (f"{100 * (ours.us_per_value / raw.us_per_value - 1):+.0f} % "
                     f"({100 * statistics.median(ratios):+.0f} %)") if who == "ours" else ""
            print(f"{mode:<13} {who:<8} {f.rate:>9,.0f} {f.us_per_value:>13.1f} {extra:>28}")


if __name__ == "__main__":
    main()
