"""The failure-risk model per machine template: a Cox time-varying fit, or the constant-MTBF hazard.

The only module that imports lifelines (and pandas, which it needs). :func:`fit` takes a
:class:`twin.health.timeline.Timeline` and fits, per template, a ``CoxTimeVaryingFitter`` in the
counting-process form: one row per grid interval in which the machine ran (start, stop: its
cumulative operating hours; event: a failure in it), the covariates of the timeline at the
interval's start, standardised over the template's rows (z = (x - mean) / sd), and for the
covariates named in ``squared`` also z^2 (the hazard rises with wear faster than linearly: the
emulated plant's is 1 + k wear^shape). The ridge penalty is ``penalty`` (0.05) per failure:
lifelines' penalizer is per row, so it is scaled by failures / rows and shrinks effects by about
1 / (1 + penalty) whatever the grid. The baseline hazard is then taken constant in operating time,
``failures / sum(exp(beta z) x exposure)``: time since repair and maintenance enter as covariates.

With fewer than ``min_failures`` (10) failures in a template's history, when the fit does not
converge, or when the covariates do not explain the failures better than a constant hazard (the
likelihood-ratio test, p > ``max_p`` = 0.01: the model does not invent risk), the template falls
back to the constant-MTBF hazard (failures / operating hours; the configured MTBF when there were
none) and its ``note`` says so.

A :class:`TemplateModel` scores a machine: the probability of a failure within ``hours`` of
calendar time, 1 - exp(-Lambda) with Lambda = h0 exp(beta z) x running share x hours, with a 90 %
interval (``twin.health.interval``: exact Poisson for the constant hazard, a parametric bootstrap of
the fitted coefficients and baseline for the Cox model; ``Risk.vague`` says in words when the
history cannot narrow it) and the covariates that push it up most (``drivers``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from lifelines import CoxTimeVaryingFitter
from lifelines.exceptions import ConvergenceError

from twin.health.interval import cox_draws, garwood, vague
from twin.health.timeline import MachineTimeline, Timeline

__all__ = ["Driver", "FitOptions", "HealthModel", "Risk", "TemplateModel", "fit"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FitOptions:
    """How the model is fitted (see the module docstring)."""

    min_failures: int = 10
    penalty: float = 0.05
    max_p: float = 0.01  # the likelihood-ratio test against the constant hazard must reach this
    squared: tuple[str, ...] = ("h_since_repair", "h_since_maintenance")
    until: float = math.inf  # use only grid rows before this time (unix s): the training window


@dataclass(frozen=True, slots=True, kw_only=True)
class Driver:
    """A covariate that raises a machine's risk: its value, the template's mean, and the factor it gives."""

    name: str
    value: float
    mean: float
    factor: float  # exp(its terms of beta z): how many times the average hazard it alone makes


@dataclass(frozen=True, slots=True, kw_only=True)
class Risk:
    """A machine's failure probability over a horizon, with a 90 % interval."""

    p: float
    low: float
    high: float
    hours: float
    vague: str = ""  # not empty: the interval says nothing usable, and this says why ("too little history: ...")


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateModel:
    """The fitted hazard of one template's machines."""

    template: str
    kind: str  # "cox" or "constant"
    failures: int
    machines: int
    operating_h: float
    rows: int
    base_per_h: float  # hazard per operating hour at z = 0 (constant: the whole hazard)
    features: tuple[str, ...] = ()
    means: tuple[float, ...] = ()
    sds: tuple[float, ...] = ()
    terms: tuple[str, ...] = ()  # the model's covariates: a feature, or "name^2"
    coefs: tuple[float, ...] = ()  # per term, on standardised features
    cov: tuple[tuple[float, ...], ...] = ()
    share: Mapping[str, float] = field(default_factory=dict)  # "site/machine" -> running share in the history
    note: str = ""
    # Cox: bootstrap rows (log h0, beta...) from the fit's covariance (twin.health.interval.cox_draws)
    draws: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), compare=False, repr=False)

    def effect(self, name: str) -> float:
        """The coefficient of a term (0 when the model has no such term)."""
        return self.coefs[self.terms.index(name)] if name in self.terms else 0.0

    def design(self, values: Mapping[str, float]) -> np.ndarray:
        """The model's covariate vector for raw feature ``values`` (a missing or NaN value: the mean)."""
        z = {}
        for f, mu, sd in zip(self.features, self.means, self.sds, strict=True):
            v = values.get(f, math.nan)
            z[f] = 0.0 if not math.isfinite(v) else (v - mu) / sd
        return np.asarray([z[t[:-2]] ** 2 if t.endswith("^2") else z[t] for t in self.terms], dtype=float)

    def log_relative(self, values: Mapping[str, float]) -> float:
        """Return beta z, the log of the hazard relative to z = 0."""
        if not self.terms:
            return 0.0
        return float(np.dot(self.design(values), self.coefs))

    def design_many(self, values: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """The covariate vectors (``n`` x terms) for ``n`` rows of raw feature arrays (missing or NaN: the mean)."""
        z = {}
        for f, mu, sd in zip(self.features, self.means, self.sds, strict=True):
            v = values.get(f)
            z[f] = np.zeros(n) if v is None else np.where(np.isfinite(v), (v - mu) / sd, 0.0)
        cols = [z[t[:-2]] ** 2 if t.endswith("^2") else z[t] for t in self.terms]
        return np.column_stack(cols) if cols else np.zeros((n, 0))

    def log_relative_many(self, values: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """Return beta z for ``n`` rows of raw feature arrays (a missing or NaN value: the mean)."""
        if not self.terms:
            return np.zeros(n)
        z = {}
        for f, mu, sd in zip(self.features, self.means, self.sds, strict=True):
            v = values.get(f)
            z[f] = np.zeros(n) if v is None else np.where(np.isfinite(v), (v - mu) / sd, 0.0)
        out = np.zeros(n)
        for t, b in zip(self.terms, self.coefs, strict=True):
            out += b * (z[t[:-2]] ** 2 if t.endswith("^2") else z[t])
        return out

    def probability_many(self, values: Mapping[str, np.ndarray], n: int, hours: float, share: float) -> np.ndarray:
        """P(failure within ``hours``) for ``n`` rows (no interval): for evaluation and benchmarks."""
        lam = self.base_per_h * np.exp(self.log_relative_many(values, n)) * share * hours
        return np.asarray(-np.expm1(-lam), dtype=float)

    def baseline_probability(self, hours: float, share: float) -> float:
        """P(failure within ``hours``) under the constant-MTBF hazard of the same history."""
        rate = self.failures / self.operating_h if self.failures and self.operating_h > 0 else self.base_per_h
        return -math.expm1(-rate * share * hours)

    def risk(self, values: Mapping[str, float], hours: float, share: float, idle_h: float = 0.0) -> Risk:
        """P(failure within ``hours`` of calendar time) when the machine runs ``share`` of it after ``idle_h``.

        ``idle_h``: hours at the start of the horizon in which the machine cannot run (off until its
        next shift); only the rest is exposed.
        """
        exposed = share * max(0.0, hours - idle_h)
        lam = self.base_per_h * math.exp(self.log_relative(values)) * exposed
        low, high = self.rate_interval(values)
        lo_lam, hi_lam = min(low * exposed, lam), max(high * exposed, lam)

        def p(v: float) -> float:
            return -math.expm1(-v) if math.isfinite(v) else 1.0

        words = ""
        if exposed > 0 and vague(lo_lam, hi_lam, p(hi_lam)):
            words = (f"too little history: {self.failures} failures in {self.operating_h:.0f} operating hours"
                     if self.kind != "cox" else
                     f"too little history: {self.failures} failures for {len(self.terms)} effects, and this "
                     f"machine's condition is unlike most of them")
        return Risk(p=p(lam), low=p(lo_lam), high=p(hi_lam), hours=hours, vague=words)

    def rate_interval(self, values: Mapping[str, float]) -> tuple[float, float]:
        """The 90 % interval of the hazard per operating hour at raw feature ``values``.

        Constant: the exact Poisson interval of failures / operating hours (without failures from 0,
        at least up to the configured rate it uses); Cox: the 5 % and 95 % quantiles of
        h0 exp(beta z) over the bootstrap draws (see ``twin.health.interval``).
        """
        if self.kind == "cox" and self.draws.size:
            eta = self.draws[:, 0] + self.draws[:, 1:] @ self.design(values)
            q = np.quantile(eta, (0.05, 0.95))
            return math.exp(float(q[0])), math.exp(min(float(q[1]), 700.0))
        low, high = garwood(self.failures, self.operating_h)
        return min(low, self.base_per_h), max(high, self.base_per_h)

    def threshold(self, name: str, factor: float = 3.0) -> float | None:
        """The value of feature ``name`` at which it alone makes ``factor`` x the average hazard (None: never).

        Solves b1 z + b2 z^2 = log(factor) for the smallest z above the mean (the feature's linear and
        squared terms), and returns mean + sd x z: the learnt threshold a trend of the signal can show.
        """
        if name not in self.features or factor <= 1.0:
            return None
        i = self.features.index(name)
        b1, b2, target = self.effect(name), self.effect(name + "^2"), math.log(factor)
        if abs(b2) < 1e-12:
            if b1 <= 0:
                return None
            z = target / b1
        else:
            disc = b1 * b1 + 4.0 * b2 * target
            if disc < 0:
                return None
            roots = [(-b1 + sign * math.sqrt(disc)) / (2.0 * b2) for sign in (1.0, -1.0)]
            above = [r for r in roots if r > 0]
            if not above:
                return None
            z = min(above)
        return self.means[i] + self.sds[i] * z

    def drivers(self, values: Mapping[str, float], top: int = 3) -> tuple[Driver, ...]:
        """The features whose terms raise the hazard most above z = 0 (factor > 1 only), largest first."""
        if not self.terms:
            return ()
        x = self.design(values)
        out = []
        for f, mu in zip(self.features, self.means, strict=True):
            c = sum(b * xi for t, b, xi in zip(self.terms, self.coefs, x, strict=True) if t in (f, f + "^2"))
            if c > 0.0:
                out.append(Driver(name=f, value=float(values.get(f, math.nan)), mean=mu, factor=math.exp(c)))
        return tuple(sorted(out, key=lambda d: -d.factor)[:top])


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthModel:
    """One :class:`TemplateModel` per template, fitted from the history up to ``fitted_until`` (unix s)."""

    templates: Mapping[str, TemplateModel]
    fitted_until: float


def _rows(ms: Sequence[MachineTimeline], until: float) -> tuple[list[str], dict[str, np.ndarray], np.ndarray,
                                                                 np.ndarray, np.ndarray, np.ndarray]:
    names = sorted({f for m in ms for f in m.features})
    ids, start, stop, event = [], [], [], []
    cols: dict[str, list[np.ndarray]] = {f: [] for f in names}
    for i, m in enumerate(ms):
        keep = (m.exposure_h > 1e-9) & (m.t + 0.0 < until)
        if not keep.any():
            continue
        n = int(keep.sum())
        ids.append(np.full(n, i))
        start.append(m.run_h[keep])
        stop.append(m.run_h[keep] + m.exposure_h[keep])
        event.append(m.failed[keep])
        for f in names:
            cols[f].append(m.features[f][keep] if f in m.features else np.full(n, np.nan))

    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0)

    return names, {f: cat(v) for f, v in cols.items()}, cat(ids), cat(start), cat(stop), cat(event).astype(bool)


def _share(m: MachineTimeline, until: float) -> float:
    """Operating hours / calendar hours of ``m`` over the grid rows before ``until``."""
    keep = m.t < until
    n = int(keep.sum())
    if n < 2:
        return m.running_share
    step_h = float(m.t[1] - m.t[0]) / 3600.0
    return float(m.exposure_h[keep].sum()) / (n * step_h)


def _constant(template: str, ms: Sequence[MachineTimeline], failures: int, op_h: float, rows: int,
              mtbf_h: float, share: Mapping[str, float], why: str) -> TemplateModel:
    if failures > 0 and op_h > 0:
        rate, src = failures / op_h, f"MTBF {op_h / failures:.0f} h from {failures} failures"
    else:
        rate, src = 1.0 / mtbf_h, f"the configured MTBF {mtbf_h:g} h"
    return TemplateModel(template=template, kind="constant", failures=failures, machines=len(ms),
                         operating_h=op_h, rows=rows, base_per_h=rate, share=share,
                         note=f"constant-MTBF hazard ({src}): {why}")


def _fit_template(template: str, ms: Sequence[MachineTimeline], opts: FitOptions, mtbf_h: float) -> TemplateModel:
    names, cols, ids, start, stop, event = _rows(ms, opts.until)
    failures, rows = int(event.sum()), len(ids)
    op_h = float((stop - start).sum())
    share = {f"{m.site}/{m.machine}": _share(m, opts.until) for m in ms}
    if failures < opts.min_failures:
        return _constant(template, ms, failures, op_h, rows, mtbf_h, share,
                         f"{failures} failures in {op_h:.0f} operating hours, the condition model needs "
                         f"{opts.min_failures}")
    feats, means, sds, z = [], [], [], {}
    for f in names:
        x = cols[f]
        ok = np.isfinite(x)
        if ok.sum() < 2:
            continue
        mu, sd = float(x[ok].mean()), float(x[ok].std())
        if not sd > 1e-9:
            continue
        feats.append(f)
        means.append(mu)
        sds.append(sd)
        z[f] = np.where(ok, (x - mu) / sd, 0.0)
    terms = list(feats) + [f + "^2" for f in feats if f in opts.squared]
    data = {"id": ids, "start": start, "stop": stop, "event": event}
    for t in terms:
        data[t] = z[t[:-2]] ** 2 if t.endswith("^2") else z[t]
    df = pd.DataFrame(data)
    ctv = CoxTimeVaryingFitter(penalizer=opts.penalty * failures / max(rows, 1))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ctv.fit(df, id_col="id", event_col="event", start_col="start", stop_col="stop")
    except (ConvergenceError, np.linalg.LinAlgError, ValueError, ZeroDivisionError) as exc:
        return _constant(template, ms, failures, op_h, rows, mtbf_h, share, f"the Cox fit failed ({exc})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lr = ctv.log_likelihood_ratio_test()
    p_value, chi2 = float(lr.p_value), float(lr.test_statistic)
    if not p_value <= opts.max_p:
        return _constant(template, ms, failures, op_h, rows, mtbf_h, share,
                         f"no condition signal explains the {failures} failures (likelihood-ratio test "
                         f"chi2 {chi2:.1f} on {len(terms)} terms, p = {p_value:.2g} > {opts.max_p:g})")
    coefs = tuple(float(ctv.params_[t]) for t in terms)
    at = [list(ctv.params_.index).index(t) for t in terms]
    var = np.asarray(ctv.variance_matrix_.to_numpy(), dtype=float)[np.ix_(at, at)]
    cov = tuple(tuple(float(v) for v in row) for row in var)
    x = np.column_stack([data[t] for t in terms])
    exposure = float((np.exp(x @ np.asarray(coefs)) * (stop - start)).sum())
    draws = cox_draws(template, x, stop - start, failures, np.asarray(coefs), var)
    return TemplateModel(template=template, kind="cox", failures=failures, machines=len(ms), operating_h=op_h,
                         rows=rows, base_per_h=failures / exposure, features=tuple(feats), means=tuple(means),
                         sds=tuple(sds), terms=tuple(terms), coefs=coefs, cov=cov, share=share, draws=draws,
                         note=f"Cox time-varying model from {failures} failures in {op_h:.0f} operating hours "
                              f"of {len(ms)} machines (likelihood-ratio test against the constant hazard: "
                              f"p = {p_value:.2g})")


def fit(timeline: Timeline, mtbf_h: Mapping[str, float], options: FitOptions | None = None) -> HealthModel:
    """Fit every template of ``timeline``; ``mtbf_h`` is each template's configured MTBF (the last fallback)."""
    opts = options or FitOptions()
    models = {tpl: _fit_template(tpl, ms, opts, mtbf_h.get(tpl, 200.0))
              for tpl, ms in sorted(timeline.templates().items())}
    return HealthModel(templates=models, fitted_until=min(opts.until, timeline.t1))
