"""How good the failure-risk model is on days it did not see: AUC, Brier skill and warning lead time.

:func:`evaluate` scores every grid time of the held-out days (``from_t`` on) at which a machine is
RUNNING and whose horizon lies inside the history: the model's P(failure within ``horizon_h``)
against the label (a failure happened within it), and the same for the **constant-MTBF baseline**
(the template's failures / operating hours of the same training history, times the machine's running
share: nearly the same number for every moment, so its AUC is about 0.5). It reports per template
and pooled:

* **AUC**: the chance that a moment followed by a failure scores above one that is not (ties count
  half; Mann-Whitney), the model's and the baseline's;
* **Brier score** (mean squared error of the probability) of both, and the **Brier skill**
  1 - Brier(model) / Brier(baseline) (> 0: better than the baseline);
* **warning lead time**: for each held-out failure, how long before it the model's risk had been
  at or above ``warn_ratio`` (3) x the baseline's without a break (0: not warned), and the median
  over the failures that were warned.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from twin.health.model import HealthModel, TemplateModel
from twin.health.timeline import MachineTimeline, Timeline
from twin.spec import MachineStatus

__all__ = ["Evaluation", "auc", "evaluate"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """The held-out scores of one template (or ``"all"``, pooled)."""

    template: str
    kind: str  # the model's: "cox", "constant" or "pooled"
    points: int  # running moments scored
    positives: int  # of which a failure followed within the horizon
    failures: int  # held-out failures
    auc: float
    auc_baseline: float
    brier: float
    brier_baseline: float
    brier_skill: float
    lead_times_h: tuple[float, ...]  # per held-out failure (0: not warned)
    median_lead_h: float  # over the warned ones (NaN: none)
    warned: int


def auc(scores: Sequence[float] | NDArray[np.float64], labels: Sequence[bool] | NDArray[np.bool_]) -> float:
    """The area under the ROC curve: P(score of a positive > score of a negative), ties half (NaN: one class).

    >>> auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
    0.75
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return math.nan
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


@dataclass(frozen=True, slots=True)
class _Scored:
    p: NDArray[np.float64]
    base: NDArray[np.float64]
    y: NDArray[np.bool_]
    leads: list[float]
    failures: int


def _score(m: MachineTimeline, tm: TemplateModel, from_t: float, t1: float, horizon_h: float,
           warn_ratio: float) -> _Scored:
    share = tm.share.get(f"{m.site}/{m.machine}", m.running_share)
    n = len(m.t)
    p = tm.probability_many(m.features, n, horizon_h, share)
    base = np.full(n, tm.baseline_probability(horizon_h, share))
    running = np.asarray([s is MachineStatus.RUNNING for s in m.status])
    pick = running & (m.t >= from_t) & (m.t + horizon_h * 3600.0 <= t1)
    y = (m.next_failure - m.t) <= horizon_h * 3600.0
    warn = p >= warn_ratio * base
    fault = np.asarray([s is MachineStatus.FAULT for s in m.status])
    failures = np.unique(m.next_failure[np.isfinite(m.next_failure) & (m.next_failure >= from_t)])
    leads = []
    for f in failures:
        k = int(np.searchsorted(m.t, f, side="left")) - 1
        first = None
        while k >= 0 and warn[k] and not fault[k]:
            first = k
            k -= 1
        leads.append((f - m.t[first]) / 3600.0 if first is not None else 0.0)
    return _Scored(p=p[pick], base=base[pick], y=y[pick], leads=leads, failures=len(failures))


def _summary(template: str, kind: str, parts: Sequence[_Scored]) -> Evaluation:
    p = np.concatenate([s.p for s in parts]) if parts else np.zeros(0)
    base = np.concatenate([s.base for s in parts]) if parts else np.zeros(0)
    y = np.concatenate([s.y for s in parts]) if parts else np.zeros(0, dtype=bool)
    leads = tuple(x for s in parts for x in s.leads)
    brier = float(np.mean((p - y) ** 2)) if len(p) else math.nan
    brier_base = float(np.mean((base - y) ** 2)) if len(p) else math.nan
    warned = [x for x in leads if x > 0]
    return Evaluation(template=template, kind=kind, points=len(p), positives=int(y.sum()),
                      failures=sum(s.failures for s in parts), auc=auc(p, y), auc_baseline=auc(base, y),
                      brier=brier, brier_baseline=brier_base,
                      brier_skill=1.0 - brier / brier_base if brier_base > 0 else math.nan,
                      lead_times_h=leads, median_lead_h=statistics.median(warned) if warned else math.nan,
                      warned=len(warned))


def evaluate(timeline: Timeline, model: HealthModel, *, from_t: float, horizon_h: float = 8.0,
             warn_ratio: float = 3.0) -> dict[str, Evaluation]:
    """Held-out scores per template and pooled (``"all"``) over the grid times from ``from_t`` on."""
    out: dict[str, Evaluation] = {}
    pooled: list[_Scored] = []
    for tpl, ms in sorted(timeline.templates().items()):
        tm = model.templates.get(tpl)
        if tm is None:
            continue
        parts = [_score(m, tm, from_t, timeline.t1, horizon_h, warn_ratio) for m in ms]
        out[tpl] = _summary(tpl, tm.kind, parts)
        pooled += parts
    out["all"] = _summary("all", "pooled", pooled)
    return out
