"""The docker deployment, validated as far as this machine allows (no Docker engine here):
the compose file is valid for docker-compose, the image's files exist, its plant configuration is
the example fleet, every service's command is a valid `twin` command, and the trial stack's
emulator + collector commands run for real, writing to a line-protocol server (VictoriaMetrics)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w
import yaml

from app import build_parser
from connectors.config import load, load_text
from tests.conftest import free_port
from tests.connectors.influx.conftest import VictoriaMetrics

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"


def _compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_compose_file_is_valid_for_docker_compose(tmp_path: Path) -> None:
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is not installed (scripts/test.sh installs it)"
    work = tmp_path / "docker"
    shutil.copytree(DOCKER, work)
    (work / "users.toml").write_text("")
    res = subprocess.run([exe, "-f", str(work / "compose.yaml"), "--env-file", str(work / ".env.example"),
                          "--profile", "trial", "config"], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    config = yaml.safe_load(res.stdout)
    assert set(config["services"]) == {"influxdb", "collector", "dashboard", "emulator"}
    # InfluxDB 2.x is initialised with org, bucket and token; the token reaches the twin only by environment
    init = config["services"]["influxdb"]["environment"]
    assert init["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    assert init["DOCKER_INFLUXDB_INIT_ORG"] == "northwind" and init["DOCKER_INFLUXDB_INIT_BUCKET"] == "twin"
    assert config["services"]["collector"]["environment"]["INFLUX_TOKEN"] == init["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]
    # a secret missing from the env file is an error, not an empty default
    (work / "empty.env").write_text("")
    res = subprocess.run([exe, "-f", str(work / "compose.yaml"), "--env-file", str(work / "empty.env"), "config"],
                         capture_output=True, text=True, check=False)
    assert res.returncode != 0 and "set INFLUXDB_ADMIN_PASSWORD" in res.stderr


def test_image_is_slim_pinned_and_non_root() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", text, flags=re.M)
    assert bases and all(re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+( AS \w+)?", b) or ":" in b for b in bases)
    assert all(re.search(r":\d+\.\d+\.\d+-slim", b) for b in bases)  # pinned to a patch release, slim
    assert re.search(r"^USER twin$", text, flags=re.M)
    for src in re.findall(r"^COPY (?!--from)(\S+)", text, flags=re.M):
        assert (ROOT / src).exists(), f"the image copies {src}, which does not exist"


def test_docker_plant_is_the_example_fleet() -> None:
    docker_cfg = load(DOCKER / "plant.toml")
    example = load(ROOT / "examples" / "fleet.toml")
    assert docker_cfg.fleet == example.fleet
    assert docker_cfg.historian.kind == "influxdb" and docker_cfg.historian.token_env == "INFLUX_TOKEN"
    assert {d.host for d in docker_cfg.modbus} == {"emulator"}


def test_every_service_command_is_a_valid_twin_command() -> None:
    parser = build_parser()
    for name, service in _compose()["services"].items():
        if name == "influxdb":
            continue
        args = parser.parse_args(service["command"])
        assert args.command == service["command"][0]
        assert args.config == "/etc/twin/plant.toml"


@pytest.mark.server
@pytest.mark.slow
def test_trial_stack_commands_run_and_reach_the_line_protocol_server(tmp_path: Path) -> None:
    """The emulator and collector services' own commands, run directly against a real server."""
    vm = VictoriaMetrics(port=free_port(), data=tmp_path / "vm")
    vm.start()
    try:
        raw = tomllib.loads((DOCKER / "plant.toml").read_text())
        raw["historian"]["url"] = vm.url
        raw["historian"]["path"] = str(tmp_path / "buffer.db")
        raw["sources"]["modbus"] = [d for d in raw["sources"]["modbus"] if d["site"] == "pod-berlin"]
        for d in raw["sources"]["modbus"]:
            d["host"], d["port"], d["poll_interval_s"] = "127.0.0.1", free_port(), 0.5
        drop = tmp_path / "feeds" / "in"
        raw["feeds"]["drop_dir"], raw["feeds"]["poll_s"] = str(drop), 0.5
        raw["feeds"]["http"]["listen"] = f"127.0.0.1:{free_port()}"
        cfg_path = tmp_path / "plant.toml"
        cfg_path.write_text(tomli_w.dumps(raw))
        load_text(cfg_path.read_text())  # still valid
        env = {**os.environ, "INFLUX_TOKEN": "trial-token-not-printed", "TWIN_FEEDS_TOKEN": "feeds-token-not-printed"}
        services = _compose()["services"]
        emu_cmd = [c if c != "/etc/twin/plant.toml" else str(cfg_path) for c in services["emulator"]["command"]]
        emu_cmd = [("127.0.0.1" if c == "0.0.0.0" else c) for c in emu_cmd]  # tests bind loopback only
        emu_cmd = [(str(drop) if c == "/var/lib/twin/feeds/in" else c) for c in emu_cmd]
        col_cmd = [c if c != "/etc/twin/plant.toml" else str(cfg_path) for c in services["collector"]["command"]]
        drop.mkdir(parents=True)
        order = ('{"id": "ERP-1", "version": 1, "site": "pod-berlin", "product": "custom-bracket", "qty": 2, '
                 '"created": "2026-11-23T08:00:00Z", "due": "2026-11-25T08:00:00Z"}\n')
        (drop / ".orders-erp.jsonl.part").write_text(order)
        (drop / ".orders-erp.jsonl.part").rename(drop / "orders-erp.jsonl")  # as an ERP export drops a file
        twin = [sys.executable, "-m", "app"]
        emu = subprocess.Popen([*twin, *emu_cmd, "--duration", "12"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        try:
            col = subprocess.run([*twin, *col_cmd, "--duration", "6"], env=env, capture_output=True, text=True,
                                 timeout=60, check=False, cwd=tmp_path)
        finally:
            emu.terminate()
            emu_out, _ = emu.communicate(timeout=20)
        assert col.returncode == 0, col.stderr
        assert "trial-token-not-printed" not in col.stdout + col.stderr + emu_out
        assert "feeds-token-not-printed" not in col.stdout + col.stderr + emu_out
        # the ERP's file went through the collector's file drop into the feeds ledger
        assert list((drop / "processed").glob("orders-erp*")), col.stderr
        assert not (drop / "orders-erp.jsonl").exists()
        samples = vm.export('{__name__=~".+",site="pod-berlin"}')
        assert samples, "nothing reached the line-protocol server"
        assets = {s["metric"].get("asset") for s in samples}
        assert {"P1", "CNC1", "PLA-1KG"} <= assets
    finally:
        vm.stop()
