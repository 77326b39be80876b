"""Model trust: how well the twin's bands matched what happened, scored in the dashboard's own service.

One job: keep the latest rolling backtest of the fleet (``twin.sim.rolling``) and turn it into what
the "Model trust" page shows and the "twin drift" alarms.

- :class:`TrustService` owns a daemon thread (like ``QueryService``'s refresher) that re-scores
  the last ``TrustSettings.days`` once every ``period_h`` (first run ``first_delay_s`` after
  ``start()``): forks every ``every_h`` over the window minus the horizon, each calibrated only from
  history before it. Pages read :meth:`TrustService.view`; nothing is computed in a callback or per
  browser tab. The historian is only read (a reader of its own, from ``open_historian``).
- :func:`trust_view` (pure) turns a :class:`TrustRun` into a site's :class:`TrustView`: P10-P90
  coverage of output and stock by horizon hour, the pooled PIT histogram with the flat count a
  calibrated model gives, CRPS and skill against the naive forecast per series, and the table of
  calibrated figures (from history, with their sample sizes, or the configuration's value).
- :func:`drift_findings` (pure) is the drift rule: output or stock coverage below ``DRIFT_COVERAGE``
  or skill below 0; :func:`drift_step` its lifecycle (raised, updated, cleared when the next score is
  back in range). The alarms live in this process only (``DriftAlarms``): ``QueryService`` adds them to
  a site's alarms through its ``derived_alarms`` hook. They are never written to the historian.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from connectors.executors import executor_for
from dashboard.viewmodels import AlarmRow
from dashboard.views import alarm_row, newest_sample
from twin.calibrate import Calibration, Source
from twin.errors import ConfigError, Problem
from twin.historian import HistorianReader
from twin.sim.backtest import PIT_BINS, RollingSummary, SeriesSummary
from twin.spec import AlarmId, FleetSpec, Priority, SiteId, SiteSpec
from twin.state import AlarmState
from twin.validation import out_of_range

__all__ = [
    "COVERAGE_HIGH",
    "COVERAGE_LOW",
    "COVERAGE_TARGET",
    "DRIFT_COVERAGE",
    "DRIFT_RULE",
    "DriftAlarms",
    "ParamRow",
    "ScoreRow",
    "TrustRun",
    "TrustService",
    "TrustSettings",
    "TrustView",
    "data_end",
    "drift_findings",
    "drift_message",
    "drift_step",
    "trust_view",
]

log = logging.getLogger(__name__)

COVERAGE_TARGET = 0.80  # P10..P90 holds 80 % of outcomes when the bands are calibrated
COVERAGE_LOW, COVERAGE_HIGH = 0.73, 0.87  # outside: amber on the page (bands too wide or too narrow)
DRIFT_COVERAGE = 0.60  # below: the "twin drift" alarm
DRIFT_SKILL = 0.0  # below: worse than "the same hours a week earlier"
DRIFT_RULE = "twin_drift"
DRIFT_ASSET = "model"
OUTPUT = "cumulative_units"
STOCK = "stock"


# --------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True, slots=True, kw_only=True)
class TrustSettings:
    """How the dashboard re-scores the twin: window, origins, horizon, replications, schedule."""

    enabled: bool = True
    days: float = 7.0  # the window scored: the last ``days``
    every_h: float = 6.0  # one origin every ``every_h`` over the window minus the horizon
    horizon_h: float = 24.0
    replications: int = 20
    calibrate_days: float = 7.0  # each origin calibrates from this much history before it
    period_h: float = 24.0  # re-score this often
    first_delay_s: float = 60.0  # the first score this long after start
    workers: int = 0  # 0: replications in the scheduler's thread; n: a pool of n processes per run
    seed: int = 1
    second_order: bool = True
    bin_s: float = 3600.0

    def check(self) -> TrustSettings:
        """Self, or ConfigError naming every setting out of range."""
        problems = out_of_range((("days", self.days, 0.01, 60.0), ("every_h", self.every_h, 0.1, 24 * 7.0),
                                 ("horizon_h", self.horizon_h, 0.1, 24 * 14.0),
                                 ("replications", self.replications, 1, 1000),
                                 ("calibrate_days", self.calibrate_days, 0.0, 60.0),
                                 ("period_h", self.period_h, 0.01, 24 * 31.0),
                                 ("first_delay_s", self.first_delay_s, 0.0, 86400.0),
                                 ("workers", self.workers, 0, 64), ("bin_s", self.bin_s, 60.0, 86400.0)), "trust.")
        if self.horizon_h >= self.days * 24.0:
            problems.append(Problem(path="trust.horizon_h", message="must be shorter than the window (trust.days)",
                                    got=self.horizon_h))
        if problems:
            raise ConfigError("dashboard trust settings", problems)
        return self

    @classmethod
    def parse(cls, text: str | None) -> TrustSettings:
        """Settings from ``twin dashboard --trust``: "" (defaults), "off", or ``key=value`` pairs by commas.

        >>> TrustSettings.parse("replications=10, every_h=12").replications
        10
        >>> TrustSettings.parse("off").enabled
        False
        """
        text = (text or "").strip()
        if text.lower() in ("off", "no", "false", "0"):
            return cls(enabled=False)
        values: dict[str, Any] = {}
        problems = []
        kinds = {"enabled": bool, "replications": int, "workers": int, "seed": int, "second_order": bool}
        names = set(cls.__dataclass_fields__)
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, raw = (x.strip() for x in part.partition("="))
            if not sep or key not in names:
                problems.append(Problem(path=f"trust.{key[:40]}", message="unknown setting; known: "
                                        + ", ".join(sorted(names)), got=part[:80]))
                continue
            try:
                kind = kinds.get(key, float)
                values[key] = raw.lower() in ("1", "true", "yes", "on") if kind is bool else kind(raw)
            except ValueError:
                problems.append(Problem(path=f"trust.{key}", message="not a number", got=raw[:80]))
        if problems:
            raise ConfigError("--trust", problems)
        return cls(**values).check()

    def origins(self, now: datetime) -> list[datetime]:
        """Origins of a score made at ``now``: every ``every_h`` from ``now - days`` to ``now - horizon``.

        ``now`` is taken to the hour first, so scores made within the same hour fork at the same times.
        """
        from twin.sim.rolling import origins

        end = now.replace(minute=0, second=0, microsecond=0)
        return origins(end - timedelta(days=self.days), end - timedelta(hours=self.horizon_h), self.every_h * 3600.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustRun:
    """One score of the fleet: when, over which origins, the pooled summary and the latest calibration."""

    computed_at: datetime
    origins: tuple[datetime, ...]
    horizon_h: float
    every_h: float
    days: float
    replications: int
    summary: RollingSummary
    calibration: Calibration | None = None  # the calibration of the latest origin
    duration_s: float = 0.0
    data_end: datetime | None = None  # the newest sample in history when scored (the window ends there)


# --------------------------------------------------------------------------------------------- view-models
@dataclass(frozen=True, slots=True, kw_only=True)
class ScoreRow:
    """One series of a site: its coverage, CRPS, P50 error against the naive forecast's, and skill."""

    metric: str  # "cumulative_units" | "stock"
    label: str  # "output" | the SKU
    unit: str
    coverage: float
    crps: float
    error: float  # P50 error: of the daily output (output), at the bin ends (stock)
    naive_error: float
    skill: float
    points: int

    @property
    def coverage_off(self) -> bool:
        return _off(self.coverage)

    @property
    def skill_negative(self) -> bool:
        return not math.isnan(self.skill) and self.skill < DRIFT_SKILL


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamRow:
    """One calibrated figure: from history (with its sample size) or the configuration's value."""

    name: str
    subject: str
    value: float
    unit: str
    samples: int
    from_history: bool
    default: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustView:
    """Everything the model-trust panel shows for one site (``status`` says when there is nothing yet)."""

    site: str
    status: str  # "ok" | "pending" (no score yet) | "off" (disabled) | "no data" (no series of the site)
    computed_at: datetime | None = None
    first_origin: datetime | None = None
    last_origin: datetime | None = None
    origins: int = 0
    every_h: float = 0.0
    horizon_h: float = 0.0
    days: float = 0.0
    replications: int = 0
    output_coverage: float = math.nan
    stock_coverage: float = math.nan
    output_by_hour: tuple[float, ...] = ()
    stock_by_hour: tuple[float, ...] = ()
    pit_histogram: tuple[int, ...] = ()
    output_skill: float = math.nan
    stock_skill: float = math.nan
    output_crps: float = math.nan
    rows: tuple[ScoreRow, ...] = ()
    params: tuple[ParamRow, ...] = ()
    calibrated_from: datetime | None = None
    calibrated_to: datetime | None = None
    findings: tuple[str, ...] = ()  # the drift rule's findings (empty: no drift)
    data_end: datetime | None = None  # the window ended at the history's newest sample, before computed_at
    note: str = ""  # e.g. the last scoring error, or "scoring now"

    @property
    def pit_total(self) -> int:
        return sum(self.pit_histogram)

    @property
    def pit_flat(self) -> float:
        """The count per bin of a calibrated model: the PIT values spread evenly over the bins."""
        return self.pit_total / len(self.pit_histogram) if self.pit_histogram else math.nan


