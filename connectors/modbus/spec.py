"""The Modbus side of the plant configuration as plain frozen data: devices, points, kinds, types.

Built once by ``connectors.config.modbus.convert_modbus`` from the validated TOML; read by the
block planner, the poller and the emulator. Addresses here are protocol addresses (0-based, after
the device's address base and the asset's offset have been applied).

>>> p = ModbusPoint(asset="P1", signal="good_count", kind=RegisterKind.HOLDING, address=1,
...                 type=DataType.UINT32, byte_order=ByteOrder.CDAB)
>>> p.count, p.end
(2, 3)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from twin.frozen import FrozenDict

__all__ = [
    "EXCEPTION_NAMES",
    "TELEGRAF_BYTE_ORDERS",
    "TELEGRAF_FIXED",
    "TELEGRAF_TYPES",
    "ByteOrder",
    "DataType",
    "ModbusDevice",
    "ModbusPoint",
    "RegisterKind",
    "exception_reason",
]


class RegisterKind(enum.Enum):
    """The four Modbus data tables. Coils and discrete inputs hold bits; the others 16-bit words."""

    COIL = "coil"
    DISCRETE = "discrete"
    HOLDING = "holding"
    INPUT = "input"

    @property
    def is_bit(self) -> bool:
        return self is RegisterKind.COIL or self is RegisterKind.DISCRETE


class DataType(enum.Enum):
    """How a point's registers (or bit) are interpreted."""

    BOOL = "BOOL"  # one coil or discrete input
    BIT = "BIT"  # one bit (0 = least significant) of a holding or input register
    INT16 = "INT16"
    UINT16 = "UINT16"
    INT32 = "INT32"
    UINT32 = "UINT32"
    INT64 = "INT64"
    UINT64 = "UINT64"
    FLOAT32 = "FLOAT32"
    FLOAT64 = "FLOAT64"
    STRING = "STRING"  # ``length`` registers, two ASCII characters each

    @property
    def registers(self) -> int:
        """Registers the type occupies (0 for STRING, whose length is given; 1 for BOOL/BIT)."""
        return _REGISTERS[self]


_REGISTERS = {
    DataType.BOOL: 1, DataType.BIT: 1, DataType.INT16: 1, DataType.UINT16: 1, DataType.INT32: 2,
    DataType.UINT32: 2, DataType.INT64: 4, DataType.UINT64: 4, DataType.FLOAT32: 2, DataType.FLOAT64: 4,
    DataType.STRING: 0,
}


class ByteOrder(enum.Enum):
    """Byte order of a multi-register value, named by where bytes A (most significant)..D land.

    ``ABCD`` big endian (Modbus default); ``CDAB`` word swap; ``BADC`` byte swap in each word;
    ``DCBA`` little endian. For 64-bit values the same rule extends to four words.
    """

    ABCD = "ABCD"
    CDAB = "CDAB"
    BADC = "BADC"
    DCBA = "DCBA"

    @property
    def word_swap(self) -> bool:
        return self in (ByteOrder.CDAB, ByteOrder.DCBA)

    @property
    def byte_swap(self) -> bool:
        return self in (ByteOrder.BADC, ByteOrder.DCBA)


# Telegraf's inputs.modbus names, accepted as written in a register map: its byte orders name every
# byte of the value, so a 16-bit value has two letters and a 64-bit one eight; each is one of ours
# (Telegraf's GHEFCDAB is word-reversed with big-endian words: our CDAB, which reverses all words).
TELEGRAF_BYTE_ORDERS: FrozenDict[str, tuple[ByteOrder, int]] = FrozenDict({
    "AB": (ByteOrder.ABCD, 1), "BA": (ByteOrder.BADC, 1),
    "ABCDEFGH": (ByteOrder.ABCD, 4), "HGFEDCBA": (ByteOrder.DCBA, 4),
    "BADCFEHG": (ByteOrder.BADC, 4), "GHEFCDAB": (ByteOrder.CDAB, 4),
})
# Telegraf's type names that are ours under another name; FIXED/UFIXED take their size from the byte order
TELEGRAF_TYPES: FrozenDict[str, DataType] = FrozenDict({
    "FLOAT32-IEEE": DataType.FLOAT32, "FLOAT64-IEEE": DataType.FLOAT64,
})
TELEGRAF_FIXED: FrozenDict[tuple[str, int], DataType] = FrozenDict({
    ("FIXED", 1): DataType.INT16, ("FIXED", 2): DataType.INT32, ("FIXED", 4): DataType.INT64,
    ("UFIXED", 1): DataType.UINT16, ("UFIXED", 2): DataType.UINT32, ("UFIXED", 4): DataType.UINT64,
})


EXCEPTION_NAMES: FrozenDict[int, str] = FrozenDict({
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    5: "acknowledge",
    6: "device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
})


def exception_reason(code: int) -> str:
    """The reason text of a Modbus exception response, e.g. ``exception 2: illegal data address``."""
    return f"exception {code}: {EXCEPTION_NAMES.get(code, 'unknown exception code')}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ModbusPoint:
    """One value read from a device: which asset/signal it feeds and how to decode it.

    ``length`` is the number of registers (or 1 bit for bit tables) the point occupies. The value
    is ``raw * scale + offset``; integers stay integers when scale is 1 and offset 0. ``enum``
    maps raw integer codes to labels (a code outside it reads as BAD).
    """

    asset: str
    signal: str
    kind: RegisterKind
    address: int
    type: DataType
    byte_order: ByteOrder = ByteOrder.ABCD
    bit: int | None = None
    length: int = 0  # 0: the type's natural size
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    enum: FrozenDict[int, str] = field(default_factory=FrozenDict)

    @property
    def count(self) -> int:
        """Registers (or bits) this point occupies."""
        if self.kind.is_bit:
            return 1
        return self.length or self.type.registers

    @property
    def end(self) -> int:
        """First address after this point."""
        return self.address + self.count


@dataclass(frozen=True, slots=True, kw_only=True)
class ModbusDevice:
    """One Modbus TCP device (a PLC, or one unit behind a gateway) and every point it serves.

    Timing: a poll every ``poll_interval_s``; each request times out after ``timeout_s``;
    ``pause_s`` between requests; after a lost connection its points read STALE, then BAD once
    the connection has been down for ``bad_after_s``; reconnects back off exponentially from
    ``reconnect_min_s`` to ``reconnect_max_s`` with jitter.
    """

    id: str
    site: str
    host: str
    port: int
    device_id: int
    points: tuple[ModbusPoint, ...]
    timeout_s: float = 1.0
    poll_interval_s: float = 1.0
    address_base: int = 0
    byte_order: ByteOrder = ByteOrder.ABCD
    max_registers_per_request: int = 125
    max_bits_per_request: int = 2000
    max_gap: int = 10
    pause_s: float = 0.0
    bad_after_s: float = 10.0
    reconnect_min_s: float = 0.2
    reconnect_max_s: float = 30.0

    @property
    def assets(self) -> tuple[str, ...]:
        """The assets this device serves, in order of first appearance."""
        return tuple(dict.fromkeys(p.asset for p in self.points))
