"""``twin backtest CONFIG``: fork at past moments and score the projections against what happened.

Two modes:

- ``--at T0 --until T1``: one fork at ``T0`` (calibrating from the days before it), simulated to
  ``T1`` and compared with the history in between.
- ``--from T0 --to T1 --every 6h --horizon 24h``: a rolling backtest, one fork at every origin
  ``T0, T0 + every, .. <= T1``, each calibrated ONLY from the history before that origin
  (``--calibrate-days``, 7 by default), simulated over the horizon and scored.

Scores per site and series (``twin.sim.backtest``): P10-P90 coverage, a 10-bin PIT histogram,
CRPS from the replications' samples, the P50 error of the daily output and the same error of a
naive forecast (the same hours one week earlier) as a skill score 1 - err_model / err_naive, and
(rolling) coverage by hour of the horizon. ``--json`` prints one document: a single backtest, or
``{"origins": [one per origin, with its as_of and series], "summary": {...}}``.

Replications are second order unless ``--first-order``; ``--no-calibration`` uses the configured
figures (with their prior widths in second order).

``--oracle-truth FILE`` (an emulated plant's hidden truth, ``connectors.emulator.truth``) adds a
measuring instrument, never a forecast: at every origin the same state is forked again with the
figures that plant really runs (:func:`oracle_params`) and its P50 daily-output error is shown
beside the twin's. That error is the noise floor, what a forecaster who knew the plant's figures
exactly would still miss by (the plant's own randomness, and what the engine does not model); the
twin is at the floor when its error is at most the oracle's x 1.10 + 1 unit
(``twin.sim.backtest.noise_floor``). The twin's calibration never sees the file.

``--alarms`` (rolling only) also backtests the predictive alarms ``stockout_risk`` (raised when
P(the SKU's shelf empties within ``--alarm-horizon-stockout``, 48 h) > ``--alarm-threshold-stockout``,
0.5) and ``late_order_risk`` (P(an open order due within ``--alarm-horizon-late``, 24 h, finishes
late) > ``--alarm-threshold-late``, 0.5) against what the history then shows
(``twin.sim.alarm_backtest``): precision and recall with Wilson intervals, the median lead time,
the Brier score against the base rate, and a table over other thresholds; ``--json``: ``"alarms"``.
Without the flags, each rule's threshold and horizon are the plant file's (its first rule of the kind).

The forking and scoring at every origin is ``twin.sim.rolling`` (shared with the dashboard's
model-trust scheduler, ``dashboard.trust``); this module parses the command and prints (the
rolling summary ends with a table of the daily output: P50 error, bias against the 10 % limit and,
with an oracle, its error and whether the twin is at the noise floor; ``--json``: ``"fidelity"``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.whatif import add_common, check_sites, open_history, parse_duration, parse_time, progress_bar
from connectors.executors import executor_for
from twin.errors import ConfigError, Problem, TwinError
from twin.frozen import FrozenDict
from twin.sim.alarm_backtest import AlarmSettings, AlarmSummary
from twin.sim.backtest import RollingSummary, noise_floor
from twin.sim.params import DemandParams, LeadTimeParams, MachineParams, SimParams
from twin.sim.projection import to_plain
from twin.sim.rolling import origins, rolling_run, score_at
from twin.spec import AlarmKind, AlarmRule, Transport

if TYPE_CHECKING:
    from connectors.emulator.truth import Truth
    from twin.historian import HistorianReader
    from twin.spec import FleetSpec

# The emulated plant's own laws where the truth file has no figure (connectors.emulator.plant's
# docstring): cycle-time noise, a lognormal of cv 3 % (10 % for manual benches), and the late
# tail of a shipment, with some chance an exponential delay (times the truth's delay factor).
_CYCLE_CV, _MANUAL_CV = 0.03, 0.10
_TAILS = {Transport.SEA: (0.2, 5.0), Transport.AIR: (0.1, 1.0), Transport.LOCAL: (0.05, 0.5)}  # (chance, mean d)


def oracle_params(fleet: FleetSpec, truth: Truth) -> SimParams:
    """The figures the emulated plant really runs, as overrides for a fork (the oracle of a backtest).

    Per machine the truth's cycle (ideal x cycle factor), MTBF, MTTR and scrap rate (the
    configured ones where it has none) and the plant's cycle cv; per (site, product) the configured
    orders a day x the truth's demand factor (configured hour and weekday profiles); per (site,
    SKU) the truth's BOM factor, and the lead time's mean and spread with the late tail folded in:
    a normal lead L (mean m, sd s) plus, with chance p, an exponential delay of mean d x k has
    mean m + p d k and variance s^2 + p (d k)^2 (2 - p) (E[D^2] = 2 p (d k)^2, less (p d k)^2).

    >>> from twin.spec import FleetSpec
    >>> from connectors.emulator.truth import Truth
    >>> len(oracle_params(FleetSpec(id="f", name="f", sites=(), templates=()), Truth()).machines)
    0
    """
    machines: dict[tuple[str, str], MachineParams] = {}
    demand: dict[tuple[str, str], DemandParams] = {}
    consumption: dict[tuple[str, str], float] = {}
    lead_times: dict[tuple[str, str], LeadTimeParams] = {}
    for site in fleet.sites:
        sid = str(site.id)
        for m in site.machines:
            real = truth.machine(m)
            tpl = m.template
            machines[(sid, str(m.id))] = MachineParams(
                cycle_time_s=tpl.ideal_cycle_time_s * real.cycle_factor,
                cycle_cv=_MANUAL_CV if "bench" in str(tpl.id) else _CYCLE_CV,
                mtbf_h=real.mtbf_h, mttr_h=real.mttr_h, scrap_rate=real.scrap_rate)
        for d in site.demand:
            demand[(sid, str(d.product))] = DemandParams(
                orders_per_day=d.orders_per_day * truth.demand_factor(sid, str(d.product)))
        for item in site.inventory:
            it = truth.item(sid, item)
            p, mean_d = _TAILS.get(item.transport, _TAILS[Transport.LOCAL])
            tail = mean_d * it.delay_factor
            consumption[(sid, str(item.sku))] = it.bom_factor
            lead_times[(sid, str(item.sku))] = LeadTimeParams(
                mean_d=it.lead_time_d + p * tail,
                sd_d=(it.lead_time_sd_d ** 2 + p * tail * tail * (2.0 - p)) ** 0.5)
    return SimParams(machines=FrozenDict(machines), demand=FrozenDict(demand), consumption=FrozenDict(consumption),
                     lead_times=FrozenDict(lead_times))

__all__ = ["oracle_params", "register", "run"]

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("backtest", help="fork at past moments and compare the projections with history")
    p.add_argument("config", help="plant configuration file (TOML)")
    p.add_argument("--until", type=parse_time, default=None, help="end of a single comparison (ISO 8601, UTC)")
    p.add_argument("--from", dest="origin_from", type=parse_time, default=None,
                   help="first origin of a rolling backtest (ISO 8601, UTC)")
    p.add_argument("--to", dest="origin_to", type=parse_time, default=None, help="last origin (at most)")
    p.add_argument("--every", type=parse_duration, default=6 * 3600.0, help="time between origins (6h)")
    p.add_argument("--no-calibration", action="store_true", help="use the configured figures (no calibration)")
    p.add_argument("--oracle-truth", default=None, metavar="FILE",
                   help="an emulated plant's truth file: also score an oracle forecast made with its figures "
                        "(the noise floor; the twin never reads it)")
    p.add_argument("--alarms", action="store_true",
                   help="rolling: also backtest the predictive alarms stockout_risk and late_order_risk")
    p.add_argument("--alarm-threshold-stockout", type=float, default=None, metavar="P",
                   help="stockout_risk is raised when P(stockout within its horizon) > P (default: the plant "
                        "file's stockout_risk rule, else 0.5)")
    p.add_argument("--alarm-horizon-stockout", type=parse_duration, default=None, metavar="D",
                   help="horizon of stockout_risk (default: the plant file's rule, else 48h)")
    p.add_argument("--alarm-threshold-late", type=float, default=None, metavar="P",
                   help="late_order_risk is raised when P(an order due within its horizon is late) > P "
                        "(default: the plant file's late_order_risk rule, else 0.5)")
    p.add_argument("--alarm-horizon-late", type=parse_duration, default=None, metavar="D",
                   help="horizon of late_order_risk (default: the plant file's rule, else 24h)")
    add_common(p)
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.set_defaults(func=run, replications=50, horizon=86400.0, calibrate_days=7.0)


def _check(args: argparse.Namespace) -> None:
    for name in ("alarm_threshold_stockout", "alarm_threshold_late"):
        value = getattr(args, name, None)
        if value is not None and not 0.0 <= value <= 1.0:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(flag, [Problem(path=name.replace("_", "-"), message="must be a probability in [0, 1]",
                                             got=value)])
    for name in ("alarm_horizon_stockout", "alarm_horizon_late"):
        if (getattr(args, name, None) or 1.0) <= 0:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(flag, [Problem(path=name.replace("_", "-"), message="must be > 0",
                                             got=getattr(args, name))])
    if getattr(args, "alarms", False) and args.origin_from is None:
        raise ConfigError("--alarms", [Problem(path="alarms", message="needs a rolling backtest (--from and --to)",
                                               has_got=False)])
    if args.replications < 1:
        raise ConfigError("--replications", [Problem(path="replications", message="must be >= 1",
                                                     got=args.replications)])
    if args.origin_from is not None or args.origin_to is not None:
        if args.origin_from is None or args.origin_to is None:
            raise ConfigError("--from", [Problem(path="from", message="a rolling backtest needs --from and --to",
                                                 has_got=False)])
        if args.origin_to < args.origin_from:
            raise ConfigError("--to", [Problem(path="to", message="must not be before --from",
                                               got=args.origin_to.isoformat())])
        if args.every <= 0 or args.horizon <= 0:
            raise ConfigError("--every", [Problem(path="every", message="--every and --horizon must be > 0",
                                                  got=args.every)])
        return
    if args.at is None or args.until is None:
        raise ConfigError("--at", [Problem(path="at", message="a backtest needs --at and --until, or --from and --to",
                                           has_got=False)])
    if args.until <= args.at:
        raise ConfigError("--until", [Problem(path="until", message="must be after --at", got=args.until.isoformat())])


def run(args: argparse.Namespace) -> int:
    _check(args)
    calibrate_days = 0.0 if args.no_calibration else args.calibrate_days
    second_order = not args.first_order
    if args.origin_from is not None:
        return _run_rolling(args, calibrate_days, second_order)
    horizon = (args.until - args.at).total_seconds()
    fleet, historian = _open(args)
    try:
        with executor_for(args.dask, args.workers) as ex:
            result = score_at(fleet, historian, args.at, horizon, bin_s=args.bin, replications=args.replications,
                              seed=args.seed, executor=ex, workers=max(1, args.workers),
                              calibrate_days=calibrate_days, second_order=second_order, sites=args.site,
                              on_progress=progress_bar(not args.no_progress and not args.json))
    finally:
        historian.close()
    if args.json:
        print(json.dumps(result.to_dict(), allow_nan=False))
        return 0
    order = "second order" if result.second_order else "first order"
    print(f"backtest from {args.at.isoformat()} to {args.until.isoformat()}: {result.replications} replications "
          f"({order}); pooled P10-P90 coverage {result.coverage * 100:.0f}% (about 80% expected)")
    print(_table([(s.metric, s.key, s.coverage, s.pit_coverage, s.pit_histogram, s.crps, s.daily_error if s.metric ==
                   "cumulative_units" else s.median_abs_error, s.skill) for s in result.series]))
    return 0


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{x * 100:.0f}%"


def _num(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.2f}"


def _pit_text(hist: Sequence[int]) -> str:
    top = max(hist, default=0)
    if not top:
        return "-"
    marks = " .:-=+*#%@"  # height of each bin relative to the fullest one
    return "".join(marks[round(9 * c / top)] for c in hist)


def _table(rows: Sequence[tuple[str, str, float, float, Sequence[int], float, float, float]]) -> str:
    lines = [f"{'series':<40}{'coverage':>9}{'PIT cov':>8}  {'PIT (10 bins)':<14}{'CRPS':>9}{'P50 error':>11}"
             f"{'skill':>8}"]
    for metric, key, cov, pit_cov, hist, crps, err, skill in rows:
        lines.append(f"{metric + ' ' + key:<40}{_pct(cov):>9}{_pct(pit_cov):>8}  {_pit_text(hist):<14}{_num(crps):>9}"
                     f"{_num(err):>11}{_num(skill):>8}")
    lines.append("(P50 error: of the daily output for cumulative_units, at the bin ends for stock; skill = "
                 "1 - error / error of the same hours a week earlier)")
    return "\n".join(lines)


def _open(args: argparse.Namespace) -> tuple[FleetSpec, HistorianReader]:
    """The configuration's fleet and its historian (``TwinError`` when there is no history yet)."""
    from connectors.config import load

    config = load(args.config)
    fleet = config.fleet
    check_sites(fleet, args.site or [])
    historian = open_history(config)
    if historian is None:
        raise TwinError("backtest needs history: the configured historian does not exist yet")
    return fleet, historian


