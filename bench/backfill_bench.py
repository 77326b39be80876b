"""Benchmark of ``twin backfill``: days of EMULATED history of the example fleet into a temp SQLite file.

Run: ``.venv/bin/python bench/backfill_bench.py [--days 14] [--step 60] [--older-step S]
[--older-orders-every S] [--demo]``.

Times the command itself (in-process, ``app.main``: readings, events, checkpoints, the
plant's order and shipment records through the intake and the feeds ledger) and, in the same run
for comparison on a noisy machine, its parts alone over the same sample times:

* ``plant.advance`` alone (the discrete-event plant, no readings built);
* ``plant.readings`` + ``twin.live.apply`` (the plant and the live reducer, nothing stored);
* ``store.write`` alone: the same readings written into a fresh file in the same batches (50,000),
  only the writes timed.

What the command spends beyond the sum of its parts goes to the order and shipment records:
folding them in, and one checkpoint (a whole site state, tens of kB) per change. ``--demo`` adds
a row for the demo's schedule (``twin demo``: 8 days, the last every 60 s, older every 300 s,
older order changes checkpointed hourly). Wall and CPU seconds (CPU of the whole process: the
backfill's writer thread included) are printed; readings/s is per wall second.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import tomli_w

from app import main as twin
from app.demo import BACKFILL_STEP_S, FINE_HOURS, OLDER_ORDERS_EVERY_S, OLDER_STEP_S
from connectors.config import load
from connectors.emulator.backfill import backfill, sample_times
from connectors.emulator.plant import Plant
from connectors.feeds.intake import Intake
from connectors.feeds.ledger import Ledger
from connectors.store import SqliteHistorian
from twin import live
from twin.readings import Reading

ROOT = Path(__file__).resolve().parents[1]
END = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # fixed: the same history on every run
SEED = 7
BATCH = 50_000


@dataclass(slots=True)
class Row:
    what: str
    samples: int
    readings: int
    wall_s: float
    cpu_s: float
    note: str = ""


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """Yields a list that holds [wall s, CPU s] of the block once it is done."""
    out: list[float] = []
    w0, c0 = time.perf_counter(), time.process_time()
    yield out
    out += [time.perf_counter() - w0, time.process_time() - c0]


def config_in(folder: Path) -> Path:
    raw = tomllib.loads((ROOT / "examples" / "fleet.toml").read_text(encoding="utf-8"))
    raw["historian"]["path"] = str(folder / "history.db")
    raw["feeds"] = {"drop_dir": str(folder / "feeds" / "in"), "ledger": str(folder / "feeds.db")}
    path = folder / "fleet.toml"
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")
    return path


def bench_command(folder: Path, days: float, step: float, older: float | None,
                  older_orders: float | None) -> tuple[Row, str]:
    config = config_in(folder)
    argv = ["backfill", str(config), "--days", f"{days:g}", "--seed", str(SEED), "--end", END.isoformat(),
            "--step", f"{step:g}"] + (["--older-step", f"{older:g}"] if older else []) \
        + (["--older-orders-every", f"{older_orders:g}"] if older_orders else [])
    out = io.StringIO()
    with timed() as t, contextlib.redirect_stdout(out):
        code = twin(argv)
    if code != 0:
        raise SystemExit(f"twin backfill failed ({code}): {out.getvalue()}")
    text = out.getvalue()
    readings = int(text.split("wrote ", 1)[1].split(" readings", 1)[0].replace(",", ""))
    samples = int(text.split("readings (", 1)[1].split(" samples", 1)[0].replace(",", ""))
    size_mb = sum(p.stat().st_size for p in folder.glob("history.db*")) / 1e6
    return Row(f"twin backfill --days {days:g}", samples, readings, t[0], t[1], f"{size_mb:,.0f} MB"), text


def bench_parts(folder: Path, times: list[datetime]) -> list[Row]:
    fleet = load(ROOT / "examples" / "fleet.toml").fleet
    start = times[0]
    rows: list[Row] = []
    plant = Plant(fleet, seed=SEED, start=start)
    with timed() as t:
        for at in times:
            plant.advance(at)
    rows.append(Row("  plant.advance alone", len(times), 0, t[0], t[1]))

    plant = Plant(fleet, seed=SEED, start=start)
    state = live.initial_state(fleet, start)
    store = SqliteHistorian(folder / "store-only.db", fleet)
    pending: list[Reading] = []
    reduce_wall = reduce_cpu = write_wall = write_cpu = 0.0
    n = 0

    def write() -> None:
        nonlocal write_wall, write_cpu, pending
        with timed() as w:
            store.write(pending)
        write_wall += w[0]
        write_cpu += w[1]
        pending = []

    try:
        for at in times:
            with timed() as r:
                batch = plant.readings(at)
                state, _ = live.apply(fleet, state, batch, at)
            reduce_wall += r[0]
            reduce_cpu += r[1]
            n += len(batch)
            pending.extend(batch)
            if len(pending) >= BATCH:
                write()
        write()
    finally:
        store.close()
    rows.append(Row("  plant.readings + live.apply", len(times), n, reduce_wall, reduce_cpu))
    rows.append(Row("  store.write alone", len(times), n, write_wall, write_cpu, "same readings, same batches"))
    return rows


def bench_demo(folder: Path) -> Row:
    fleet = load(ROOT / "examples" / "fleet.toml").fleet
    start = END - timedelta(days=8)
    store = SqliteHistorian(folder / "demo.db", fleet)
    ledger = Ledger(folder / "demo-feeds.db")
    try:
        with timed() as t:
            result = backfill(fleet, store, start=start, end=END, step_s=BACKFILL_STEP_S, seed=SEED,
                              intake=Intake(fleet, ledger), older_step_s=OLDER_STEP_S,
                              fine_from=END - timedelta(hours=FINE_HOURS),
                              older_orders_every_s=OLDER_ORDERS_EVERY_S)
    finally:
        ledger.close()
        store.close()
    size_mb = sum(p.stat().st_size for p in folder.glob("demo.db*")) / 1e6
    return Row("demo schedule (8 d: 1 d @60 s, 7 d @300 s)", result.samples, result.readings, t[0], t[1],
               f"{size_mb:,.0f} MB, {result.checkpoints:,} checkpoints")


def table(rows: list[Row]) -> str:
    head = f"{'what':<44} {'samples':>8} {'readings':>11} {'wall s':>8} {'CPU s':>7} {'readings/s':>11}  note"
    lines = [head, "-" * len(head)]
    for r in rows:
        rate = f"{r.readings / r.wall_s:,.0f}" if r.readings and r.wall_s > 0 else "-"
        readings = f"{r.readings:,}" if r.readings else "-"
        lines.append(f"{r.what:<44} {r.samples:>8,} {readings:>11} {r.wall_s:>8.1f} {r.cpu_s:>7.1f} {rate:>11}  "
                     f"{r.note}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--days", type=float, default=14.0)
    ap.add_argument("--step", type=float, default=60.0)
    ap.add_argument("--older-step", type=float, default=None)
    ap.add_argument("--older-orders-every", type=float, default=None)
    ap.add_argument("--demo", action="store_true", help="also time the demo's schedule (8 days)")
    args = ap.parse_args()
    step_s: float = args.step
    older: float | None = args.older_step
    start = END - timedelta(days=args.days)
    times = list(sample_times(start, END, step_s, older_step_s=older, fine_from=max(start, END - timedelta(days=1))))
    load_avg: Callable[[], tuple[float, float, float]] = os.getloadavg
    print(f"backfill bench: examples/fleet.toml (EMULATED), {args.days:g} days ending {END.isoformat()}, "
          f"step {step_s:g} s" + (f" ({older:g} s before the last day)" if older else "")
          + f", seed {SEED}; load average before: {load_avg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="backfill-bench-") as d:
        folder = Path(d)
        command, text = bench_command(folder, args.days, step_s, older, args.older_orders_every)
        rows = [command, *bench_parts(folder, times)]
        if args.demo:
            rows.append(bench_demo(folder))
    print(table(rows))
    parts = sum(r.cpu_s for r in rows[2:4])
    print(f"records and checkpoints (the command's CPU beyond its parts): {command.cpu_s - parts:.1f} s; "
          f"load average after: {load_avg()[0]:.2f}")
    print("the command printed:\n" + text.rstrip())


if __name__ == "__main__":
    main()
