"""The 90 % intervals of a failure risk: exact Poisson on the constant hazard, a bootstrap on the Cox model.

Constant hazard: with n failures in T operating hours the exact 90 % interval of the rate is
[chi2(0.05; 2n) / 2T, chi2(0.95; 2n + 2) / 2T] (Garwood), mapped to P = 1 - exp(-rate x exposure).
The chi-square quantiles below are read from a table. Cox: the bootstrap's spread of log Lambda is
checked against the delta method with the baseline moving with beta (theory, worked in the test), and
on emulated short history the machine page's "<1 %–>99 %" becomes words.
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
from connectors.emulator.truth import load_truth
from connectors.emulator.wear import sample_histories
from dashboard.health import fmt_interval
from twin.health.interval import cox_draws, garwood
from twin.health.model import TemplateModel, fit
from twin.health.score import machine_health
from twin.health.timeline import build_timeline
from twin.spec import FleetSpec

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).parent
END = datetime(2026, 11, 30, 6, tzinfo=UTC)


def _constant(failures: int, hours: float, mtbf_h: float = 200.0) -> TemplateModel:
    rate = failures / hours if failures else 1.0 / mtbf_h
    return TemplateModel(template="t", kind="constant", failures=failures, machines=1, operating_h=hours,
                         rows=10, base_per_h=rate)


def test_constant_hazard_interval_is_the_exact_poisson_one() -> None:
    # 2 failures in 44 operating hours (the 3-day printers of docs/health.md); the machine runs half
    # of the next 8 h: exposure 4 h. Table: chi2(0.05; 4) = 0.7107, chi2(0.95; 6) = 12.592, so the
    # rate lies in [0.7107 / 88, 12.592 / 88] = [0.008076, 0.14309] per hour, and
    # P in [1 - exp(-4 x 0.008076), 1 - exp(-4 x 0.14309)] = [0.03179, 0.4358]; the point
    # 1 - exp(-4 x 2 / 44) = 0.1663.
    r = _constant(2, 44.0).risk({}, 8.0, 0.5)
    assert r.p == pytest.approx(0.1663, abs=1e-4)
    assert r.low == pytest.approx(0.03179, abs=1e-4) and r.high == pytest.approx(0.4358, abs=1e-4)
    assert r.vague == ""
    low, high = garwood(2, 44.0)
    assert low == pytest.approx(0.7107 / 88, rel=1e-4) and high == pytest.approx(12.592 / 88, rel=1e-4)


def test_no_failures_in_long_history_bounds_the_risk_from_above() -> None:
    # 0 failures in 1000 h: chi2(0.95; 2) / 2000 = 5.9915 / 2000 = 0.0029957 per hour at most; a machine
    # that runs all 8 h: P <= 1 - exp(-8 x 0.0029957) = 0.02368. The point is the configured MTBF
    # (200 h: 1 - exp(-8 / 200) = 0.0392), above what the history allows: the interval is widened to hold it.
    r = _constant(0, 1000.0, mtbf_h=1000.0).risk({}, 8.0, 1.0)
    assert r.low == 0.0 and r.high == pytest.approx(0.02368, abs=1e-4) and r.vague == ""
    r = _constant(0, 1000.0, mtbf_h=200.0).risk({}, 8.0, 1.0)
    assert r.high == pytest.approx(r.p) == pytest.approx(0.0392, abs=1e-4)


def test_too_little_history_is_said_in_words() -> None:
    # 0 failures in 3 operating hours: the rate is at most 2.9957 / 3 = 0.9986 per hour, P(8 h) up to
    # 1 - exp(-8) = 0.9997, and from 0: the history cannot tell a negligible risk from a certain one.
    r = _constant(0, 3.0).risk({}, 8.0, 1.0)
    assert r.high == pytest.approx(-math.expm1(-8 * 2.9957 / 3), abs=1e-4)
    assert r.vague == "too little history: 0 failures in 3 operating hours"
    assert fmt_interval(r) == r.vague  # the machine page shows the words, not "<1 %–>99 %"
    # 1 failure in 3 h: [chi2(0.05; 2) / 6, chi2(0.95; 4) / 6] = [0.1026 / 6, 9.4877 / 6] = [0.0171, 1.581]:
    # P(8 h) at least 1 - exp(-0.137) = 12.8 %, a range of 92x: wide, but it says the risk is not small
    r = _constant(1, 3.0).risk({}, 8.0, 1.0)
    assert r.low == pytest.approx(-math.expm1(-8 * 0.1026 / 6), abs=1e-3) and r.vague == ""
    assert fmt_interval(r) == "90 %: 13\u00a0%–>99\u00a0%"


def test_the_bootstrap_moves_the_baseline_with_beta() -> None:
    # One covariate, 100 rows at x = 0 and 100 at x = 1 (1 h each), beta = 0.5 with variance 0.04, and
    # 25 failures. The fit's baseline is h0 = failures / sum_i exp(beta x_i), so d log h0 / d beta =
    # -xbar_w, the hazard-weighted mean of x: e^0.5 / (1 + e^0.5) = 0.6225. The delta method then
    # gives var(log Lambda(x)) = 1 / 25 + (x - 0.6225)^2 x 0.04: sd 0.2000 at x = 0.6225 and
    # sqrt(0.04 + 2.3775^2 x 0.04) = 0.5159 at x = 3 (the old z' V z + 1 / failures: 0.2356 and 0.6325).
    x = np.repeat([0.0, 1.0], 100)[:, None]
    draws = cox_draws("t", x, np.ones(200), 25, np.asarray([0.5]), np.asarray([[0.04]]))
    assert draws.shape == (400, 2)

    def sd(at: float) -> float:
        return float(np.std(draws[:, 0] + draws[:, 1] * at))

    # 400 draws: the sd is estimated within ~3.5 % (1 / sqrt(2 x 400)); allow 10 %
    assert sd(0.6225) == pytest.approx(0.2000, rel=0.10)
    assert sd(3.0) == pytest.approx(0.5159, rel=0.10)
    # log h0 at the fit is log(25 / (100 + 100 e^0.5)) = log(25 / 264.87) = -2.3603; the draws' median
    # is that up to the median of log Gamma(25) (-0.013) and the curvature of log S (small at sd 0.2)
    assert float(np.median(draws[:, 0])) == pytest.approx(-2.3603, abs=0.06)


@pytest.fixture(scope="module")
def fleet() -> FleetSpec:
    full = load(ROOT / "examples" / "fleet.toml").fleet
    return dataclasses.replace(full, sites=(full.site("pod-berlin"), full.site("pod-austin")))


def _health(fleet: FleetSpec, days: float) -> list:  # type: ignore[type-arg]
    truth = load_truth(HERE / "degrading_truth.toml", fleet)
    start = END - timedelta(days=days)
    plant = Plant(fleet, seed=7, start=start, truth=truth)
    timeline = build_timeline(sample_histories(plant, END, 300.0), start.timestamp(), END.timestamp())
    model = fit(timeline, {str(t.id): t.mtbf_h for t in fleet.templates})
    return [h for h in machine_health(fleet, model, timeline) if h.template == "fdm-printer"]


def test_short_history_cox_intervals_are_honest(fleet: FleetSpec) -> None:
    # 4 days: 11 failures for 7 effects. Before, 4 of the 10 printers read "<1 %–>99 %" (z' V z up to
    # 74: the worn ones got it as much as those whose condition lies outside the data). Now only a
    # printer whose covariates lie outside most failures' (Austin P2: 3 sd of hours since maintenance,
    # squared 9.5) is vague, and says so; the others keep a usable interval around their point.
    short = _health(fleet, 4.0)
    assert short[0].model.kind == "cox" and short[0].model.failures == 11
    vague = [h for h in short if h.risk.vague]
    assert 1 <= len(vague) <= 3, [(h.site, h.machine, h.risk) for h in short]
    assert all("too little history: 11 failures for 7 effects" in h.risk.vague for h in vague)
    for h in short:
        assert h.risk.low <= h.risk.p <= h.risk.high
    # 14 days (42 failures): no printer's interval is vague, and each spans less than 0.5
    long = _health(fleet, 14.0)
    assert long[0].model.failures >= 30
    assert all(not h.risk.vague and h.risk.high - h.risk.low < 0.5 for h in long), [h.risk for h in long]
