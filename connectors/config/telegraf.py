"""Telegraf's ``[[inputs.modbus]]`` sections as they are, turned into the plant file's Modbus sections.

One job: ``from_telegraf(text, source)`` reads a Telegraf configuration (TOML) and returns the
``[[sources.register_maps]]`` and ``[[sources.modbus]]`` tables it describes, plus one note per thing
it could not map (a serial line, an 8-bit type, a field spread over registers it does not own...),
each naming where in the file it is. Both of Telegraf's styles are read:

* the ``register`` style (``holding_registers = [{ name, byte_order, data_type, scale, address }]``,
  ``input_registers``, ``coils``, ``discrete_inputs``): one device, one map; the byte order's letters
  give the value's size (``AB`` 16 bits, ``ABCD`` 32, ``ABCDEFGH`` 64), so ``FIXED``/``UFIXED`` (and
  the deprecated ``FLOAT32``, Telegraf's unsigned fixed point) become the integer of that size with
  its ``scale``;
* the ``request`` style (``[[inputs.modbus.request]]`` with ``slave_id``, ``byte_order``,
  ``register``, ``fields = [{ address, name, type, scale, omit }]``): one map and one device per
  slave id (a gateway), ``omit`` fields left out, ``type = "FLOAT32"`` being IEEE here.

Telegraf addresses are protocol addresses, so the devices get ``address_base = 0``. The site and
the asset each device feeds are not in a Telegraf file: they come from the caller (``site``,
``asset``), and field names become signal names unless ``rename`` maps them (a machine's template
names its signals: ``twin check`` says which do not match).

>>> maps, devices, notes = from_telegraf('''
... [[inputs.modbus]]
...   name = "press"
...   controller = "tcp://10.0.0.5:502"
...   slave_id = 2
...   holding_registers = [
...     { name = "energy", byte_order = "ABCD", data_type = "UFIXED", scale = 0.001, address = [5, 6] },
...   ]
... ''', "telegraf.conf", site="pod-lyon", asset="P1")
>>> maps[0]["points"]
[{'signal': 'energy', 'kind': 'holding', 'address': 5, 'type': 'UINT32', 'byte_order': 'ABCD', 'scale': 0.001}]
>>> devices[0]["host"], devices[0]["port"], devices[0]["device_id"], devices[0]["assets"]
('10.0.0.5', 502, 2, [{'asset': 'P1', 'map': 'press'}])
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from connectors.modbus.spec import TELEGRAF_BYTE_ORDERS, ByteOrder, DataType
from twin.errors import ConfigError, Problem
from twin.tomltext import loads_toml

__all__ = ["Note", "from_telegraf"]

Table = dict[str, Any]  # a TOML table as tomli-w writes it

_ID = re.compile(r"[^A-Za-z0-9_.\-]+")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)\s*$")
_KINDS = {"holding_registers": "holding", "input_registers": "input", "coils": "coil", "discrete_inputs": "discrete"}
_REQUEST_KINDS = {"holding": "holding", "input": "input", "coil": "coil", "discrete": "discrete"}
_INTEGERS = {t.value: t for t in (DataType.INT16, DataType.UINT16, DataType.INT32, DataType.UINT32,
                                  DataType.INT64, DataType.UINT64)}
_SIGNED = {1: DataType.INT16, 2: DataType.INT32, 4: DataType.INT64}
_UNSIGNED = {1: DataType.UINT16, 2: DataType.UINT32, 4: DataType.UINT64}


@dataclass(frozen=True, slots=True)
class Note:
    """Something of the Telegraf file not mapped (or mapped with a caveat), and where it is."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def from_telegraf(text: str, source: str, *, site: str = "SITE", asset: str | None = None,
                  rename: dict[str, str] | None = None) -> tuple[list[Table], list[Table], list[Note]]:
    """The register maps, devices and notes of the ``[[inputs.modbus]]`` sections of ``text``.

    Raises ``ConfigError`` naming ``source`` when the text is not TOML or holds no Modbus input.
    ``asset`` defaults to each device's name.
    """
    doc = loads_toml(text, source)
    inputs = doc.get("inputs", {}) if isinstance(doc, dict) else {}
    sections = inputs.get("modbus") if isinstance(inputs, dict) else None
    if not isinstance(sections, list) or not sections:
        raise ConfigError(source, [Problem(path="inputs.modbus", message="no [[inputs.modbus]] section to import",
                                           has_got=False)])
    maps: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    notes: list[Note] = []
    used: set[str] = set()
    for i, section in enumerate(sections):
        path = f"inputs.modbus[{i}]"
        if not isinstance(section, dict):
            notes.append(Note(path, "not a table"))
            continue
        _import_section(section, path, site=site, asset=asset, rename=rename or {}, used=used,
                        maps=maps, devices=devices, notes=notes)
    return maps, devices, notes


