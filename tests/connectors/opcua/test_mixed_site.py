"""A site mixing Modbus and OPC UA, collected by the real collector into the SQLite store.

pod-a's printers and stock come from the emulator's Modbus PLC (``a-cell-1`` of the Modbus test
fleet); its CNC1 from the emulator's OPC UA server, fed by the same kind of emulated plant. Both
servers are real, on 127.0.0.1 and free ports, and stopped by the test.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from connectors.collector import Collector
from connectors.config import PlantConfig
from connectors.emulator.opcua_server import OpcUaMachines
from connectors.emulator.server import Emulator
from connectors.opcua.source import OpcUaSources
from connectors.store import SqliteHistorian
from tests.connectors.opcua.conftest import run
from twin.historian import SeriesKey
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
