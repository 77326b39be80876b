"""The Modbus part of the plant configuration: register maps and devices, and their cross-checks.

Shapes are checked by the pydantic models in layers (a point, a map, a device), with one table,
``TYPE_OPTIONS``, saying which options each data type allows, so a wrong option is reported on
its own key. ``convert_modbus`` then checks what needs the rest of the fleet (sites, machines,
SKUs, signals) and the device as a whole (address base and offsets, overlaps, duplicates), and
appends every problem with the path of the bad key instead of raising.

TOML shape (familiar to anyone who wrote a Telegraf Modbus map)::

    [[sources.register_maps]]
    id = "fdm-printer"
    points = [
      { signal = "status", kind = "holding", address = 0, type = "UINT16" },
      { signal = "good_count", kind = "holding", address = 1, type = "UINT32", byte_order = "CDAB" },
      { signal = "nozzle_temp_c", kind = "input", address = 0, type = "INT16", scale = 0.1, unit = "degC" },
    ]

    [[sources.modbus]]
    id = "berlin-cell-1"
    site = "pod-berlin"
    host = "127.0.0.1"
    port = 15020
    device_id = 1
    address_base = 0
    assets = [ { asset = "P1", map = "fdm-printer", offset = 0 },
               { asset = "P2", map = "fdm-printer", offset = 100 } ]
    points = [ { asset = "PLA-1KG", signal = "on_hand", kind = "holding", address = 900, type = "FLOAT32" } ]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from connectors.config.signals import asset_signals, check_signal
from connectors.modbus.points import MAX_BITS, MAX_REGISTERS
from connectors.modbus.spec import (
    TELEGRAF_BYTE_ORDERS,
    TELEGRAF_FIXED,
    TELEGRAF_TYPES,
    ByteOrder,
    DataType,
    ModbusDevice,
    ModbusPoint,
    RegisterKind,
)
from twin.errors import Problem
from twin.frozen import FrozenDict
from twin.spec import FleetSpec
from twin.validation import Id, Int, Num, fail

__all__ = [
    "TYPE_OPTIONS",
    "AssetMapModel",
    "DevicePointModel",
    "ModbusDeviceModel",
    "PointModel",
    "RegisterMapModel",
    "convert_modbus",
]


# Signals an inventory item (a SKU) can be fed are twin.live's INVENTORY_SIGNALS: stock on hand,
# quantity in transit, and the arrival time of the earliest shipment as Unix seconds UTC (0 when
# nothing is on its way).

_REGISTER_KINDS = ("holding", "input")
_BIT_KINDS = ("coil", "discrete")
_NUMERIC = ("byte_order", "scale", "offset", "enum")
# Which options each data type allows (besides signal, kind, address, type, unit), and in which tables.
TYPE_OPTIONS: dict[DataType, tuple[frozenset[str], tuple[str, ...]]] = {
    DataType.BOOL: (frozenset(), _BIT_KINDS),
    DataType.BIT: (frozenset({"bit"}), _REGISTER_KINDS),
    DataType.INT16: (frozenset({*_NUMERIC, "length"}), _REGISTER_KINDS),
    DataType.UINT16: (frozenset({*_NUMERIC, "length"}), _REGISTER_KINDS),
    DataType.INT32: (frozenset({*_NUMERIC, "length"}), _REGISTER_KINDS),
    DataType.UINT32: (frozenset({*_NUMERIC, "length"}), _REGISTER_KINDS),
    DataType.INT64: (frozenset({*_NUMERIC, "length"}), _REGISTER_KINDS),
    DataType.UINT64: (frozenset({*_NUMERIC, "length"}), _REGISTER_KINDS),
    DataType.FLOAT32: (frozenset({"byte_order", "scale", "offset", "length"}), _REGISTER_KINDS),
    DataType.FLOAT64: (frozenset({"byte_order", "scale", "offset", "length"}), _REGISTER_KINDS),
    DataType.STRING: (frozenset({"length", "byte_order"}), _REGISTER_KINDS),
}
_STRING_ORDERS = (ByteOrder.ABCD, ByteOrder.BADC)  # a string is a run of words: no word swap
# The raw values an integer point can hold: an enum code outside them is a typo that would never match.
_INT_RANGES: dict[DataType, tuple[int, int]] = {
    DataType.INT16: (-(2**15), 2**15 - 1), DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1), DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1), DataType.UINT64: (0, 2**64 - 1),
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, str_strip_whitespace=True)


def _allowed(info: ValidationInfo, option: str) -> DataType | None:
    """The point's type when ``option`` is allowed with it; raises if it is not."""
    typ = info.data.get("type")
    if not isinstance(typ, DataType):
        return None  # the type itself was invalid: reported on its own key
    if option not in TYPE_OPTIONS[typ][0]:
        raise ValueError(f"option '{option}' does not apply to type {typ.value}")
    return typ


