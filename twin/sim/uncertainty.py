"""Parameter uncertainty: draw the model's figures from their sampling distribution, one draw per replication.

A first-order Monte Carlo runs every replication with the point estimates, so a figure estimated
from 3 failures is treated as known as well as one from 300. A second-order run draws, before each
replication, every calibrated figure from the distribution of its estimate given the sample it
rests on, and runs the replication with the drawn figures: the band then holds both the process's
randomness and what history cannot tell apart.

:func:`perturb` is a pure function of (``ModelData``, :class:`Uncertainty`, seed, replication): each
figure has its own random stream (``stream_seed(seed, replication, "param:figure:site:subject")``),
so runs are reproducible, a scenario that adds a machine leaves every other draw alone, and the
baseline and scenario of a pair get the same draw (common random numbers). A draw is a
multiplicative factor on the value in the model data (scrap: a drawn proportion, scaled the same
way), so a scenario that changed a figure (a faster cycle) keeps its change on top of the draw.

The laws (``n`` = sample size of the estimate, see ``twin.calibrate``):

- ``RATE`` (orders per day from n orders over an exposure T): rate ~ Gamma(n, T), factor
  Gamma(n, 1) / n (mean 1, relative sd 1/sqrt(n)).
- ``MEAN_TIME`` (MTBF = running time / n failures; MTTR = mean of n exponential repairs): the rate
  1/figure ~ Gamma(n, total time), so the figure's factor is n / Gamma(n, 1) (relative sd about
  1/sqrt(n - 2)).
- ``NORMAL`` (mean cycle time from n cycles, mean lead time from n arrivals, consumption factor with
  its standard error): factor ~ Normal(1, cv / sqrt(n)) with ``cv`` the spread of one sample over
  the mean (for a standard error ``se`` pass n = 1 and cv = se / value); floored at 0.05.
- ``PROPORTION`` (scrap k of n parts): p ~ Beta(k + 1/2, n - k + 1/2) (Jeffreys), factor p / (k/n).
- ``PRIOR`` (a figure taken from the configuration, no history behind it): factor ~
  LogNormal(0, width), the width per kind of figure in :class:`PriorWidths` (defaults: MTBF and
  MTTR 0.5, i.e. the true figure is within x/÷ 1.65 of the configured one two times in three;
  cycle time 0.10; scrap rate 0.5; demand 0.3; lead time 0.25; consumption 0.05).

Each figure's stream is a SplitMix64 generator seeded from its ``stream_seed`` (seeding a Mersenne
Twister per figure cost more than a short replication's simulation); normals by Box-Muller, gamma
by Marsaglia-Tsang, beta from two gammas.

A machine whose failures follow a condition hazard (``twin.sim.condition.DrawnHazard``) gets no
MTBF factor (its hazard is not 1 / MTBF); instead the replication runs on one of the health model's
bootstrap draws of its coefficients, picked by the stream ``param:condition:<template>`` (one draw
for all machines of a template, the same for both models of a pair).

A figure the :class:`Uncertainty` does not list (a machine a scenario adds, a site that was not
calibrated) gets its kind's prior width.
"""

from __future__ import annotations

import enum
import math
import zlib
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from twin.frozen import FrozenDict
from twin.sim.condition import DrawnHazard
from twin.sim.model import MachineData, ModelData, stream_seed

__all__ = ["FIGURES", "FigureLaw", "Law", "Perturber", "PriorWidths", "SplitMix", "Uncertainty", "Variates",
           "draw_factor", "perturb"]

# the figures a draw can move, keyed (figure, site, subject): subject is the machine, product or SKU
FIGURES = ("mtbf", "mttr", "cycle", "scrap", "demand", "lead", "consumption")
MIN_FACTOR = 0.05


class Law(enum.Enum):
    """The sampling distribution of an estimate (see the module docstring)."""

    RATE = "rate"
    MEAN_TIME = "mean_time"
    NORMAL = "normal"
    PROPORTION = "proportion"
    PRIOR = "prior"