def _off(coverage: float) -> bool:
    return not math.isnan(coverage) and not COVERAGE_LOW <= coverage <= COVERAGE_HIGH


def _skill(err: float, naive: float) -> float:
    if math.isnan(err) or math.isnan(naive) or naive <= 0.0:
        return math.nan
    return 1.0 - err / naive


def _nanmean(xs: Sequence[float]) -> float:
    ok = [x for x in xs if not math.isnan(x)]
    return sum(ok) / len(ok) if ok else math.nan


def _by_hour(series: Sequence[SeriesSummary]) -> tuple[float, ...]:
    """Coverage at each horizon hour, the series' shares averaged (each has one point per origin and hour)."""
    n = max((len(s.coverage_by_hour) for s in series), default=0)
    return tuple(_nanmean([s.coverage_by_hour[h] for s in series if h < len(s.coverage_by_hour)]) for h in range(n))


def _pooled_coverage(series: Sequence[SeriesSummary]) -> float:
    points = sum(s.points for s in series if not math.isnan(s.coverage))
    if not points:
        return math.nan
    return sum(s.coverage * s.points for s in series if not math.isnan(s.coverage)) / points


def trust_view(run: TrustRun | None, site: SiteSpec, *, enabled: bool = True, note: str = "") -> TrustView:
    """The panel of ``site`` from a fleet score (pure).

    Output is the series ``cumulative_units`` of the site; stock pools the site's ``stock`` series
    (coverage weighted by their points, coverage by hour averaged over the items, skill as the
    ratio of the mean errors like ``twin.sim.backtest.rolling_summary``). The PIT histogram sums
    output's and every item's counts.
    """
    sid = str(site.id)
    if run is None:
        return TrustView(site=sid, status="pending" if enabled else "off", note=note)
    output = [s for s in run.summary.series if s.metric == OUTPUT and s.key == sid]
    stock = [s for s in run.summary.series if s.metric == STOCK and s.key.startswith(sid + "/")]
    base: dict[str, Any] = {
            "site": sid, "computed_at": run.computed_at, "first_origin": run.origins[0] if run.origins else None,
            "last_origin": run.origins[-1] if run.origins else None, "origins": len(run.origins),
            "every_h": run.every_h, "horizon_h": run.horizon_h, "days": run.days,
            "replications": run.replications, "note": note,
            "data_end": run.data_end if run.data_end is not None and run.data_end < run.computed_at - timedelta(hours=1)
            else None}
    params = _param_rows(run.calibration, sid)
    cal = run.calibration
    calib: dict[str, Any] = {"calibrated_from": cal.t0 if cal else None, "calibrated_to": cal.t1 if cal else None}
    if not output and not stock:
        return TrustView(status="no data", params=params, **calib, **base)
    rows = []
    for s in output:
        rows.append(ScoreRow(metric=OUTPUT, label="output", unit="units", coverage=s.coverage, crps=s.crps,
                             error=s.daily_error, naive_error=s.naive_daily_error, skill=s.skill, points=s.points))
    for s in stock:
        sku = s.key.split("/", 1)[1]
        item = site.item(sku)
        rows.append(ScoreRow(metric=STOCK, label=sku, unit=item.unit if item else "", coverage=s.coverage,
                             crps=s.crps, error=s.median_abs_error, naive_error=s.naive_abs_error, skill=s.skill,
                             points=s.points))
    pit = [0] * PIT_BINS
    for s in [*output, *stock]:
        for i, c in enumerate(s.pit_histogram[:PIT_BINS]):
            pit[i] += c
    view = TrustView(
        status="ok", output_coverage=_pooled_coverage(output), stock_coverage=_pooled_coverage(stock),
        output_by_hour=_by_hour(output), stock_by_hour=_by_hour(stock),
        pit_histogram=tuple(pit) if any(pit) else (),
        output_skill=output[0].skill if output else math.nan,
        stock_skill=_skill(_nanmean([s.median_abs_error for s in stock]), _nanmean([s.naive_abs_error for s in stock])),
        output_crps=output[0].crps if output else math.nan, rows=tuple(rows), params=params, **calib, **base)
    return replace(view, findings=tuple(drift_findings(view)))