class PointModel(_Model):
    """One point of a register map. ``address`` is in the device's numbering (see ``address_base``)."""

    signal: Id
    kind: Literal["coil", "discrete", "holding", "input"]
    address: Int = Field(ge=0, le=65536)
    type: DataType
    bit: Int | None = Field(default=None, ge=0, le=15, validate_default=True)
    length: Int | None = Field(default=None, ge=1, le=MAX_REGISTERS, validate_default=True)
    byte_order: ByteOrder | None = None
    scale: Num | None = None
    offset: Num | None = None
    unit: str = ""
    enum: dict[int, Annotated[str, Field(min_length=1)]] | None = None

    @model_validator(mode="before")
    @classmethod
    def _telegraf_names(cls, data: Any) -> Any:
        """Telegraf's type and byte-order names as written (``FLOAT32-IEEE``, ``AB``, ``GHEFCDAB``, ``UFIXED``...).

        A two- or eight-letter byte order names the value's size, so it must match the type's; FIXED
        and UFIXED (Telegraf's scaled integers) are the signed or unsigned integer of that size.
        """
        if not isinstance(data, dict):
            return data
        typ, order = data.get("type"), data.get("byte_order")
        size = None
        if isinstance(order, str) and order in TELEGRAF_BYTE_ORDERS:
            canonical, size = TELEGRAF_BYTE_ORDERS[order]
            data = {**data, "byte_order": canonical.value}
        elif isinstance(order, str) and order in ByteOrder.__members__:
            size = 2
        if isinstance(typ, str) and typ in TELEGRAF_TYPES:
            data = {**data, "type": TELEGRAF_TYPES[typ].value}
        elif typ in ("FIXED", "UFIXED"):
            if size is None:
                raise fail(f"{typ} (Telegraf's scaled integer) takes its size from byte_order: AB or BA for "
                           "16 bits, ABCD... for 32, ABCDEFGH... for 64", typ, key="type")
            data = {**data, "type": TELEGRAF_FIXED[(typ, size)].value}
        elif isinstance(order, str) and order in TELEGRAF_BYTE_ORDERS and isinstance(typ, str):
            registers = DataType[typ].registers if typ in DataType.__members__ else None
            if registers is not None and registers not in (0, size):  # 0: a STRING, read word by word
                raise fail(f"byte order {order} names a {16 * (size or 0)}-bit value, and {typ} is "
                           f"{16 * registers}-bit", order, key="byte_order")
        return data

    @field_validator("type")
    @classmethod
    def _type_in_table(cls, v: DataType, info: ValidationInfo) -> DataType:
        kind = info.data.get("kind")
        tables = TYPE_OPTIONS[v][1]
        if kind is not None and kind not in tables:
            raise ValueError(f"type {v.value} is read from {' or '.join(tables)} tables, not '{kind}'")
        return v

    @field_validator("bit")
    @classmethod
    def _bit(cls, v: int | None, info: ValidationInfo) -> int | None:
        if v is None:
            if info.data.get("type") is DataType.BIT:
                raise ValueError("type BIT needs 'bit' (0 = least significant bit)")
            return v
        _allowed(info, "bit")
        return v

    @field_validator("length")
    @classmethod
    def _length(cls, v: int | None, info: ValidationInfo) -> int | None:
        typ = info.data.get("type")
        if v is None:
            if typ is DataType.STRING:
                raise ValueError("type STRING needs 'length' (registers, two characters each)")
            return v
        typ = _allowed(info, "length")
        if typ is not None and typ is not DataType.STRING and v != typ.registers:
            raise ValueError(f"type {typ.value} occupies {typ.registers} register(s), length {v} does not match")
        return v

    @field_validator("byte_order")
    @classmethod
    def _byte_order(cls, v: ByteOrder | None, info: ValidationInfo) -> ByteOrder | None:
        if v is None:
            return v
        typ = _allowed(info, "byte_order")
        if typ is DataType.STRING and v not in _STRING_ORDERS:
            raise ValueError("a STRING is read word by word: byte_order must be ABCD or BADC")
        return v

    @field_validator("scale")
    @classmethod
    def _scale(cls, v: float | None, info: ValidationInfo) -> float | None:
        if v is None:
            return v
        _allowed(info, "scale")
        if v == 0:
            raise ValueError("scale must not be 0")
        return v

    @field_validator("offset")
    @classmethod
    def _offset(cls, v: float | None, info: ValidationInfo) -> float | None:
        if v is not None:
            _allowed(info, "offset")
        return v

    @field_validator("enum")
    @classmethod
    def _enum(cls, v: dict[int, str] | None, info: ValidationInfo) -> dict[int, str] | None:
        if v is None:
            return v
        _allowed(info, "enum")
        if info.data.get("scale") is not None or info.data.get("offset") is not None:
            raise ValueError("an enum map reads raw codes: it cannot be combined with scale or offset")
        if not v:
            raise ValueError("an enum map needs at least one code")
        typ = info.data.get("type")
        if isinstance(typ, DataType) and typ in _INT_RANGES:
            lo, hi = _INT_RANGES[typ]
            outside = sorted(code for code in v if not lo <= code <= hi)
            if outside:
                raise ValueError(f"enum code(s) {', '.join(map(str, outside))} can never be read from a "
                                 f"{typ.value} point (its range is {lo}..{hi})")
        return v

    def count(self) -> int:
        """Registers (or bits) the point occupies."""
        if self.kind in _BIT_KINDS:
            return 1
        return self.length or self.type.registers


