"""Read-only field access: no code path writes to a PLC.

1. Statically: no call of a pymodbus write function (write_register(s), write_coil(s), mask_write_register,
   readwrite_registers) anywhere in connectors/, twin/ or dashboard/, and pymodbus's client imported by
   ``connectors/modbus/client.py`` only. The emulator's server side (which refuses and counts writes)
   is the only place allowed to mention Modbus writes at all.
2. Dynamically: the real processes (``twin emulate``, ``twin collect``, ``twin poll``) run against each
   other, and the emulator reports the write requests it received when it stops: zero.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.config import load
from connectors.store import SqliteHistorian
from tests.conftest import free_port
from tests.connectors.modbus.conftest import fleet_text

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("connectors", "twin", "dashboard", "app")
# the server side of the emulator: it receives (and refuses) writes, it never sends them
SERVER_SIDE = {Path("connectors/emulator/modbus_server.py"), Path("connectors/emulator/server.py")}
WRITE_CALL = re.compile(
    r"\b(write_registers?|write_coils?|mask_write_register|readwrite_registers|write_holding_registers?)\s*\("
)
PYMODBUS_CLIENT = re.compile(r"^\s*(from\s+pymodbus\.client|import\s+pymodbus\.client)", re.MULTILINE)


def _sources() -> list[Path]:
    return sorted(p.relative_to(ROOT) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_the_scanner_finds_a_planted_write() -> None:
    # the patterns would catch the usual spellings (so that the test below can fail)
    for planted in ("await client.write_register(0, 1, device_id=1)", "c.write_registers(0, [1, 2])",
                    "client.write_coil (3, True)", "client.mask_write_register(address=1)",
                    "await c.readwrite_registers(read_address=0)"):
        assert WRITE_CALL.search(planted), planted
    assert not WRITE_CALL.search("self.store.write(device_id, kind, address, values)")


def test_no_code_path_calls_a_modbus_write() -> None:
    files = _sources()
    assert len(files) > 40  # the scan really covers the code base
    offenders = [f"{f}:{text[:m.start()].count(chr(10)) + 1}: {m.group(0)}"
                 for f in files if f not in SERVER_SIDE
                 for text in [(ROOT / f).read_text(encoding="utf-8")]
                 for m in WRITE_CALL.finditer(text)]
    assert offenders == []


def test_only_the_client_module_imports_the_pymodbus_client() -> None:
    importers = {f for f in _sources() if PYMODBUS_CLIENT.search((ROOT / f).read_text(encoding="utf-8"))}
    assert importers == {Path("connectors/modbus/client.py")}
    # and the client module only issues read requests (function codes 1-4)
    client = (ROOT / "connectors/modbus/client.py").read_text(encoding="utf-8")
    assert set(re.findall(r"client\.(\w+)\(", client)) <= {"read_holding_registers", "read_input_registers",
                                                            "read_coils", "read_discrete_inputs", "close",
                                                            "connect"}


def _twin(*args: str) -> list[str]:
    return [sys.executable, "-m", "app", *args]


@pytest.mark.slow
@pytest.mark.server
def test_emulate_collect_and_poll_processes_send_no_write(tmp_path: Path) -> None:
    ports = {"p15020": free_port(), "p15021": free_port(), "p15022": free_port()}
    cfg_path = tmp_path / "fleet.toml"
    db = tmp_path / "history.db"
    cfg_path.write_text(fleet_text(**ports) + f'\n[historian]\npath = "{db}"\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    emu = subprocess.Popen(_twin("emulate", str(cfg_path), "--speed", "60", "--drop-every", "1.0", "--duration", "30"),
                           cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert emu.stdout is not None
        deadline = time.monotonic() + 20
        line = ""
        while not line.startswith("emulating") and time.monotonic() < deadline:
            line = emu.stdout.readline()
        assert line.startswith("emulating 3 device(s)"), line
        collect = subprocess.run(_twin("collect", str(cfg_path), "--duration", "3"), cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=30)
        assert collect.returncode == 0, collect.stderr
        poll = subprocess.run(_twin("poll", str(cfg_path), "--once", "--json"), cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=30)
        assert poll.returncode == 0, poll.stderr
        assert '"quality": "good"' in poll.stdout
        emu.send_signal(signal.SIGTERM)  # it stops cleanly and reports what it received
        out, _ = emu.communicate(timeout=20)
    finally:
        if emu.poll() is None:
            emu.kill()
            emu.wait(timeout=10)
    assert "stopped; write requests received: 0" in out, out
    # the collector really talked to the PLCs: GOOD readings of every device are in its historian
    cfg = load(cfg_path)
    h = SqliteHistorian(db, cfg.fleet, readonly=True)
    try:
        now = datetime.now(UTC)
        good = {(r.site, r.asset) for site in ("pod-a", "pod-b") for r in h.readings(site, None, now)
                if r.quality.value == "good"}
    finally:
        h.close()
    assert {("pod-a", "P1"), ("pod-a", "CNC1"), ("pod-b", "CNC2")} <= good
