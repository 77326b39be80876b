"""``twin whatif CONFIG --scenario FILE``: project baseline and scenario from a snapshot and compare.

The composition root of the what-if engine: loads the configuration and the scenario, reads the
snapshot at ``--at`` (and calibrates from the history before it) from the historian when there is
one, or starts from the configuration's initial state; runs paired Monte Carlo replications on a
local process pool (or a Dask cluster with ``--dask ADDRESS``) with a progress bar on stderr, and
prints a KPI table of baseline vs scenario (or JSON / CSV).

Replications are second order by default: each draws the calibrated figures from their sampling
distribution (``twin.sim.uncertainty``; figures from the configuration get the stated prior
widths), and a short first-order companion run of the baseline (a quarter of the replications,
at least 10) says how much of the spread is parameter uncertainty. ``--first-order`` uses the
point estimates in every replication and skips the companion.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import logging
import math
import re
import sys
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twin.errors import ConfigError, Problem, TwinError

__all__ = [
    "Inputs",
    "add_common",
    "executor_for",
    "kpi_csv",
    "kpi_table",
    "open_history",
    "open_inputs",
    "parameter_shares",
    "parse_duration",
    "parse_time",
    "progress_bar",
    "register",
    "run",
    "share_line",
    "uncertainty_of",
]

if TYPE_CHECKING:
    from connectors.config import PlantConfig
    from twin.historian import Historian

log = logging.getLogger(__name__)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str) -> float:
    """Seconds in ``"7d"``, ``"12h"``, ``"90m"``, ``"30s"``, ``"2w"``."""
    m = _DURATION.match(text)
    if m is None:
        raise argparse.ArgumentTypeError(f"not a duration like 7d, 12h or 90m (got {text!r})")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def parse_time(text: str) -> datetime:
    """A UTC time from ISO 8601 (a time without offset is taken as UTC) or ``now``."""
    if text == "now":
        return datetime.now(UTC)
    try:
        t = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO time like 2026-11-24T06:00Z (got {text!r})") from exc
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("whatif", help="project a scenario against the baseline (Monte Carlo)")
    p.add_argument("config", help="plant configuration file (TOML)")
    p.add_argument("--scenario", required=True, help="scenario file (TOML)")
    add_common(p)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the full comparison as JSON")
    out.add_argument("--csv", action="store_true", help="print the KPI table as CSV")
    p.set_defaults(func=run)


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--at", type=parse_time, default=None, help="fork time (ISO 8601, UTC); default: now")
    p.add_argument("--horizon", type=parse_duration, default=7 * 86400.0, help="how far to simulate (7d)")
    p.add_argument("--replications", type=int, default=100, help="Monte Carlo replications (100)")
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same numbers)")
    p.add_argument("--site", action="append", default=None, help="simulate only this site (repeatable)")
    p.add_argument("--bin", type=parse_duration, default=3600.0, help="band resolution (1h)")
    p.add_argument("--workers", type=int, default=2, help="local worker processes (2; 0 = in this process)")
    p.add_argument("--dask", metavar="ADDRESS", default=None, help="run on a Dask scheduler at ADDRESS")
    p.add_argument("--calibrate-days", type=float, default=14.0,
                   help="calibrate from this many days of history before the fork (0 = configured figures)")
    p.add_argument("--target-half-width", type=float, default=None,
                   help="stop early once the on-time-rate delta's 95%% half-width is below this")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--first-order", action="store_true",
                   help="use the point estimates in every replication (no parameter uncertainty)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Inputs:
    """What a run starts from."""

    fleet: Any
    state: Any
    params: Any
    calibration: Any
    historian: Any
    at: datetime


def _refuse_before_history(historian: Any, sites: list[str], at: datetime, now: datetime) -> None:
    """``ConfigError`` when ``at`` is before the recorded history of every site that has one."""
    from twin.historian import history_start

    starts = {s: history_start(historian, s, now) for s in sites}
    known = {s: t for s, t in starts.items() if t is not None}
    if known and all(at < t for t in known.values()):
        ranges = "; ".join(f"{s} from {t.isoformat(timespec='minutes')}" for s, t in sorted(known.items()))
        raise ConfigError("--at", [Problem(path="at", got=at.isoformat(),
                                           message=f"is before the recorded history ({ranges} to now)")])


def open_inputs(config_path: str, at: datetime | None, calibrate_days: float, sites: list[str] | None) -> Inputs:
    """Configuration, snapshot at ``at`` and calibrated parameters (history when available)."""
    from connectors.config import load
    from twin.calibrate import calibrate
    from twin.live import initial_state
    from twin.state import TwinState

    config = load(config_path)
    fleet = config.fleet
    at = at or datetime.now(UTC)
    historian = open_history(config)
    wanted = sites or [str(s.id) for s in fleet.sites]
    for s in wanted:
        try:
            fleet.site(s)
        except KeyError:
            raise ConfigError("--site", [Problem(path="site", message="unknown site", got=s)]) from None
    state = None
    params = None
    calibration = None
    now = datetime.now(UTC)
    if at > now + timedelta(minutes=1):
        raise ConfigError("--at", [Problem(path="at", got=at.isoformat(),
                                           message=f"is in the future (now {now.isoformat(timespec='seconds')}): "
                                                   "a fork starts from a recorded moment")])
    if historian is not None:
        _refuse_before_history(historian, wanted, at, now)
        states = {}
        for sid in wanted:
            st = historian.state_at(sid, at)
            if st is not None:
                states[sid] = st
        if states:
            from twin.frozen import FrozenDict

            state = TwinState(fleet=fleet.id, as_of=at, sites=FrozenDict(states))
        if calibrate_days > 0:
            calibration = calibrate(fleet, historian, at - timedelta(days=calibrate_days), at, sites=wanted)
            params = calibration.params
    if state is None:
        log.warning("no history at %s: starting from the configuration's initial state", at.isoformat())
        state = initial_state(fleet, at)
    return Inputs(fleet=fleet, state=state, params=params, calibration=calibration, historian=historian, at=at)


def open_history(config: PlantConfig) -> Historian | None:
    """The configured historian for reading, or None when there is none (yet)."""
    from app.historians import history_exists, open_historian

    if not history_exists(config.historian):
        return None
    return open_historian(config.historian, config.fleet, "read")


@contextlib.contextmanager
def executor_for(dask: str | None, workers: int) -> Iterator[Executor | None]:
    """A Dask executor, a local process pool, or None (in this process)."""
    if dask:
        try:
            import distributed
        except ImportError as exc:
            raise TwinError("--dask needs dask[distributed] installed") from exc
        try:
            client = distributed.Client(dask, timeout=10)  # type: ignore[no-untyped-call]
        except OSError as exc:
            raise TwinError(f"cannot reach the Dask scheduler at {dask}: {exc}") from exc
        try:
            yield client.get_executor()  # type: ignore[no-untyped-call]
        finally:
            client.close()  # type: ignore[no-untyped-call]
    elif workers > 0:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            yield pool
    else:
        yield None


def progress_bar(enabled: bool) -> Any:
    def show(done: int, total: int) -> None:
        if not enabled:
            return
        width = 30
        filled = int(width * done / total) if total else width
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} replications")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def run(args: argparse.Namespace) -> int:
    from twin.sim.build import fork
    from twin.sim.montecarlo import StopRule
    from twin.sim.montecarlo import run as monte_carlo
    from twin.sim.scenario import loads_scenario

    if args.replications < 1:
        raise ConfigError("--replications", [Problem(path="replications", message="must be >= 1",
                                                     got=args.replications)])
    inputs = open_inputs(args.config, args.at, args.calibrate_days, args.site)
    try:
        text = Path(args.scenario).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(args.scenario, [Problem(path="", message=f"cannot read file: {exc.strerror}",
                                                  has_got=False)]) from exc
    scenario = loads_scenario(text, args.scenario, inputs.fleet)
    base = fork(inputs.fleet, inputs.state, None, inputs.params, horizon_s=args.horizon, bin_s=args.bin,
                sites=args.site)
    scen = fork(inputs.fleet, inputs.state, scenario, inputs.params, horizon_s=args.horizon, bin_s=args.bin,
                sites=base.data.sites)
    stop = StopRule(half_width=args.target_half_width) if args.target_half_width else None
    second_order = not args.first_order
    uncertainty = uncertainty_of(inputs.calibration)
    shares: dict[str, float] = {}
    with executor_for(args.dask, args.workers) as ex:
        result = monte_carlo(base.data, scen.data, replications=args.replications, seed=args.seed, executor=ex,
                             workers=max(1, args.workers), stop=stop,
                             on_progress=progress_bar(not args.no_progress and not args.json),
                             as_of=base.as_of, uncertainty=uncertainty, second_order=second_order)
        if second_order:
            shares = parameter_shares(base.data, result, args.seed, ex, max(1, args.workers))
    if inputs.historian is not None:
        inputs.historian.close()
    cmp = result.comparison()
    if args.json:
        doc = cmp.to_dict()
        doc["scenario_name"] = scenario.name
        doc["notes"] = [{"kind": n.kind, "subject": n.subject} for n in base.notes]
        doc["calibration"] = inputs.calibration.to_dict() if inputs.calibration is not None else None
        doc["stopped_early"] = result.stopped_early
        doc["second_order"] = result.second_order
        doc["parameter_share"] = {k: (v if math.isfinite(v) else None) for k, v in shares.items()}
        print(json.dumps(doc, allow_nan=False))
    elif args.csv:
        print(kpi_csv(cmp), end="")
    else:
        print(kpi_table(cmp, scenario.name, result.replications, base.as_of))
        if shares:
            print("\n" + share_line(shares))
        elif not second_order:
            print("\nfirst order: every replication used the point estimates (no parameter uncertainty)")
        if base.notes:
            kinds = sorted({n.kind for n in base.notes})
            print(f"\nassumptions: {', '.join(kinds)}")
        if inputs.calibration is not None and inputs.calibration.defaults_used:
            n = len(inputs.calibration.defaults_used)
            print(f"calibration: {n} of {len(inputs.calibration.estimates)} figures use configured defaults "
                  "(history too short)")
    return 0


SHARE_KPIS = ("units_done", "on_time_rate", "lead_time_h")


def uncertainty_of(calibration: Any) -> Any:
    """The figures' sampling laws: the calibration's, or prior widths on every figure without one."""
    from twin.sim.uncertainty import Uncertainty

    return calibration.uncertainty if calibration is not None else Uncertainty()


def parameter_shares(data: Any, result: Any, seed: int, executor: Executor | None, workers: int) -> dict[str, float]:
    """Share of the baseline's variance due to parameter uncertainty per fleet KPI (first-order companion)."""
    from twin.sim.montecarlo import companion_replications, parameter_share
    from twin.sim.montecarlo import run as monte_carlo

    n = companion_replications(result.replications)
    first = monte_carlo(data, replications=n, seed=seed, executor=executor, workers=workers, second_order=False)
    return {k: parameter_share(result.baseline, first.baseline, k) for k in SHARE_KPIS}


