"""The health timeline and the evaluation's measures, on histories small enough to work out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin.health.evaluate import auc
from twin.health.timeline import ConditionHistory, build_timeline
from twin.spec import MachineStatus, SignalKind

H = 3600.0
R, IDLE, F, M = MachineStatus.RUNNING, MachineStatus.IDLE, MachineStatus.FAULT, MachineStatus.MAINTENANCE


def _history(status: list[tuple[float, MachineStatus]], **signals: tuple[SignalKind, list[float], list[float]]
             ) -> ConditionHistory:
    return ConditionHistory(site="s", machine="m", template="t", status=tuple(status), signals={
        k: (kind, np.asarray(ts), np.asarray(vs)) for k, (kind, ts, vs) in signals.items()})


def test_operating_hours_failures_and_time_since_repair_and_maintenance() -> None:
    # running 0-3 h, fault 3-4 h (repair ends at 4 h), running 4-6 h, maintenance 6-7 h, running 7-10 h
    h = _history([(0, R), (3 * H, F), (4 * H, R), (6 * H, M), (7 * H, R)])
    m = build_timeline([h], 0.0, 10 * H, step_s=H).machines[0]
    assert m.exposure_h.tolist() == [1, 1, 1, 0, 1, 1, 0, 1, 1, 1]
    assert m.run_h.tolist() == [0, 1, 2, 3, 3, 4, 5, 5, 6, 7]
    assert m.failed.tolist() == [False, False, True] + [False] * 7  # the failure at 3 h ends interval 2-3 h
    assert m.failures == 1 and m.running_share == pytest.approx(8 / 10)
    assert m.next_failure[:3].tolist() == [3 * H] * 3 and math.isinf(m.next_failure[3])
    # operating hours since the repair (4 h) and since the maintenance (7 h); from the start before either
    assert m.features["h_since_repair"].tolist() == [0, 1, 2, 3, 0, 1, 2, 2, 3, 4]
    assert m.features["h_since_maintenance"].tolist() == [0, 1, 2, 3, 3, 4, 5, 0, 1, 2]
    assert m.status == (R, R, R, F, R, R, M, R, R, R)


def test_condition_means_use_running_samples_only_and_no_warm_up() -> None:
    # idle until 1 h, running 1-5 h, idle after; a sample every 15 min (the one at a change shows the new
    # status, as a polling twin sees it): vibration 2 at rest, 3 + 0.5 per hour of running; the temperature
    # warms up (20 -> 50) in the first 1.5 h running, then reads 60
    ts = [k * 900.0 for k in range(1, 33)]
    running = [H <= t < 5 * H for t in ts]
    vib = [3 + 0.5 * (t - H) / H if r else 2.0 for t, r in zip(ts, running, strict=True)]
    temp = [(60.0 if t >= 2.5 * H else 50.0) if r else 20.0 for t, r in zip(ts, running, strict=True)]
    h = _history([(0, IDLE), (H, R), (5 * H, IDLE)], vib=(SignalKind.VIBRATION, ts, vib),
                 temp=(SignalKind.TEMPERATURE, ts, temp))
    m = build_timeline([h], 0.0, 8 * H, step_s=H).machines[0]
    v, t = m.features["vib"], m.features["temp"]
    assert math.isnan(v[0]) and v[1] == 3.0  # nothing seen running at 0 h; at 1 h the first running sample
    # at 3 h: running samples in (1 h, 3 h] are 1.25 ... 3 h, values 3.125 ... 4: mean 3.5625
    assert v[3] == pytest.approx(np.mean([3 + 0.5 * k / 4 for k in range(1, 9)]))
    # at 5 h the machine is idle again: the sample at 5 h shows idle and is left out; the mean over
    # (3 h, 5 h] is of 3.25 h ... 4.75 h (4.125 ... 4.875: 4.5); at 6 h of 4.25 ... 4.75 h (4.75); at
    # 7 h the window holds no running sample and the last mean is carried on
    assert v[5] == pytest.approx(4.5) and v[6] == pytest.approx(4.75) and v[7] == v[6]
    # temperatures count once the machine has run 1.5 h (from 2.5 h): only the 60s
    assert math.isnan(t[2]) and t[3] == 60.0 and t[7] == 60.0


def test_auc_counts_ties_half() -> None:
    # positives 0.8, 0.5; negatives 0.5, 0.2: pairs (0.8 > 0.5, 0.8 > 0.2, 0.5 = 0.5, 0.5 > 0.2) = 3.5 / 4
    assert auc([0.8, 0.5, 0.5, 0.2], [True, True, False, False]) == 0.875
    assert auc([0.3, 0.3, 0.3], [True, False, False]) == 0.5  # a constant score: chance
    assert math.isnan(auc([0.1, 0.2], [False, False]))
