"""The modules' usage examples run; the public API is curated; the whatif command end to end."""

from __future__ import annotations

import doctest
import importlib
import json
from pathlib import Path

import pytest

import twin.sim

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
MODULES = ["twin.sim.clock", "twin.sim.stats", "twin.sim.scenario", "twin.sim.montecarlo"]


@pytest.mark.parametrize("name", MODULES)
def test_usage_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0


def test_public_api_is_curated() -> None:
    # that every name of __all__ exists, in twin.sim and every other module: tests/test_public_api.py
    assert {"fork", "run", "simulate", "Projection", "Comparison", "Scenario"} <= set(twin.sim.__all__)


def _whatif(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    cli = pytest.importorskip("app")
    code = cli.main(["whatif", str(EXAMPLES / "fleet.toml"), "--scenario",
                     str(EXAMPLES / "scenarios" / "printer_maintenance.toml"), "--at", "2026-11-23T06:00Z",
                     "--horizon", "2d", "--replications", "4", "--site", "pod-berlin", "--workers", "0", *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_whatif_json_is_deterministic(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _whatif(capsys, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["baseline"]["replications"] == 4 and doc["scenario"]["replications"] == 4
    names = {(d["name"], d["site"]) for d in doc["deltas"]}
    assert ("on_time_rate", "*") in names and ("units_done", "pod-berlin") in names
    assert {"kind": "no_open_orders_empty_queue", "subject": "pod-berlin"} in doc["notes"]
    code2, out2, _ = _whatif(capsys, "--json")
    assert code2 == 0 and json.loads(out2)["deltas"] == doc["deltas"]


def test_whatif_table_and_progress(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _whatif(capsys)
    assert code == 0
    assert "on-time delivery %" in out and "baseline" in out and "scenario" in out
    assert "4/4 replications" in err


def test_whatif_bad_scenario_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cli = pytest.importorskip("app")
    bad = tmp_path / "bad.toml"
    bad.write_text('[[machine_down]]\nmachine = "P3"\nstart_in_h = 1\nduration_h = 0\n')
    code = cli.main(["whatif", str(EXAMPLES / "fleet.toml"), "--scenario", str(bad), "--workers", "0",
                     "--replications", "2", "--horizon", "1d", "--at", "2026-11-23T06:00Z"])
    err = capsys.readouterr().err
    assert code == 2
    assert "machine_down[0].duration_h: must be > 0 (got 0)" in err
    assert "machine_down[0].site: is required" in err  # P3 exists at pod-berlin and pod-austin
