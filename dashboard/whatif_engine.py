"""The what-if runner of the dashboard: the simulation engine (``twin.sim``) behind ``WhatIfRunner``.

``EngineRunner.run`` forks from the historian's ``state_at(site, t)`` (t = the request's time, or
now), calibrates the parameters from the history before it, runs paired baseline/scenario Monte
Carlo replications (the engine's own orchestration, ``twin.sim.whatif``: a local process pool, or
in-process with ``workers=0``) reporting progress, and turns the engine's ``Comparison`` into the page's
``WhatIfResult`` with ``to_result`` (pure, tested on its own): P10–P90 fan charts continuing the
recent actual trend read from the historian, KPI deltas with their 95 % intervals, and the on-time
probability of every open order of the site. With several interventions, each also runs alone
against the baseline (``effect_replications``: fewer replications, the same seed), so the page can
say what each one does on its own. A ``progress`` with a ``partial(result)`` method (the page's) is
first given the bands of the run's first replications (``preview_replications``), within a second.

It runs inside a background-callback worker process, so it opens its own historian connection
(``open_historian``) for every run rather than sharing the web process's one across a fork.

Runs are capped: at most ``max_runs`` at a time in total and ``max_runs_per_user`` per user
(``WhatIfRequest.requested_by``). Each run holds a slot, an exclusive ``flock`` on one of the lock
files in ``slots_dir`` (shared by every worker process of the dashboard, released by the kernel
when a run ends or its process is killed); a run finding no free slot is refused with a
``SimulationError`` saying how many are going and what to do, before it opens anything.

    >>> runner = EngineRunner(fleet=cfg.fleet, open_historian=lambda: SqliteHistorian(path, cfg.fleet,
    ...                       readonly=True), clock=utc_now)                      # doctest: +SKIP
    >>> runner.run(request, progress=lambda done, total: None).deltas              # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import logging
import math
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from connectors.executors import executor_for
from dashboard.scenarios import WhatIfLimits, describe, scenario_problems, to_scenario
from dashboard.whatif_view import (
    Actual,
    Effect,
    FanBand,
    KpiDelta,
    OrderChance,
    Progress,
    WhatIfRequest,
    WhatIfResult,
)
from twin.clock import Clock, utc_now
from twin.errors import ConfigError, SimulationError
from twin.historian import HistorianReader, SeriesKey
from twin.sim.kpis import BAND_METRICS, KPIS
from twin.sim.montecarlo import MonteCarloResult
from twin.sim.projection import Band, Comparison
from twin.sim.scenario import OverflowRouting, Scenario
from twin.sim.whatif import Inputs, RunSettings, prepare, run_whatif
from twin.spec import FleetSpec, SignalKind, SiteSpec

__all__ = ["EngineRunner", "actual_trends", "bin_seconds",
           "effect_replications", "kpi_delta", "preview_replications", "run_slot", "to_result"]

log = logging.getLogger(__name__)

HOUR_S = 3600.0
def bin_seconds(horizon_s: float) -> float:
    """Band resolution: hourly up to a week, then whole hours giving at most ~170 bins."""
    return HOUR_S * max(1, math.ceil(horizon_s / HOUR_S / 170))


def _final_roles(fleet: FleetSpec, site: SiteSpec) -> set[str]:
    made = {str(d.product) for d in site.demand}
    roles = {p.routing[-1].value for p in fleet.products if p.routing and (not made or str(p.id) in made)}
    return roles


def _counter_steps(values: Sequence[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    """Increments of a counter (a drop is a restart from zero: the new value counts)."""
    out = []
    for (_, a), (t, b) in itertools.pairwise(values):
        out.append((t, b - a if b >= a else b))
    return out


def actual_trends(fleet: FleetSpec, historian: HistorianReader, site: str, at: datetime, hours: float,
                  bin_s: float) -> list[Actual]:
    """The recent actual trend the fan charts continue: finished units (cumulative and per bin), stock.

    Finished units are the good-count increases of the machines doing the last step of the site's
    routings (the engine's ``units_done``), summed per bin of ``bin_s`` ending at ``at``; the
    cumulative series counts from the window's start. Stock is each item's on-hand series.
    """
    spec = fleet.site(site)
    n_bins = max(1, round(hours * HOUR_S / bin_s))
    t0 = at - timedelta(seconds=n_bins * bin_s)
    roles = _final_roles(fleet, spec)
    keys = []
    for m in spec.machines:
        sig = m.template.signal_of_kind(SignalKind.GOOD_COUNT)
        if sig is not None and m.role.value in roles:
            keys.append(SeriesKey(site=site, asset=str(m.id), signal=sig.name))
    out: list[Actual] = []
    edges = [t0 + timedelta(seconds=(k + 1) * bin_s) for k in range(n_bins)]
    if keys:
        per_bin = [0.0] * n_bins
        seen = False
        first_ts: datetime | None = None
        for res in historian.series(keys, t0, at, max_points=max(50, n_bins * 12)):
            if res.points and (first_ts is None or res.points[0].ts < first_ts):
                first_ts = res.points[0].ts
            steps = _counter_steps([(p.ts, p.value) for p in res.points])
            for t, inc in steps:
                seen = True
                k = min(n_bins - 1, max(0, int((t - t0).total_seconds() // bin_s)))
                per_bin[k] += inc
        if seen:
            # bins before the first sample are not zero output, they are no data: leave them out
            first = max(0, int((first_ts - t0).total_seconds() // bin_s)) if first_ts is not None else 0
            cum, total = [], 0.0
            for v in per_bin[first:]:
                total += v
                cum.append(total)
            start = t0 + timedelta(seconds=first * bin_s)
            out.append(Actual(kpi="units finished", unit="units", t=(start, *edges[first:]), values=(0.0, *cum)))
            out.append(Actual(kpi="throughput", unit=f"units per {bin_s / HOUR_S:g} h", t=tuple(edges[first:]),
                              values=tuple(per_bin[first:])))
    stock_keys = [SeriesKey(site=site, asset=str(i.sku), signal="on_hand") for i in spec.inventory]
    if stock_keys:
        for res in historian.series(stock_keys, t0, at, max_points=200):
            if res.points:
                out.append(Actual(kpi=f"stock {res.key.asset}", unit=_unit(spec, res.key.asset),
                                  t=tuple(p.ts for p in res.points), values=tuple(p.value for p in res.points)))
    return out


def _unit(site: SiteSpec, sku: str) -> str:
    item = site.item(sku)
    return item.unit if item is not None else ""


def _band(b: Band, kpi: str, unit: str, variant: str, at: datetime, offset: float, scale: float,
          *, from_fork: bool = False) -> FanBand:
    """A band of the engine on the page's time axis; ``from_fork`` starts it at the fork with ``offset``."""
    head = (0.0,) if from_fork else ()
    t = tuple(at + timedelta(seconds=s) for s in (*head, *b.t_s))

    def conv(xs: tuple[float, ...]) -> tuple[float, ...]:
        return tuple(offset + scale * x for x in (*head, *xs))

    return FanBand(kpi=kpi, unit=unit, variant=variant, t=t, p10=conv(b.p10), p50=conv(b.p50), p90=conv(b.p90))


def _finite(*xs: float) -> bool:
    return all(isinstance(x, int | float) and math.isfinite(x) for x in xs)


def kpi_delta(cmp: Comparison, key: str, site: str) -> KpiDelta | None:
    """One KPI of ``cmp`` at ``site`` in its shown unit (``twin.sim.kpis``); None when it has no finite estimate.

    ``KeyError`` when the projection has no such KPI.
    """
    info = KPIS[key]
    kb, ks, d = cmp.baseline.kpi(key, site), cmp.scenario.kpi(key, site), cmp.delta(key, site)
    if not _finite(kb.mean, ks.mean, d.mean, d.low, d.high):
        return None
    k = info.scale
    return KpiDelta(kpi=info.label, unit=info.unit, baseline=kb.mean * k, scenario=ks.mean * k, delta=d.mean * k,
                    ci_low=d.low * k, ci_high=d.high * k, higher_is_better=info.higher_is_better,
                    delta_unit=info.delta_unit, decimals=info.decimals)


def to_result(cmp: Comparison, *, name: str, fleet: FleetSpec, site: str, at: datetime, horizon_h: float,
              replications: int, actuals: Sequence[Actual] = (), notes: Sequence[str] = ()) -> WhatIfResult:
    """The page's view of an engine comparison for ``site``.

    Cumulative units continue the actual cumulative trend (the projection starts at its last
    value); utilisation is shown in %; stock bands are per SKU of the site. Deltas whose estimate
    or interval is not finite (e.g. no order due within the horizon) are left out with a note.
    """
    spec = fleet.site(site)
    last = {a.kpi: a.values[-1] for a in actuals if a.values}
    bands: list[FanBand] = []
    for metric, shown in BAND_METRICS.items():
        kpi, unit = shown.label, shown.unit
        offset = last.get(kpi, 0.0) if metric == "cumulative_units" else 0.0
        for variant, proj in (("baseline", cmp.baseline), ("scenario", cmp.scenario)):
            try:
                b = proj.band(metric, site)
            except KeyError:
                continue
            unit_of = unit if metric != "throughput" else f"units per {b.t_s[0] / HOUR_S:g} h"
            bands.append(_band(b, kpi, unit_of, variant, at, offset, shown.scale,
                               from_fork=metric == "cumulative_units"))
    for item in spec.inventory:
        for variant, proj in (("baseline", cmp.baseline), ("scenario", cmp.scenario)):
            try:
                b = proj.band("stock", f"{site}/{item.sku}")
            except KeyError:
                continue
            bands.append(_band(b, f"stock {item.sku}", item.unit, variant, at, 0.0, 1.0))
    deltas: list[KpiDelta] = []
    skipped: list[str] = []
    for key, info in KPIS.items():
        try:
            delta = kpi_delta(cmp, key, site)
        except KeyError:
            continue
        if delta is None:
            skipped.append(info.label)
        else:
            deltas.append(delta)
    base_orders = {o.order: o for o in cmp.baseline.orders}
    orders = [
        OrderChance(order=o.order, due=at + timedelta(seconds=o.due_s), p_baseline=base_orders[o.order].probability,
                    p_scenario=o.probability, ci_low=o.low, ci_high=o.high)
        for o in cmp.scenario.orders if o.site == site and o.order in base_orders
    ]
    all_notes = list(notes)
    if skipped:
        all_notes.append("no estimate (nothing of it within the horizon): " + ", ".join(skipped))
    return WhatIfResult(name=name, site=site, at=at, horizon_h=horizon_h, replications=replications,
                        bands=tuple(bands), actuals=tuple(actuals), deltas=tuple(deltas), orders=tuple(orders),
                        notes=tuple(all_notes))


def _sites_of(scenario: Scenario, site: str) -> list[str]:
    sites = [site]
    for iv in scenario.interventions:
        if isinstance(iv, OverflowRouting) and iv.from_site == site and iv.to_site not in sites:
            sites.append(iv.to_site)
    return sites


def _new_slots_dir() -> Path:
    # made in the web process when the runner is built; worker processes inherit the path with the runner
    return Path(tempfile.mkdtemp(prefix="twin-whatif-slots-"))


def _take_slot(folder: Path, prefix: str, n: int) -> IO[bytes] | None:
    """An exclusive lock on one of ``n`` slot files ``prefix-k.lock`` (None: all taken)."""
    for k in range(n):
        f = (folder / f"{prefix}-{k}.lock").open("ab")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            continue
        return f
    return None


@contextlib.contextmanager
def run_slot(folder: Path, user: str, *, max_runs: int, max_runs_per_user: int) -> Iterator[None]:
    """Hold a run slot of ``user`` and one of all runs for the block; ``SimulationError`` if none is free."""
    held: list[IO[bytes]] = []
    try:
        if user:
            tag = hashlib.sha256(user.encode("utf-8")).hexdigest()[:16]
            mine = _take_slot(folder, f"user-{tag}", max_runs_per_user)
            if mine is None:
                raise SimulationError(f"{user} already has {max_runs_per_user} what-if run(s) going (at most "
                                      f"{max_runs_per_user} per user): wait for it to finish or cancel it")
            held.append(mine)
        any_slot = _take_slot(folder, "run", max_runs)
        if any_slot is None:
            raise SimulationError(f"the what-if engine is busy: {max_runs} run(s) going (at most {max_runs} at a "
                                  "time); try again when one has finished")
        held.append(any_slot)
        yield
    finally:
        for f in held:
            f.close()  # closing the file releases its lock


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineRunner:
    """Runs what-ifs with ``twin.sim`` over the history in ``open_historian()`` (see the module docstring).

    ``workers`` 0 runs the replications in the worker process itself; ``calibrate_days`` 0 uses the
    configured figures; ``actual_h`` is how much recent history the fan charts continue;
    ``second_order`` draws the calibrated figures per replication (``twin.sim.uncertainty``;
    configured figures get their prior widths), False uses the point estimates. ``max_runs`` and
    ``max_runs_per_user`` cap the runs going at the same time (slots in ``slots_dir``, see the module docstring).
    """

    fleet: FleetSpec
    open_historian: Callable[[], HistorianReader] | None
    clock: Clock = utc_now
    workers: int = 2
    calibrate_days: float = 7.0
    actual_h: float = 24.0
    limits: WhatIfLimits = field(default_factory=WhatIfLimits)
    second_order: bool = True
    max_runs: int = 2
    max_runs_per_user: int = 1
    slots_dir: Path = field(default_factory=_new_slots_dir)

    def run(self, request: WhatIfRequest, progress: Progress) -> WhatIfResult:
        with run_slot(self.slots_dir, request.requested_by, max_runs=self.max_runs,
                      max_runs_per_user=self.max_runs_per_user):
            return self._run(request, progress)

    def _run(self, request: WhatIfRequest, progress: Progress) -> WhatIfResult:
        doc = {**request.scenario, "site": request.site, "horizon_h": request.horizon_h,
               "replications": request.replications}
        problems = scenario_problems(doc, self.fleet, self.limits)
        if problems:  # checked when the run was authorised; checked again where the work happens
            raise ConfigError("scenario", problems)
        scenario = to_scenario(doc, self.fleet)
        at = request.at or self.clock()
        horizon_s = request.horizon_h * HOUR_S
        bin_s = bin_seconds(horizon_s)
        sites = _sites_of(scenario, request.site)
        historian = self.open_historian() if self.open_historian is not None else None
        try:
            inputs = prepare(self.fleet, historian, at, sites, self.calibrate_days)
            actuals = (actual_trends(self.fleet, historian, request.site, at, self.actual_h, bin_s)
                       if historian is not None else [])
        finally:
            if historian is not None:
                historian.close()
        notes = _input_notes(inputs)
        items = [i for i in doc.get("interventions", []) if isinstance(i, dict)]
        alone_n = effect_replications(request.replications) if len(items) > 1 else 0
        total = request.replications + alone_n * len(items)
        log.info("what-if %r at %s: %d replications over %.0f h (+%d per intervention alone)", scenario.name,
                 request.site, request.replications, request.horizon_h, alone_n)
        settings = RunSettings(horizon_s=horizon_s, bin_s=bin_s, replications=request.replications, seed=request.seed,
                               workers=max(1, self.workers), second_order=self.second_order)
        snapshot = inputs.snapshot()

        def after(offset: int) -> Progress:
            return lambda done, _planned: progress(offset + done, total)

        effects: list[Effect] = []
        show = getattr(progress, "partial", None)  # a page that draws bands before the run ends
        first = preview_replications(request.replications)
        if callable(show) and first:
            # the first replications of the run, in this process (no pool to start): replication i has
            # the same seeds in any run, so these are exactly the full run's first bands, drawn in well under 1 s
            early = run_whatif(inputs, snapshot, scenario, replace(settings, replications=first), sites=sites)
            show(to_result(early.result.comparison(), name=scenario.name, fleet=self.fleet, site=request.site, at=at,
                           horizon_h=request.horizon_h, replications=first, actuals=actuals,
                           notes=[f"first {first} of {request.replications} replications: the bands narrow as the "
                                  "rest finish"]))
        def partial(result: MonteCarloResult) -> None:
            # the bands so far, redrawn as chunks of replications finish (a prefix of the full run's)
            if callable(show) and result.replications >= first:
                show(to_result(result.comparison(), name=scenario.name, fleet=self.fleet, site=request.site, at=at,
                               horizon_h=request.horizon_h, replications=result.replications, actuals=actuals,
                               notes=[f"{result.replications} of {request.replications} replications so far: "
                                      "the bands narrow as the rest finish"]))

        try:
            with executor_for(None, self.workers) as ex:
                done = run_whatif(inputs, snapshot, scenario, settings, sites=sites, executor=ex,
                                  on_progress=after(0), on_partial=partial if callable(show) else None)
                for k, item in enumerate(items if alone_n else []):
                    # the same seed: replication i of each run sees the same luck, so the effects compare
                    alone = to_scenario({**doc, "interventions": [item]}, self.fleet)
                    one = run_whatif(inputs, snapshot, alone, replace(settings, replications=alone_n), sites=sites,
                                     executor=ex, on_progress=after(request.replications + k * alone_n))
                    effects.append(_effect(one.result.comparison(), describe(item), request.site,
                                           one.result.replications))
        except SimulationError:
            raise
        except (OSError, RuntimeError) as exc:  # the pool could not start or broke
            raise SimulationError(f"the replications could not run: {exc}") from exc
        kinds = sorted({n.kind.replace("_", " ") for n in done.baseline.notes})
        if kinds:
            notes.append("assumed: " + "; ".join(kinds))
        mc = done.result
        result = to_result(mc.comparison(), name=scenario.name, fleet=self.fleet, site=request.site, at=at,
                           horizon_h=request.horizon_h, replications=mc.replications, actuals=actuals, notes=notes)
        return replace(result, effects=tuple(effects), seed=request.seed)


def preview_replications(replications: int) -> int:
    """Replications of the early bands drawn before a run ends: 5 (0: the run is that short anyway)."""
    return 5 if replications > 10 else 0


def effect_replications(replications: int) -> int:
    """Replications of each intervention's run alone: a quarter of the main run's, at least 5 (at most all)."""
    return min(replications, max(5, math.ceil(replications / 4)))


def _effect(cmp: Comparison, what: str, site: str, replications: int) -> Effect:
    def one(key: str) -> KpiDelta | None:
        try:
            return kpi_delta(cmp, key, site)
        except KeyError:
            return None

    return Effect(intervention=what, replications=replications, on_time=one("on_time_rate"),
                  output=one("units_done"))


def _input_notes(inputs: Inputs) -> list[str]:
    """What the page says about the inputs: figures without history, sites started from configuration."""
    notes = []
    cal = inputs.calibration
    if cal is not None and cal.defaults_used:
        notes.append(f"{len(cal.defaults_used)} of {len(cal.estimates)} parameters use the "
                     "configured figures (history too short)")
    for sid in inputs.unrecorded:
        notes.append(f"no recorded state of {sid} at the fork: started from its configured initial state")
    return notes
