"""The Modbus connection against a real pymodbus server (the emulator) on 127.0.0.1: how requests end."""

from __future__ import annotations

import asyncio
import doctest
import importlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from connectors.config import PlantConfig
from connectors.emulator.server import Emulator
from connectors.modbus.client import Failure, ModbusConnection

pytestmark = pytest.mark.server


def run(coro_fn: Callable[[], Awaitable[Any]], timeout_s: float = 20.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro_fn(), timeout_s)
    return asyncio.run(bounded())


def test_a_lost_connection_ends_the_pending_request_at_once(modbus_cfg: PlantConfig) -> None:
    cell = next(d for d in modbus_cfg.modbus if d.id == "a-cell-1")
    p = cell.points[0]

    async def go() -> None:
        loop = asyncio.get_running_loop()
        emu = Emulator(modbus_cfg.fleet, [cell], seed=1)
        await emu.start()
        conn = ModbusConnection("127.0.0.1", cell.port, device_id=cell.device_id, timeout_s=3.0)
        try:
            await conn.connect()  # raises ConnectFailed if it cannot
            assert (await conn.read(p.kind, p.address, p.count)).values is not None
            emu.fault(cell.id).hang = True  # the device stops answering...
            pending = asyncio.create_task(conn.read(p.kind, p.address, p.count))
            await asyncio.sleep(0.2)
            assert not pending.done()
            t0 = loop.time()
            assert emu.drop_connections(cell.id) == 1  # ...and then closes the connection
            result = await pending
            # ended by the lost link, long before the 3 s request timeout
            assert loop.time() - t0 < 0.5
            assert result.failure is Failure.CONNECTION
            assert result.reason == "connection lost while waiting for the answer"
            assert not conn.connected
            current = asyncio.current_task()
            assert current is not None and current.cancelling() == 0  # no cancellation left behind
            emu.fault(cell.id).hang = False
            await conn.connect()  # and the connection serves again
            assert (await conn.read(p.kind, p.address, p.count)).values is not None
        finally:
            conn.close()
            await emu.stop()
    run(go)


def test_the_callers_cancellation_still_cancels_a_read_and_reads_never_overlap(modbus_cfg: PlantConfig) -> None:
    cell = next(d for d in modbus_cfg.modbus if d.id == "a-cell-1")
    p = cell.points[0]

    async def go() -> None:
        emu = Emulator(modbus_cfg.fleet, [cell], seed=1)
        await emu.start()
        conn = ModbusConnection("127.0.0.1", cell.port, device_id=cell.device_id, timeout_s=3.0)
        try:
            await conn.connect()  # raises ConnectFailed if it cannot
            emu.fault(cell.id).hang = True
            pending = asyncio.create_task(conn.read(p.kind, p.address, p.count))
            await asyncio.sleep(0.1)
            # One request at a time per connection: the poller never overlaps two, and a caller that
            # does gets an error at once instead of a silent queue (or two answers crossing on one socket).
            with pytest.raises(RuntimeError, match="already in flight"):
                await conn.read(p.kind, p.address, p.count)
            pending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pending
            assert conn.connected  # cancelling a read does not touch the link
            emu.fault(cell.id).hang = False
            # and the connection is free again once the first request has ended
            assert (await conn.read(p.kind, p.address, p.count)).values is not None
        finally:
            emu.fault(cell.id).hang = False
            conn.close()
            await emu.stop()
    run(go)


def test_repeated_timeouts_end_cleanly_when_pymodbus_drops_the_link_itself(modbus_cfg: PlantConfig) -> None:
    # pymodbus closes a link after retries + 3 unanswered requests, from inside the request itself:
    # every read still ends with a failure, and no cancellation is left pending on the caller's task.
    cell = next(d for d in modbus_cfg.modbus if d.id == "a-cell-1")
    p = cell.points[0]

    async def go() -> None:
        emu = Emulator(modbus_cfg.fleet, [cell], seed=1)
        await emu.start()
        conn = ModbusConnection("127.0.0.1", cell.port, device_id=cell.device_id, timeout_s=0.05)
        try:
            await conn.connect()  # raises ConnectFailed if it cannot
            emu.fault(cell.id).hang = True
            failures = []
            for _ in range(6):
                result = await conn.read(p.kind, p.address, p.count)
                failures.append(result.failure)
                await asyncio.sleep(0)  # a cancellation left behind would be raised here
            assert failures[0] is Failure.TIMEOUT and failures[-1] is Failure.CONNECTION
            assert set(failures) == {Failure.TIMEOUT, Failure.CONNECTION}  # the link went down on the way
            current = asyncio.current_task()
            assert current is not None and current.cancelling() == 0
        finally:
            emu.fault(cell.id).hang = False
            conn.close()
            await emu.stop()
    run(go)


@pytest.mark.parametrize("name", ["connectors.modbus.points", "connectors.modbus.spec", "twin.readings"])
def test_usage_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
