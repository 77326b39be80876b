"""Fault soak: the soak bench's fleet polled by the real collector while a few devices misbehave in rotation.

    .venv/bin/python bench/fault_soak_bench.py [--minutes 10] [--devices 100] [--hostile 5] [--baseline 1]

The fleet, the emulator process and the collector are those of ``bench/soak_bench.py`` (one Modbus
device per site serving 10 machines, 2 block reads per poll, polled every 1 s, ``timeout_s = 1``,
``bad_after_s = 10``, collector writing a ``SqliteHistorian``), except that ``--hostile`` devices spread
over the fleet are served by raw-socket 'PLCs' in the emulator process instead of the emulator. For
the first ``--baseline`` measured minutes they answer correctly (registers at 0): the same-run
baseline. From then on each changes mode every minute, in rotation, the devices out of step:

    flood           endless bytes, never a frame
    other-function  FC4 answers to FC3 requests and back (right transaction id, plausible registers)
    wrong-tid       the right answer under another transaction id (0 or the request's + 1, alternately)
    drop            accepts the connection, closes it at the first request
    hang            accepts and reads requests, never answers
    exception       an exception response, its code changing at every request

(a mode change also drops the device's open connections, as a PLC restarting into a new fault would).

Reported per measured minute and for the run: the healthy devices' poll rate as a share of their
configured rate (min over devices and mean), the collector's log output at WARNING (the level
``twin collect`` logs at by default; bytes and lines, from the same format), its RSS, readings of the
hostile devices stored GOOD while misbehaving (must be 0), and the bound the log volume should stay
within (see ``LOG_LINES_PER_MODE``), and the worst event-loop lag of the collector and of the emulator
process each minute (a stall of either, not a device, shows there). A warm-up of 10 s is excluded.
Everything started is stopped before it returns (bounded: minutes + 90 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.soak_bench import CountingCollector, TimedSink, fleet_toml, free_ports  # noqa: E402
from connectors.collector import tune_gc  # noqa: E402
from connectors.config import PlantConfig, load_text  # noqa: E402
from connectors.store import SqliteHistorian  # noqa: E402
from twin.readings import Quality, Reading  # noqa: E402

MODES = ("flood", "other-function", "wrong-tid", "drop", "hang", "exception")
# The most WARNING lines one misbehaving device can cost per mode period (one minute), by the poller's
# rules (connectors/modbus/poller.py): "went down" once per outage, "answering again" once when an
# answer comes back (an exception is an answer), and per block (2 here) "read failed" once per new kind
# of failure plus "answers again" once. 1 + 1 + 2 x 2 = 6, whatever the number of polls in the minute.
LOG_LINES_PER_MODE = 6
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # the format ``twin`` logs in


# ------------------------------------------------------------------------------------ the emulator process

def _answer(mode: str, req: bytes, n: int) -> bytes | None:
    """The reply of a hostile device in ``mode`` to the read request ``req`` (its ``n``-th); None: none."""
    tid, uid, fc = req[:2], req[6:7], req[7]
    count = int.from_bytes(req[10:12], "big")
    if mode == "exception":
        return tid + b"\x00\x00\x00\x03" + uid + bytes([fc | 0x80, (1, 3, 4, 5, 6, 10, 11)[n % 7]])
    if mode == "hang":
        return None
    if mode == "other-function":
        body = bytes([{3: 4, 4: 3}.get(fc, 3), 2 * count]) + b"\x00\x07" * count
        return tid + b"\x00\x00" + (len(body) + 1).to_bytes(2, "big") + uid + body
    body = bytes([fc, 2 * count]) + b"\x00\x00" * count
    if mode == "wrong-tid":
        tid = b"\x00\x00" if n % 2 else ((int.from_bytes(tid, "big") + 1) % 65536).to_bytes(2, "big")
    else:
        assert mode == "good", mode
    return tid + b"\x00\x00" + (len(body) + 1).to_bytes(2, "big") + uid + body


class LoopLag:
    """The event loop's worst lateness: a 0.1 s sleep timed over and over (``take`` returns and resets it).

    A loop blocked (or a process not scheduled) for a second shows as ~1 s here: it tells a stall of
    the process apart from a device's misbehaviour.
    """

    def __init__(self) -> None:
        self.worst = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(0.1)
            self.worst = max(self.worst, loop.time() - t - 0.1)

    def take(self) -> float:
        worst, self.worst = self.worst, 0.0
        return worst


class HostilePlc:
    """A raw-socket 'PLC' on one port whose behaviour ``mode`` can be switched while it runs."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.mode = "good"
        self.requests = 0
        self.connections = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._chunk = random.Random(port).randbytes(65536)
        self._server: asyncio.Server | None = None

    def switch(self, mode: str) -> None:
        if mode == self.mode:
            return
        self.mode = mode
        for w in list(self._writers):
            w.transport.abort()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self.switch("stopped")
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        mode = self.mode  # a connection lives in one mode: a switch aborts it
        try:
            if mode == "flood":
                while True:
                    writer.write(self._chunk)
                    await writer.drain()
            while True:
                req = await reader.readexactly(12)
                self.requests += 1
                if mode == "drop":
                    writer.transport.abort()
                    return
                reply = _answer(mode, req, self.requests)
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


