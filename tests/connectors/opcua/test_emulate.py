"""``twin emulate`` serves a configuration's OPC UA sources from the plant its Modbus PLCs come from.

The emulator (``connectors.emulator.opcua_server.OpcUaServers`` beside ``connectors.emulator.server``)
puts every configured node where its source reads it (a node id, a browse path), its value encoded
so that the source's decoding (scale, enum map) gives back the plant's value, and injects faults by
source id: hang, freeze, dropped connections, kill and revive. Real servers on 127.0.0.1 and free
ports, read by the product's own readers; the plant's clock is the test's, so nothing moves unless
the test moves it.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.config import PlantConfig, load
from connectors.config.opcua import OpcUaNode
from connectors.emulator.opcua_server import OpcUaServers, encode_node
from connectors.emulator.server import Emulator
from connectors.modbus.poller import DevicePoller
from connectors.opcua.source import OpcUaReader
from tests.conftest import free_port
from tests.connectors.opcua.conftest import mixed_text, run
from twin.frozen import FrozenDict
from twin.readings import Quality, Reading

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[3]
MONDAY_10H = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)  # inside pod-a's shifts: the machines work


class Clock:
    """The test's wall clock: it moves only when told."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _by_signal(readings: list[Reading]) -> dict[str, Reading]:
    return {r.signal: r for r in readings}


def test_encoding_is_the_inverse_of_the_sources_decoding() -> None:
    node = OpcUaNode(asset="CNC1", signal="status", ref=("node", "ns=2;s=CNC1.Status"))
    assert encode_node(node, 2) == 2  # as it is
    # the reader multiplies by 0.1 and adds 5: 215.0 degC is served as (215 - 5) / 0.1 = 2100
    assert encode_node(replace(node, scale=0.1, offset=5.0), 215.0) == pytest.approx(2100.0)
    words = replace(node, enum=FrozenDict({"RUN": 2, "IDLE": 1, "7": 3}))
    assert (encode_node(words, 2), encode_node(words, 1)) == ("RUN", "IDLE")
    assert encode_node(words, 3) == 7  # an integer key is served as an integer
    with pytest.raises(ValueError, match="no key of the enum map"):
        encode_node(words, 4)


def test_the_opcua_nodes_carry_the_plants_values_beside_the_modbus_plc(mixed_cfg: PlantConfig) -> None:
    cfg = mixed_cfg
    clock = Clock()

    async def go() -> tuple[dict[str, Reading], dict[tuple[str, str], Reading], dict[tuple[str, str, str], object]]:
        emu = Emulator(cfg.fleet, cfg.modbus, seed=4, speed=60.0, start=MONDAY_10H, clock=clock)
        ua = OpcUaServers(cfg.opcua, emu.plant.values())
        clock.now += timedelta(seconds=30)  # 30 min of plant time: cycles started and finished
        emu.update()
        await emu.start()
        await ua.start()
        await ua.update(emu.plant.values())
        reader, poller = OpcUaReader(cfg.opcua[0], polling=True), DevicePoller(cfg.modbus[0])
        try:
            opcua, modbus = await reader.poll_once(), await poller.poll_once()
        finally:
            await reader.close()
            poller.close()
            await ua.stop()
            await emu.stop()
        return _by_signal(opcua), {(r.asset, r.signal): r for r in modbus}, emu.plant.values()

    opcua, modbus, plant = run(go)
    assert all(r.quality is Quality.GOOD for r in [*opcua.values(), *modbus.values()])
    # CNC1 over OPC UA and P1 over Modbus at the same moment of one plant
    assert opcua["status"].value == plant[("pod-a", "CNC1", "status")]
    assert opcua["good_count"].value == plant[("pod-a", "CNC1", "good_count")]
    assert isinstance(opcua["good_count"].value, int)
    # served as the value / 0.1, read back times 0.1: the plant's temperature to a rounding error
    assert opcua["spindle_temp_c"].value == pytest.approx(plant[("pod-a", "CNC1", "spindle_temp_c")], abs=1e-9)
    assert modbus[("P1", "status")].value == plant[("pod-a", "P1", "status")]