def _param_rows(calibration: Calibration | None, site: str) -> tuple[ParamRow, ...]:
    if calibration is None:
        return ()
    mine = [e for e in calibration.estimates if e.subject == site or e.subject.startswith(site + "/")]
    # figures that fell back to the configuration first: they are what the calibration could not learn
    mine.sort(key=lambda e: (e.source is Source.HISTORY, e.name, e.subject))
    return tuple(ParamRow(name=e.name, subject=e.subject.removeprefix(site + "/"), value=e.value, unit=e.unit,
                          samples=e.samples, from_history=e.source is Source.HISTORY, default=e.default)
                 for e in mine)


# --------------------------------------------------------------------------------------------- drift rule
def _days_text(days: float) -> str:
    return f"{days:g} day" + ("" if days == 1 else "s")


def _pct_below(x: float, limit: float) -> str:
    """``x`` in whole percent, or to 0.1 % (rounded down) when whole percent would not read below ``limit``.

    >>> _pct_below(0.52, 0.6), _pct_below(0.595, 0.6), _pct_below(0.5999, 0.6)
    ('52', '59.5', '59.9')
    """
    whole = f"{x * 100:.0f}"
    return whole if float(whole) < limit * 100 else f"{math.floor(x * 1000) / 10:.1f}"


def drift_findings(view: TrustView) -> list[str]:
    """What is out of range, in words: coverage below ``DRIFT_COVERAGE`` or skill below 0 (pure).

    >>> v = TrustView(site="s", status="ok", days=7.0, output_coverage=0.52, stock_coverage=0.8)
    >>> drift_findings(v)
    ['output P10–P90 coverage 52 % over the last 7 days (target 80 %)']
    """
    if view.status != "ok":
        return []
    span = _days_text(view.days)
    out = []
    for what, cov in (("output", view.output_coverage), ("stock", view.stock_coverage)):
        if not math.isnan(cov) and cov < DRIFT_COVERAGE:
            out.append(f"{what} P10–P90 coverage {_pct_below(cov, DRIFT_COVERAGE)} % over the last {span} "
                       f"(target {COVERAGE_TARGET * 100:.0f} %)")
    for what, skill in (("output", view.output_skill), ("stock", view.stock_skill)):
        if not math.isnan(skill) and skill < DRIFT_SKILL:
            out.append(f"{what} skill against naive {skill:+.2f} over the last {span} (target above 0)")
    return out