BIAS_LIMIT = 0.10  # |bias of the P50 daily output| <= 10 % of the actual daily output


def _fidelity(summary: RollingSummary) -> list[dict[str, Any]]:
    """Per output series: the P50 daily output's error and bias against the limits (and the oracle's, if run)."""
    rows = []
    for s in summary.series:
        if s.metric != "cumulative_units" or math.isnan(s.daily_error):
            continue
        level = s.daily_actual
        bias_rel = s.daily_bias / level if level else math.nan
        floor = noise_floor(s.oracle_daily_error)
        rows.append({
            "key": s.key, "daily_actual": level, "daily_error": s.daily_error,
            "daily_error_rel": s.daily_error / level if level else math.nan,
            "daily_bias": s.daily_bias, "daily_bias_rel": bias_rel,
            "bias_ok": None if math.isnan(bias_rel) else abs(bias_rel) <= BIAS_LIMIT,
            "oracle_daily_error": s.oracle_daily_error, "oracle_daily_bias": s.oracle_daily_bias,
            "noise_floor": floor, "at_noise_floor": None if math.isnan(floor) else s.daily_error <= floor + 1e-9,
            "naive_daily_error": s.naive_daily_error, "skill": s.skill,
        })
    return rows


def _signed_pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{x * 100:+.0f}%"


