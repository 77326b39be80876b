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
import csv
import io
import json
import logging
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from connectors.executors import executor_for
from twin.clock import utc_now
from twin.errors import ConfigError, Problem

if TYPE_CHECKING:  # the simulation engine is imported when a command runs, so `twin check` stays fast
    from connectors.config import PlantConfig
    from twin.calibrate import Calibration
    from twin.historian import HistorianReader
    from twin.sim.projection import Comparison
    from twin.sim.whatif import Inputs, WhatIfRun
    from twin.spec import FleetSpec
    from twin.state import TwinState

__all__ = ["Opened", "add_common", "check_sites", "kpi_csv", "kpi_table", "open_history", "open_inputs",
           "parse_duration", "parse_time", "progress_bar", "register", "run", "share_line"]

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
        return utc_now()
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
    p.add_argument("--health-days", type=float, default=0.0,
                   help="fit the failure-risk model on this many days before the fork: failures follow each "
                        "machine's wear (0 = constant MTBF)")
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
class Opened:
    """What a run starts from: the inputs, the snapshot to fork and the historian they came from (None: none)."""

    inputs: Inputs
    state: TwinState
    historian: HistorianReader | None


def _refuse_before_history(historian: HistorianReader, sites: Sequence[str], at: datetime, now: datetime) -> None:
    """``ConfigError`` when ``at`` is before the recorded history of every site that has one."""
    from twin.historian import history_start

    starts = {s: history_start(historian, s, now) for s in sites}
    known = {s: t for s, t in starts.items() if t is not None}
    if known and all(at < t for t in known.values()):
        ranges = "; ".join(f"{s} from {t.isoformat(timespec='minutes')}" for s, t in sorted(known.items()))
        raise ConfigError("--at", [Problem(path="at", got=at.isoformat(),
                                           message=f"is before the recorded history ({ranges} to now)")])


def open_inputs(config_path: str, at: datetime | None, calibrate_days: float, sites: list[str] | None,
                health_days: float = 0.0) -> Opened:
    """Configuration, snapshot at ``at`` and calibrated parameters (history when available)."""
    from connectors.config import load
    from twin.sim.whatif import prepare

    config = load(config_path)
    fleet = config.fleet
    at = at or utc_now()
    historian = open_history(config)
    wanted = sites or [str(s.id) for s in fleet.sites]
    check_sites(fleet, wanted)
    now = utc_now()
    if at > now + timedelta(minutes=1):
        raise ConfigError("--at", [Problem(path="at", got=at.isoformat(),
                                           message=f"is in the future (now {now.isoformat(timespec='seconds')}): "
                                                   "a fork starts from a recorded moment")])
    if historian is not None:
        _refuse_before_history(historian, wanted, at, now)
    inputs = prepare(fleet, historian, at, wanted, calibrate_days, health_days)
    # the sites with a recorded state; only without any, the configuration's initial state of every site
    state = inputs.recorded_snapshot()
    if state is None:
        log.warning("no history at %s: starting from the configuration's initial state", at.isoformat())
        state = inputs.initial()
    return Opened(inputs=inputs, state=state, historian=historian)


def check_sites(fleet: FleetSpec, sites: Sequence[str]) -> None:
    """``ConfigError`` (``--site``) for the first of ``sites`` that is not in the fleet."""
    for s in sites:
        try:
            fleet.site(s)
        except KeyError:
            raise ConfigError("--site", [Problem(path="site", message="unknown site", got=s)]) from None


def open_history(config: PlantConfig) -> HistorianReader | None:
    """The configured historian for reading, or None when there is none (yet)."""
    from app.historians import history_exists, open_historian

    if not history_exists(config.historian):
        return None
    return open_historian(config.historian, config.fleet, "read")


def progress_bar(enabled: bool) -> Callable[[int, int], None]:
    """A progress callback drawing a bar of replications on stderr (nothing when not ``enabled``)."""

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
    from twin.sim.montecarlo import StopRule
    from twin.sim.scenario import loads_scenario
    from twin.sim.whatif import RunSettings, run_whatif

    if args.replications < 1:
        raise ConfigError("--replications", [Problem(path="replications", message="must be >= 1",
                                                     got=args.replications)])
    opened = open_inputs(args.config, args.at, args.calibrate_days, args.site, args.health_days)
    inputs = opened.inputs
    try:
        text = Path(args.scenario).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(args.scenario, [Problem(path="", message=f"cannot read file: {exc.strerror}",
                                                  has_got=False)]) from exc
    scenario = loads_scenario(text, args.scenario, inputs.fleet)
    settings = RunSettings(horizon_s=args.horizon, bin_s=args.bin, replications=args.replications, seed=args.seed,
                           workers=max(1, args.workers), second_order=not args.first_order,
                           stop=StopRule(half_width=args.target_half_width) if args.target_half_width else None,
                           shares=True)
    try:
        with executor_for(args.dask, args.workers) as ex:
            done = run_whatif(inputs, opened.state, scenario, settings, sites=args.site, executor=ex,
                              on_progress=progress_bar(not args.no_progress and not args.json))
    finally:
        if opened.historian is not None:
            opened.historian.close()
    print(_report(args, done, scenario.name, inputs.calibration), end="")
    return 0


