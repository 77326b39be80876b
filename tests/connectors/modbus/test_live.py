"""The connector against real pymodbus servers on 127.0.0.1: the emulator, mbpoll, faults, the CLI."""

from __future__ import annotations

import asyncio
import json
import math
import re
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from app import main as twin_main
from connectors.collector import Collector, LoggingSink
from connectors.config import PlantConfig
from connectors.emulator.server import Emulator
from connectors.modbus.points import encode_point
from connectors.modbus.poller import DevicePoller, Poller
from connectors.modbus.spec import DataType, RegisterKind
from tests.connectors.modbus.conftest import IN_SHIFT
from twin.readings import Quality, Reading
from twin.spec import MachineStatus

pytestmark = pytest.mark.server


def run(coro_fn: Callable[[], Awaitable[Any]], timeout_s: float = 20.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro_fn(), timeout_s)
    return asyncio.run(bounded())


def expected(emu: Emulator, site: str, asset: str, signal: str) -> Any:
    return emu.plant.values()[(site, asset, signal)]


def test_emulator_round_trip_every_point(modbus_cfg: PlantConfig) -> None:
    async def go() -> None:
        emu = Emulator(modbus_cfg.fleet, modbus_cfg.modbus, seed=7)
        await emu.start()
        try:
            for dev in modbus_cfg.modbus:
                dp = DevicePoller(dev)
                readings = await dp.poll_once()
                dp.close()
                assert dp.reachable
                assert len(readings) == len(dev.points)
                points = {(p.asset, p.signal): p for p in dev.points}
                for r in readings:
                    assert r.quality is Quality.GOOD, r
                    want = expected(emu, dev.site, r.asset, r.signal)
                    p = points[(r.asset, r.signal)]
                    if p.type is DataType.STRING:
                        assert r.value == str(want)
                    elif p.type is DataType.FLOAT32:
                        assert r.value == pytest.approx(want, rel=1e-6)  # float32 keeps ~7 digits
                    elif p.scale != 1.0:
                        assert r.value == pytest.approx(want, abs=p.scale / 2)  # rounded to the scale's step
                    else:
                        assert r.value == want
        finally:
            await emu.stop()
        assert emu.writes_received == 0
    run(go)


@pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll not installed")
def test_mbpoll_reads_the_raw_registers_of_the_maps_encoding(modbus_cfg: PlantConfig) -> None:
    dev = next(d for d in modbus_cfg.modbus if d.id == "a-cell-1")

    def mbpoll(table: str, start: int, count: int) -> list[int]:
        out = subprocess.run(
            ["mbpoll", "-m", "tcp", "-p", str(dev.port), "-a", str(dev.device_id), "-t", f"{table}:hex",
             "-0", "-r", str(start), "-c", str(count), "-1", "-q", "127.0.0.1"],
            capture_output=True, text=True, timeout=10, check=True).stdout
        regs = {int(a): int(v, 16) for a, v in re.findall(r"\[(\d+)\]:\s+0x([0-9A-Fa-f]+)", out)}
        return [regs[a] for a in range(start, start + count)]

    async def go() -> None:
        emu = Emulator(modbus_cfg.fleet, [dev], seed=3)
        await emu.start()
        try:
            values = emu.plant.values()
            for p in dev.points:
                table = {RegisterKind.HOLDING: "4", RegisterKind.INPUT: "3"}[p.kind]
                raw = await asyncio.to_thread(mbpoll, table, p.address, p.count)
                want = values[(dev.site, p.asset, p.signal)]
                if p.type is DataType.STRING:
                    want = str(want)
                assert raw == encode_point(p, want), (p.asset, p.signal)
        finally:
            await emu.stop()
    run(go)


@pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll not installed")
def test_writes_are_refused_and_counted(modbus_cfg: PlantConfig) -> None:
    dev = modbus_cfg.modbus[0]

    async def go() -> None:
        emu = Emulator(modbus_cfg.fleet, [dev], seed=3)
        await emu.start()
        try:
            proc = await asyncio.to_thread(subprocess.run, [
                "mbpoll", "-m", "tcp", "-p", str(dev.port), "-a", "1", "-t", "4", "-0", "-r", "0", "-1",
                "127.0.0.1", "5"], capture_output=True, text=True, timeout=10)
            assert proc.returncode != 0 or "Illegal function" in proc.stdout + proc.stderr
            assert emu.writes_received == 1
        finally:
            await emu.stop()
    run(go)


@dataclass
class Recorder:
    """A poller sink that remembers every reading with the loop time it arrived."""

    loop: asyncio.AbstractEventLoop
    seen: list[tuple[float, Reading]] = field(default_factory=list)

    def __call__(self, readings: Any) -> None:
        t = self.loop.time()
        self.seen.extend((t, r) for r in readings)

    def of(self, site: str, assets: set[str], t0: float, t1: float = math.inf) -> list[tuple[float, Reading]]:
        return [(t, r) for t, r in self.seen if t0 <= t < t1 and r.site == site and r.asset in assets]


