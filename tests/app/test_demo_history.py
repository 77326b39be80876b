"""The demo's truth (examples/demo-truth.toml) makes an alarm and downtime history worth a Shift page.

One day of the example fleet is backfilled with it into a real SQLite store (tmp_path), every minute,
up to Wednesday 2026-11-18 16:00:17 UTC (17:00 in Berlin), and Berlin's early shift (06:00-14:00
local, 05:00-13:00 UTC) is reported as ``twin report`` does. The counts follow from the file:

* the flood: a chattering nozzle sensor on Berlin's four printers from 10:40 local (09:40 UTC) for
  15 minutes, at least 275 degC (the alarm's threshold is 265) for the first 120 s of every 180 s.
  Samples fall at :17 of each minute, so each 3-minute period shows two samples above and one below:
  ``nozzle-overtemp`` (for_s 30) is raised at the second one (09:41, 09:44, 09:47, 09:50, 09:53) and
  cleared at the third: 5 alarms a printer, 20 in all. The 10-minute periods count from the shift's
  start: 09:40-09:50 holds 3 x 4 = 12 alarms, more than ISA-18.2's 10, the one flood; 09:50-10:00 8.
* the over-temperature: P2's nozzle at least 290 degC for 25 minutes from 08:15 local: one more
  ``nozzle-overtemp:P2`` alarm, raised one sample after 07:15 UTC.
* faults: P1 fails every ~15 operating hours and the mill every ~12: the fault stops carry the
  plant's fault codes (100-120) where the template has a fault code signal (the printers do).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.report import report
from connectors.config import load
from connectors.emulator.backfill import backfill, episode_spans
from connectors.emulator.sensors import apply_episodes
from connectors.emulator.truth import load_truth
from connectors.store import SqliteHistorian
from tests.conftest import EXAMPLES
from twin.readings import Reading
from twin.shift import ShiftWindow
from twin.state import EventKind

END = datetime(2026, 11, 18, 16, 0, 17, tzinfo=UTC)
EARLY = ShiftWindow(name="early", start=datetime(2026, 11, 18, 5, 0, tzinfo=UTC),
                    end=datetime(2026, 11, 18, 13, 0, tzinfo=UTC))


def test_a_day_of_the_demo_truth_has_the_flood_the_over_temperature_and_faults_with_codes(tmp_path: Path) -> None:
    fleet = load(EXAMPLES / "fleet.toml").fleet
    truth = load_truth(EXAMPLES / "demo-truth.toml", fleet)
    start = END - timedelta(days=1)
    # both episodes on the end's own day (days_back 0), at their local times (CET: UTC+1)
    assert [(e.at, t.isoformat()) for e, t in episode_spans(fleet, truth, start, END)] == [
        ("08:15", "2026-11-18T07:15:00+00:00"), ("10:40", "2026-11-18T09:40:00+00:00")]
    store = SqliteHistorian(tmp_path / "twin.sqlite", fleet)
    try:
        backfill(fleet, store, start=start, end=END, step_s=60, seed=7, truth=truth)
        raised = [e for e in store.events("pod-berlin", start, END) if e.kind is EventKind.ALARM_RAISED]
        flood = [e for e in raised if EARLY.start + timedelta(hours=4, minutes=40) <= e.ts
                 < EARLY.start + timedelta(hours=4, minutes=55)]
        assert sorted(str(e.asset) for e in flood) == sorted(["P1", "P2", "P3", "P4"] * 5)
        assert {str(e.data["rule"]) for e in flood} == {"nozzle-overtemp"}
        assert sorted({e.ts.strftime("%H:%M") for e in flood}) == ["09:41", "09:44", "09:47", "09:50", "09:53"]
        hot = [e for e in raised if str(e.data["rule"]) == "nozzle-overtemp"
               and EARLY.start + timedelta(hours=2, minutes=15) <= e.ts < EARLY.start + timedelta(hours=2, minutes=40)]
        assert [(str(e.asset), e.ts.strftime("%H:%M")) for e in hot] == [("P2", "07:16")]

        rep = report(store, fleet, "pod-berlin", EARLY, projection=0)
        assert [(f.start.strftime("%H:%M"), f.end.strftime("%H:%M"), f.alarms) for f in rep.alarms.floods] == [
            ("09:40", "09:50", 12)]
        assert rep.alarms.peak_per_10_min == 12
        coded = [s for s in rep.stops if s.status.value == "fault" and s.fault_code is not None]
        assert coded and all(100 <= int(s.fault_code or 0) <= 120 for s in coded)
        assert {s.reason for s in rep.stops if s.status.value == "fault"} <= {"breakdown"}
    finally:
        store.close()


def test_without_episodes_the_readings_are_left_as_the_plant_made_them() -> None:
    fleet = load(EXAMPLES / "fleet.toml").fleet
    backtest = load_truth(EXAMPLES / "truth.toml", fleet)  # the backtests' truth: no episodes, the same draws
    assert backtest.episodes == ()
    assert episode_spans(fleet, backtest, END - timedelta(days=1), END) == []
    batch = [Reading(ts=END, site="pod-berlin", asset="P2", signal="nozzle_temp_c", value=215.0)]
    assert apply_episodes(batch, [], END) is batch