def test_nodes_are_served_at_their_configured_node_ids_and_browse_paths(mixed_cfg: PlantConfig) -> None:
    src = mixed_cfg.opcua[0]
    nodes = (
        OpcUaNode(asset="CNC1", signal="status", ref=("node", "ns=3;s=Mill.Mode"),
                  enum=FrozenDict({"OFF": 0, "IDLE": 1, "RUN": 2, "ALARM": 3, "SETUP": 4, "STOP": 5})),
        OpcUaNode(asset="CNC1", signal="good_count", ref=("path", "0:Objects/2:Hall/2:CNC1/2:PartsOk")),
        OpcUaNode(asset="CNC1", signal="spindle_temp_c", ref=("node", "ns=2;i=5001"), scale=0.5, offset=-10.0),
    )
    source = replace(src, nodes=nodes)
    clock = Clock()

    async def go() -> tuple[dict[str, Reading], dict[tuple[str, str, str], object]]:
        emu = Emulator(mixed_cfg.fleet, (), seed=2, start=MONDAY_10H, clock=clock, sites={"pod-a"})
        ua = OpcUaServers([source], emu.plant.values())
        await ua.start()
        reader = OpcUaReader(source, polling=True)
        try:
            return _by_signal(await reader.poll_once()), emu.plant.values()
        finally:
            await reader.close()
            await ua.stop()

    got, plant = run(go)
    assert [(r.quality, r.reason) for r in got.values()] == [(Quality.GOOD, "")] * 3
    assert got["status"].value == plant[("pod-a", "CNC1", "status")]  # "RUN" on the server is 2 in the twin
    assert got["good_count"].value == plant[("pod-a", "CNC1", "good_count")]
    assert got["spindle_temp_c"].value == pytest.approx(plant[("pod-a", "CNC1", "spindle_temp_c")], abs=1e-9)


def test_faults_by_source_id_hang_freeze_drop_kill(mixed_cfg: PlantConfig) -> None:
    cfg = mixed_cfg
    clock = Clock()
    source_id = cfg.opcua[0].id

    async def go() -> dict[str, list[Reading]]:
        emu = Emulator(cfg.fleet, cfg.modbus, seed=4, speed=60.0, start=MONDAY_10H, clock=clock)
        ua = OpcUaServers(cfg.opcua, emu.plant.values())
        await emu.start()
        await ua.start()
        reader, poller = OpcUaReader(cfg.opcua[0], polling=True), DevicePoller(cfg.modbus[0])
        out: dict[str, list[Reading]] = {}

        async def step() -> None:
            clock.now += timedelta(seconds=1)  # a minute of plant time: the spindle's temperature moves
            emu.update()
            await ua.update(emu.plant.values())

        def plant_now() -> list[Reading]:
            """CNC1's values in the plant now, as readings (``values()`` draws no new noise)."""
            return [Reading.new(clock(), site, asset, sig, v) for (site, asset, sig), v in emu.plant.values().items()
                    if asset == "CNC1"]

        async def settle() -> list[Reading]:
            """Poll until the reader is back (it backs off after a failure)."""
            for _ in range(100):
                got = await reader.poll_once()
                if all(r.quality is Quality.GOOD for r in got):
                    return got
                await asyncio.sleep(0.05)
            raise AssertionError(f"not back: {got}")

        try:
            out["before"] = await reader.poll_once()
            await ua.hang(source_id)
            out["hung"] = await reader.poll_once()
            out["modbus while hung"] = await poller.poll_once()
            await ua.hang(source_id, on=False)
            out["resumed"] = await settle()
            ua.freeze(source_id)
            await step()
            out["frozen"] = await reader.poll_once()
            out["plant while frozen"] = plant_now()
            ua.freeze(source_id, on=False)
            await step()
            out["thawed"] = await reader.poll_once()
            out["plant thawed"] = plant_now()
            out["dropped"] = [Reading.new(clock(), "pod-a", "CNC1", "dropped", ua.drop_connections(source_id))]
            out["after drop"] = await settle()
            await ua.kill(source_id)
            out["killed"] = await reader.poll_once()
            await ua.revive(source_id)
            out["revived"] = await settle()
        finally:
            await reader.close()
            poller.close()
            await ua.stop()
            await emu.stop()
        return out

    out = run(go, timeout_s=60.0)
    assert all(r.quality is Quality.GOOD for r in out["before"])
    # hung: the request is not answered within the source's timeout_s (1 s); the session is given up
    assert {(r.quality, r.reason) for r in out["hung"]} == {(Quality.STALE, "timed out")}
    assert all(r.quality is Quality.GOOD for r in out["modbus while hung"])  # the PLC of the site answers
    temp = "spindle_temp_c"
    frozen, plant_frozen = _by_signal(out["frozen"]), _by_signal(out["plant while frozen"])
    # frozen: the server answers with the value before the step, the plant has moved on (sensor noise)
    assert frozen[temp].quality is Quality.GOOD
    assert frozen[temp].value == pytest.approx(_by_signal(out["resumed"])[temp].value)
    assert frozen[temp].value != pytest.approx(plant_frozen[temp].value)
    assert _by_signal(out["thawed"])[temp].value == pytest.approx(_by_signal(out["plant thawed"])[temp].value)
    assert out["dropped"][0].value == 1  # the reader's one session
    assert all(r.quality is Quality.GOOD for r in out["after drop"])
    killed = out["killed"]
    assert {r.quality for r in killed} == {Quality.STALE} and all(r.reason for r in killed)
    assert all(r.quality is Quality.GOOD for r in out["revived"])


