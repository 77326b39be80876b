"""Second-order Monte Carlo: bands widen by the derived amount when a figure rests on few samples.

Two models whose output depends on one figure in a way that can be worked out by hand:

- **Demand.** Orders arrive Poisson(lam) over H and a 1 s machine finishes each at once, so the
  units finished are the arrivals N. First order: Var N = lam H. Second order, the rate drawn
  as lam x Gamma(n, 1)/n (``Law.RATE``): N is a Gamma-Poisson mixture (negative binomial), and
  by the law of total variance Var N = E[lam' H] + Var(lam' H) = lam H + (lam H)^2 / n.
- **Cycle time.** A deterministic machine works through more open orders than it can finish in
  H, so it makes H / c units. With the mean cycle drawn as c x f, f ~ Normal(1, s) and
  s = cv / sqrt(n) (``Law.NORMAL``), units = (H / c) / f and, by the delta method to second order,
  sd(1/f) = s sqrt(1 + 8 s^2) (E f^-2 - (E f^-1)^2 with E f^-k expanded in s).
"""

from __future__ import annotations

import math
import random
import statistics

import pytest

from twin.frozen import FrozenDict
from twin.sim.model import DemandData, MachineData, ModelData, OrderData, ProductData
from twin.sim.montecarlo import parameter_share
from twin.sim.montecarlo import run as monte_carlo
from twin.sim.projection import replication_kpis
from twin.sim.uncertainty import FigureLaw, Law, PriorWidths, SplitMix, Uncertainty, draw_factor, perturb

LAM_H = 2.0 / 3600.0  # orders per second
HORIZON_S = 50 * 3600.0  # lam H = 100 orders


def _demand_model() -> ModelData:
    return ModelData(
        horizon_s=HORIZON_S, sites=("s",), products=(ProductData(id="p", routing=("pack",)),),
        machines=(MachineData(id="m", site="s", role="pack", cycle_mean_s=1.0),),
        demand=(DemandData(site="s", product="p", starts_s=(0.0,), rates_per_s=(LAM_H,)),),
    )


def _saturated_model() -> ModelData:
    # 2,000 open orders of one unit, a 10 s cycle, 10,000 s: 1,000 units, nothing random
    orders = tuple(OrderData(id=f"o{i}", site="s", product="p", qty=1, created_s=0.0, due_s=1e9)
                   for i in range(2000))
    return ModelData(horizon_s=10_000.0, sites=("s",), products=(ProductData(id="p", routing=("pack",)),),
                     machines=(MachineData(id="m", site="s", role="pack", cycle_mean_s=10.0),), orders=orders)


def _only(figure: str, subject: str, law: FigureLaw) -> Uncertainty:
    # every other figure known exactly (a NORMAL law with no spread draws the factor 1)
    none = FigureLaw(law=Law.NORMAL, n=1.0, cv=0.0)
    figures = {(f, "s", s): none for f in ("mtbf", "mttr", "cycle", "scrap") for s in ("m",)}
    figures[("demand", "s", "p")] = none
    figures[(figure, "s", subject)] = law
    return Uncertainty(figures=FrozenDict(figures))


def _units(data: ModelData, u: Uncertainty | None, reps: int) -> list[float]:
    res = monte_carlo(data, replications=reps, seed=3, uncertainty=u)
    return [replication_kpis(o)[("units_done", "*")] for o in res.baseline]


def test_demand_band_widens_by_the_gamma_poisson_variance_and_converges_to_first_order() -> None:
    data = _demand_model()
    first = statistics.variance(_units(data, None, 400))
    few = statistics.variance(_units(data, _only("demand", "p", FigureLaw(law=Law.RATE, n=25)), 400))
    many = statistics.variance(_units(data, _only("demand", "p", FigureLaw(law=Law.RATE, n=100_000)), 400))
    # lam H = 100: first order 100; n = 25: 100 + 100^2/25 = 500; n = 1e5: 100.1 (first order).
    # 400 replications estimate a variance to about +-7 % (normal) - more for the mixture's tail
    assert 80 < first < 120
    assert 400 < few < 620
    assert 80 < many < 120


def test_cycle_time_band_width_follows_cv_over_root_n() -> None:
    data = _saturated_model()
    assert statistics.pstdev(_units(data, None, 20)) < 1.0  # deterministic: 1,000 units every time
    for n, expected in ((25, 1000 * 0.1 * math.sqrt(1.08)), (2500, 1000 * 0.01 * math.sqrt(1.0008))):
        # cv 0.5: s = 0.5 / sqrt(n) = 0.1 and 0.01; sd(units) = 1000 s sqrt(1 + 8 s^2)
        sd = statistics.stdev(_units(data, _only("cycle", "m", FigureLaw(law=Law.NORMAL, n=n, cv=0.5)), 300))
        assert 0.85 * expected < sd < 1.15 * expected  # 300 replications: sd to about +-4 %, +-1 unit rounding
    converged = statistics.stdev(_units(data, _only("cycle", "m", FigureLaw(law=Law.NORMAL, n=1e8, cv=0.5)), 50))
    assert converged < 1.0  # s = 5e-5: 0.05 units, under the 1-unit rounding of a count


def test_parameter_share_from_a_first_order_companion() -> None:
    data = _demand_model()
    u = _only("demand", "p", FigureLaw(law=Law.RATE, n=25))
    second = monte_carlo(data, replications=400, seed=5, uncertainty=u)
    first = monte_carlo(data, replications=400, seed=5, uncertainty=u, second_order=False)
    assert second.second_order and not first.second_order
    # share = (lam H)^2 / n / (lam H + (lam H)^2 / n) = 400 / 500 = 0.8
    share = parameter_share(second.baseline, first.baseline)
    assert 0.7 < share < 0.87


