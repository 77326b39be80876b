"""Small statistics for Monte Carlo outputs: t confidence intervals, paired deltas, Wilson intervals.

Pure standard library (``statistics.NormalDist``); the Student-t quantile uses the Cornish-Fisher
expansion, accurate to better than 0.5 % for 5 or more degrees of freedom.

>>> e = mean_ci([1.0, 2.0, 3.0, 4.0])
>>> round(e.mean, 3), e.n
(2.5, 4)
>>> lo, hi = wilson(8, 10)
>>> round(lo, 3), round(hi, 3)
(0.49, 0.943)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

__all__ = ["Estimate", "mean_ci", "t_quantile", "wilson"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimate:
    """A mean with its confidence interval; ``low``/``high`` are NaN when ``n < 2``.

    The one estimate type of the engine: a KPI over the horizon and a paired scenario - baseline
    delta (``twin.sim.projection``) are estimates named by ``name`` (the KPI) and ``site``.
    """

    name: str = ""
    site: str = ""
    mean: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0


def t_quantile(p: float, dof: int) -> float:
    """The ``p`` quantile of Student's t with ``dof`` degrees of freedom (Cornish-Fisher)."""
    z = NormalDist().inv_cdf(p)
    if dof <= 0:
        return math.nan
    v = float(dof)
    g1 = (z**3 + z) / 4.0
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96.0
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384.0
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160.0
    return z + g1 / v + g2 / v**2 + g3 / v**3 + g4 / v**4


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> Estimate:
    """Mean of ``values`` (NaNs ignored) with a two-sided t interval."""
    xs = [x for x in values if not math.isnan(x)]
    n = len(xs)
    if n == 0:
        return Estimate(mean=math.nan, low=math.nan, high=math.nan, n=0)
    mean = math.fsum(xs) / n
    if n < 2:
        return Estimate(mean=mean, low=math.nan, high=math.nan, n=n)
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1)
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * math.sqrt(var / n)
    return Estimate(mean=mean, low=mean - half, high=mean + half, n=n)


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion; (0, 1) when ``n == 0``."""
    if n <= 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)
