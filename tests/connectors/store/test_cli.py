"""``twin replay`` and ``twin export`` end to end: example config, a real store, the real command."""

from __future__ import annotations

import csv
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from app import main
from connectors.config import load
from connectors.export import parse_time
from connectors.store import SqliteHistorian
from tests.conftest import EXAMPLES
from tests.connectors.store.conftest import T0
from twin import live
from twin.codec import site_state_from_dict
from twin.readings import Reading


@pytest.fixture
def config(tmp_path: Path) -> Path:
    text = (EXAMPLES / "fleet.toml").read_text(encoding="utf-8")
    text, n = re.subn(r'(?m)^path = "[^"]*"', 'path = "history.sqlite"', text, count=1)
    assert n == 1
    out = tmp_path / "fleet.toml"
    out.write_text(text, encoding="utf-8")
    return out


def test_replay_and_export_commands(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plant = load(config)
    site = plant.fleet.sites[0]
    machine = site.machines[0]
    status = machine.template.signal_of_kind(next(iter({s.kind for s in machine.template.signals
                                                        if s.kind.value == "status"})))
    assert status is not None
    running = next(code for code, st in machine.template.status_codes.items() if st.value == "running")
    h = SqliteHistorian(plant.historian.path, plant.fleet)
    state = live.initial_state(plant.fleet, T0)
    h.write([], states=[state.sites[site.id]])
    for k in range(1, 11):
        now = T0 + timedelta(seconds=k)
        batch = [Reading(ts=now, site=site.id, asset=machine.id, signal=status.name, value=running)]
        state, events = live.apply(plant.fleet, state, batch, now)
        h.write(batch, events=events)
    h.close()

    at = "2026-01-05T08:00:10"  # no offset: UTC
    assert main(["replay", str(config), "--site", site.id, "--at", at, "--json"]) == 0
    got = site_state_from_dict(json.loads(capsys.readouterr().out))
    assert got == state.sites[site.id] and got.as_of == parse_time(at)
    assert main(["replay", str(config), "--site", site.id, "--at", at]) == 0
    text = capsys.readouterr().out
    assert f"site {site.id} as of 2026-01-05T08:00:10+00:00" in text
    line = next(ln for ln in text.splitlines() if f"machine {machine.id} " in ln)
    assert "running     since 2026-01-05T08:00:01+00:00" in line, line
    assert main(["replay", str(config), "--site", site.id, "--at", "2025-01-01"]) == 1  # before any history
    assert main(["replay", str(config), "--site", site.id, "--at", "yesterday"]) == 2

    out = tmp_path / "out" / "series.csv"
    assert main(["export", str(config), "--what", "series", "--from", "2026-01-05T08:00",
                 "--to", "2026-01-05T09:00", "--site", site.id, "--out", str(out), "--mkdir"]) == 0
    rows = list(csv.DictReader(out.read_text(encoding="utf-8").splitlines()))
    # a status signal: its whole code and its name
    assert len(rows) == 10 and {(r["value"], r["status"]) for r in rows} == {(str(running), "running")}
    assert rows[0]["ts"] == "2026-01-05T08:00:01+00:00" and rows[0]["count"] == "1"
    ev = tmp_path / "events.csv"
    assert main(["export", str(config), "--what", "events", "--from", "2026-01-05T08:00",
                 "--to", "2026-01-05T09:00", "--out", str(ev)]) == 0
    events = list(csv.DictReader(ev.read_text(encoding="utf-8").splitlines()))
    assert [e["kind"] for e in events][:1] == ["status_change"] and events[0]["asset"] == machine.id
    capsys.readouterr()