def _fidelity_table(rows: Sequence[dict[str, Any]], oracle: bool) -> str:
    head = f"{'daily output':<16}{'made/day':>9}{'P50 error':>15}{'bias':>15}{'bias<=10%':>10}"
    if oracle:
        head += f"{'oracle error':>13}{'floor':>7}{'at floor':>9}"
    lines = [head]
    for r in rows:
        err = f"{_num(r['daily_error'])} ({_pct(r['daily_error_rel'])})"
        bias = f"{r['daily_bias']:+.2f} ({_signed_pct(r['daily_bias_rel'])})"
        line = f"{r['key']:<16}{r['daily_actual']:>9.1f}{err:>15}{bias:>15}{_yes(r['bias_ok']):>10}"
        if oracle:
            line += f"{_num(r['oracle_daily_error']):>13}{_num(r['noise_floor']):>7}{_yes(r['at_noise_floor']):>9}"
        lines.append(line)
    note = "(bias: mean P50 daily output - actual"
    if oracle:
        note += ("; oracle: the same forks with the truth file's figures, first order: its error is the noise "
                 "floor; at floor: error <= oracle x 1.10 + 1")
    return "\n".join([*lines, note + ")"])


COVERAGE_TARGET = (0.73, 0.87)  # P10-P90 PIT coverage of a calibrated forecast: 80 % +- 7 points


