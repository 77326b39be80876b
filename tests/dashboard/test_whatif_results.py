"""What-if results as people read them (rounding, pp, colour, own scales), the server's scenario and run
stores, each intervention alone, and the calibration's "downsampled" warning said once per run."""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import NOW

from connectors.store import SqliteHistorian
from dashboard.scenario_store import ResultStore, ScenarioStore, check_name, whatif_folder
from dashboard.whatif_engine import EngineRunner, effect_replications
from dashboard.whatif_view import KpiDelta, WhatIfRequest, WhatIfResult, decimals_for, delta_row, signed
from twin.errors import ConfigError
from twin.sim.kpis import KPIS
from twin.spec import FleetSpec

GREEN, RED, GREY = "#2e7d32", "#c62828", "#5a6066"


def _delta(key: str, base: float, scen: float, lo: float, hi: float) -> KpiDelta:
    """A delta as the engine adapter builds it: raw projection numbers times the KPI's scale."""
    info = KPIS[key]
    k = info.scale
    return KpiDelta(kpi=info.label, unit=info.unit, baseline=base * k, scenario=scen * k, delta=(scen - base) * k,
                    ci_low=lo * k, ci_high=hi * k, higher_is_better=info.higher_is_better,
                    delta_unit=info.delta_unit, decimals=info.decimals)


def test_on_time_delta_reads_in_percentage_points_rounded_to_its_interval() -> None:
    # on-time share 0.9123 -> 0.9181: +0.0058 of a share is +0.58 percentage points; its interval
    # [-0.0018, +0.0138] is 1.56 pp wide, two significant figures of that width -> 1 decimal
    row = delta_row(_delta("on_time_rate", 0.9123, 0.9181, -0.0018, 0.0138))
    assert row.delta_ci == "+0.6 pp [\u22120.2, +1.4]"  # not "0.01 % [-0.0058, 0.0173]"
    assert (row.baseline, row.scenario) == ("91.2 %", "91.8 %")  # the values in %, the difference in pp
    # the interval straddles zero: not a real change, so grey (no green for noise)
    assert row.tone == "unclear" and row.colour == GREY


def test_decimals_follow_the_interval_width() -> None:
    assert decimals_for(1.56) == 1 and decimals_for(15.6) == 0 and decimals_for(0.156) == 2
    assert decimals_for(156.0) == 0  # never negative decimals: 1,234 units stays 1,234
    assert decimals_for(0.0, fallback=2) == 2  # every replication alike: the KPI's own decimals
    assert signed(-0.04, 1) == "0.0" and signed(0.05, 1) == "+0.1" and signed(-1234.4, 0) == "\u22121,234"


def test_colour_only_where_the_interval_excludes_zero_and_by_better_when() -> None:
    # units finished: higher is better; 412 -> 380 units, CI [-45, -19] excludes 0: worse, red
    units = delta_row(_delta("units_done", 412.0, 380.0, -45.0, -19.0))
    assert (units.delta, units.ci, units.tone, units.colour) == ("\u221232 units", "[\u221245, \u221219]", "worse",
                                                                 RED)
    assert (units.baseline, units.scenario) == ("412 units", "380 units")  # width 26 -> whole units
    # lead time: lower is better; 6.4 h -> 5.1 h, CI [-1.9, -0.7] excludes 0: better, green
    lead = delta_row(_delta("lead_time_h", 6.4, 5.1, -1.9, -0.7))
    assert (lead.delta_ci, lead.tone, lead.colour) == ("\u22121.3 h [\u22121.9, \u22120.7]", "better", GREEN)
    # open orders: lower is better, +2 orders with CI [+0.5, +3.5]: worse
    wip = delta_row(_delta("wip_orders", 10.0, 12.0, 0.5, 3.5))
    assert (wip.delta_ci, wip.tone) == ("+2.0 orders [+0.5, +3.5]", "worse")


def test_each_kpi_has_its_own_scale() -> None:
    # one shared axis would put the hours on zero next to hundreds of units; each row is scaled to its
    # own reach (the largest |value| of its interval and estimate), zero in the middle of its track
    units = delta_row(_delta("units_done", 0.0, 50.0, 40.0, 60.0))  # reach 60
    hours = delta_row(_delta("lead_time_h", 0.0, -0.3, -0.5, -0.1))  # reach 0.5
    assert (units.bar_from, units.bar_to, units.dot) == pytest.approx((50 + 50 * 40 / 60, 100.0, 50 + 50 * 50 / 60))
    assert (hours.bar_from, hours.bar_to, hours.dot) == pytest.approx((0.0, 40.0, 20.0))
    # both fill a good part of their track: the small change in hours is as visible as the units'
    assert hours.bar_to - hours.bar_from == pytest.approx(40.0) and units.bar_to - units.bar_from > 16


