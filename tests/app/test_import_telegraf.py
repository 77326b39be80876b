"""``twin import telegraf``: Telegraf's Modbus configurations as they are, in both styles (issue 21).

The printer PLC of the connector tests' fleet (``tests/connectors/modbus/fleet_modbus.toml``,
device a-cell-1, asset P1) is described below the way a plant engineer's Telegraf file would: once
in the request style, once in the register style. Imported, each must give the same points as the
hand-written register map (address, table, type, byte order, scale), and load in a plant file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app import main
from connectors.config import load_text
from connectors.config.telegraf import from_telegraf
from tests.connectors.modbus.conftest import FLEET, fleet_text
from twin.errors import ConfigError

REQUEST_STYLE = """
[agent]
  interval = "10s"

[[inputs.modbus]]
  name = "printer-cell"
  slave_id = 1
  timeout = "500ms"
  controller = "tcp://127.0.0.1:15020"
  configuration_type = "request"

  [[inputs.modbus.request]]
    slave_id = 1
    byte_order = "CDAB"
    register = "holding"
    fields = [
      { address = 1, name = "good_count",  type = "UINT32" },
      { address = 3, name = "scrap_count", type = "UINT32" },
    ]

  [[inputs.modbus.request]]
    slave_id = 1
    byte_order = "ABCD"
    register = "holding"
    fields = [
      { address = 0, name = "machine_state", type = "UINT16" },
      { address = 5, name = "cycle_time_s",  type = "FLOAT32" },
      { address = 7, name = "fault_code",    type = "UINT16" },
      { address = 8, name = "job_text",      type = "UINT16", omit = true },
    ]
    [inputs.modbus.request.tags]
      line = "a"

  [[inputs.modbus.request]]
    slave_id = 1
    byte_order = "ABCD"
    register = "input"
    fields = [
      { address = 0, name = "nozzle_temp_c", type = "INT16",  scale = 0.1 },
      { address = 1, name = "power_kw",      type = "UINT16", scale = 0.01 },
    ]

[[outputs.influxdb_v2]]
  urls = ["http://127.0.0.1:8086"]
"""

REGISTER_STYLE = """
[[inputs.modbus]]
  name = "printer cell"
  slave_id = 1
  controller = "tcp://127.0.0.1:15020"
  holding_registers = [
    { name = "machine_state", byte_order = "AB",   data_type = "UINT16",       address = [0] },
    { name = "good_count",    byte_order = "CDAB", data_type = "UINT32",       address = [1, 2] },
    { name = "scrap_count",   byte_order = "CDAB", data_type = "UINT32",       address = [3, 4] },
    { name = "cycle_time_s",  byte_order = "ABCD", data_type = "FLOAT32-IEEE", address = [5, 6] },
    { name = "fault_code",    byte_order = "AB",   data_type = "UINT16",       address = [7] },
  ]
  input_registers = [
    { name = "nozzle_temp_c", byte_order = "AB", data_type = "FIXED",  scale = "0.1",  address = [0] },
    { name = "power_kw",      byte_order = "AB", data_type = "UFIXED", scale = 0.01,   address = [1] },
  ]

[[inputs.modbus]]
  name = "serial-meter"
  controller = "file:///dev/ttyUSB0"
  holding_registers = [{ name = "kwh", byte_order = "ABCD", data_type = "UINT32", address = [0, 1] }]
"""


def _plant_with(imported_toml: str) -> str:
    """The connector tests' fleet (templates, sites) with its own Modbus sections replaced by the import."""
    base = fleet_text()
    return base[: base.index("[[sources.register_maps]]")] + "\n" + imported_toml


def _points(cfg, device: str):  # type: ignore[no-untyped-def]
    (dev,) = [d for d in cfg.modbus if d.id == device]
    return {(p.signal, p.kind.value, p.address, p.type.value, p.byte_order.value, p.scale)
            for p in dev.points if p.asset == "P1" and p.signal != "job"}


