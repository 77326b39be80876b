"""``twin demo`` shows a mixed site: pod-berlin's printers over OPC UA, the rest of the site on Modbus.

The demo's copy of the example fleet moves P1-P4 (the first cell's machines of its first register
map) from the Modbus cell to an OPC UA source on the port after the last PLC's; ``twin emulate``
serves them from the same plant, ``twin collect`` reads them into the twin. The end-to-end test
runs the demo's processes for real on free ports and compares what the twin stored with what the
emulated OPC UA server serves, read before and after by the product's own reader.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app import build_parser
from app.demo import DEMO_POLL_S, STALE_AFTER_S, _demo_config, _NoSuchSite
from connectors.config import load
from connectors.opcua.source import OpcUaReader
from connectors.store import SqliteHistorian
from tests.conftest import free_port
from tests.connectors.test_demo import _free_port_block, _Output
from twin.readings import Quality, Reading

ROOT = Path(__file__).resolve().parents[2]
FLEET = ROOT / "examples" / "fleet.toml"
PRINTERS = ["P1", "P2", "P3", "P4"]
# the fdm-printer register map: status, good_count, scrap_count, cycle_time_s, fault_code, nozzle_temp_c,
# bed_temp_c, power_kw, spool_g
FDM_SIGNALS = 9


def test_the_mixed_site_is_the_default_on_the_port_after_the_last_plc(tmp_path: Path) -> None:
    args = build_parser().parse_args(["demo"])
    assert (args.opcua_site, args.opcua_port) == ("auto", 0)
    cfg = load(_demo_config(FLEET, tmp_path, 0, free_port(), "auto", 0))
    (ua,) = cfg.opcua
    # the example fleet's 8 PLCs listen on 15020..15027: the OPC UA server on 15028
    assert sorted(d.port for d in cfg.modbus) == list(range(15020, 15028))
    assert ua.endpoint == "opc.tcp://127.0.0.1:15028" and ua.site == "pod-berlin"
    assert list(dict.fromkeys(n.asset for n in ua.nodes)) == PRINTERS
    assert len(ua.nodes) == 4 * FDM_SIGNALS
    cell = next(d for d in cfg.modbus if d.id == "pod-berlin-cell")
    assert cell.assets == ("W1", "CNC1", "QC1", "PK1")  # the rest of the site stays on Modbus
    # polled like the PLCs: a printer is stale after the same STALE_AFTER_S as every other machine
    assert ua.poll and ua.interval_s == DEMO_POLL_S
    p1 = cfg.fleet.site("pod-berlin").machine("P1")
    assert p1 is not None and p1.poll_interval_s * cfg.fleet.stale_after_polls == STALE_AFTER_S


def test_opcua_site_none_and_an_unknown_site(tmp_path: Path) -> None:
    assert not load(_demo_config(FLEET, tmp_path, 0, free_port(), "none", 0)).opcua
    lyon = load(_demo_config(FLEET, tmp_path, 0, free_port(), "pod-lyon", 4850)).opcua
    assert lyon[0].endpoint == "opc.tcp://127.0.0.1:4850" and lyon[0].site == "pod-lyon"
    with pytest.raises(_NoSuchSite, match="no Modbus device of site 'pod-nowhere'"):
        _demo_config(FLEET, tmp_path, 0, free_port(), "pod-nowhere", 0)


def _read(cfg_path: Path) -> tuple[list[Reading], dict[tuple[str, str], str]]:
    source = load(cfg_path).opcua[0]

    async def go() -> tuple[list[Reading], dict[tuple[str, str], str]]:
        reader = OpcUaReader(source, polling=True)
        try:
            return await reader.poll_once(), dict(reader.units)
        finally:
            await reader.close()

    return asyncio.run(go())


@pytest.mark.slow
@pytest.mark.server
def test_the_demos_opcua_printers_go_live_with_the_values_the_emulator_serves(tmp_path: Path) -> None:
    web_port, feeds_port, ua_port = free_port(), free_port(), free_port()
    data_dir = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "demo", "--data-dir", str(data_dir), "--port", str(web_port),
         "--modbus-port-base", str(_free_port_block(8)), "--feeds-port", str(feeds_port),
         "--opcua-port", str(ua_port), "--days", "0.2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    output = _Output(proc)
    try:
        output.wait_for("ready in", 180)
        text = "\n".join(output.lines)
        assert f"emulated OPC UA server: pod-berlin's P1, P2, P3, P4 on opc.tcp://127.0.0.1:{ua_port}" in text
        cfg_path = data_dir / "fleet.toml"
        cfg = load(cfg_path)
        before, units = _read(cfg_path)
        t_before = datetime.now(UTC)
        assert len(before) == 4 * FDM_SIGNALS and all(r.quality is Quality.GOOD for r in before), before
        # the server's EngineeringUnits, from the fleet's signal units (the nodes configure none)
        assert units[("P1", "nozzle_temp_c")] == "degC" and units[("P1", "power_kw")] == "kW"
        store = SqliteHistorian(cfg.historian.path, cfg.fleet, readonly=True)
        try:
            # the collector polls every DEMO_POLL_S (5 s): wait for two polls after the first read
            deadline = time.monotonic() + 60
            stored: dict[tuple[str, str], Reading] = {}
            while time.monotonic() < deadline:
                stored = {(r.asset, r.signal): r for r in store.readings("pod-berlin", t_before, datetime.now(UTC))}
                if all((p, "good_count") in stored for p in PRINTERS) and ("W1", "status") in stored:
                    break
                time.sleep(1.0)
            after, _ = _read(cfg_path)
            state = store.state_at("pod-berlin", datetime.now(UTC))
        finally:
            store.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    rest = output.text()
    assert code == 0, rest
    first = {(r.asset, r.signal): r.value for r in before}
    last = {(r.asset, r.signal): r.value for r in after}
    for p in PRINTERS:
        # counters only grow: what the twin stored between the two reads of the server lies between them
        got = stored[(p, "good_count")]
        assert got.quality is Quality.GOOD
        assert first[(p, "good_count")] <= got.value <= last[(p, "good_count")], (p, got)
        if first[(p, "status")] == last[(p, "status")]:  # no change in between: the twin got that status code
            assert stored[(p, "status")].value == first[(p, "status")]
        assert state is not None and state.machines[p].status_quality is Quality.GOOD  # live in the twin
    assert ("W1", "status") in stored and stored[("W1", "status")].quality is Quality.GOOD  # Modbus, same site
    assert "write requests received: 0" in (data_dir / "emulator.log").read_text()


def test_the_files_own_opcua_servers_are_emulated_on_127_0_0_1(tmp_path: Path) -> None:
    """A plant file whose S1 (pod-lyon) is read from an OPC UA server on the plant network: the demo's
    copy keeps the source and its port, on 127.0.0.1, where ``twin emulate`` serves it."""
    text = FLEET.read_text(encoding="utf-8")
    s1 = '  { asset = "S1", map = "sls-printer", offset = 0 },\n'
    assert s1 in text
    own = ('\n[[sources.opcua]]\nid = "lyon-s1"\nsite = "pod-lyon"\nendpoint = "opc.tcp://10.20.1.7:4840/s1"\n'
           'nodes = [{ asset = "S1", signal = "status", node = "ns=2;s=S1.status" }]\n')
    plant = tmp_path / "plant.toml"
    plant.write_text(text.replace(s1, "") + own, encoding="utf-8")
    cfg = load(_demo_config(plant, tmp_path, 0, free_port(), "auto", 0))
    assert [(s.id, s.endpoint) for s in cfg.opcua] == [("lyon-s1", "opc.tcp://127.0.0.1:4840/s1"),
                                                        ("pod-berlin-opcua", "opc.tcp://127.0.0.1:15028")]
