"""The compiled block decoder gives exactly what the per-point decoder gives, for any map and registers.

``BlockDecoder`` is the poller's fast path; ``decode_point`` is the reference (pinned by the golden
vectors in ``test_points.py``). Equality here is strict: same type (an int stays an int), same
float bits (``repr``), same reason text.
"""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.modbus.points import BlockDecoder, decode_point, plan_blocks
from connectors.modbus.spec import ByteOrder, DataType, ModbusPoint, RegisterKind
from tests.connectors.modbus.test_points import FMT, VALUES, golden
from twin.frozen import FrozenDict
from twin.readings import Quality, Reading

WORD_TYPES = [t for t in DataType if t is not DataType.BOOL]
T = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def same(got: list[tuple[Any, str]], want: list[tuple[Any, str]]) -> bool:
    """Equal value by value in type and repr (so 1 != 1.0 and 0.0 != -0.0 here)."""
    return [(type(v), repr(v), r) for v, r in got] == [(type(v), repr(v), r) for v, r in want]


@st.composite
def word_point(draw: st.DrawFn, kind: RegisterKind, address: int, name: str) -> ModbusPoint:
    typ = draw(st.sampled_from(WORD_TYPES))
    kw: dict[str, Any] = {"byte_order": draw(st.sampled_from(ByteOrder))}
    if typ is DataType.BIT:
        kw["bit"] = draw(st.integers(0, 15))
    elif typ is DataType.STRING:
        kw["length"] = draw(st.integers(1, 6))
    else:
        choice = draw(st.integers(0, 3))
        if choice == 1:  # scale and offset; decimal scales take the division path
            kw["scale"] = draw(st.sampled_from([0.1, 0.01, 0.001, 10.0, -0.5, 2.5, 1.0])
                               | st.floats(min_value=1e-6, max_value=1e6))
            kw["offset"] = draw(st.sampled_from([0.0, -50.0, 273.15]) | st.floats(-1e9, 1e9))
        elif choice == 2:
            codes = draw(st.lists(st.integers(-3, 70000), min_size=1, max_size=5, unique=True))
            kw["enum"] = FrozenDict({c: f"label{c}" for c in codes})
    return ModbusPoint(asset="A", signal=name, kind=kind, address=address, type=typ, **kw)


@st.composite
def block_points(draw: st.DrawFn) -> list[ModbusPoint]:
    """Several points of one table, side by side with gaps; BIT points may share a register."""
    kind = draw(st.sampled_from(RegisterKind))
    n = draw(st.integers(1, 8))
    address = draw(st.integers(0, 5))
    points: list[ModbusPoint] = []
    for i in range(n):
        if kind.is_bit:
            p = ModbusPoint(asset="A", signal=f"s{i}", kind=kind, address=address, type=DataType.BOOL)
        else:
            p = draw(word_point(kind, address, f"s{i}"))
        points.append(p)
        shared = p.type is DataType.BIT and draw(st.booleans())
        address = p.address if shared else p.end + draw(st.integers(0, 3))
    return points


@settings(max_examples=300, deadline=None)
@given(block_points(), st.data())
def test_block_decoder_equals_decode_point_for_random_registers(points: list[ModbusPoint],
                                                                 data: st.DataObject) -> None:
    for block in plan_blocks(points, max_gap=3):
        if block.kind.is_bit:
            words: list[Any] = data.draw(st.lists(st.booleans(), min_size=block.count, max_size=block.count))
        else:
            words = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=block.count, max_size=block.count))
        want = [decode_point(p, words, block.address) for p in block.points]
        decoder = BlockDecoder(block)
        assert decoder.compiled  # every map the loader accepts takes the fast path
        assert same(decoder.decode(words), want), (block, words)
        # the readings the poller gets: one per point, GOOD with the value or BAD with the reason
        readings = decoder.readings(words, T, "s1")
        expected = [Reading(ts=T, site="s1", asset=p.asset, signal=p.signal, value=v,
                            quality=Quality.BAD if why else Quality.GOOD, reason=why)
                    for p, (v, why) in zip(block.points, want, strict=True)]
        assert readings == expected
        # the generated all-GOOD function: the same readings, and it declines exactly when a point is BAD
        compiled = decoder._good
        assert compiled is not None
        got = compiled(words, T, "s1")
        assert (got is None) == any(why for _, why in want)
        assert got is None or got == expected
        assert same([(r.value, r.reason) for r in readings], want)


