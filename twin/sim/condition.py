"""Condition hazards for a fork: each machine's failure hazard from the fitted health model and its wear now.

The health model (``twin.health.model``) gives, per template, a hazard per operating hour
``h0 exp(beta z(x))`` in the machine's covariates x: its condition signals (rolling means while
running) and its operating hours since the last repair and maintenance. A what-if needs that
hazard as a function of the running time ahead, so :func:`condition_hazards` projects x:

* the hours since the last repair and maintenance grow with running time, one for one;
* each condition signal grows by its **wear growth**: per template, the slope of the signal over
  the operating hours since the last repair (a repair removes the wear), pooled over the
  template's machines with one intercept per machine (:func:`wear_growth`); the intercept is the
  machine's fresh level;
* every covariate is held at the largest value the template's history showed (no extrapolation
  of the fitted curve beyond the data).

Each machine gets a :class:`twin.sim.model.Hazard`: ``now`` from its covariates at the fork (the
last grid time of the timeline, a signal not seen yet: its fresh level plus the growth since the
repair), ``renewed`` from a freshly serviced machine (hours since repair and maintenance 0, the
signals at their fresh level). A repair or a ``Maintenance`` intervention puts it on ``renewed``:
a maintenance is taken as a full renewal (the emulated plant's may remove only part of the wear;
:func:`maintenance_restore` reads the share a maintenance removed from the history's signal drops,
but the simulation model has one renewed curve for repairs and maintenance alike, so it is not used yet).
The curves are piecewise constant: the hazard at the middle of each ``step_h`` of running time,
for ``span_h`` (the last value beyond), capped at ``max_per_h``.

**Second order.** The fitted coefficients are uncertain (few failures: wide). Each hazard is a
:class:`DrawnHazard`: besides its curves at the point estimate it keeps the curves' covariate
design and the health model's bootstrap draws of (log h0, beta) (``TemplateModel.draws``). A
second-order replication (``twin.sim.uncertainty.Perturber``) picks one draw per template and
replication (stream ``param:condition:<template>``: every machine of the template gets the same
draw, the baseline and the scenario of a pair too) and runs on that draw's curves, so the bands
hold the condition model's uncertainty; a first-order run uses the point estimate's curves.

Only templates with a condition model (``kind == "cox"``) get one: without a health model, or
where it fell back to the constant-MTBF hazard, the fork keeps the constant hazard 1 / MTBF and
draws exactly as before.

Pure (numpy); the health model is passed in, so this module imports neither lifelines nor pandas.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from twin.health.timeline import MachineTimeline, Timeline
from twin.sim.model import Hazard

if TYPE_CHECKING:
    from twin.health.model import HealthModel, TemplateModel

__all__ = ["DrawnHazard", "Growth", "condition_hazards", "maintenance_restore", "wear_growth"]

_HOUR_S = 3600.0
_SINCE = ("h_since_repair", "h_since_maintenance")


@dataclass(frozen=True, slots=True, kw_only=True)
class Growth:
    """How a condition signal grows with operating hours since a repair: per hour, and each machine's fresh level."""

    per_h: float
    fresh: Mapping[str, float]  # "site/machine" -> the level just after a repair
    highest: float  # the largest value in the template's history