def test_kill_revive_and_other_devices_keep_their_rate(modbus_cfg: PlantConfig) -> None:
    devs = {d.id: d for d in modbus_cfg.modbus}
    cell, other = devs["a-cell-1"], devs["b-cnc"]
    cell_assets, other_assets = set(cell.assets), set(other.assets)
    period = cell.poll_interval_s  # 0.1 s
    assert cell.bad_after_s == 1.0

    async def go() -> None:
        loop = asyncio.get_running_loop()
        emu = Emulator(modbus_cfg.fleet, modbus_cfg.modbus, seed=1)
        stop_emu, stop = asyncio.Event(), asyncio.Event()
        rec = Recorder(loop)
        emu_task = asyncio.create_task(emu.run(stop_emu))
        await asyncio.sleep(0.2)
        poll_task = asyncio.create_task(Poller(modbus_cfg.modbus, rec, seed=1).run(stop))
        await asyncio.sleep(0.6)
        assert all(r.quality is Quality.GOOD for _, r in rec.of(cell.site, cell_assets, 0.0))
        t_kill = loop.time()
        await emu.kill("a-cell-1")
        await asyncio.sleep(1.5)
        t_revive = loop.time()
        await emu.revive("a-cell-1")
        await asyncio.sleep(1.0)
        stop.set()
        await poll_task
        stop_emu.set()
        await emu_task

        after = rec.of(cell.site, cell_assets, t_kill, t_revive)
        first_stale = min(t for t, r in after if r.quality is Quality.STALE)
        assert first_stale - t_kill <= 2 * period + 0.05  # STALE within two poll periods
        first_bad = min(t for t, r in after if r.quality is Quality.BAD)
        assert first_bad - t_kill >= cell.bad_after_s - 0.05  # not BAD before the configured limit...
        assert first_bad - t_kill <= cell.bad_after_s + 2 * period + 0.1  # ...and soon after it
        assert all(r.quality is not Quality.GOOD for t, r in after if t > first_stale)
        assert all(r.reason for _, r in after if r.quality is not Quality.GOOD)
        # the other devices kept their rate during the outage: 1.5 s at 0.1 s is 15 polls
        polls = {t for t, _ in rec.of(other.site, other_assets, t_kill, t_revive)}
        assert len(polls) >= 12
        assert all(r.quality is Quality.GOOD for _, r in rec.of(other.site, other_assets, t_kill, t_revive))
        # GOOD again without restarting the poller (reconnect backoff is at most 0.2 s here)
        back = [t for t, r in rec.of(cell.site, cell_assets, t_revive) if r.quality is Quality.GOOD]
        assert back and back[0] - t_revive <= 0.6
        last = rec.of(cell.site, cell_assets, loop.time() - 0.3)
        assert last and all(r.quality is Quality.GOOD for _, r in last)
        assert emu.writes_received == 0
    run(go)


def test_exception_codes_hang_freeze_and_restart(modbus_cfg: PlantConfig) -> None:
    cell = next(d for d in modbus_cfg.modbus if d.id == "a-cell-1")

    async def go() -> None:
        emu = Emulator(modbus_cfg.fleet, [cell], seed=5, speed=600.0, start=IN_SHIFT)  # counts production
        await emu.start()
        dp = DevicePoller(cell)
        try:
            # exception 2 on P2's holding registers (protocol 100..111): only those points go BAD
            emu.fault("a-cell-1").fail_range(100, 111, code=2, kind=RegisterKind.HOLDING)
            readings = await dp.poll_once()
            bad = {(r.asset, r.signal) for r in readings if r.quality is Quality.BAD}
            want = {(p.asset, p.signal) for p in cell.points if p.asset == "P2" and p.kind is RegisterKind.HOLDING}
            assert bad == want
            assert {r.reason for r in readings if r.quality is Quality.BAD} == {"exception 2: illegal data address"}
            assert all(r.value is None for r in readings if r.quality is Quality.BAD)
            emu.fault("a-cell-1").clear()
            emu.fault("a-cell-1").fail_range(0, 0, code=4)
            readings = await dp.poll_once()
            assert {r.reason for r in readings if r.asset == "P1" and r.quality is Quality.BAD} == {
                "exception 4: device failure"}
            emu.fault("a-cell-1").clear()
            # a hung device: the first request times out (BAD), the rest are STALE, and the poll is bounded
            emu.fault("a-cell-1").hang = True
            t0 = asyncio.get_running_loop().time()
            readings = await dp.poll_once()
            assert asyncio.get_running_loop().time() - t0 < cell.timeout_s + 0.5
            assert {r.quality for r in readings} == {Quality.BAD, Quality.STALE}
            assert any(r.reason.startswith("timeout after 0.5 s") for r in readings)
            emu.fault("a-cell-1").hang = False
            await asyncio.sleep(0.25)  # past the reconnect backoff (at most 0.2 s)
            readings = await dp.poll_once()
            assert all(r.quality is Quality.GOOD for r in readings)
            # frozen values do not move while plant time runs 600x
            emu.fault("a-cell-1").frozen = True
            before = {(r.asset, r.signal): r.value for r in await dp.poll_once()}
            await asyncio.sleep(0.2)
            emu.update()
            assert {(r.asset, r.signal): r.value for r in await dp.poll_once()} == before
            emu.fault("a-cell-1").frozen = False
            # a PLC restart: counters back to 0, connections dropped, the poller reconnects
            emu.plant.advance(emu.plant.now + timedelta(hours=6))  # P1/P2: 600 s cycles of 4 parts
            emu.update()
            counts = [r.value for r in await dp.poll_once() if r.signal == "good_count"]
            assert len(counts) == 2 and all(isinstance(v, int) and v > 0 for v in counts)
            emu.restart("a-cell-1")  # no update runs after this: the images hold the reset counters
            readings = []
            for _ in range(10):
                readings = await dp.poll_once()
                if dp.reachable:
                    break
                await asyncio.sleep(0.1)
            assert dp.reachable
            assert [r.value for r in readings if r.signal == "good_count"] == [0, 0]
        finally:
            dp.close()
            await emu.stop()
        assert emu.writes_received == 0
    run(go)