def test_scenario_store_saves_lists_newest_first_loads_and_refuses_bad_names(tmp_path: Path) -> None:
    store = ScenarioStore(folder=tmp_path / "scenarios", max_bytes=2_000)
    text = 'name = "P3 maintenance"\n\n[[machine_down]]\nsite = "pod-berlin"\nmachine = "P3"\nduration_h = 8\n'
    store.save("P3 maintenance", text, author="alice", at=NOW)
    store.save("Saturday shift", text.replace("P3", "P1"), author="bob", at=NOW + timedelta(hours=1))
    listed = store.list()
    assert [(s.name, s.author, s.saved) for s in listed] == [
        ("Saturday shift", "bob", NOW + timedelta(hours=1)), ("P3 maintenance", "alice", NOW)]
    back = store.load("P3 maintenance")
    assert back.text == text  # the exported TOML unchanged: the file is the interchange format
    assert (tmp_path / "scenarios" / "P3 maintenance.toml").read_text().startswith('#% author = "alice"')
    for bad in ("../etc/passwd", "a/b", "a\\b", ".hidden", "x..y", "", "a" * 81):
        with pytest.raises(ConfigError, match="name"):
            store.save(bad, text, author="alice", at=NOW)
    with pytest.raises(ConfigError, match="over the limit of 2000 bytes"):
        store.save("big", text + "# " + "x" * 2_000 + "\n", author="alice", at=NOW)
    # a file over the limit put in the folder by hand is left out of the list and refused on load
    (tmp_path / "scenarios" / "huge.toml").write_text("# " + "x" * 3_000)
    assert [s.name for s in store.list()] == ["Saturday shift", "P3 maintenance"]
    with pytest.raises(ConfigError, match="over the limit"):
        store.load("huge")
    store.delete("P3 maintenance")
    assert [s.name for s in store.list()] == ["Saturday shift"]
    assert not list((tmp_path / "scenarios").glob(".tmp-*"))  # atomic writes leave no temporary file
    assert check_name("  P3 (copy)  ") == "P3 (copy)"


def test_result_store_keeps_a_bounded_number_and_refuses_odd_ids(tmp_path: Path) -> None:
    store = ResultStore(folder=tmp_path / "results", max_count=3, max_age_s=3600.0)
    folder = tmp_path / "results"
    ids = [store.put({"name": f"run {k}"}, now=NOW) for k in range(3)]
    base = NOW.timestamp()
    for k, rid in enumerate(ids):
        os.utime(folder / f"{rid}.json", (base - 60 * (3 - k), base - 60 * (3 - k)))  # run k stored k min later
    ids += [store.put({"name": f"run {k}"}, now=NOW) for k in (3, 4)]  # each put keeps only the 3 newest
    assert sorted(p.stem for p in folder.glob("*.json")) == sorted(ids[2:])
    # and nothing older than max_age_s (1 h): 61 minutes on, run 2 (stored 1 min before NOW) has gone
    store.prune(NOW + timedelta(minutes=60))
    assert sorted(p.stem for p in folder.glob("*.json")) == sorted(ids[3:])
    assert store.get(ids[4]) == {"name": "run 4", "id": ids[4], "stored": NOW.isoformat()}
    assert store.get("../" + ids[4]) is None and store.get(ids[0]) is None


def test_folder_beside_the_history(tmp_path: Path, fleet: FleetSpec) -> None:
    h = SqliteHistorian(tmp_path / "var" / "history.db", fleet)
    try:
        assert whatif_folder(h) == tmp_path / "var" / "whatif"
    finally:
        h.close()
    assert whatif_folder(object(), {"whatif_dir": str(tmp_path / "w")}) == tmp_path / "w"


class _OnlyRollups:
    """A reader whose every series comes back downsampled (history older than the raw retention)."""

    def __init__(self, inner: SqliteHistorian) -> None:
        self._inner = inner

    def series(self, keys, t0, t1, max_points=1000):  # type: ignore[no-untyped-def]
        return [replace(r, downsampled=True) for r in self._inner.series(keys, t0, t1, max_points)]

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._inner, name)


