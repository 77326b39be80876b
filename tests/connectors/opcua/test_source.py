"""The OPC UA source against a real asyncua server on 127.0.0.1: values, status codes, outages, restarts.

The server is the emulator's (``connectors.emulator.opcua_endpoint``) on a free port: one for the
module (starting one takes seconds), reset after each test, and a test's own where it stops and
restarts it; every test is bounded in time.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import timedelta

import pytest

from connectors.config import PlantConfig
from connectors.emulator.opcua_endpoint import OpcUaEndpoint
from connectors.opcua.source import OpcUaReader
from tests.connectors.opcua.conftest import VARIABLES, ServerThread, run
from twin.readings import Quality, Reading

pytestmark = pytest.mark.server


async def _until(readings: list[Reading], pred: object, timeout_s: float = 5.0, since: int = 0) -> Reading:
    """The first reading from ``readings[since]`` on for which ``pred`` holds."""
    assert callable(pred)
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    seen = since
    while loop.time() < end:
        for r in readings[seen:]:
            if pred(r):
                return r
        seen = len(readings)
        await asyncio.sleep(0.02)
    raise AssertionError(f"no such reading in {timeout_s} s; last: {readings[-5:]}")


def test_a_subscription_delivers_a_change_with_asset_signal_scale_and_units(server: ServerThread,
                                                                           mixed_cfg: PlantConfig) -> None:
    source = mixed_cfg.opcua[0]

    async def go() -> tuple[Reading, Reading, dict[tuple[str, str], str], int]:
        reader = OpcUaReader(source)
        got: list[Reading] = []
        stop = asyncio.Event()
        task = asyncio.create_task(reader.run(got.extend, stop))
        try:
            first = await _until(got, lambda r: r.signal == "spindle_temp_c")
            since = len(got)
            await asyncio.to_thread(server.call, server.endpoint.set("CNC1", "spindle_temp_c", 300.0))
            changed = await _until(got, lambda r: r.signal == "spindle_temp_c" and r.value == pytest.approx(30.0),
                                 since=since)
        finally:
            stop.set()
            await task
        return first, changed, reader.units, reader.notifications

    first, changed, units, notified = run(go)
    assert (first.site, first.asset, first.value, first.quality) == ("pod-a", "CNC1", pytest.approx(21.5),
                                                                      Quality.GOOD)
    assert (changed.asset, changed.signal, changed.quality, changed.reason) == ("CNC1", "spindle_temp_c",
                                                                                 Quality.GOOD, "")
    assert units[("CNC1", "spindle_temp_c")] == "degC"  # the server's EngineeringUnits
    assert ("CNC1", "status") not in units and notified >= 4


def test_status_codes_become_quality_with_their_names(server: ServerThread, mixed_cfg: PlantConfig) -> None:
    source = mixed_cfg.opcua[0]

    async def set_(*args: object) -> None:
        await asyncio.to_thread(server.call, server.endpoint.set(*args))  # type: ignore[arg-type]

    async def go() -> tuple[Reading, Reading, Reading]:
        got: list[Reading] = []
        stop = asyncio.Event()
        task = asyncio.create_task(OpcUaReader(source).run(got.extend, stop))
        try:
            await _until(got, lambda r: r.signal == "status" and r.quality is Quality.GOOD)
            await set_("CNC1", "status", None, "BadSensorFailure")
            bad = await _until(got, lambda r: r.signal == "status" and r.quality is Quality.BAD)
            await set_("CNC1", "good_count", 7, "UncertainLastUsableValue")
            uncertain = await _until(got, lambda r: r.signal == "good_count" and r.quality is not Quality.GOOD)
            since = len(got)
            await set_("CNC1", "status", 2)
            good = await _until(got, lambda r: r.signal == "status" and r.quality is Quality.GOOD, since=since)
        finally:
            stop.set()
            await task
        return bad, uncertain, good

    bad, uncertain, good = run(go)
    assert (bad.value, bad.quality, bad.reason) == (None, Quality.BAD, "BadSensorFailure")
    assert (uncertain.value, uncertain.quality, uncertain.reason) == (7, Quality.STALE, "UncertainLastUsableValue")
    assert (good.value, good.reason) == (2, "")


def test_server_stopped_goes_stale_then_bad_logged_once_and_recovers_after_restart(
        mixed_cfg: PlantConfig, ua_port: int, caplog: pytest.LogCaptureFixture) -> None:
    source = mixed_cfg.opcua[0]  # bad_after_s = 1

    async def go() -> tuple[list[Reading], Reading]:
        ep = OpcUaEndpoint(ua_port, VARIABLES)
        await ep.start()
        got: list[Reading] = []
        stop = asyncio.Event()
        task = asyncio.create_task(OpcUaReader(source).run(got.extend, stop))
        try:
            await _until(got, lambda r: r.signal == "status" and r.quality is Quality.GOOD)
            down_at = len(got)
            await ep.stop()
            await _until(got, lambda r: r.quality is Quality.BAD and r.signal == "status", timeout_s=8.0,
                         since=down_at)
            outage = got[down_at:]
            await ep.start()  # a new server process on the same port: a new session and subscription
            await ep.set("CNC1", "spindle_temp_c", 400.0)
            back = await _until(got, lambda r: r.signal == "spindle_temp_c" and r.value == pytest.approx(40.0),
                                timeout_s=8.0)
        finally:
            stop.set()
            await task
            await ep.stop()
        return outage, back

    with caplog.at_level(logging.WARNING, logger="connectors.opcua.source"):
        outage, back = run(go)
    status = [r for r in outage if r.signal == "status"]
    assert status[0].quality is Quality.STALE and status[0].value is None and status[0].reason
    assert status[-1].quality is Quality.BAD
    assert back.quality is Quality.GOOD
    texts = [r.getMessage() for r in caplog.records if r.name == "connectors.opcua.source"]
    assert sum("its nodes are STALE, BAD after 1 s" in t for t in texts) == 1, texts
    assert sum("answering again after" in t for t in texts) == 1, texts


def test_polling_reads_every_node_and_names_what_cannot_be_read(server: ServerThread, mixed_cfg: PlantConfig) -> None:
    src = mixed_cfg.opcua[0]
    missing = replace(src.nodes[1], ref=("node", "ns=2;s=CNC1.nothing"))
    source = replace(src, poll=True, nodes=(src.nodes[0], missing, src.nodes[2]))

    async def go() -> list[Reading]:
        reader = OpcUaReader(source)
        try:
            return await reader.poll_once()
        finally:
            await reader.close()

    readings = run(go)
    assert [(r.signal, r.value, r.quality, r.reason) for r in readings] == [
        ("status", 1, Quality.GOOD, ""), ("good_count", None, Quality.BAD, "BadNodeIdUnknown"),
        ("spindle_temp_c", pytest.approx(21.5), Quality.GOOD, "")]


def test_an_array_is_refused_clearly_and_a_node_deleted_at_runtime_goes_bad(mixed_cfg: PlantConfig,
                                                                            ua_port: int) -> None:
    src = mixed_cfg.opcua[0]
    array = replace(src.nodes[0], signal="vibration_mm_s", ref=("node", "ns=2;s=CNC1.spectrum"))
    subscribed = replace(src, nodes=(*src.nodes, array))

    async def go() -> tuple[Reading, list[Reading], list[Reading]]:
        ep = OpcUaEndpoint(ua_port, [*VARIABLES, ("CNC1", "spectrum", [0.1, 0.2, 0.3], "")])
        await ep.start()
        got: list[Reading] = []
        stop = asyncio.Event()
        task = asyncio.create_task(OpcUaReader(subscribed).run(got.extend, stop))
        reader = OpcUaReader(replace(subscribed, poll=True))
        try:
            notified = await _until(got, lambda r: r.signal == "vibration_mm_s")
            stop.set()
            await task
            # asyncua's server fails on a node deleted under a monitored item (a coroutine never awaited):
            # the deletion is read by polling, the way the subscribed reader also reads every bad_after_s
            before = await reader.poll_once()
            await ep.delete("CNC1", "good_count")
            after = await reader.poll_once()
        finally:
            stop.set()
            await task
            await reader.close()
            await ep.stop()
        return notified, before, after

    notified, before, after = run(go)
    assert (notified.value, notified.quality, notified.reason) == (
        None, Quality.BAD, "arrays are not supported (got an array of 3 Double)")
    assert next(r for r in before if r.signal == "good_count").quality is Quality.GOOD
    count = next(r for r in after if r.signal == "good_count")
    assert (count.value, count.quality, count.reason) == (None, Quality.BAD, "BadNodeIdUnknown")
    assert next(r for r in after if r.signal == "status").quality is Quality.GOOD  # the others still read


def test_a_samples_time_is_the_servers_source_time_in_utc(server: ServerThread) -> None:
    """``Sample.ts``: the source timestamp the server wrote with the value, as an aware UTC time."""
    from datetime import UTC, datetime

    from connectors.opcua.client import OpcUaConnection

    before = datetime.now(UTC)
    server.call(server.endpoint.set("CNC1", "status", 2))  # the emulator stamps each write with its time
    after = datetime.now(UTC)

    async def go() -> list[object]:
        conn = OpcUaConnection(server.endpoint.endpoint, timeout_s=2.0)
        await conn.connect()
        try:
            (handle,) = await conn.resolve([("node", "ns=2;s=CNC1.status")])
            return list(await conn.read([handle]))
        finally:
            await conn.close()

    (sample,) = run(go)
    assert sample.value == 2 and sample.ts is not None and sample.ts.tzinfo is UTC  # type: ignore[attr-defined]
    # OPC UA times count 100 ns ticks: the stamp lies within the write's bracket, to the tick
    assert before - timedelta(microseconds=1) <= sample.ts <= after  # type: ignore[attr-defined]