def test_draws_are_reproducible_and_pair_baseline_with_a_scenario() -> None:
    data = _demand_model()
    extra = MachineData(id="m2", site="s", role="pack", cycle_mean_s=1.0)
    scen = ModelData(horizon_s=data.horizon_s, sites=data.sites, products=data.products,
                     machines=(data.machines[0], extra), demand=data.demand)
    u = Uncertainty()  # configured figures only: prior widths everywhere
    a, b = perturb(data, u, 7, 3), perturb(data, u, 7, 3)
    assert a == b
    s = perturb(scen, u, 7, 3)
    # the added machine has its own stream: the first machine and the demand draw as in the baseline
    assert s.machines[0] == a.machines[0]
    assert s.demand == a.demand
    assert perturb(data, u, 7, 4).machines[0].cycle_mean_s != a.machines[0].cycle_mean_s


def test_law_means_and_prior_spread() -> None:
    rng = SplitMix(1)  # the figures' own generator: its normal, gamma and beta variates checked here
    # Beta(k + 1/2, n - k + 1/2): mean (k + 1/2) / (n + 1) = 4.5 / 101
    p = [draw_factor(FigureLaw(law=Law.PROPORTION, n=100, k=4), rng) for _ in range(20_000)]
    assert abs(statistics.fmean(p) - 4.5 / 101) < 0.001
    # n / Gamma(n, 1): mean n / (n - 1) = 20/19, sd ~ 1/sqrt(n - 2) (exactly n / ((n - 1) sqrt(n - 2)))
    m = [draw_factor(FigureLaw(law=Law.MEAN_TIME, n=20), rng) for _ in range(20_000)]
    assert abs(statistics.fmean(m) - 20 / 19) < 0.01
    assert abs(statistics.stdev(m) - 20 / (19 * math.sqrt(18))) < 0.01
    # LogNormal(0, 0.5): log-sd 0.5
    w = PriorWidths().law("mtbf")
    logs = [math.log(draw_factor(w, rng)) for _ in range(20_000)]
    assert abs(statistics.stdev(logs) - 0.5) < 0.01
    # Gamma(0.5, 1) (the boosted branch): mean 0.5, variance 0.5
    g = [rng.gammavariate(0.5, 1.0) for _ in range(20_000)]
    assert abs(statistics.fmean(g) - 0.5) < 0.02 and abs(statistics.variance(g) - 0.5) < 0.05
    # the same draws from random.Random agree in law
    r = random.Random(1)
    m2 = [draw_factor(FigureLaw(law=Law.MEAN_TIME, n=20), r) for _ in range(20_000)]
    assert abs(statistics.fmean(m2) - statistics.fmean(m)) < 0.01


def test_usage_examples_run() -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module("twin.sim.uncertainty"))  # the module, not the function
    assert result.attempted >= 2 and result.failed == 0


def test_identical_scenario_still_has_zero_deltas_in_second_order() -> None:
    # both arms of a pair draw the same figures (and the same process randomness): the deltas vanish
    data = _demand_model()
    res = monte_carlo(data, data, replications=20, seed=9, uncertainty=Uncertainty())
    cmp = res.comparison()
    assert cmp.delta("units_done").mean == 0.0 and cmp.delta("units_done").high == 0.0
    assert statistics.stdev(replication_kpis(o)[("units_done", "*")] for o in res.baseline) > 0


def test_whatif_reports_the_parameter_share(capsys: pytest.CaptureFixture[str]) -> None:
    import json
    from pathlib import Path

    from app import main

    examples = Path(__file__).resolve().parents[3] / "examples"
    scenario = examples / "scenarios" / "printer_maintenance.toml"
    args = ["whatif", str(examples / "fleet.toml"), "--scenario", str(scenario),
            "--at", "2026-11-23T06:00Z", "--horizon", "1d", "--replications", "12", "--site", "pod-berlin",
            "--workers", "0", "--json"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    # no history: every figure has its prior width; the companion (10 first-order replications) says
    # how much of the output's variance that is
    assert doc["second_order"] is True
    assert 0.0 <= doc["parameter_share"]["units_done"] <= 1.0
    assert main([*args, "--first-order"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["second_order"] is False and doc["parameter_share"] == {}


def test_vectorised_normal_draws_are_the_one_by_one_numbers() -> None:
    # Perturber draws the normal and prior laws of all figures at once with numpy: the same numbers
    # as draw_factor with each figure's own SplitMix stream
    from twin.sim.model import stream_seed
    from twin.sim.uncertainty import Perturber

    data = _demand_model()
    laws = {("cycle", "s", "m"): FigureLaw(law=Law.NORMAL, n=9.0, cv=0.3),
            ("demand", "s", "p"): FigureLaw(law=Law.RATE, n=40.0)}
    u = Uncertainty(figures=FrozenDict(laws))
    f = Perturber(data, u).factors(4, 11)  # order: mtbf, mttr, cycle, scrap of m; then demand of p
    for i, (figure, subject) in enumerate((("mtbf", "m"), ("mttr", "m"), ("cycle", "m"), ("scrap", "m"),
                                           ("demand", "p"))):
        law = u.law(figure, "s", subject)
        one = draw_factor(law, SplitMix(stream_seed(4, 11, f"param:{figure}:s:{subject}")))
        assert f[i] == pytest.approx(one, rel=1e-12), figure
