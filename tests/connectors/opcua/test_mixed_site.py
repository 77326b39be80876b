"""A site mixing Modbus and OPC UA, collected by the real collector into the SQLite store.

pod-a's printers and stock come from the emulator's Modbus PLC (``a-cell-1`` of the Modbus test
fleet); its CNC1 from the emulator's OPC UA server, fed by the same kind of emulated plant. Both
servers are real, on 127.0.0.1 and free ports, and stopped by the test.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app import main as twin_main
from connectors.collector import Collector
from connectors.config import PlantConfig, load
from connectors.emulator.opcua_server import OpcUaMachines, OpcUaServers
from connectors.emulator.server import Emulator
from connectors.opcua.source import OpcUaSources
from connectors.store import SqliteHistorian
from tests.conftest import free_port
from tests.connectors.opcua.conftest import mixed_text, run
from twin.historian import SeriesKey
from twin.readings import Quality, Reading
from twin.spec import MachineStatus

pytestmark = pytest.mark.server


def test_a_mixed_site_is_collected_into_one_store(mixed_cfg: PlantConfig, ua_port: int, tmp_path: Path) -> None:
    cfg = mixed_cfg
    assert [d.id for d in cfg.modbus] == ["a-cell-1"] and [s.id for s in cfg.opcua] == ["a-cnc-ua"]
    store = SqliteHistorian(tmp_path / "history.db", cfg.fleet)

    async def go() -> Collector:
        modbus = Emulator(cfg.fleet, cfg.modbus, seed=3)
        opcua = OpcUaMachines(cfg.fleet, "pod-a", ["CNC1"], ua_port, seed=3)
        await modbus.start()
        await opcua.endpoint.start()
        collector = Collector(cfg.fleet, cfg.modbus, store, flush_interval_s=0.1, seed=1)
        collector.add_source(OpcUaSources(cfg.opcua, collector.ingest, seed=1))
        stop = asyncio.Event()
        served = asyncio.create_task(opcua.run(stop))
        asyncio.get_running_loop().call_later(2.0, stop.set)
        try:
            await collector.run(stop)
        finally:
            await served
            await modbus.stop()
        return collector

    collector = run(go, timeout_s=40.0)
    try:
        stored = {(k.asset, k.signal) for k in store.signals("pod-a")}
        assert {("P1", "status"), ("PLA-1KG", "on_hand"), ("CNC1", "status"), ("CNC1", "good_count"),
                ("CNC1", "spindle_temp_c")} <= stored
        machines = collector.state.sites["pod-a"].machines
        assert machines["P1"].status is not MachineStatus.UNKNOWN
        assert machines["CNC1"].status is not MachineStatus.UNKNOWN  # its status came over OPC UA
        state = store.state_at("pod-a", collector.state.as_of)
        assert state is not None and state.machines["CNC1"].status is machines["CNC1"].status
        t1 = collector.state.as_of
        (temp,) = store.series([SeriesKey(site="pod-a", asset="CNC1", signal="spindle_temp_c")],
                               t1.replace(year=t1.year - 1), t1, 100)
        assert temp.points  # GOOD values of the OPC UA node, stored like the Modbus ones
    finally:
        store.close()


def test_twin_collect_runs_the_opcua_server_beside_the_modbus_device(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The command itself (``app/collect.py``'s wiring): the servers on a loop in a thread, the command here."""
    modbus_port, ua_port = free_port(), free_port()
    db = tmp_path / "history.db"
    path = tmp_path / "fleet.toml"
    path.write_text(mixed_text(modbus_port, ua_port) + f'\n[historian]\npath = "{db}"\n', encoding="utf-8")
    cfg = load(path)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    stop = asyncio.Event()

    async def serve() -> tuple[Emulator, asyncio.Task[None]]:
        modbus = Emulator(cfg.fleet, cfg.modbus, seed=5)
        opcua = OpcUaMachines(cfg.fleet, "pod-a", ["CNC1"], ua_port, seed=5)
        await modbus.start()
        await opcua.endpoint.start()
        return modbus, asyncio.create_task(opcua.run(stop))

    async def stop_serving(modbus: Emulator, served: asyncio.Task[None]) -> None:
        stop.set()
        await served
        await modbus.stop()

    modbus, served = asyncio.run_coroutine_threadsafe(serve(), loop).result(30.0)
    try:
        assert twin_main(["collect", str(path), "--duration", "3"]) == 0
    finally:
        asyncio.run_coroutine_threadsafe(stop_serving(modbus, served), loop).result(30.0)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10.0)
        loop.close()
    assert capsys.readouterr().out.startswith("collected ")
    store = SqliteHistorian(db, cfg.fleet, readonly=True)
    try:
        stored = {(k.asset, k.signal) for k in store.signals("pod-a")}
    finally:
        store.close()
    assert {("P1", "status"), ("CNC1", "status"), ("CNC1", "spindle_temp_c")} <= stored