class DevicePointModel(PointModel):
    """A point given directly on a device, for one asset (a machine id or an inventory SKU)."""

    asset: Id


class RegisterMapModel(_Model):
    """``[[sources.register_maps]]``: a reusable register map, applied to assets at an offset."""

    id: Id
    description: str = ""
    points: list[PointModel] = Field(min_length=1)


class AssetMapModel(_Model):
    """One asset served by a device through a register map, shifted by ``offset`` addresses."""

    asset: Id
    map: Id
    offset: Int = Field(default=0, ge=0, le=65535)


class ModbusDeviceModel(_Model):
    """``[[sources.modbus]]``: one Modbus TCP device (a PLC, or a unit id behind a gateway)."""

    id: Id
    site: Id
    host: str = Field(default="127.0.0.1", min_length=1)
    port: Int = Field(default=502, ge=1, le=65535)
    device_id: Int = Field(default=1, ge=0, le=255)
    address_base: Literal[0, 1]
    byte_order: ByteOrder = ByteOrder.ABCD
    timeout_s: Num = Field(default=1.0, gt=0, le=60)
    poll_interval_s: Num = Field(default=1.0, ge=0.01, le=3600)
    max_registers_per_request: Int = Field(default=MAX_REGISTERS, ge=1, le=MAX_REGISTERS)
    max_bits_per_request: Int = Field(default=MAX_BITS, ge=1, le=MAX_BITS)
    max_gap: Int = Field(default=10, ge=0, le=MAX_REGISTERS)
    pause_s: Num = Field(default=0.0, ge=0, le=10)
    bad_after_s: Num = Field(default=10.0, gt=0, le=86400)
    reconnect_min_s: Num = Field(default=0.2, gt=0, le=60)
    reconnect_max_s: Num = Field(default=30.0, gt=0, le=3600)
    assets: list[AssetMapModel] = Field(default_factory=list)
    points: list[DevicePointModel] = Field(default_factory=list)

    @field_validator("points")
    @classmethod
    def _some_points(cls, v: list[DevicePointModel], info: ValidationInfo) -> list[DevicePointModel]:
        if not v and not info.data.get("assets"):
            raise ValueError("a device needs assets (register maps) or points")
        return v


class _SourcesLike(Protocol):
    @property
    def register_maps(self) -> Sequence[RegisterMapModel]: ...

    @property
    def modbus(self) -> Sequence[ModbusDeviceModel]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class _Placed:
    """A point placed on a device, with the config path to blame for it."""

    point: ModbusPoint
    path: str  # the key to report (map reference or explicit point)
    label: str  # how to name it in a message


def _signals_of(fleet: FleetSpec, site: str, asset: str) -> tuple[str, ...] | None:
    return asset_signals(fleet.site(site), asset)


