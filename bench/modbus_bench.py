"""Modbus throughput: raw pymodbus reads beside our poller (decode + twin.live.apply), alternating rounds.

    .venv/bin/python bench/modbus_bench.py [--devices 50] [--seconds 2] [--rounds 5]

Setup: 50 emulated devices (one CNC mill each: 3 holding-register points in one block of 5
registers, 3 input-register points in one block of 5) are served by the emulator in a separate
process, on 50 ports. The client side runs in this process, one event loop per phase.

What is measured, per round (``--rounds`` rounds, raw and ours alternating which goes first):

* **raw**: bare pymodbus ``AsyncModbusTcpClient``s, one per device (50 connections), each reading
  its device's 2 blocks back to back, with no decoding: answered block reads per second.
* **ours**: ``DevicePoller.poll_once`` back to back on every device (same 50 connections, same 2
  blocks, same concurrency), i.e. our client (a lock per connection, failures mapped to reasons),
  compiled block decoding, one ``Reading`` per point; every 0.1 s the collected readings are folded
  into the twin with ``twin.live.apply`` in the same event loop (so apply time slows polling, as in
  the collector). Answered block reads per second, and readings applied per second.

Connections are opened (and each block read once) before a phase's clock starts, so both phases
measure steady-state reading for ``--seconds``. The table gives the median over rounds; the
overhead is the median of the per-round ``1 - ours / raw`` (the raw rate swings with the emulator's
share of the 2 cores, so each round's ratio compares phases run seconds apart). Also shown:
client-process CPU per block read in each phase, apply CPU per reading (in the phase), and decode
+ ``Reading`` CPU per point (a tight loop over registers read from the devices).

Targets: ours >= 5,000 block reads/s; overhead <= 25 %.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import socket
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.config import PlantConfig, load_text

TEMPLATE = """
[fleet]
id = "bench"
name = "bench"
[[templates]]
id = "cnc-mill"
role = "machine"
ideal_cycle_time_s = 120
status_codes = { 0 = "off", 1 = "idle", 2 = "running", 3 = "fault", 4 = "maintenance" }
signals = [
  { name = "status", kind = "status" },
  { name = "good_count", kind = "good_count" },
  { name = "scrap_count", kind = "scrap_count" },
  { name = "spindle_temp_c", kind = "temperature", unit = "degC" },
  { name = "power_kw", kind = "power", unit = "kW" },
  { name = "vibration_mm_s", kind = "vibration", unit = "mm/s" },
]
[[sites]]
id = "s1"
name = "bench site"
kind = "point-of-demand"
timezone = "UTC"
shifts = [{ name = "day", days = ["mon"], start = "06:00", end = "14:00" }]
machines = [{ template = "cnc-mill", count = %(n)d, id_prefix = "M" }]
[[sources.register_maps]]
id = "cnc"
points = [
  { signal = "status", kind = "holding", address = 0, type = "UINT16" },
  { signal = "good_count", kind = "holding", address = 1, type = "UINT32", byte_order = "CDAB" },
  { signal = "scrap_count", kind = "holding", address = 3, type = "UINT32", byte_order = "CDAB" },
  { signal = "spindle_temp_c", kind = "input", address = 0, type = "INT16", scale = 0.1 },
  { signal = "power_kw", kind = "input", address = 1, type = "FLOAT32" },
  { signal = "vibration_mm_s", kind = "input", address = 3, type = "FLOAT32" },
]
"""
DEVICE = """
[[sources.modbus]]
id = "d%(i)d"
site = "s1"
port = %(port)d
address_base = 0
timeout_s = 2.0
poll_interval_s = 1.0
assets = [{ asset = "M%(i)d", map = "cnc" }]
"""


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def config(n: int, ports: list[int]) -> PlantConfig:
    text = TEMPLATE % {"n": n} + "".join(DEVICE % {"i": i + 1, "port": p} for i, p in enumerate(ports))
    return load_text(text)


def serve(n: int, ports: list[int], ready: mp.synchronize.Event, stop: mp.synchronize.Event) -> None:
    from connectors.emulator.server import Emulator

    cfg = config(n, ports)

    async def main() -> None:
        emu = Emulator(cfg.fleet, cfg.modbus, seed=1, speed=60.0, tick_s=0.5)
        ev = asyncio.Event()
        task = asyncio.create_task(emu.run(ev))
        await asyncio.sleep(0.5)
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.1)
        ev.set()
        await task

    asyncio.run(main())


@dataclass
class Phase:
    """One timed phase: answered block reads, readings applied, CPU seconds of this process."""

    seconds: float
    blocks: int
    readings: int = 0
    cpu_s: float = 0.0
    apply_cpu_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.blocks / self.seconds


async def raw_phase(cfg: PlantConfig, seconds: float) -> Phase:
    from pymodbus.client import AsyncModbusTcpClient  # the baseline: bare pymodbus, no decoding

    from connectors.modbus.points import Block, plan_blocks
    from connectors.modbus.spec import RegisterKind

    clients = []
    for dev in cfg.modbus:
        client = AsyncModbusTcpClient("127.0.0.1", port=dev.port, timeout=2.0, retries=0)
        await client.connect()
        clients.append((client, plan_blocks(dev.points)))

    async def read(client: AsyncModbusTcpClient, b: Block) -> None:
        if b.kind is RegisterKind.HOLDING:
            rr = await client.read_holding_registers(b.address, count=b.count, device_id=1)
        else:
            rr = await client.read_input_registers(b.address, count=b.count, device_id=1)
        assert not rr.isError()

    for client, blocks in clients:  # warm up: every block once, before the clock starts
        for b in blocks:
            await read(client, b)
    count = 0
    deadline = time.perf_counter() + seconds
    cpu0 = time.process_time()

    async def one(client: AsyncModbusTcpClient, blocks: tuple[Block, ...]) -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            for b in blocks:
                await read(client, b)
                count += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(one(c, b) for c, b in clients))
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    for client, _ in clients:
        client.close()
    return Phase(seconds=elapsed, blocks=count, cpu_s=cpu)


async def twin_phase(cfg: PlantConfig, seconds: float) -> Phase:
    from connectors.modbus.poller import DevicePoller
    from twin import live
    from twin.readings import Reading

    pollers = [DevicePoller(d) for d in cfg.modbus]
    for dp in pollers:  # connect, and read every block once, before the clock starts
        await dp.poll_once()
        assert dp.reachable, f"{dp.device.id} unreachable"
    reads0 = sum(dp.block_reads for dp in pollers)
    pending: list[Reading] = []
    state = live.initial_state(cfg.fleet, datetime.now(UTC))
    applied = 0
    apply_cpu = 0.0
    deadline = time.perf_counter() + seconds
    cpu0 = time.process_time()

    async def one(dp: DevicePoller) -> None:
        while time.perf_counter() < deadline:
            readings = await dp.poll_once()
            pending.extend(readings)  # after the await: ``pending`` may be a new list by now

    def fold() -> None:
        nonlocal state, applied, apply_cpu, pending
        batch, pending = pending, []
        c0 = time.process_time()
        state, _ = live.apply(cfg.fleet, state, batch)
        apply_cpu += time.process_time() - c0
        applied += len(batch)

    async def applier() -> None:
        while time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
            fold()

    t0 = time.perf_counter()
    await asyncio.gather(applier(), *(one(dp) for dp in pollers))
    fold()  # what the last polls read
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    for dp in pollers:
        dp.close()
    bad = sum(dp.failed_reads for dp in pollers)
    assert bad == 0, f"{bad} failed reads"
    return Phase(seconds=elapsed, blocks=sum(dp.block_reads for dp in pollers) - reads0, readings=applied,
                 cpu_s=cpu, apply_cpu_s=apply_cpu)


async def decode_cost(cfg: PlantConfig, repeat: int = 200) -> float:
    """CPU seconds per point of ``BlockDecoder.readings`` (decode + one Reading per point) on real answers."""
    from connectors.modbus.points import BlockDecoder
    from connectors.modbus.poller import DevicePoller

    answers = []
    for dev in cfg.modbus:
        dp = DevicePoller(dev)
        await dp.poll_once()
        for block in dp.blocks:
            result = await dp.conn.read(block.kind, block.address, block.count)
            assert result.values is not None
            answers.append((BlockDecoder(block), list(result.values)))
        dp.close()
    site, ts = cfg.modbus[0].site, datetime.now(UTC)
    points = 0
    c0 = time.process_time()
    for _ in range(repeat):
        for decoder, words in answers:
            points += len(decoder.readings(words, ts, site))
    return (time.process_time() - c0) / points


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    ports = free_ports(args.devices)
    cfg = config(args.devices, ports)
    ready, stop = mp.Event(), mp.Event()
    server = mp.Process(target=serve, args=(args.devices, ports, ready, stop), daemon=True)
    server.start()
    raws: list[Phase] = []
    ours: list[Phase] = []
    try:
        if not ready.wait(30):
            raise SystemExit("emulator did not start")
        for i in range(args.rounds):
            if i % 2 == 0:
                raws.append(asyncio.run(raw_phase(cfg, args.seconds)))
                ours.append(asyncio.run(twin_phase(cfg, args.seconds)))
            else:
                ours.append(asyncio.run(twin_phase(cfg, args.seconds)))
                raws.append(asyncio.run(raw_phase(cfg, args.seconds)))
        decode_s = asyncio.run(decode_cost(cfg))
    finally:
        stop.set()
        server.join(10)
    med = statistics.median
    overheads = [(1 - o.rate / r.rate) * 100 for r, o in zip(raws, ours, strict=True)]
    raw_rate, our_rate, overhead = med(r.rate for r in raws), med(o.rate for o in ours), med(overheads)
    print(f"{args.devices} devices, emulator in a separate process; {args.rounds} rounds of "
          f"{args.seconds:g} s per phase, raw and ours alternating; medians over rounds")
    print(f"{'phase':<36}{'block reads/s':>15}{'readings/s':>12}{'CPU us/read':>13}")
    print(f"{'raw pymodbus client reads':<36}{raw_rate:>15,.0f}{'-':>12}"
          f"{med(1e6 * r.cpu_s / r.blocks for r in raws):>13.1f}")
    readings_rate = med(o.readings / o.seconds for o in ours)
    print(f"{'poller: decode + twin.live.apply':<36}{our_rate:>15,.0f}{readings_rate:>12,.0f}"
          f"{med(1e6 * o.cpu_s / o.blocks for o in ours):>13.1f}")
    print("per round: raw " + " ".join(f"{r.rate:,.0f}" for r in raws)
          + " | ours " + " ".join(f"{o.rate:,.0f}" for o in ours)
          + " | overhead " + " ".join(f"{x:.0f}%" for x in overheads))
    print(f"decode + Reading: {decode_s * 1e6:.2f} us/point; twin.live.apply: "
          f"{med(1e6 * o.apply_cpu_s / o.readings for o in ours):.2f} us/reading (CPU)")
    raw_cpu, our_cpu = med(r.cpu_s / r.blocks for r in raws), med(o.cpu_s / o.blocks for o in ours)
    print(f"time per block read over raw: {(raw_rate / our_rate - 1) * 100:.1f} % (wall), "
          f"{(our_cpu / raw_cpu - 1) * 100:.1f} % (client CPU); decode + apply alone: "
          f"{3e6 * (decode_s + med(o.apply_cpu_s / o.readings for o in ours)) / (1e6 * raw_cpu) * 100:.1f} % "
          f"of a raw read's CPU (3 points per block)")
    print(f"overhead of decode + apply over raw reads: {overhead:.1f} % (target <= 25 %: "
          f"{'met' if overhead <= 25 else 'NOT met'}); ours {our_rate:,.0f} block reads/s (target >= 5,000: "
          f"{'met' if our_rate >= 5000 else 'NOT met'})")


if __name__ == "__main__":
    main()
