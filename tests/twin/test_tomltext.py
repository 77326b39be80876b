"""Every reader of TOML from outside turns tomllib's three failure modes into one path-named ConfigError."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

import twin.tomltext
from connectors.config import load, load_text
from connectors.emulator.truth import parse_truth
from twin.errors import ConfigError
from twin.sim.scenario import loads_scenario

FLEET = load(Path(__file__).resolve().parents[2] / "examples" / "fleet.toml").fleet
HOSTILE = {
    "syntax": ("a = = 1", "not valid TOML: Invalid value"),
    "digits": ("a = " + "9" * 5000, "not valid TOML: a number too long"),  # ValueError, not TOMLDecodeError
    "depth": ("a = " + "[" * 1000, "not valid TOML: arrays or tables nested too deep"),  # RecursionError
}


def test_usage_examples_run() -> None:
    result = doctest.testmod(twin.tomltext)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_configuration_scenario_and_truth_readers(case: str) -> None:
    text, message = HOSTILE[case]
    readers = [lambda: load_text(text, source="plant.toml"), lambda: loads_scenario(text, "plant.toml", FLEET),
               lambda: parse_truth(text, FLEET, source="plant.toml")]
    for read in readers:
        with pytest.raises(ConfigError) as err:
            read()
        assert str(err.value).startswith(f"plant.toml: (top level): {message}"), str(err.value)


@pytest.mark.parametrize(("text", "got"), [
    ("x = 0x" + "f" * 5000, "(got an integer of 6021 digits)"),  # hex is not under int()'s 4,300-digit limit
    ("[" + ".".join(["a"] * 5000) + "]", "(got a dict too large to show)"),  # parses, but repr() recurses 5,000 deep
])
def test_a_bad_value_is_quoted_within_bounds(text: str, got: str) -> None:
    # found by bench/check_fuzz.py (10,000 corrupted files): quoting these values raised ValueError and
    # RecursionError out of twin check; 16^5000 has floor(5000 x log10(16)) + 1 = 6021 digits
    with pytest.raises(ConfigError) as err:
        load_text(text, source="plant.toml")
    assert got in str(err.value)
    assert max(len(line) for line in str(err.value).splitlines()) < 300
