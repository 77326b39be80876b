"""`twin demo` end to end: the README's first command brings the whole product up on emulated data,
and Ctrl-C stops every process it started."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from app import build_parser
from app.demo import OLDER_STEP_S, STALE_AFTER_S
from connectors.config import load
from connectors.feeds.ledger import Ledger
from connectors.feeds.recorder import CollectorRecorder
from connectors.store import SqliteHistorian
from twin.frozen import FrozenDict
from twin.historian import SeriesKey
from twin.readings import Quality
from twin.spec import SiteId
from twin.state import Event, EventKind

from ..conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.server]


def _free_port_block(n: int) -> int:
    """A base port such that base..base+n-1 are all free on 127.0.0.1 right now."""
    for _ in range(50):
        base = free_port()
        if base + n < 65000 and all(_is_free(base + i) for i in range(n)):
            return base
    raise RuntimeError("no block of free ports")


def _is_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class _Output:
    """Collects a process's output lines on a thread, so the test can wait for one without blocking."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._proc = proc
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, needle: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if needle in line:
                    return line
            if self._proc.poll() is not None and not self._thread.is_alive():
                break
            time.sleep(0.1)
        raise AssertionError(f"{needle!r} not printed within {timeout_s} s; output: {self.lines}")

    def text(self) -> str:
        self._thread.join(timeout=5)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        return "\n".join(self.lines)


def test_the_demo_backfills_a_week_and_a_day_by_default_so_the_what_ifs_can_calibrate() -> None:
    # the what-ifs calibrate from the last 7 days (dashboard.whatif_engine: calibrate_days = 7)
    assert build_parser().parse_args(["demo"]).days >= 8
    # replaying (or forking from) the coarser older history never shows the gap between two samples as stale
    assert STALE_AFTER_S >= OLDER_STEP_S


def test_demo_comes_up_collects_live_data_and_stops_everything(tmp_path: Path) -> None:
    web_port, feeds_port = free_port(), free_port()
    modbus_base = _free_port_block(8)
    data_dir = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "demo", "--data-dir", str(data_dir), "--port", str(web_port),
         "--modbus-port-base", str(modbus_base), "--feeds-port", str(feeds_port), "--days", "1.5",
         "--opcua-port", str(free_port())],  # the mixed site's OPC UA server: parallel runs never collide
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
    )
    output = _Output(proc)
    children: list[psutil.Process] = []
    try:
        output.wait_for("ready in", 120)
        out = "\n".join(output.lines)
        assert "EMULATED" in out  # the demo's data is labelled as emulated, never passed off as real
        assert f"dashboard: http://127.0.0.1:{web_port}/" in out
        assert f"config: {data_dir / 'fleet.toml'}" in out  # the path to use with the other commands
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 3  # emulator, collector, dashboard

        # the dashboard answers: its page and its layout endpoint
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/", timeout=10) as resp:
            assert resp.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/_dash-layout", timeout=30) as resp:
            assert resp.status == 200

        cfg = load(data_dir / "fleet.toml")
        store = SqliteHistorian(cfg.historian.path, cfg.fleet, readonly=True)
        try:
            now = datetime.now(UTC)
            # history exists: a day and a half of emulated power readings of a printer, the last day
            # sampled every 60 s, the half day before it every OLDER_STEP_S (300 s)
            key = SeriesKey(site="pod-berlin", asset="P1", signal="power_kw")
            (hist,) = store.series([key], now - timedelta(hours=30), now - timedelta(hours=2), 5000)
            assert hist.points and hist.points[0].ts < now - timedelta(hours=29)
            gaps = {(b.ts - a.ts).total_seconds() for a, b in zip(hist.points, hist.points[1:], strict=False)}
            assert {60.0, OLDER_STEP_S} <= gaps
            # and with it the plant's orders and shipments: a past moment between two older samples
            # holds open orders, and its machines are not stale (the threshold covers the spacing)
            past = now - timedelta(hours=30) + timedelta(seconds=OLDER_STEP_S / 2)
            states = [store.state_at(site.id, past) for site in cfg.fleet.sites]
            assert sum(len(st.orders) for st in states if st is not None) > 0
            assert all(m.status_quality is Quality.GOOD for st in states if st is not None
                       for m in st.machines.values())
            assert cfg.feeds is not None
            ledger = Ledger(cfg.feeds.ledger_path(cfg.historian.path))
            try:
                assert ledger.latest()  # the backfill committed the records it applied
            finally:
                ledger.close()
            # live values change: new readings keep arriving from the collector (it polls every 5 s),
            # and noisy signals (temperatures carry sensor noise even when a machine is off outside
            # its shift) take different values from poll to poll
            ready_at = datetime.now(UTC)
            deadline = time.monotonic() + 60
            changed: list[tuple[str, str, str]] = []
            while time.monotonic() < deadline and not changed:
                seen: dict[tuple[str, str, str], set[float]] = {}
                for site in ("pod-berlin", "pod-austin"):
                    for r in store.readings(site, ready_at, datetime.now(UTC)):
                        if r.quality.value == "good" and isinstance(r.value, float):
                            seen.setdefault((site, r.asset, r.signal), set()).add(r.value)
                changed = [k for k, values in seen.items() if len(values) >= 2]
                time.sleep(1.0)
            assert changed, "no live value changed within 60 s"
            # the ERP endpoint takes an order with the token the demo made, and the twin holds it
            token = (data_dir / "feeds.token").read_text().strip()
            order = {"id": "DEMO-ERP-1", "version": 1, "site": "pod-lyon", "product": "machined-housing",
                     "qty": 3, "created": now.isoformat(), "due": (now + timedelta(hours=30)).isoformat()}
            req = urllib.request.Request(f"http://127.0.0.1:{feeds_port}/api/v1/orders", method="POST",
                                         data=json.dumps(order).encode(),
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert json.load(resp)["accepted"] == 1
            deadline = time.monotonic() + 30
            held = False
            while time.monotonic() < deadline and not held:
                st = store.state_at("pod-lyon", datetime.now(UTC))
                held = st is not None and any(o.id == "DEMO-ERP-1" and o.qty == 3 for o in st.orders)
                time.sleep(0.5)
            assert held, "the order posted to the endpoint did not reach the twin within 30 s"
            # the dashboard's acknowledgements go to that endpoint too (its log would say they are off),
            # and are in the history once it answered
            ack = Event(ts=datetime.now(UTC), site=SiteId("pod-lyon"), asset="CNC1",
                        kind=EventKind.ALARM_ACKNOWLEDGED, message="acknowledged by demo",
                        data=FrozenDict({"rule": "machine-down", "key": "machine-down:CNC1", "user": "demo",
                                         "comment": "", "priority": 3}))
            CollectorRecorder(f"http://127.0.0.1:{feeds_port}", token).record((ack,))
            assert ack in store.events("pod-lyon", ack.ts, ack.ts)
            assert "acknowledgements are off" not in (data_dir / "dashboard.log").read_text()
        finally:
            store.close()
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C does
        try:
            code = proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            for c in children:
                c.kill()
            raise
    rest = output.text()
    assert code == 0, rest
    assert "twin demo: stopped" in rest
    time.sleep(0.5)
    left = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"processes left behind: {left}"
    # read-only field access: the emulated PLCs never received a write request
    assert "write requests received: 0" in (data_dir / "emulator.log").read_text()
