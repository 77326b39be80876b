"""Decode/encode against golden vectors computed with ``struct`` (independent of our code), and the planner."""

from __future__ import annotations

import math
import struct

import pytest

from connectors.modbus.points import decode_point, decode_raw, encode_point, encode_raw, plan_blocks
from connectors.modbus.spec import ByteOrder, DataType, ModbusPoint, RegisterKind
from twin.frozen import FrozenDict

FMT = {DataType.INT16: "h", DataType.UINT16: "H", DataType.INT32: "i", DataType.UINT32: "I",
       DataType.INT64: "q", DataType.UINT64: "Q", DataType.FLOAT32: "f", DataType.FLOAT64: "d"}


def golden(fmt: str, value: float, order: ByteOrder) -> list[int]:
    """Registers as a PLC with ``order`` would hold ``value``, built straight from struct.

    ABCD: big-endian bytes read as big-endian words. DCBA: little-endian bytes read as big-endian
    words. BADC: big-endian bytes read as little-endian words. CDAB: ABCD with the word list reversed.
    """
    n = struct.calcsize(fmt) // 2
    if order is ByteOrder.ABCD:
        return list(struct.unpack(f">{n}H", struct.pack(">" + fmt, value)))
    if order is ByteOrder.DCBA:
        return list(struct.unpack(f">{n}H", struct.pack("<" + fmt, value)))
    if order is ByteOrder.BADC:
        return list(struct.unpack(f"<{n}H", struct.pack(">" + fmt, value)))
    return list(reversed(struct.unpack(f">{n}H", struct.pack(">" + fmt, value))))


VALUES = {
    DataType.INT16: [0, 1, -1, 12345, -32768, 32767],
    DataType.UINT16: [0, 1, 0xBEEF, 65535],
    DataType.INT32: [0, -1, -123456789, 2**31 - 1, -(2**31)],
    DataType.UINT32: [0, 0x01020304, 4_000_000_000, 2**32 - 1],
    DataType.INT64: [0, -1, -(2**63), 2**63 - 1, -1234567890123],
    DataType.UINT64: [0, 0x0102030405060708, 2**64 - 1],
    DataType.FLOAT32: [0.0, 1.5, -273.15, 3.4e38, -1e-30],
    DataType.FLOAT64: [0.0, -1.0, math.pi, -2.5e300, 1e-300],
}


@pytest.mark.parametrize("order", list(ByteOrder))
@pytest.mark.parametrize("typ", list(VALUES))
def test_golden_vectors_every_type_and_byte_order(typ: DataType, order: ByteOrder) -> None:
    for v in VALUES[typ]:
        regs = golden(FMT[typ], v, order)
        assert encode_raw(typ, order, v) == regs, (typ, order, v)
        got = decode_raw(typ, order, regs)
        if typ is DataType.FLOAT32:
            assert got == struct.unpack(">f", struct.pack(">f", v))[0]  # float32 rounding
        else:
            assert got == v


def test_known_byte_layouts_by_hand() -> None:
    # 0x01020304: bytes A=01 B=02 C=03 D=04
    assert encode_raw(DataType.UINT32, ByteOrder.ABCD, 0x01020304) == [0x0102, 0x0304]
    assert encode_raw(DataType.UINT32, ByteOrder.CDAB, 0x01020304) == [0x0304, 0x0102]
    assert encode_raw(DataType.UINT32, ByteOrder.BADC, 0x01020304) == [0x0201, 0x0403]
    assert encode_raw(DataType.UINT32, ByteOrder.DCBA, 0x01020304) == [0x0403, 0x0201]
    # 16-bit: only the byte swap matters
    assert decode_raw(DataType.INT16, ByteOrder.CDAB, [0xFFFE]) == -2
    assert decode_raw(DataType.INT16, ByteOrder.BADC, [0xFEFF]) == -2