def test_twin_emulate_serves_modbus_and_opcua_and_hangs_a_source_by_id(tmp_path: Path) -> None:
    modbus_port, ua_port = free_port(), free_port()
    path = tmp_path / "fleet.toml"
    path.write_text(mixed_text(modbus_port, ua_port), encoding="utf-8")
    cfg = load(path)
    proc = subprocess.Popen([sys.executable, "-m", "app", "emulate", str(path), "--seed", "3", "--hang", "a-cnc-ua"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            if line.startswith("emulating"):
                break

        async def go() -> tuple[list[Reading], list[Reading]]:
            reader, poller = OpcUaReader(cfg.opcua[0], polling=True), DevicePoller(cfg.modbus[0])
            try:
                return await reader.poll_once(), await poller.poll_once()
            finally:
                await reader.close()
                poller.close()

        opcua, modbus = run(go)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    lines += out.splitlines()
    assert f"a-cnc-ua: opc.tcp://127.0.0.1:{ua_port} OPC UA (pod-a: CNC1)" in lines
    assert any(line.startswith("emulating 1 device(s) and 1 OPC UA source(s)") for line in lines), lines
    assert proc.returncode == 0, lines
    # hung from the start: the connection is accepted, the handshake never answered (2 x timeout_s)
    assert {(r.quality, r.reason) for r in opcua} == {(Quality.STALE, "timed out")}
    assert all(r.quality is Quality.GOOD for r in modbus)


def test_twin_emulate_refuses_a_fault_on_an_unknown_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from app import main as twin_main

    path = tmp_path / "fleet.toml"
    path.write_text(mixed_text(free_port(), free_port()), encoding="utf-8")
    assert twin_main(["emulate", str(path), "--freeze", "a-cnc"]) == 2
    err = capsys.readouterr().err
    assert "--freeze: no emulated Modbus device or OPC UA source with this id (known: a-cell-1, a-cnc-ua)" in err
    assert "a-cnc" in err


def test_a_source_with_a_user_is_served_with_the_password_it_reads(mixed_cfg: PlantConfig,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator lets the source's user in with the password the source itself reads, nobody else."""
    monkeypatch.setenv("TWIN_TEST_EMULATED_PASSWORD", "s3cret-for-the-emulator")
    monkeypatch.setenv("TWIN_TEST_OTHER_PASSWORD", "a guess")
    source = replace(mixed_cfg.opcua[0], user="twin", password_env="TWIN_TEST_EMULATED_PASSWORD", poll=True)
    clock = Clock()

    async def go() -> tuple[list[Reading], list[Reading]]:
        emu = Emulator(mixed_cfg.fleet, (), seed=2, start=MONDAY_10H, clock=clock, sites={"pod-a"})
        ua = OpcUaServers([source], emu.plant.values())
        await ua.start()
        good = OpcUaReader(source)
        guess = OpcUaReader(replace(source, password_env="TWIN_TEST_OTHER_PASSWORD"))
        try:
            return await good.poll_once(), await guess.poll_once()
        finally:
            await good.close()
            await guess.close()
            await ua.stop()

    ok, refused = run(go)
    assert {r.quality for r in ok} == {Quality.GOOD}
    assert {r.quality for r in refused} == {Quality.STALE} and all(r.reason for r in refused)


def test_a_source_whose_password_is_missing_cannot_be_emulated(mixed_cfg: PlantConfig,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWIN_TEST_NO_SUCH_PASSWORD", raising=False)
    source = replace(mixed_cfg.opcua[0], user="twin", password_env="TWIN_TEST_NO_SUCH_PASSWORD")
    with pytest.raises(ValueError, match="OPC UA source a-cnc-ua: the emulator needs the password of user twin"):
        OpcUaServers([source], {})


def test_twin_emulate_says_in_one_line_that_a_port_is_in_use(tmp_path: Path) -> None:
    import socket

    ua_port = free_port()
    path = tmp_path / "fleet.toml"
    path.write_text(mixed_text(free_port(), ua_port), encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ua_port))
        taken.listen()
        done = subprocess.run([sys.executable, "-m", "app", "emulate", str(path), "--duration", "5"], cwd=ROOT,
                              capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"twin emulate: cannot listen on 127.0.0.1:{ua_port}: Address already "
                                                "in use"], done.stderr
