"""The engine against queueing theory: Erlang C (M/M/1, M/M/c), a Jackson tandem, Little's law.

Each test runs independent replications of the engine's own model (built from plain data, run by
``twin.sim.montecarlo.run`` on a 2-process pool) and checks "within 2 % at 95 % confidence": the
estimate is within 2 % of the theoretical value and its 95 % confidence half-width is at most 2 %
of it. Run lengths give half-widths of about 1.5 % (the run starts empty; the warm-up bias,
~ L x relaxation time / T, is below 0.05 % here).
"""

from __future__ import annotations

import math
from concurrent.futures import Executor

import pytest

from tests.twin.sim.helpers import queue_model
from twin.sim.model import ReplicationOutput
from twin.sim.montecarlo import run
from twin.sim.stats import mean_ci

pytestmark = pytest.mark.slow


def erlang_c(lam: float, mu: float, c: int) -> tuple[float, float]:
    """(Lq, Wq) of an M/M/c queue: P(wait) = Erlang C; Lq = P(wait) rho / (1 - rho); Wq = Lq / lam."""
    a = lam / mu
    rho = a / c
    head = sum(a**k / math.factorial(k) for k in range(c))
    tail = a**c / math.factorial(c) / (1.0 - rho)
    p_wait = tail / (head + tail)
    lq = p_wait * rho / (1.0 - rho)
    return lq, lq / lam


def within_2pct(values: list[float], theory: float) -> None:
    est = mean_ci(values)
    msg = f"estimate {est.mean:.4f} ± {est.half_width:.4f} vs theory {theory:.4f}"
    assert abs(est.mean - theory) <= 0.02 * theory, msg
    assert est.half_width <= 0.02 * theory, msg


def station_figures(outputs: tuple[ReplicationOutput, ...], role: str) -> tuple[list[float], list[float]]:
    lq, wq = [], []
    for o in outputs:
        st = next(s for s in o.stations if s.role == role)
        lq.append(st.queue_area / o.horizon_s)
        wq.append(st.waits_sum_s / st.waits_n)
    return lq, wq


def test_mm1_matches_erlang_c(pool: Executor) -> None:
    # rho = 0.7: Lq = rho^2 / (1 - rho) = 1.6333, Wq = Lq / lam = 2.3333
    lam, mu = 0.7, 1.0
    lq_th, wq_th = erlang_c(lam, mu, 1)
    assert lq_th == pytest.approx(0.49 / 0.3)
    res = run(queue_model(lam, [mu], [1], 100_000.0), replications=16, seed=11, executor=pool)
    lq, wq = station_figures(res.baseline, "print")
    within_2pct(lq, lq_th)
    within_2pct(wq, wq_th)


def test_mmc_matches_erlang_c(pool: Executor) -> None:
    # c = 2, a = 1.5, rho = 0.75: sum_{k<2} a^k/k! = 2.5, a^2/2!/(1-rho) = 4.5,
    # P(wait) = 4.5 / 7 = 0.6429, Lq = 0.6429 x 0.75 / 0.25 = 1.9286, Wq = Lq / lam = 1.2857
    lam, mu, c = 1.5, 1.0, 2
    lq_th, wq_th = erlang_c(lam, mu, c)
    assert lq_th == pytest.approx(27 / 14)
    res = run(queue_model(lam, [mu], [c], 50_000.0), replications=20, seed=12, executor=pool)
    lq, wq = station_figures(res.baseline, "print")
    within_2pct(lq, lq_th)
    within_2pct(wq, wq_th)


def test_tandem_matches_jackson_network(pool: Executor) -> None:
    # Jackson: each station is an independent M/M/1 with the same lam. rho1 = 0.5, rho2 = 0.4:
    # L = rho1/(1-rho1) + rho2/(1-rho2) = 1 + 2/3; sojourn W = 1/(mu1-lam) + 1/(mu2-lam) = 2 + 4/3
    lam, mu1, mu2 = 0.5, 1.0, 1.25
    res = run(queue_model(lam, [mu1, mu2], [1, 1], 40_000.0), replications=12, seed=13, executor=pool)
    soj = [o.lead_time_sum_s["s"] / o.orders_done["s"] for o in res.baseline]
    in_system = [o.system_area["s"] / o.horizon_s for o in res.baseline]
    within_2pct(soj, 1 / (mu1 - lam) + 1 / (mu2 - lam))
    within_2pct(in_system, 1.0 + 2.0 / 3.0)


def test_littles_law_holds_on_outputs() -> None:
    # L = lambda W on every sample path, up to the orders still open at the end: with T long and
    # few open orders, time-average orders in system equals throughput x mean lead time within 1 %.
    res = run(queue_model(0.7, [1.0, 1.5], [1, 1], 20_000.0), replications=3, seed=14)
    for o in res.baseline:
        big_l = o.system_area["s"] / o.horizon_s
        lam_out = o.orders_done["s"] / o.horizon_s
        w = o.lead_time_sum_s["s"] / o.orders_done["s"]
        assert big_l == pytest.approx(lam_out * w, rel=0.01)
