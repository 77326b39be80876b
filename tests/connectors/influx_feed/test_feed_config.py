"""``[[sources.influx]]`` in the plant configuration: what loads, and every mistake reported with its key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from connectors.config import load, load_text
from connectors.config.influx_feed import InfluxApi
from tests.conftest import EXAMPLES
from twin.errors import ConfigError

EXAMPLE = EXAMPLES / "influx-site.toml"


def test_example_loads_with_feed_intervals_for_staleness() -> None:
    cfg = load(EXAMPLE)
    (feed,) = cfg.influx
    assert (feed.id, feed.site, feed.connection.api, feed.connection.database) == (
        "lyon-telegraf", "pod-lyon", InfluxApi.V1, "telegraf")
    assert len(feed.targets) == 22  # 3 printers x 5 signals, W1 and PK1 x 3, PLA-1KG on_hand
    # machines fed only by the feed are expected every max(poll 5 s, Telegraf 10 s) = 10 s
    assert {m.id: m.poll_interval_s for m in cfg.fleet.site("pod-lyon").machines} == {
        "P1": 10.0, "P2": 10.0, "P3": 10.0, "W1": 10.0, "PK1": 10.0}


def replaced(old: str, new: str) -> str:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text
    return text.replace(old, new, 1)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_text(text, source="plant.toml")
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(("old", "new", "expected"), [
    ('site = "pod-lyon"\npoll', 'site = "pod-paris"\npoll',
     "sources.influx[0].site: no site with this id (got 'pod-paris')"),
    ('asset = "W1", signal = "status"', 'asset = "W9", signal = "status"',
     "sources.influx[0].mappings[5].asset: no machine or SKU with this id at site 'pod-lyon' (got 'W9')"),
    ('asset = "W1", signal = "status"', 'asset = "W1", signal = "temp"',
     "sources.influx[0].mappings[5].signal: not a signal of W1 (it has status, good_count, scrap_count) (got 'temp')"),
    ('assets = ["P1", "P2", "P3"], signal = "status"', 'signal = "status"',
     # without "assets", asset_tag feeds every machine with the signal: W1 is then fed twice
     "sources.influx[0].mappings[5]: W1.status is already fed by sources.influx[0].mappings[0] (feed "
     "'lyon-telegraf') (got 'status')"),
    ('assets = ["P1", "P2", "P3"], signal = "status"', 'assets = ["P1", "P2", "Q7"], signal = "status"',
     "sources.influx[0].mappings[0].assets[2]: no machine or SKU with this id at site 'pod-lyon' (got 'Q7')"),
    ("overlap_s = 30 ", 'overlap_s = "30s" ',
     "sources.influx[0].overlap_s: a duration is a number of seconds (e.g. 30), not text (got '30s')"),
    ("overlap_s = 30 ", "overlap_s = -1 ",
     "sources.influx[0].overlap_s: Input should be greater than or equal to 0 (got -1)"),
    ("timeout_s = 3", "timeout_s = 0",
     "sources.influx[0].timeout_s: Input should be greater than 0 (got 0)"),
    ("timeout_s = 3", "timeout_s = 3\nreconnect_min_s = 5\nreconnect_max_s = 2",
     "sources.influx[0].reconnect_max_s: below reconnect_min_s (got 2.0)"),
    ('database = "telegraf" }', 'database = "telegraf", token = "abc" }',
     "sources.influx[0].connection.token: a secret is never read from the configuration file; name an "
     "environment variable or a file with token_env or token_file"),
    ('database = "telegraf" }', 'bucket = "telegraf" }',
     "sources.influx[0].connection.bucket: does not apply to api 'v1' (got 'telegraf')"),
    ('api = "v1", url = "http://127.0.0.1:8086", database = "telegraf"',
     'api = "v2", url = "http://127.0.0.1:8086", bucket = "telegraf"',
     "sources.influx[0].connection.org: api 'v2' needs org"),
    ('database = "telegraf" }', 'database = "telegraf", username = "twin" }',
     "sources.influx[0].connection.username: a username needs password_env or password_file (got 'twin')"),
    ('url = "http://127.0.0.1:8086"', 'url = "127.0.0.1:8086"',
     "sources.influx[0].connection.url: an InfluxDB URL starts with http:// or https:// (got '127.0.0.1:8086')"),
    ('field = "status", asset = "W1"', 'field = "status", asset = "W1", asset_tag = "host"',
     "sources.influx[0].mappings[5]: give either asset (one machine or SKU) or asset_tag (a tag whose value "
     "names the machine)"),
    ('signal = "power_kw", scale = 0.001', 'signal = "power_kw", scale = 0.001, enum = { ON = 1 }',
     "sources.influx[0].mappings[4].enum: an enum map translates raw values: it cannot be combined with scale "
     "or offset"),
    ('signal = "power_kw", scale = 0.001', 'signal = "power_kw", scale = 0',
     "sources.influx[0].mappings[4].scale: scale must not be 0 (got 0.0)"),
    ('{ measurement = "stock"', '{ measurement = "stock", colour = "red"',
     "sources.influx[0].mappings[11].colour: unknown key (got 'red')"),
])
def test_mistakes_are_reported_on_their_key(old: str, new: str, expected: str) -> None:
    assert expected in problems(replaced(old, new))


def test_a_signal_fed_by_two_feeds_or_by_modbus_and_a_feed_is_refused() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    start = text.index("[[sources.influx]]")
    second = text[start:].replace('id = "lyon-telegraf"', 'id = "lyon-b"', 1)
    found = problems(text + "\n" + second)
    assert "sources.influx[1].id: duplicate feed id (got 'lyon-telegraf')" not in found
    assert ("sources.influx[1].mappings[0]: P1.status is already fed by sources.influx[0].mappings[0] "
            "(feed 'lyon-telegraf') (got 'status')") in found
    modbus = """
[[sources.modbus]]
id = "plc-w1"
site = "pod-lyon"
port = 15020
address_base = 0
points = [{ asset = "W1", signal = "status", kind = "holding", address = 0, type = "UINT16" }]
"""
    found = problems(text + modbus)
    assert found == ["sources.influx[0].mappings[5]: W1.status is already fed by Modbus device 'plc-w1' "
                     "(got 'status')"]


def test_secret_files_resolve_against_the_configuration_folder(tmp_path: Path) -> None:
    text = replaced('database = "telegraf" }',
                    'database = "telegraf", username = "twin", password_file = "secrets/influx.pw" }')
    path = tmp_path / "plant.toml"
    path.write_text(text, encoding="utf-8")
    conn = load(path).influx[0].connection
    assert (conn.username, conn.password_file) == ("twin", tmp_path / "secrets" / "influx.pw")
    assert "password" not in re.sub(r"password_(env|file)", "", repr(conn))
