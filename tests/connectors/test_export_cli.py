"""``twin export`` refusals and readable cells (issue 17, item 12): a real store, the real command in-process."""

from __future__ import annotations

import csv
import re
from datetime import timedelta
from pathlib import Path

import pytest

from app import main
from connectors.config import load
from connectors.store import SqliteHistorian
from tests.conftest import EXAMPLES
from tests.connectors.store.conftest import T0
from twin import live
from twin.frozen import FrozenDict
from twin.readings import Reading
from twin.spec import SignalKind, SiteId
from twin.state import Event, EventKind


@pytest.fixture
def config(tmp_path: Path) -> Path:
    text = (EXAMPLES / "fleet.toml").read_text(encoding="utf-8")
    text, n = re.subn(r'(?m)^path = "[^"]*"', 'path = "history.sqlite"', text, count=1)
    assert n == 1
    out = tmp_path / "fleet.toml"
    out.write_text(text, encoding="utf-8")
    return out


def _export(config: Path, *args: str) -> int:
    return main(["export", str(config), *args])


def test_a_reversed_range_is_refused_naming_both_flags(config: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "a.csv"
    code = _export(config, "--what", "events", "--from", "2026-01-05T09:00", "--to", "2026-01-05T08:00",
                   "--out", str(out))
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "--from 2026-01-05T09:00:00+00:00 is after --to 2026-01-05T08:00:00+00:00" in err, err


def test_a_missing_out_folder_is_refused_unless_mkdir(config: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    plant = load(config)
    SqliteHistorian(plant.historian.path, plant.fleet).close()  # an empty store
    out = tmp_path / "no" / "such" / "a.csv"
    args = ("--what", "events", "--from", "2026-01-05T08:00", "--to", "2026-01-05T09:00", "--out", str(out))
    assert _export(config, *args) == 2
    err = capsys.readouterr().err
    assert f"--out: folder {out.parent} does not exist" in err, err
    assert not (tmp_path / "no").exists()  # nothing created
    assert _export(config, *args, "--mkdir") == 0
    assert out.read_text(encoding="utf-8").splitlines()[0] == "ts,site,asset,kind,message,data"


def test_a_status_series_is_exported_as_its_code_and_name(config: Path, tmp_path: Path) -> None:
    plant = load(config)
    site = plant.fleet.sites[0]
    machine = site.machines[0]
    status = machine.template.signal_of_kind(SignalKind.STATUS)
    assert status is not None
    running = next(code for code, st in machine.template.status_codes.items() if st.value == "running")
    h = SqliteHistorian(plant.historian.path, plant.fleet)
    state = live.initial_state(plant.fleet, T0)
    h.write([], states=[state.sites[site.id]])
    for k in range(1, 4):
        batch = [Reading(ts=T0 + timedelta(seconds=k), site=site.id, asset=machine.id, signal=status.name,
                         value=running)]
        h.write(batch)
    h.close()
    out = tmp_path / "series.csv"
    assert _export(config, "--what", "series", "--from", "2026-01-05T08:00", "--to", "2026-01-05T09:00",
                   "--site", site.id, "--out", str(out)) == 0
    rows = list(csv.DictReader(out.read_text(encoding="utf-8").splitlines()))
    # three raw samples of the same code: the whole code (not "2.0") and its name
    assert [(r["value"], r["min"], r["max"], r["count"], r["status"]) for r in rows] == [
        (str(running), str(running), str(running), "1", "running")] * 3


def test_the_alarm_journal_has_the_dashboards_columns_and_priority_names(config: Path, tmp_path: Path) -> None:
    plant = load(config)
    site = plant.fleet.sites[0]

    def ev(s: int, kind: EventKind, **data: object) -> Event:
        return Event(ts=T0 + timedelta(seconds=s), site=SiteId(site.id), asset="P1", kind=kind,
                     message=f"{kind.value} msg", data=FrozenDict(data))  # type: ignore[arg-type]

    h = SqliteHistorian(plant.historian.path, plant.fleet)
    h.write([], events=[
        ev(0, EventKind.ALARM_RAISED, rule="hot", priority=2, value=251.5),
        ev(5, EventKind.ALARM_ACKNOWLEDGED, rule="hot", priority=2, user="ann", comment="=HYPERLINK(1)"),
        ev(9, EventKind.ALARM_CLEARED, rule="hot", priority=2),
        ev(20, EventKind.ALARM_RAISED, rule="cold", priority=4, value=1.0),
    ])
    h.close()
    out = tmp_path / "alarms.csv"
    assert _export(config, "--what", "alarms", "--from", "2026-01-05T08:00", "--to", "2026-01-05T09:00",
                   "--out", str(out)) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    # the dashboard's journal CSV columns; one row per alarm raised, oldest first; 2 = MEDIUM, 4 = URGENT
    assert lines == [
        "site,asset,priority,message,state,raised,cleared,acked_by,acked_at,comment,shelved,shelved_by,shelved_why,"
        "suppressed,probability,predicted_at",
        f"{site.id},P1,MEDIUM,alarm_raised msg,cleared/acked,2026-01-05T08:00:00+00:00,2026-01-05T08:00:09+00:00,"
        "ann,2026-01-05T08:00:05+00:00,'=HYPERLINK(1),no,,,no,,",
        f"{site.id},P1,URGENT,alarm_raised msg,active/unacked,2026-01-05T08:00:20+00:00,,,,,no,,,no,,",
    ]