def share_line(shares: dict[str, float]) -> str:
    """The sentence that says how much of the band is parameter uncertainty."""
    parts = [f"{_KPI_LABELS[k][0]} {v * 100:.0f}%" for k, v in shares.items() if math.isfinite(v)]
    if not parts:
        return "parameter uncertainty: not measurable (no spread)"
    return ("parameter uncertainty (share of the baseline's variance, 1 - first-order / second-order): "
            + ", ".join(parts))


_KPI_LABELS = {
    "units_done": ("units finished", 1.0, "{:.0f}"),
    "orders_done": ("orders finished", 1.0, "{:.0f}"),
    "on_time_rate": ("on-time delivery %", 100.0, "{:.1f}"),
    "lead_time_h": ("lead time h", 1.0, "{:.1f}"),
    "wip_orders": ("open orders (avg)", 1.0, "{:.1f}"),
    "utilisation": ("utilisation %", 100.0, "{:.1f}"),
    "stockout_skus": ("SKUs stocked out", 1.0, "{:.2f}"),
}


def _fmt(value: float, scale: float, pattern: str) -> str:
    return "-" if math.isnan(value) else pattern.format(value * scale)


def kpi_table(cmp: Any, name: str, replications: int, as_of: datetime) -> str:
    """The baseline-vs-scenario table a person reads (formatting happens here, at the edge)."""
    from twin.sim.projection import FLEET

    lines = [f"what-if {name!r} from {as_of.isoformat()} - {replications} paired replications, 95% intervals",
             f"{'KPI':<22}{'site':<14}{'baseline':>12}{'scenario':>12}{'delta':>12}  {'delta 95% CI':<22}"]
    sites = [FLEET, *sorted({k.site for k in cmp.baseline.kpis if k.site != FLEET})]
    for site in sites:
        for key, (label, scale, pattern) in _KPI_LABELS.items():
            try:
                b, s, d = cmp.baseline.kpi(key, site), cmp.scenario.kpi(key, site), cmp.delta(key, site)
            except KeyError:
                continue
            if site != FLEET and key in ("orders_done", "stockout_skus"):
                continue
            ci = f"[{_fmt(d.low, scale, pattern)}, {_fmt(d.high, scale, pattern)}]"
            lines.append(f"{label:<22}{'all' if site == FLEET else site:<14}{_fmt(b.mean, scale, pattern):>12}"
                         f"{_fmt(s.mean, scale, pattern):>12}{_fmt(d.mean, scale, pattern):>12}  {ci:<22}")
    risky = [
        (b, s) for b, s in zip(cmp.baseline.stockouts, cmp.scenario.stockouts, strict=True)
        if b.probability > 0 or s.probability > 0
    ]
    if risky:
        lines.append("")
        lines.append(f"{'stockout risk':<36}{'baseline':>12}{'scenario':>12}  {'earliest (scenario)':<20}")
        for b, s in risky:
            when = "-" if math.isinf(s.earliest_s) else f"+{s.earliest_s / 3600:.1f} h"
            lines.append(f"{b.site + '/' + b.sku:<36}{b.probability * 100:>11.0f}%{s.probability * 100:>11.0f}%  "
                         f"{when:<20}")
    late = sorted(zip(cmp.baseline.orders, cmp.scenario.orders, strict=True), key=lambda p: p[1].probability)[:10]
    if late:
        lines.append("")
        lines.append(f"{'open orders (least likely on time)':<36}{'baseline':>12}{'scenario':>12}  scenario 95% CI")
        for b, s in late:
            lines.append(f"{s.order:<36}{b.probability * 100:>11.0f}%{s.probability * 100:>11.0f}%  "
                         f"[{s.low * 100:.0f}%, {s.high * 100:.0f}%]")
    return "\n".join(lines)


def kpi_csv(cmp: Any) -> str:
    """One row per (KPI, site): baseline, scenario and delta with their intervals, raw numbers."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["kpi", "site", "baseline_mean", "baseline_low", "baseline_high", "scenario_mean", "scenario_low",
                "scenario_high", "delta_mean", "delta_low", "delta_high", "replications"])
    for b in cmp.baseline.kpis:
        s, d = cmp.scenario.kpi(b.name, b.site), cmp.delta(b.name, b.site)
        w.writerow([b.name, b.site, b.mean, b.low, b.high, s.mean, s.low, s.high, d.mean, d.low, d.high, d.n])
    return buf.getvalue()
