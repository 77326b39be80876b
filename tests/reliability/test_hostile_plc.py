"""Misbehaving PLCs on raw sockets (asyncio servers) beside two emulated ones, under the real collector.

Regression tests of the attack run of issue 18 (figures of that run, 25 s each):

* a PLC sending endless bytes produced 166 MB of log (pymodbus dumped the buffered hex frames of
  all devices after each of its errors) and cut the other devices' poll rate by 40 %;
* an exception code changing every poll logged 1,722 warnings (one per poll: the reason changed);
* 6,519 readings were stored GOOD from FC4 answers to FC3 requests (no function code check, and
  pymodbus lets a transaction id 0 through);
* a device accepting connections and dropping each request never went BAD (every reconnect
  restarted the ``bad_after_s`` clock).

b-cnc (pod-b's CNC1 and CNC2, four blocks: holding 1+9 and 21+9, input 1+2 and 21+2, polled every 0.1 s,
``bad_after_s = 1``) is served by the hostile server; a-cell-1 and a-cnc by the emulator.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from connectors.config import PlantConfig
from connectors.modbus.client import MAX_RX_BYTES
from tests.reliability.conftest import collecting, run
from twin.readings import Quality

pytestmark = pytest.mark.server


@dataclass
class Hostile:
    connections: int = 0
    requests: int = 0


def _answer(mode: str, req: bytes, n: int) -> bytes:
    tid, uid, fc = req[:2], req[6:7], req[7]
    count = int.from_bytes(req[10:12], "big")
    if mode == "exception":  # a different exception code at every request (not 2: that one splits the block)
        return tid + b"\x00\x00\x00\x03" + uid + bytes([fc | 0x80, (1, 3, 4, 5, 6, 10, 11)[n % 7]])
    if mode == "other-function":  # registers of the other table: FC4 answers to FC3 requests and back
        body = bytes([{3: 4, 4: 3}[fc], 2 * count]) + b"\x00\x07" * count
        return tid + b"\x00\x00" + (len(body) + 1).to_bytes(2, "big") + uid + body
    assert mode == "tid-0"  # the right answer, but with transaction id 0 (pymodbus accepts it)
    body = bytes([fc, 2 * count]) + b"\x00\x07" * count
    return b"\x00\x00\x00\x00" + (len(body) + 1).to_bytes(2, "big") + uid + body


@asynccontextmanager
async def hostile(port: int, mode: str) -> AsyncIterator[Hostile]:
    """A raw-socket 'PLC' on ``port``: ``flood`` (endless bytes), ``drop`` (closes at every request),
    or an answer that does not fit the request (see ``_answer``)."""
    seen = Hostile()
    chunk = random.Random(1).randbytes(65536)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.connections += 1
        try:
            if mode == "flood":
                while True:
                    writer.write(chunk)
                    await writer.drain()
            while True:
                req = await reader.readexactly(12)
                seen.requests += 1
                if mode == "drop":
                    writer.transport.abort()
                    return
                writer.write(_answer(mode, req, seen.requests))
                await writer.drain()
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield seen
    finally:
        server.close()
        await server.wait_closed()


def port_of(cfg: PlantConfig, device: str) -> int:
    return int(next(d for d in cfg.modbus if d.id == device).port)


def b_cnc_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "b-cnc" in r.getMessage()]


def test_an_endless_sender_is_dropped_and_costs_neither_log_nor_the_others(
        modbus_cfg: PlantConfig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)  # what an operator's collector logs by default

    async def go() -> None:
        async with hostile(port_of(modbus_cfg, "b-cnc"), "flood") as seen, collecting(
                modbus_cfg, not_emulated=frozenset({"b-cnc"})) as rig:
            polls = rig.collector.poller.devices
            await rig.wait_for(lambda: any(r.quality is Quality.BAD for _, r in rig.sink.readings
                                           if r.site == "pod-b"), what="pod-b BAD")
            a_before = polls["a-cell-1"].block_reads
            await rig.wait_for(lambda: polls["a-cell-1"].block_reads >= a_before + 20, what="20 more a-cell-1 reads")
            b = [r for _, r in rig.sink.readings if r.site == "pod-b"]
            assert b and all(r.quality is not Quality.GOOD for r in b)
            assert {r.reason.split(" (")[0] for r in b} == {
                f"the device sent over {MAX_RX_BYTES} bytes for one request"}
            # the other devices never missed a read while b-cnc flooded: every reading of theirs GOOD
            others = [r for _, r in rig.sink.readings if r.site == "pod-a"]
            assert others and all(r.quality is Quality.GOOD for r in others)
            assert polls["a-cell-1"].failed_reads == 0 and polls["a-cnc"].failed_reads == 0
            # b-cnc's connection is dropped at its first oversized read, then reopened with backoff
            # (0.5-1 x 0.1 s doubling per attempt, at most reconnect_max_s): a few connections, not one a poll
            assert 1 <= seen.connections <= polls["b-cnc"].link.attempts + 1
    run(go)
    # what reached the log: the failure once (went down), nothing from pymodbus
    assert [r.name for r in caplog.records if r.name.startswith("pymodbus")] == []
    assert len(b_cnc_warnings(caplog)) == 1
    assert sum(len(r.getMessage()) for r in caplog.records) < 2000


def test_a_changing_exception_code_is_one_failure_logged_once(modbus_cfg: PlantConfig,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)

    async def go() -> None:
        async with hostile(port_of(modbus_cfg, "b-cnc"), "exception") as seen, collecting(
                modbus_cfg, not_emulated=frozenset({"b-cnc"})) as rig:
            await rig.wait_for(lambda: seen.requests >= 80, what="80 requests (20 polls of 4 blocks)")
            reasons = {r.reason for _, r in rig.sink.readings if r.site == "pod-b"}
            assert len(reasons) >= 5  # the code did change from poll to poll
    run(go)
    # one warning per block (4) for the whole run, not one per poll (20 polls: 80 before the fix)
    warnings = b_cnc_warnings(caplog)
    assert len(warnings) == 4, warnings


@pytest.mark.parametrize(("mode", "why"), [
    ("other-function", "answer to another request: function 4, transaction 1 for function 3, transaction 1"),
    ("tid-0", "answer to another request: function 3, transaction 0 for function 3, transaction 1"),
])
def test_an_answer_to_another_request_is_never_good(modbus_cfg: PlantConfig, mode: str, why: str) -> None:
    async def go() -> None:
        async with hostile(port_of(modbus_cfg, "b-cnc"), mode) as seen, collecting(
                modbus_cfg, not_emulated=frozenset({"b-cnc"})) as rig:
            await rig.wait_for(lambda: seen.requests >= 10, what="10 requests")
            b = [r for _, r in rig.sink.readings if r.site == "pod-b"]
            assert b and all(r.quality is not Quality.GOOD for r in b)
            # the first request on a fresh connection is the holding block (FC3), transaction 1
            assert why in {r.reason for r in b}
            assert rig.collector.poller.devices["b-cnc"].block_reads == 0
            # each mismatch reset the connection: one request per connection
            assert seen.connections == seen.requests or seen.connections == seen.requests - 1
    run(go)


def test_a_device_that_connects_but_never_answers_goes_bad(modbus_cfg: PlantConfig,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)

    async def go() -> None:
        async with hostile(port_of(modbus_cfg, "b-cnc"), "drop") as seen, collecting(
                modbus_cfg, not_emulated=frozenset({"b-cnc"})) as rig:
            # bad_after_s = 1: BAD one second after the first failure, however often it reconnects
            await rig.wait_for(lambda: any(r.quality is Quality.BAD for _, r in rig.sink.readings
                                           if r.site == "pod-b"), what="pod-b BAD")
            assert seen.connections >= 2  # it did reconnect in between
            b = [r for _, r in rig.sink.readings if r.site == "pod-b"]
            assert all(r.quality is not Quality.GOOD for r in b)
    run(go)
    assert len(b_cnc_warnings(caplog)) == 1  # went down once; no "connected again" at every reconnect
