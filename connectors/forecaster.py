"""The forecaster role: compute the predictive alarms' risks on a schedule, from the history, for the collector.

:class:`Forecaster` runs in the collector's process as one of its sources: every ``every_s`` (first
``first_delay_s`` after the start) it computes a :class:`twin.forecast.Forecast` in a worker thread
(never on the event loop, never in a browser callback) and hands it to ``deliver`` (the collector's
``submit_forecast``) in the loop's thread; the collector folds it into the twin with
``twin.forecast.apply_forecast`` in its next batch, so raised and cleared predictive alarms are
events in the historian like any other.

One computation (:meth:`Forecaster.compute`), on a reader of its own:

* failure risk (``failure_risk`` rules): a ``twin.health.monitor.HealthMonitor`` (the model refitted
  every 6 h, scored every cycle) over ``health_days`` of history, scored once per rule horizon;
* stockout and late-order risk: the what-if orchestration without a scenario, ``twin.sim.whatif.prepare``
  (the recorded state now, ``calibrate_days`` of calibration) → ``fork`` over the longest rule horizon →
  ``replications`` Monte Carlo replications in this thread (``workers=1``), read per rule horizon.

A failed computation is logged (once per distinct error) and the schedule goes on; the alarms keep
their state until a forecast succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime

from connectors.config.forecaster import ForecasterConfig
from twin.clock import Clock, utc_now
from twin.forecast import Forecast, failure_risks, predictive_rules, projection_risks
from twin.historian import HistorianReader
from twin.spec import AlarmKind, FleetSpec
from twin.state import TwinState

__all__ = ["Forecaster"]

log = logging.getLogger(__name__)


class Forecaster:
    """Computes the fleet's predictive risks every ``config.every_s`` and delivers each :class:`Forecast`.

    ``open_reader`` gives a historian reader for one computation (closed after it, when it has
    ``close``); ``current`` the twin's state now (for the next deliveries named in stockout messages).
    """

    def __init__(self, fleet: FleetSpec, config: ForecasterConfig, open_reader: Callable[[], HistorianReader], *,
                 deliver: Callable[[Forecast], None] | None = None, current: Callable[[], TwinState] | None = None,
                 clock: Clock = utc_now) -> None:
        from twin.health.monitor import HealthMonitor

        self.fleet = fleet
        self.config = config
        self._open = open_reader
        self.deliver = deliver
        self._current = current
        self._clock = clock
        self.monitor = HealthMonitor(fleet, days=config.health_days)
        self.last: Forecast | None = None
        self.cycles = 0
        self._last_error = ""

    def compute(self, now: datetime | None = None) -> Forecast:
        """The risks of every predictive rule at ``now`` (default: the clock), in this thread."""
        now = now or self._clock()
        started, cpu = time.monotonic(), time.process_time()
        rules = predictive_rules(self.fleet)
        reader = self._open()
        try:
            risks = []
            failure = [r for r in rules if r.kind is AlarmKind.FAILURE_RISK]
            if failure:
                from twin.health.score import machine_health

                refresh = self.monitor.refresh(reader, now)
                assert refresh.timeline is not None
                scored = {h: machine_health(self.fleet, refresh.model, refresh.timeline, horizon_h=h)
                          for h in {r.horizon_h or 8.0 for r in failure}}
                risks += failure_risks(self.fleet, scored, now)
            projected = [r for r in rules if r.kind in (AlarmKind.STOCKOUT_RISK, AlarmKind.LATE_ORDER_RISK)]
            if projected:
                from twin.sim.build import fork
                from twin.sim.montecarlo import run as monte_carlo
                from twin.sim.whatif import prepare

                horizon_h = max(r.horizon_h or 24.0 for r in projected)
                inputs = prepare(self.fleet, reader, now, None, self.config.calibrate_days)
                base = fork(self.fleet, inputs.snapshot(), None, inputs.params, horizon_s=horizon_h * 3600.0)
                result = monte_carlo(base.data, replications=self.config.replications, seed=self.config.seed,
                                     workers=1, as_of=base.as_of, uncertainty=inputs.uncertainty)
                state = self._current() if self._current is not None else inputs.snapshot()
                risks += projection_risks(self.fleet, result.baseline, base.as_of, state)
        finally:
            close = getattr(reader, "close", None)
            if callable(close):
                close()
        covered = frozenset((str(r.id), str(s.id)) for r in rules for s in self.fleet.sites
                            if not r.sites or s.id in r.sites)
        forecast = Forecast(at=now, risks=tuple(risks), covered=covered, duration_s=time.monotonic() - started,
                            cpu_s=time.process_time() - cpu)
        self.last = forecast
        self.cycles += 1
        log.info("forecaster: %d risks of %d predictive rules in %.1f s (%.1f s CPU)", len(forecast.risks),
                 len(rules), forecast.duration_s, forecast.cpu_s)
        return forecast

    async def run(self, stop: asyncio.Event) -> None:
        """Forecast on the schedule until ``stop`` is set (a collector source)."""
        wait = self.config.first_delay_s
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)
            if stop.is_set():
                return
            wait = self.config.every_s
            try:
                forecast = await asyncio.to_thread(self.compute)
            except Exception as exc:  # keep the schedule: the alarms stay as they are until one succeeds
                if str(exc) != self._last_error:
                    log.exception("forecaster: the forecast failed")
                self._last_error = str(exc)
                continue
            self._last_error = ""
            if self.deliver is not None:
                self.deliver(forecast)
