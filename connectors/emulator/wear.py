"""The hidden wear of a degrading emulated machine: its failure budget spent faster, and what its sensors show.

Used by ``connectors.emulator.plant`` for templates with a ``[[degradation]]`` entry in the truth file
(``connectors.emulator.truth.Degradation``); a machine without one never meets this module.
``sample_histories`` steps a plant and keeps what a polling twin sees of its machines' condition.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from connectors.emulator.shopfloor import Machine, ValueKey
from connectors.emulator.truth import Degradation
from twin.health.timeline import CONDITION_KINDS, ConditionHistory
from twin.readings import Value
from twin.spec import MachineStatus, SignalKind

if TYPE_CHECKING:
    from connectors.emulator.plant import Plant

__all__ = ["Wear", "new_wear", "sample_histories", "show_wear"]


@dataclass(slots=True, eq=False)
class Wear:
    """The hidden wear of one degrading machine (``[[degradation]]`` of the truth file).

    ``wear`` is its value when the running stretch going on started (or now, at rest); while
    running it grows at ``rate`` per second. ``maintenances`` and ``repairs`` are the plant times of
    the resets. Its failure budget (``Machine.ttf_left``, base seconds: an exponential of mean
    MTBF) is spent at ``law.hazard_factor(wear)`` base seconds per running second.
    """

    law: Degradation
    rng: random.Random  # its own stream, ``{seed}:wear:{site}:{machine}``: the other draws do not move
    wear: float
    rate: float = 0.0
    maint_s: float = 0.0
    maintenances: list[float] = field(default_factory=list)
    repairs: list[float] = field(default_factory=list)

    def budget(self, s: float) -> float:
        """Base seconds of failure budget spent by running ``s`` seconds from now on (wear w0, rate r).

        H(s) = s + k ((w0 + r s)^(a+1) - w0^(a+1)) / (r (a+1)), or s (1 + k w0^a) when r = 0.
        """
        law, w0, r = self.law, self.wear, self.rate
        a1 = law.hazard_shape + 1.0
        if r <= 0.0:
            return s * law.hazard_factor(w0)
        return s + law.hazard_k * float((w0 + r * s) ** a1 - w0 ** a1) / (r * a1)

    def time_to_spend(self, budget: float, limit: float) -> float:
        """Running seconds until ``budget`` base seconds are spent, or ``limit`` if they are not by then.

        H is convex and increasing, so Newton's method from B / h(w0) (>= the root) comes down to it.
        """
        if budget <= 0.0:
            return 0.0
        if self.budget(limit) <= budget:
            return limit
        s = min(limit, budget / self.law.hazard_factor(self.wear))
        for _ in range(60):
            f = self.budget(s) - budget
            if f <= 1e-6:
                break
            s -= f / self.law.hazard_factor(self.wear + self.rate * s)
        return max(0.0, s)


def new_wear(law: Degradation, stream: str, default_maint_s: float) -> Wear:
    """The wear of a machine at the plant's start, drawn from its own stream ``stream``.

    A plant that has run before: wear anywhere up to one maintenance interval's worth at full load.
    """
    maint_s = law.maintenance_every_h * 3600.0 if law.maintenance_every_h is not None else default_maint_s
    rng = random.Random(stream)
    return Wear(law=law, rng=rng, wear=rng.uniform(0.0, law.wear_per_h * maint_s / 3600.0), maint_s=maint_s)


def show_wear(m: Machine, w: Wear, wear: float, out: dict[ValueKey, Value]) -> None:
    """Add the wear to the condition signals ``live_values`` just wrote (at rest only the temperatures)."""
    law = w.law
    if law.temperature_per_wear > 0.0:
        for key, *_ in m.temps:
            out[key] = round(float(out[key] or 0.0) + law.temperature_per_wear * wear, 1)
    if m.status is not MachineStatus.RUNNING:
        return
    if law.vibration_per_wear > 0.0:
        for key in m.vibs:
            out[key] = round(float(out[key] or 0.0) + law.vibration_per_wear * wear, 2)
    if law.power_per_wear > 0.0:
        for key, kw in m.powers:
            out[key] = round(float(out[key] or 0.0) + kw * law.power_per_wear * wear, 2)


def sample_histories(plant: Plant, end: datetime, step_s: float) -> list[ConditionHistory]:
    """Step ``plant`` to ``end`` every ``step_s`` and keep what a polling twin sees of each machine's condition.

    The status of every machine at each sample (a change shows at the first sample after it, as a
    collector polling every ``step_s`` sees it) and its condition signals (temperature, power,
    vibration): the input of ``twin.health`` without a historian in between, for tests and
    benchmarks of many emulated days.
    """
    t0 = plant.now
    machines = [(str(s.id), m) for s in plant.fleet.sites for m in s.machines if plant.has(str(s.id), str(m.id))]
    status: dict[tuple[str, str], list[tuple[float, MachineStatus]]] = {}
    signals: dict[tuple[str, str], dict[str, tuple[SignalKind, list[float], list[float]]]] = {}
    for sid, m in machines:
        status[(sid, str(m.id))] = [(t0.timestamp(), plant.status(sid, str(m.id)))]
        signals[(sid, str(m.id))] = {str(s.name): (s.kind, [], []) for s in m.template.signals
                                     if s.kind in CONDITION_KINDS}
    n = int((end - t0).total_seconds() // step_s)
    for k in range(1, n + 1):
        at = t0 + timedelta(seconds=k * step_s)
        values = plant.advance(at)
        ts = at.timestamp()
        for sid, m in machines:
            key = (sid, str(m.id))
            s = plant.status(*key)
            if s is not status[key][-1][1]:
                status[key].append((ts, s))
            for name, (_, times, vals) in signals[key].items():
                v = values.get((sid, str(m.id), name))
                if isinstance(v, int | float):
                    times.append(ts)
                    vals.append(float(v))
    return [ConditionHistory(site=sid, machine=str(m.id), template=str(m.template.id),
                             status=tuple(status[(sid, str(m.id))]),
                             signals={name: (kind, np.asarray(t, dtype=float), np.asarray(v, dtype=float))
                                      for name, (kind, t, v) in signals[(sid, str(m.id))].items()})
            for sid, m in machines]