def _import_section(section: dict[str, Any], path: str, *, site: str, asset: str | None, rename: dict[str, str],
                    used: set[str], maps: list[dict[str, Any]], devices: list[dict[str, Any]],
                    notes: list[Note]) -> None:
    name = _unique(_slug(str(section.get("name") or "device")), used)
    endpoint = _controller(section.get("controller"), f"{path}.controller", notes)
    if endpoint is None:
        return
    mode = str(section.get("transmission_mode", "TCP"))
    if mode.upper() not in ("TCP", "AUTO"):
        notes.append(Note(f"{path}.transmission_mode", f"{mode}: only Modbus TCP is read (the section is left out)"))
        return
    device: dict[str, Any] = {"host": endpoint[0], "port": endpoint[1], "address_base": 0}
    timeout = _seconds(section.get("timeout"), f"{path}.timeout", notes)
    if timeout is not None:
        device["timeout_s"] = timeout
    for key in ("busy_retries", "workarounds", "debug_connection"):
        if key in section:
            notes.append(Note(f"{path}.{key}", "not mapped (the twin's poller retries and backs off on its own)"))
    style = str(section.get("configuration_type", "register"))
    if style == "request":
        by_slave: dict[int, list[dict[str, Any]]] = {}
        for k, request in enumerate(section.get("request") or []):
            rpath = f"{path}.request[{k}]"
            if not isinstance(request, dict):
                notes.append(Note(rpath, "not a table"))
                continue
            slave = _int(request.get("slave_id", 0), f"{rpath}.slave_id", notes)
            if slave is None:
                continue
            by_slave.setdefault(slave, []).extend(_request_points(request, rpath, rename, notes))
        for slave, points in by_slave.items():
            map_id = _unique(f"{name}-{slave}", used) if len(by_slave) > 1 else name
            _emit(map_id, points, {**device, "device_id": slave}, site, asset or name, maps, devices)
        return
    if style != "register":
        notes.append(Note(f"{path}.configuration_type", f"{style!r}: only 'register' and 'request' are read"))
        return
    slave = _int(section.get("slave_id", 1), f"{path}.slave_id", notes)
    if slave is None:
        return
    found: list[dict[str, Any]] = []
    for key, kind in _KINDS.items():
        for k, field in enumerate(section.get(key) or []):
            point = _register_point(field, kind, f"{path}.{key}[{k}]", rename, notes)
            if point is not None:
                found.append(point)
    _emit(name, found, {**device, "device_id": slave}, site, asset or name, maps, devices)


def _emit(map_id: str, points: list[dict[str, Any]], device: dict[str, Any], site: str, asset: str,
          maps: list[dict[str, Any]], devices: list[dict[str, Any]]) -> None:
    if not points:
        return
    maps.append({"id": map_id, "description": "imported from Telegraf", "points": points})
    devices.append({"id": map_id, "site": site, **device, "assets": [{"asset": asset, "map": map_id}]})


