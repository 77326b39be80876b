"""The register-map schema: a valid map loads; each invalid one fails with the path of the bad key."""

from __future__ import annotations

import pytest

from connectors.config import load_text
from connectors.modbus.spec import ByteOrder, DataType, RegisterKind
from tests.connectors.modbus.conftest import FLEET, fleet_text
from twin.errors import ConfigError

BASE = fleet_text()


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_text(text, source=FLEET)
    return [str(p) for p in info.value.problems]


def test_valid_map_builds_devices_with_protocol_addresses() -> None:
    cfg = load_text(BASE, source=FLEET)
    dev = {d.id: d for d in cfg.modbus}
    p2 = {(p.asset, p.signal): p for p in dev["a-cell-1"].points}
    good = p2[("P2", "good_count")]
    assert (good.kind, good.address, good.type, good.byte_order) == (
        RegisterKind.HOLDING, 101, DataType.UINT32, ByteOrder.CDAB)  # map address 1 + offset 100
    assert p2[("P1", "nozzle_temp_c")].scale == 0.1
    assert p2[("P1", "status")].byte_order is ByteOrder.ABCD  # the device default
    # address_base 1: configured address 1 is protocol address 0
    assert {(p.signal, p.address) for p in dev["a-cnc"].points} >= {("status", 0), ("vibration_mm_s", 0)}
    assert dev["a-cnc"].device_id == 3 and dev["a-cnc"].timeout_s == 0.5
    # the coordinator sets each machine's expected poll interval from its device
    assert cfg.fleet.site("pod-a").machine("P1").poll_interval_s == 0.1  # type: ignore[union-attr]


CASES = [
    # (replace this, with this, expected path, words of the message)
    ('type = "UINT32", byte_order = "CDAB" }', 'type = "UINT32", byte_order = "CADB" }',
     "sources.register_maps[0].points[1].byte_order", "ABCD"),
    ('{ signal = "fault_code", kind = "holding", address = 7, type = "UINT16" }',
     '{ signal = "fault_code", kind = "holding", address = 7, type = "BIT" }',
     "sources.register_maps[0].points[4].bit", "needs 'bit'"),
    ('address = 5, type = "FLOAT32" }', 'address = 5, type = "FLOAT32", length = 4 }',
     "sources.register_maps[0].points[3].length", "occupies 2 register"),
    ('address = 8, type = "STRING", length = 4 }', 'address = 8, type = "STRING" }',
     "sources.register_maps[0].points[5].length", "needs 'length'"),
    ('address = 7, type = "UINT16" }', 'address = 7, type = "UINT16", bit = 3 }',
     "sources.register_maps[0].points[4].bit", "does not apply to type UINT16"),
    ('{ signal = "status", kind = "holding", address = 0, type = "UINT16" }',
     '{ signal = "status", kind = "coil", address = 0, type = "UINT16" }',
     "sources.register_maps[0].points[0].type", "holding or input"),
    ('address = 3, type = "UINT32", byte_order = "CDAB" }', 'address = 2, type = "UINT32", byte_order = "CDAB" }',
     "sources.register_maps[0].points[2].address", "overlaps points[1]"),
    ('{ asset = "P2", map = "fdm-printer", offset = 100 }', '{ asset = "P2", map = "fdm-printer", offset = 5 }',
     "sources.modbus[0].assets[1].offset", "overlaps"),
    ('{ asset = "P2", map = "fdm-printer", offset = 100 }', '{ asset = "P2", map = "fdm-printer", offset = 65530 }',
     "sources.modbus[0].assets[1].offset", "outside addresses"),
    ('{ asset = "P2", map = "fdm-printer", offset = 100 }', '{ asset = "P2", map = "fdm-printr", offset = 100 }',
     "sources.modbus[0].assets[1].map", "no register map"),
    ('{ asset = "P2", map = "fdm-printer", offset = 100 }', '{ asset = "P9", map = "fdm-printer", offset = 100 }',
     "sources.modbus[0].assets[1].asset", "no machine or SKU"),
    ('{ asset = "P2", map = "fdm-printer", offset = 100 }', '{ asset = "P2", map = "cnc-mill", offset = 100 }',
     "sources.modbus[0].assets[1].map", "not a signal of P2"),
    ('signal = "eta", kind = "holding"', 'signal = "eta_s", kind = "holding"',
     "sources.modbus[0].points[2].signal", "not a signal of PLA-1KG"),
    ('id = "a-cnc"', 'id = "a-cell-1"', "sources.modbus[1].id", "duplicate device id"),
    ('site = "pod-b"', 'site = "pod-x"', "sources.modbus[2].site", "no site"),
    ('device_id = 3\naddress_base = 1', 'device_id = 3\naddress_base = 2',
     "sources.modbus[1].address_base", "1"),
]


@pytest.mark.parametrize(("old", "new", "path", "words"), CASES)
def test_invalid_maps_fail_with_the_path_of_the_bad_key(old: str, new: str, path: str, words: str) -> None:
    assert old in BASE
    found = problems(BASE.replace(old, new, 1))
    assert any(p.startswith(f"{path}:") and words in p for p in found), found


def test_address_base_one_refuses_address_zero() -> None:
    text = BASE.replace('{ asset = "CNC1", map = "cnc-mill", offset = 0 }]',
                        '{ asset = "CNC1", map = "cnc-mill", offset = 0 }]\n'
                        'points = [{ asset = "BOX-S", signal = "in_transit", kind = "holding", '
                        'address = 0, type = "UINT16" }]')
    assert any(p.startswith("sources.modbus[1].points[0].address:") and "outside addresses 1..65536" in p
               for p in problems(text))
    text = BASE.replace('address = 206, type = "INT64" }',
                        'address = 206, type = "INT64" },\n  { asset = "BOX-S", signal = "in_transit", '
                        'kind = "holding", address = 0, type = "UINT16" }')
    assert any(p.startswith("sources.modbus[0].points[4].address:") and "overlaps" in p for p in problems(text))