def serve(config: Path, hostile: Sequence[str], duration_s: float) -> int:
    """``--serve``: the emulator for every device of ``config`` but ``hostile``, raw servers for those.

    Reads ``phase K`` lines on stdin: K = 0 puts every hostile device in ``good``; K >= 1 puts the
    j-th in ``MODES[(K - 1 + j) % len(MODES)]``; answers ``modes ...``. A ``lag`` line is answered with
    this process's worst event-loop lateness since the previous ``lag``, in seconds.
    """
    from connectors.config import load
    from connectors.emulator.server import Emulator

    cfg = load(config)

    async def main() -> None:
        emu = Emulator(cfg.fleet, [d for d in cfg.modbus if d.id not in hostile], seed=1, speed=1.0, tick_s=1.0)
        plcs = [HostilePlc(int(d.port)) for d in cfg.modbus if d.id in hostile]
        for p in plcs:
            await p.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.call_later(duration_s, stop.set)
        run = asyncio.create_task(emu.run(stop))
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

        lag = LoopLag()
        lag_task = asyncio.create_task(lag.run())

        async def control() -> None:
            while line := (await reader.readline()).decode():
                if line.startswith("lag"):
                    print(f"lag {lag.take():.3f}", flush=True)
                    continue
                k = int(line.split()[1])
                for j, p in enumerate(plcs):
                    p.switch("good" if k == 0 else MODES[(k - 1 + j) % len(MODES)])
                print("modes " + " ".join(p.mode for p in plcs), flush=True)

        ctl = asyncio.create_task(control())
        await asyncio.sleep(0.5)
        print(f"serving {len(emu.devices)} emulated + {len(plcs)} hostile devices", flush=True)
        await run
        ctl.cancel()
        lag_task.cancel()
        for p in plcs:
            await p.stop()
        print(f"stopped; reads {emu.reads_received}; hostile connections "
              f"{sum(p.connections for p in plcs)}, requests {sum(p.requests for p in plcs)}", flush=True)

    asyncio.run(main())
    return 0


# ------------------------------------------------------------------------------------ the collector side

class LogMeter(logging.Handler):
    """Counts what the collector logs (at WARNING and above), formatted as ``twin`` formats it.

    Lines about a hostile device (the poller's messages name the device first) are counted apart
    from all others: the bound ``LOG_LINES_PER_MODE`` is about the former.
    """

    def __init__(self, hostile: Sequence[str] = ()) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(logging.Formatter(FORMAT))
        self.hostile = frozenset(hostile)
        self.bytes = 0
        self.lines = 0
        self.hostile_bytes = 0
        self.hostile_lines = 0
        self.by_logger: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record) + "\n"
        size, lines = len(text.encode()), text.count("\n")
        self.bytes += size
        self.lines += lines
        args = record.args if isinstance(record.args, tuple) else ()
        if args and args[0] in self.hostile:
            self.hostile_bytes += size
            self.hostile_lines += lines
        self.by_logger[record.name] = self.by_logger.get(record.name, 0) + 1