def _register_point(field: Any, kind: str, path: str, rename: dict[str, str], notes: list[Note]) -> Table | None:
    """A point of the register style (its ``address`` a list of consecutive registers), or None with a note."""
    if not isinstance(field, dict):
        notes.append(Note(path, "not a table"))
        return None
    signal = _signal(field.get("name"), f"{path}.name", rename, notes)
    addresses = field.get("address")
    if signal is None:
        return None
    if not isinstance(addresses, list) or not addresses or not all(isinstance(a, int) for a in addresses):
        notes.append(Note(f"{path}.address", f"a list of register addresses, e.g. [0] or [5, 6] (got {addresses!r})"))
        return None
    if addresses != list(range(addresses[0], addresses[0] + len(addresses))):
        notes.append(Note(f"{path}.address", f"registers {addresses} are not consecutive: left out"))
        return None
    point: dict[str, Any] = {"signal": signal, "kind": kind, "address": addresses[0]}
    if kind in ("coil", "discrete"):
        return {**point, "type": DataType.BOOL.value}
    order_name = str(field.get("byte_order", "AB"))
    order, size = _order(order_name, f"{path}.byte_order", notes)
    if order is None:
        return None
    data_type = str(field.get("data_type", "INT16"))
    typ = _register_type(data_type, size, f"{path}.data_type", notes)
    if typ is None:
        return None
    if typ.registers != len(addresses):
        notes.append(Note(f"{path}.address", f"{data_type} with byte order {order_name} is {typ.registers} "
                                             f"register(s), the address list has {len(addresses)}: left out"))
        return None
    return _finish({**point, "type": typ.value, "byte_order": order.value}, field, path, notes)


def _request_points(request: Table, path: str, rename: dict[str, str], notes: list[Note]) -> list[Table]:
    register = str(request.get("register", "holding"))
    kind = _REQUEST_KINDS.get(register)
    if kind is None:
        notes.append(Note(f"{path}.register", f"{register!r}: one of coil, discrete, holding, input"))
        return []
    order_name = str(request.get("byte_order", "ABCD"))
    order = ByteOrder.__members__.get(order_name)
    if order is None:
        notes.append(Note(f"{path}.byte_order", f"{order_name!r}: one of ABCD, CDAB, BADC, DCBA"))
        return []
    if "measurement" in request or any(isinstance(f, dict) and "measurement" in f for f in request.get("fields") or []):
        notes.append(Note(f"{path}.measurement", "not mapped: a signal belongs to its asset, not to a measurement"))
    if "tags" in request:
        notes.append(Note(f"{path}.tags", "not mapped: the site and asset say where a value comes from"))
    points = []
    for k, field in enumerate(request.get("fields") or []):
        fpath = f"{path}.fields[{k}]"
        if not isinstance(field, dict):
            notes.append(Note(fpath, "not a table"))
            continue
        if field.get("omit") is True:
            continue  # a placeholder Telegraf reads and drops: the twin plans its own block reads
        signal = _signal(field.get("name"), f"{fpath}.name", rename, notes)
        address = field.get("address")
        if signal is None:
            continue
        if not isinstance(address, int) or isinstance(address, bool):
            notes.append(Note(f"{fpath}.address", f"a register address (got {address!r})"))
            continue
        point: dict[str, Any] = {"signal": signal, "kind": kind, "address": address}
        if kind in ("coil", "discrete"):
            points.append({**point, "type": DataType.BOOL.value})
            continue
        type_name = str(field.get("type", "INT16"))
        typ = _INTEGERS.get(type_name) or {"FLOAT32": DataType.FLOAT32, "FLOAT64": DataType.FLOAT64}.get(type_name)
        if typ is None:
            notes.append(Note(f"{fpath}.type", f"{type_name!r} is not read (INT16..UINT64, FLOAT32, FLOAT64)"))
            continue
        if "output" in field:
            notes.append(Note(f"{fpath}.output", "not mapped: values are floats once scaled, integers otherwise"))
        done = _finish({**point, "type": typ.value, "byte_order": order.value}, field, fpath, notes)
        if done is not None:
            points.append(done)
    return points


