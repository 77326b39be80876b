"""Per-machine timelines for the failure-risk model: status and condition history on a regular grid.

Pure (numpy only). Input, per machine, is a :class:`ConditionHistory`: its status changes (the
twin's STATUS_CHANGE events, the status at the start first) and its condition signals
(temperature, power and vibration series, raw samples). :func:`build_timeline` puts every machine
on one grid (``step_s``, default 30 min) and gives, for each grid time ``t`` (from data at or
before ``t`` only):

* **covariates**: per condition signal, the mean of its samples taken while the machine was
  RUNNING (temperatures only once it had run ``settle_s``, 1.5 h, so that warming up is not read as
  wear) over the ``window_s`` (2 h) before ``t``, the last such mean when there were none; and
  the operating hours since the last repair ended (``h_since_repair``) and since the last planned
  maintenance ended (``h_since_maintenance``), counted from the history's start when there was
  none;
* **exposure**: operating (RUNNING) seconds in ``[t, t + step)`` and the cumulative operating
  hours at ``t`` (the model's time axis), and whether a failure (a change into FAULT) happened in
  ``(t, t + step]``;
* for evaluation, the status at ``t`` and the time of the next failure after ``t``.

Feature names: the signal's name (``vibration_mm_s``), ``h_since_repair``, ``h_since_maintenance``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from twin.spec import MachineStatus, SignalKind

__all__ = ["CONDITION_KINDS", "ConditionHistory", "MachineTimeline", "Timeline", "build_timeline"]

CONDITION_KINDS = (SignalKind.VIBRATION, SignalKind.TEMPERATURE, SignalKind.POWER)
_SETTLE_KINDS = (SignalKind.TEMPERATURE,)
Floats = NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConditionHistory:
    """What the history says of one machine: status changes and condition samples (times in unix seconds).

    ``status`` starts with the status at the window's start; ``signals`` maps a signal name to its
    kind and (times, values).
    """

    site: str
    machine: str
    template: str
    status: tuple[tuple[float, MachineStatus], ...]
    signals: Mapping[str, tuple[SignalKind, Floats, Floats]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineTimeline:
    """One machine on the grid: arrays of the grid's length (see the module docstring)."""

    site: str
    machine: str
    template: str
    t: Floats  # grid times, unix s
    status: tuple[MachineStatus, ...]
    features: Mapping[str, Floats]  # name -> value at each grid time (NaN: nothing seen yet)
    run_h: Floats  # cumulative operating hours at t (from the window's start)
    exposure_h: Floats  # operating hours in [t, t + step)
    failed: NDArray[np.bool_]  # a failure in (t, t + step]
    next_failure: Floats  # time of the first failure after t (inf: none in the window)
    failures: int
    running_share: float  # operating hours / calendar hours over the window


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeline:
    """Every machine on one grid of ``step_s`` from ``t0`` to ``t1``."""

    t0: float
    t1: float
    step_s: float
    machines: tuple[MachineTimeline, ...]

    def templates(self) -> dict[str, list[MachineTimeline]]:
        """The machines grouped by template (the model is fitted per template)."""
        out: dict[str, list[MachineTimeline]] = {}
        for m in self.machines:
            out.setdefault(m.template, []).append(m)
        return out


def _running(status: Sequence[tuple[float, MachineStatus]], t1: float) -> tuple[Floats, Floats]:
    """(start, end) of every RUNNING spell, clipped at ``t1``."""
    starts, ends = [], []
    for (t, s), nxt in zip(status, [*status[1:], (t1, MachineStatus.UNKNOWN)], strict=True):
        if s is MachineStatus.RUNNING and nxt[0] > t:
            starts.append(t)
            ends.append(min(nxt[0], t1))
    return np.asarray(starts, dtype=float), np.asarray(ends, dtype=float)


def _cumulative(starts: Floats, ends: Floats, at: Floats) -> Floats:
    """Operating seconds from the first spell to each time in ``at``."""
    if len(starts) == 0:
        return np.zeros_like(at)
    done = np.concatenate([[0.0], np.cumsum(ends - starts)])
    i = np.searchsorted(starts, at, side="right")  # spells started at or before each time
    inside = np.where(i > 0, np.minimum(at, ends[np.maximum(i - 1, 0)]) - starts[np.maximum(i - 1, 0)], 0.0)
    return np.asarray(done[np.maximum(i - 1, 0)] * (i > 0) + np.maximum(inside, 0.0), dtype=float)


def _changes(status: Sequence[tuple[float, MachineStatus]]) -> tuple[Floats, Floats, Floats]:
    """Times of failures (into FAULT), repair ends (FAULT to a known status) and maintenance ends."""
    fails, repairs, maints = [], [], []
    prev = MachineStatus.UNKNOWN
    for t, s in status:
        if s is MachineStatus.FAULT and prev is not MachineStatus.FAULT and prev is not MachineStatus.UNKNOWN:
            fails.append(t)
        elif prev is MachineStatus.FAULT and s not in (MachineStatus.FAULT, MachineStatus.UNKNOWN):
            repairs.append(t)
        elif prev is MachineStatus.MAINTENANCE and s is not MachineStatus.MAINTENANCE:
            maints.append(t)
        if s is not MachineStatus.UNKNOWN or prev is not MachineStatus.FAULT:
            prev = s
    return np.asarray(fails, dtype=float), np.asarray(repairs, dtype=float), np.asarray(maints, dtype=float)


def _status_at(status: Sequence[tuple[float, MachineStatus]], grid: Floats) -> tuple[MachineStatus, ...]:
    times = np.asarray([t for t, _ in status], dtype=float)
    idx = np.searchsorted(times, grid, side="right") - 1
    return tuple(status[i][1] if i >= 0 else MachineStatus.UNKNOWN for i in idx)