def _make_point(p: PointModel, asset: str, address: int, default_order: ByteOrder) -> ModbusPoint:
    return ModbusPoint(
        asset=asset, signal=p.signal, kind=RegisterKind(p.kind), address=address, type=p.type,
        byte_order=p.byte_order or (default_order if not (p.type is DataType.STRING
                                                           and default_order not in _STRING_ORDERS)
                                    else ByteOrder.ABCD),
        bit=p.bit, length=p.length or 0,
        scale=1.0 if p.scale is None else p.scale, offset=0.0 if p.offset is None else p.offset,
        unit=p.unit, enum=FrozenDict(p.enum or {}),
    )


def _check_map(m: RegisterMapModel, path: str, problems: list[Problem]) -> None:
    """Overlaps and range inside one map (before any offset)."""
    seen: dict[str, int] = {}
    for k, p in enumerate(m.points):
        if p.signal in seen:
            problems.append(Problem(path=f"{path}.points[{k}].signal",
                                    message=f"signal already mapped by points[{seen[p.signal]}]", got=p.signal))
        seen.setdefault(p.signal, k)
        if p.address + p.count() - 1 > 65535:
            problems.append(Problem(path=f"{path}.points[{k}].address",
                                    message=f"point ends past address 65535 ({p.count()} registers)", got=p.address))
    for k, j, what in _overlaps([(p.kind, p.address, p.count(), p.bit) for p in m.points]):
        problems.append(Problem(path=f"{path}.points[{k}].address",
                                message=f"overlaps points[{j}] ({what})", got=m.points[k].address))


def _overlaps(spans: Sequence[tuple[str, int, int, int | None]]) -> list[tuple[int, int, str]]:
    """(later index, earlier index, description) for each pair of overlapping spans.

    Two BIT points of one register overlap only when they name the same bit.
    """
    order = sorted(range(len(spans)), key=lambda i: (spans[i][0], spans[i][1]))
    found: list[tuple[int, int, str]] = []
    active: list[int] = []
    for i in order:
        kind, addr, count, bit = spans[i]
        active = [j for j in active if spans[j][0] == kind and spans[j][1] + spans[j][2] > addr]
        for j in active:
            bj = spans[j][3]
            if bit is not None and bj is not None and spans[j][2] == 1 and count == 1 and bit != bj:
                continue
            a, b = sorted((i, j))
            found.append((b, a, f"{kind} {addr}..{addr + count - 1}"))
        active.append(i)
    return found


def convert_modbus(sources: _SourcesLike, fleet: FleetSpec, problems: list[Problem]) -> tuple[ModbusDevice, ...]:
    """Build the devices of ``[sources]``, appending every cross-reference problem to ``problems``.

    Devices with problems are still returned as far as they could be built; the caller raises
    one ``ConfigError`` when ``problems`` is not empty.
    """
    maps: dict[str, RegisterMapModel] = {}
    for i, m in enumerate(sources.register_maps):
        path = f"sources.register_maps[{i}]"
        if m.id in maps:
            problems.append(Problem(path=f"{path}.id", message="duplicate register map id", got=m.id))
        maps.setdefault(m.id, m)
        _check_map(m, path, problems)
    site_ids = {s.id for s in fleet.sites}
    seen_ids: set[str] = set()
    seen_ports: dict[tuple[str, int, int], str] = {}
    fed: dict[tuple[str, str, str], str] = {}  # (site, asset, signal) -> path that feeds it
    devices: list[ModbusDevice] = []
    for i, d in enumerate(sources.modbus):
        dpath = f"sources.modbus[{i}]"
        if d.id in seen_ids:
            problems.append(Problem(path=f"{dpath}.id", message="duplicate device id", got=d.id))
        seen_ids.add(d.id)
        endpoint = (d.host, d.port, d.device_id)
        if endpoint in seen_ports:
            problems.append(Problem(path=f"{dpath}.port", message=f"device {seen_ports[endpoint]} already "
                                    f"uses {d.host}:{d.port} with device_id {d.device_id}", got=d.port))
        seen_ports.setdefault(endpoint, d.id)
        if d.reconnect_max_s < d.reconnect_min_s:
            problems.append(Problem(path=f"{dpath}.reconnect_max_s", message="below reconnect_min_s",
                                    got=d.reconnect_max_s))
        if d.site not in site_ids:
            problems.append(Problem(path=f"{dpath}.site", message="no site with this id", got=d.site))
            continue
        placed = _place_points(d, dpath, maps, fleet, problems)
        _check_device_points(d, dpath, placed, problems)
        for pl in placed:
            key = (d.site, pl.point.asset, pl.point.signal)
            if key in fed:
                problems.append(Problem(path=pl.path, message=f"{pl.label}: {pl.point.asset}.{pl.point.signal} "
                                        f"is already fed by {fed[key]}", got=pl.point.signal))
            fed.setdefault(key, pl.path)
        devices.append(ModbusDevice(
            id=d.id, site=d.site, host=d.host, port=d.port, device_id=d.device_id,
            points=tuple(pl.point for pl in placed), timeout_s=d.timeout_s, poll_interval_s=d.poll_interval_s,
            address_base=d.address_base, byte_order=d.byte_order,
            max_registers_per_request=d.max_registers_per_request, max_bits_per_request=d.max_bits_per_request,
            max_gap=d.max_gap, pause_s=d.pause_s, bad_after_s=d.bad_after_s,
            reconnect_min_s=d.reconnect_min_s, reconnect_max_s=d.reconnect_max_s,
        ))
    return tuple(devices)


