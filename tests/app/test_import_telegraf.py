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
