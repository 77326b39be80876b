"""The scale-out path for real (issue 21): one collector per site writing one InfluxDB, readers asking only it.

A real InfluxDB 1.6 (``influxd``, free ports) is the central history. Half a day of the example
fleet is backfilled into it through each site's store-and-forward buffer; then three sites each get their own emulated
PLCs (``twin emulate``) and their own collector (``twin collect``), separate processes with their own
local buffers, all writing the same database (``/write``, read back through InfluxQL). Checked:
every site is live in the twin read from InfluxDB alone; a collector killed with SIGKILL and started
again loses nothing it acknowledged (every reading in its buffer reaches InfluxDB); a replay from the
central history prints what the collector's own buffer replays; a what-if calibrates from it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.historians import open_historian
from connectors.config import load
from dashboard.queries import QueryService
from tests.conftest import ROOT, free_port
from tests.connectors.influx_feed.conftest import Influxd, _influxd
from twin.clock import utc_now
from twin.readings import Quality
from twin.spec import MachineStatus

pytestmark = [pytest.mark.server, pytest.mark.slow]

SITES = ("pod-berlin", "pod-lyon", "lm-rotterdam")
DEVICES = {s: (f"{s}-cell", f"{s}-stores") for s in SITES}


def _historian(url: str, buffer: str) -> str:
    return (f'kind = "influxdb"\npath = "../var/{buffer}"\nurl = "{url}"\nquery = "influxql"\nwrite_api = "v1"\n'
            'database = "twin"')


def _influx_count(server: Influxd, site: str, since: datetime) -> int:
    q = (f'SELECT count("vtype") FROM "reading" WHERE "site" = \'{site}\' '
         f"AND time >= {int(since.timestamp() * 1e9)}")
    doc = json.loads(_get(server, q))
    series = doc["results"][0].get("series") or []
    return int(series[0]["values"][0][1]) if series else 0


def _get(server: Influxd, q: str) -> str:
    import urllib.parse
    import urllib.request

    url = f"{server.url}/query?" + urllib.parse.urlencode({"db": "twin", "q": q})
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())


def _buffer_count(path: Path, site: str, since: datetime) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (n,) = db.execute("SELECT count(*) FROM readings r JOIN series s ON s.id = r.series_id "
                          "WHERE s.site = ? AND r.ts >= ?", (site, int(since.timestamp() * 1e6))).fetchone()
        return int(n)
    finally:
        db.close()


def _wait(what: str, check, timeout_s: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "app", *args], stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd=str(log.parent))


@pytest.fixture
def influx(tmp_path: Path) -> Iterator[Influxd]:
    for server in _influxd(tmp_path / "influxd"):
        server.query('CREATE DATABASE "twin"')
        yield server


def test_three_collectors_one_influxdb(tmp_path: Path, influx: Influxd, capsys: pytest.CaptureFixture[str]) -> None:
    from app import main

    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    text = (tmp_path / "examples" / "fleet.toml").read_text(encoding="utf-8")
    text = re.sub(r"port = 150(\d\d)\b", lambda m: f"port = {free_port()}", text)  # free ports, every device
    sqlite = 'kind = "sqlite"\npath = "../var/northwind.db"'
    assert sqlite in text
    configs: dict[str, Path] = {}
    for name in ("central", *SITES):
        path = tmp_path / "examples" / f"{name}.toml"
        path.write_text(text.replace(sqlite, _historian(influx.url, f"{name}-buffer.db")), encoding="utf-8")
        configs[name] = path
    for site in SITES:  # a site's own buffer read as a store: the collector's local truth
        buffer = 'kind = "sqlite"\npath = "../var/' + site + '-buffer.db"'
        (tmp_path / "examples" / f"{site}-local.toml").write_text(text.replace(sqlite, buffer), encoding="utf-8")

    # history: half a day of the fleet backfilled through each site's store-and-forward buffer (the same
    # seed and end: the same points, which InfluxDB stores once), as if each collector had been running
    live_from = datetime.now(UTC).replace(microsecond=0)
    for site in SITES:
        assert main(["backfill", str(configs[site]), "--days", "0.5", "--step", "300", "--seed", "4",
                     "--end", live_from.isoformat()]) == 0
    capsys.readouterr()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for site in SITES:
            devices = [a for d in DEVICES[site] for a in ("--device", d)]
            procs[f"emulate-{site}"] = _start(["emulate", str(configs[site]), *devices, "--seed", "5"],
                                              tmp_path / f"emulate-{site}.log")
        time.sleep(1.5)  # the PLCs listen before their collectors connect
        for site in SITES:
            devices = [a for d in DEVICES[site] for a in ("--device", d)]
            procs[f"collect-{site}"] = _start(["collect", str(configs[site]), *devices, "--no-feeds"],
                                              tmp_path / f"collect-{site}.log")
        live = live_from + timedelta(seconds=1)  # after the backfill's last sample: the collectors' own readings
        for site in SITES:
            _wait(f"{site}'s live readings in InfluxDB", lambda s=site: _influx_count(influx, s, live) > 200)

        # every site live in the twin read from InfluxDB alone
        cfg = load(configs["central"])
        reader = open_historian(cfg.historian, cfg.fleet, "read")
        try:
            now = datetime.now(UTC)
            for site in SITES:
                state = reader.state_at(site, now)
                assert state is not None
                known = [m for m in state.machines.values()
                         if m.status is not MachineStatus.UNKNOWN and m.status_quality is Quality.GOOD]
                assert len(known) == len(state.machines), f"{site}: {len(known)} of {len(state.machines)} known"
                # live: every machine's status sampled in the last 30 s (polls every second or so)
                assert all(m.signals["status"].age_s(now) < 30 for m in state.machines.values())
            # the dashboard's own read side over that reader: the fleet tiles of the three sites, live
            tiles = {t.site: t for t in QueryService(fleet=cfg.fleet, historian=reader, clock=utc_now).fleet_tiles()}
            for site in SITES:
                assert not tiles[site].stale and tiles[site].machines_dark == 0
                assert tiles[site].age_s is not None and tiles[site].age_s < 30
        finally:
            reader.close()

        # SIGKILL one collector mid-stream; started again, its whole buffer reaches InfluxDB (nothing lost)
        victim = "pod-lyon"
        time.sleep(2.0)
        procs[f"collect-{victim}"].send_signal(signal.SIGKILL)
        procs[f"collect-{victim}"].wait(10)
        time.sleep(1.0)
        devices = [a for d in DEVICES[victim] for a in ("--device", d)]
        procs[f"collect-{victim}"] = _start(["collect", str(configs[victim]), *devices, "--no-feeds"],
                                            tmp_path / f"collect-{victim}-again.log")  # resumes from its buffer
        restarted = datetime.now(UTC) + timedelta(seconds=1)
        buffer = tmp_path / "var" / f"{victim}-buffer.db"
        _wait("the restarted collector's new readings", lambda: _buffer_count(buffer, victim, restarted) > 10)
        procs[f"collect-{victim}"].send_signal(signal.SIGINT)  # a clean stop forwards what is left
        assert procs[f"collect-{victim}"].wait(30) == 0
        in_buffer = _buffer_count(buffer, victim, live)
        assert in_buffer > 100 and _influx_count(influx, victim, live) == in_buffer

        # a replay from the central history prints what the collector's own buffer replays
        at = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
        site = "lm-rotterdam"
        procs[f"collect-{site}"].send_signal(signal.SIGINT)
        assert procs[f"collect-{site}"].wait(30) == 0
        capsys.readouterr()
        assert main(["replay", str(configs["central"]), "--site", site, "--at", at, "--json"]) == 0
        central = capsys.readouterr().out
        assert main(["replay", str(tmp_path / "examples" / f"{site}-local.toml"), "--site", site, "--at", at,
                     "--json"]) == 0
        assert '"machines"' in central and central == capsys.readouterr().out

        # a what-if calibrated from the central history (the backfilled half day and the live minutes)
        assert main(["whatif", str(configs["central"]), "--scenario",
                     str(tmp_path / "examples" / "scenarios" / "printer_maintenance.toml"), "--site", "pod-berlin",
                     "--horizon", "2h", "--replications", "4", "--workers", "0", "--no-progress", "--json",
                     "--calibrate-days", "0.5"]) == 0
        result = json.loads(capsys.readouterr().out)
        sources = {e["source"] for e in result["calibration"]["estimates"]}
        assert "history" in sources
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
