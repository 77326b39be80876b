"""Modbus throughput: raw pymodbus reads beside our poller (decode + twin.live.apply), same run.

    .venv/bin/python bench/modbus_bench.py [--devices 50] [--seconds 3]

50 emulated devices (one CNC mill each, 2 blocks per poll) are served by the emulator in a separate
process. Phase 1 reads the same blocks with bare pymodbus clients, one per device, in one event
loop; phase 2 runs our DevicePoller back to back on every device and folds the readings into the
twin with ``twin.live.apply`` every 0.1 s. Targets: >= 5,000 block reads/s; overhead <= 25 %.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import socket
import sys
import time
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


async def raw_phase(cfg: PlantConfig, seconds: float) -> int:
    from pymodbus.client import AsyncModbusTcpClient  # the baseline: bare pymodbus, no decoding

    from connectors.modbus.points import plan_blocks

    count = 0
    deadline = time.perf_counter() + seconds

    async def one(dev: object) -> None:
        nonlocal count
        blocks = plan_blocks(dev.points)  # type: ignore[attr-defined]
        client = AsyncModbusTcpClient("127.0.0.1", port=dev.port, timeout=2.0, retries=0)  # type: ignore[attr-defined]
        await client.connect()
        while time.perf_counter() < deadline:
            for b in blocks:
                if b.kind.value == "holding":
                    rr = await client.read_holding_registers(b.address, count=b.count, device_id=1)
                else:
                    rr = await client.read_input_registers(b.address, count=b.count, device_id=1)
                assert not rr.isError()
                count += 1
        client.close()

    await asyncio.gather(*(one(d) for d in cfg.modbus))
    return count


async def twin_phase(cfg: PlantConfig, seconds: float) -> tuple[int, int, float]:
    from connectors.modbus.poller import DevicePoller
    from twin import live

    pollers = [DevicePoller(d) for d in cfg.modbus]
    pending: list[object] = []
    state = live.initial_state(cfg.fleet, __import__("datetime").datetime.now(__import__("datetime").UTC))
    applied = 0
    apply_s = 0.0
    deadline = time.perf_counter() + seconds

    async def one(dp: DevicePoller) -> None:
        while time.perf_counter() < deadline:
            pending.extend(await dp.poll_once())

    async def applier() -> None:
        nonlocal state, applied, apply_s, pending
        while time.perf_counter() < deadline + 0.2:
            await asyncio.sleep(0.1)
            batch, pending = pending, []
            t0 = time.perf_counter()
            state, _ = live.apply(cfg.fleet, state, batch)  # type: ignore[arg-type]
            apply_s += time.perf_counter() - t0
            applied += len(batch)

    await asyncio.gather(applier(), *(one(dp) for dp in pollers))
    for dp in pollers:
        dp.close()
    bad = sum(dp.failed_reads for dp in pollers)
    assert bad == 0, f"{bad} failed reads"
    return sum(dp.block_reads for dp in pollers), applied, apply_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    ports = free_ports(args.devices)
    cfg = config(args.devices, ports)
    ready, stop = mp.Event(), mp.Event()
    server = mp.Process(target=serve, args=(args.devices, ports, ready, stop), daemon=True)
    server.start()
    try:
        if not ready.wait(30):
            raise SystemExit("emulator did not start")
        raw = asyncio.run(raw_phase(cfg, args.seconds))
        blocks, readings, apply_s = asyncio.run(twin_phase(cfg, args.seconds))
    finally:
        stop.set()
        server.join(10)
    raw_rate = raw / args.seconds
    ours = blocks / args.seconds
    print(f"{args.devices} devices, {args.seconds:g} s per phase, emulator in a separate process")
    print(f"{'phase':<36}{'block reads/s':>15}{'readings/s':>14}")
    print(f"{'raw pymodbus client reads':<36}{raw_rate:>15,.0f}{'-':>14}")
    print(f"{'poller: decode + twin.live.apply':<36}{ours:>15,.0f}{readings / args.seconds:>14,.0f}")
    print(f"overhead of decode + apply over raw reads: {(1 - ours / raw_rate) * 100:.1f} % "
          f"(apply itself: {apply_s:.2f} s of {args.seconds:g} s)")


if __name__ == "__main__":
    main()