@dataclass(frozen=True, slots=True, kw_only=True)
class FigureLaw:
    """How one figure's estimate is distributed: ``n`` samples, ``k`` hits (PROPORTION), ``cv`` spread.

    ``cv`` is the coefficient of variation of one sample for NORMAL and the log-sd for PRIOR.
    """

    law: Law
    n: float = 0.0
    k: float = 0.0
    cv: float = 0.0

    def rel_sd(self) -> float:
        """The relative standard deviation of the factor (approximate for MEAN_TIME and PRIOR)."""
        if self.law is Law.RATE:
            return 1.0 / math.sqrt(self.n) if self.n > 0 else math.inf
        if self.law is Law.MEAN_TIME:
            return 1.0 / math.sqrt(self.n - 2.0) if self.n > 2 else math.inf
        if self.law is Law.NORMAL:
            return self.cv / math.sqrt(self.n) if self.n > 0 else math.inf
        if self.law is Law.PROPORTION:
            a, b = self.k + 0.5, self.n - self.k + 0.5
            mean = a / (a + b)
            return math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1.0))) / mean
        return math.sqrt(math.expm1(self.cv**2))


@dataclass(frozen=True, slots=True, kw_only=True)
class PriorWidths:
    """Log-sd of the factor on a configured figure, per kind (see the module docstring)."""

    mtbf: float = 0.5
    mttr: float = 0.5
    cycle: float = 0.10
    scrap: float = 0.5
    demand: float = 0.3
    lead: float = 0.25
    consumption: float = 0.05

    def law(self, figure: str) -> FigureLaw:
        return FigureLaw(law=Law.PRIOR, cv=float(getattr(self, figure)))


@dataclass(frozen=True, slots=True, kw_only=True)
class Uncertainty:
    """The law of each figure, keyed ``(figure, site, subject)``; unlisted figures get ``prior``.

    ``Uncertainty()`` (nothing listed) puts the prior width on every figure: a model built from
    the configuration alone.
    """

    figures: FrozenDict[tuple[str, str, str], FigureLaw] = field(default_factory=FrozenDict)
    prior: PriorWidths = field(default_factory=PriorWidths)

    def law(self, figure: str, site: str, subject: str) -> FigureLaw:
        found = self.figures.get((figure, site, subject))
        return found if found is not None else self.prior.law(figure)


_MASK = (1 << 64) - 1


class Variates(Protocol):
    """What a draw needs from a random stream (``random.Random`` has it too)."""

    def random(self) -> float: ...
    def gauss(self, mu: float, sigma: float) -> float: ...
    def gammavariate(self, alpha: float, beta: float) -> float: ...
    def betavariate(self, alpha: float, beta: float) -> float: ...


class SplitMix:
    """A SplitMix64 stream: cheap to seed, a few integer operations per number.

    >>> a, b = SplitMix(42), SplitMix(42)
    >>> a.random() == b.random() and 0.0 <= a.random() < 1.0
    True
    """

    __slots__ = ("_s",)

    def __init__(self, seed: int) -> None:
        self._s = seed & _MASK

    def random(self) -> float:
        self._s = (self._s + 0x9E3779B97F4A7C15) & _MASK
        z = self._s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        z ^= z >> 31
        return (z >> 11) * (1.0 / 9007199254740992.0)

    def gauss(self, mu: float, sigma: float) -> float:
        u1 = 1.0 - self.random()  # in (0, 1]
        return mu + sigma * math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * self.random())

    def gammavariate(self, alpha: float, beta: float) -> float:
        if alpha < 1.0:  # boost: G(a) = G(a + 1) U^(1/a)
            boost: float = (1.0 - self.random()) ** (1.0 / alpha)
            return self.gammavariate(alpha + 1.0, beta) * boost
        d = alpha - 1.0 / 3.0
        c = 1.0 / math.sqrt(9.0 * d)
        while True:
            x = self.gauss(0.0, 1.0)
            v = (1.0 + c * x) ** 3
            if v <= 0.0:
                continue
            u = 1.0 - self.random()
            if u < 1.0 - 0.0331 * x**4 or math.log(u) < 0.5 * x * x + d * (1.0 - v + math.log(v)):
                return d * v * beta

    def betavariate(self, alpha: float, beta: float) -> float:
        x = self.gammavariate(alpha, 1.0)
        y = self.gammavariate(beta, 1.0)
        return x / (x + y) if x + y > 0 else 0.5