def _coverage_by_site(summary: RollingSummary) -> list[dict[str, Any]]:
    """Per site: output and stock (pooled over its SKUs, by points) coverage, inclusive and PIT, against the target."""
    acc: dict[str, dict[str, list[float]]] = {}
    for s in summary.series:
        if s.metric == "cumulative_units" and s.key != "*":
            site, kind = s.key, "output"
        elif s.metric == "stock":
            site, kind = s.key.split("/", 1)[0], "stock"
        else:
            continue
        a = acc.setdefault(site, {}).setdefault(kind, [0.0] * 6)
        a[0] += s.coverage * s.points
        a[1] += s.points
        if not math.isnan(s.pit_coverage):
            a[2] += s.pit_coverage * s.points
            a[3] += s.points
        if not math.isnan(s.oracle_pit_coverage):
            a[4] += s.oracle_pit_coverage * s.points
            a[5] += s.points
    rows = []
    lo, hi = COVERAGE_TARGET
    for site, kinds in acc.items():
        row: dict[str, Any] = {"site": site}
        for kind in ("output", "stock"):
            cov, pts, pcov, ppts, ocov, opts = kinds.get(kind, [0.0] * 6)
            pit_cov = pcov / ppts if ppts else math.nan
            row[f"{kind}_oracle_pit_coverage"] = ocov / opts if opts else math.nan
            row[f"{kind}_coverage"] = cov / pts if pts else math.nan
            row[f"{kind}_pit_coverage"] = pit_cov
            row[f"{kind}_coverage_ok"] = None if math.isnan(pit_cov) else lo <= pit_cov <= hi
        rows.append(row)
    return rows


