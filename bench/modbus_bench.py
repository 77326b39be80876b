"""Modbus throughput: raw pymodbus reads beside our poller (decode + twin.live.apply), interleaved.

    .venv/bin/python bench/modbus_bench.py [--devices 50] [--seconds 10] [--slice 0.5] [--rate 5000]

Setup: 50 emulated devices (one CNC mill each: 3 holding-register points in one block of 5
registers, 3 input-register points in one block of 5) are served by the emulator in a separate
process, on 50 ports. The client side runs in this process, in one event loop, over one
connection per device (the pollers' own), opened and read once before any clock starts. The
process runs with the collector's garbage-collector settings (``tune_gc``).

Two modes, alternating in slices of ``--slice`` seconds on the same sockets until each has run
``--seconds`` (interleaving cancels the slow drifts of a shared machine, which made separate phases
disagree by +-30 %):

* **raw**: bare pymodbus reads on the poller's own client, each device's 2 blocks back to back,
  no decoding.
* **ours**: ``DevicePoller.poll_once`` on every device (same connections, blocks, concurrency): our
  client (failures mapped to reasons), the compiled block decoder, one ``Reading`` per point; every
  collector flush interval (0.5 s) the readings are folded into the twin with ``twin.live.apply``
  in the same event loop (so apply time slows polling, as in the collector).

And two phases:

1. **At the target load** (``--rate``, 5,000 block reads/s in all): both modes read at that pace,
   each device once per period, the devices spread over it. Both read the same, so what differs
   is the client CPU per block read: ours over raw's is the overhead of decode + apply (and of the
   rest of the poller: failure mapping, timestamps) at that load. Target: <= 25 %.
2. **Flat out**: every device polls back to back. Ours' block reads/s is the capacity (target:
   >= 5,000), beside raw's. Time per block read of ours over raw's is printed too, with the
   quartiles of the slice pairs: it also measures the emulator, which shares the 2 cores, so it
   moves with which side limits (when the client does, every microsecond of ours also makes the
   server sleep and wake more). It is a capacity figure, not the overhead.

Also printed: decode + ``Reading`` CPU per point and apply CPU per reading, measured on their own.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import multiprocessing as mp
import socket
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.collector import Collector, tune_gc
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


FLUSH_S = inspect.signature(Collector).parameters["flush_interval_s"].default  # the collector's, 0.5 s


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
class Mode:
    """What one mode (raw or ours) did over all its slices: wall time, answered block reads, CPU."""

    seconds: float = 0.0
    blocks: int = 0
    readings: int = 0
    cpu_s: float = 0.0
    apply_cpu_s: float = 0.0
    rates: list[float] = field(default_factory=list)  # block reads/s of each slice

    @property
    def rate(self) -> float:
        return self.blocks / self.seconds

    def add(self, seconds: float, blocks: int, cpu_s: float) -> None:
        self.seconds += seconds
        self.blocks += blocks
        self.cpu_s += cpu_s
        self.rates.append(blocks / seconds)


async def interleaved(cfg: PlantConfig, seconds: float, slice_s: float,
                      rate: float | None = None) -> tuple[Mode, Mode]:
    """Raw and ours in alternating slices of ``slice_s`` over the same connections, ``seconds`` each.

    ``rate`` (block reads/s in all) paces both modes at a fixed rate instead of back to back.
    """
    from connectors.modbus.points import Block
    from connectors.modbus.poller import DevicePoller
    from connectors.modbus.spec import RegisterKind
    from twin import live
    from twin.readings import Reading

    pollers = [DevicePoller(d) for d in cfg.modbus]
    for dp in pollers:  # connect, and read every block once, before any clock starts
        await dp.poll_once()
        assert dp.reachable, f"{dp.device.id} unreachable"
    raw, ours = Mode(), Mode()
    state = live.initial_state(cfg.fleet, datetime.now(UTC))
    pending: list[Reading] = []

    async def paced(deadline: float, i: int) -> bool:
        """Whether to poll again before ``deadline``; at a fixed ``rate``, first wait for the poll's turn."""
        if period is None:
            return time.perf_counter() < deadline
        turn = starts[i] + period * polls[i]  # devices start evenly spread over one period
        polls[i] += 1
        wait = turn - time.perf_counter()
        if turn >= deadline:
            if deadline > time.perf_counter():
                await asyncio.sleep(deadline - time.perf_counter())
            return False
        if wait > 0:
            await asyncio.sleep(wait)
        return True

    async def raw_device(i: int, dp: DevicePoller, deadline: float) -> int:
        # The baseline: the poller's own pymodbus client (same socket), bare reads, no decoding.
        client, unit, n = dp.conn._client, dp.device.device_id, 0
        assert client is not None
        blocks: tuple[Block, ...] = dp.blocks
        while await paced(deadline, i):
            for b in blocks:
                if b.kind is RegisterKind.HOLDING:
                    rr = await client.read_holding_registers(b.address, count=b.count, device_id=unit)
                else:
                    rr = await client.read_input_registers(b.address, count=b.count, device_id=unit)
                assert not rr.isError()
                n += 1
        return n

    async def our_device(i: int, dp: DevicePoller, deadline: float) -> None:
        while await paced(deadline, i):
            readings = await dp.poll_once()
            pending.extend(readings)  # after the await: ``pending`` may be a new list by now

    def fold() -> None:
        nonlocal state, pending
        batch, pending = pending, []
        c0 = time.process_time()
        state, _ = live.apply(cfg.fleet, state, batch)
        ours.apply_cpu_s += time.process_time() - c0
        ours.readings += len(batch)

    async def applier(t0: float, deadline: float) -> None:
        # As the collector: fold what was read every flush interval; half an interval out of step
        # with the slices, so that no fold falls on a slice's end (the rest is folded after it).
        k = 0
        while (due := t0 + FLUSH_S * (k + 0.5)) < deadline:
            k += 1
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            fold()

    # At a fixed ``rate`` (block reads/s in all), each device polls once a ``period``, the devices
    # spread evenly over it; without one, every device polls back to back.
    n = len(pollers)
    period = None if rate is None else n * len(pollers[0].blocks) / rate
    starts, polls = [0.0] * n, [0] * n
    k = 0
    while raw.seconds < seconds or ours.seconds < seconds:
        mine = k % 2 == 1
        k += 1
        t0, c0 = time.perf_counter(), time.process_time()
        deadline = t0 + slice_s
        if period is not None:
            starts, polls = [t0 + period * j / n for j in range(n)], [0] * n
        if mine:
            before = sum(dp.block_reads for dp in pollers)
            await asyncio.gather(applier(t0, deadline), *(our_device(j, dp, deadline) for j, dp in enumerate(pollers)))
            t1 = time.perf_counter()
            fold()  # what the last polls read: its CPU counts; its wall time only flat out (paced,
            # the collector would fold it while waiting for the next polls' turn)
            ours.add((time.perf_counter() if period is None else t1) - t0,
                     sum(dp.block_reads for dp in pollers) - before, time.process_time() - c0)
        else:
            counts = await asyncio.gather(*(raw_device(j, dp, deadline) for j, dp in enumerate(pollers)))
            raw.add(time.perf_counter() - t0, sum(counts), time.process_time() - c0)
    for dp in pollers:
        dp.close()
    bad = sum(dp.failed_reads for dp in pollers)
    assert bad == 0, f"{bad} failed reads"
    return raw, ours


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