def _place_points(d: ModbusDeviceModel, dpath: str, maps: dict[str, RegisterMapModel], fleet: FleetSpec,
                  problems: list[Problem]) -> list[_Placed]:
    placed: list[_Placed] = []
    for j, ref in enumerate(d.assets):
        apath = f"{dpath}.assets[{j}]"
        signals = _signals_of(fleet, d.site, ref.asset)
        if signals is None:
            problems.append(Problem(path=f"{apath}.asset", message=f"no machine or SKU with this id at site "
                                    f"'{d.site}'", got=ref.asset))
            continue
        m = maps.get(ref.map)
        if m is None:
            problems.append(Problem(path=f"{apath}.map", message="no register map with this id", got=ref.map))
            continue
        for k, p in enumerate(m.points):
            if p.signal not in signals:
                problems.append(Problem(path=f"{apath}.map", message=f"points[{k}] of map '{m.id}' feeds "
                                        f"'{p.signal}', not a signal of {ref.asset} (it has {', '.join(signals)})",
                                        got=ref.map))
                continue
            placed.append(_Placed(point=_make_point(p, ref.asset, p.address + ref.offset - d.address_base,
                                                    d.byte_order),
                                  path=f"{apath}.offset", label=f"points[{k}] of map '{m.id}'"))
    for k, dp in enumerate(d.points):
        ppath = f"{dpath}.points[{k}]"
        if not check_signal(fleet.site(d.site), dp.asset, dp.signal, ppath, problems):
            continue
        placed.append(_Placed(point=_make_point(dp, dp.asset, dp.address - d.address_base, d.byte_order),
                              path=f"{ppath}.address", label=f"points[{k}]"))
    return placed


def _check_device_points(d: ModbusDeviceModel, dpath: str, placed: list[_Placed], problems: list[Problem]) -> None:
    ok: list[_Placed] = []
    for pl in placed:
        p = pl.point
        if p.address < 0 or p.end - 1 > 65535:
            shown = p.address + d.address_base
            problems.append(Problem(path=pl.path, message=f"{pl.label}: {p.asset}.{p.signal} at {p.kind.value} "
                                    f"{shown}..{shown + p.count - 1} is outside addresses "
                                    f"{d.address_base}..{65535 + d.address_base} (address_base {d.address_base})",
                                    got=shown))
            continue
        limit = d.max_bits_per_request if p.kind.is_bit else d.max_registers_per_request
        if p.count > limit:
            problems.append(Problem(path=pl.path, message=f"{pl.label}: {p.count} registers exceed "
                                    f"max_registers_per_request ({limit})", got=p.count))
            continue
        ok.append(pl)
    spans = [(pl.point.kind.value, pl.point.address, pl.point.count,
              pl.point.bit if pl.point.type is DataType.BIT else None) for pl in ok]
    reported: set[tuple[str, int]] = set()
    for k, j, what in _overlaps(spans):
        a, b = ok[k], ok[j]
        if a.point.asset == b.point.asset and a.path == b.path:
            continue  # inside one map: already reported on the map itself
        if (a.path, j) in reported:
            continue
        reported.add((a.path, j))
        problems.append(Problem(path=a.path, message=f"{a.label} ({a.point.asset}.{a.point.signal}) overlaps "
                                f"{b.label} ({b.point.asset}.{b.point.signal}) at {what} (protocol addresses)",
                                got=a.point.address + d.address_base))

