"""``twin dashboard`` serves through waitress (not Flask's development server) and stops cleanly on SIGTERM."""

from __future__ import annotations

import logging
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
from connectors.feeds.recorder import CollectorRecorder
from connectors.store import SqliteHistorian
from dashboard.queries import QueryService
from tests.conftest import free_port
from twin.errors import ConfigError, HistorianError
from twin.spec import SiteId
from twin.state import Event, EventKind

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


def _run_dashboard(tmp_path: Path, store_path: Path, monkeypatch: pytest.MonkeyPatch, extra_toml: str = "",
                   extra_args: tuple[str, ...] = ()) -> QueryService:
    """``twin dashboard`` in this process up to serving (not served): the query service it built."""
    import signal as signals

    import dashboard.queries
    from app import build_parser
    from app import dashboard as command

    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    plant = tmp_path / "examples" / "fleet.toml"
    plant.write_text(plant.read_text(encoding="utf-8") + extra_toml, encoding="utf-8")
    config = load(plant)
    config.historian.path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(store_path, config.historian.path)
    built: list[QueryService] = []

    class Spy(QueryService):
        def __post_init__(self) -> None:
            built.append(self)
            super().__post_init__()

    def serve(app: object, **kw: object) -> None:
        (queries,) = built
        assert isinstance(queries.historian, SqliteHistorian) and queries.historian.readonly
        ack = Event(ts=datetime(2026, 1, 7, tzinfo=UTC), site=SiteId("pod-lyon"), asset="CNC1",
                    kind=EventKind.ALARM_ACKNOWLEDGED, message="acknowledged by erin")
        with pytest.raises(HistorianError, match="read-only"):  # nothing the dashboard holds can write
            queries.historian.write((), (), (ack,))

    monkeypatch.setattr(dashboard.queries, "QueryService", Spy)
    monkeypatch.setattr(command, "serve", serve)
    previous = signals.getsignal(signals.SIGTERM)
    try:
        args = build_parser().parse_args(["dashboard", str(plant), "--trust", "off", "--workers", "0", *extra_args])
        assert args.func(args) == 0
    finally:
        signals.signal(signals.SIGTERM, previous)
    return built[0]


def test_the_dashboard_reads_history_read_only_and_acknowledges_through_the_collector(
        tmp_path: Path, store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "feeds.token").write_text("t0ken\n", encoding="utf-8")
    port = free_port()
    queries = _run_dashboard(tmp_path, store_path, monkeypatch, extra_toml=(
        f'\n[feeds.http]\nlisten = "0.0.0.0:{port}"\ntoken_file = "../feeds.token"\n'))
    assert isinstance(queries.recorder, CollectorRecorder)
    assert queries.recorder.url == f"http://127.0.0.1:{port}/api/v1/events"  # listening everywhere: asked locally


def test_collector_on_another_host(tmp_path: Path, store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the docker deployment: the dashboard's container asks the collector's (http://collector:8081)
    (tmp_path / "feeds.token").write_text("t0ken\n", encoding="utf-8")
    toml = '\n[feeds.http]\nlisten = "0.0.0.0:8081"\ntoken_file = "../feeds.token"\n'
    queries = _run_dashboard(tmp_path, store_path, monkeypatch, extra_toml=toml,
                             extra_args=("--collector", "http://collector:8081/"))
    assert isinstance(queries.recorder, CollectorRecorder)
    assert queries.recorder.url == "http://collector:8081/api/v1/events"
    with pytest.raises(ConfigError, match=r"--collector: must be an http:// or https:// URL \(got 'collector:8081'\)"):
        _run_dashboard(tmp_path / "again", store_path, monkeypatch, extra_toml=toml,
                       extra_args=("--collector", "collector:8081"))


@pytest.mark.parametrize("http", ["", '\n[feeds.http]\ntoken_env = "TWIN_TEST_UNSET_TOKEN"\n'])
def test_without_the_collectors_endpoint_acknowledgements_are_off(
        tmp_path: Path, store_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        http: str) -> None:
    monkeypatch.delenv("TWIN_TEST_UNSET_TOKEN", raising=False)
    with caplog.at_level(logging.WARNING, logger="app.dashboard"):
        queries = _run_dashboard(tmp_path, store_path, monkeypatch, extra_toml=http)
    assert queries.recorder is None
    plant = tmp_path / "examples" / "fleet.toml"
    why = (f"the collector's token cannot be read: {plant}: feeds.http.token_env: environment variable is not "
           "set or empty (got 'TWIN_TEST_UNSET_TOKEN')" if http
           else f"they go to the collector's endpoint, and {plant} has no [feeds.http]")
    assert [r.getMessage() for r in caplog.records if "acknowledgements" in r.getMessage()] == [
        f"acknowledgements are off: {why}"]