class WatchingCollector(CountingCollector):
    """The soak bench's collector, also counting readings of the hostile sites stored GOOD per phase.

    A reading counts in the phase current when it was read (its timestamp from the poller's clock at
    or after ``since``, the moment the emulator confirmed the switch, which aborted the connections of
    the previous mode): the last good answers before a switch are not counted against the next mode.
    """

    hostile_sites: frozenset[str] = frozenset()
    phase = 0
    since = datetime.min.replace(tzinfo=UTC)
    good_hostile: dict[int, int]

    def ingest(self, readings: Sequence[Reading]) -> None:
        hs, good, since = self.hostile_sites, Quality.GOOD, self.since
        n = sum(1 for r in readings if r.quality is good and r.site in hs and r.ts >= since)
        if n:
            self.good_hostile[self.phase] = self.good_hostile.get(self.phase, 0) + n
        super().ingest(readings)


async def fault_soak(cfg: PlantConfig, store: SqliteHistorian, hostile: Sequence[str], emu: subprocess.Popen[str],
                     minutes: int, baseline: int, warmup_s: float, meter: LogMeter,
                     minute_s: float = 60.0) -> dict[str, object]:
    me = psutil.Process()
    sink = TimedSink(store)
    col = WatchingCollector(cfg.fleet, cfg.modbus, sink, flush_interval_s=0.5, checkpoint_interval_s=300.0, seed=1)
    col.flush_s = []
    col.good_hostile = {}
    col.hostile_sites = frozenset(d.site for d in cfg.modbus if d.id in hostile)
    stop = asyncio.Event()
    tune_gc()
    task = asyncio.create_task(col.run(stop))
    lag = LoopLag()
    lag_task = asyncio.create_task(lag.run())
    devices = col.poller.devices
    healthy = [k for k in devices if k not in hostile]
    nominal = {k: 1.0 / devices[k].device.poll_interval_s for k in devices}
    await asyncio.sleep(warmup_s)
    rows: list[dict[str, object]] = []
    modes: list[str] = []
    t_run0 = time.monotonic()
    reads0 = {k: dp.block_reads for k, dp in devices.items()}
    for minute in range(minutes):
        phase = 0 if minute < baseline else minute - baseline + 1
        assert emu.stdin is not None and emu.stdout is not None
        emu.stdin.write(f"phase {phase}\n")
        emu.stdin.flush()
        ack = await asyncio.get_running_loop().run_in_executor(None, emu.stdout.readline)  # "modes ..."
        modes.append(ack.removeprefix("modes ").strip())
        col.since, col.phase = datetime.now(UTC), phase
        t0 = time.monotonic()
        before = {k: dp.block_reads for k, dp in devices.items()}
        fails0 = sum(devices[k].failed_reads for k in healthy)
        log0, lines0, hb0, hl0 = meter.bytes, meter.lines, meter.hostile_bytes, meter.hostile_lines
        lag.take()
        await asyncio.sleep(minute_s)
        dt = time.monotonic() - t0
        emu.stdin.write("lag\n")
        emu.stdin.flush()
        emu_lag = float((await asyncio.get_running_loop().run_in_executor(None, emu.stdout.readline)).split()[1])
        share = [(devices[k].block_reads - before[k]) / len(devices[k].blocks) / dt / nominal[k] for k in healthy]
        rows.append({"minute": minute + 1, "phase": phase, "min": min(share), "mean": statistics.fmean(share),
                     "log_bytes": meter.bytes - log0, "log_lines": meter.lines - lines0,
                     "hostile_bytes": meter.hostile_bytes - hb0, "hostile_lines": meter.hostile_lines - hl0,
                     "rss": me.memory_info().rss,
                     "healthy_fails": sum(devices[k].failed_reads for k in healthy) - fails0,
                     "good_hostile": col.good_hostile.get(phase, 0) if phase else 0,
                     "lag": lag.take(), "emu_lag": emu_lag})
        print(f"  minute {minute + 1}: phase {phase}, healthy min {min(share):.1%} mean {statistics.fmean(share):.1%}, "
              f"log {meter.bytes - log0} B, RSS {me.memory_info().rss / 2**20:.1f} MiB", file=sys.stderr, flush=True)
    elapsed = time.monotonic() - t_run0
    run_share = [(devices[k].block_reads - reads0[k]) / len(devices[k].blocks) / elapsed / nominal[k] for k in healthy]
    stop.set()
    lag_task.cancel()
    await asyncio.wait_for(task, 30.0)
    return {"rows": rows, "elapsed": elapsed, "run_share": run_share, "backlog_end": col.produced - sink.written,
            "write_failures": col.write_failures, "dropped": col.readings_dropped, "produced": col.produced,
            "modes": modes}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=int, default=10, help="measured minutes, baseline included (default 10)")
    ap.add_argument("--devices", type=int, default=100, help="devices (sites), one PLC of 10 machines each")
    ap.add_argument("--hostile", type=int, default=5, help="misbehaving devices among them (default 5)")
    ap.add_argument("--baseline", type=int, default=1, help="first minutes with every device behaving (default 1)")
    ap.add_argument("--poll", type=float, default=1.0, help="poll interval, s (default 1)")
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--minute-s", type=float, default=60.0, help="length of a 'minute', s (shorter: a quick check)")
    ap.add_argument("--log", type=Path, help="also write the collector's WARNING log here")
    ap.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--serve-hostile", default="", help=argparse.SUPPRESS)
    ap.add_argument("--serve-duration", type=float, default=0.0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve is not None:
        return serve(args.serve, [h for h in args.serve_hostile.split(",") if h], args.serve_duration)

    step = max(1, args.devices // max(1, args.hostile))
    hostile = [f"plc-{i:03d}" for i in range(0, args.devices, step)][: args.hostile]
    meter = LogMeter(hostile)
    logging.basicConfig(level=logging.WARNING, format=FORMAT, handlers=[meter] + (
        [logging.FileHandler(args.log, mode="w")] if args.log else []))
    budget_s = args.minutes * args.minute_s + args.warmup + 90.0
    with tempfile.TemporaryDirectory(prefix="fault-soak-") as tmp:
        tmpdir = Path(tmp)
        ports = free_ports(args.devices)
        text = fleet_toml(args.devices, 10, args.poll, ports)
        cfg_path = tmpdir / "fleet.toml"
        cfg_path.write_text(text)
        cfg = load_text(text, source=cfg_path)
        emu = subprocess.Popen([sys.executable, __file__, "--serve", str(cfg_path), "--serve-hostile",
                                ",".join(hostile), "--serve-duration", str(budget_s)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            assert emu.stdout is not None and emu.stdin is not None
            line = emu.stdout.readline()
            if not line.startswith("serving"):
                print(f"emulator did not start: {line!r}", file=sys.stderr)
                return 1
            emu_ps = psutil.Process(emu.pid)
            ecpu0, te0 = emu_ps.cpu_times(), time.monotonic()
            store = SqliteHistorian(tmpdir / "soak.sqlite", cfg.fleet)
            try:
                res = asyncio.run(asyncio.wait_for(fault_soak(cfg, store, hostile, emu, args.minutes,
                                                              args.baseline, args.warmup, meter, args.minute_s),
                                                   budget_s))
            finally:
                store.close()
            ecpu1 = emu_ps.cpu_times()
            emu_cpu = (ecpu1.user + ecpu1.system - ecpu0.user - ecpu0.system) / (time.monotonic() - te0)
        finally:
            emu.send_signal(signal.SIGTERM)
            try:
                tail, _ = emu.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                emu.kill()
                tail, _ = emu.communicate(timeout=10)
        stopped = [ln for ln in tail.splitlines() if ln.startswith("stopped")]

    rows: list[dict[str, object]] = res["rows"]  # type: ignore[assignment]
    modes: list[str] = res["modes"]  # type: ignore[assignment]
    mib = 2**20
    base = [r for r in rows if r["phase"] == 0]
    fault = [r for r in rows if r["phase"] != 0]
    fault_periods = len(fault) * len(hostile)
    bound_lines = fault_periods * LOG_LINES_PER_MODE
    print(f"\nFault soak: {args.devices} devices x 10 machines polled every {args.poll:g} s, {len(hostile)} hostile "
          f"({', '.join(hostile)}); {len(base)} baseline min, then {len(fault)} min of faults rotating each minute; "
          f"measured {float(res['elapsed']) / 60:.1f} min after {args.warmup:g} s warm-up\n")  # type: ignore[arg-type]
    hdr = (f"{'min':>3}  {'hostile modes':<58}  {'healthy rate min / mean':>23}  {'healthy fails':>13}  "
           f"{'log B hostile / other':>21}  {'lines':>9}  {'RSS MiB':>7}  {'GOOD from hostile':>17}  "
           f"{'loop lag ms col / emu':>21}")
    print(hdr)
    print("-" * len(hdr))
    for i, r in enumerate(rows):
        k = int(r["phase"])  # type: ignore[call-overload]
        hb, lb, hl, ll = (int(r[f]) for f in ("hostile_bytes", "log_bytes", "hostile_lines", "log_lines"))  # type: ignore[call-overload]
        m = "all good (baseline)" if k == 0 else modes[i] if i < len(modes) else "?"
        print(f"{r['minute']:>3}  {m:<58}  {float(r['min']):>10.1%} / {float(r['mean']):>6.1%}  "  # type: ignore[arg-type]
              f"{r['healthy_fails']:>13}  {hb:>10} / {lb - hb:>8}  {hl:>4} / {ll - hl:>3}  "
              f"{int(r['rss']) / mib:>7.1f}  {r['good_hostile'] if k else '-':>17}  "  # type: ignore[call-overload]
              f"{float(r['lag']) * 1e3:>10.0f} / {float(r['emu_lag']) * 1e3:>8.0f}")  # type: ignore[arg-type]
    share: list[float] = res["run_share"]  # type: ignore[assignment]
    rss = [int(r["rss"]) for r in rows]  # type: ignore[call-overload]
    fault_log = sum(int(r["log_bytes"]) for r in fault)  # type: ignore[call-overload]
    fault_lines = sum(int(r["log_lines"]) for r in fault)  # type: ignore[call-overload]
    hostile_log = sum(int(r["hostile_bytes"]) for r in fault)  # type: ignore[call-overload]
    hostile_lines = sum(int(r["hostile_lines"]) for r in fault)  # type: ignore[call-overload]
    summary = [
        ("healthy devices' poll rate over the run, min / mean (target >= 95 %)",
         f"{min(share):.1%} / {statistics.fmean(share):.1%}"),
        ("  baseline minutes: min / mean",
         f"{min(float(r['min']) for r in base):.1%} / {statistics.fmean(float(r['mean']) for r in base):.1%}"  # type: ignore[arg-type]
         if base else "n/a"),
        ("  fault minutes: worst minute's min / mean of means",
         f"{min(float(r['min']) for r in fault):.1%} / {statistics.fmean(float(r['mean']) for r in fault):.1%}"  # type: ignore[arg-type]
         if fault else "n/a"),
        ("log over the fault minutes, bytes / lines: about the hostile devices",
         f"{hostile_log:,} / {hostile_lines}"),
        (f"  expected bound, lines: {fault_periods} hostile device-minutes x {LOG_LINES_PER_MODE}",
         f"{bound_lines} (met: {hostile_lines <= bound_lines})"),
        ("  about the other devices (healthy ones failing: should be 0)",
         f"{fault_log - hostile_log:,} / {fault_lines - hostile_lines}"),
        ("  log lines by logger", ", ".join(f"{k} {v}" for k, v in sorted(meter.by_logger.items())) or "none"),
        ("collector RSS per minute, MiB", " ".join(f"{r / mib:.0f}" for r in rss)),
        ("  last - first minute, MiB", f"{(rss[-1] - rss[0]) / mib:+.1f}"),
        ("readings of hostile devices stored GOOD while misbehaving",
         f"{sum(int(r['good_hostile']) for r in fault)}"),  # type: ignore[call-overload]
        ("backlog at the end / refused writes / readings dropped",
         f"{res['backlog_end']} / {res['write_failures']} / {res['dropped']}"),
        ("emulator process CPU (share of one core)", f"{emu_cpu:.0%}"),
        ("emulator", stopped[0] if stopped else "(no report)"),
        ("mode switches confirmed by the emulator", f"{sum(bool(m) for m in modes)} of {len(rows)}"),
    ]
    print()
    w = max(len(k) for k, _ in summary)
    for k, v in summary:
        print(f"{k:<{w}}  {v}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
