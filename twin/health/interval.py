"""The 90 % intervals of a failure risk: exact Poisson (Garwood) for a constant hazard, a parametric bootstrap for Cox.

**Constant hazard** (n failures in T operating hours): the exact 90 % interval of the rate is
``[chi2(0.05; 2n) / 2T, chi2(0.95; 2n + 2) / 2T]`` (Garwood 1936; n = 0: from 0), i.e. the 5 % and
95 % quantiles of Gamma(n) and Gamma(n + 1) over T. :func:`gamma_quantile` computes them exactly for
integer shapes (the Gamma(n) distribution function is a Poisson tail: 1 - sum_{k<n} e^-x x^k / k!).

**Cox model** (:func:`cox_draws`): ``draws`` sets of (log h0, beta): beta ~ N(beta_hat, V) with V the
covariance of the penalised fit, and for each the baseline that the fit's own rule gives,
h0 = G / sum_i e_i exp(beta z_i) over the training rows (exposure e_i) with G ~ Gamma(failures): the
count's Poisson uncertainty. The baseline thus moves with beta, as it does in the fit: a machine at
the covariates where the failures happened keeps a narrow interval even when single coefficients are
uncertain (the old delta method on log Lambda with z' V z + 1 / failures ignored that and widened the
risk of the worn machines, while the covariates far from the data, an extrapolation, got too little).
The 5 % and 95 % quantiles of log h0 + beta x over the draws bound log Lambda.

:func:`vague` decides when an interval says nothing a person can use, so that it is shown in words
(``too little history: ...``) rather than as "<1 %-99 %".
"""

from __future__ import annotations

import math
import zlib

import numpy as np

__all__ = ["DRAWS", "cox_draws", "gamma_quantile", "garwood", "vague"]

DRAWS = 400  # bootstrap draws per Cox model: the 5 % quantile rests on 20 of them
_CHUNK = 50


def _gamma_cdf(x: float, shape: int) -> float:
    """P(Gamma(shape, 1) <= x) for an integer shape >= 1: one minus a Poisson tail."""
    if x <= 0.0:
        return 0.0
    term = total = 1.0
    for k in range(1, shape):
        term *= x / k
        total += term
    return max(0.0, 1.0 - math.exp(-x) * total) if x < 700.0 else 1.0


def gamma_quantile(p: float, shape: int) -> float:
    """The ``p`` quantile of Gamma(``shape``, 1), integer shape (chi2(p; 2 shape) / 2), by bisection.

    >>> round(2 * gamma_quantile(0.05, 2), 4), round(2 * gamma_quantile(0.95, 3), 3)  # chi-square tables
    (0.7107, 12.592)
    """
    if shape <= 0:
        return 0.0
    lo, hi = 0.0, float(shape) + 10.0 * math.sqrt(shape) + 10.0
    while _gamma_cdf(hi, shape) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _gamma_cdf(mid, shape) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def garwood(failures: int, hours: float, level: float = 0.90) -> tuple[float, float]:
    """The exact ``level`` interval of a Poisson rate from ``failures`` in ``hours`` (per hour; (0, inf): no hours)."""
    if hours <= 0.0:
        return 0.0, math.inf
    a = (1.0 - level) / 2.0
    low = gamma_quantile(a, failures) / hours if failures > 0 else 0.0
    return low, gamma_quantile(1.0 - a, failures + 1) / hours


def _factor(cov: np.ndarray) -> np.ndarray:
    """A matrix L with L L' = cov (Cholesky; a covariance that is not positive definite: its clipped eigen-root)."""
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh((cov + cov.T) / 2.0)
        return np.asarray(v * np.sqrt(np.clip(w, 0.0, None)), dtype=float)


def cox_draws(name: str, x: np.ndarray, exposure: np.ndarray, failures: int, coefs: np.ndarray, cov: np.ndarray,
              draws: int = DRAWS) -> np.ndarray:
    """``draws`` rows (log h0, beta...) of a fitted Cox model (see the module docstring); seeded by ``name``.

    ``x``: the training rows' design (rows x terms), ``exposure`` their operating hours.
    """
    rng = np.random.default_rng(zlib.crc32(f"health:{name}".encode()))
    beta = coefs[None, :] + rng.standard_normal((draws, len(coefs))) @ _factor(cov).T
    g = rng.gamma(float(max(failures, 1)), 1.0, draws)
    log_s = np.empty(draws)
    for a in range(0, draws, _CHUNK):
        eta = np.minimum(x @ beta[a:a + _CHUNK].T, 300.0)  # rows x chunk
        top = eta.max(axis=0)
        log_s[a:a + _CHUNK] = top + np.log((exposure[:, None] * np.exp(eta - top)).sum(axis=0))
    return np.column_stack([np.log(g) - log_s, beta])


def vague(low_lambda: float, high_lambda: float, high_p: float) -> bool:
    """Whether a risk's interval says nothing usable.

    True when it cannot tell a negligible risk from an even chance: its upper end is at least 50 %
    and its expected failures span more than a factor 100 (two orders of magnitude; from 0 counts).

    >>> vague(0.0, 3.0, 0.95), vague(0.01, 0.5, 0.39), vague(0.2, 5.0, 0.99)
    (True, False, False)
    """
    return high_p >= 0.5 and (low_lambda <= 0.0 or high_lambda / low_lambda > 100.0)
