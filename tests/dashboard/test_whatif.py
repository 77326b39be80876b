"""What-if: scenario documents in the engine's TOML format, and the real engine behind the page."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import NOW, ROOT

from connectors.store import SqliteHistorian
from dashboard.auth import CurrentUser, UserRole, settings_for
from dashboard.pages import whatif
from dashboard.scenarios import (
    INTERVENTIONS,
    WhatIfLimits,
    intervention_from_form,
    scenario_from_toml,
    scenario_problems,
    scenario_to_toml,
    to_scenario,
)
from dashboard.services import Services
from dashboard.whatif_engine import EngineRunner, bin_seconds, to_result
from dashboard.whatif_view import WhatIfRequest, WhatIfResult
from twin.errors import ConfigError
from twin.sim.projection import Band, Comparison, Estimate, OrderOnTime, Projection
from twin.sim.scenario import MachineDown, OverflowRouting, ShiftChange, loads_scenario
from twin.spec import FleetSpec

FORM = {
    "machine": "P3", "template": "cnc-mill", "count": 1, "sku": "PLA-1KG", "product": None, "to": "pod-lyon",
    "start_in_h": 18, "duration_h": 8, "end_in_h": 48, "factor": 1.3, "delay_d": 5, "lead_time_d": 6,
    "reorder_point": 20, "reorder_qty": 80, "threshold": 25, "transfer_h": 10, "weekdays": [5],
    "shift_start": "06:00", "shift_end": "14:00",
}


def _doc(fleet: FleetSpec) -> dict[str, object]:
    items = [intervention_from_form(kind, FORM, "pod-berlin", fleet) for kind in INTERVENTIONS]
    return {"name": "everything", "site": "pod-berlin", "at": "2026-01-07T06:00", "horizon_h": 72,
            "replications": 20, "interventions": items}


def test_every_form_kind_saves_toml_the_engine_loads(fleet: FleetSpec) -> None:
    doc = _doc(fleet)
    assert scenario_problems(doc, fleet) == []
    text = scenario_to_toml(doc)
    scenario = loads_scenario(text, "saved.toml", fleet)  # the engine's own parser, as `twin whatif` uses it
    assert scenario.name == "everything"
    assert len(scenario.interventions) == len(INTERVENTIONS)
    down = next(iv for iv in scenario.interventions if isinstance(iv, MachineDown))
    assert (down.machine, down.site, down.start.in_h, down.duration_h) == ("P3", "pod-berlin", 18.0, 8.0)
    overflow = next(iv for iv in scenario.interventions if isinstance(iv, OverflowRouting))
    assert (overflow.from_site, overflow.to_site, overflow.threshold) == ("pod-berlin", "pod-lyon", 25)
    # "add a shift" keeps Berlin's configured shifts and adds the Saturday one
    shifts = next(iv for iv in scenario.interventions if isinstance(iv, ShiftChange)).calendar.shifts
    assert len(shifts) == len(fleet.site("pod-berlin").calendar.shifts) + 1
    assert shifts[-1].weekdays == frozenset({5})


def test_saved_toml_loads_back_into_the_same_document(fleet: FleetSpec) -> None:
    doc = _doc(fleet)
    back = scenario_from_toml(scenario_to_toml(doc), fleet, "saved.toml")
    assert back == doc
    assert to_scenario(back, fleet) == to_scenario(doc, fleet)


@pytest.mark.parametrize("path", sorted((ROOT / "examples" / "scenarios").glob("*.toml")), ids=lambda p: p.stem)
def test_example_scenarios_load_and_save_unchanged(path: Path, fleet: FleetSpec) -> None:
    text = path.read_text()
    doc = scenario_from_toml(text, fleet, path.name)
    assert doc["site"] in {s.id for s in fleet.sites}
    again = loads_scenario(scenario_to_toml(doc), path.name, fleet)
    assert again == loads_scenario(text, path.name, fleet)


def test_limits_are_enforced_with_a_clear_message(fleet: FleetSpec, services: Services) -> None:
    doc = {**_doc(fleet), "replications": 501, "horizon_h": 721}
    text = "\n".join(str(p) for p in scenario_problems(doc, fleet, WhatIfLimits()))
    assert "replications: must be a whole number from 1 to 500 (server limit) (got 501)" in text
    assert "horizon_h: must be between 1 and 720 hours (server limit) (got 721)" in text
    settings = settings_for("127.0.0.1", env={})
    with pytest.raises(ConfigError, match="server limit"):
        whatif.authorise_run(services, settings, CurrentUser(name="e", role=UserRole.ENGINEER), doc)


def test_engine_problems_name_the_toml_table(fleet: FleetSpec) -> None:
    doc = {"name": "x", "site": "pod-berlin", "horizon_h": 24, "replications": 5,
           "interventions": [{"kind": "machine_down", "site": "pod-berlin", "machine": "NOPE", "duration_h": -1}]}
    text = "\n".join(str(p) for p in scenario_problems(doc, fleet))
    assert "machine_down[0].machine: unknown machine (got 'NOPE')" in text
    assert "machine_down[0].duration_h: must be > 0" in text


def test_bins() -> None:
    assert bin_seconds(24 * 3600) == 3600  # hourly up to a week
    assert bin_seconds(720 * 3600) == 5 * 3600  # 30 days: 720 h / 170 bins -> 5 h bins (144 bins)


def _projection(units: float, on_time: float) -> Projection:
    band = Band(metric="cumulative_units", key="s1", t_s=(3600.0, 7200.0), p10=(1.0, 2.0), p50=(2.0, 4.0),
                p90=(3.0, 6.0), mean=(2.0, 4.0))
    kpis = (Estimate(name="units_done", site="s1", mean=units, low=units - 1, high=units + 1, n=5),
            Estimate(name="on_time_rate", site="s1", mean=on_time, low=on_time, high=on_time, n=5),
            Estimate(name="lead_time_h", site="s1", mean=math.nan, low=math.nan, high=math.nan, n=0))
    orders = (OrderOnTime(order="O-1", site="s1", due_s=1800.0, probability=on_time, low=0.1, high=0.9,
                          finish_p50_s=100.0),
              OrderOnTime(order="O-2", site="other", due_s=1800.0, probability=1.0, low=0.5, high=1.0,
                          finish_p50_s=100.0))
    return Projection(replications=5, horizon_s=7200.0, bin_s=3600.0, bands=(band,), kpis=kpis, stockouts=(),
                      orders=orders)


def test_to_result_scales_continues_the_trend_and_skips_what_cannot_be_estimated(fleet: FleetSpec) -> None:
    from dashboard.whatif_view import Actual

    cmp = Comparison(baseline=_projection(10.0, 0.9), scenario=_projection(8.0, 0.6), deltas=(
        Estimate(name="units_done", site="s1", mean=-2.0, low=-3.0, high=-1.0, n=5),
        Estimate(name="on_time_rate", site="s1", mean=-0.3, low=-0.4, high=-0.2, n=5),
        Estimate(name="lead_time_h", site="s1", mean=math.nan, low=math.nan, high=math.nan, n=0)))
    site = fleet.sites[0]
    from dataclasses import replace

    one = replace(fleet, sites=(replace(site, id="s1"),))
    actual = Actual(kpi="units finished", unit="units", t=(NOW - timedelta(hours=1), NOW), values=(0.0, 50.0))
    r = to_result(cmp, name="n", fleet=one, site="s1", at=NOW, horizon_h=2, replications=5, actuals=(actual,))
    base = next(b for b in r.bands if b.kpi == "units finished" and b.variant == "baseline")
    # the fan starts at the fork on the actual's last value (50) and adds the projected units
    assert base.t == (NOW, NOW + timedelta(hours=1), NOW + timedelta(hours=2))
    assert base.p50 == (50.0, 52.0, 54.0) and base.p10 == (50.0, 51.0, 52.0) and base.p90 == (50.0, 53.0, 56.0)
    by = {d.kpi: d for d in r.deltas}
    assert by["on-time delivery"].delta == pytest.approx(-30.0) and by["on-time delivery"].unit == "%"
    assert by["units finished"].ci_low == -3.0
    assert "lead time" not in by and any("lead time" in n for n in r.notes)
    assert [(o.order, o.p_baseline, o.p_scenario) for o in r.orders] == [("O-1", 0.9, 0.6)]  # only this site's
    assert r.orders[0].due == NOW + timedelta(minutes=30)


def test_engine_runner_on_recorded_history(store_path: Path, fleet: FleetSpec) -> None:
    runner = EngineRunner(fleet=fleet, open_historian=lambda: SqliteHistorian(store_path, fleet, readonly=True),
                          clock=lambda: NOW, workers=0)
    doc = {"name": "PK1 down", "interventions": [
        {"kind": "machine_down", "site": "pod-berlin", "machine": "PK1", "start_in_h": 0, "duration_h": 24}]}
    seen: list[tuple[int, int]] = []
    req = WhatIfRequest(site="pod-berlin", scenario=doc, horizon_h=24, replications=4)
    r = runner.run(req, lambda done, total: seen.append((done, total)))
    assert seen[-1] == (4, 4) and r.replications == 4 and r.at == NOW
    by = {d.kpi: d for d in r.deltas}
    # PK1 is Berlin's only pack station, the last step of every routing: down for the whole horizon,
    # nothing can be finished, so the scenario finishes exactly 0 units in every replication
    assert by["units finished"].scenario == 0.0 and by["units finished"].baseline > 0
    units = [b for b in r.bands if b.kpi == "units finished"]
    actual = next(a for a in r.actuals if a.kpi == "units finished")
    assert {b.variant for b in units} == {"baseline", "scenario"}
    for b in units:
        assert b.t[0] == NOW and b.p50[0] == actual.values[-1]  # continues the recorded trend
        assert all(lo <= mid <= hi for lo, mid, hi in zip(b.p10, b.p50, b.p90, strict=True))
        assert len(b.t) == 25  # the fork and 24 hourly bins
    scen = next(b for b in units if b.variant == "scenario")
    assert set(scen.p90) == {actual.values[-1]}  # flat: nothing finishes
    assert WhatIfResult.from_dict(r.to_dict()) == r
    # same inputs and seed, same numbers
    assert runner.run(req, lambda d, t: None).to_dict() == r.to_dict()
    with pytest.raises(ConfigError, match="server limit"):
        runner.run(WhatIfRequest(site="pod-berlin", scenario=doc, horizon_h=24, replications=501), print)


def test_a_fork_from_the_future_or_before_the_history_is_refused_with_the_range(services: Services) -> None:
    settings = settings_for("127.0.0.1", env={})
    engineer = CurrentUser(name="e", role=UserRole.ENGINEER)
    # the fixture's history: ticks every 120 s from NOW - 10 h (02:00 UTC) to NOW (12:00 UTC, the clock)
    span = "the recorded history of pod-berlin runs from 2026-01-07 02:00 UTC to now (2026-01-07 12:00 UTC)"
    base = {"name": "x", "site": "pod-berlin", "horizon_h": 24, "replications": 5, "interventions": []}
    for at, why in (("2026-01-07T13:00", "is in the future"), ("2026-01-06T23:00", "is before the recorded history")):
        with pytest.raises(ConfigError) as refused:
            whatif.authorise_run(services, settings, engineer, {**base, "at": at})
        assert str(refused.value) == f"scenario: at: {why}; {span} (got '{at}')"
    # inside the history (and empty = now) the run is signed
    for at in ("2026-01-07T02:00", "2026-01-07T09:30", ""):
        assert whatif.authorise_run(services, settings, engineer, {**base, "at": at})["token"]


def test_the_fork_time_is_typed_in_24_h_iso_in_the_sites_zone_and_read_as_utc(services: Services) -> None:
    # a text field in the site's time, not the browser's date picker (AM/PM in some locales). Lyon is
    # Europe/Paris, UTC+1 in January: 10:30 typed there is 09:30 UTC, with a space or a T alike
    assert whatif.fork_at("2026-01-07 10:30", "Europe/Paris") == "2026-01-07T09:30"
    assert whatif.fork_at("2026-01-07T10:30", "Europe/Paris") == "2026-01-07T09:30"
    assert whatif.fork_at("", "Europe/Paris") is None  # empty: now
    # and in July (CEST, UTC+2) the same wall time is an hour earlier in UTC
    assert whatif.fork_at("2026-07-07 10:30", "Europe/Paris") == "2026-07-07T08:30"
    for bad in ("7/1/2026 10:30 AM", "2026-01-07", "10:30", "2026-01-07 25:00"):
        with pytest.raises(ValueError, match=r"Fork at: expected a 24 h time like 2026-11-29 14:30"):
            whatif.fork_at(bad, "Europe/Paris")
    # the page opened from a fork (URL: site and UTC time) shows the field in Lyon's time, the zone beside it
    page = whatif.layout(site="pod-lyon", at="2026-01-07T09:30", queries=services.queries)
    by_id = {str(c.id): c for c in _walk(page) if isinstance(getattr(c, "id", None), str)}
    assert (by_id["whatif-at"].type, by_id["whatif-at"].value) == ("text", "2026-01-07 10:30")
    assert by_id["whatif-at-zone"].children == "CET" and by_id["whatif-site"].value == "pod-lyon"
    assert "2026-01-07 10:30 CET (2026-01-07T09:30:00Z)" in by_id["whatif-fork-note"].children
    # the run is refused or signed by the UTC time exactly as before (NOW is 12:00 UTC)
    settings = settings_for("127.0.0.1", env={})
    engineer = CurrentUser(name="e", role=UserRole.ENGINEER)
    base = {"name": "x", "site": "pod-berlin", "horizon_h": 24, "replications": 5, "interventions": []}
    assert whatif.authorise_run(services, settings, engineer, {**base, "at": "2026-01-07T09:30"})["token"]
    with pytest.raises(ConfigError, match="is in the future"):
        whatif.authorise_run(services, settings, engineer, {**base, "at": "2026-01-07T13:00"})


def _walk(c: object) -> list[object]:
    kids = getattr(c, "children", None)
    if kids is None or isinstance(kids, str):
        return [c]
    return [c, *[x for k in (kids if isinstance(kids, list | tuple) else [kids]) for x in _walk(k)]]