def report(name: str, raw: Mode, ours: Mode) -> None:
    print(f"{name:<20}{'mode':<34}{'block reads/s':>15}{'readings/s':>12}{'CPU us/read':>13}")
    print(f"{'':<20}{'raw pymodbus client reads':<34}{raw.rate:>15,.0f}{'-':>12}"
          f"{1e6 * raw.cpu_s / raw.blocks:>13.1f}")
    print(f"{'':<20}{'poller: decode + twin.live.apply':<34}{ours.rate:>15,.0f}"
          f"{ours.readings / ours.seconds:>12,.0f}{1e6 * ours.cpu_s / ours.blocks:>13.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10.0, help="timed seconds of each mode, in each phase")
    ap.add_argument("--slice", type=float, default=0.5, help="seconds per slice; raw and ours alternate")
    ap.add_argument("--rate", type=float, default=5000.0,
                    help="the target load: block reads/s of both modes in the first phase")
    args = ap.parse_args()
    ports = free_ports(args.devices)
    cfg = config(args.devices, ports)
    ready, stop = mp.Event(), mp.Event()
    server = mp.Process(target=serve, args=(args.devices, ports, ready, stop), daemon=True)
    server.start()
    tune_gc()  # as ``twin collect`` does (for both modes: they share this process)
    try:
        if not ready.wait(30):
            raise SystemExit("emulator did not start")
        paced_raw, paced_ours = asyncio.run(interleaved(cfg, args.seconds, args.slice, args.rate))
        raw, ours = asyncio.run(interleaved(cfg, args.seconds, args.slice))
        decode_s = asyncio.run(decode_cost(cfg))
    finally:
        stop.set()
        server.join(10)
    print(f"{args.devices} devices (emulator in a separate process); raw and ours alternate in slices of "
          f"{args.slice:g} s over the same connections, {args.seconds:g} s each per phase")
    report(f"paced at {args.rate:,.0f}/s", paced_raw, paced_ours)
    report("flat out", raw, ours)
    cpu_over = (paced_ours.cpu_s / paced_ours.blocks) / (paced_raw.cpu_s / paced_raw.blocks) * 100 - 100
    # Both modes must have read (nearly) at the pace: CPU per read is only comparable at the same load.
    kept = min(paced_raw.rate, paced_ours.rate) / args.rate
    pairs = [(r / o - 1) * 100 for r, o in zip(raw.rates, ours.rates, strict=False)]
    q1, q2, q3 = statistics.quantiles(pairs, n=4)
    apply_s = ours.apply_cpu_s / ours.readings
    raw_cpu = raw.cpu_s / raw.blocks
    print(f"decode + Reading: {decode_s * 1e6:.2f} us/point; twin.live.apply: {apply_s * 1e6:.2f} us/reading "
          f"(CPU); both: {3 * (decode_s + apply_s) / raw_cpu * 100:.1f} % of a flat-out raw read's CPU "
          f"(3 points a block)")
    print(f"flat out, time per block read of ours over raw: {(raw.rate / ours.rate - 1) * 100:.1f} % "
          f"(slice pairs: quartiles {q1:.1f} / {q2:.1f} / {q3:.1f} %)")
    met = cpu_over <= 25 and kept >= 0.95
    print(f"overhead at {args.rate:,.0f} block reads/s: ours takes {cpu_over:.1f} % more client CPU per block "
          f"read than raw reads (target <= 25 %: {'met' if met else 'NOT met'}"
          f"{'' if kept >= 0.95 else f'; the pace was not kept: {kept:.0%}'}); "
          f"flat out, ours {ours.rate:,.0f} block reads/s (target >= 5,000: "
          f"{'met' if ours.rate >= 5000 else 'NOT met'})")


if __name__ == "__main__":
    main()
