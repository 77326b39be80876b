"""Telegraf's inputs.modbus type and byte-order names, accepted as written in a register map (issue 21).

Each name loads as one of ours, and the registers Telegraf's documentation describes for it decode
to the value they hold: the encodings below are written by hand from the byte letters (A = most
significant byte), not by our encoder, so a wrong mapping cannot agree with itself.
"""

from __future__ import annotations

import struct

import pytest

from connectors.config import load_text
from connectors.modbus.points import decode_point
from connectors.modbus.spec import ByteOrder, DataType
from tests.connectors.modbus.conftest import FLEET, fleet_text
from twin.errors import ConfigError

BASE = fleet_text()
JOB = '{ signal = "job", kind = "holding", address = 8, type = "STRING", length = 4 }'


def _point(spec: str):  # type: ignore[no-untyped-def]
    """The fdm-printer map with its `job` point replaced by ``spec`` (signal job, address 8): P1's point."""
    cfg = load_text(BASE.replace(JOB, "{ " + spec + ' signal = "job", kind = "holding", address = 8 }'),
                    source=FLEET)
    (device,) = [d for d in cfg.modbus if d.id == "a-cell-1"]
    (point,) = [p for p in device.points if p.asset == "P1" and p.signal == "job"]
    return point


def _problems(spec: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        _point(spec)
    return [str(p) for p in info.value.problems]


def _words(raw: bytes) -> list[int]:
    return [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]


def test_ieee_float_names_and_eight_letter_orders() -> None:
    p = _point('type = "FLOAT64-IEEE", byte_order = "GHEFCDAB",')
    assert (p.type, p.byte_order) == (DataType.FLOAT64, ByteOrder.CDAB)
    # 3.14159 as big-endian bytes A..H; GHEFCDAB puts the words in reverse order: GH EF CD AB
    ab, cd, ef, gh = _words(struct.pack(">d", 3.14159))
    assert decode_point(p, [gh, ef, cd, ab], p.address) == (3.14159, "")
    p = _point('type = "FLOAT64-IEEE", byte_order = "HGFEDCBA",')  # little endian: every byte reversed
    assert decode_point(p, _words(struct.pack("<d", -2.5)), p.address) == (-2.5, "")
    p = _point('type = "FLOAT32-IEEE", byte_order = "CDAB",')
    ab, cd = _words(struct.pack(">f", 1.5))
    assert (p.type, decode_point(p, [cd, ab], p.address)) == (DataType.FLOAT32, (1.5, ""))
    p = _point('type = "UINT64", byte_order = "BADCFEHG",')  # each word's two bytes swapped
    value = 0x0102_0304_0506_0708
    assert decode_point(p, [0x0201, 0x0403, 0x0605, 0x0807], p.address) == (value, "")


def test_two_letter_orders_and_fixed_point_integers() -> None:
    p = _point('type = "UINT16", byte_order = "BA",')
    assert decode_point(p, [0x3412], p.address) == (0x1234, "")  # BA: the low byte first
    # Telegraf's UFIXED/FIXED: an integer of the byte order's size, scaled
    p = _point('type = "UFIXED", byte_order = "ABCD", scale = 0.01,')
    assert p.type is DataType.UINT32
    assert decode_point(p, [0x0001, 0x0000], p.address)[0] == pytest.approx(655.36)  # 65,536 × 0.01
    p = _point('type = "FIXED", byte_order = "AB", scale = 0.1,')
    assert p.type is DataType.INT16
    assert decode_point(p, [0xFFF6], p.address)[0] == pytest.approx(-1.0)  # -10 × 0.1


def test_a_size_that_does_not_match_is_refused_by_name() -> None:
    at = "sources.register_maps[0].points[5]"
    assert _problems('type = "INT32", byte_order = "AB",') == [
        f"{at}.byte_order: byte order AB names a 16-bit value, and INT32 is 32-bit (got 'AB')"]
    assert _problems('type = "UINT16", byte_order = "ABCDEFGH",') == [
        f"{at}.byte_order: byte order ABCDEFGH names a 64-bit value, and UINT16 is 16-bit "
        "(got 'ABCDEFGH')"]
    assert _problems('type = "UFIXED",') == [
        f"{at}.type: UFIXED (Telegraf's scaled integer) takes its size from byte_order: AB or BA "
        "for 16 bits, ABCD... for 32, ABCDEFGH... for 64 (got 'UFIXED')"]
