"""The plant configuration: the examples load; invalid files are rejected with every problem, path-named."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from connectors.config import load, load_text
from twin.errors import ConfigError
from twin.spec import MachineStatus, Role, SiteKind

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "fleet.toml"

# A small valid configuration; each invalid case below changes one thing in it.
BASE = textwrap.dedent(
    """
    [fleet]
    id = "f1"
    name = "Test fleet"

    [[templates]]
    id = "printer"
    role = "print"
    ideal_cycle_time_s = 3600
    status_codes = { 0 = "off", 1 = "idle", 2 = "running", 3 = "fault" }
    signals = [
      { name = "status", kind = "status" },
      { name = "good_count", kind = "good_count" },
      { name = "nozzle_temp_c", kind = "temperature", unit = "degC" },
    ]

    [[products]]
    id = "bracket"
    name = "Bracket"
    routing = ["print"]
    bom = { "PLA" = 0.1 }

    [[sites]]
    id = "s1"
    name = "Site one"
    kind = "point-of-demand"
    timezone = "Europe/Berlin"
    shifts = [{ name = "day", days = ["mon", "tue"], start = "06:00", end = "14:00" }]
    machines = [{ template = "printer", count = 2, id_prefix = "P" }]
    inventory = [
      { sku = "PLA", name = "PLA", kind = "raw", unit = "kg", reorder_point = 5, reorder_qty = 10, \
supplier = "X", lead_time_d = 2 },
    ]
    demand = [{ product = "bracket", orders_per_day = 5 }]

    [[alarms]]
    id = "hot"
    kind = "above"
    priority = "high"
    signal = "nozzle_temp_c"
    threshold = 260
    for_s = 30
    message = "Nozzle hot"
    """
)


def test_base_is_valid() -> None:
    cfg = load_text(BASE, source="base.toml")
    site = cfg.fleet.site("s1")
    # count = 2 with id_prefix "P" gives P1 and P2, both built from the printer template
    assert [m.id for m in site.machines] == ["P1", "P2"]
    assert site.machines[0].template.status_codes[2] is MachineStatus.RUNNING
    assert site.machines[0].role is Role.PRINT


def test_example_fleet_loads() -> None:
    cfg = load(EXAMPLE)
    kinds = {s.kind for s in cfg.fleet.sites}
    assert kinds == {SiteKind.POINT_OF_DEMAND, SiteKind.LAST_MILE}
    assert len(cfg.fleet.sites) == 4
    roles = {m.role for s in cfg.fleet.sites for m in s.machines}
    assert roles == set(Role)  # print, machine, post-process, assemble, inspect, pack all present
    last_mile = next(s for s in cfg.fleet.sites if s.kind is SiteKind.LAST_MILE)
    assert any(it.transport.value == "sea" for it in last_mile.inventory)


INVALID = [
    # (case id, (old, new) replacement in BASE, expected path, expected words in the message)
    ("unknown key", ('name = "Test fleet"', 'name = "Test fleet"\ncolour = "red"'), "fleet.colour", "unknown key"),
    ("wrong type", ("ideal_cycle_time_s = 3600", 'ideal_cycle_time_s = "3600"'),
     "templates[0].ideal_cycle_time_s", "valid number"),
    ("negative cycle time", ("ideal_cycle_time_s = 3600", "ideal_cycle_time_s = -1"),
     "templates[0].ideal_cycle_time_s", "greater than 0"),
    ("unknown role", ('role = "print"', 'role = "weld"'), "templates[0].role", "'print'"),
    ("missing template", ('template = "printer", count', 'template = "laser", count'),
     "sites[0].machines[0].template", "no template with this id"),
    ("bad time zone", ('timezone = "Europe/Berlin"', 'timezone = "Mars/Olympus"'), "sites[0].timezone",
     "unknown IANA time zone"),
    ("unknown status", ('3 = "fault" }', '3 = "broken" }'), "templates[0].status_codes.3", "'fault'"),
    ("bad weekday", ('days = ["mon", "tue"]', 'days = ["mon", "tuesday"]'), "sites[0].shifts[0].days[1]",
     "'tue'"),
    ("missing product", ('demand = [{ product = "bracket"', 'demand = [{ product = "widget"'),
     "sites[0].demand[0].product", "no product with this id"),
    ("bom not stocked", ('bom = { "PLA" = 0.1 }', 'bom = { "PLA" = 0.1, "ABS" = 0.2 }'),
     "sites[0].demand[0].product", "does not stock: ['ABS']"),
    ("routing role missing", ('routing = ["print"]', 'routing = ["print", "pack"]'),
     "sites[0].demand[0].product", "no machine for routing step(s) ['pack']"),
    ("alarm on unknown signal", ('signal = "nozzle_temp_c"', 'signal = "spindle_temp_c"'), "alarms[0].signal",
     "no watched template has this signal"),
    ("alarm without threshold", ("threshold = 260\n", ""), "alarms[0]", "needs signal and threshold"),
    ("machine id and count", ("count = 2, id_prefix", 'id = "X", count = 2, id_prefix'), "sites[0].machines[0]",
     "either id, or count"),
    ("token in file", ('[fleet]', '[historian]\nkind = "sqlite"\ntoken = "s3cret"\n\n[fleet]'), "historian.token",
     "never read from the configuration file"),
    ("counter width on a temperature", ('unit = "degC" }', 'unit = "degC", counter_bits = 16 }'),
     "templates[0].signals[2].counter_bits", "only counters"),
    ("not toml", ('name = "Test fleet"', 'name = "Test fleet'), "", "not valid TOML"),
    ("missing required", ('name = "Site one"\n', ""), "sites[0].name", "required key is missing"),
]


@pytest.mark.parametrize(("case", "change", "path", "words"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_file_names_the_key(case: str, change: tuple[str, str], path: str, words: str) -> None:
    old, new = change
    assert old in BASE, f"test case {case!r} does not apply"
    text = BASE.replace(old, new, 1)
    with pytest.raises(ConfigError) as info:
        load_text(text, source="plant.toml")
    message = str(info.value)
    assert message.startswith("plant.toml: ") or "problem(s) in plant.toml" in message
    assert f"plant.toml: {path}" in message, message
    assert words in message, message


def test_duplicate_ids_and_every_problem_listed_at_once() -> None:
    text = BASE.replace(
        'machines = [{ template = "printer", count = 2, id_prefix = "P" }]',
        'machines = [{ template = "printer", count = 2, id_prefix = "P" }, { template = "printer", id = "P2" },'
        ' { template = "nope", id = "Z1" }]',
    )
    text += text[text.index("[[sites]]"):text.index("[[alarms]]")]  # the same site again
    with pytest.raises(ConfigError) as info:
        load_text(text, source="plant.toml")
    message = str(info.value)
    problems = info.value.problems
    # duplicate machine P2 in each copy of the site, the missing template in each copy, the duplicate site id
    assert "plant.toml: sites[0].machines[1]: machine id 'P2' already defined at sites[0].machines[0]" in message
    assert "plant.toml: sites[0].machines[2].template: no template with this id (got 'nope')" in message
    assert "plant.toml: sites[1].id: duplicate site id (got 's1')" in message
    assert len(problems) >= 5
    assert message.splitlines()[0] == f"{len(problems)} problem(s) in plant.toml:"


def test_structural_errors_all_reported() -> None:
    text = BASE.replace("ideal_cycle_time_s = 3600", "ideal_cycle_time_s = 0").replace(
        'timezone = "Europe/Berlin"', 'timezone = "Europe/Berlin"\nfloors = 2'
    )
    with pytest.raises(ConfigError) as info:
        load_text(text, source="plant.toml")
    paths = {p.path for p in info.value.problems}
    assert {"templates[0].ideal_cycle_time_s", "sites[0].floors"} <= paths


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: \(top level\): cannot read file"):
        load(tmp_path / "nope.toml")


def test_twin_check_prints_summary_and_exits_2_on_invalid(tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "app", "check", str(EXAMPLE)],
                        capture_output=True, text=True, check=False, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert "OK: fleet 'northwind'" in ok.stdout
    assert "lm-rotterdam" in ok.stdout and "last-mile" in ok.stdout
    assert "total: 4 sites, 34 machines" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(BASE.replace('timezone = "Europe/Berlin"', 'timezone = "Nowhere/City"'))
    res = subprocess.run([sys.executable, "-m", "app", "check", str(bad)],
                         capture_output=True, text=True, check=False, cwd=ROOT)
    assert res.returncode == 2
    assert f"{bad}: sites[0].timezone: unknown IANA time zone (got 'Nowhere/City')" in res.stderr
    assert "Traceback" not in res.stderr


def test_historian_path_resolved_next_to_the_file() -> None:
    cfg = load(EXAMPLE)
    assert cfg.historian.kind == "sqlite"
    assert cfg.historian.path == (ROOT / "var" / "northwind.db")
