"""The Modbus TCP server side, for the emulator: the second and last module importing pymodbus.

It serves a ``RegisterStore`` (plain Python, implemented by ``connectors.emulator``) over
pymodbus's TCP server: the store answers values, a Modbus exception code, or ``None`` for "do not
answer yet" (a hung device). Writes are passed to the store, which counts and refuses them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Protocol

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.server import ModbusTcpServer

from connectors.modbus.spec import RegisterKind

__all__ = ["Answer", "ModbusTcpEndpoint", "RegisterStore"]

log = logging.getLogger(__name__)

# Values, a Modbus exception code, or None: no answer yet (the device hangs).
Answer = list[int] | list[bool] | int | None

_KINDS = {1: RegisterKind.COIL, 5: RegisterKind.COIL, 15: RegisterKind.COIL, 2: RegisterKind.DISCRETE,
          3: RegisterKind.HOLDING, 6: RegisterKind.HOLDING, 16: RegisterKind.HOLDING, 22: RegisterKind.HOLDING,
          23: RegisterKind.HOLDING, 4: RegisterKind.INPUT}
_HANG_POLL_S = 0.05
_HANG_MAX_S = 600.0


class RegisterStore(Protocol):
    """What a server serves: one register image per unit id."""

    def read(self, unit: int, kind: RegisterKind, address: int, count: int) -> Answer: ...

    def write(self, unit: int, kind: RegisterKind, address: int, values: Sequence[int]) -> int: ...


class _StoreContext(ModbusServerContext):
    """Adapts a ``RegisterStore`` to pymodbus's server context interface (the "old simulator" path)."""

    def __init__(self, store: RegisterStore) -> None:  # no super().__init__: it only warns and builds SimDevices
        self.store = store
        self.old_simulator = True
        self.simdevices = []

    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        kind = _KINDS.get(func_code)
        if kind is None:
            return ExcCodes.ILLEGAL_FUNCTION
        deadline = time.monotonic() + _HANG_MAX_S
        answer = self.store.read(device_id, kind, address, count)
        while answer is None and time.monotonic() < deadline:
            await asyncio.sleep(_HANG_POLL_S)
            answer = self.store.read(device_id, kind, address, count)
        if answer is None:
            return ExcCodes.DEVICE_BUSY
        if isinstance(answer, int):
            return ExcCodes(answer)
        return answer

    async def async_setValues(
        self, device_id: int, func_code: int, address: int, values: Sequence[int] | Sequence[bool]
    ) -> ExcCodes | None:
        kind = _KINDS.get(func_code, RegisterKind.HOLDING)
        code = self.store.write(device_id, kind, address, [int(v) for v in values])
        return ExcCodes(code) if code else None

    def device_ids(self) -> list[int]:
        return []


class ModbusTcpEndpoint:
    """One listening Modbus TCP server on ``host:port`` serving ``store``; can stop and start again.

    Usage (inside a running event loop)::

        ep = ModbusTcpEndpoint(store, "127.0.0.1", 15020)
        await ep.start()
        ...
        await ep.stop()
    """

    def __init__(self, store: RegisterStore, host: str, port: int) -> None:
        self.store = store
        self.host = host
        self.port = port
        self._server: ModbusTcpServer | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self._server is not None:
            return
        server = ModbusTcpServer(_StoreContext(self.store), address=(self.host, self.port))
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:
            raise OSError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc
        self._server = server

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            self._drop(server)
            await server.shutdown()  # type: ignore[no-untyped-call]

    def drop_connections(self) -> int:
        """Close every client connection (the listener stays up); returns how many were closed."""
        return self._drop(self._server) if self._server is not None else 0

    @staticmethod
    def _drop(server: ModbusTcpServer) -> int:
        conns = list(server.active_connections.values())
        for conn in conns:
            conn.close()
        return len(conns)
