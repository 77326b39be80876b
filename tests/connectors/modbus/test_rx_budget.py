"""The byte budget per request: one answer of the largest size fits, many in a row too, an endless sender does not."""

from __future__ import annotations

import asyncio

import pytest

from connectors.modbus.client import MAX_RX_BYTES, Failure, ModbusConnection
from connectors.modbus.spec import RegisterKind
from tests.conftest import free_port
from tests.connectors.modbus.test_block_split import serve_without

pytestmark = pytest.mark.server


def test_the_budget_is_per_request_not_per_connection() -> None:
    port = free_port()
    seen: list[tuple[int, int, int]] = []

    async def go() -> None:
        server = await serve_without(port, -1, seen)  # every register exists
        conn = ModbusConnection("127.0.0.1", port, device_id=1, timeout_s=2.0)
        try:
            await conn.connect()  # raises ConnectFailed if it cannot
            # 125 registers: 7 + 2 + 250 = 259 bytes, the largest read answer; ten of them are 2,590
            # bytes on one connection, five times the budget of one request
            for _ in range(10):
                result = await conn.read(RegisterKind.HOLDING, 0, 125)
                assert result.ok and len(result.values or ()) == 125
            # pymodbus's own reads on the same connection (the benchmark's raw mode) count per request too
            client = conn._client
            assert client is not None
            for _ in range(10):
                assert not (await client.read_input_registers(0, count=125, device_id=1)).isError()
            assert MAX_RX_BYTES >= 259 * 2  # a late answer and the answer both fit
            assert conn.connected
        finally:
            conn.close()
            server.close()
            await server.wait_closed()

    asyncio.run(go())
    assert len(seen) == 20


def test_an_endless_sender_is_cut_at_the_budget() -> None:
    port = free_port()

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                writer.write(b"\x00\x01" * 4096)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def go() -> None:
        server = await asyncio.start_server(flood, "127.0.0.1", port)
        conn = ModbusConnection("127.0.0.1", port, device_id=1, timeout_s=2.0)
        try:
            await conn.connect()  # raises ConnectFailed if it cannot
            result = await conn.read(RegisterKind.HOLDING, 0, 10)
            assert result.failure is Failure.PROTOCOL
            assert result.reason.startswith(f"the device sent over {MAX_RX_BYTES} bytes for one request")
            assert not conn.connected  # dropped: it costs nothing more until the poller reconnects
        finally:
            conn.close()
            server.close()
            await server.wait_closed()

    asyncio.run(go())
