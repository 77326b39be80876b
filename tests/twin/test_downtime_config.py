"""``[sites.downtime]``: the default tree when absent, a custom tree and rules, path-named errors."""

from __future__ import annotations

import pytest

from connectors.config import load_text
from tests.connectors.config.test_config import BASE
from twin.errors import ConfigError
from twin.spec import DEFAULT_DOWNTIME, DowntimeCategory

DEMAND = 'demand = [{ product = "bracket", orders_per_day = 5 }]\n'


def _with(section: str) -> str:
    assert DEMAND in BASE
    return BASE.replace(DEMAND, DEMAND + section + "\n")


def test_absent_section_gives_the_default_tree() -> None:
    site = load_text(BASE, source="base.toml").fleet.site("s1")
    assert site.downtime is DEFAULT_DOWNTIME
    planned = [r.id for r in site.downtime.reasons if r.category is DowntimeCategory.PLANNED]
    unplanned = [r.id for r in site.downtime.reasons if r.category is DowntimeCategory.UNPLANNED]
    assert planned == ["maintenance", "changeover", "scheduled_break", "no_shift"]
    assert unplanned == ["breakdown", "material_shortage", "starved", "blocked", "quality_hold"]
    assert site.downtime.fault == "breakdown" and not site.downtime.fault_codes


def test_custom_tree_rules_and_breaks() -> None:
    text = _with('''
[sites.downtime]
breaks = [{ name = "lunch", days = ["mon"], start = "11:30", end = "12:00" }]
[sites.downtime.reasons]
children = { breakdown = ["nozzle_jam"], nozzle_jam = ["nozzle_clog"] }
[sites.downtime.rules]
fault_codes = { 101 = "nozzle_jam", 102 = "nozzle_clog" }
''')
    dt = load_text(text, source="plant.toml").fleet.site("s1").downtime
    jam, clog = dt.reason("nozzle_jam"), dt.reason("nozzle_clog")
    assert jam is not None and clog is not None
    # sub-reasons take their parent's category; a child may have children of its own
    assert (jam.parent, jam.category) == ("breakdown", DowntimeCategory.UNPLANNED)
    assert (clog.parent, clog.category) == ("nozzle_jam", DowntimeCategory.UNPLANNED)
    assert dict(dt.fault_codes) == {101: "nozzle_jam", 102: "nozzle_clog"}
    assert [(b.name, sorted(b.weekdays)) for b in dt.breaks] == [("lunch", [0])]


def test_bad_references_are_path_named() -> None:
    text = _with('''
[sites.downtime]
breaks = [{ name = "x", days = ["mon"], start = "11:30", end = "11:30" }]
[sites.downtime.reasons]
unplanned = ["breakdown", "breakdown"]
children = { spindle = ["bearing"] }
[sites.downtime.rules]
fault_codes = { 101 = "nozle_jam", 70000 = "breakdown" }
setup = "set-up"
''')
    with pytest.raises(ConfigError) as exc:
        load_text(text, source="plant.toml")
    message = str(exc.value)
    for line in (
        "sites[0].downtime.reasons.unplanned[1]: reason already in the tree at "
        "sites[0].downtime.reasons.unplanned[0] (got 'breakdown')",
        "sites[0].downtime.reasons.children.spindle: no reason with this id in the tree to put sub-reasons under "
        "(got 'spindle')",
        "sites[0].downtime.rules.fault_codes.101: no reason with this id in the tree (got 'nozle_jam')",
        "sites[0].downtime.rules.fault_codes.70000: fault code must be 0..65535 (got 70000)",
        "sites[0].downtime.rules.setup: no reason with this id in the tree (got 'set-up')",
        "sites[0].downtime.breaks[0].end: a break cannot start and end at the same time (got '11:30:00')",
    ):
        assert f"plant.toml: {line}" in message, message  # file, key, what was expected, the value
    assert message.startswith("6 problem(s) in plant.toml"), message


def test_unknown_key_is_refused_by_the_schema() -> None:
    with pytest.raises(ConfigError) as exc:
        load_text(_with("[sites.downtime.rules]\nfault_code = { 101 = 'breakdown' }\n"), source="plant.toml")
    assert "sites[0].downtime.rules.fault_code" in str(exc.value)


@pytest.mark.parametrize("name", ["connectors.config.downtime", "twin.spec"])
def test_docstring_examples(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0
