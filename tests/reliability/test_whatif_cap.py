"""What-if runs are capped per user and in total (issue 18: 8 concurrent runs made 18 processes and 3.4 GB).

The real engine (``EngineRunner``, the replications in its own process: ``workers=0``) runs over a
SQLite history. A first run is held in the middle of its replications (its progress callback waits);
meanwhile further runs are refused at once with a message saying why. A slot held by another
process (as the dashboard's background-callback worker processes hold them) counts the same.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.config import load
from connectors.store import SqliteHistorian
from dashboard.whatif_engine import EngineRunner
from dashboard.whatif_view import WhatIfRequest, WhatIfResult
from tests.dashboard import history
from twin.errors import SimulationError
from twin.spec import FleetSpec

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 7, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def fleet() -> FleetSpec:
    return load(ROOT / "examples" / "fleet.toml").fleet


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, fleet: FleetSpec) -> Path:
    path = tmp_path_factory.mktemp("whatif") / "twin.sqlite"
    h = SqliteHistorian(path, fleet)
    try:
        history.fill(h, fleet, NOW, hours=4.0, step_s=300.0)
    finally:
        h.close()
    return path


def _runner(fleet: FleetSpec, store: Path, tmp_path: Path, **caps: int) -> EngineRunner:
    return EngineRunner(fleet=fleet, open_historian=lambda: SqliteHistorian(store, fleet, readonly=True),
                        clock=lambda: NOW, workers=0, calibrate_days=0, slots_dir=tmp_path, **caps)


def _request(user: str) -> WhatIfRequest:
    return WhatIfRequest(site="pod-berlin", scenario={"name": f"run of {user}", "interventions": []}, horizon_h=8.0,
                         replications=4, requested_by=user)


def test_a_second_run_of_a_user_and_one_over_the_total_are_refused_while_one_runs(
        fleet: FleetSpec, store: Path, tmp_path: Path) -> None:
    runner = _runner(fleet, store, tmp_path, max_runs=1, max_runs_per_user=1)
    started, release = threading.Event(), threading.Event()
    results: list[WhatIfResult | BaseException] = []

    def hold(done: int, total: int) -> None:
        started.set()
        assert release.wait(60), "the test never released the first run"

    def first() -> None:
        try:
            results.append(runner.run(_request("erin"), hold))
        except BaseException as exc:  # reported by the main thread
            results.append(exc)

    t = threading.Thread(target=first)
    t.start()
    try:
        assert started.wait(120), "the first run did not reach its replications"
        with pytest.raises(SimulationError) as mine:
            runner.run(_request("erin"), lambda d, n: None)
        assert str(mine.value) == ("erin already has 1 what-if run(s) going (at most 1 per user): "
                                   "wait for it to finish or cancel it")
        with pytest.raises(SimulationError) as busy:
            runner.run(_request("vera"), lambda d, n: None)
        assert str(busy.value) == ("the what-if engine is busy: 1 run(s) going (at most 1 at a time); "
                                   "try again when one has finished")
    finally:
        release.set()
        t.join(120)
    assert len(results) == 1 and isinstance(results[0], WhatIfResult), results
    assert results[0].replications == 4
    # the slots are free again: vera's run goes through now
    assert runner.run(_request("vera"), lambda d, n: None).replications == 4


def test_a_slot_held_by_another_process_counts(fleet: FleetSpec, store: Path, tmp_path: Path) -> None:
    runner = _runner(fleet, store, tmp_path, max_runs=2, max_runs_per_user=1)
    code = ("import sys; from pathlib import Path; from dashboard.whatif_engine import run_slot\n"
            "with run_slot(Path(sys.argv[1]), 'erin', max_runs=2, max_runs_per_user=1):\n"
            "    print('held', flush=True); sys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(SimulationError, match="erin already has 1 what-if run"):
            runner.run(_request("erin"), lambda d, n: None)
        # one of the 2 slots in total is taken by the other process: vera still gets the second
        assert runner.run(_request("vera"), lambda d, n: None).replications == 4
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()
    # the other process ended: its slot went with it
    assert runner.run(_request("erin"), lambda d, n: None).replications == 4
