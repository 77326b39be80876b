"""Live health on the dashboard: each machine's failure risk, refreshed on a thread of its own.

:class:`HealthService` holds a :class:`twin.health.monitor.HealthMonitor` (the failure-risk model,
refitted on the monitor's schedule, every 6 h) and scores every machine every ``every_s`` (60 s) on
a reader of its own: the ``days`` of history before now are read, the model refitted when due, each
machine scored (P(failure within 8 h) and within the rest of the shift, with the 90 % interval and
the driving signals) and its risk trend kept. Pages read :meth:`HealthService.view`, the last
result (None before the first): nothing is read from the history, fitted or scored in a callback.

A machine's 8 h risk is *high* from ``high`` (30 % by default, ``twin dashboard --health-high``):
the machine page colours it, the attention list gets a line and the tile a small "risk 45 % / 8 h".
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from dashboard.schedule import every
from twin.errors import ConfigError
from twin.health.model import Risk
from twin.health.monitor import HealthMonitor
from twin.health.score import MachineHealth, RiskTrend, risk_trend
from twin.historian import HistorianReader
from twin.spec import FleetSpec
from twin.validation import out_of_range

__all__ = ["DEFAULT_HIGH", "HealthService", "HealthSettings", "HealthView", "fmt_interval", "fmt_risk",
           "is_high"]

log = logging.getLogger(__name__)

DEFAULT_HIGH = 0.30  # an 8 h failure risk from this is high


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthSettings:
    """How often the machines are scored, how much history is read, and from which risk on it is high."""

    enabled: bool = True
    every_s: float = 60.0  # score every machine this often
    days: float = 14.0  # of history read for each score (the covariates reach back this far)
    refit_every_s: float = 6 * 3600.0
    horizon_h: float = 8.0
    high: float = DEFAULT_HIGH

    def check(self) -> HealthSettings:
        """Self, or ConfigError naming every setting out of range."""
        problems = out_of_range((("every_s", self.every_s, 1.0, 86400.0), ("days", self.days, 0.5, 90.0),
                                 ("refit_every_s", self.refit_every_s, 60.0, 30 * 86400.0),
                                 ("horizon_h", self.horizon_h, 0.5, 168.0), ("high", self.high, 0.01, 0.99)),
                                "health.")
        if problems:
            raise ConfigError("dashboard health settings", problems)
        return self


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthView:
    """Every machine's health at ``at`` and its risk trend, keyed ``(site, machine)``."""

    at: datetime
    machines: dict[tuple[str, str], MachineHealth]
    trends: dict[tuple[str, str], RiskTrend] = field(default_factory=dict)
    high: float = DEFAULT_HIGH
    refitted_at: datetime | None = None
    duration_s: float = 0.0

    def machine(self, site: str, machine: str) -> MachineHealth | None:
        return self.machines.get((site, machine))

    def high_risk(self) -> list[MachineHealth]:
        """The machines whose risk within the horizon is high, highest first."""
        return sorted((h for h in self.machines.values() if is_high(h, self.high)), key=lambda h: -h.risk.p)


def is_high(h: MachineHealth, high: float = DEFAULT_HIGH) -> bool:
    """Whether a machine's risk within the horizon is high (a machine without history never is)."""
    return h.seen and h.risk.p >= high


def fmt_risk(p: float) -> str:
    """A probability as a person reads it: "45 %", "<1 %", ">99 %" (a no-break space: never split on a phone)."""
    if p < 0.005:
        return "<1\u00a0%"
    if p > 0.995:
        return ">99\u00a0%"
    return f"{100.0 * p:.0f}\u00a0%"


def fmt_interval(r: Risk) -> str:
    """A risk's 90 % interval, "90 %: 5–25 %", or why there is none worth showing ("too little history: ...")."""
    return r.vague if r.vague else f"90 %: {fmt_risk(r.low)}–{fmt_risk(r.high)}"


class HealthService:
    """Scores every machine on a daemon thread and keeps the last :class:`HealthView` for the pages.

    ``start()`` starts the thread, which calls :meth:`refresh` at once and then every ``every_s``;
    ``refresh()`` runs in the calling thread (tests do). ``view()`` only returns the last view (None
    before the first). The thread ends with ``stop()`` (``twin dashboard`` calls it before it closes
    the historian), or on its own once nothing refers to the service any more.
    """

    def __init__(self, *, fleet: FleetSpec, open_historian: Callable[[], HistorianReader],
                 clock: Callable[[], datetime], settings: HealthSettings | None = None) -> None:
        self.fleet = fleet
        self.settings = s = (settings or HealthSettings()).check()
        self.monitor = HealthMonitor(fleet, days=s.days, refit_every_s=s.refit_every_s, horizon_h=s.horizon_h)
        self._open = open_historian
        self._clock = clock
        self._view: HealthView | None = None
        self._refitted_at: datetime | None = None
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.note = ""  # the last refresh's error, if it failed
        self.refreshed = threading.Event()  # set after each view kept (tests wait on it)

    def view(self) -> HealthView | None:
        """The last view, at once (None before the first); never reads the history itself."""
        return self._view

    def refresh(self) -> HealthView:
        """Read the history, refit when due, score every machine now (in this thread) and keep the view."""
        with self._run_lock:
            now = self._clock()
            started = time.monotonic()
            reader = self._open()
            try:
                r = self.monitor.refresh(reader, now)
            except Exception as exc:
                self.note = f"the last health check ({now:%H:%M} UTC) failed: {exc}"
                raise
            finally:
                reader.close()
            if r.refitted:
                self._refitted_at = now
            trends: dict[tuple[str, str], RiskTrend] = {}
            if r.timeline is not None:
                for m in r.timeline.machines:
                    tm = r.model.templates.get(m.template)
                    if tm is not None and len(m.t):
                        trends[(m.site, m.machine)] = risk_trend(tm, m, horizon_h=self.settings.horizon_h)
            view = HealthView(at=now, machines={(h.site, h.machine): h for h in r.machines}, trends=trends,
                              high=self.settings.high, refitted_at=self._refitted_at,
                              duration_s=time.monotonic() - started)
            self._view = view
            self.note = ""
            self.refreshed.set()
            return view

    def start(self) -> None:
        """Start the scoring thread (when enabled); idempotent."""
        with self._lock:
            if not self.settings.enabled or (self._thread is not None and self._thread.is_alive()):
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=every, args=(weakref.ref(self), self._stop, 0.0, self.settings.every_s, HealthService.refresh,
                                    "scoring the machines' health failed"),
                name="dashboard-health", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """End the thread (a refresh under way finishes first, within ``timeout_s``)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout_s)

    close = stop