@pytest.mark.parametrize("style", [REQUEST_STYLE, REGISTER_STYLE], ids=["request", "register"])
def test_both_styles_give_the_hand_written_map(style: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "telegraf.conf"
    conf.write_text(style, encoding="utf-8")
    out = tmp_path / "modbus.toml"
    assert main(["import", "telegraf", str(conf), "--site", "pod-a", "--asset", "P1",
                 "--rename", "machine_state=status", "--output", str(out)]) == 0
    imported = load_text(_plant_with(out.read_text(encoding="utf-8")), source=FLEET)
    expected = _points(load_text(fleet_text(), source=FLEET), "a-cell-1")
    device = "printer-cell" if style is REQUEST_STYLE else "printer_cell"
    assert _points(imported, device) == expected
    (dev,) = [d for d in imported.modbus if d.id == device]
    assert (dev.host, dev.port, dev.device_id, dev.site) == ("127.0.0.1", 15020, 1, "pod-a")
    err = capsys.readouterr().err
    if style is REQUEST_STYLE:
        assert dev.timeout_s == 0.5  # "500ms"
        assert f"{conf}: inputs.modbus[0].request[1].tags: not mapped" in err
    else:
        # the serial meter is said and left out; the space in "printer cell" is said too
        assert (f"{conf}: inputs.modbus[1].controller: 'file:///dev/ttyUSB0': only Modbus TCP (tcp://HOST:PORT) "
                "is read; a serial line is not (the section is left out)") in err
        assert len(imported.modbus) == 1


def test_what_cannot_be_mapped_is_said_by_path() -> None:
    text = """
[[inputs.modbus]]
  name = "m"
  controller = "tcp://10.1.2.3"
  holding_registers = [
    { name = "a", byte_order = "AB",   data_type = "FLOAT32", scale = 0.5, address = [0] },
    { name = "b", byte_order = "ABCD", data_type = "INT8L",   address = [1] },
    { name = "c", byte_order = "ABCD", data_type = "UINT32",  address = [2] },
    { name = "d", byte_order = "ABCD", data_type = "UINT32",  address = [5, 7] },
  ]
  coils = [{ name = "run", address = [3] }]
"""
    maps, devices, notes = from_telegraf(text, "t.conf")
    assert [str(n) for n in notes] == [
        "inputs.modbus[0].holding_registers[0].data_type: FLOAT32 is Telegraf's deprecated unsigned fixed point: "
        "read as UFIXED (use FLOAT32-IEEE for an IEEE float)",
        "inputs.modbus[0].holding_registers[1].data_type: 'INT8L' is not read (INT16..UINT64, FLOAT32-IEEE, "
        "FLOAT64-IEEE, FIXED, UFIXED): left out",
        "inputs.modbus[0].holding_registers[2].address: UINT32 with byte order ABCD is 2 register(s), the address "
        "list has 1: left out",
        "inputs.modbus[0].holding_registers[3].address: registers [5, 7] are not consecutive: left out",
    ]
    assert maps[0]["points"] == [
        {"signal": "a", "kind": "holding", "address": 0, "type": "UINT16", "byte_order": "ABCD", "scale": 0.5},
        {"signal": "run", "kind": "coil", "address": 3, "type": "BOOL"},
    ]
    assert (devices[0]["host"], devices[0]["port"], devices[0]["site"]) == ("10.1.2.3", 502, "SITE")


def test_a_file_without_modbus_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match=r"inputs.modbus: no \[\[inputs.modbus\]\] section to import"):
        from_telegraf("[[inputs.cpu]]\n", "t.conf")
    conf = tmp_path / "bad.conf"
    conf.write_text("[[inputs.modbus]]\n name = 'x'\n controller = 'file:///dev/ttyS0'\n", encoding="utf-8")
    assert main(["import", "telegraf", str(conf)]) == 2
    assert "nothing in" in capsys.readouterr().err