def _coverage_table(rows: Sequence[dict[str, Any]], oracle: bool) -> str:
    head = f"{'coverage':<16}{'output':>8}{'PIT':>6}{'ok':>5}"
    if oracle:
        head += f"{'oracle':>8}"
    head += f"{'stock':>8}{'PIT':>6}{'ok':>5}"
    if oracle:
        head += f"{'oracle':>8}"
    lines = [head]
    for r in rows:
        line = ""
        for kind in ("output", "stock"):
            line += (f"{_pct(r[kind + '_coverage']):>8}{_pct(r[kind + '_pit_coverage']):>6}"
                     f"{_yes(r[kind + '_coverage_ok']):>5}")
            if oracle:
                line += f"{_pct(r[kind + '_oracle_pit_coverage']):>8}"
        lines.append(f"{r['site']:<16}{line}")
    lines.append("(P10-P90 coverage, inclusive and of the randomized PIT, which stays 80 % for a calibrated forecast "
                 "of counts that do not move for hours; ok: PIT coverage within 80 +- 7 %; oracle: its PIT coverage)")
    return "\n".join(lines)


def _yes(ok: bool | None) -> str:
    return "-" if ok is None else "yes" if ok else "NO"


def _run_rolling(args: argparse.Namespace, calibrate_days: float, second_order: bool) -> int:
    fleet, historian = _open(args)
    oracle = None
    if args.oracle_truth is not None:
        from connectors.emulator.truth import load_truth

        oracle = oracle_params(fleet, load_truth(Path(args.oracle_truth), fleet))
    at = origins(args.origin_from, args.origin_to, args.every)
    show = not args.no_progress and not args.json

    def on_origin(done: int, total: int) -> None:
        if show:
            sys.stderr.write(f"\rorigin {done}/{total}")
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()

    alarms = _alarm_settings(args, fleet) if args.alarms else None
    try:
        with executor_for(args.dask, args.workers) as ex:
            run_ = rolling_run(fleet, historian, at, args.horizon, bin_s=args.bin, replications=args.replications,
                               seed=args.seed, executor=ex, workers=max(1, args.workers),
                               calibrate_days=calibrate_days, second_order=second_order, sites=args.site,
                               on_origin=on_origin, oracle=oracle, alarms=alarms)
    finally:
        historian.close()
    results, summary = run_.results, run_.summary
    if args.json:
        doc = {"origins": [r.to_dict() for r in results], "summary": summary.to_dict(),
               "fidelity": to_plain(_fidelity(summary)), "coverage": to_plain(_coverage_by_site(summary))}
        if run_.alarms is not None:
            doc["alarms"] = run_.alarms.to_dict()
        print(json.dumps(doc, allow_nan=False))
        return 0
    order = "second order" if second_order else "first order"
    print(f"rolling backtest: {len(at)} origins from {at[0].isoformat()} every {args.every / 3600:g} h, horizon "
          f"{args.horizon / 3600:g} h, {args.replications} replications ({order}); pooled P10-P90 coverage "
          f"{_pct(summary.coverage)}, of the PIT {_pct(summary.pit_coverage)} (about 80% expected)")
    print(_table([(s.metric, s.key, s.coverage, s.pit_coverage, s.pit_histogram, s.crps, s.daily_error if s.metric ==
                   "cumulative_units" else s.median_abs_error, s.skill) for s in summary.series]))
    fleet_units = [s for s in summary.series if s.metric == "cumulative_units" and s.key == "*"]
    if fleet_units:
        by_hour = " ".join(_pct(c) for c in fleet_units[0].coverage_by_hour)
        print(f"coverage of fleet output by horizon hour: {by_hour}")
    print(_fidelity_table(_fidelity(summary), oracle is not None))
    print(_coverage_table(_coverage_by_site(summary), oracle is not None))
    if run_.alarms is not None:
        print(_alarm_table(run_.alarms))
    return 0