def test_the_modbus_device_keeps_its_rate_while_the_opcua_server_hangs(mixed_cfg: PlantConfig) -> None:
    """The emulator's OPC UA server hangs (``OpcUaServers.hang``: its sockets stay open, nothing is
    answered) 1.5 s into the run: its nodes go from GOOD to STALE, then BAD; the Modbus device of the
    same site, polled by the same collector, keeps its 10 reads a second throughout."""
    cfg = mixed_cfg
    readings: list[Reading] = []

    class Sink:
        def write(self, batch: Sequence[Reading], states: object = (), events: object = ()) -> None:
            readings.extend(batch)

    async def go() -> tuple[float, datetime, datetime]:
        modbus = Emulator(cfg.fleet, cfg.modbus, seed=3)
        opcua = OpcUaServers(cfg.opcua, modbus.plant.values())
        await modbus.start()
        await opcua.start()
        collector = Collector(cfg.fleet, cfg.modbus, Sink(), flush_interval_s=0.1, seed=1)
        collector.add_source(OpcUaSources(cfg.opcua, collector.ingest, seed=1))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        hung_at: list[datetime] = []

        async def hang() -> None:
            await asyncio.sleep(1.5)
            await opcua.hang(cfg.opcua[0].id)
            hung_at.append(datetime.now(UTC))  # the readings' clock

        # once hung: the session check times out after timeout_s (1 s), each reconnect after 2 timeout_s;
        # BAD once it has been down bad_after_s (1 s): by about 1.5 + 1 + 2 = 4.5 s
        loop.call_later(6.0, stop.set)
        task = asyncio.create_task(hang())
        try:
            await collector.run(stop)
        finally:
            await task
            await opcua.stop()
            await modbus.stop()
        return loop.time() - t0, hung_at[0], datetime.now(UTC)

    elapsed, hung_at, ended = run(go, timeout_s=40.0)
    p1 = [r for r in readings if (r.asset, r.signal) == ("P1", "status")]
    assert len(p1) >= 0.6 * 10 * elapsed and all(r.quality is Quality.GOOD for r in p1), len(p1)
    cnc1 = [r for r in readings if (r.asset, r.signal) == ("CNC1", "status")]
    assert cnc1 and cnc1[0].quality is Quality.GOOD  # served, before the hang
    stale = next(r for r in cnc1 if r.quality is not Quality.GOOD)
    assert (stale.quality, stale.reason) == (Quality.STALE, "timed out")
    assert cnc1[-1].quality is Quality.BAD  # down longer than bad_after_s (1 s)
    # and the Modbus rate while it hangs, on its own: 10 a second, with the same 40 % margin
    while_hung = [r for r in p1 if r.ts >= hung_at]
    assert len(while_hung) >= 0.6 * 10 * (ended - hung_at).total_seconds(), len(while_hung)
