"""OPC UA commissioning and configuration: ``twin browse``, ``twin poll --once``, path-named config errors.

The commands run in-process (``app.main``) against the module's real asyncua server on 127.0.0.1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app import main as twin_main
from connectors.config import load, load_text
from tests.conftest import free_port
from tests.connectors.modbus.conftest import FLEET
from tests.connectors.opcua.conftest import ServerThread, mixed_text
from twin.errors import ConfigError

pytestmark = pytest.mark.server


def test_browse_lists_a_known_variable_with_its_node_id_type_and_value(
        server: ServerThread, capsys: pytest.CaptureFixture[str]) -> None:
    server.call(server.endpoint.set("CNC1", "good_count", 42))
    assert twin_main(["browse", server.endpoint.endpoint, "--depth", "3"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("0:Objects/2:CNC1/2:good_count "))
    assert line.split() == ["0:Objects/2:CNC1/2:good_count", "ns=2;s=CNC1.good_count", "Int64", "42"]
    unit = next(ln for ln in out.splitlines() if ln.startswith("0:Objects/2:CNC1/2:spindle_temp_c/0:Engin"))
    assert unit.split()[-1] == "degC"  # the EngineeringUnits property, shown by its display name
    assert out.splitlines()[0].split() == ["browse", "path", "node", "id", "type", "value"]


def test_browse_of_a_server_that_is_not_there_fails_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
    assert twin_main(["browse", endpoint, "--timeout", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"twin browse: {endpoint}: ") and len(err.splitlines()) == 1, err


def test_poll_once_reads_an_opcua_server_like_a_modbus_device(
        server: ServerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(mixed_text(free_port(), server.port), encoding="utf-8")
    server.call(server.endpoint.set("CNC1", "status", 2))
    assert twin_main(["poll", str(path), "--device", "a-cnc-ua", "--once", "--json"]) == 0
    assert twin_main(["poll", str(path), "--device", "a-cnc-ua", "--once"]) == 0
    out = capsys.readouterr().out
    rows = json.loads(out[: out.index("]\n") + 1])
    by_signal = {r["signal"]: r for r in rows}
    assert set(by_signal) == {"status", "good_count", "spindle_temp_c"}
    status = by_signal["status"]
    assert (status["device"], status["asset"], status["register"], status["value"], status["status"],
            status["quality"]) == ("a-cnc-ua", "CNC1", "ns=2;s=CNC1.status", 2, "running (2)", "good")
    temp = by_signal["spindle_temp_c"]
    assert (temp["value"], temp["unit"]) == (pytest.approx(21.5), "degC")  # scaled; the server's unit
    assert by_signal["good_count"]["register"] == "0:Objects/2:CNC1/2:good_count"
    table = out[out.index("]\n") + 2:].splitlines()
    line = next(ln for ln in table if ln.split()[1:3] == ["CNC1", "spindle_temp_c"])
    assert line.split()[3:] == ["ns=2;s=CNC1.spindle_temp_c", "OPC", "UA", "21.5", "degC", "good"]
    assert table[-1] == "3 points, 0 not good"


def test_poll_names_the_opcua_sources_among_the_known_devices(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(mixed_text(free_port(), free_port()), encoding="utf-8")
    assert twin_main(["poll", str(path), "--device", "nope", "--once"]) == 2
    assert capsys.readouterr().err.strip() == (f"{path}: --device: no Modbus device or OPC UA source with this id "
                                               "(known: a-cell-1, a-cnc-ua) (got 'nope')")


@pytest.mark.parametrize(("old", "new", "key", "message"), [
    ('endpoint = "opc.tcp://127.0.0.1:', 'endpoint = "http://127.0.0.1:', "sources.opcua[0].endpoint",
     "expected opc.tcp://HOST:PORT (a port 1..65535)"),
    ('node = "ns=2;s=CNC1.status"', 'node = "CNC1.status"', "sources.opcua[0].nodes[0].node",
     "not an OPC UA node id: expected ns=N;s=NAME, ns=N;i=NUMBER, ns=N;g=GUID or ns=N;b=BYTES"),
    ('signal = "status", node', 'signal = "colour", node', "sources.opcua[0].nodes[0].signal",
     "not a signal of CNC1"),
    ('sampling_interval_s = 0.05', 'sampling_interval_s = 0.05\nsecurity = "Sign"', "sources.opcua[0].certificate",
     "security Sign needs the client's certificate and private_key"),
    ('sampling_interval_s = 0.05', 'sampling_interval_s = 0.05\npassword = "hunter2"', "sources.opcua[0].password",
     "a password is never written in the configuration: use password_env or password_file"),
    ('browse_path = "0:Objects/2:CNC1/2:good_count"', 'browse_path = "0:Objects/2:CNC1/2:good_count", '
     'node = "ns=2;s=CNC1.good_count"', "sources.opcua[0].nodes[1].node",
     "a node needs exactly one of 'node' (a node id) or 'browse_path'"),
])
def test_a_config_error_names_the_file_the_key_and_what_was_expected(tmp_path: Path, old: str, new: str, key: str,
                                                                       message: str) -> None:
    text = mixed_text(free_port(), free_port())
    assert old in text
    path = tmp_path / "plant.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(path)
    shown = str(info.value)
    assert f"\n{path}: {key}: {message}" in f"\n{shown}", shown
    assert "hunter2" not in shown  # a secret written by mistake is never echoed


def test_a_signal_fed_by_modbus_and_opcua_is_refused() -> None:
    text = mixed_text(free_port(), free_port()).replace('asset = "CNC1", signal = "status"',
                                                        'asset = "P1", signal = "status"')
    with pytest.raises(ConfigError) as info:
        load_text(text, source=FLEET)
    assert "sources.opcua[0].nodes[0].signal: P1.status is already fed by sources.modbus[0]" in str(info.value)


def test_the_opcua_section_loads_with_defaults_and_resolved_paths() -> None:
    cfg = load_text(mixed_text(free_port(), free_port()), source=FLEET)
    (src,) = cfg.opcua
    assert (src.id, src.site, src.security, src.poll, len(src.nodes)) == ("a-cnc-ua", "pod-a", "None", False, 3)
    assert src.nodes[1].ref == ("path", "0:Objects/2:CNC1/2:good_count") and src.nodes[2].scale == 0.1
    cnc1 = cfg.fleet.site("pod-a").machine("CNC1")
    # as often as its values reach the twin: every check of the session (bad_after_s / 4), re-sending them
    assert cnc1 is not None and cnc1.poll_interval_s == pytest.approx(0.25)


def test_twin_check_counts_the_opcua_servers() -> None:
    from app.check import summary

    port = free_port()
    cfg = load_text(mixed_text(free_port(), port), source=FLEET)
    # the mixed site's one server: its id, site, endpoint, security and the 3 nodes it feeds
    assert f"  OPC UA server a-cnc-ua: site pod-a, opc.tcp://127.0.0.1:{port} (security None), 3 nodes" in (
        summary(cfg).splitlines())