def test_two_interventions_each_alone_and_downsampled_said_once(store_path: Path, fleet: FleetSpec,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    runner = EngineRunner(fleet=fleet, open_historian=lambda: _OnlyRollups(  # type: ignore[arg-type,return-value]
        SqliteHistorian(store_path, fleet, readonly=True)), clock=lambda: NOW, workers=0)
    down = {"kind": "machine_down", "site": "pod-berlin", "machine": "PK1", "start_in_h": 0, "duration_h": 24}
    faster = {"kind": "cycle_time", "site": "pod-berlin", "factor": 0.8}
    doc = {"name": "two", "interventions": [down, faster]}
    seen: list[tuple[int, int]] = []
    with caplog.at_level(logging.DEBUG):
        r = runner.run(WhatIfRequest(site="pod-berlin", scenario=doc, horizon_h=24, replications=8, seed=3),
                       lambda d, t: seen.append((d, t)))
    said = [rec for rec in caplog.records if "downsampled" in rec.getMessage()]
    # calibration reads 25 series of Berlin, all downsampled here: one line naming the count, not 25 lines
    assert len(said) == 1 and "25 series were downsampled" in said[0].getMessage()
    n = effect_replications(8)
    assert n == 5  # a quarter of 8, at least 5
    assert seen[-1] == (8 + 2 * n, 8 + 2 * n)  # progress counts the runs alone too
    assert [e.intervention.split(" (")[0] for e in r.effects] == ["Machine down", "Cycle-time factor"]
    pk1 = r.effects[0]
    # PK1 is Berlin's only pack station (the last step of every routing): down all horizon, nothing is
    # finished, so alone it loses every unit the baseline makes
    assert pk1.output is not None and pk1.output.scenario == 0.0 and pk1.output.delta == -pk1.output.baseline
    assert pk1.replications == 5 and r.seed == 3
    assert WhatIfResult.from_dict(r.to_dict()) == r


class _Watcher:
    """A page's progress: the bar's calls, and the early result (``partial``) the runner hands over."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []
        self.early: list[WhatIfResult] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))

    def partial(self, result: WhatIfResult) -> None:
        self.early.append(result)


def test_early_bands_are_the_runs_first_replications(store_path: Path, fleet: FleetSpec) -> None:
    runner = EngineRunner(fleet=fleet, open_historian=lambda: SqliteHistorian(store_path, fleet, readonly=True),
                          clock=lambda: NOW, workers=0)
    doc = {"name": "faster", "interventions": [{"kind": "cycle_time", "site": "pod-berlin", "factor": 0.8}]}
    watch = _Watcher()
    req = WhatIfRequest(site="pod-berlin", scenario=doc, horizon_h=24, replications=20)
    final = runner.run(req, watch)
    assert watch.early and watch.calls[0] == (1, 20)  # the first bands handed over before the first progress tick
    early = watch.early[0]
    assert early.replications == 5 and final.replications == 20
    # then redrawn as the run's chunks finish: more replications each time, never the whole run (that is the result)
    counts = [e.replications for e in watch.early]
    assert counts == sorted(counts) and counts[-1] < 20
    # replication i has the same seeds in every run: the early bands are those of a 5-replication run
    five = runner.run(replace(req, replications=5), lambda d, t: None)
    assert early.bands == five.bands and early.deltas == five.deltas
    assert any("first 5 of 20 replications" in n for n in early.notes)


def test_editing_an_intervention_puts_its_values_back_in_the_form(fleet: FleetSpec) -> None:
    from dashboard.pages.whatif import form_values
    from dashboard.scenarios import intervention_from_form

    down = intervention_from_form("machine_down", {"machine": "P3", "start_in_h": 2, "duration_h": 8},
                                  "pod-berlin", fleet)
    assert form_values(down) == {"machine": "P3", "start_in_h": 2, "duration_h": 8}
    shift = intervention_from_form("shifts", {"weekdays": [5], "shift_start": "06:00", "shift_end": "14:00"},
                                   "pod-berlin", fleet)
    # the form edits the added shift (the last one), not the site's configured ones kept before it
    assert form_values(shift) == {"weekdays": [5], "shift_start": "06:00", "shift_end": "14:00"}