def wear_growth(machines: Sequence[MachineTimeline], feature: str) -> Growth | None:
    """The pooled slope of ``feature`` over ``h_since_repair`` with one intercept per machine (None: no data).

    Least squares on the grid rows in which the machine ran (the signals are means while running).

    >>> import numpy as np
    >>> from twin.spec import MachineStatus
    >>> def m(name, base):
    ...     h = np.arange(4.0)
    ...     return MachineTimeline(site="s", machine=name, template="t", t=h * 3600,
    ...         status=(MachineStatus.RUNNING,) * 4, features={"x": base + 2 * h, "h_since_repair": h},
    ...         run_h=h, exposure_h=np.ones(4),
    ...         failed=np.zeros(4, bool), next_failure=np.full(4, np.inf), failures=0, running_share=1.0)
    >>> g = wear_growth([m("a", 10.0), m("b", 20.0)], "x")
    >>> round(g.per_h, 6), {k: round(v, 6) for k, v in g.fresh.items()}, g.highest
    (2.0, {'s/a': 10.0, 's/b': 20.0}, 26.0)
    """
    num = den = 0.0
    means: dict[str, tuple[float, float]] = {}
    highest = -math.inf
    for m in machines:
        x, r = m.features.get(feature), m.features.get("h_since_repair")
        if x is None or r is None:
            continue
        keep = np.isfinite(x) & np.isfinite(r) & (m.exposure_h > 1e-9)
        if keep.sum() < 2:
            continue
        xs, rs = x[keep], r[keep]
        xm, rm = float(xs.mean()), float(rs.mean())
        num += float(((xs - xm) * (rs - rm)).sum())
        den += float(((rs - rm) ** 2).sum())
        means[f"{m.site}/{m.machine}"] = (xm, rm)
        highest = max(highest, float(xs.max()))
    if not means:
        return None
    slope = num / den if den > 0 else 0.0
    return Growth(per_h=slope, fresh={k: xm - slope * rm for k, (xm, rm) in means.items()}, highest=highest)


@dataclass(frozen=True, slots=True, kw_only=True)
class DrawnHazard(Hazard):
    """A condition hazard that a second-order replication can redraw from the health model's coefficient draws.

    ``now`` and ``renewed`` are the curves at the point estimate; ``design_now`` and
    ``design_renewed`` (steps x terms) their covariate vectors, ``draws`` the template's bootstrap
    rows (log h0, beta...), ``group`` the template (one draw per template and replication).
    """

    group: str = ""
    max_per_h: float = 60.0
    design_now: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), compare=False, repr=False)
    design_renewed: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), compare=False, repr=False)
    draws: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)), compare=False, repr=False)

    def drawn(self, u: float) -> Hazard:
        """The plain :class:`Hazard` of draw ``int(u x draws)`` (``u`` uniform in [0, 1); no draws: the point's)."""
        if not self.draws.size:
            return Hazard(step_s=self.step_s, now=self.now, renewed=self.renewed)
        row = self.draws[min(int(u * len(self.draws)), len(self.draws) - 1)]

        def curve(x: np.ndarray) -> tuple[float, ...]:
            per_h = np.exp(np.minimum(row[0] + x @ row[1:], 50.0))
            return tuple((np.minimum(per_h, self.max_per_h) / _HOUR_S).tolist())

        return Hazard(step_s=self.step_s, now=curve(self.design_now), renewed=curve(self.design_renewed))


def _after(x: np.ndarray, since: np.ndarray, i: int, settle_h: float) -> int:
    """The first row from ``i`` whose signal is finite and whose ``since`` counter reached ``settle_h``."""
    while i < len(x) and (not np.isfinite(x[i]) or since[i] < settle_h):
        i += 1
    return i


def maintenance_restore(machines: Sequence[MachineTimeline], feature: str,
                        settle_h: float = 2.0) -> tuple[float, int] | None:
    """The share of the wear a planned maintenance removed, read from ``feature``'s drop (None: no maintenance seen).

    Per machine the fresh level is the signal ``settle_h`` operating hours after each repair (a
    repair renews), less its wear growth since; at each maintenance (hours since maintenance drop,
    hours since repair do not), restore = (level before - level ``settle_h`` after, less the growth
    since) / (level before - fresh), pooled over the maintenances as a ratio of sums. ``settle_h``:
    the signals are means over the last 2 h of running, so only then is the level after all new.
    Returns (restore, maintenances used). Not yet used by the fork (see docs/health.md).
    """
    g = wear_growth(machines, feature)
    if g is None:
        return None
    num = den = 0.0
    used = 0
    for m in machines:
        x, rep, mnt = m.features.get(feature), m.features.get("h_since_repair"), m.features.get("h_since_maintenance")
        if x is None or rep is None or mnt is None:
            continue
        fresh_levels = []
        for i in np.flatnonzero(rep[1:] < rep[:-1] - 1e-9) + 1:
            j = _after(x, rep, int(i), settle_h)
            if j < len(x) and rep[j] < 2.0 * settle_h:
                fresh_levels.append(float(x[j] - g.per_h * rep[j]))
        fresh = float(np.mean(fresh_levels)) if fresh_levels else g.fresh.get(f"{m.site}/{m.machine}", math.nan)
        for i in np.flatnonzero((mnt[1:] < mnt[:-1] - 1e-9) & (rep[1:] >= rep[:-1] - 1e-9)) + 1:
            before = float(x[i - 1])
            j = _after(x, mnt, int(i), settle_h)
            if j >= len(x) or not (math.isfinite(before) and math.isfinite(fresh)) or rep[j] < rep[i] - 1e-9:
                continue  # no level after it, or a repair came first
            num += before - float(x[j] - g.per_h * mnt[j])
            den += before - fresh
            used += 1
    return (num / den, used) if used and den > 0 else None


