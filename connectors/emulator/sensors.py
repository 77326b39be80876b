"""What the emulated PLCs show: a machine's register values from its state, and sensor values with their noise.

Status codes, counters (wrapping at their ``counter_bits``), cycle time, fault code, job and level
change only at the plant's events; temperatures follow the machine's status with a thermal time
constant, power and vibration move while it runs. Noise is drawn from a table of normal quantiles.
The truth's episodes (``Episode``: a heater running away, a chattering sensor) raise temperature
readings as sampled (``apply_episodes``), after the plant has made them: no draw or event changes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from statistics import NormalDist

from connectors.emulator.shopfloor import Item, Machine, ValueKey
from connectors.emulator.truth import Episode
from twin.readings import Reading, Value
from twin.spec import MachineStatus, MachineTemplate, Role, SignalKind

__all__ = ["AMBIENT_C", "DEFAULT_CODES", "apply_episodes", "item_values",
           "live_values", "plan_signals", "static_values", "temperature"]

DEFAULT_CODES = {MachineStatus.OFF: 0, MachineStatus.IDLE: 1, MachineStatus.RUNNING: 2, MachineStatus.FAULT: 3,
                 MachineStatus.MAINTENANCE: 4, MachineStatus.SETUP: 5}
_RATED_KW = {Role.PRINT: 1.2, Role.MACHINE: 7.5, Role.POST_PROCESS: 2.0, Role.ASSEMBLE: 1.5, Role.INSPECT: 0.5,
             Role.PACK: 0.4}
AMBIENT_C = 22.0
_TAU_S = 600.0  # thermal time constant
_S_STATUS, _S_GOOD, _S_SCRAP, _S_CYCLE, _S_TEMP, _S_POWER, _S_VIB, _S_FAULT, _S_JOB, _S_LEVEL, _S_OTHER = range(11)
_SIGNAL_CODES = {SignalKind.STATUS: _S_STATUS, SignalKind.GOOD_COUNT: _S_GOOD, SignalKind.SCRAP_COUNT: _S_SCRAP,
                 SignalKind.CYCLE_TIME: _S_CYCLE, SignalKind.TEMPERATURE: _S_TEMP, SignalKind.POWER: _S_POWER,
                 SignalKind.VIBRATION: _S_VIB, SignalKind.FAULT_CODE: _S_FAULT, SignalKind.JOB: _S_JOB,
                 SignalKind.LEVEL: _S_LEVEL}
_POWER_FACTOR = {MachineStatus.IDLE: 0.15, MachineStatus.FAULT: 0.05}
_NOISE_BITS = 10
# sensor noise, sd 0.3: the normal quantiles at the midpoints of 1,024 equal-probability bins
_NOISE = tuple(0.3 * NormalDist().inv_cdf((i + 0.5) / (1 << _NOISE_BITS)) for i in range(1 << _NOISE_BITS))


def _hot_c(name: str) -> float:
    """The running temperature of a signal, guessed from its name."""
    for hint, t in (("nozzle", 215.0), ("bed", 60.0), ("chamber", 170.0), ("spindle", 38.0)):
        if hint in name:
            return t
    return 45.0


def plan_signals(m: Machine, tpl: MachineTemplate) -> None:
    """Sort the template's signals into what ``m`` shows: event values, temperatures, power, vibration."""
    rated = _RATED_KW[tpl.role] * (3.0 if "sls" in tpl.id else 1.0)
    for s in tpl.signals:
        key = (m.site, str(m.spec.id), str(s.name))
        code = _SIGNAL_CODES.get(s.kind, _S_OTHER)
        if code == _S_TEMP:
            m.temp_from[s.name] = AMBIENT_C
            hot = _hot_c(s.name)
            m.temps.append((key, str(s.name), hot, AMBIENT_C + 0.1 * (hot - AMBIENT_C)))
        elif code == _S_POWER:
            m.powers.append((key, rated))
        elif code == _S_VIB:
            m.vibs.append(key)
        else:
            m.plan.append((key, code, s.counter_bits, 1000.0 if s.unit == "g" else 100.0))


