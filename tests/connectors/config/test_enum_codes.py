"""Enum maps on Modbus points: a code the point's type can never hold is refused at load, with its path."""

from __future__ import annotations

import pytest

from connectors.config import load_text
from tests.connectors.modbus.conftest import FLEET, fleet_text
from twin.errors import ConfigError

STATUS = '{ signal = "status", kind = "holding", address = 0, type = "UINT16" }'


def with_status(point: str) -> str:
    text = fleet_text()
    assert STATUS in text
    return text.replace(STATUS, point, 1)


def test_enum_codes_within_the_type_load() -> None:
    cfg = load_text(with_status('{ signal = "status", kind = "holding", address = 0, type = "UINT16", '
                                'enum = { 0 = "OFF", 65535 = "ERR" } }'), source=FLEET)
    point = next(p for d in cfg.modbus for p in d.points if p.signal == "status" and p.enum)
    assert dict(point.enum) == {0: "OFF", 65535: "ERR"}


@pytest.mark.parametrize(("typ", "codes", "bad", "rng"), [
    ("UINT16", '{ -1 = "X", 2 = "RUN" }', "-1", "0..65535"),  # unsigned: no negative codes
    ("UINT16", '{ 65536 = "X" }', "65536", "0..65535"),  # 2^16 does not fit 16 bits
    ("INT16", '{ 40000 = "X", -5 = "Y" }', "40000", "-32768..32767"),  # 40000 > 2^15 - 1
])
def test_enum_code_outside_the_type_is_refused(typ: str, codes: str, bad: str, rng: str) -> None:
    text = with_status(f'{{ signal = "status", kind = "holding", address = 0, type = "{typ}", enum = {codes} }}')
    with pytest.raises(ConfigError) as info:
        load_text(text, source=FLEET)
    lines = [str(p) for p in info.value.problems]
    assert len(lines) == 1, lines
    assert "sources.register_maps[0].points[0].enum" in lines[0]
    assert f"enum code(s) {bad} can never be read" in lines[0] and rng in lines[0]
