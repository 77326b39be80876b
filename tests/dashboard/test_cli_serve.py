"""``twin dashboard`` serves through waitress (not Flask's development server) and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import ROOT

from connectors.config import load
from connectors.emulator.backfill import backfill
from connectors.store import SqliteHistorian
from tests.conftest import free_port

pytestmark = [pytest.mark.server]


def test_dashboard_command_serves_with_waitress_and_stops_on_sigterm(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    config = load(tmp_path / "examples" / "fleet.toml")
    store = SqliteHistorian(tmp_path / config.historian.path, config.fleet)
    try:
        backfill(config.fleet, store, start=datetime(2026, 11, 17, 8, 0, tzinfo=UTC),
                 end=datetime(2026, 11, 17, 8, 5, tzinfo=UTC), step_s=60, seed=7)
    finally:
        store.close()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "app", "dashboard", "examples/fleet.toml", "--port",
                             str(port), "--threads", "4"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_dash-layout", timeout=5) as r:
                    assert r.status == 200
                    assert r.headers["Server"] == "twin-dashboard"  # waitress with our ident, not Werkzeug
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "the dashboard did not answer within 30 s"
                time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, out
    assert f"dashboard on http://127.0.0.1:{port}/ (waitress, 4 threads)" in out
