"""Scenario parsing: every problem listed with its path; the example scenarios load."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.twin.sim.helpers import tiny_fleet
from twin.errors import ConfigError
from twin.sim.scenario import (
    CycleTimeFactor,
    MachineDown,
    OverflowRouting,
    ShiftChange,
    loads_scenario,
    parse_scenario,
)
from twin.spec import Role

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

INVALID: list[tuple[str, str, str]] = [
    # (TOML, expected path in the message, expected words)
    ('[[machine_down]]\nmachine = "P9"\nstart_in_h = 1\nduration_h = 2', "machine_down[0].machine", "unknown machine"),
    ('[[machine_down]]\nmachine = "P1"\nstart_in_h = 1\nduration_h = 0', "machine_down[0].duration_h", "> 0"),
    ('[[machine_down]]\nmachine = "P1"\nduration_h = 3', "machine_down[0].start", "required"),
    ('[[machine_down]]\nmachine = "P1"\nstart = "tomorrow"\nduration_h = 3', "machine_down[0].start", "date-time"),
    ('[[machines_added]]\nsite = "s1"\ntemplate = "laser"\ncount = 1', "machines_added[0].template",
     "unknown machine template"),
    ('[[machines_removed]]\nsite = "s1"\ntemplate = "printer"\ncount = 0', "machines_removed[0].count", ">= 1"),
    ('[[cycle_time]]\nrole = "paint"\nfactor = 1.1', "cycle_time[0].role", "unknown role"),
    ('[[cycle_time]]\nrole = "print"\nfactor = "fast"', "cycle_time[0].factor", "must be a number"),
    ('[[demand]]\nfactor = 1.3\nstart_in_h = 10\nend_in_h = 5', "demand[0].end_in_h", "after"),
    ('[[shipment_delay]]\nsku = "XYZ"\ndelay_d = 5', "shipment_delay[0].sku", "unknown SKU"),
    ('[[lead_time]]\nsku = "SUB"\nlead_time_d = 40\ntransport = "rail"', "lead_time[0].transport", "unknown transport"),
    ('[[reorder_policy]]\nsku = "FIL"\nreorder_point = -1\nreorder_qty = 10', "reorder_policy[0].reorder_point",
     ">= 0"),
    ('[[shifts]]\nsite = "s1"\n[[shifts.shift]]\nname = "n"\nweekdays = [7]\nstart = "22:00"\nend = "06:00"',
     "shifts[0].shift[0].weekdays", "weekdays"),
    ('[[overflow]]\nfrom = "s1"\nto = "s1"\ntransfer_h = 2\nthreshold = 5', "overflow[0].to", "differ"),
    ('[[overflow]]\nfrom = "s1"\nto = "s2"\ntransfer_h = 2\nthreshold = 5', "overflow[0].to", "unknown site"),
    ('[[machine_down]]\nmachine = "P1"\nstart_in_h = 1\nduration_h = 2\ncolour = "red"', "machine_down[0].colour",
     "unknown key"),
    ('machine_down = 3', "machine_down", "array of tables"),
    ('name = ""', "name", "non-empty"),
]


@pytest.mark.parametrize(("text", "path", "words"), INVALID, ids=[p for _, p, _ in INVALID])
def test_invalid_scenario_names_the_path(text: str, path: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        loads_scenario(text, "bad.toml", tiny_fleet())
    lines = str(info.value).splitlines()
    assert any(line.startswith(f"bad.toml: {path}: ") and words in line for line in lines), lines


def test_every_problem_is_listed_at_once() -> None:
    text = (
        'bogus = 1\n[[machine_down]]\nmachine = "P9"\nduration_h = -2\n'
        '[[overflow]]\nfrom = "s1"\nto = "s1"\ntransfer_h = 1\nthreshold = 1\n'
    )
    with pytest.raises(ConfigError) as info:
        loads_scenario(text, "many.toml", tiny_fleet())
    paths = [p.path for p in info.value.problems]
    assert paths == ["bogus", "machine_down[0].machine", "machine_down[0].start", "machine_down[0].duration_h",
                     "overflow[0].to"]
    assert str(info.value).startswith("5 problem(s) in many.toml:")


def test_invalid_toml_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        loads_scenario("[[machine_down]\n", "broken.toml")


def test_a_dict_builds_typed_interventions() -> None:
    sc = parse_scenario(
        {
            "name": "mix",
            "machine_down": [{"machine": "P1", "start": datetime(2026, 11, 24, 6, tzinfo=UTC), "duration_h": 8}],
            "cycle_time": [{"role": "print", "factor": 1.2}],
            "overflow": [{"from": "s1", "to": "s1x", "transfer_h": 3, "threshold": 10}],
            "shifts": [{"site": "s1", "shift": [{"name": "d", "weekdays": [0, 1], "start": "06:00",
                                                 "end": "14:00"}]}],
        },
        "dict",
    )
    down, cycle, shifts, overflow = sc.interventions
    assert isinstance(down, MachineDown) and down.start.at == datetime(2026, 11, 24, 6, tzinfo=UTC)
    assert isinstance(cycle, CycleTimeFactor) and cycle.role is Role.PRINT
    assert isinstance(overflow, OverflowRouting) and overflow.threshold == 10
    assert isinstance(shifts, ShiftChange) and shifts.calendar.shifts[0].weekdays == frozenset({0, 1})


def test_example_scenarios_load_against_the_example_fleet() -> None:
    config = pytest.importorskip("connectors.config")
    fleet = config.load(EXAMPLES / "fleet.toml").fleet
    files = sorted((EXAMPLES / "scenarios").glob("*.toml"))
    assert len(files) >= 3
    for f in files:
        sc = loads_scenario(f.read_text(), str(f), fleet)
        assert sc.interventions, f


def test_ambiguous_machine_needs_a_site() -> None:
    config = pytest.importorskip("connectors.config")
    fleet = config.load(EXAMPLES / "fleet.toml").fleet  # "W1" exists at pod-berlin and pod-lyon
    with pytest.raises(ConfigError, match=r"machine_down\[0\]\.site: is required"):
        loads_scenario('[[machine_down]]\nmachine = "W1"\nstart_in_h = 1\nduration_h = 2', "amb.toml", fleet)
