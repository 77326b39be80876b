"""Backtest scores by hand: coverage, PIT, CRPS, P50 and naive errors, skill, and their rolling summary."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from twin.sim.backtest import backtest as score
from twin.sim.backtest import crps, pit, pit_coverage, pit_histogram, rolling_summary
from twin.sim.projection import Band, Projection

SAMPLES = np.asarray([[1.0, 10.0], [2.0, 12.0], [3.0, 14.0], [4.0, 16.0]])  # 4 replications x 2 bins


def _projection(metric: str, key: str, t_s: tuple[float, ...], samples: np.ndarray) -> Projection:
    q = np.percentile(samples, [10.0, 50.0, 90.0], axis=0)
    band = Band(metric=metric, key=key, t_s=t_s, p10=tuple(q[0]), p50=tuple(q[1]), p90=tuple(q[2]),
                mean=tuple(samples.mean(axis=0)))
    return Projection(replications=samples.shape[0], horizon_s=t_s[-1], bin_s=t_s[0], bands=(band,), kpis=(),
                      stockouts=(), orders=())


def test_scores_of_a_tiny_projection_by_hand() -> None:
    # bins end at 12 h and 24 h. P10/P50/P90 (numpy's linear interpolation): [1.3, 2.5, 3.7] and
    # [10.6, 13, 15.4]. Actual [2, 20]: 2 is inside, 20 above -> coverage 1/2.
    p = _projection("cumulative_units", "s", (43200.0, 86400.0), SAMPLES)
    key = ("cumulative_units", "s")
    r = score(p, {key: [2.0, 20.0]}, {key: SAMPLES}, {key: [1.0, 15.0]})
    s = r.series[0]
    assert s.coverage == 0.5 and r.coverage == 0.5
    # PIT: 1 sample below 2 and 1 tie -> (1 + 1/2) / 4 = 0.375 (bin 3); all below 20 -> 1.0 (last bin)
    assert s.pit == (0.375, 1.0)
    assert s.pit_histogram == (0, 0, 0, 1, 0, 0, 0, 0, 0, 1)
    # CRPS = E|X - y| - E|X - X'| / 2. Bin 1: E|X - 2| = (1 + 0 + 1 + 2) / 4 = 1; E|X - X'| over the
    # 16 ordered pairs of [1, 2, 3, 4] = 20 / 16 = 1.25 -> 0.375. Bin 2: E|X - 20| = 28 / 4 = 7,
    # E|X - X'| = 2 x 1.25 = 2.5 -> 5.75. Mean 3.0625.
    assert s.crps == pytest.approx(3.0625)
    # P50 error at the bin ends (|2.5 - 2| + |13 - 20|) / 2 = 3.75; naive (|1 - 2| + |15 - 20|) / 2 = 3
    assert s.median_abs_error == pytest.approx(3.75)
    assert s.naive_abs_error == pytest.approx(3.0)
    # daily output: one full day (0..24 h): samples [10, 12, 14, 16] -> P50 13, actual 20, naive 15:
    # errors 7 and 5, skill 1 - 7/5 = -0.4 (worse than the same hours a week earlier)
    assert s.daily_error == pytest.approx(7.0)
    assert s.naive_daily_error == pytest.approx(5.0)
    assert s.skill == pytest.approx(-0.4)


def test_stock_skill_compares_the_errors_at_the_bin_ends() -> None:
    p = _projection("stock", "s/FIL", (3600.0, 7200.0), SAMPLES)
    key = ("stock", "s/FIL")
    s = score(p, {key: [2.5, 13.0]}, {key: SAMPLES}, {key: [4.5, 9.0]}).series[0]
    # P50 hits both exactly: error 0; naive |4.5 - 2.5| + |9 - 13| = 6 / 2 = 3 -> skill 1
    assert s.median_abs_error == 0.0 and s.naive_abs_error == pytest.approx(3.0) and s.skill == 1.0
    assert math.isnan(s.daily_error)  # daily output is for output series only
    assert s.pit == (0.5, 0.5)  # two below, two above each


def test_rolling_summary_pools_origins_and_counts_coverage_by_hour() -> None:
    key = ("stock", "s/FIL")
    p = _projection("stock", "s/FIL", (3600.0, 7200.0), SAMPLES)
    a = score(p, {key: [2.0, 20.0]}, {key: SAMPLES}, {key: [2.0, 14.0]})  # hour 1 inside, hour 2 out
    b = score(p, {key: [3.0, 14.0]}, {key: SAMPLES}, {key: [1.0, 10.0]})  # both inside
    summary = rolling_summary([a, b])
    s = summary.series[0]
    assert summary.origins == 2 and s.origins == 2 and s.points == 4
    assert s.coverage == 0.75 and summary.coverage == 0.75
    assert s.coverage_by_hour == (1.0, 0.5)
    # PITs: a -> 0.375, 1.0; b -> 0.625, 0.625 (2 below, 1 tie of 4 / bin 2: 14 ties with one sample)
    assert s.pit_histogram == (0, 0, 0, 1, 0, 0, 2, 0, 0, 1)
    # mean P50 errors: a (0.5 + 7) / 2 = 3.75, b (0.5 + 1) / 2 = 0.75 -> 2.25; naive a (0 + 6) / 2 = 3,
    # b (2 + 4) / 2 = 3 -> 3; skill = 1 - 2.25 / 3 = 0.25
    assert s.median_abs_error == pytest.approx(2.25)
    assert s.naive_abs_error == pytest.approx(3.0)
    assert s.skill == pytest.approx(0.25)


def test_crps_and_pit_of_special_cases() -> None:
    assert crps([5.0], 2.0) == 3.0  # a point forecast scores its absolute error
    assert crps([2.0, 2.0, 2.0], 2.0) == 0.0
    assert pit([5.0] * 10, 5.0) == 0.5  # a deterministic band on its value: the middle
    assert pit_histogram([0.1, 0.1999, 0.2]) == (0, 2, 1, 0, 0, 0, 0, 0, 0, 0)


def test_pit_of_a_calibrated_forecast_is_flat() -> None:
    # actual and the 200 samples drawn from the same normal distribution: PIT uniform, 1,000 points
    # give 100 per bin with sd sqrt(1000 x 0.1 x 0.9) = 9.5; a 4-sd band is 62..138
    rng = random.Random(2)
    pits = []
    for _ in range(1000):
        xs = [rng.gauss(0.0, 1.0) for _ in range(200)]
        pits.append(pit(xs, rng.gauss(0.0, 1.0)))
    assert all(62 <= c <= 138 for c in pit_histogram(pits))


def test_usage_examples_run() -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module("twin.sim.backtest"))  # the module, not the function
    assert result.attempted >= 6 and result.failed == 0


def test_daily_bias_and_the_oracle_beside_the_forecast() -> None:
    # the tiny projection above: P50 of the day's output 13 against 20 made -> bias 13 - 20 = -7, the
    # day's actual 20. An oracle whose day's outputs are [17, 19, 21, 23] (P50 (19 + 21) / 2 = 20)
    # scores error 0 and bias 0 on the same day.
    from twin.sim.backtest import noise_floor, with_oracle

    key = ("cumulative_units", "s")
    p = _projection("cumulative_units", "s", (43200.0, 86400.0), SAMPLES)
    r = score(p, {key: [2.0, 20.0]}, {key: SAMPLES})
    s = r.series[0]
    assert s.daily_bias == pytest.approx(-7.0) and s.daily_actual == 20.0
    assert math.isnan(s.oracle_daily_error)  # no oracle run
    oracle_samples = SAMPLES + np.asarray([0.0, 7.0])  # day's output [17, 19, 21, 23]
    o = score(_projection("cumulative_units", "s", (43200.0, 86400.0), oracle_samples), {key: [2.0, 20.0]},
              {key: oracle_samples})
    both = with_oracle(r, o).series[0]
    assert both.daily_error == pytest.approx(7.0)  # the forecast's own scores are kept
    assert both.oracle_daily_error == pytest.approx(0.0) and both.oracle_daily_bias == pytest.approx(0.0)
    # PIT coverage: at 12 h the actual 2 ties one of [1, 2, 3, 4] (randomized PIT uniform on [0.25, 0.5],
    # inside [0.1, 0.9]: 1); at 24 h the forecast's 20 is above all of [10, 12, 14, 16] (0), the oracle's
    # [17, 19, 21, 23] has half below (PIT 0.5: 1). Forecast 0.5, oracle 1.0.
    assert both.pit_coverage == pytest.approx(0.5) and both.oracle_pit_coverage == pytest.approx(1.0)
    # pooled over two origins, the second the same: the means; the noise floor of an oracle error of
    # 0 is 0 x 1.10 + 1 = 1 unit, so 7 is far above it; of 10: 12
    summary = rolling_summary([with_oracle(r, o), with_oracle(r, o)]).series[0]
    assert (summary.daily_bias, summary.daily_actual, summary.oracle_daily_error) == (-7.0, 20.0, 0.0)
    assert (summary.pit_coverage, summary.oracle_pit_coverage) == (0.5, 1.0)
    assert noise_floor(summary.oracle_daily_error) == pytest.approx(1.0) and noise_floor(10.0) == pytest.approx(12.0)


def test_pit_coverage_is_80_percent_for_a_calibrated_count_forecast() -> None:
    # A forecast of a count whose samples follow exactly the outcome's law, Poisson(2) (10,000 samples in
    # the pmf's proportions). The inclusive P10..P90 check covers P(P10 <= Y <= P90): P10 = 0 (P(Y = 0) =
    # e^-2 = 0.135 >= 0.1) and P90 = 4 (F(3) = 0.857 < 0.9 <= F(4) = 0.947), so 94.7 % -- a calibrated
    # forecast looks too wide. The randomized PIT's intervals [F(y-), F(y)] tile [0, 1], so their
    # probability-weighted shares inside [0.1, 0.9] add up to exactly 0.8.
    pmf = [math.exp(-2.0) * 2.0**k / math.factorial(k) for k in range(15)]
    samples = np.repeat(np.arange(15, dtype=float), [round(p * 10_000) for p in pmf])
    p10, p90 = np.percentile(samples, [10.0, 90.0])
    assert (p10, p90) == (0.0, 4.0)
    inclusive = sum(p for k, p in enumerate(pmf) if p10 <= k <= p90)
    assert inclusive == pytest.approx(0.947, abs=1e-3)
    assert sum(p * pit_coverage(samples, float(k)) for k, p in enumerate(pmf)) == pytest.approx(0.8, abs=1e-3)


def test_pit_coverage_pooled_in_the_rolling_summary() -> None:
    # Two origins of one series, one point each: every sample equal to the actual (0.8) and the actual
    # inside a spread without ties (1.0): the pooled PIT coverage is their mean 0.9; inclusive coverage 1.0.
    flat = np.full((10, 1), 5.0)
    spread = np.arange(10, dtype=float).reshape(10, 1)
    results = []
    for arr, y in ((flat, 5.0), (spread, 4.5)):
        proj = _projection("stock", "s/A", (3600.0,), arr)
        results.append(score(proj, {("stock", "s/A"): [y]}, {("stock", "s/A"): arr}))
    summary = rolling_summary(results)
    (s,) = summary.series
    assert s.coverage == 1.0
    assert s.pit_coverage == pytest.approx(0.9)
    assert summary.pit_coverage == pytest.approx(0.9)
