"""A site fed only from InfluxDB shows on the dashboard like a Modbus site, in real headless Chromium.

Real parts end to end on 127.0.0.1: InfluxDB 1.6 (``influxd``) with Telegraf-style points, the
``twin collect`` command reading them through ``[[sources.influx]]`` into its SQLite store, the
``twin dashboard`` command reading that store, and Chromium showing the site page.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, free_port
from tests.connectors.influx_feed.conftest import Influxd

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]
ROOT = Path(__file__).resolve().parents[3]

if not Path(CHROMIUM).exists():
    pytest.skip("no /usr/bin/chromium", allow_module_level=True)


def _spawn(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "app", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=5)
    return out or ""


class Telegraf:
    """Writes the plant's points into InfluxDB every second, as Telegraf does, until stopped."""

    def __init__(self, influxd: Influxd) -> None:
        self.influxd = influxd
        self.printers = {"P1": "RUN", "P2": "IDLE", "P3": "FAULT"}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="telegraf", daemon=True)
        self.n = 0

    def lines(self) -> str:
        now, n = time.time_ns(), self.n
        out = [f'printer,host=printer-{m[1]},machine={m} state="{st}",parts_ok={100 + n}i,parts_scrap=3i,'
               f"nozzle_temp=214.5 {now}" for m, st in self.printers.items()]
        out += [f"washer,host=wash-1 status=2i,cycles_ok={40 + n}i,cycles_bad=0i {now}",
                f'packing,host=pack-1 state="RUN",boxes={97 + n}i,rejects=1i {now}',
                f"stock,sku=PLA-1KG,site=lyon on_hand_kg=18.4 {now}"]
        return "\n".join(out)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.n += 1
            with contextlib.suppress(OSError):  # the server may be stopped by the test
                self.influxd.write("telegraf", self.lines())
            self._stop.wait(1.0)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture
def running(influxd: Influxd, tmp_path: Path) -> Iterator[tuple[str, Telegraf]]:
    cfg = tmp_path / "influx-site.toml"
    text = (EXAMPLES / "influx-site.toml").read_text(encoding="utf-8")
    # points every second, polled every second, declared every 2 s: a signal is stale after 3 × 2 = 6 s
    # without a new point (3 s left no slack on a loaded 2-core CI machine: a late poll greyed a tile)
    changes = (("http://127.0.0.1:8086", influxd.url), ('"../var/influx-site.db"', '"influx-site.db"'),
               ("poll_interval_s = 5", "poll_interval_s = 1"), ("sample_interval_s = 10", "sample_interval_s = 2"))
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new)
    cfg.write_text(text, encoding="utf-8")
    telegraf = Telegraf(influxd)
    telegraf.start()
    collector = _spawn(["collect", str(cfg)], tmp_path)
    port = free_port()
    dashboard = _spawn(["dashboard", str(cfg), "--port", str(port), "--refresh", "1"], tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/_dash-layout", timeout=5):
                    break
            except OSError:
                assert dashboard.poll() is None and collector.poll() is None, (_stop(dashboard), _stop(collector))
                assert time.monotonic() < deadline, "the dashboard did not answer within 30 s"
                time.sleep(0.2)
        yield url, telegraf
    finally:
        telegraf.stop()
        _stop(dashboard)
        out = _stop(collector)
    assert "collected" in out, out  # the collector stopped cleanly on SIGTERM and said what it wrote


def test_an_influx_fed_site_shows_like_a_modbus_site(running: tuple[str, Telegraf]) -> None:
    url, telegraf = running
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(20_000)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/site?site=pod-lyon")

        def tile(machine: str):  # type: ignore[no-untyped-def]
            return page.locator("#site-tiles .machine-tile", has_text=machine).first

        # Telegraf's "RUN"/"IDLE"/"FAULT" strings mapped through the feed's enum to the twin's statuses
        page.wait_for_function("() => (document.querySelector('#site-tiles')?.innerText || '').includes('FAULT')")
        assert "RUNNING" in tile("P1").inner_text()
        assert "IDLE" in tile("P2").inner_text()
        assert "FAULT" in tile("P3").inner_text()
        assert "RUNNING" in tile("W1").inner_text()  # washer status 2i, a numeric code as from a PLC
        # fresh points are not grey (waited for: the first refresh may land before the first poll)
        page.wait_for_function(
            "() => [...document.querySelectorAll('#site-tiles .machine-tile')]"
            ".some(t => t.innerText.includes('P1') && !t.classList.contains('andon-unknown'))")
        # a change in the points reaches the screen without a reload: P2 starts running
        telegraf.printers["P2"] = "RUN"
        page.wait_for_function(
            "() => [...document.querySelectorAll('#site-tiles .machine-tile')]"
            ".some(t => t.innerText.includes('P2') && t.innerText.includes('RUNNING'))")
        # the server goes away: the feed's data turns STALE and the tiles grey, in words, with their age
        telegraf.influxd.stop()
        page.wait_for_function(
            "() => document.querySelectorAll('#site-tiles .machine-tile.andon-unknown').length >= 5",
            timeout=30_000)
        assert "UNKNOWN" in tile("P1").inner_text()
        page.close()
        browser.close()
    assert errors == []
