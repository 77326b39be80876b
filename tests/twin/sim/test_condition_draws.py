"""Second-order what-if bands carry the condition model's uncertainty: one coefficient draw per replication.

History: the example fleet's Berlin and Austin sites with the degrading truth of the health tests
(``tests/twin/health/degrading_truth.toml``), 4 days (the printers' Cox model rests on 11 failures)
and 21 days (68 failures), seed 7, ending Monday 2026-11-30 06:00 UTC. The fork runs 3 days, 200
second-order replications with every other figure known exactly (prior widths 0, no calibration),
so the only parameter uncertainty left is the condition model's.

Theory: the printers' failures F over the horizon have Var(F) = E[Var(F | beta)] + Var(E[F | beta]).
Without the draw only the first term is there (the process's randomness); with it the second adds
the spread of the expected failures over the coefficients, whose standard errors shrink ~1 / sqrt(n)
with the n failures fitted on: the added variance falls ~1 / n. Measured while writing this:
11 failures: variance 17.3 with the draw, 2.3 without (mean 7.1 and 11.3: the mean of the failures
over the draws is not the failures at the point estimate); 68 failures: 2.30 and 2.00.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from connectors.config import load
from connectors.emulator.plant import Plant
from connectors.emulator.truth import load_truth
from connectors.emulator.wear import sample_histories
from twin.health.model import fit
from twin.health.timeline import build_timeline
from twin.live import initial_state
from twin.sim.build import fork
from twin.sim.condition import DrawnHazard, condition_hazards
from twin.sim.model import Hazard
from twin.sim.montecarlo import run
from twin.sim.uncertainty import Perturber, PriorWidths, Uncertainty
from twin.spec import FleetSpec

ROOT = Path(__file__).resolve().parents[3]
TRUTH = ROOT / "tests" / "twin" / "health" / "degrading_truth.toml"
END = datetime(2026, 11, 30, 6, tzinfo=UTC)
ONLY_CONDITION = Uncertainty(prior=PriorWidths(mtbf=0, mttr=0, cycle=0, scrap=0, demand=0, lead=0, consumption=0))


@pytest.fixture(scope="module")
def fleet() -> FleetSpec:
    full = load(ROOT / "examples" / "fleet.toml").fleet
    return dataclasses.replace(full, sites=(full.site("pod-berlin"), full.site("pod-austin")))


def _hazards(fleet: FleetSpec, days: float) -> tuple[int, dict[str, Hazard]]:
    start = END - timedelta(days=days)
    plant = Plant(fleet, seed=7, start=start, truth=load_truth(TRUTH, fleet))
    timeline = build_timeline(sample_histories(plant, END, 300.0), start.timestamp(), END.timestamp())
    model = fit(timeline, {str(t.id): t.mtbf_h for t in fleet.templates})
    return model.templates["fdm-printer"].failures, condition_hazards(model, timeline)


def _failures(fleet: FleetSpec, hazards: dict[str, Hazard]) -> np.ndarray:
    data = fork(fleet, initial_state(fleet, END), None, horizon_s=3 * 86400.0, bin_s=3 * 86400.0,
                hazards=hazards).data
    res = run(data, replications=200, seed=1, workers=1, uncertainty=ONLY_CONDITION, second_order=True)
    return np.array([sum(o.machine_failures[k] for k in hazards) for o in res.baseline], dtype=float)


def _plain(hazards: dict[str, Hazard]) -> dict[str, Hazard]:
    """The same curves at the point estimate, without the draws (what the fork had before)."""
    return {k: Hazard(step_s=h.step_s, now=h.now, renewed=h.renewed) for k, h in hazards.items()}


def test_one_draw_per_template_and_replication_shared_by_its_machines(fleet: FleetSpec) -> None:
    _, hazards = _hazards(fleet, 4.0)
    assert hazards and all(isinstance(h, DrawnHazard) and h.group == "fdm-printer" for h in hazards.values())
    data = fork(fleet, initial_state(fleet, END), None, horizon_s=86400.0, bin_s=86400.0, hazards=hazards).data
    draw = Perturber(data, ONLY_CONDITION)
    a, b, again = draw(1, 0), draw(1, 1), draw(1, 0)
    pick = {m.id + m.site: m.hazard for m in a.machines if m.hazard is not None}
    assert pick == {m.id + m.site: m.hazard for m in again.machines if m.hazard is not None}  # reproducible
    assert pick != {m.id + m.site: m.hazard for m in b.machines if m.hazard is not None}  # a new replication
    # each replication runs on plain curves: those of one draw of (log h0, beta), the same row for all printers
    assert all(type(h) is Hazard for h in pick.values())


def test_few_failures_widen_the_spread_many_barely(fleet: FleetSpec) -> None:
    few, h_few = _hazards(fleet, 4.0)
    many, h_many = _hazards(fleet, 21.0)
    assert few < 20 <= 50 < many  # 11 and 68 when written
    v_few = _failures(fleet, h_few).var(ddof=1) / _failures(fleet, _plain(h_few)).var(ddof=1)
    v_many = _failures(fleet, h_many).var(ddof=1) / _failures(fleet, _plain(h_many)).var(ddof=1)
    # 200 replications: a variance is estimated within ~10 % (sqrt(2 / 199)), a ratio of two within ~15 %
    assert v_few > 3.0, v_few  # measured 7.6: the 11 failures leave the coefficients wide
    assert v_many < 1.6, v_many  # measured 1.15: 68 failures pin them


def test_the_maintenance_restore_is_read_from_the_power_drop(fleet: FleetSpec) -> None:
    # the truth removes half of the wear at a maintenance (maintenance_reset = 0.5) and all of it at a
    # repair; power shows wear linearly (0.3 x rated per unit while printing), so its drop across a
    # maintenance over its excess above the fresh level (read after repairs) is 0.5. 21 days: ~27
    # maintenances of 10 printers. Measured: 0.47 from power; the temperatures read 0.67-0.68 (they
    # are means only once a printer has run 1.5 h, so their level after a maintenance is late).
    from twin.sim.condition import maintenance_restore

    start = END - timedelta(days=21)
    plant = Plant(fleet, seed=7, start=start, truth=load_truth(TRUTH, fleet))
    timeline = build_timeline(sample_histories(plant, END, 300.0), start.timestamp(), END.timestamp())
    got = maintenance_restore(timeline.templates()["fdm-printer"], "power_kw")
    assert got is not None
    restore, used = got
    assert used >= 15
    assert restore == pytest.approx(0.5, abs=0.15)