def test_the_imported_map_reads_a_live_plc_exactly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The emulated printer PLC served with the hand-written map; polled through the imported map: same values.

    The device is frozen (its registers stop changing) so both polls read the same registers.
    """
    import asyncio
    import json

    from connectors.emulator.server import Emulator
    from tests.conftest import free_port

    ports = {"p15020": free_port(), "p15021": free_port(), "p15022": free_port()}
    original = load_text(fleet_text(**ports), source=FLEET)
    (tmp_path / "original.toml").write_text(fleet_text(**ports), encoding="utf-8")
    conf = tmp_path / "telegraf.conf"
    conf.write_text(REQUEST_STYLE.replace("127.0.0.1:15020", f"127.0.0.1:{ports['p15020']}"), encoding="utf-8")
    imported = tmp_path / "modbus.toml"
    assert main(["import", "telegraf", str(conf), "--site", "pod-a", "--asset", "P1",
                 "--rename", "machine_state=status", "--output", str(imported)]) == 0
    (tmp_path / "imported.toml").write_text(_plant_with(imported.read_text(encoding="utf-8")), encoding="utf-8")
    capsys.readouterr()

    async def go() -> tuple[str, str]:
        emu = Emulator(original.fleet, original.modbus, seed=2)
        await emu.start()
        try:
            await asyncio.sleep(0.3)  # a few plant steps: counters and temperatures off their initial values
            emu.update()
            emu.fault("a-cell-1").frozen = True
            await asyncio.to_thread(main, ["poll", str(tmp_path / "original.toml"), "--device", "a-cell-1",
                                           "--once", "--json"])
            first = capsys.readouterr().out
            await asyncio.to_thread(main, ["poll", str(tmp_path / "imported.toml"), "--once", "--json"])
            second = capsys.readouterr().out
        finally:
            await emu.stop()
        return first, second

    first, second = asyncio.run(asyncio.wait_for(go(), 20))
    by_hand = {r["signal"]: r["value"] for r in json.loads(first) if r["asset"] == "P1" and r["signal"] != "job"}
    via_telegraf = {r["signal"]: r["value"] for r in json.loads(second)}
    assert via_telegraf == by_hand and len(by_hand) == 7
    assert all(r["quality"] == "good" for r in json.loads(second))


# The examples of Telegraf's own modbus plugin documentation (plugins/inputs/modbus/README.md), written out
TELEGRAF_DOC_REGISTER = """
[[inputs.modbus]]
  name = "Device"
  slave_id = 1
  timeout = "1s"
  controller = "tcp://localhost:502"
  configuration_type = "register"
  discrete_inputs = [
    { name = "start",          address = [0]},
    { name = "stop",           address = [1]},
    { name = "reset",          address = [2]},
    { name = "emergency_stop", address = [3]},
  ]
  coils = [
    { name = "motor1_run",     address = [0]},
    { name = "motor1_jog",     address = [1]},
    { name = "motor1_stop",    address = [2]},
  ]
  holding_registers = [
    { name = "power_factor", byte_order = "AB",   data_type = "FIXED", scale=0.01,  address = [8]},
    { name = "voltage",      byte_order = "AB",   data_type = "FIXED", scale=0.1,   address = [0]},
    { name = "energy",       byte_order = "ABCD", data_type = "FIXED", scale=0.001, address = [5,6]},
    { name = "current",      byte_order = "ABCD", data_type = "FIXED", scale=0.001, address = [1,2]},
    { name = "frequency",    byte_order = "AB",   data_type = "UFIXED", scale=0.1,  address = [7]},
    { name = "power",        byte_order = "ABCD", data_type = "UFIXED", scale=0.1,  address = [3,4]},
  ]
  input_registers = [
    { name = "tank_level",   byte_order = "AB",   data_type = "INT16",   scale=1.0,     address = [0]},
    { name = "tank_ph",      byte_order = "AB",   data_type = "INT16",   scale=1.0,     address = [1]},
    { name = "pump1_speed",  byte_order = "ABCD", data_type = "INT32",   scale=1.0,     address = [3,4]},
  ]
"""

TELEGRAF_DOC_REQUEST = """
[[inputs.modbus]]
  name = "Device"
  controller = "tcp://localhost:502"
  configuration_type = "request"
  [[inputs.modbus.request]]
    slave_id = 1
    byte_order = "ABCD"
    register = "coil"
    fields = [
      { address=0, name="motor1_run"},
      { address=1, name="jog", measurement="motor"},
      { address=2, name="motor1_stop", omit=true},
      { address=3, name="motor1_overheating"},
    ]
    [inputs.modbus.request.tags]
      machine = "impresser"
      location = "main building"
  [[inputs.modbus.request]]
    slave_id = 1
    byte_order = "DCBA"
    register = "holding"
    fields = [
      { address=0, name="voltage",      type="INT16",   scale=0.1   },
      { address=1, name="current",      type="INT32",   scale=0.001 },
      { address=3, name="power",        type="UINT32",  omit=true   },
      { address=5, name="energy",       type="FLOAT32", scale=0.001, measurement="W" },
      { address=7, name="frequency",    type="UINT32",  scale=0.1   },
      { address=8, name="power_factor", type="INT64",   scale=0.01  },
    ]
  [[inputs.modbus.request]]
    slave_id = 1
    byte_order = "ABCD"
    register = "input"
    fields = [
      { address=0, name="rpm",         type="INT16"                   },
      { address=1, name="temperature", type="INT16", scale=0.1        },
      { address=2, name="force",       type="INT32", output="FLOAT64" },
      { address=4, name="hours",       type="UINT32"                  },
    ]