def _report(args: argparse.Namespace, done: WhatIfRun, name: str, calibration: Calibration | None) -> str:
    """What ``twin whatif`` prints: the JSON document, the CSV rows or the table with its notes."""
    result, base, shares = done.result, done.baseline, done.shares
    cmp = result.comparison()
    if args.json:
        doc = cmp.to_dict()
        doc["scenario_name"] = name
        doc["notes"] = [{"kind": n.kind, "subject": n.subject} for n in base.notes]
        doc["calibration"] = calibration.to_dict() if calibration is not None else None
        doc["stopped_early"] = result.stopped_early
        doc["second_order"] = result.second_order
        doc["parameter_share"] = {k: (v if math.isfinite(v) else None) for k, v in shares.items()}
        return json.dumps(doc, allow_nan=False) + "\n"
    if args.csv:
        return kpi_csv(cmp)
    lines = [kpi_table(cmp, name, result.replications, base.as_of)]
    if shares:
        lines.append("\n" + share_line(shares))
    elif not result.second_order:
        lines.append("\nfirst order: every replication used the point estimates (no parameter uncertainty)")
    if base.notes:
        kinds = sorted({n.kind for n in base.notes})
        lines.append(f"\nassumptions: {', '.join(kinds)}")
    if calibration is not None and calibration.defaults_used:
        lines.append(f"calibration: {len(calibration.defaults_used)} of {len(calibration.estimates)} figures use "
                     "configured defaults (history too short)")
    return "\n".join(lines) + "\n"


def share_line(shares: Mapping[str, float]) -> str:
    """The sentence that says how much of the band is parameter uncertainty."""
    from twin.sim.kpis import KPIS

    parts = [f"{KPIS[k].heading} {v * 100:.0f}%" for k, v in shares.items() if math.isfinite(v)]
    if not parts:
        return "parameter uncertainty: not measurable (no spread)"
    return ("parameter uncertainty (share of the baseline's variance, 1 - first-order / second-order): "
            + ", ".join(parts))


def kpi_table(cmp: Comparison, name: str, replications: int, as_of: datetime) -> str:
    """The baseline-vs-scenario table a person reads (formatting happens here, at the edge)."""
    from twin.sim.kpis import KPIS
    from twin.sim.projection import FLEET

    lines = [f"what-if {name!r} from {as_of.isoformat()} - {replications} paired replications, 95% intervals",
             f"{'KPI':<22}{'site':<14}{'baseline':>12}{'scenario':>12}{'delta':>12}  {'delta 95% CI':<22}"]
    sites = [FLEET, *sorted({k.site for k in cmp.baseline.kpis if k.site != FLEET})]
    for site in sites:
        for key, info in KPIS.items():
            try:
                b, s, d = cmp.baseline.kpi(key, site), cmp.scenario.kpi(key, site), cmp.delta(key, site)
            except KeyError:
                continue
            if site != FLEET and key in ("orders_done", "stockout_skus"):
                continue
            ci = f"[{info.text(d.low)}, {info.text(d.high)}]"
            lines.append(f"{info.heading:<22}{'all' if site == FLEET else site:<14}{info.text(b.mean):>12}"
                         f"{info.text(s.mean):>12}{info.text(d.mean):>12}  {ci:<22}")
    risky = [
        (b, s) for b, s in zip(cmp.baseline.stockouts, cmp.scenario.stockouts, strict=True)
        if b.probability > 0 or s.probability > 0
    ]
    if risky:
        lines.append("")
        lines.append(f"{'stockout risk':<36}{'baseline':>12}{'scenario':>12}  {'earliest (scenario)':<20}")
        for rb, rs in risky:
            when = "-" if math.isinf(rs.earliest_s) else f"+{rs.earliest_s / 3600:.1f} h"
            lines.append(f"{rb.site + '/' + rb.sku:<36}{rb.probability * 100:>11.0f}%{rs.probability * 100:>11.0f}%  "
                         f"{when:<20}")
    late = sorted(zip(cmp.baseline.orders, cmp.scenario.orders, strict=True), key=lambda p: p[1].probability)[:10]
    if late:
        lines.append("")
        lines.append(f"{'open orders (least likely on time)':<36}{'baseline':>12}{'scenario':>12}  scenario 95% CI")
        for ob, os_ in late:
            lines.append(f"{os_.order:<36}{ob.probability * 100:>11.0f}%{os_.probability * 100:>11.0f}%  "
                         f"[{os_.low * 100:.0f}%, {os_.high * 100:.0f}%]")
    return "\n".join(lines)


def kpi_csv(cmp: Comparison) -> str:
    """One row per (KPI, site): baseline, scenario and delta with their intervals, raw numbers."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["kpi", "site", "baseline_mean", "baseline_low", "baseline_high", "scenario_mean", "scenario_low",
                "scenario_high", "delta_mean", "delta_low", "delta_high", "replications"])
    for b in cmp.baseline.kpis:
        s, d = cmp.scenario.kpi(b.name, b.site), cmp.delta(b.name, b.site)
        w.writerow([b.name, b.site, b.mean, b.low, b.high, s.mean, s.low, s.high, d.mean, d.low, d.high, d.n])
    return buf.getvalue()
