"""Fixtures of the InfluxDB feed tests: a real InfluxDB 1.6 (``influxd``) on free 127.0.0.1 ports."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port

INFLUXD = shutil.which("influxd") or "/usr/bin/influxd"

_CONFIG = """\
reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{root}/meta"
  logging-enabled = false
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[retention]
  enabled = false
[shard-precreation]
  enabled = false
[continuous_queries]
  enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = {auth}
  log-enabled = false
  pprof-enabled = false
[logging]
  level = "error"
  suppress-logo = true
[[graphite]]
  enabled = false
[[collectd]]
  enabled = false
[[opentsdb]]
  enabled = false
[[udp]]
  enabled = false
"""


@dataclass
class Influxd:
    """An ``influxd`` 1.6 process on 127.0.0.1 that a test can stop and start again (same data, same ports)."""

    root: Path
    http_port: int
    rpc_port: int
    auth: bool = False
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        conf = self.root / "influxd.conf"
        conf.write_text(_CONFIG.format(root=self.root, rpc_port=self.rpc_port, http_port=self.http_port,
                                       auth="true" if self.auth else "false"))
        self.proc = subprocess.Popen([INFLUXD, "run", "-config", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as resp:
                    if resp.status == 204:
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("influxd did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
            self.proc = None

    def query(self, q: str, *, user: tuple[str, str] | None = None) -> bytes:
        data = urllib.parse.urlencode({"q": q}).encode()
        req = urllib.request.Request(f"{self.url}/query", data=data, method="POST")
        if user is not None:
            req.add_header("Authorization", _basic(*user))
        with urllib.request.urlopen(req, timeout=10) as resp:
            return bytes(resp.read())

    def write(self, db: str, lines: str, *, user: tuple[str, str] | None = None) -> None:
        """Write line protocol (nanosecond timestamps), as Telegraf does."""
        url = f"{self.url}/write?" + urllib.parse.urlencode({"db": db, "precision": "ns"})
        req = urllib.request.Request(url, data=lines.encode(), method="POST")
        if user is not None:
            req.add_header("Authorization", _basic(*user))
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 204


def _basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _influxd(root: Path, *, auth: bool = False) -> Iterator[Influxd]:
    if not Path(INFLUXD).exists():
        pytest.fail(f"influxd is not installed at {INFLUXD} (scripts/test.sh installs InfluxDB 1.x)")
    root.mkdir()
    server = Influxd(root=root, http_port=free_port(), rpc_port=free_port(), auth=auth)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def influxd(tmp_path: Path) -> Iterator[Influxd]:
    """A fresh InfluxDB 1.6 with a database ``telegraf``."""
    for server in _influxd(tmp_path / "influxd"):
        server.query('CREATE DATABASE "telegraf"')
        yield server


@pytest.fixture
def influxd2(tmp_path: Path) -> Iterator[Influxd]:
    """A second, independent InfluxDB 1.6 with a database ``telegraf``."""
    for server in _influxd(tmp_path / "influxd2"):
        server.query('CREATE DATABASE "telegraf"')
        yield server


@pytest.fixture
def influxd_auth(tmp_path: Path) -> Iterator[Influxd]:
    """An InfluxDB 1.6 with authentication on: admin user ``admin`` / ``s3cret``, database ``telegraf``."""
    for server in _influxd(tmp_path / "influxd-auth", auth=True):
        server.query("CREATE USER admin WITH PASSWORD 's3cret' WITH ALL PRIVILEGES")
        server.query('CREATE DATABASE "telegraf"', user=("admin", "s3cret"))
        yield server


