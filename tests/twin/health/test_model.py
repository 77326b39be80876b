"""The failure-risk model on emulated history: it finds the wear the truth file hid, and invents none.

History: the example fleet's Berlin and Austin sites (10 FDM printers among 18 machines), 21 days
sampled every 5 minutes as a polling twin sees them (``connectors.emulator.wear.sample_histories``),
fitted on the first 14 days and scored on the last 7 (held out). ``degrading_truth.toml`` makes the
printers wear out (see its comments); ``plain`` gives them MTBF 40 h without any wear, so that there
are as many failures to learn from and nothing to find.

Measured while writing this (seeds 7-11, the same sizes): printer AUC 0.89-0.91, Brier skill
0.16-0.33; without wear the likelihood-ratio test keeps the constant hazard at every seed.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from connectors.config import load
from connectors.emulator.plant import Plant
from connectors.emulator.truth import load_truth, parse_truth
from connectors.emulator.wear import sample_histories
from twin.health.evaluate import Evaluation, evaluate
from twin.health.model import FitOptions, HealthModel, fit
from twin.health.score import machine_health, risk_trend
from twin.health.timeline import Timeline, build_timeline
from twin.spec import FleetSpec, MachineStatus

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).parent
END = datetime(2026, 11, 30, 6, tzinfo=UTC)
START = END - timedelta(days=21)
SPLIT = (END - timedelta(days=7)).timestamp()
PRINTER = "fdm-printer"


@pytest.fixture(scope="module")
def fleet() -> FleetSpec:
    full = load(ROOT / "examples" / "fleet.toml").fleet
    return dataclasses.replace(full, sites=(full.site("pod-berlin"), full.site("pod-austin")))


Run = tuple[Timeline, HealthModel, dict[str, Evaluation]]


def _run(fleet: FleetSpec, truth_text: str | None, seed: int = 7) -> Run:
    truth = load_truth(HERE / "degrading_truth.toml", fleet) if truth_text is None else parse_truth(truth_text, fleet)
    plant = Plant(fleet, seed=seed, start=START, truth=truth)
    timeline = build_timeline(sample_histories(plant, END, 300.0), START.timestamp(), END.timestamp())
    model = fit(timeline, {str(t.id): t.mtbf_h for t in fleet.templates}, FitOptions(until=SPLIT))
    return timeline, model, evaluate(timeline, model, from_t=SPLIT)


@pytest.fixture(scope="module")
def degrading(fleet: FleetSpec) -> Run:
    return _run(fleet, None)


@pytest.fixture(scope="module")
def plain(fleet: FleetSpec) -> Run:
    return _run(fleet, '[[templates]]\ntemplate = "fdm-printer"\nmtbf_h = 40\n')


def test_predicts_failures_8_h_ahead_on_held_out_days(degrading: Run) -> None:
    _, model, ev = degrading
    printers, tm = ev[PRINTER], model.templates[PRINTER]
    assert tm.kind == "cox" and tm.machines == 10
    # ~14 days x 10 printers x ~11 operating h a day / ~25 h between failures: 40-50 failures to learn from
    assert 30 <= tm.failures <= 70, tm.note
    assert printers.failures >= 15 and printers.positives >= 100  # held out: ~20 failures, ~16 moments each
    assert printers.auc >= 0.80, printers
    # the baseline is a constant hazard x each printer's running share: no better than chance
    assert abs(printers.auc_baseline - 0.5) < 0.15
    assert printers.brier_skill > 0.0
    assert printers.warned >= 5 and printers.median_lead_h > 0.5  # warned (3x the baseline) hours ahead


def test_fitted_effects_have_the_truth_files_signs(degrading: Run) -> None:
    # temperature_per_wear = 6 and power_per_wear = 0.3 (> 0): hotter and hungrier printers fail sooner;
    # wear grows with operating hours since a repair, which removes all of it
    tm = degrading[1].templates[PRINTER]
    for name in ("nozzle_temp_c", "bed_temp_c", "power_kw", "h_since_repair"):
        assert tm.effect(name) > 0, (name, dict(zip(tm.terms, tm.coefs, strict=True)))


def test_without_wear_the_model_invents_no_risk(plain: Run) -> None:
    timeline, model, ev = plain
    tm = model.templates[PRINTER]
    # MTBF 40 h: ~1,500 operating hours / 40 = ~38 failures, enough for the Cox fit, but the signals
    # carry nothing: the likelihood-ratio test keeps the constant hazard, and says so
    assert tm.failures >= 20
    assert tm.kind == "constant" and "likelihood-ratio test" in tm.note, tm.note
    assert tm.base_per_h == pytest.approx(tm.failures / tm.operating_h)
    printers = ev[PRINTER]
    assert printers.auc == pytest.approx(printers.auc_baseline)  # the same scores
    assert abs(printers.auc - 0.5) < 0.15
    # risk = the constant hazard: P(8 h) = 1 - exp(-h x share x 8) for every moment of a printer
    m = next(x for x in timeline.machines if x.template == PRINTER)
    share = tm.share[f"{m.site}/{m.machine}"]
    p = tm.probability_many(m.features, len(m.t), 8.0, share)
    assert np.ptp(p) == 0.0 and p[0] == pytest.approx(-math.expm1(-tm.base_per_h * share * 8.0))


def test_short_history_falls_back_to_the_constant_mtbf(fleet: FleetSpec) -> None:
    truth = load_truth(HERE / "degrading_truth.toml", fleet)
    start = END - timedelta(days=2)
    plant = Plant(fleet, seed=7, start=start, truth=truth)
    timeline = build_timeline(sample_histories(plant, END, 300.0), start.timestamp(), END.timestamp())
    model = fit(timeline, {str(t.id): t.mtbf_h for t in fleet.templates})
    tm = model.templates[PRINTER]
    # 2 days x 10 printers x ~11 h = ~220 operating hours: fewer than 10 failures
    assert tm.kind == "constant" and tm.failures < 10
    assert f"{tm.failures} failures in" in tm.note and "needs 10" in tm.note
    qc = model.templates["vision-qc"]  # no failure at all: the configured MTBF
    assert qc.failures == 0 and qc.base_per_h == pytest.approx(1 / 500) and "configured MTBF 500 h" in qc.note


def test_live_health_ranks_the_worn_printers_first(fleet: FleetSpec, degrading: Run) -> None:
    timeline, model, _ = degrading
    # score at one moment of the held-out days: the timeline cut there, as a live twin has it
    cut = SPLIT + 2 * 86400.0
    k = int(np.searchsorted(timeline.machines[0].t, cut))
    now = dataclasses.replace(timeline, t1=cut + 1, machines=tuple(
        dataclasses.replace(m, t=m.t[:k + 1], status=m.status[:k + 1],
                            features={n: v[:k + 1] for n, v in m.features.items()}) for m in timeline.machines))
    health = machine_health(fleet, model, now)
    assert len(health) == 18
    for h in health:
        assert 0.0 <= h.risk.low <= h.risk.p <= h.risk.high <= 1.0
        assert h.risk.hours == 8.0
    printers = sorted((h for h in health if h.template == PRINTER), key=lambda h: -h.risk.p)
    top, bottom = printers[0], printers[-1]
    assert top.risk.p > 3 * bottom.risk.p
    assert top.drivers and top.drivers[0].factor > 1.0 and top.drivers[0].value > top.drivers[0].mean
    # the cut is Wednesday 06:00 UTC: 07:00 in Berlin (in the 06:00-22:00 shifts: 15 h left), midnight in
    # Austin (shifts 06:00-22:00 local): a machine at rest there is off for 6 h and exposed 2 h of the 8
    assert {h.site: h.shift is not None for h in health} == {"pod-berlin": True, "pod-austin": False}
    assert all(h.shift is not None and h.shift.hours == pytest.approx(15.0) for h in health if h.site == "pod-berlin")
    resting = [h for h in health if h.site == "pod-austin" and h.status in (MachineStatus.OFF, MachineStatus.IDLE)]
    assert resting
    for h in resting:
        share = h.model.share[f"{h.site}/{h.machine}"]
        assert h.baseline == pytest.approx(h.model.baseline_probability(2.0, share))
    others = [h for h in health if h.template != PRINTER]
    assert all(not h.drivers and h.risk.p == pytest.approx(h.baseline) for h in others)  # constant hazards


def test_risk_trend_and_learnt_thresholds(degrading: Run) -> None:
    timeline, model, _ = degrading
    tm = model.templates[PRINTER]
    m = next(x for x in timeline.machines if x.template == PRINTER)
    trend = risk_trend(tm, m)
    assert len(trend.p) == len(trend.t) == len(m.t) == 21 * 48
    # the risk rises before failures: its mean over the 8 h before each failure is above its overall mean
    before = [p for t, p, nf in zip(trend.t, trend.p, m.next_failure, strict=True) if nf - t <= 8 * 3600]
    assert before and np.mean(before) > 2 * np.mean(trend.p)
    # a threshold is where the feature alone makes 3 x the average hazard: its driver factor there is 3
    for name in ("nozzle_temp_c", "bed_temp_c", "power_kw"):
        x = trend.thresholds[name]
        values = {f: (x if f == name else mu) for f, mu in zip(tm.features, tm.means, strict=True)}
        assert x > tm.means[tm.features.index(name)]
        assert tm.drivers(values)[0].name == name and tm.drivers(values)[0].factor == pytest.approx(3.0)
    assert tm.threshold("no-such-signal") is None