def _gamma(rng: Variates, shape: float) -> float:
    return rng.gammavariate(shape, 1.0) if shape > 0 else 0.0


def draw_factor(law: FigureLaw, rng: Variates) -> float:
    """One draw of the multiplicative factor on a figure (PROPORTION: the drawn proportion itself)."""
    if law.law is Law.RATE:
        return _gamma(rng, law.n) / law.n if law.n > 0 else 1.0
    if law.law is Law.MEAN_TIME:
        g = _gamma(rng, law.n)
        return law.n / g if g > 0 else 1.0
    if law.law is Law.NORMAL:
        if law.n <= 0 or law.cv <= 0:
            return 1.0
        return max(MIN_FACTOR, rng.gauss(1.0, law.cv / math.sqrt(law.n)))
    if law.law is Law.PROPORTION:
        return rng.betavariate(law.k + 0.5, law.n - law.k + 0.5)
    return math.exp(rng.gauss(0.0, law.cv)) if law.cv > 0 else 1.0


_Spec = tuple[FigureLaw | None, int]  # the law (None: known exactly) and the crc32 of the stream's name
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _spec(u: Uncertainty, figure: str, site: str, subject: str) -> _Spec:
    law = u.law(figure, site, subject)
    exact = (law.law is Law.NORMAL and (law.cv <= 0.0 or law.n <= 0.0)) or (law.law is Law.PRIOR and law.cv <= 0.0)
    return (None if exact else law), zlib.crc32(f"param:{figure}:{site}:{subject}".encode())


