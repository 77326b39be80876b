"""The alarm journal under attack over real HTTP (issue 18): formula injection, oversized and phantom acks.

An engineer signed in to the dashboard (werkzeug's threaded server on 127.0.0.1) acknowledges an
alarm with the comment ``=HYPERLINK(...)``; both exports of the journal, the dashboard's CSV
download and ``twin export --what alarms`` (a subprocess over the same SQLite file), write it as
text (a leading ``'``), never as a formula. A 5 MB comment and an acknowledgement of an alarm that
does not exist are refused by the server, and nothing is added to the journal.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.config import load
from connectors.store import SqliteHistorian
from dashboard import ids
from dashboard.app import PROTECTED_OUTPUTS, create_app
from dashboard.auth import settings_for
from dashboard.services import Services
from tests.conftest import free_port
from tests.dashboard.serve import serving
from tests.reliability.dashboard_rig import ROOT, SECRET, Client, make_plant, open_queries
from twin.state import EventKind

pytestmark = [pytest.mark.server]

FORMULA = '=HYPERLINK("http://evil.example/","click me")'
ALARM = {"site": "pod-lyon", "key": "machine-down:CNC1", "acknowledged": False}  # CNC1 in FAULT (history.py)


@pytest.fixture
def engineer(tmp_path: Path) -> Iterator[tuple[Client, Path]]:
    """Erin signed in to a dashboard over a plant of her own (acks are written); (client, plant folder)."""
    copy = make_plant(tmp_path / "plant")
    queries, store = open_queries(copy)
    auth = settings_for("0.0.0.0", env={"TWIN_SECRET_KEY": SECRET}, users_file=copy / "users.toml",
                        protected=PROTECTED_OUTPUTS)
    app = create_app(Services(queries=queries, cache_dir=tmp_path / "jobs"), auth=auth)
    try:
        with serving(app, free_port()) as url:
            c = Client(url)
            assert c.login("erin", "erin-pw")[0] == 302
            c.request("GET", "/_dash-layout")
            yield c, copy
    finally:
        store.close()


def _callback(c: Client, output: str, inputs: list[dict[str, Any]], state: list[dict[str, Any]]
              ) -> tuple[int, str]:
    component, prop = output.split(".")
    body = {"output": output, "outputs": {"id": component, "property": prop}, "inputs": inputs, "state": state,
            "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"]}
    status, _, text = c.request("POST", "/_dash-update-component", json.dumps(body).encode(),
                                {"Content-Type": "application/json"})
    return status, text


def _ack(c: Client, rows: list[dict[str, Any]], comment: str) -> str:
    status, text = _callback(c, f"{ids.ALARMS_ACK_RESULT}.children",
                             [{"id": ids.ALARMS_ACK, "property": "n_clicks", "value": 1}],
                             [{"id": ids.ALARMS_GRID, "property": "selectedRows", "value": rows},
                              {"id": ids.ALARMS_COMMENT, "property": "value", "value": comment}])
    assert status == 200, text
    return str(json.loads(text)["response"][ids.ALARMS_ACK_RESULT]["children"]["props"]["children"])


def _download(c: Client) -> list[dict[str, str]]:
    status, text = _callback(c, f"{ids.ALARMS_DOWNLOAD}.data",
                             [{"id": ids.ALARMS_EXPORT, "property": "n_clicks", "value": 1}],
                             [{"id": ids.ALARMS_SITES, "property": "value", "value": None},
                              {"id": ids.ALARMS_PRIORITIES, "property": "value", "value": None},
                              {"id": ids.ALARMS_STATES, "property": "value", "value": []},
                              {"id": ids.ALARMS_HOURS, "property": "value", "value": "24 h"},
                              {"id": ids.ALARMS_HIDE, "property": "value", "value": []}])
    assert status == 200, text
    content = json.loads(text)["response"][ids.ALARMS_DOWNLOAD]["data"]["content"]
    return list(csv.DictReader(io.StringIO(content)))


def _acks(plant: Path) -> list[Any]:
    cfg = load(plant / "examples" / "fleet.toml")
    store = SqliteHistorian(plant / cfg.historian.path, cfg.fleet, readonly=True)
    try:
        return [e for e in store.events("pod-lyon", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
                if e.kind is EventKind.ALARM_ACKNOWLEDGED]
    finally:
        store.close()


def test_a_formula_in_an_ack_comment_is_exported_as_text_by_both_exports(
        engineer: tuple[Client, Path], tmp_path: Path) -> None:
    c, plant_copy = engineer
    assert _ack(c, [ALARM], FORMULA) == "1 alarm(s) acknowledged by erin."
    row = next(r for r in _download(c) if r["site"] == "pod-lyon" and r["asset"] == "CNC1")
    assert row["comment"] == "'" + FORMULA and row["acked_by"] == "erin"
    out = tmp_path / "alarms.csv"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "app", "export", "examples/fleet.toml", "--what", "alarms",
                           "--from", "2026-01-07T00:00", "--to", "2026-01-08T00:00", "--site", "pod-lyon",
                           "--out", str(out)], cwd=plant_copy, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    exported = csv.DictReader(io.StringIO(out.read_text(encoding="utf-8")))
    acked = [r for r in exported if r["acked_by"]]  # the dashboard's journal columns
    assert [(r["asset"], r["acked_by"], r["comment"]) for r in acked] == [("CNC1", "erin", "'" + FORMULA)]


def test_an_oversized_comment_and_a_phantom_alarm_are_refused_by_the_server(engineer: tuple[Client, Path]) -> None:
    c, plant_copy = engineer
    before = len(_acks(plant_copy))
    # the page's input stops at 200 characters; a direct request is checked on the server
    assert _ack(c, [ALARM], "x" * 5_000_000) == "comment: at most 200 characters (got 5,000,000)"
    assert _ack(c, [{"site": "pod-lyon", "key": "machine-down:NOPE", "acknowledged": False}], "") == (
        "key: no alarm 'machine-down:NOPE' at pod-lyon (active or in the last 30 days): nothing acknowledged")
    assert _ack(c, [{"site": "pod-nowhere", "key": "machine-down:CNC1", "acknowledged": False}], "") == (
        "site: no site 'pod-nowhere' in the fleet: nothing acknowledged")
    assert len(_acks(plant_copy)) == before  # no phantom entry
    assert _ack(c, [ALARM], "y" * 200) == "1 alarm(s) acknowledged by erin."  # exactly the limit: accepted
    assert len(_acks(plant_copy)) == before + 1
