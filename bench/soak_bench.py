"""Soak: 100 emulated sites x 10 machines polled at 1 Hz for N minutes, collector writing SQLite.

    .venv/bin/python bench/soak_bench.py [--minutes 10] [--sites 100] [--machines 10] [--poll 1.0]

The fleet is generated in code: one Modbus device per site (one PLC serving its 10 machines, 6
signals each: status, good/scrap counters, cycle time, power in holding registers, temperature in an
input register; 2 block reads per poll), each device on its own free port on 127.0.0.1. ONE emulator
process serves all of them (this script re-run with ``--serve``; plant images refreshed every 1 s).
The collector runs in this process: the real ``connectors.collector.Collector`` (poller + twin.live)
writing to a ``SqliteHistorian`` in a temporary directory.

Reported: poll rate held (polls/s per device over the measured period: min / mean, and the worst
10 s window), RSS of this (collector) process at the start and the end of the measured period and
its trend, the historian keeping up (readings produced by the poller vs acknowledged by the store,
write latency p50/p95/max per batch, rows in the file), CPU of both processes. A warm-up of 10 s is
excluded. Everything this script starts is stopped before it returns (bounded: minutes + 60 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.collector import Batch, Collector, tune_gc  # noqa: E402
from connectors.config import PlantConfig, load_text  # noqa: E402
from connectors.store import SqliteHistorian  # noqa: E402
from twin.readings import Reading  # noqa: E402
from twin.state import Event, SiteState  # noqa: E402

HEAD = """
[fleet]
id = "soak"
name = "soak"
stale_after_polls = 3
[[templates]]
id = "printer"
role = "print"
ideal_cycle_time_s = 600
batch_size = 4
mtbf_h = 20
mttr_h = 0.5
scrap_rate = 0.05
status_codes = { 0 = "off", 1 = "idle", 2 = "running", 3 = "fault", 4 = "maintenance", 5 = "setup" }
signals = [
  { name = "status", kind = "status" },
  { name = "good_count", kind = "good_count", counter_bits = 32 },
  { name = "scrap_count", kind = "scrap_count", counter_bits = 32 },
  { name = "cycle_time_s", kind = "cycle_time", unit = "s" },
  { name = "nozzle_temp_c", kind = "temperature", unit = "degC" },
  { name = "power_kw", kind = "power", unit = "kW" },
]
[[sources.register_maps]]
id = "printer"
points = [
  { signal = "status", kind = "holding", address = 0, type = "UINT16" },
  { signal = "good_count", kind = "holding", address = 1, type = "UINT32", byte_order = "CDAB" },
  { signal = "scrap_count", kind = "holding", address = 3, type = "UINT32", byte_order = "CDAB" },
  { signal = "cycle_time_s", kind = "holding", address = 5, type = "FLOAT32" },
  { signal = "power_kw", kind = "holding", address = 7, type = "UINT16", scale = 0.01, unit = "kW" },
  { signal = "nozzle_temp_c", kind = "input", address = 0, type = "INT16", scale = 0.1, unit = "degC" },
]
"""
SITE = """
[[sites]]
id = "s%(i)03d"
name = "Site %(i)d"
kind = "point-of-demand"
timezone = "UTC"
shifts = [{ name = "day", days = ["mon", "tue", "wed", "thu", "fri"], start = "06:00", end = "22:00" }]
machines = [{ template = "printer", count = %(m)d, id_prefix = "M" }]
"""
DEVICE = """
[[sources.modbus]]
id = "plc-%(i)03d"
site = "s%(i)03d"
host = "127.0.0.1"
port = %(port)d
address_base = 0
timeout_s = 1.0
poll_interval_s = %(poll)s
bad_after_s = 10.0
assets = [%(assets)s]
"""


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 right now (all bound at once, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def fleet_toml(sites: int, machines: int, poll_s: float, ports: Sequence[int]) -> str:
    parts = [HEAD]
    for i in range(sites):
        parts.append(SITE % {"i": i, "m": machines})
    for i in range(sites):
        assets = ", ".join(f'{{ asset = "M{k + 1}", map = "printer", offset = {10 * k} }}' for k in range(machines))
        parts.append(DEVICE % {"i": i, "port": ports[i], "poll": repr(poll_s), "assets": assets})
    return "".join(parts)


# ------------------------------------------------------------------------------------ the emulator process

def serve(config: Path, duration_s: float) -> int:
    """``--serve``: one process serving every device of ``config`` until SIGTERM or ``duration_s``."""
    from connectors.config import load
    from connectors.emulator.server import Emulator

    cfg = load(config)

    async def main() -> None:
        emu = Emulator(cfg.fleet, cfg.modbus, seed=1, speed=1.0, tick_s=1.0)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.call_later(duration_s, stop.set)
        run = asyncio.create_task(emu.run(stop))
        await asyncio.sleep(0.5)
        print(f"serving {len(cfg.modbus)} devices", flush=True)
        await run
        print(f"stopped; reads {emu.reads_received}, writes {emu.writes_received}", flush=True)

    asyncio.run(main())
    return 0


# ------------------------------------------------------------------------------------ the collector side

class TimedSink:
    """The historian, with each write timed and every acknowledged reading counted."""

    def __init__(self, store: SqliteHistorian) -> None:
        self.store = store
        self.latencies: list[float] = []
        self.written = 0
        self.measuring = False

    def write(self, readings: Sequence[Reading], states: Sequence[SiteState] = (),
              events: Sequence[Event] = ()) -> None:
        t = time.perf_counter()
        self.store.write(readings, states, events)
        if self.measuring:
            self.latencies.append(time.perf_counter() - t)
        self.written += len(readings)


class CountingCollector(Collector):
    """The collector, counting what the poller produced and timing each batch's ``twin.live`` apply."""

    produced = 0
    flush_s: list[float]

    def ingest(self, readings: Sequence[Reading]) -> None:
        self.produced += len(readings)
        super().ingest(readings)

    def apply_pending(self) -> Batch:
        t = time.perf_counter()
        batch = super().apply_pending()
        self.flush_s.append(time.perf_counter() - t)
        return batch


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def soak(cfg: PlantConfig, store: SqliteHistorian, minutes: float, warmup_s: float) -> dict[str, object]:
    me = psutil.Process()
    sink = TimedSink(store)
    col = CountingCollector(cfg.fleet, cfg.modbus, sink, flush_interval_s=0.5, checkpoint_interval_s=300.0, seed=1)
    col.flush_s = []
    stop = asyncio.Event()
    tune_gc()  # as ``twin collect`` does before running
    task = asyncio.create_task(col.run(stop))
    devices = col.poller.devices
    blocks = {k: len(dp.blocks) for k, dp in devices.items()}
    await asyncio.sleep(warmup_s)
    sink.measuring = True
    col.flush_s.clear()
    t0 = time.monotonic()
    cpu0 = me.cpu_times()
    rss0 = me.memory_info().rss
    reads0 = {k: dp.block_reads for k, dp in devices.items()}
    fails0 = sum(dp.failed_reads for dp in devices.values())
    produced0, written0 = col.produced, sink.written
    rss_trend: list[tuple[float, int]] = [(0.0, rss0)]
    windows: list[float] = []  # per 10 s window: the slowest device's polls/s
    last = dict(reads0)
    t_last = t0
    end = t0 + minutes * 60.0
    while time.monotonic() < end:
        await asyncio.sleep(min(10.0, max(0.0, end - time.monotonic())))
        now = time.monotonic()
        cur = {k: dp.block_reads for k, dp in devices.items()}
        if now - t_last > 1.0:
            windows.append(min((cur[k] - last[k]) / blocks[k] / (now - t_last) for k in cur))
        last, t_last = cur, now
        rss_trend.append((now - t0, me.memory_info().rss))
    elapsed = time.monotonic() - t0
    cpu1 = me.cpu_times()
    rss1 = me.memory_info().rss
    reads1 = {k: dp.block_reads for k, dp in devices.items()}
    fails = sum(dp.failed_reads for dp in devices.values()) - fails0
    produced, written_during = col.produced - produced0, sink.written - written0
    stop.set()
    await asyncio.wait_for(task, 30.0)  # the last batch is flushed before it returns
    rates = [(reads1[k] - reads0[k]) / blocks[k] / elapsed for k in devices]
    return {
        "elapsed": elapsed, "rates": rates, "windows": windows, "fails": fails, "rss0": rss0, "rss1": rss1,
        "rss_trend": rss_trend, "cpu": (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / elapsed,
        "produced": produced, "written_during": written_during, "backlog_end": col.produced - sink.written,
        "latencies": sink.latencies, "flush_s": col.flush_s, "written_total": sink.written,
        "write_failures": col.write_failures, "dropped": col.readings_dropped,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="measured minutes (default 10)")
    ap.add_argument("--sites", type=int, default=100)
    ap.add_argument("--machines", type=int, default=10, help="machines per site, one PLC per site")
    ap.add_argument("--poll", type=float, default=1.0, help="poll interval, s (default 1)")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds excluded at the start (default 10)")
    ap.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--serve-duration", type=float, default=0.0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve is not None:
        return serve(args.serve, args.serve_duration)

    budget_s = args.minutes * 60.0 + args.warmup + 60.0
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        tmpdir = Path(tmp)
        ports = free_ports(args.sites)
        text = fleet_toml(args.sites, args.machines, args.poll, ports)
        cfg_path = tmpdir / "fleet.toml"
        cfg_path.write_text(text)
        cfg = load_text(text, source=cfg_path)
        points = sum(len(d.points) for d in cfg.modbus)
        emu = subprocess.Popen([sys.executable, __file__, "--serve", str(cfg_path), "--serve-duration",
                                str(budget_s)], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            assert emu.stdout is not None
            line = emu.stdout.readline()
            if not line.startswith("serving"):
                print(f"emulator did not start: {line!r}", file=sys.stderr)
                return 1
            emu_ps = psutil.Process(emu.pid)
            ecpu0 = emu_ps.cpu_times()
            te0 = time.monotonic()
            store = SqliteHistorian(tmpdir / "soak.sqlite", cfg.fleet)
            try:
                res = asyncio.run(asyncio.wait_for(soak(cfg, store, args.minutes, args.warmup), budget_s))
            finally:
                store.close()
            ecpu1 = emu_ps.cpu_times()
            emu_cpu = (ecpu1.user + ecpu1.system - ecpu0.user - ecpu0.system) / (time.monotonic() - te0)
            with sqlite3.connect(tmpdir / "soak.sqlite") as db:
                rows = db.execute("SELECT count(*) FROM readings").fetchone()[0]
            size_mb = sum(p.stat().st_size for p in tmpdir.glob("soak.sqlite*")) / 1e6
        finally:
            emu.send_signal(signal.SIGTERM)
            try:
                tail, _ = emu.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                emu.kill()
                tail, _ = emu.communicate(timeout=10)
        writes = [ln for ln in tail.splitlines() if ln.startswith("stopped")]

    rates: list[float] = res["rates"]  # type: ignore[assignment]
    lat: list[float] = res["latencies"]  # type: ignore[assignment]
    flush_s: list[float] = res["flush_s"]  # type: ignore[assignment]
    trend: list[tuple[float, int]] = res["rss_trend"]  # type: ignore[assignment]
    windows: list[float] = res["windows"]  # type: ignore[assignment]
    elapsed = float(res["elapsed"])  # type: ignore[arg-type]
    produced = int(res["produced"])  # type: ignore[call-overload]
    nominal = 1.0 / args.poll
    mib = 1024 * 1024
    print(f"\nSoak: {args.sites} sites x {args.machines} machines = {args.sites * args.machines} machines, "
          f"{len(cfg.modbus)} devices, {points} points, polled every {args.poll:g} s; "
          f"measured {elapsed / 60:.1f} min after {args.warmup:g} s warm-up\n")
    table = [
        ("poll rate per device, polls/s (nominal)", f"{nominal:.3f}"),
        ("  min / mean over the run", f"{min(rates):.3f} / {statistics.fmean(rates):.3f}"),
        ("  slowest device in the worst 10 s window", f"{min(windows):.3f}" if windows else "n/a"),
        ("failed block reads", f"{res['fails']}"),
        ("collector RSS start -> end, MiB", f"{res['rss0'] / mib:.1f} -> {res['rss1'] / mib:.1f} "  # type: ignore[operator]
                                            f"({(res['rss1'] - res['rss0']) / mib:+.1f})"),  # type: ignore[operator]
        ("  RSS trend, MiB (every ~10 s)", " ".join(f"{r / mib:.0f}" for _, r in trend[:: max(1, len(trend) // 8)])),
        ("collector CPU (share of one core)", f"{float(res['cpu']):.0%}"),  # type: ignore[arg-type]
        ("emulator CPU (share of one core)", f"{emu_cpu:.0%}"),
        ("readings produced by the poller", f"{produced:,} ({produced / elapsed:,.0f}/s)"),
        ("readings acknowledged by the store", f"{int(res['written_during']):,}"),  # type: ignore[call-overload]
        ("backlog at the end (produced - written)", f"{res['backlog_end']}"),
        ("refused writes / readings dropped", f"{res['write_failures']} / {res['dropped']}"),
        ("store write latency per batch p50 / p95 / max, ms",
         f"{pct(lat, 0.5) * 1e3:.1f} / {pct(lat, 0.95) * 1e3:.1f} / {max(lat) * 1e3:.1f}"),
        ("twin.live apply per batch (event loop) p50 / p95, ms",
         f"{pct(flush_s, 0.5) * 1e3:.1f} / {pct(flush_s, 0.95) * 1e3:.1f}"),
        ("  batches, readings per batch (mean)", f"{len(lat)}, {produced / max(1, len(lat)):,.0f}"),
        ("rows in the SQLite file / file size", f"{rows:,} / {size_mb:.0f} MB"),
        ("  rows == every reading acknowledged (warm-up too)", f"{rows == res['written_total']}"),
        ("emulator", writes[0] if writes else "(no report)"),
    ]
    w = max(len(k) for k, _ in table)
    for k, v in table:
        print(f"{k:<{w}}  {v}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