def _since(events: Floats, grid: Floats, run_s: Floats, run_at: Floats) -> Floats:
    """Operating hours between the last event at or before each grid time and it (from the start: none)."""
    i = np.searchsorted(events, grid, side="right") - 1
    last_run = np.where(i >= 0, run_at[np.maximum(i, 0)] if len(events) else 0.0, 0.0)
    return np.asarray((run_s - last_run) / 3600.0, dtype=float)


def _rolling(kind: SignalKind, ts: Floats, values: Floats, starts: Floats, ends: Floats, grid: Floats,
             window_s: float, settle_s: float) -> Floats:
    """The mean of the running samples over the window before each grid time; the last such mean if none."""
    if len(ts) == 0 or len(starts) == 0:
        return np.full(len(grid), np.nan)
    i = np.searchsorted(starts, ts, side="right") - 1  # the spell each sample could be in
    settle = settle_s if kind in _SETTLE_KINDS else 0.0
    j = np.maximum(i, 0)
    inside = (i >= 0) & (ts >= starts[j] + settle) & (ts < ends[j])  # at the end it shows the next status
    return _window_mean(ts, values, inside, grid, window_s)


def _window_mean(ts: Floats, values: Floats, keep: NDArray[np.bool_], grid: Floats, window_s: float) -> Floats:
    ts, values = ts[keep], values[keep]
    if len(ts) == 0:
        return np.full(len(grid), np.nan)
    csum = np.concatenate([[0.0], np.cumsum(values)])
    hi = np.searchsorted(ts, grid, side="right")
    lo = np.searchsorted(ts, grid - window_s, side="right")
    n = hi - lo
    mean = np.where(n > 0, (csum[hi] - csum[lo]) / np.maximum(n, 1), np.nan)
    # none in the window: the mean of the last window that had some (carried forward)
    seen = np.maximum.accumulate(np.where(n > 0, np.arange(len(grid)), -1))
    return np.asarray(np.where(seen >= 0, mean[np.maximum(seen, 0)], np.nan), dtype=float)


def _machine_timeline(h: ConditionHistory, grid: Floats, t1: float, step_s: float, window_s: float,
                      settle_s: float) -> MachineTimeline:
    status = sorted(h.status, key=lambda x: x[0])
    starts, ends = _running(status, t1)
    run_at_grid = _cumulative(starts, ends, grid)
    run_next = _cumulative(starts, ends, np.minimum(grid + step_s, t1))
    fails, repairs, maints = _changes(status)
    # ``running`` is only spells; a failure ends one, and a failure at t counts for (t - step, t]
    fail_bin = np.zeros(len(grid), dtype=bool)
    if len(fails):
        k = np.searchsorted(grid, fails, side="left") - 1
        fail_bin[k[(k >= 0) & (k < len(grid))]] = True
    j = np.searchsorted(fails, grid, side="right")
    next_failure = np.where(j < len(fails), fails[np.minimum(j, max(len(fails) - 1, 0))] if len(fails) else np.inf,
                            np.inf)
    features: dict[str, Floats] = {}
    for name, (kind, ts, values) in sorted(h.signals.items()):
        if kind in CONDITION_KINDS:
            order = np.argsort(ts, kind="stable")
            features[name] = _rolling(kind, ts[order], values[order], starts, ends, grid, window_s, settle_s)
    features["h_since_repair"] = _since(repairs, grid, run_at_grid, _cumulative(starts, ends, repairs))
    features["h_since_maintenance"] = _since(maints, grid, run_at_grid, _cumulative(starts, ends, maints))
    span_h = (t1 - grid[0]) / 3600.0 if len(grid) else 0.0
    run_s = float(_cumulative(starts, ends, np.asarray([t1]))[0] - (run_at_grid[0] if len(grid) else 0.0))
    total_run_h = run_s / 3600.0
    return MachineTimeline(
        site=h.site, machine=h.machine, template=h.template, t=grid, status=_status_at(status, grid),
        features=features, run_h=run_at_grid / 3600.0, exposure_h=(run_next - run_at_grid) / 3600.0,
        failed=fail_bin, next_failure=np.asarray(next_failure, dtype=float),
        failures=int(((fails > grid[0]) & (fails <= t1)).sum()) if len(grid) else 0,
        running_share=total_run_h / span_h if span_h > 0 else 0.0)


def build_timeline(histories: Sequence[ConditionHistory], t0: float, t1: float, *, step_s: float = 1800.0,
                   window_s: float = 2 * 3600.0, settle_s: float = 5400.0) -> Timeline:
    """Every machine of ``histories`` on the grid ``t0, t0 + step_s, ...`` (< ``t1``); see the module docstring.

    >>> h = ConditionHistory(site="s", machine="m", template="t",
    ...                      status=((0.0, MachineStatus.RUNNING), (7200.0, MachineStatus.FAULT),
    ...                              (9000.0, MachineStatus.RUNNING)))
    >>> m = build_timeline([h], 0.0, 4 * 3600.0, step_s=3600.0).machines[0]
    >>> m.exposure_h.tolist(), m.failed.tolist(), m.failures
    ([1.0, 1.0, 0.5, 1.0], [False, True, False, False], 1)
    >>> m.features["h_since_repair"].tolist()
    [0.0, 1.0, 2.0, 0.5]
    """
    if t1 <= t0 or step_s <= 0:
        raise ValueError(f"need t0 < t1 and step_s > 0 (got {t0}, {t1}, {step_s})")
    grid = np.arange(t0, t1, step_s, dtype=float)
    return Timeline(t0=t0, t1=t1, step_s=step_s,
                    machines=tuple(_machine_timeline(h, grid, t1, step_s, window_s, settle_s) for h in histories))