def _finish(point: dict[str, Any], field: dict[str, Any], path: str, notes: list[Note]) -> dict[str, Any] | None:
    if "scale" not in field:
        return point
    scale = field["scale"]
    try:
        value = float(scale)  # Telegraf's first versions wrote scale as a string ("0.01")
    except (TypeError, ValueError):
        notes.append(Note(f"{path}.scale", f"not a number (got {scale!r}): left out"))
        return None
    if not math.isfinite(value) or value == 0:
        notes.append(Note(f"{path}.scale", f"must be a finite number other than 0 (got {scale!r}): left out"))
        return None
    return point if value == 1 else {**point, "scale": value}


def _register_type(name: str, size: int, path: str, notes: list[Note]) -> DataType | None:
    if name in _INTEGERS:
        return _INTEGERS[name]
    if name == "FLOAT32-IEEE":
        return DataType.FLOAT32
    if name == "FLOAT64-IEEE":
        return DataType.FLOAT64
    if name in ("FIXED", "UFIXED", "FLOAT32"):
        if name == "FLOAT32":
            notes.append(Note(path, "FLOAT32 is Telegraf's deprecated unsigned fixed point: read as UFIXED "
                                    "(use FLOAT32-IEEE for an IEEE float)"))
        table = _SIGNED if name == "FIXED" else _UNSIGNED
        return table.get(size)
    notes.append(Note(path, f"{name!r} is not read (INT16..UINT64, FLOAT32-IEEE, FLOAT64-IEEE, FIXED, UFIXED): "
                            "left out"))
    return None


def _order(name: str, path: str, notes: list[Note]) -> tuple[ByteOrder | None, int]:
    if name in TELEGRAF_BYTE_ORDERS:
        return TELEGRAF_BYTE_ORDERS[name]
    if name in ByteOrder.__members__:
        return ByteOrder[name], 2
    notes.append(Note(path, f"{name!r} is not a byte order (AB, BA, ABCD, CDAB, BADC, DCBA, ABCDEFGH...): left out"))
    return None, 0


def _signal(name: Any, path: str, rename: dict[str, str], notes: list[Note]) -> str | None:
    if not isinstance(name, str) or not name.strip():
        notes.append(Note(path, "a field needs a name: left out"))
        return None
    if name in rename:
        return rename[name]
    slug = _slug(name)
    if slug != name:
        notes.append(Note(path, f"{name!r} became the signal {slug!r}"))
    return slug


def _controller(value: Any, path: str, notes: list[Note]) -> tuple[str, int] | None:
    text = str(value or "tcp://localhost:502")
    parts = urlsplit(text if "://" in text else f"tcp://{text}")
    if parts.scheme != "tcp" or not parts.hostname:
        notes.append(Note(path, f"{text!r}: only Modbus TCP (tcp://HOST:PORT) is read; a serial line is not "
                                "(the section is left out)"))
        return None
    try:
        port = parts.port or 502
    except ValueError:
        notes.append(Note(path, f"{text!r}: not a port number (the section is left out)"))
        return None
    return parts.hostname, port


def _seconds(value: Any, path: str, notes: list[Note]) -> float | None:
    if value is None:
        return None
    match = _DURATION.match(str(value))
    if match is None:
        notes.append(Note(path, f"not a duration like \"1s\" or \"500ms\" (got {value!r}): the default is used"))
        return None
    seconds = float(match.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[match.group(2)]
    return min(max(seconds, 0.01), 60.0)


def _int(value: Any, path: str, notes: list[Note]) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255:
        return value
    notes.append(Note(path, f"a unit id 0..255 (got {value!r}): the section is left out"))
    return None


def _slug(name: str) -> str:
    slug = _ID.sub("_", name.strip()).strip("_.-") or "device"
    return slug[:64]


def _unique(name: str, used: set[str]) -> str:
    candidate, n = name, 2
    while candidate in used:
        candidate = f"{name}-{n}"
        n += 1
    used.add(candidate)
    return candidate
