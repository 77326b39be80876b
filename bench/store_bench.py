"""Benchmark of the embedded historian: ingest rate, downsampling a 7-day series, state_at.

Run: ``.venv/bin/python bench/store_bench.py [--days 7] [--poll-s 1] [--checkpoint-s 60]``.
Prints one table with the targets of issue 4 and a baseline measured in the same run (plain
SQLite executemany into a table without index, alternated with the store's ingest over
``--rounds`` rounds; medians reported) so figures from noisy machines can be compared.

The state_at history is 50 signals (10 machines × 5) polled every ``--poll-s`` for ``--days`` with
a checkpoint every ``--checkpoint-s``; checkpoints are full-size states built by the live reducer
from one poll (running the reducer over a week of polls would take the bench minutes); the cost of
``state_at`` depends on the checkpoint size and the readings since the checkpoint, both real here.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.store import SqliteHistorian
from twin import live
from twin.frozen import FrozenDict
from twin.historian import SeriesKey
from twin.readings import Reading
from twin.spec import (
    FleetSpec,
    MachineId,
    MachineSpec,
    MachineStatus,
    MachineTemplate,
    Role,
    ShiftCalendar,
    SignalKind,
    SignalName,
    SignalSpec,
    SiteId,
    SiteKind,
    SiteSpec,
    TemplateId,
)

T0 = datetime(2026, 1, 5, tzinfo=UTC)
SIGNALS = (("status", SignalKind.STATUS), ("good", SignalKind.GOOD_COUNT), ("scrap", SignalKind.SCRAP_COUNT),
           ("temp_c", SignalKind.TEMPERATURE), ("power_kw", SignalKind.POWER))


def bench_fleet(machines: int = 10) -> FleetSpec:
    tpl = MachineTemplate(
        id=TemplateId("cnc"), role=Role.MACHINE, ideal_cycle_time_s=60.0,
        status_codes=FrozenDict({1: MachineStatus.IDLE, 2: MachineStatus.RUNNING, 3: MachineStatus.FAULT}),
        signals=tuple(SignalSpec(name=SignalName(n), kind=k) for n, k in SIGNALS),
    )
    site = SiteSpec(id=SiteId("s1"), name="S1", kind=SiteKind.POINT_OF_DEMAND, timezone="UTC",
                    calendar=ShiftCalendar(shifts=()),
                    machines=tuple(MachineSpec(id=MachineId(f"M{i:02d}"), site=SiteId("s1"), template=tpl)
                                   for i in range(machines)))
    return FleetSpec(id="bench", name="bench", sites=(site,), templates=(tpl,))


def poll(t: datetime, k: int, machines: int = 10) -> list[Reading]:
    out = []
    for i in range(machines):
        m = f"M{i:02d}"
        out += [
            Reading(ts=t, site="s1", asset=m, signal="status", value=2 if (k // 600 + i) % 5 else 1),
            Reading(ts=t, site="s1", asset=m, signal="good", value=k // 30),
            Reading(ts=t, site="s1", asset=m, signal="scrap", value=k // 3000),
            Reading(ts=t, site="s1", asset=m, signal="temp_c", value=200.0 + (k * 7 + i) % 13),
            Reading(ts=t, site="s1", asset=m, signal="power_kw", value=3.0 + (k % 5) * 0.1),
        ]
    return out


def baseline_rate(path: Path, rows: list[tuple[int, int, float]]) -> float:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE t(a INTEGER, b INTEGER, c REAL)")
    start = time.perf_counter()
    for i in range(0, len(rows), 10_000):
        con.execute("BEGIN")
        con.executemany("INSERT INTO t VALUES (?, ?, ?)", rows[i:i + 10_000])
        con.execute("COMMIT")
    elapsed = time.perf_counter() - start
    con.close()
    return len(rows) / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--days", type=float, default=7.0, help="history of the state_at site (days)")
    ap.add_argument("--poll-s", type=float, default=10.0, help="poll interval of the state_at site")
    ap.add_argument("--checkpoint-s", type=float, default=60.0)
    ap.add_argument("--ingest", type=int, default=500_000, help="readings in the ingest test")
    ap.add_argument("--batch", type=int, default=10_000, help="readings per write() in the ingest test")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the ingest test (baseline, then store)")
    args = ap.parse_args()
    fleet = bench_fleet()
    rows_out: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        # 1. ingest: 50 signals, batches of --batch readings, each write one committed transaction;
        #    --rounds rounds, each the baseline then the store on fresh files, medians reported
        readings = [r for k in range(args.ingest // 50) for r in poll(T0 + timedelta(seconds=k), k)]
        base_rows = [(i % 50, i, float(i)) for i in range(len(readings))]
        bases, rates = [], []
        for n in range(args.rounds):
            bases.append(baseline_rate(d / f"base{n}.sqlite", base_rows))
            h = SqliteHistorian(d / f"ingest{n}.sqlite", fleet)
            start = time.perf_counter()
            for i in range(0, len(readings), args.batch):
                h.write(readings[i:i + args.batch])
            rates.append(len(readings) / (time.perf_counter() - start))
            h.close()
        rate, base = statistics.median(rates), statistics.median(bases)
        rows_out.append(("ingest (readings/s)", f"{rate:,.0f}", "≥ 300,000",
                         f"baseline no-index insert {base:,.0f}/s (ratio {rate / base:.2f}); median of "
                         f"{args.rounds} rounds, store {min(rates):,.0f}..{max(rates):,.0f}"))
        del readings

        # 2. a 7-day 1 Hz series downsampled to 1,000 points
        h = SqliteHistorian(d / "series.sqlite", fleet)
        week = 7 * 86400
        for k0 in range(0, week, 50_000):
            h.write([Reading(ts=T0 + timedelta(seconds=k), site="s1", asset="M00", signal="temp_c",
                             value=200.0 + (k % 600) / 10 + (50.0 if k % 86400 == 43200 else 0.0))
                     for k in range(k0, min(week, k0 + 50_000))])
        key = SeriesKey(site="s1", asset="M00", signal="temp_c")
        times = []
        for _ in range(7):
            start = time.perf_counter()
            (res,) = h.series([key], T0, T0 + timedelta(seconds=week - 1), 1000)
            times.append(time.perf_counter() - start)
        assert len(res.points) <= 1000 and res.downsampled
        one_day = []
        for _ in range(3):
            start = time.perf_counter()
            h.series([key], T0, T0 + timedelta(hours=16), 1000)  # 57,600 raw rows, GROUP BY path
            one_day.append(time.perf_counter() - start)
        h.close()
        rows_out.append(("7-day 1 Hz series → 1,000 points (ms)", f"{statistics.median(times) * 1e3:.1f}",
                         "≤ 100", f"605k readings, from rollups; 16 h raw GROUP BY: "
                         f"{statistics.median(one_day) * 1e3:.1f} ms"))

        # 3. state_at for a site with 50 signals over --days of history
        h = SqliteHistorian(d / "state.sqlite", fleet)
        polls = int(args.days * 86400 / args.poll_s)
        every = max(1, round(args.checkpoint_s / args.poll_s))
        state = live.initial_state(fleet, T0).sites[SiteId("s1")]
        site_spec = fleet.site("s1")
        batch: list[Reading] = []
        cps = []
        start = time.perf_counter()
        for k in range(polls):
            t = T0 + timedelta(seconds=k * args.poll_s)
            p = poll(t, k)
            batch += p
            if k % every == 0:
                cp, _ = live.apply_site(fleet, site_spec, state, p, t)
                cps.append(cp)
            if len(batch) >= 50_000:
                h.write(batch, states=cps)
                batch, cps = [], []
        h.write(batch, states=cps)
        build_s = time.perf_counter() - start
        h.close()
        h = SqliteHistorian(d / "state.sqlite", fleet, readonly=True, replay_margin_s=1e9)  # never continues
        rng = random.Random(1)
        times = []
        for _ in range(30):
            t = T0 + timedelta(seconds=rng.uniform(args.days * 86400 / 2, args.days * 86400 - args.poll_s))
            start = time.perf_counter()
            s = h.state_at("s1", t)  # a cold replay from the checkpoint each time
            times.append(time.perf_counter() - start)
            assert s is not None and s.as_of == t
        worst_t = T0 + timedelta(seconds=(polls // every - 1) * every * args.poll_s + (every - 1) * args.poll_s)
        worst = []
        for _ in range(5):
            start = time.perf_counter()
            h.state_at("s1", worst_t)
            worst.append(time.perf_counter() - start)
        h.close()
        h = SqliteHistorian(d / "state.sqlite", fleet, readonly=True)  # continues its replays (10 s margin)
        live_times = []
        t_live = worst_t - timedelta(seconds=args.checkpoint_s - args.poll_s)
        for _ in range(int(args.checkpoint_s / args.poll_s)):
            start = time.perf_counter()
            h.state_at("s1", t_live)
            live_times.append(time.perf_counter() - start)
            t_live += timedelta(seconds=args.poll_s)
        h.close()
        rows_out.append(("state_at(now), live view (ms)", f"{statistics.median(live_times) * 1e3:.1f}", "",
                         "the same store asked once per poll for the newest moment"))
        rows_out.append(("state_at, 50 signals (ms)", f"{statistics.median(times) * 1e3:.1f}", "≤ 20",
                         f"{polls * 50:,} readings over {args.days:g} d, poll {args.poll_s:g} s, checkpoint "
                         f"{args.checkpoint_s:g} s; worst case (just before a checkpoint) "
                         f"{statistics.median(worst) * 1e3:.1f} ms; history built in {build_s:.0f} s"))

    w = max(len(r[0]) for r in rows_out)
    print(f"{'measure':<{w}}  {'median':>12}  {'target':>10}  notes")
    for name, value, target, note in rows_out:
        print(f"{name:<{w}}  {value:>12}  {target:>10}  {note}")


if __name__ == "__main__":
    main()
