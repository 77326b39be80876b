"""Serve the plant process as Modbus TCP PLCs, through the configured register maps, with faults.

One listening server per configured port on 127.0.0.1; devices sharing a port are unit ids behind
one gateway. Each device keeps a register image written with ``connectors.modbus.points.encode_point``
(so the emulator writes exactly what the poller decodes). Reads outside the mapped range answer
exception 2, as a real PLC does. Writes are refused (exception 1) and counted: the product must
never write to a PLC.

Faults, per device (a small API for tests; ``twin emulate`` exposes them as flags):
``drop_connections``, ``hang`` (stop answering), ``fail_range`` (answer an exception code for an
address range), ``freeze`` (values stop changing), ``restart`` (counters back to 0, connections
dropped), ``kill`` / ``revive`` (the whole server on that port goes away and comes back).

Usage::

    emu = Emulator(cfg.fleet, cfg.modbus, seed=1, speed=60.0)
    await emu.start()
    emu.fault("berlin-cell-1").hang = True
    ...
    await emu.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from connectors.emulator.modbus_server import Answer, ModbusTcpEndpoint
from connectors.emulator.plant import Plant
from connectors.emulator.shopfloor import ValueKey
from connectors.emulator.truth import Truth
from connectors.modbus.points import encode_point
from connectors.modbus.spec import DataType, ModbusDevice, RegisterKind
from twin.clock import Clock, utc_now
from twin.readings import Value
from twin.spec import FleetSpec

__all__ = ["DeviceImage", "Emulator", "Faults"]

log = logging.getLogger(__name__)

_ILLEGAL_FUNCTION = 1
_ILLEGAL_ADDRESS = 2
_GATEWAY_NO_RESPONSE = 11


@dataclass(slots=True)
class Faults:
    """The faults currently injected into one device (mutable: tests flip them)."""

    hang: bool = False
    frozen: bool = False
    ranges: list[tuple[RegisterKind | None, int, int, int]] = field(default_factory=list)

    def fail_range(self, start: int, end: int, code: int = _ILLEGAL_ADDRESS, kind: RegisterKind | None = None) -> None:
        """Answer exception ``code`` to any read touching protocol addresses ``start..end`` (inclusive)."""
        self.ranges.append((kind, start, end, code))

    def clear(self) -> None:
        self.hang = self.frozen = False
        self.ranges.clear()

    def code_for(self, kind: RegisterKind, address: int, count: int) -> int:
        for k, start, end, code in self.ranges:
            if (k is None or k is kind) and address <= end and address + count - 1 >= start:
                return code
        return 0


class DeviceImage:
    """The registers and bits of one device, written from plant values through its points."""

    def __init__(self, device: ModbusDevice) -> None:
        self.device = device
        size = {k: 0 for k in RegisterKind}
        for p in device.points:
            size[p.kind] = max(size[p.kind], p.end)
        self.tables: dict[RegisterKind, list[int]] = {k: [0] * n for k, n in size.items()}
        self._warned: set[tuple[str, str]] = set()

    def load(self, values: dict[ValueKey, Value]) -> None:
        site = self.device.site
        for p in self.device.points:
            v = values.get((site, p.asset, p.signal))
            if v is None:
                continue
            if p.type is DataType.STRING:
                v = str(v)
            try:
                words = encode_point(p, v)
            except ValueError as exc:
                if (p.asset, p.signal) not in self._warned:
                    self._warned.add((p.asset, p.signal))
                    log.warning("emulator %s: cannot encode %s.%s: %s", self.device.id, p.asset, p.signal, exc)
                continue
            table = self.tables[p.kind]
            if p.type is DataType.BIT:
                mask = 1 << (p.bit or 0)
                table[p.address] = (table[p.address] | mask) if words[0] else (table[p.address] & ~mask)
            else:
                table[p.address : p.address + len(words)] = words

    def read(self, kind: RegisterKind, address: int, count: int) -> list[int] | list[bool] | int:
        table = self.tables[kind]
        if address < 0 or count < 1 or address + count > len(table):
            return _ILLEGAL_ADDRESS
        if kind.is_bit:
            return [bool(v) for v in table[address : address + count]]
        return table[address : address + count]


@dataclass(slots=True)
class _Unit:
    device: ModbusDevice
    image: DeviceImage
    faults: Faults = field(default_factory=Faults)
    reads: int = 0
    writes: int = 0


class _PortStore:
    """The ``RegisterStore`` of one port: units by id."""

    def __init__(self) -> None:
        self.units: dict[int, _Unit] = {}

    def read(self, unit: int, kind: RegisterKind, address: int, count: int) -> Answer:
        u = self.units.get(unit)
        if u is None:
            return _GATEWAY_NO_RESPONSE
        if u.faults.hang:
            return None
        u.reads += 1
        return u.faults.code_for(kind, address, count) or u.image.read(kind, address, count)

    def write(self, unit: int, kind: RegisterKind, address: int, values: Sequence[int]) -> int:
        u = self.units.get(unit)
        if u is not None:
            u.writes += 1
            log.warning("emulator %s: refused a write to %s %d (%d values)", u.device.id, kind.value, address,
                        len(values))
        return _ILLEGAL_FUNCTION


class Emulator:
    """Emulated PLCs for ``devices``, driven by a seeded ``Plant``.

    Plant time runs ``speed`` times faster than ``clock`` from ``start`` (default: the clock's now);
    with ``resume_at``, the plant's history begins at ``start`` but serving begins at ``resume_at``
    (the plant fast-forwards there first: the demo continues the history it backfilled this way);
    the images are refreshed every ``tick_s`` seconds of wall time while ``run`` is running (or on
    each ``update()`` call). ``truth`` holds the plant's real figures (``connectors.emulator.truth``).
    ``sites`` adds sites to the plant process beyond the devices' (sites served over OPC UA only).
    """

    def __init__(self, fleet: FleetSpec, devices: Iterable[ModbusDevice], *, seed: int = 0, speed: float = 1.0,
                 start: datetime | None = None, clock: Clock = utc_now,
                 host: str = "127.0.0.1", tick_s: float = 0.1, resume_at: datetime | None = None,
                 truth: Truth | None = None, sites: Iterable[str] = ()) -> None:
        self.devices = {d.id: d for d in devices}
        self.speed = speed
        self.tick_s = tick_s
        self._clock = clock
        self._wall0 = clock()
        self.plant = Plant(fleet, seed=seed, start=start or self._wall0, truth=truth,
                           sites={d.site for d in self.devices.values()} | set(sites))
        self._origin = max(resume_at, self.plant.start) if resume_at is not None else self.plant.start
        self._stores: dict[int, _PortStore] = {}
        self._units: dict[str, tuple[int, _Unit]] = {}
        for d in self.devices.values():
            store = self._stores.setdefault(d.port, _PortStore())
            unit = _Unit(device=d, image=DeviceImage(d))
            store.units[d.device_id] = unit
            self._units[d.id] = (d.port, unit)
        self.endpoints = {port: ModbusTcpEndpoint(store, host, port) for port, store in self._stores.items()}
        self.update()

    # ------------------------------------------------------------------ time
    def sim_time(self) -> datetime:
        return self._origin + (self._clock() - self._wall0) * self.speed

    def update(self) -> None:
        """Advance the plant to now and rewrite every image that is not frozen."""
        values = self.plant.advance(max(self.sim_time(), self.plant.now))
        for _, unit in self._units.values():
            if not unit.faults.frozen:
                unit.image.load(values)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        for ep in self.endpoints.values():
            await ep.start()

    async def stop(self) -> None:
        for _, unit in self._units.values():
            unit.faults.hang = False  # let hung requests finish
        for ep in self.endpoints.values():
            await ep.stop()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve and refresh the images until ``stop`` is set."""
        await self.start()
        try:
            while not stop.is_set():
                self.update()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.tick_s)
        finally:
            await self.stop()

    # ------------------------------------------------------------------ faults
    def fault(self, device_id: str) -> Faults:
        """The fault switches of one device."""
        return self._units[device_id][1].faults

    def image(self, device_id: str) -> DeviceImage:
        return self._units[device_id][1].image

    def drop_connections(self, device_id: str) -> int:
        return self.endpoints[self._units[device_id][0]].drop_connections()

    async def kill(self, device_id: str) -> None:
        """Stop the server on the device's port (every unit on that port goes away)."""
        await self.endpoints[self._units[device_id][0]].stop()

    async def revive(self, device_id: str) -> None:
        await self.endpoints[self._units[device_id][0]].start()

    def restart(self, device_id: str) -> None:
        """A PLC restart: counters of the device's assets back to 0, connections dropped."""
        port, unit = self._units[device_id]
        for asset in unit.device.assets:
            self.plant.restart(unit.device.site, asset)
        self.update()
        self.endpoints[port].drop_connections()

    @property
    def writes_received(self) -> int:
        """Write requests received by all devices since start (the product must send none)."""
        return sum(u.writes for _, u in self._units.values())

    @property
    def reads_received(self) -> int:
        return sum(u.reads for _, u in self._units.values())