def drift_message(findings: Sequence[str]) -> str:
    return "twin drift: " + "; ".join(findings)


def drift_step(active: AlarmState | None, site: str, findings: Sequence[str],
               at: datetime) -> tuple[AlarmState | None, AlarmState | None]:
    """One score's effect on a site's drift alarm: (the alarm now, or None; the instance cleared, or None).

    Findings and no alarm: raised (MEDIUM) at ``at``. Findings and an alarm: the same instance, its
    message updated. No findings and an alarm: cleared at ``at`` (returned as the second item).
    """
    if findings:
        message = drift_message(findings)
        if active is None:
            return AlarmState(rule=AlarmId(DRIFT_RULE), site=SiteId(site), asset=DRIFT_ASSET,
                              priority=Priority.MEDIUM, message=message, active=True, raised_at=at), None
        return replace(active, message=message), None
    if active is None:
        return None, None
    return None, replace(active, active=False, cleared_at=at)


@dataclass(slots=True)
class DriftAlarms:
    """The drift alarms of every site, in this process: the active one and the cleared ones (newest last).

    It is a ``dashboard.queries.DerivedAlarms`` (``current_alarms``, ``past_alarms``).
    """

    keep: int = 50  # cleared instances kept per site for the journal
    _active: dict[str, AlarmState] = field(default_factory=dict)
    _cleared: dict[str, list[AlarmState]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def update(self, site: str, findings: Sequence[str], at: datetime) -> AlarmState | None:
        """Apply one score of ``site``; returns its alarm now (None: no drift)."""
        with self._lock:
            now, cleared = drift_step(self._active.get(site), site, findings, at)
            if now is None:
                self._active.pop(site, None)
            else:
                if site not in self._active:
                    log.warning("%s at %s", now.message, site)
                self._active[site] = now
            if cleared is not None:
                log.info("twin drift at %s cleared", site)
                past = self._cleared.setdefault(site, [])
                past.append(cleared)
                del past[:-self.keep]
            return now

    def current_alarms(self, site: str) -> list[AlarmState]:
        """The site's active drift alarm (at most one), as the historian's current alarms are given."""
        with self._lock:
            a = self._active.get(site)
        return [a] if a is not None else []

    def past_alarms(self, site: str) -> list[AlarmRow]:
        """The site's cleared drift alarm instances (for the journal)."""
        with self._lock:
            return [alarm_row(a) for a in self._cleared.get(site, ())]


# --------------------------------------------------------------------------------------------- the service
class TrustService:
    """Scores the twin in the background once every ``settings.period_h`` and keeps the latest result.

    ``open_historian`` gives this service a reader of its own (closed after each run); ``clock``
    the current UTC time. ``run_now()`` scores at once in the calling thread (the scheduler calls
    it; so do tests); ``start()``/``stop()`` run the scheduler thread. ``current_alarms`` and
    ``past_alarms`` are the hook ``QueryService.derived_alarms`` reads.
    """

    def __init__(self, *, fleet: FleetSpec, open_historian: Callable[[], HistorianReader],
                 clock: Callable[[], datetime], settings: TrustSettings | None = None) -> None:
        self.fleet = fleet
        self.settings = (settings or TrustSettings()).check()
        self._open = open_historian
        self._clock = clock
        self.alarms = DriftAlarms()
        self._latest: TrustRun | None = None
        self._views: dict[str, tuple[TrustRun | None, str, TrustView]] = {}
        self._note = ""
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.scored = threading.Event()  # set after each score kept (tests and a health check wait on it)

    # -- reading
    def latest(self) -> TrustRun | None:
        return self._latest

    def view(self, site: str) -> TrustView:
        """The site's panel from the latest score (the same object until the next score)."""
        spec = self.fleet.site(site)
        run, note = self._latest, self._note
        hit = self._views.get(site)
        if hit is not None and hit[0] is run and hit[1] == note:
            return hit[2]
        view = trust_view(run, spec, enabled=self.settings.enabled, note=note)
        with self._lock:
            self._views[site] = (run, note, view)
        return view

    def current_alarms(self, site: str) -> list[AlarmState]:
        return self.alarms.current_alarms(site)

    def past_alarms(self, site: str) -> list[AlarmRow]:
        return self.alarms.past_alarms(site)

    # -- scoring
    def run_now(self, should_stop: Callable[[], bool] | None = None) -> TrustRun:
        """Score the last ``days`` now (in this thread), keep it, and update the drift alarms."""
        from twin.sim.rolling import rolling_run

        s = self.settings
        with self._run_lock:
            now = self._clock()
            self._note = f"scoring since {now:%Y-%m-%d %H:%M} UTC"
            started = time.monotonic()
            historian = self._open()
            try:
                # the window ends at the newest sample: hours after the history stopped (a collector down)
                # would be scored as "nothing happened" and read as drift
                end = data_end(historian, self.fleet, now)
                at = s.origins(end)
                with executor_for(None, s.workers) as ex:
                    run = rolling_run(self.fleet, historian, at, s.horizon_h * 3600.0, bin_s=s.bin_s,
                                      replications=s.replications, seed=s.seed, executor=ex,
                                      workers=max(1, s.workers), calibrate_days=s.calibrate_days,
                                      second_order=s.second_order, should_stop=should_stop)
            except Exception as exc:
                self._note = f"the last score ({now:%Y-%m-%d %H:%M} UTC) failed: {exc}"
                raise
            finally:
                historian.close()
            if should_stop is not None and should_stop():
                self._note = ""
                log.info("model trust score stopped: the partial score is not kept")
                return self._latest or TrustRun(computed_at=now, origins=(), horizon_h=s.horizon_h,
                                                every_h=s.every_h, days=s.days, replications=s.replications,
                                                summary=run.summary)
            latest_cal = next((c for c in reversed(run.calibrations) if c is not None), None)
            result = TrustRun(computed_at=now, origins=run.origins, horizon_h=s.horizon_h, every_h=s.every_h,
                              days=s.days, replications=s.replications, summary=run.summary,
                              calibration=latest_cal, duration_s=time.monotonic() - started, data_end=end)
            self._latest = result
            self._note = ""
            for site in self.fleet.sites:
                self.alarms.update(str(site.id), self.view(str(site.id)).findings, now)
            log.info("model trust scored: %d origins in %.0f s", len(run.origins), result.duration_s)
            self.scored.set()
            return result

    def start(self) -> None:
        """Start the scheduler thread (idempotent; nothing when disabled)."""
        if not self.settings.enabled or (self._thread is not None and self._thread.is_alive()):
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="dashboard-trust-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    close = stop

    def _loop(self) -> None:
        wait = self.settings.first_delay_s
        while not self._stop.wait(wait):
            try:
                self.run_now(should_stop=self._stop.is_set)
            except Exception:  # keep the schedule; the page says the last score failed
                log.exception("scoring the twin failed")
            wait = self.settings.period_h * 3600.0


def data_end(historian: HistorianReader, fleet: FleetSpec, now: datetime) -> datetime:
    """The newest GOOD sample of any site at ``now`` (``now`` when it is newer or there is none)."""
    newest = [newest_sample(historian.state_at(str(site.id), now)) for site in fleet.sites]
    found = [t for t in newest if t is not None]
    return min(now, max(found)) if found else now

