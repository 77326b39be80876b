"""``twin poll`` shows a status point as its status and code, ``running (2)`` (issue 17, item 12).

Against the emulator's real Modbus servers on 127.0.0.1, the command in-process.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from app import main as twin_main
from connectors.config import load_text
from connectors.emulator.server import Emulator
from tests.conftest import free_port
from tests.connectors.modbus.conftest import FLEET, fleet_text

pytestmark = pytest.mark.server


def test_poll_prints_a_status_point_as_name_and_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = fleet_text(p15020=free_port(), p15021=free_port(), p15022=free_port())
    cfg = load_text(text, source=FLEET)
    path = tmp_path / "fleet.toml"
    path.write_text(text, encoding="utf-8")

    async def go() -> tuple[int, int]:
        emu = Emulator(cfg.fleet, cfg.modbus, seed=2)
        await emu.start()
        try:
            as_json = await asyncio.to_thread(twin_main, ["poll", str(path), "--device", "a-cnc", "--once", "--json"])
            table = await asyncio.to_thread(twin_main, ["poll", str(path), "--device", "a-cnc", "--once"])
        finally:
            await emu.stop()
        return as_json, table

    assert asyncio.run(asyncio.wait_for(go(), 20.0)) == (0, 0)
    out = capsys.readouterr().out
    rows = json.loads(out[: out.index("]\n") + 1])
    cnc1 = next(m for s in cfg.fleet.sites for m in s.machines if m.id == "CNC1")
    codes = cnc1.template.status_codes
    status = next(r for r in rows if r["asset"] == "CNC1" and r["signal"] == "status")
    code = status["value"]
    # the raw code stays in "value" (JSON); the status is its name in the template's table and the code
    assert isinstance(code, int) and status["status"] == f"{codes[code].value} ({code})"
    assert next(r for r in rows if r["signal"] == "good_count")["status"] is None  # not a status point
    table_lines = out[out.index("]\n") + 2:].splitlines()
    line = next(ln for ln in table_lines if ln.split()[1:3] == ["CNC1", "status"])
    # device, asset, signal, register (2 words), type, then the value: e.g. "idle (1)" (names have no blank);
    # a second poll, so the code may have changed since the JSON one: any code of the table, with its name
    name, shown = line.split()[6:8]
    assert shown.startswith("(") and name == codes[int(shown.strip("()"))].value, line
