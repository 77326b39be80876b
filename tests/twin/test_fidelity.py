"""The twin against its emulated plant: calibration finds the hidden truth, and it matters.

The emulated plant (``connectors.emulator``, written independently of ``twin.sim``) runs a hidden
truth that differs from the configuration; the twin calibrates from the history it sees and must
forecast what the plant then does. This is the CI-sized version of the README's rolling backtest:
one site (pod-austin, where ``examples/truth.toml`` has demand x 1.25 and printer P3 failing twice
as often), 12 days of history sampled every 5 minutes, forks every 6 h over the last 4 days, 24 h
horizon, 20 second-order replications.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.backtest import oracle_params
from connectors.config import load
from connectors.emulator.backfill import backfill
from connectors.emulator.truth import load_truth
from connectors.store import SqliteHistorian
from twin.sim.backtest import noise_floor
from twin.sim.params import SimParams
from twin.sim.rolling import RollingRun, origins, rolling_run
from twin.spec import FleetSpec

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SITE = "pod-austin"
END = datetime(2026, 11, 30, 6, tzinfo=UTC)  # a Monday, 00:00 in Austin
START = END - timedelta(days=12)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[FleetSpec, SqliteHistorian]:
    cfg = load(ROOT / "examples" / "fleet.toml")
    fleet = dataclasses.replace(cfg.fleet, sites=(cfg.fleet.site(SITE),))
    truth = load_truth(ROOT / "examples" / "truth.toml", cfg.fleet)
    store = SqliteHistorian(tmp_path_factory.mktemp("fidelity") / "history.db", fleet)
    backfill(fleet, store, start=START, end=END, step_s=300.0, seed=11, truth=truth)
    return fleet, store


def _run(history: tuple[FleetSpec, SqliteHistorian], calibrate_days: float,
         oracle: SimParams | None = None) -> RollingRun:
    fleet, store = history
    at = origins(END - timedelta(days=4), END - timedelta(days=1), 6 * 3600.0)
    return rolling_run(fleet, store, at, 24 * 3600.0, bin_s=3600.0, replications=20, seed=5, executor=None,
                       workers=0, calibrate_days=calibrate_days, second_order=True, sites=[SITE], oracle=oracle)


def _day_ends(run: RollingRun) -> tuple[list[float], list[float]]:
    """(P50, actual) of the units made in the 24 h after each origin."""
    p50, actual = [], []
    for r in run.results:
        s = next(s for s in r.series if s.metric == "cumulative_units" and s.key == SITE)
        p50.append(s.p50[-1])
        actual.append(s.actual[-1])
    return p50, actual


def test_calibration_finds_the_truth_and_beats_the_configured_figures(
        history: tuple[FleetSpec, SqliteHistorian]) -> None:
    calibrated, configured = _run(history, calibrate_days=7), _run(history, calibrate_days=0)
    assert len(calibrated.results) == 13  # origins every 6 h over 3 days, both ends included

    # 1. The figure the truth moved is recovered: custom-bracket orders at Austin, 25 a day configured,
    #    x 1.25 = 31.25 in the plant. From ~220 orders in 7 days the rate's standard error is about
    #    31.25 / sqrt(220) = 2.1 a day, so every origin's estimate must lie within 3 of them (6.3).
    for cal in calibrated.calibrations:
        assert cal is not None
        est = cal.get("orders_per_day", f"{SITE}/custom-bracket")
        assert est.source.value == "history" and est.samples >= 150
        assert abs(est.value - 31.25) < 6.3, est

    # 2. It matters. Austin is not capacity-bound (printers ~44 % loaded), so its output follows demand:
    #    on the configured figures the twin sees 1/1.25 = 80 % of the orders. Both forks start from the same
    #    backlog and WIP, which make part of the next day's output whatever the rate, so the configured median
    #    day lies between 80 % and 100 % of the calibrated one: clearly below (we ask for under 95 %). Its
    #    bias against what the plant made is the larger of the two.
    p50_cal, actual = _day_ends(calibrated)
    p50_conf, actual_conf = _day_ends(configured)
    assert actual == actual_conf  # the same history
    ratio = statistics.mean(p50_conf) / statistics.mean(p50_cal)
    assert 0.80 < ratio < 0.95, ratio
    bias_cal = statistics.mean(p - a for p, a in zip(p50_cal, actual, strict=True))
    bias_conf = statistics.mean(p - a for p, a in zip(p50_conf, actual, strict=True))
    assert abs(bias_cal) < abs(bias_conf), (bias_cal, bias_conf)
    assert bias_conf < -0.08 * statistics.mean(actual)  # the configured twin under-forecasts the real demand

    # 3. Calibrated, it beats the naive forecast (the same hours a week earlier).
    out = next(s for s in calibrated.summary.series if s.metric == "cumulative_units" and s.key == SITE)
    assert not math.isnan(out.skill) and out.skill > 0


def test_the_oracle_takes_the_truth_files_figures() -> None:
    # examples/truth.toml over examples/fleet.toml; the plant's own laws from connectors.emulator.plant
    cfg = load(ROOT / "examples" / "fleet.toml")
    o = oracle_params(cfg.fleet, load_truth(ROOT / "examples" / "truth.toml", cfg.fleet))
    cnc1 = o.machines[("pod-berlin", "CNC1")]
    assert cnc1.cycle_time_s == pytest.approx(720 * 1.3) and cnc1.cycle_cv == 0.03  # 936 s, cv 3 %
    assert o.machines[("pod-lyon", "B1")].cycle_cv == 0.10  # a manual bench: cv 10 %
    assert o.machines[("pod-austin", "P3")].mtbf_h == 100 and o.machines[("pod-austin", "P1")].mtbf_h == 200
    assert o.machines[("pod-lyon", "QC1")].scrap_rate == 0.04 and o.machines[("pod-austin", "W1")].mttr_h == 1.4
    assert o.demand[("pod-austin", "custom-bracket")].orders_per_day == pytest.approx(25 * 1.25)
    assert o.demand[("pod-berlin", "custom-bracket")].orders_per_day == 14  # no factor: as configured
    assert o.consumption[("pod-berlin", "PLA-1KG")] == 1.2 and o.consumption[("pod-austin", "PLA-1KG")] == 1.0
    # DRIVE-UNIT: normal lead 35 d +- 6 d, sea tail: chance 0.2 of an exponential delay of 5 d x 2 = 10 d:
    # mean 35 + 0.2 x 10 = 37 d; variance 36 + 0.2 x 10^2 x (2 - 0.2) = 36 + 36 = 72, sd 8.49 d
    lead = o.lead_times[("lm-rotterdam", "DRIVE-UNIT")]
    assert lead.mean_d == pytest.approx(37.0) and lead.sd_d == pytest.approx(72 ** 0.5)
    # Lyon's BOX-S: 2 d +- 0, local tail 5 % x 0.5 d: mean 2.025 d, variance 0.05 x 0.25 x 1.95 = 0.0244
    lead = o.lead_times[("pod-lyon", "BOX-S")]
    assert lead.mean_d == pytest.approx(2.025) and lead.sd_d == pytest.approx(0.024375 ** 0.5)


def test_the_twin_is_at_the_noise_floor_of_an_oracle_knowing_the_truth(
        history: tuple[FleetSpec, SqliteHistorian]) -> None:
    # The oracle forks the same states with the truth file's figures (first order): its P50 error of
    # the day's output is what a forecaster knowing the plant exactly still misses by. Austin's day is
    # ~31 orders of 1-10 units (E[q^2] = 38.5): the units ordered in a day spread by
    # sqrt(31.25 x 38.5) = 35, a mean absolute deviation of about 0.8 x 35 = 28 (a normal's); what
    # is already on the floor at the fork is known, so the oracle misses by less than that.
    fleet, _ = history
    truth = load_truth(ROOT / "examples" / "truth.toml", load(ROOT / "examples" / "fleet.toml").fleet)
    run = _run(history, calibrate_days=7, oracle=oracle_params(fleet, truth))
    out = next(s for s in run.summary.series if s.metric == "cumulative_units" and s.key == SITE)
    assert 0 < out.oracle_daily_error < 28
    # the restated criterion: (a) |bias| of the P50 day <= 10 % of the day's output; (b) the twin's
    # error <= the oracle's x 1.10 + 1 unit
    assert abs(out.daily_bias) <= 0.10 * out.daily_actual, (out.daily_bias, out.daily_actual)
    assert out.daily_error <= noise_floor(out.oracle_daily_error), (out.daily_error, out.oracle_daily_error)
