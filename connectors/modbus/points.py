"""Pure Modbus data handling: decode and encode point values, and plan block reads.

No I/O here: the poller, the emulator and the tests all use these functions, so what the
emulator writes is exactly what the poller reads back.

>>> p = ModbusPoint(asset="P1", signal="t", kind=RegisterKind.INPUT, address=0, type=DataType.INT16,
...                 scale=0.1)
>>> encode_point(p, -12.5)
[65411]
>>> decode_point(p, [65411])
(-12.5, '')
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from connectors.modbus.spec import ByteOrder, DataType, ModbusPoint, RegisterKind
from twin.readings import Quality, Reading, Value

__all__ = [
    "MAX_BITS",
    "MAX_REGISTERS",
    "Block",
    "BlockDecoder",
    "decode_point",
    "decode_raw",
    "encode_point",
    "encode_raw",
    "plan_blocks",
]

MAX_REGISTERS = 125  # most registers one read (function 3/4) may return
MAX_BITS = 2000  # most coils/discrete inputs one read (function 1/2) may return

_FORMATS = {
    DataType.INT16: "h", DataType.UINT16: "H", DataType.INT32: "i", DataType.UINT32: "I",
    DataType.INT64: "q", DataType.UINT64: "Q", DataType.FLOAT32: "f", DataType.FLOAT64: "d",
}
_FLOATS = (DataType.FLOAT32, DataType.FLOAT64)
_STRUCTS = {t: struct.Struct(">" + f) for t, f in _FORMATS.items()}


def _words_to_bytes(words: Sequence[int], order: ByteOrder) -> bytes:
    if order.word_swap:
        words = words[::-1]
    raw = bytearray(struct.pack(f">{len(words)}H", *words))
    if order.byte_swap:
        raw[0::2], raw[1::2] = raw[1::2], raw[0::2]
    return bytes(raw)


def _bytes_to_words(raw: bytes, order: ByteOrder) -> list[int]:
    buf = bytearray(raw)
    if order.byte_swap:
        buf[0::2], buf[1::2] = buf[1::2], buf[0::2]
    words = list(struct.unpack(f">{len(buf) // 2}H", buf))
    if order.word_swap:
        words.reverse()
    return words


def decode_raw(
    type_: DataType, order: ByteOrder, words: Sequence[int], bit: int | None = None
) -> int | float | str | bool:
    """The raw value of ``words`` (registers, or one bit for BOOL), before scale and offset."""
    if type_ is DataType.BOOL:
        return bool(words[0])
    if type_ is DataType.BIT:
        return bool((words[0] >> (bit or 0)) & 1)
    if type_ is DataType.STRING:
        text = _words_to_bytes(words, order).decode("latin-1")
        return text.rstrip("\x00 ")
    s = _STRUCTS[type_]
    n = s.size // 2
    if len(words) != n:
        raise ValueError(f"{type_.value} needs {n} registers (got {len(words)})")
    if n == 1:  # one register: only the byte swap matters
        w = words[0]
        if order.byte_swap:
            w = ((w & 0xFF) << 8) | (w >> 8)
        return w - 0x10000 if type_ is DataType.INT16 and w & 0x8000 else w
    value: int | float = s.unpack(_words_to_bytes(words, order))[0]
    return value


def encode_raw(
    type_: DataType, order: ByteOrder, value: int | float | str | bool, length: int = 0
) -> list[int]:
    """The registers holding raw ``value`` (the inverse of :func:`decode_raw`; BIT sets one bit)."""
    if type_ in (DataType.BOOL, DataType.BIT):
        return [1 if value else 0]
    if type_ is DataType.STRING:
        raw = str(value).encode("latin-1")
        if len(raw) > 2 * length:
            raise ValueError(f"string {value!r} longer than {2 * length} characters")
        return _bytes_to_words(raw.ljust(2 * length, b"\x00"), order)
    s = _STRUCTS[type_]
    packed = s.pack(float(value) if type_ in _FLOATS else int(value))
    return _bytes_to_words(packed, order)


def decode_point(point: ModbusPoint, words: Sequence[int] | Sequence[bool], start: int = 0) -> tuple[Value, str]:
    """Decode ``point`` from ``words`` (registers or bits of a block read starting at ``start``).

    Returns ``(value, "")``, or ``(None, reason)`` when the raw value cannot be trusted (NaN or
    infinite float, a value that overflows once scaled, a code outside the point's enum map, too few
    registers). It never raises: whatever a device sends becomes a value or a reason.
    """
    i = point.address - start
    if i < 0 or i + point.count > len(words):
        return None, (f"short answer: {len(words)} registers from {start} do not cover "
                      f"{point.address}..{point.end - 1}")
    try:
        return _decode(point, words, i)
    except (ValueError, TypeError, OverflowError, struct.error) as exc:  # e.g. a word outside 0..65535
        return None, f"cannot decode {point.type.value}: {exc}"


def _decode(point: ModbusPoint, words: Sequence[int] | Sequence[bool], i: int) -> tuple[Value, str]:
    typ = point.type
    if point.kind.is_bit:
        return bool(words[i]), ""
    if typ is DataType.BIT:
        return bool((int(words[i]) >> (point.bit or 0)) & 1), ""
    raw = decode_raw(typ, point.byte_order, [int(w) for w in words[i : i + point.count]])
    if isinstance(raw, str):
        return raw, ""
    if typ in _FLOATS and not math.isfinite(raw):
        return None, f"not a number ({raw})"
    if point.enum:
        label = point.enum.get(int(raw))
        if label is None:
            return None, f"code {raw} not in the point's enum map"
        return label, ""
    scale = point.scale
    if scale != 1.0 or point.offset != 0.0:
        inv = 1.0 / scale
        # scale 0.1, 0.01...: divide, so 113 * 0.01 reads 1.13, not 1.1300000000000001
        value = raw / round(inv) + point.offset if inv == round(inv) else raw * scale + point.offset
        if not math.isfinite(value):
            return None, f"out of range: {raw!r} x {scale:g} + {point.offset:g} overflows"
        return value, ""
    return raw, ""


def encode_point(point: ModbusPoint, value: Value) -> list[int]:
    """Registers (or the one bit, as 0/1) that make ``point`` decode to ``value``.

    Integer types round ``(value - offset) / scale`` and refuse values that do not fit.
    """
    if value is None:
        raise ValueError(f"{point.asset}.{point.signal}: cannot encode None")
    typ = point.type
    if point.kind.is_bit or typ in (DataType.BOOL, DataType.BIT):
        return [1 if value else 0]
    if typ is DataType.STRING:
        return encode_raw(typ, point.byte_order, str(value), point.count)
    if point.enum and isinstance(value, str):
        codes = [c for c, label in point.enum.items() if label == value]
        if not codes:
            raise ValueError(f"{point.asset}.{point.signal}: {value!r} is not in the enum map")
        value = codes[0]
    if isinstance(value, str):
        raise ValueError(f"{point.asset}.{point.signal}: {typ.value} cannot hold {value!r}")
    if not isinstance(value, bool) and isinstance(value, int) and point.scale == 1.0 and point.offset == 0.0:
        raw: float = value  # exact: a 64-bit count must not pass through a float (2**53 + 1 would lose its 1)
    else:
        raw = (float(value) - point.offset) / point.scale
    if typ in _FLOATS:
        return encode_raw(typ, point.byte_order, raw)
    if not math.isfinite(raw):
        raise ValueError(f"{point.asset}.{point.signal}: {value!r} does not fit {typ.value}")
    as_int = round(raw)
    try:
        return encode_raw(typ, point.byte_order, as_int)
    except struct.error as exc:
        raise ValueError(f"{point.asset}.{point.signal}: {value!r} does not fit {typ.value}") from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class Block:
    """One read request: ``count`` registers (or bits) of ``kind`` from ``address``, serving ``points``."""

    kind: RegisterKind
    address: int
    count: int
    points: tuple[ModbusPoint, ...]


def plan_blocks(
    points: Iterable[ModbusPoint], *, max_registers: int = MAX_REGISTERS, max_bits: int = MAX_BITS,
    max_gap: int = 10,
) -> tuple[Block, ...]:
    """Coalesce points into as few reads as possible.

    Per register kind, points sorted by address join the current block while the block stays
    within ``max_registers`` (``max_bits`` for coils and discrete inputs) and the unused gap
    before the point is at most ``max_gap`` addresses. Points may share addresses (BIT points of
    one register). Blocks come out ordered by kind, then address.

    >>> mk = lambda a, t: ModbusPoint(asset="A", signal=f"s{a}", kind=RegisterKind.HOLDING, address=a, type=t)
    >>> [(b.address, b.count) for b in plan_blocks([mk(0, DataType.UINT16), mk(3, DataType.UINT32),
    ...                                            mk(200, DataType.INT16)], max_gap=5)]
    [(0, 5), (200, 1)]
    """
    by_kind: dict[RegisterKind, list[ModbusPoint]] = {}
    for p in points:
        by_kind.setdefault(p.kind, []).append(p)
    blocks: list[Block] = []
    for kind in RegisterKind:
        pts = sorted(by_kind.get(kind, ()), key=lambda p: (p.address, p.end))
        limit = max_bits if kind.is_bit else max_registers
        current: list[ModbusPoint] = []
        start = end = 0
        for p in pts:
            if p.count > limit:
                raise ValueError(f"{p.asset}.{p.signal} needs {p.count} registers, over the limit of {limit}")
            if current and p.address - end <= max_gap and max(end, p.end) - start <= limit:
                current.append(p)
                end = max(end, p.end)
                continue
            if current:
                blocks.append(Block(kind=kind, address=start, count=end - start, points=tuple(current)))
            current, start, end = [p], p.address, p.end
        if current:
            blocks.append(Block(kind=kind, address=start, count=end - start, points=tuple(current)))
    return tuple(blocks)


# ---------------------------------------------------------------------------------------------------
# Compiled block decoding: the poller's hot path

_tuple_new = tuple.__new__

_Post = Callable[[Any], tuple[Value, str]]
_Fast = tuple[list[Value], dict[int, str] | None]  # values of every point, reasons of the bad ones
_DECODE_ERRORS = (ValueError, TypeError, OverflowError, struct.error)


def _not_finite(raw: float) -> tuple[Value, str]:
    return None, f"not a number ({raw})"


def _float_check(raw: float) -> tuple[Value, str]:
    return (raw, "") if math.isfinite(raw) else (None, f"not a number ({raw})")


def _bit_of(bit: int) -> _Post:
    def post(raw: int) -> tuple[Value, str]:
        return bool((raw >> bit) & 1), ""
    return post


def _truthy(raw: int) -> tuple[Value, str]:
    return bool(raw), ""


def _text(raw: bytes) -> tuple[Value, str]:
    return raw.decode("latin-1").rstrip("\x00 "), ""


def _enum_of(labels: dict[int, str], is_float: bool) -> _Post:
    def post(raw: int | float) -> tuple[Value, str]:
        if is_float and not math.isfinite(raw):
            return _not_finite(raw)
        label = labels.get(int(raw))
        if label is None:
            return None, f"code {raw} not in the point's enum map"
        return label, ""
    return post


def _scaled(scale: float, offset: float, is_float: bool) -> _Post:
    inv = 1.0 / scale
    div = round(inv) if inv == round(inv) else 0  # scale 0.1, 0.01...: divide, as decode_point does

    def post(raw: int | float) -> tuple[Value, str]:
        if is_float and not math.isfinite(raw):
            return _not_finite(raw)
        value = raw / div + offset if div else raw * scale + offset
        if not math.isfinite(value):
            return None, f"out of range: {raw!r} x {scale:g} + {offset:g} overflows"
        return value, ""
    return post


def _layout(point: ModbusPoint, first: int) -> tuple[str, list[int], _Post | None] | None:
    """Struct format, byte positions (in the block's big-endian bytes) and post-step of one point.

    Word and byte swaps are byte permutations: the point's bytes are gathered into big-endian order
    (as ``_words_to_bytes`` arranges them), so every byte order decodes with one ``>`` format.
    None for a point the map should not allow (a length that does not fit its type, scale 0).
    """
    i = point.address - first
    typ, order = point.type, point.byte_order
    if typ is DataType.BIT:
        return "H", [2 * i, 2 * i + 1], _bit_of(point.bit or 0)
    if typ is DataType.BOOL:
        return "H", [2 * i, 2 * i + 1], _truthy
    n = point.count
    if typ is not DataType.STRING and n != typ.registers:
        return None
    if point.scale == 0.0 or not math.isfinite(point.scale) or not math.isfinite(1.0 / point.scale):
        return None
    words = range(i + n - 1, i - 1, -1) if order.word_swap else range(i, i + n)
    pos = [b for w in words for b in ((2 * w + 1, 2 * w) if order.byte_swap else (2 * w, 2 * w + 1))]
    if typ is DataType.STRING:
        return f"{2 * n}s", pos, _text
    is_float = typ in _FLOATS
    post: _Post | None = _float_check if is_float else None
    if point.enum:
        post = _enum_of(dict(point.enum), is_float)
    elif point.scale != 1.0 or point.offset != 0.0:
        post = _scaled(point.scale, point.offset, is_float)
    return _FORMATS[typ], pos, post


_Good = Callable[[Sequence[Any], datetime, str], "list[Reading] | None"]


def _good_steps(point: ModbusPoint, j: int, ns: dict[str, Any]) -> list[str]:
    """Source lines turning ``v{j}`` (as unpacked) into the point's value; ``return None`` if not GOOD.

    Line for line what ``_layout``'s post-step does, for the all-GOOD path of ``_compile_good``.
    """
    v, typ = f"v{j}", point.type
    if typ is DataType.BIT:
        return [f"{v} = bool(({v} >> {int(point.bit or 0)}) & 1)"]
    if typ is DataType.BOOL:
        return [f"{v} = bool({v})"]
    if typ is DataType.STRING:
        return [f"{v} = {v}.decode('latin-1').rstrip(_STRIP)"]
    lines = [f"if not isfinite({v}): return None"] if typ in _FLOATS else []
    if point.enum:
        ns[f"L{j}"] = dict(point.enum)
        return [*lines, f"{v} = L{j}.get(int({v}))", f"if {v} is None: return None"]
    if point.scale != 1.0 or point.offset != 0.0:
        inv = 1.0 / point.scale
        div = round(inv) if inv == round(inv) else 0  # as _scaled: scale 0.1, 0.01...: divide
        ns[f"S{j}"], ns[f"O{j}"], ns[f"D{j}"] = point.scale, point.offset, div
        step = f"{v} = {v} / D{j} + O{j}" if div else f"{v} = {v} * S{j} + O{j}"
        return [*lines, step, f"if not isfinite({v}): return None"]
    return lines


def _compile_good(block: Block, ns: dict[str, Any], *, unpacks: str | None) -> _Good:
    """One straight-line function for a block's answer when every point is GOOD (else it returns None).

    ``unpacks`` is the expression giving the block's values from ``words`` (None for bits). The
    function checks the answer's length, unpacks, applies each point's step and builds the readings
    as tuples, in one call: the poller's hot path, where each call and loop costs several times what
    it does in a tight loop (the interpreter's caches are cold after pymodbus's request).
    """
    ns.update(_new=_tuple_new, _R=Reading, _G=Quality.GOOD, _ERRORS=_DECODE_ERRORS, isfinite=math.isfinite,
              _STRIP="\x00 ")
    n = len(block.points)
    for j, p in enumerate(block.points):
        ns[f"a{j}"], ns[f"s{j}"] = p.asset, p.signal
    body: list[str] = []
    if unpacks is None:  # bits: coils and discrete inputs
        body.append(f"if len(words) < {block.count}: return None")
        values = [f"bool(words[{p.address - block.address}])" for p in block.points]
    else:
        body += [f"if len(words) != {block.count}: return None", "try:",
                 f"    ({', '.join(f'v{j}' for j in range(n))},) = {unpacks}"]
        for j, p in enumerate(block.points):
            body += [f"    {line}" for line in _good_steps(p, j, ns)]
        body += ["except _ERRORS:", "    return None"]
        values = [f"v{j}" for j in range(n)]
    items = ", ".join(f"_new(_R, (ts, site, a{j}, s{j}, {v}, _G, ''))" for j, v in enumerate(values))
    body.append(f"return [{items}]")
    source = "def good(words, ts, site):\n" + "".join(f"    {line}\n" for line in body)
    exec(compile(source, f"<BlockDecoder {block.kind.value} {block.address}+{block.count}>", "exec"), ns)
    good: _Good = ns["good"]
    return good


class BlockDecoder:
    """Decodes every point of one block at once: what ``decode_point`` gives for each, faster.

    Built once per block: one ``struct.Struct`` unpacks all the block's points in one call from the
    registers' bytes (word and byte swaps precompiled into one byte permutation); scale, offset,
    enum labels and NaN checks follow in a short loop over the points that need them. Anything
    unusual (a short answer, a word outside 0..65535) falls back to ``decode_point`` point by point,
    so the result is always exactly the per-point decoder's.

    >>> p = ModbusPoint(asset="P1", signal="t", kind=RegisterKind.INPUT, address=0, type=DataType.INT16,
    ...                 scale=0.1)
    >>> q = ModbusPoint(asset="P1", signal="n", kind=RegisterKind.INPUT, address=1, type=DataType.UINT32,
    ...                 byte_order=ByteOrder.CDAB)
    >>> BlockDecoder(plan_blocks([p, q])[0]).decode([65411, 2, 1])
    [(-12.5, ''), (65538, '')]
    """

    __slots__ = ("_bits", "_good", "_keys", "_pack", "_perm", "_post", "_unpack", "address", "count", "points")

    def __init__(self, block: Block) -> None:
        self.points = block.points
        self._keys = tuple((p.asset, p.signal) for p in block.points)
        self.address = block.address
        self.count = block.count
        self._bits: tuple[int, ...] | None = None
        self._pack: Callable[..., bytes] | None = None
        self._perm: Callable[[bytes], tuple[int, ...]] | None = None
        self._unpack: Callable[[bytes], tuple[Any, ...]] | None = None
        self._post: tuple[tuple[int, _Post], ...] = ()
        self._good: _Good | None = None  # the all-GOOD path in one call, when the block compiles
        if block.kind.is_bit:
            self._bits = tuple(p.address - block.address for p in block.points)
            self._good = _compile_good(block, {}, unpacks=None)
            return
        fmt, perm, post = [">"], [], []
        for j, p in enumerate(block.points):
            layout = _layout(p, block.address)
            if layout is None:
                return  # leave every point of the block to decode_point (and its reasons)
            code, pos, step = layout
            fmt.append(code)
            perm.extend(pos)
            if step is not None:
                post.append((j, step))
        self._pack = struct.Struct(f">{block.count}H").pack
        if perm != list(range(2 * block.count)):  # else the bytes are already in place
            self._perm = itemgetter(*perm)
        self._unpack = struct.Struct("".join(fmt)).unpack
        self._post = tuple(post)
        ns: dict[str, Any] = {"_pack": self._pack, "_perm": self._perm, "_unpack": self._unpack}
        unpacks = "_unpack(_pack(*words))" if self._perm is None else "_unpack(bytes(_perm(_pack(*words))))"
        self._good = _compile_good(block, ns, unpacks=unpacks)

    @property
    def compiled(self) -> bool:
        """Whether whole answers decode in one step (False: a map the loader refuses, point by point)."""
        return self._bits is not None or self._unpack is not None

    def _fast(self, words: Sequence[int] | Sequence[bool]) -> _Fast | None:
        """Values of every point and the reasons of the bad ones by index; None: use ``decode_point``."""
        bits = self._bits
        if bits is not None:
            if len(words) >= self.count:
                return [bool(words[i]) for i in bits], None
            return None
        unpack, pack, perm = self._unpack, self._pack, self._perm
        if unpack is None or pack is None or len(words) != self.count:
            return None
        try:
            raw = pack(*words)
            values: list[Value] = list(unpack(raw if perm is None else bytes(perm(raw))))
            reasons: dict[int, str] | None = None
            for j, step in self._post:
                value, why = step(values[j])
                values[j] = value
                if why:
                    if reasons is None:
                        reasons = {}
                    reasons[j] = why
        except _DECODE_ERRORS:
            return None  # e.g. a word outside 0..65535: the per-point decoder says which and why
        return values, reasons

    def decode(self, words: Sequence[int] | Sequence[bool]) -> list[tuple[Value, str]]:
        """``[decode_point(p, words, address) for p in points]``: (value, "") or (None, reason) per point."""
        fast = self._fast(words)
        if fast is None:
            start = self.address
            return [decode_point(p, words, start) for p in self.points]
        values, reasons = fast
        if reasons is None:
            return [(v, "") for v in values]
        return [(None, reasons[j]) if j in reasons else (v, "") for j, v in enumerate(values)]

    def readings(self, words: Sequence[int] | Sequence[bool], ts: datetime, site: str) -> list[Reading]:
        """One reading per point, sampled at ``ts``: GOOD with its value, or BAD with the reason.

        The poller's hot path: the same readings as building ``Reading(...)`` from :meth:`decode`.
        """
        compiled = self._good
        if compiled is not None and ts.tzinfo is UTC:
            out = compiled(words, ts, site)
            if out is not None:
                return out
        fast = self._fast(words)
        if fast is not None and fast[1] is None:
            return Reading.good_many(ts, site, self._keys, fast[0])
        new = Reading.new
        good, bad = Quality.GOOD, Quality.BAD
        return [new(ts, site, p.asset, p.signal, v, bad if why else good, why)
                for p, (v, why) in zip(self.points, self.decode(words), strict=True)]