def _highest(machines: Sequence[MachineTimeline], feature: str) -> float:
    vals = [float(np.nanmax(m.features[feature])) for m in machines
            if feature in m.features and np.isfinite(m.features[feature]).any()]
    return max(vals) if vals else math.inf


def _curve(tm: TemplateModel, start: Mapping[str, float], growth: Mapping[str, float], cap: Mapping[str, float],
           n: int, step_h: float, max_per_h: float) -> tuple[tuple[float, ...], np.ndarray]:
    """The hazard per running second at the middle of each of ``n`` steps, the covariates grown from ``start``.

    Also the steps' covariate vectors (``n`` x terms), from which a coefficient draw makes its own curve.
    """
    a = (np.arange(n) + 0.5) * step_h
    values = {f: np.minimum(start[f] + growth.get(f, 0.0) * a, cap.get(f, math.inf)) for f in start}
    x = tm.design_many(values, n)
    eta = x @ np.asarray(tm.coefs, dtype=float) if tm.terms else np.zeros(n)
    per_h = tm.base_per_h * np.exp(np.minimum(eta, 50.0))
    return tuple(float(v) / _HOUR_S for v in np.minimum(per_h, max_per_h)), x


def condition_hazards(model: HealthModel, timeline: Timeline, *, span_h: float = 336.0, step_h: float = 1.0,
                      max_per_h: float = 60.0) -> dict[str, Hazard]:
    """A condition hazard for every machine of ``timeline`` whose template has a condition model, by "site/machine".

    The machines' covariates at the fork are those at the timeline's last grid time (see the module
    docstring).
    """
    if span_h <= 0 or step_h <= 0 or max_per_h <= 0:
        raise ValueError(f"span_h, step_h and max_per_h must be > 0 (got {span_h}, {step_h}, {max_per_h})")
    n = max(1, math.ceil(span_h / step_h))
    out: dict[str, Hazard] = {}
    for template, machines in sorted(timeline.templates().items()):
        tm = model.templates.get(template)
        if tm is None or tm.kind != "cox":
            continue
        growths = {f: g for f in tm.features if f not in _SINCE and (g := wear_growth(machines, f)) is not None}
        per_h = {f: g.per_h for f, g in growths.items()} | dict.fromkeys(_SINCE, 1.0)
        cap = {f: (growths[f].highest if f in growths else _highest(machines, f)) for f in tm.features}
        for m in machines:
            key = f"{m.site}/{m.machine}"
            if len(m.t) == 0:
                continue
            since_repair = float(m.features.get("h_since_repair", np.zeros(1))[-1])
            now: dict[str, float] = {}
            fresh: dict[str, float] = {}
            for f in tm.features:
                series = m.features.get(f)
                last = float(series[-1]) if series is not None and len(series) else math.nan
                if f in _SINCE:
                    now[f], fresh[f] = last, 0.0
                    continue
                g = growths.get(f)
                level = g.fresh.get(key, math.nan) if g is not None else math.nan
                fresh[f] = level
                now[f] = last if math.isfinite(last) else level + (g.per_h if g is not None else 0.0) * since_repair
            c_now, x_now = _curve(tm, now, per_h, cap, n, step_h, max_per_h)
            c_new, x_new = _curve(tm, fresh, per_h, cap, n, step_h, max_per_h)
            out[key] = DrawnHazard(step_s=step_h * _HOUR_S, now=c_now, renewed=c_new, group=template,
                                   max_per_h=max_per_h, design_now=x_now, design_renewed=x_new, draws=tm.draws)
    return out
