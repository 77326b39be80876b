"""The health model's input from the twin's own history (a real SQLite store), and ``twin health`` on it.

Two days of Berlin (8 machines) backfilled every 5 minutes with the degrading truth: what
``load_histories`` reads back from the store is what a twin polling the same plant saw
(``sample_histories`` of a plant with the same seed), and ``twin health`` prints a risk for each
machine with the fallback notes of a history this short.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

import app as cli
from connectors.config import load
from connectors.emulator.backfill import backfill
from connectors.emulator.plant import Plant
from connectors.emulator.truth import load_truth
from connectors.emulator.wear import sample_histories
from connectors.store import SqliteHistorian
from twin.health.history import load_histories
from twin.health.monitor import HealthMonitor
from twin.health.timeline import build_timeline
from twin.spec import FleetSpec, MachineStatus

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).parent
END = datetime(2026, 11, 30, 6, tzinfo=UTC)
START = END - timedelta(days=2)
SITE = "pod-berlin"


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[FleetSpec, Path]:
    full = load(ROOT / "examples" / "fleet.toml").fleet
    fleet = dataclasses.replace(full, sites=(full.site(SITE),))
    db = tmp_path_factory.mktemp("health") / "history.db"
    store = SqliteHistorian(db, fleet)
    try:
        backfill(fleet, store, start=START, end=END, step_s=300.0, seed=7,
                 truth=load_truth(HERE / "degrading_truth.toml", fleet))
    finally:
        store.close()
    return fleet, db


def test_the_store_gives_what_a_polling_twin_saw(stored: tuple[FleetSpec, Path]) -> None:
    fleet, db = stored
    store = SqliteHistorian(db, fleet)
    try:
        read = {h.machine: h for h in load_histories(store, fleet, START, END)}
    finally:
        store.close()
    seen = {h.machine: h for h in sample_histories(
        Plant(fleet, seed=7, start=START, truth=load_truth(HERE / "degrading_truth.toml", fleet)), END, 300.0)}
    assert sorted(read) == sorted(seen) == sorted(str(m.id) for m in fleet.site(SITE).machines)
    for name, h in read.items():
        # the same status changes at the same sample times (at START the store's state is not yet known,
        # and its first reading makes the first change)
        t_start = START.timestamp()
        assert [c for c in h.status if c[0] > t_start] == [c for c in seen[name].status if c[0] > t_start], name
        assert h.status[-1][1] is seen[name].status[-1][1]
        assert set(h.signals) == set(seen[name].signals)
        for sig, (kind, ts, values) in h.signals.items():
            assert kind is seen[name].signals[sig][0]
            _, ts2, values2 = seen[name].signals[sig]
            # the backfill's first sample is at START (the sampler starts one step later); sensor noise
            # is drawn per sample, so the two differ by noise only: a temperature's by at most 2 x 3.3
            # sd of 0.3 degC (+ rounding), a power's by 20 % of at most 7.5 kW rated
            assert np.array_equal(ts[1:], ts2), (name, sig)
            diff = np.abs(values[1:] - values2)
            assert diff.max() <= 2.1 and diff.mean() < 0.5, (name, sig, diff.max())
            assert len(ts) == 2 * 288 + 1
    p1 = read["P1"]
    assert any(s is MachineStatus.RUNNING for _, s in p1.status)
    timeline = build_timeline(list(read.values()), START.timestamp(), END.timestamp())
    assert len(timeline.machines) == 8 and len(timeline.machines[0].t) == 2 * 48


def test_twin_health_prints_risk_and_fallback_notes(stored: tuple[FleetSpec, Path], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    _, db = stored
    text = (ROOT / "examples" / "fleet.toml").read_text(encoding="utf-8")
    config = tmp_path / "fleet.toml"
    config.write_text(text.replace('path = "../var/northwind.db"', f'path = "{db.as_posix()}"'), encoding="utf-8")
    at = END.isoformat()
    assert cli.main(["health", str(config), "--site", SITE, "--at", at, "--days", "2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["at"] == at and doc["from"] == START.isoformat() and doc["horizon_h"] == 8.0
    assert sorted(m["machine"] for m in doc["machines"]) == sorted(["P1", "P2", "P3", "P4", "W1", "CNC1", "QC1",
                                                                    "PK1"])
    for m in doc["machines"]:
        assert m["seen"] is True
        r = m["risk"]
        assert 0.0 <= r["low"] <= r["p"] <= r["high"] <= 1.0 and r["hours"] == 8.0
    # 2 days: no template has 10 failures, so every one is the constant-MTBF hazard and says why
    printers = doc["models"]["fdm-printer"]
    assert printers["kind"] == "constant" and printers["machines"] == 4
    assert "the condition model needs 10" in printers["note"]
    # Monday 2026-11-30 06:00 UTC is 07:00 in Berlin: inside the 06:00-22:00 shifts, 15 h left
    shift = doc["machines"][0]["shift"]
    assert shift is not None and shift["hours"] == pytest.approx(15.0)
    assert cli.main(["health", str(config), "--site", SITE, "--at", at, "--days", "2"]) == 0
    out = capsys.readouterr().out
    assert "fdm-printer: constant-MTBF hazard" in out and "pod-berlin" in out
    # before the history: nothing known, and it says so instead of a risk of 0
    assert cli.main(["health", str(config), "--site", SITE, "--at", "2026-01-01T00:00Z", "--days", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("no history in the window") == 8 and "%" not in out.split("models:")[0].splitlines()[-1]
    assert cli.main(["health", str(config), "--site", "nowhere"]) == 2
    assert "unknown site 'nowhere'" in capsys.readouterr().err


def test_the_monitor_refits_on_its_schedule_not_per_refresh(stored: tuple[FleetSpec, Path]) -> None:
    fleet, db = stored
    store = SqliteHistorian(db, fleet)
    try:
        monitor = HealthMonitor(fleet, days=2, refit_every_s=6 * 3600.0)
        first = monitor.refresh(store, END)
        assert first.refitted and first.model.fitted_until == pytest.approx(END.timestamp() + 1.0)
        assert len(first.machines) == 8
        again = monitor.refresh(store, END + timedelta(hours=1))  # 1 h later: the same model
        assert not again.refitted and again.model is first.model
        later = monitor.refresh(store, END + timedelta(hours=6, seconds=1))  # due: refitted
        assert later.refitted and later.model is not first.model and monitor.model is later.model
    finally:
        store.close()


def test_a_whatif_prepared_on_a_short_history_keeps_the_constant_mtbf(stored: tuple[FleetSpec, Path]) -> None:
    from twin.sim.whatif import prepare

    fleet, db = stored
    store = SqliteHistorian(db, fleet)
    try:
        inputs = prepare(fleet, store, END, sites=[SITE], health_days=2)
    finally:
        store.close()
    # 2 days x 4 printers x ~11 operating h: fewer than the 10 failures the condition model needs, so
    # no machine gets a condition hazard (the fork draws as without), and the notes say why, per template
    assert dict(inputs.hazards) == {}
    notes = dict(n.split(": ", 1) for n in inputs.health_notes)
    assert set(notes) == {str(m.template.id) for m in fleet.site(SITE).machines}
    assert "constant-MTBF hazard" in notes["fdm-printer"] and "needs 10" in notes["fdm-printer"]
