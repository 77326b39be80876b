"""Faults of the field survived by the whole collector loop (poller → twin → sink), on real Modbus servers.

The poller-level behaviour (kill/revive timing, exception reasons, hang bounded by the timeout) is
covered in ``tests/connectors/modbus/test_live.py``; here each fault runs under ``Collector.run`` and
the assertions are about what reaches the twin: the right quality and reason on the readings, the
machine UNKNOWN (never its last status shown as current), the other devices' poll rate unchanged,
and no exception at the top level (``collecting`` awaits the collector task).

Fleet (tests/connectors/modbus/fleet_modbus.toml): device a-cell-1 serves printers P1, P2 and the
stock of site pod-a; a-cnc serves CNC1 of pod-a; b-cnc serves CNC1, CNC2 of pod-b. Every device polls
every 0.1 s with a 0.5 s timeout; ``stale_after_polls = 3``, so a machine's status goes stale 0.3 s
after its last fresh sample.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.collector import Collector
from connectors.config import PlantConfig
from connectors.emulator.server import Emulator
from connectors.modbus.points import encode_raw
from connectors.modbus.spec import ByteOrder, DataType, RegisterKind
from connectors.store import SqliteHistorian
from tests.reliability.conftest import collecting, fleet_cfg, run
from twin.readings import Quality
from twin.spec import MachineStatus
from twin.state import EventKind

pytestmark = pytest.mark.server

KNOWN = {MachineStatus.RUNNING, MachineStatus.IDLE, MachineStatus.FAULT, MachineStatus.MAINTENANCE,
         MachineStatus.SETUP, MachineStatus.OFF}


def status(rig_state: object, site: str, machine: str) -> MachineStatus:
    return rig_state.sites[site].machines[machine].status  # type: ignore[attr-defined, no-any-return]


def test_hung_device_leaves_the_others_polling_at_their_rate(modbus_cfg: PlantConfig) -> None:
    async def go() -> None:
        async with collecting(modbus_cfg) as rig:
            polls = rig.collector.poller.devices
            await rig.wait_for(lambda: all(dp.reachable for dp in polls.values()), what="all devices up")
            await asyncio.sleep(0.3)

            def rates(window_s: float) -> asyncio.Future[dict[str, float]]:
                async def measure() -> dict[str, float]:
                    before = {k: dp.block_reads for k, dp in polls.items()}
                    t0 = rig.now()
                    await asyncio.sleep(window_s)
                    dt = rig.now() - t0
                    return {k: (dp.block_reads - before[k]) / dt for k, dp in polls.items()}
                return asyncio.ensure_future(measure())

            healthy = await rates(1.5)
            t_hang = rig.now()
            rig.emu.fault("a-cell-1").hang = True
            during = await rates(1.5)
            state = rig.collector.state
            rig.emu.fault("a-cell-1").hang = False
            # the healthy devices: a-cnc has 2 blocks (holding, input) per 0.1 s poll, b-cnc 2 as well
            for dev in ("a-cnc", "b-cnc"):
                assert healthy[dev] > 10, healthy  # at least half of the nominal 20 reads/s
                assert during[dev] == pytest.approx(healthy[dev], rel=0.2), (dev, healthy, during)
            assert during["a-cell-1"] < 0.2 * healthy["a-cell-1"]  # the hung one answered (almost) nothing
            # its readings: the request that hung is BAD with the timeout; none GOOD after the poll in flight
            hung = [r for t, r in rig.sink.readings if t > t_hang + 0.7 and r.site == "pod-a"
                    and r.asset in ("P1", "P2")]
            assert hung and all(r.quality is not Quality.GOOD and r.reason for r in hung)
            assert any(r.reason == "timeout after 0.5 s" and r.quality is Quality.BAD for r in hung)
            # the twin: P1 and P2 UNKNOWN, CNC1 of the same site still known
            for m in ("P1", "P2"):
                ms = state.sites["pod-a"].machines[m]
                assert ms.status is MachineStatus.UNKNOWN and ms.status_quality is not Quality.GOOD, ms
            assert status(state, "pod-a", "CNC1") in KNOWN
            # it recovers without restarting anything
            await rig.wait_for(lambda: status(rig.collector.state, "pod-a", "P1") in KNOWN, what="P1 back")
        assert rig.emu.writes_received == 0
    run(go)


def test_disconnects_and_a_dead_plc_show_unknown_never_the_last_status(modbus_cfg: PlantConfig) -> None:
    async def go() -> None:
        async with collecting(modbus_cfg) as rig:
            await rig.wait_for(lambda: status(rig.collector.state, "pod-a", "CNC1") in KNOWN, what="CNC1 known")
            # connections dropped five times in a row: the poller reconnects each time
            for _ in range(5):
                rig.emu.drop_connections("a-cnc")
                await asyncio.sleep(0.15)
            await rig.wait_for(lambda: status(rig.collector.state, "pod-a", "CNC1") in KNOWN, what="CNC1 back")
            t_back = rig.now()
            await asyncio.sleep(0.3)
            assert all(r.quality is Quality.GOOD for r in rig.sink.of("CNC1", "status", t_back + 0.1, site="pod-a"))
            # the PLC dies: its machine turns UNKNOWN within the staleness threshold plus a flush
            await rig.emu.kill("a-cnc")
            t_kill = rig.now()
            await rig.wait_for(lambda: status(rig.collector.state, "pod-a", "CNC1") is MachineStatus.UNKNOWN,
                               timeout_s=2.0, what="CNC1 unknown")
            # 3 polls of 0.1 s, one flush, and slack for a busy 2-core machine (CI runs other work too)
            assert rig.now() - t_kill < 0.3 + 0.1 + 0.6
            ms = rig.collector.state.sites["pod-a"].machines["CNC1"]
            assert ms.status_quality is not Quality.GOOD and ms.status_reason
            # past bad_after_s = 1 s its readings turn BAD, with a reason (they reach the sink with a flush)
            await rig.wait_for(lambda: bool(rig.sink.of("CNC1", "status", t_kill + 1.15, site="pod-a")),
                               timeout_s=5.0, what="readings after bad_after_s")
            late = rig.sink.of("CNC1", "status", t_kill + 1.15, site="pod-a")
            assert late and all(r.quality is Quality.BAD and r.value is None and r.reason for r in late)
            # a twin state never holds CNC1's status as GOOD while the PLC is dead (after the first flush)
            assert all(st.sites["pod-a"].machines["CNC1"].status_quality is not Quality.GOOD
                       for t, st in rig.sink.states if t > t_kill + 1.0)
            # the other site is untouched
            assert status(rig.collector.state, "pod-b", "CNC2") in KNOWN
            await rig.emu.revive("a-cnc")
            await rig.wait_for(lambda: status(rig.collector.state, "pod-a", "CNC1") in KNOWN, what="revived")
    run(go)


def test_plc_restart_resets_counters_but_not_production(modbus_cfg: PlantConfig) -> None:
    # Plant time stands still (speed 0) and moves only when the test advances it, so every total is exact.
    def totals(rig_state: object) -> tuple[int, int | None]:
        m = rig_state.sites["pod-a"].machines["P1"]  # type: ignore[attr-defined]
        return m.good_total, m.last_raw_good

    async def go() -> None:
        async with collecting(modbus_cfg) as rig:
            emu = rig.emu
            await rig.wait_for(lambda: totals(rig.collector.state)[1] is not None, what="first count")
            raw0 = totals(rig.collector.state)[1]
            assert raw0 is not None
            emu.plant.advance(emu.plant.now + timedelta(hours=6))  # 600 s cycles of 4 parts: counters move
            emu.update()
            raw1 = emu.plant.values()[("pod-a", "P1", "good_count")]
            assert isinstance(raw1, int) and raw1 > raw0
            await rig.wait_for(lambda: totals(rig.collector.state)[1] == raw1, what="count after 6 h")
            # the twin counts production since it first saw the counter: raw1 - raw0
            assert totals(rig.collector.state)[0] == raw1 - raw0
            emu.restart("a-cell-1")  # counters back to 0, connections dropped
            await rig.wait_for(lambda: totals(rig.collector.state)[1] == 0, what="reset seen")
            assert totals(rig.collector.state)[0] == raw1 - raw0  # nothing lost, nothing negative
            resets = [e for e in rig.sink.events if e.kind is EventKind.COUNTER_RESET and e.asset == "P1"]
            assert [(e.data["from"], e.data["to"]) for e in resets if e.data["signal"] == "good_count"] == [(raw1, 0)]
            emu.plant.advance(emu.plant.now + timedelta(hours=2))
            emu.update()
            raw2 = emu.plant.values()[("pod-a", "P1", "good_count")]
            assert isinstance(raw2, int) and raw2 > 0
            await rig.wait_for(lambda: totals(rig.collector.state)[1] == raw2, what="count after restart")
            # totals continue from where they were: (raw1 - raw0) before the restart + raw2 after it
            assert totals(rig.collector.state)[0] == raw1 - raw0 + raw2
            # production per flush was never negative
            goods = [st.sites["pod-a"].machines["P1"].good_total for _, st in rig.sink.states]
            assert all(b >= a for a, b in itertools.pairwise(goods))
        assert rig.emu.writes_received == 0
    run(go)


def test_exception_answers_make_only_their_points_bad(modbus_cfg: PlantConfig) -> None:
    async def go() -> None:
        async with collecting(modbus_cfg) as rig:
            await rig.wait_for(lambda: status(rig.collector.state, "pod-a", "P2") in KNOWN, what="P2 known")
            # P2's holding registers (protocol 100..111) answer "device failure", then "device busy"
            for code, reason in ((4, "exception 4: device failure"), (6, "exception 6: device busy")):
                rig.emu.fault("a-cell-1").clear()
                rig.emu.fault("a-cell-1").fail_range(100, 111, code=code, kind=RegisterKind.HOLDING)
                t0 = rig.now()
                await rig.wait_for(lambda r=reason: rig.collector.state.sites["pod-a"].machines["P2"].status_reason
                                   == r, what=reason)
                await asyncio.sleep(0.4)
                p2 = rig.sink.of("P2", "status", t0 + 0.25, site="pod-a")
                assert p2 and all(r.quality is Quality.BAD and r.reason == reason for r in p2)
                ms = rig.collector.state.sites["pod-a"].machines["P2"]
                assert ms.status is MachineStatus.UNKNOWN and ms.status_quality is Quality.BAD
                # P2's input registers (temperatures) and P1 are still read
                assert all(r.quality is Quality.GOOD for r in rig.sink.of("P2", "nozzle_temp_c", t0 + 0.25))
                assert status(rig.collector.state, "pod-a", "P1") in KNOWN
            rig.emu.fault("a-cell-1").clear()
            await rig.wait_for(lambda: status(rig.collector.state, "pod-a", "P2") in KNOWN, what="P2 back")
    run(go)


def _cnc_with_signed_counter(text: str) -> str:
    """The CNC map with its good counter as INT32: a PLC that can send a negative count."""
    old = '{ signal = "good_count", kind = "holding", address = 2, type = "UINT32" }'
    assert old in text
    return text.replace(old, '{ signal = "good_count", kind = "holding", address = 2, type = "INT32" }')


def test_garbage_values_are_bad_with_their_reason() -> None:
    """NaN and infinity in floats, a status code outside the map, a counter that is not an unsigned integer.

    The register maps carry no min/max, so "out of range" means what the twin can check: a status code
    that is not in the template's map, and a counter that is not a valid unsigned ``counter_bits``-bit
    integer.
    """
    cfg = fleet_cfg(_cnc_with_signed_counter)

    async def go() -> None:
        async with collecting(cfg) as rig:
            await rig.wait_for(lambda: all(status(rig.collector.state, s, m) in KNOWN
                                           for s, m in (("pod-a", "P1"), ("pod-b", "CNC2"))), what="known")
            good_before = rig.collector.state.sites["pod-b"].machines["CNC2"].good_total
            cell, bcnc = rig.emu.image("a-cell-1"), rig.emu.image("b-cnc")
            rig.emu.fault("a-cell-1").frozen = rig.emu.fault("b-cnc").frozen = True  # keep what we write
            hold = cell.tables[RegisterKind.HOLDING]
            hold[0] = 9  # P1 status: code 9 is not in the printer's status map
            hold[5:7] = encode_raw(DataType.FLOAT32, ByteOrder.ABCD, math.nan)  # P1 cycle_time_s
            hold[200:202] = encode_raw(DataType.FLOAT32, ByteOrder.ABCD, math.inf)  # PLA-1KG on_hand
            # CNC2 (offset 20) good_count INT32 at 22..23 = -5
            bcnc.tables[RegisterKind.HOLDING][22:24] = encode_raw(DataType.INT32, ByteOrder.ABCD, -5)
            t0 = rig.now()
            await asyncio.sleep(0.5)
            state = rig.collector.state
            p1 = state.sites["pod-a"].machines["P1"]
            assert p1.status is MachineStatus.UNKNOWN and p1.status_quality is Quality.BAD
            assert p1.status_reason == "status code 9 not in map"
            cyc = rig.sink.of("P1", "cycle_time_s", t0 + 0.25, site="pod-a")
            assert cyc and all(r.quality is Quality.BAD and r.value is None and r.reason == "not a number (nan)"
                               for r in cyc)
            assert p1.signals["cycle_time_s"].quality is Quality.BAD
            pla = rig.sink.of("PLA-1KG", "on_hand", t0 + 0.25)
            assert pla and all(r.quality is Quality.BAD and r.reason == "not a number (inf)" for r in pla)
            assert state.sites["pod-a"].inventory["PLA-1KG"].quality is Quality.BAD
            cnc2 = state.sites["pod-b"].machines["CNC2"]
            assert cnc2.signals["good_count"].quality is Quality.BAD
            assert cnc2.signals["good_count"].reason == "counter value -5 is not an unsigned 32-bit integer"
            assert cnc2.good_total == good_before  # a garbage count never moves production
            assert cnc2.status in KNOWN  # only the garbage signal is affected
    run(go)


async def _garbage_server(port: int, seed: int) -> asyncio.Server:
    """A TCP server on 127.0.0.1 answering every request with random bytes (some shaped like Modbus)."""
    rng = random.Random(seed)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                req = await reader.read(260)
                if not req:
                    break
                kind = rng.randrange(4)
                if kind == 0:  # noise
                    writer.write(rng.randbytes(rng.randrange(1, 40)))
                elif kind == 1:  # the right transaction id, a lying length and a short body
                    writer.write(req[:2] + b"\x00\x00\x00\xff" + req[6:8] + rng.randbytes(3))
                elif kind == 2:  # a well-formed frame with too few registers
                    writer.write(req[:2] + b"\x00\x00\x00\x05" + req[6:8] + b"\x02\x00\x01")
                else:  # an unknown function code
                    writer.write(req[:2] + b"\x00\x00\x00\x03" + req[6:7] + b"\x99\x01")
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)


def test_a_device_answering_garbage_frames_never_reads_good(modbus_cfg: PlantConfig) -> None:
    # b-cnc's port is served by a server sending garbage; the emulator serves the other two devices
    bcnc = next(d for d in modbus_cfg.modbus if d.id == "b-cnc")

    async def go() -> None:
        server = await _garbage_server(bcnc.port, seed=3)
        try:
            async with collecting(modbus_cfg, not_emulated=frozenset({"b-cnc"})) as rig:
                await asyncio.sleep(2.0)
                b = [r for _, r in rig.sink.readings if r.site == "pod-b"]
                assert b and all(r.quality is not Quality.GOOD and r.reason for r in b)
                for m in ("CNC1", "CNC2"):
                    assert status(rig.collector.state, "pod-b", m) is MachineStatus.UNKNOWN
                assert status(rig.collector.state, "pod-a", "CNC1") in KNOWN
                assert rig.collector.poller.devices["b-cnc"].block_reads == 0  # not one answer accepted
        finally:
            server.close()
            await server.wait_closed()
    run(go)


def test_a_locked_historian_stalls_neither_polling_nor_loses_readings(modbus_cfg: PlantConfig, tmp_path: Path) -> None:
    """The store is locked by another process's transaction for a while: writes fail (HistorianError),
    the collector keeps polling at its rate, keeps the refused batches, and writes them all once the
    lock is gone. Nothing reaches the top level."""
    path = tmp_path / "h.sqlite"
    store = SqliteHistorian(path, modbus_cfg.fleet, timeout_s=0.05)
    locker = sqlite3.connect(path, isolation_level=None)

    async def go() -> Collector:
        loop = asyncio.get_running_loop()
        emu = Emulator(modbus_cfg.fleet, modbus_cfg.modbus, seed=2)
        await emu.start()
        col = Collector(modbus_cfg.fleet, modbus_cfg.modbus, store, flush_interval_s=0.1, seed=2)
        stop = asyncio.Event()
        task = asyncio.create_task(col.run(stop))
        try:
            await asyncio.sleep(0.5)
            written_before = col.readings_written
            assert written_before > 0
            locker.execute("BEGIN EXCLUSIVE")  # another writer holds the file
            reads0, t0 = col.poller.devices["b-cnc"].block_reads, loop.time()
            await asyncio.sleep(1.0)
            rate_locked = (col.poller.devices["b-cnc"].block_reads - reads0) / (loop.time() - t0)
            assert col.write_failures > 0 and col.readings_written == written_before  # refused, kept
            assert col.backlog > 0
            locker.execute("ROLLBACK")
            await asyncio.sleep(0.5)
            assert col.write_failures == 0 and col.backlog < 200  # written again (this flush's few are pending)
            # polling went on at its rate while the store was locked: 2 blocks per 0.1 s poll
            assert rate_locked > 14, rate_locked
        finally:
            stop.set()
            await asyncio.wait_for(task, 5.0)
            await emu.stop()
        return col

    try:
        col = run(go)
        produced = col.readings_written
        now = datetime.now(UTC)
        stored = sum(len(store.readings(site, None, now)) for site in ("pod-a", "pod-b"))
    finally:
        locker.close()
        store.close()
    assert col.readings_dropped == 0
    assert stored == produced  # every reading polled is in the store: none lost during the lock