@settings(max_examples=200, deadline=None)
@given(block_points(), st.data())
def test_block_decoder_falls_back_exactly_on_short_or_garbage_answers(points: list[ModbusPoint],
                                                                      data: st.DataObject) -> None:
    block = plan_blocks(points, max_gap=3)[0]
    n = data.draw(st.integers(0, block.count), label="words")  # a short answer (or exactly full)
    words: list[Any] = data.draw(st.lists(st.integers(-2, 0x1FFFF), min_size=n, max_size=n))  # may overflow
    want = [decode_point(p, words, block.address) for p in block.points]
    assert same(BlockDecoder(block).decode(words), want)
    assert same([(r.value, r.reason) for r in BlockDecoder(block).readings(words, T, "s1")], want)


@pytest.mark.parametrize("order", list(ByteOrder))
@pytest.mark.parametrize("typ", list(VALUES))
def test_block_decoder_golden_vectors_every_type_and_byte_order(typ: DataType, order: ByteOrder) -> None:
    # every golden value of the type side by side in one block, after a UINT16 marker at address 0
    marker = ModbusPoint(asset="A", signal="m", kind=RegisterKind.INPUT, address=0, type=DataType.UINT16)
    points, words = [marker], [0xBEEF]
    for i, v in enumerate(VALUES[typ]):
        regs = golden(FMT[typ], v, order)
        points.append(ModbusPoint(asset="A", signal=f"v{i}", kind=RegisterKind.INPUT, address=len(words),
                                  type=typ, byte_order=order))
        words.extend(regs)
    (block,) = plan_blocks(points, max_gap=0)
    decoder = BlockDecoder(block)
    assert decoder.compiled
    got = decoder.decode(words)
    assert got[0] == (0xBEEF, "")
    for (value, why), v in zip(got[1:], VALUES[typ], strict=True):
        if typ is DataType.FLOAT32:
            v = struct.unpack(">f", struct.pack(">f", v))[0]  # float32 rounding
        assert why == "" and value == v and type(value) is type(v)


@pytest.mark.parametrize("order", list(ByteOrder))
def test_block_decoder_nan_scale_enum_bits_and_strings(order: ByteOrder) -> None:
    def at(address: int, typ: DataType, **kw: Any) -> ModbusPoint:
        return ModbusPoint(asset="A", signal=f"s{address}.{kw.get('bit', '')}", kind=RegisterKind.HOLDING,
                           address=address, type=typ, byte_order=order, **kw)

    points = [at(0, DataType.FLOAT32), at(2, DataType.INT16, scale=0.1, offset=-50.0),
              at(3, DataType.UINT16, enum=FrozenDict({2: "running"})),
              at(4, DataType.UINT16, enum=FrozenDict({2: "x"})),
              at(5, DataType.BIT, bit=0), at(5, DataType.BIT, bit=15), at(6, DataType.STRING, length=2)]
    text = struct.unpack(">2H", b"AB1\x00")
    if order.byte_swap:
        text = tuple(((w & 0xFF) << 8) | (w >> 8) for w in text)
    if order.word_swap:
        text = text[::-1]
    minus125 = struct.unpack(">H", struct.pack(">h", -125))[0]
    swap = (lambda w: ((w & 0xFF) << 8) | (w >> 8)) if order.byte_swap else (lambda w: w)
    words = [*golden("f", math.nan, order), swap(minus125), swap(2), swap(7), 0x8001, *text]
    (block,) = plan_blocks(points)
    assert BlockDecoder(block).decode(words) == [
        (None, "not a number (nan)"), (-62.5, ""), ("running", ""),
        (None, "code 7 not in the point's enum map"),
        (True, ""), (True, ""), ("AB1", "")]


def test_a_map_the_loader_refuses_still_decodes_point_by_point() -> None:
    # an INT32 given 3 registers: not compiled, and the per-point decoder's reason comes through
    p = ModbusPoint(asset="A", signal="s", kind=RegisterKind.HOLDING, address=0, type=DataType.INT32,
                    length=3)
    decoder = BlockDecoder(plan_blocks([p])[0])
    assert not decoder.compiled
    assert decoder.decode([1, 2, 3]) == [(None, "cannot decode INT32: INT32 needs 2 registers (got 3)")]
    # a scale so small that 1/scale overflows: per point too (decode_point says why)
    tiny = ModbusPoint(asset="A", signal="s", kind=RegisterKind.HOLDING, address=0, type=DataType.INT16,
                       scale=5e-324)
    decoder = BlockDecoder(plan_blocks([tiny])[0])
    assert not decoder.compiled
    assert decoder.decode([7]) == [decode_point(tiny, [7])]