def _uniforms(state: np.ndarray) -> np.ndarray:
    """:meth:`SplitMix.random` on many streams at once (``state`` already advanced)."""
    z = (state ^ (state >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    u: np.ndarray = (z >> np.uint64(11)).astype(float) * (1.0 / 9007199254740992.0)
    return u


def _scrap(law: FigureLaw | None, drawn: float, value: float) -> float:
    if law is None:
        return value
    if law.law is Law.PROPORTION:
        point = law.k / law.n if law.n > 0 else 0.0
        # the model's value may differ from the estimate (a scenario, the 0.95 cap): scale it
        new = drawn if point <= 0.0 or abs(point - value) < 1e-12 else value * drawn / point
    else:
        new = value * drawn
    return min(max(new, 0.0), 0.95)


class Perturber:
    """:func:`perturb` for one model and many replications: laws and stream names resolved once.

    ``Perturber(data, u)(seed, replication) == perturb(data, u, seed, replication)``. The normal
    and prior (lognormal) draws of all figures are computed at once with numpy, the very same
    numbers as :func:`draw_factor` with a :class:`SplitMix` stream gives one by one; gamma and beta
    draws one by one.
    """

    def __init__(self, data: ModelData, uncertainty: Uncertainty) -> None:
        u = uncertainty
        self._data = data
        self._laws: list[FigureLaw | None] = []
        crcs: list[int] = []

        def add(figure: str, site: str, subject: str) -> int:
            law, crc = _spec(u, figure, site, subject)
            self._laws.append(law)
            crcs.append(crc)
            return len(self._laws) - 1

        self._machines = [(m, add("mtbf", m.site, m.id), add("mttr", m.site, m.id), add("cycle", m.site, m.id),
                           add("scrap", m.site, m.id)) for m in data.machines]
        self._demand = [(d, add("demand", d.site, d.product)) for d in data.demand]
        self._items = [(it, add("lead", it.site, it.sku), add("consumption", it.site, it.sku)) for it in data.items]
        normal = [i for i, law in enumerate(self._laws) if law is not None and law.law in (Law.NORMAL, Law.PRIOR)]
        self._n_idx = np.asarray(normal, dtype=np.intp)
        self._n_crc = np.asarray([crcs[i] for i in normal], dtype=np.uint64)
        laws = [self._laws[i] for i in normal]
        self._n_prior = np.asarray([law is not None and law.law is Law.PRIOR for law in laws], dtype=bool)
        self._n_scale = np.asarray(
            [0.0 if law is None else law.cv if law.law is Law.PRIOR else law.cv / math.sqrt(law.n) for law in laws],
            dtype=float)
        self._other = [(i, law, crcs[i]) for i, law in enumerate(self._laws)
                       if law is not None and law.law not in (Law.NORMAL, Law.PRIOR)]

    def factors(self, seed: int, replication: int) -> list[float]:
        """Every figure's draw (its factor; a scrap PROPORTION: the proportion), in registration order."""
        base = stream_seed(seed, replication, "")  # + crc32(name) = stream_seed(seed, replication, name)
        out = np.ones(len(self._laws))
        if self._n_idx.size:
            state = np.uint64(base & _MASK) + self._n_crc  # wraps modulo 2^64, as SplitMix's seed
            r1 = _uniforms(state + _GOLDEN)
            r2 = _uniforms(state + _GOLDEN + _GOLDEN)
            z = np.sqrt(-2.0 * np.log(1.0 - r1)) * np.cos(2.0 * math.pi * r2)
            out[self._n_idx] = np.where(self._n_prior, np.exp(self._n_scale * z),
                                        np.maximum(MIN_FACTOR, 1.0 + self._n_scale * z))
        for i, law, crc in self._other:
            out[i] = draw_factor(law, SplitMix(base + crc))
        factors: list[float] = out.tolist()
        return factors

    def __call__(self, seed: int, replication: int) -> ModelData:
        f = self.factors(seed, replication)
        laws = self._laws
        picks: dict[str, float] = {}  # per condition template: its uniform for this replication

        def condition(m: MachineData) -> MachineData:
            h = m.hazard
            if not isinstance(h, DrawnHazard):
                return m
            if h.group not in picks:
                picks[h.group] = SplitMix(stream_seed(seed, replication, f"param:condition:{h.group}")).random()
            return replace(m, hazard=h.drawn(picks[h.group]))

        machines = [condition(m) for m in self._machines_drawn(f, laws)]
        demand = [replace(d, rates_per_s=tuple(r * f[i] for r in d.rates_per_s)) for d, i in self._demand]
        # same cv for the lead time; the consumption factor is the item's own (per site)
        items = [replace(it, lead_mean_s=it.lead_mean_s * f[lead], lead_sd_s=it.lead_sd_s * f[lead],
                         consumption=it.consumption * f[cons]) for it, lead, cons in self._items]
        return replace(self._data, machines=tuple(machines), demand=tuple(demand), items=tuple(items))

    def _machines_drawn(self, f: list[float], laws: list[FigureLaw | None]) -> list[MachineData]:
        return [
            replace(m, cycle_mean_s=m.cycle_mean_s * f[cycle], mtbf_s=m.mtbf_s * f[mtbf], mttr_s=m.mttr_s * f[mttr],
                    initial_repair_s=m.initial_repair_s * f[mttr],
                    scrap_rate=_scrap(laws[scrap], f[scrap], m.scrap_rate))
            for m, mtbf, mttr, cycle, scrap in self._machines
        ]


def perturb(data: ModelData, uncertainty: Uncertainty, seed: int, replication: int) -> ModelData:
    """``data`` with every figure drawn from its law for (``seed``, ``replication``)."""
    return Perturber(data, uncertainty)(seed, replication)