def _alarm_settings(args: argparse.Namespace, fleet: FleetSpec) -> AlarmSettings:
    """The thresholds and horizons to score: a flag, else the plant file's first rule of the kind, else the default."""
    default = AlarmSettings()

    def rule(kind: AlarmKind) -> AlarmRule | None:
        return next((r for r in fleet.alarms if r.kind is kind), None)

    def pick(flag: float | None, configured: float | None, fallback: float) -> float:
        return flag if flag is not None else configured if configured is not None else fallback

    out, late = rule(AlarmKind.STOCKOUT_RISK), rule(AlarmKind.LATE_ORDER_RISK)

    def threshold(r: AlarmRule | None) -> float | None:
        return r.threshold if r is not None else None

    def horizon_s(r: AlarmRule | None) -> float | None:
        return r.horizon_h * 3600.0 if r is not None and r.horizon_h is not None else None

    return AlarmSettings(
        stockout_threshold=pick(args.alarm_threshold_stockout, threshold(out), default.stockout_threshold),
        stockout_horizon_s=pick(args.alarm_horizon_stockout, horizon_s(out), default.stockout_horizon_s),
        late_threshold=pick(args.alarm_threshold_late, threshold(late), default.late_threshold),
        late_horizon_s=pick(args.alarm_horizon_late, horizon_s(late), default.late_horizon_s))


def _ci(x: float, lo: float, hi: float) -> str:
    return "-" if math.isnan(x) else f"{x * 100:.0f}% ({lo * 100:.0f}-{hi * 100:.0f})"


def _alarm_table(summary: AlarmSummary) -> str:
    """The predictive alarms' backtest as text: each rule at its threshold, then precision / recall by threshold."""
    st = summary.settings
    horizons = {"stockout_risk": st.stockout_horizon_s, "late_order_risk": st.late_horizon_s}
    censored = dict(summary.censored)
    lines = [f"{'predictive alarm':<18}{'p >':>5}{'horizon':>8}{'cases':>7}{'happened':>9}{'raised':>7}"
             f"{'TP':>5}{'FP':>5}{'FN':>5}{'precision (95% CI)':>20}{'recall (95% CI)':>17}{'caught':>9}"
             f"{'lead P50':>9}{'Brier':>7}{'naive':>7}{'skill':>7}"]
    for s in summary.scores:
        lead = "-" if math.isnan(s.lead_median_h) else f"{s.lead_median_h:.1f} h"
        lines.append(f"{s.kind:<18}{s.threshold:>5.2f}{horizons[s.kind] / 3600:>7g}h{s.observations:>7}"
                     f"{s.positives:>9}{s.raised:>7}{s.tp:>5}{s.fp:>5}{s.fn:>5}"
                     f"{_ci(s.precision, s.precision_low, s.precision_high):>20}"
                     f"{_ci(s.recall, s.recall_low, s.recall_high):>17}{f'{s.events_caught}/{s.events}':>9}"
                     f"{lead:>9}{_num(s.brier):>7}{_num(s.brier_naive):>7}{_num(s.brier_skill):>7}")
    lines.append("(cases: candidates x origins with a known outcome; left out (out at the origin, or past the end of "
                 "the history): "
                 + ", ".join(f"{k} {n}" for k, n in censored.items())
                 + "; caught: events raised before they happened; lead: from the first origin raising it to "
                   "the stockout or the due time; naive: Brier score of the base rate)")
    lines.append(f"{'by threshold':<18}{'p >':>5}{'raised':>8}{'TP':>5}{'precision':>11}{'recall':>8}"
                 f"{'lead P50':>10}")
    for s in summary.table:
        lead = "-" if math.isnan(s.lead_median_h) else f"{s.lead_median_h:.1f} h"
        lines.append(f"{s.kind:<18}{s.threshold:>5.2f}{s.raised:>8}{s.tp:>5}{_pct(s.precision):>11}"
                     f"{_pct(s.recall):>8}{lead:>10}")
    return "\n".join(lines)
