"""A libmodbus-style PLC lacking one register: the block is split until only the missing point reads BAD.

libmodbus (and many PLCs) answer exception 2 (illegal data address) to a whole request when one of
its addresses does not exist. The server here is a raw asyncio socket serving b-cnc's holding and
input registers, all 0, except holding address 4 (CNC1's scrap_count, UINT32 at 4-5), which it lacks.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from connectors.config import PlantConfig
from connectors.modbus.poller import DevicePoller
from twin.readings import Quality, Reading

pytestmark = pytest.mark.server

MISSING = 4


async def serve_without(port: int, missing: int, seen: list[tuple[int, int, int]]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                req = await reader.readexactly(12)
                tid, uid, fc = req[:2], req[6:7], req[7]
                address, count = int.from_bytes(req[8:10], "big"), int.from_bytes(req[10:12], "big")
                seen.append((fc, address, count))
                if fc == 3 and address <= missing < address + count:
                    body = bytes([fc | 0x80, 2])
                else:
                    body = bytes([fc, 2 * count]) + b"\x00\x00" * count
                writer.write(tid + b"\x00\x00" + (len(body) + 1).to_bytes(2, "big") + uid + body)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)


def test_only_the_point_at_the_missing_address_goes_bad(modbus_cfg: PlantConfig,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    device = next(d for d in modbus_cfg.modbus if d.id == "b-cnc")
    dp = DevicePoller(device)
    assert [(b.kind.value, b.address, b.count) for b in dp.blocks] == [
        ("holding", 1, 9), ("holding", 21, 9), ("input", 1, 2), ("input", 21, 2)]
    seen: list[tuple[int, int, int]] = []

    async def go() -> tuple[list[Reading], list[Reading]]:
        server = await serve_without(device.port, MISSING, seen)
        try:
            first = await dp.poll_once()
            second = await dp.poll_once()
        finally:
            dp.close()
            server.close()
            await server.wait_closed()
        return first, second

    first, second = asyncio.run(go())
    for readings in (first, second):
        bad = {(r.asset, r.signal): r.reason for r in readings if r.quality is not Quality.GOOD}
        assert bad == {("CNC1", "scrap_count"): "exception 2: illegal data address"}
        assert len(readings) == 10  # every point of both CNCs, once
    # holding 1+9 has CNC1's 4 points (status@1, good_count@2, scrap_count@4, spindle_temp_c@6):
    # halves [status, good_count] = 1+3 (GOOD) and [scrap, spindle] = 4+6 (exception 2 again),
    # halved into 4+2 (exception 2: one point, BAD) and 6+4 (GOOD)
    first_poll = seen[: len(seen) - 6]
    assert [(a, c) for fc, a, c in first_poll if fc == 3] == [(1, 9), (1, 3), (4, 6), (4, 2), (6, 4), (21, 9)]
    # the next poll reads the finer blocks straight away: 3 requests where there was 1, none failing twice
    assert [(a, c) for fc, a, c in seen[len(first_poll):] if fc == 3] == [(1, 3), (4, 2), (6, 4), (21, 9)]
    assert dp.splits == 2
    warnings = [r.getMessage() for r in caplog.records if r.name == "connectors.modbus.poller"]
    assert warnings == [
        "device b-cnc: holding 1+9 answers exception 2: illegal data address: reading it in smaller blocks to find "
        "the points at missing addresses",
        "device b-cnc: read of holding 4+2 failed: exception 2: illegal data address",
    ]