"""


def _short(points: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [(p["signal"], p["kind"], p["address"], p["type"], p.get("byte_order"), p.get("scale")) for p in points]


def test_the_examples_of_telegrafs_documentation() -> None:
    maps, devices, notes = from_telegraf(TELEGRAF_DOC_REGISTER, "doc.conf", site="pod-a")
    (m,) = maps
    # by hand: FIXED/UFIXED take the byte order's size (AB 16 bits, ABCD 32): signed INT16/INT32, unsigned UINT*
    assert _short(m["points"]) == [
        ("power_factor", "holding", 8, "INT16", "ABCD", 0.01), ("voltage", "holding", 0, "INT16", "ABCD", 0.1),
        ("energy", "holding", 5, "INT32", "ABCD", 0.001), ("current", "holding", 1, "INT32", "ABCD", 0.001),
        ("frequency", "holding", 7, "UINT16", "ABCD", 0.1), ("power", "holding", 3, "UINT32", "ABCD", 0.1),
        ("tank_level", "input", 0, "INT16", "ABCD", None), ("tank_ph", "input", 1, "INT16", "ABCD", None),
        ("pump1_speed", "input", 3, "INT32", "ABCD", None),
        ("motor1_run", "coil", 0, "BOOL", None, None), ("motor1_jog", "coil", 1, "BOOL", None, None),
        ("motor1_stop", "coil", 2, "BOOL", None, None),
        ("start", "discrete", 0, "BOOL", None, None), ("stop", "discrete", 1, "BOOL", None, None),
        ("reset", "discrete", 2, "BOOL", None, None), ("emergency_stop", "discrete", 3, "BOOL", None, None),
    ]
    assert (devices[0]["host"], devices[0]["port"], devices[0]["device_id"], devices[0]["timeout_s"]) == (
        "localhost", 502, 1, 1.0)
    assert notes == []

    maps, devices, notes = from_telegraf(TELEGRAF_DOC_REQUEST, "doc.conf", site="pod-a")
    (m,) = maps  # three requests of slave 1: one device, one map
    assert _short(m["points"]) == [
        ("motor1_run", "coil", 0, "BOOL", None, None), ("jog", "coil", 1, "BOOL", None, None),
        ("motor1_overheating", "coil", 3, "BOOL", None, None),  # motor1_stop is omit = true
        ("voltage", "holding", 0, "INT16", "DCBA", 0.1), ("current", "holding", 1, "INT32", "DCBA", 0.001),
        ("energy", "holding", 5, "FLOAT32", "DCBA", 0.001), ("frequency", "holding", 7, "UINT32", "DCBA", 0.1),
        ("power_factor", "holding", 8, "INT64", "DCBA", 0.01),
        ("rpm", "input", 0, "INT16", "ABCD", None), ("temperature", "input", 1, "INT16", "ABCD", 0.1),
        ("force", "input", 2, "INT32", "ABCD", None), ("hours", "input", 4, "UINT32", "ABCD", None),
    ]
    assert [str(n) for n in notes] == [
        "inputs.modbus[0].request[0].measurement: not mapped: a signal belongs to its asset, not to a measurement",
        "inputs.modbus[0].request[0].tags: not mapped: the site and asset say where a value comes from",
        "inputs.modbus[0].request[1].measurement: not mapped: a signal belongs to its asset, not to a measurement",
        "inputs.modbus[0].request[2].fields[2].output: not mapped: values are floats once scaled, integers otherwise",
    ]