def pt(typ: DataType, order: ByteOrder = ByteOrder.ABCD, **kw: object) -> ModbusPoint:
    return ModbusPoint(asset="A", signal="s", kind=RegisterKind.HOLDING, address=10, type=typ, byte_order=order,
                       **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("order", list(ByteOrder))
def test_nan_and_infinity_decode_bad(order: ByteOrder) -> None:
    for fmt, typ in (("f", DataType.FLOAT32), ("d", DataType.FLOAT64)):
        for v in (math.nan, math.inf, -math.inf):
            value, why = decode_point(pt(typ, order), golden(fmt, v, order), start=10)
            assert value is None and why.startswith("not a number")
        assert math.isnan(decode_raw(typ, order, golden(fmt, math.nan, order)))  # type: ignore[arg-type]


def test_bits_of_a_register_and_bit_tables() -> None:
    word = 0b1000_0000_0000_0101
    for bit, expected in ((0, True), (1, False), (2, True), (15, True), (14, False)):
        assert decode_point(pt(DataType.BIT, bit=bit), [word], start=10) == (expected, "")
    coil = ModbusPoint(asset="A", signal="door", kind=RegisterKind.COIL, address=3, type=DataType.BOOL)
    assert decode_point(coil, [True, False, False, True], start=0) == (True, "")
    assert encode_point(coil, False) == [0]


def test_scale_offset_enum_and_string() -> None:
    t = pt(DataType.INT16, scale=0.1, offset=-50.0)
    assert encode_point(t, -62.5) == [struct.unpack(">H", struct.pack(">h", -125))[0]]  # (-62.5+50)/0.1
    assert decode_point(t, encode_point(t, -62.5), start=10) == (-62.5, "")
    assert decode_point(pt(DataType.UINT16, scale=0.01), [113], start=10) == (1.13, "")
    e = pt(DataType.UINT16, enum=FrozenDict({0: "off", 2: "running"}))
    assert decode_point(e, [2], start=10) == ("running", "")
    assert decode_point(e, [7], start=10) == (None, "code 7 not in the point's enum map")
    s = pt(DataType.STRING, length=3)
    assert encode_point(s, "JOB42") == list(struct.unpack(">3H", b"JOB42\x00"))
    assert decode_point(s, list(struct.unpack(">3H", b"JOB42\x00")), start=10) == ("JOB42", "")
    sb = pt(DataType.STRING, ByteOrder.BADC, length=2)
    assert decode_point(sb, list(struct.unpack("<2H", b"AB12")), start=10) == ("AB12", "")
    with pytest.raises(ValueError, match="does not fit"):
        encode_point(pt(DataType.UINT16), 70000)


def mk(addr: int, typ: DataType = DataType.UINT16, kind: RegisterKind = RegisterKind.HOLDING,
       **kw: object) -> ModbusPoint:
    return ModbusPoint(asset="A", signal=f"s{addr}", kind=kind, address=addr, type=typ, **kw)  # type: ignore[arg-type]


def test_planner_coalesces_within_gap_and_limit() -> None:
    pts = [mk(0), mk(1, DataType.UINT32), mk(13), mk(14, DataType.FLOAT64), mk(300)]
    blocks = plan_blocks(pts, max_gap=10)
    # 0..2 then a gap of 10 (3..12) is allowed, 13..17; 300 is far away
    assert [(b.address, b.count, len(b.points)) for b in blocks] == [(0, 18, 4), (300, 1, 1)]
    assert [(b.address, b.count) for b in plan_blocks(pts, max_gap=9)] == [(0, 3), (13, 5), (300, 1)]
    # the 125-register limit splits a long run even without gaps
    run = [mk(a, DataType.INT64) for a in range(0, 400, 4)]
    blocks = plan_blocks(run, max_gap=0)
    assert [b.count for b in blocks] == [124, 124, 124, 28]
    assert sum(len(b.points) for b in blocks) == 100
    assert all(b.count <= 125 for b in plan_blocks(run, max_registers=125, max_gap=125))


def test_planner_bits_kinds_and_shared_registers() -> None:
    coils = [mk(a, DataType.BOOL, RegisterKind.COIL) for a in range(0, 4000, 2)]
    blocks = plan_blocks(coils, max_gap=10)
    assert [b.count for b in blocks] == [1999, 1999]  # at most 2000 bits; 1999 ends on a point
    bits = [mk(5, DataType.BIT, bit=0), mk(5, DataType.BIT, bit=7), mk(5, DataType.INT16, kind=RegisterKind.INPUT)]
    blocks = plan_blocks(bits)
    assert [(b.kind, b.address, b.count, len(b.points)) for b in blocks] == [
        (RegisterKind.HOLDING, 5, 1, 2), (RegisterKind.INPUT, 5, 1, 1)]