def temperature(m: Machine, name: str, t: float) -> float:
    """Temperature signal ``name`` of ``m`` at plant time ``t`` (without noise)."""
    target = _hot_c(name) if m.status is MachineStatus.RUNNING else AMBIENT_C + 0.1 * (_hot_c(name) - AMBIENT_C)
    return target + (m.temp_from[name] - target) * math.exp(-(t - m.status_t) / _TAU_S)


def static_values(m: Machine, out: dict[ValueKey, Value]) -> None:
    """Refresh the values of ``m`` that change only at events (after one), sensors of a machine at rest included."""
    m.dirty = False
    for key, code, bits, scale in m.plan:
        if code == _S_STATUS:
            out[key] = m.codes[m.status]
        elif code == _S_GOOD:
            out[key] = m.good % (1 << bits)
        elif code == _S_SCRAP:
            out[key] = m.scrap % (1 << bits)
        elif code == _S_CYCLE:
            out[key] = round(m.last_cycle_s, 1)
        elif code == _S_FAULT:
            out[key] = m.fault_code
        elif code == _S_JOB:
            out[key] = m.job
        elif code == _S_LEVEL:
            out[key] = round(m.level * scale, 1)
        else:
            out[key] = 0
    if m.status is not MachineStatus.RUNNING:  # no noise at rest: power and vibration are constant
        factor = _POWER_FACTOR.get(m.status, 0.0)
        for key, kw in m.powers:
            out[key] = round(kw * factor, 2)
        for key in m.vibs:
            out[key] = 0.2


def live_values(m: Machine, out: dict[ValueKey, Value], t: float, noise_rng: random.Random) -> None:
    """The sensor values of ``m`` at plant time ``t`` that change between events.

    Temperatures always; power and vibration while the machine runs.

    Noise is drawn per call from a table of normal quantiles (``_NOISE``: one table look-up by 10
    random bits instead of a Box-Muller draw, the same sd 0.3; it stops at 3.3 sd).
    """
    bits = noise_rng.getrandbits
    noise = _NOISE
    running = m.status is MachineStatus.RUNNING
    if m.temps:
        decay = math.exp(-(t - m.status_t) / _TAU_S)
        start = m.temp_from
        for key, name, hot, idle in m.temps:
            target = hot if running else idle
            out[key] = round(target + (start[name] - target) * decay + noise[bits(_NOISE_BITS)], 1)
    if running:
        rnd = noise_rng.random
        for key, kw in m.powers:
            out[key] = round(kw * (0.9 + 0.2 * rnd()), 2)
        for key in m.vibs:
            out[key] = round(max(0.0, 2.5 + noise[bits(_NOISE_BITS)]), 2)


def item_values(it: Item, out: dict[ValueKey, Value], start: datetime) -> None:
    """Refresh the stock values of ``it``: on hand, in transit, the ETA of the next arrival (unix s, 0: none)."""
    it.dirty = False
    sku = it.spec.sku
    out[(it.site, sku, "on_hand")] = round(it.on_hand, 3)
    out[(it.site, sku, "in_transit")] = round(it.in_transit, 3)
    eta = (start + timedelta(seconds=min(it.pending)[0])).timestamp() if it.pending else 0
    out[(it.site, sku, "eta")] = int(eta)


def apply_episodes(readings: list[Reading], spans: Sequence[tuple[Episode, datetime]], t: datetime) -> list[Reading]:
    """``readings`` (sampled at ``t``), the signals of the episodes in force at least their ``to_c``.

    ``spans``: each episode with its start (``backfill.episode_spans``).
    """
    floors: dict[tuple[str, str, str], float] = {}
    for e, at in spans:
        if e.raised((t - at).total_seconds()):
            for m in e.machines:
                key = (e.site, m, e.signal)
                floors[key] = max(floors.get(key, e.to_c), e.to_c)
    if not floors:
        return readings
    out = []
    for r in readings:
        floor = floors.get((str(r.site), str(r.asset), str(r.signal)))
        if floor is not None and isinstance(r.value, int | float) and r.value < floor:
            r = r._replace(value=floor)
        out.append(r)
    return out