def _write_cfg(modbus_cfg: PlantConfig, tmp_path: Path) -> Path:
    from tests.connectors.modbus.conftest import fleet_text
    ports = {d.id: d.port for d in modbus_cfg.modbus}
    path = tmp_path / "fleet.toml"
    path.write_text(fleet_text(p15020=ports["a-cell-1"], p15021=ports["a-cnc"], p15022=ports["b-cnc"]))
    return path


def test_poll_command_json_table_and_exit_code(modbus_cfg: PlantConfig, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_cfg(modbus_cfg, tmp_path)

    async def go() -> tuple[int, int, int]:
        emu = Emulator(modbus_cfg.fleet, modbus_cfg.modbus, seed=2)
        await emu.start()
        try:
            ok = await asyncio.to_thread(twin_main, ["poll", str(path), "--once", "--json"])
            table = await asyncio.to_thread(twin_main, ["poll", str(path), "--device", "a-cnc", "--once"])
            await emu.kill("b-cnc")
            down = await asyncio.to_thread(twin_main, ["poll", str(path), "--device", "b-cnc", "--once"])
        finally:
            await emu.stop()
        return ok, table, down

    ok, table, down = run(go)
    out = capsys.readouterr().out
    assert (ok, table, down) == (0, 0, 1)
    rows = json.loads(out[: out.index("]\n") + 1])
    assert len(rows) == sum(len(d.points) for d in modbus_cfg.modbus)
    temp = next(r for r in rows if r["asset"] == "P1" and r["signal"] == "nozzle_temp_c")
    assert (temp["unit"], temp["quality"], temp["register"]) == ("degC", "good", "input 0")
    assert "CNC1" in out and "holding 1" in out  # a-cnc shows addresses in its own numbering (base 1)
    assert "unreachable: b-cnc" in out


def test_poll_command_unknown_device_is_a_usage_error(modbus_cfg: PlantConfig, tmp_path: Path) -> None:
    assert twin_main(["poll", str(_write_cfg(modbus_cfg, tmp_path)), "--device", "nope", "--once"]) == 2


def test_collector_applies_readings_and_hands_them_to_the_sink(modbus_cfg: PlantConfig) -> None:
    class Sink(LoggingSink):
        def __init__(self) -> None:
            super().__init__()
            self.batches: list[tuple[int, int, int]] = []

        def write(self, readings: Any, states: Any = (), events: Any = ()) -> None:
            super().write(readings, states, events)
            self.batches.append((len(readings), len(states), len(events)))

    async def go() -> tuple[Collector, Sink]:
        emu = Emulator(modbus_cfg.fleet, modbus_cfg.modbus, seed=4, start=IN_SHIFT)  # machines at work
        await emu.start()
        sink = Sink()
        col = Collector(modbus_cfg.fleet, modbus_cfg.modbus, sink, flush_interval_s=0.1, seed=1)
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.8, stop.set)
        try:
            await col.run(stop)
        finally:
            await emu.stop()
        return col, sink

    col, sink = run(go)
    site = col.state.sites["pod-a"]
    # in its shift with no order yet (orders arrive ~40 a day, none in the first second): idle, starved
    assert site.machines["P1"].status is MachineStatus.IDLE
    assert site.inventory["PLA-1KG"].on_hand == 12.0  # initial_on_hand, read back as FLOAT32
    assert sink.readings == col.readings_written >= 3 * sum(len(d.points) for d in modbus_cfg.modbus)
    assert sink.states >= 2 and sink.events >= 1  # first checkpoint of both sites; status changes from UNKNOWN
