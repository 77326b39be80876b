"""Nothing lost: a writer killed with SIGKILL again and again on one file, while InfluxDB is down.

``tests/connectors/store/test_crash.py`` kills a plain SQLite writer once per file and
``tests/connectors/influx/test_influx_server.py`` covers an outage with a clean restart. Here both
happen together, five times on the same file: every round the writer (``kill_writer.py``: store and
forward, with InfluxDB unreachable) is killed at a random moment of heavy writing, the file is reopened,
checked by SQLite, and must hold every acknowledged reading and event of every round, each batch whole
or not at all. Then InfluxDB comes up and the whole backlog, across all crashes, arrives in order, once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.forward import StoreAndForward
from connectors.influx.historian import InfluxHistorian
from connectors.influx.lineproto import batch_lines
from connectors.store import SqliteHistorian
from tests.conftest import free_port
from tests.connectors.influx.conftest import VM, VictoriaMetrics
from twin.spec import FleetSpec

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("kill_writer.py")
FLEET = FleetSpec(id="f", name="F", sites=(), templates=())
T0 = datetime(2026, 1, 5, tzinfo=UTC)
END = datetime(2100, 1, 1, tzinfo=UTC)
BATCH = 400
ROUNDS = 5

pytestmark = [pytest.mark.slow, pytest.mark.server]


def _one_round(path: Path, first: int, dead_url: str, rng: random.Random) -> list[int]:
    """Start the writer at ``first``, kill it with SIGKILL mid-stream; returns the ids it acknowledged."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen([sys.executable, str(SCRIPT), str(path), str(first), str(BATCH), dead_url], cwd=ROOT,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # up and writing (bounded: the test's timeout)
            assert line.strip() == str(first + BATCH - 1), line
            time.sleep(rng.uniform(0.05, 0.5))
            proc.send_signal(signal.SIGKILL)
            rest = proc.stdout.read()
        finally:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    return [int(x) for x in [line, *rest.split()] if x.strip()]


def test_repeated_sigkill_during_an_outage_loses_nothing(tmp_path: Path) -> None:
    if not Path(VM).exists():
        pytest.fail(f"victoria-metrics is not installed at {VM} (.ci/run installs it)")
    path = tmp_path / "edge.sqlite"
    dead_url = f"http://127.0.0.1:{free_port()}"  # InfluxDB is down for every round
    rng = random.Random(8)
    acked: list[int] = []
    first = 0
    t_start = time.monotonic()
    for _ in range(ROUNDS):
        got = _one_round(path, first, dead_url, rng)
        assert got and got[0] == first + BATCH - 1
        acked.extend(got)
        h = SqliteHistorian(path, FLEET, outbox=batch_lines)  # reopened as the next writer would
        try:
            assert h.integrity_check() == "ok"
            rows = h.readings("s1", None, END)
            values = sorted(r.value for r in rows if r.signal != "bad")
            # every batch is whole or absent, batches are consecutive: exactly 0..n-1 with n a multiple of BATCH
            n = len(values)
            assert values == list(range(n)) and n % BATCH == 0
            # every acknowledged reading of every round is there (one batch past the last ack may be too)
            assert acked[-1] < n <= acked[-1] + 1 + BATCH
            assert sum(1 for r in rows if r.signal == "bad" and r.reason) == n // BATCH  # the reasons too
            events = h.events("s1", T0, END)
            assert [e.data["last"] for e in events] == list(range(BATCH - 1, n, BATCH))
            assert h.outbox_backlog() == n // BATCH  # every batch waits for InfluxDB, none lost or doubled
        finally:
            h.close()
        first = n
    assert time.monotonic() - t_start < 60

    # InfluxDB comes back: the backlog of all rounds goes out in order, once
    vm = VictoriaMetrics(port=free_port(), data=tmp_path / "vm")
    vm.start()
    try:
        store = SqliteHistorian(path, FLEET, outbox=batch_lines)
        saf = StoreAndForward(store, InfluxHistorian(vm.url, "org", "plant", "t", FLEET, timeout_s=5))
        for _ in range(100):  # bounded: at most 50 batches per pump
            if saf.backlog() == 0:
                break
            saf.pump()
        assert saf.backlog() == 0
        saf.close()
        series = vm.export('{__name__="reading_value",site="s1",asset="A",signal=~"x[0-9]"}')
        samples = sorted((ts, v) for s in series for ts, v in zip(s["timestamps"], s["values"], strict=True))
    finally:
        vm.stop()
    # reading i was sampled at T0 + i ms with value i: 1,767,571,200,000 + i ms; no gaps, no duplicates
    base_ms = int(T0.timestamp() * 1000)
    assert samples == [(base_ms + i, float(i)) for i in range(first)]
    assert first >= ROUNDS * BATCH
    assert timedelta(milliseconds=first) < timedelta(hours=1)  # sanity: all inside one hour of T0
