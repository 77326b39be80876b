"""The collector's shift-end reports (``[reports] on_shift_end = true``): each shift's report once it has ended.

``ShiftEndReports`` is a collector source (``async run(stop)``): it sleeps until the next shift of
one of its sites has ended plus ``delay_s`` (its last readings committed by then), then writes that
shift's report as ``twin report`` does (``app.report.report`` + ``write_report``, without the
projection) into ``[reports] dir`` in a worker thread, on a historian reader of its own. A report
that cannot be made is logged as an error and the next shift is waited for; the PDF is left out
(said once) where WeasyPrint is not usable. Shifts that ended before the collector started are not
written (``twin report --shift`` writes any of them).

Usage::

    collector.add_source(ShiftEndReports(cfg.reports, cfg.fleet, open_reader))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from app.report import report, write_report
from connectors.config.reports import ReportsConfig
from twin.clock import Clock, utc_now
from twin.errors import HistorianError, TwinError
from twin.historian import HistorianReader
from twin.shift import ShiftReport, ShiftWindow, shift_windows
from twin.spec import FleetSpec

__all__ = ["ShiftEndReports"]

log = logging.getLogger(__name__)

_LOOKAHEAD = timedelta(days=8)


class ShiftEndReports:
    """Write each shift's report once it has ended; ``written`` lists the report folders so far."""

    def __init__(self, config: ReportsConfig, fleet: FleetSpec, open_historian: Callable[[], HistorianReader], *,
                 clock: Clock = utc_now) -> None:
        self.config = config
        self.fleet = fleet
        self._open = open_historian
        self._clock = clock
        self.sites = config.sites or tuple(s.id for s in fleet.sites)
        self.written: list[Path] = []
        self.failures = 0
        self._pdf = config.pdf
        self._done: set[tuple[str, datetime]] = set()
        self._since = clock()  # shifts that ended before the start are not this run's

    def due(self, now: datetime) -> list[tuple[str, ShiftWindow]]:
        """The shifts ended ``delay_s`` before ``now`` (and after the start) not written yet, oldest first."""
        delay = timedelta(seconds=self.config.delay_s)
        out = []
        for site in self.sites:
            spec = self.fleet.site(site)
            for w in shift_windows(spec, self._since - timedelta(days=2), now):
                if self._since < w.end and w.end + delay <= now and (site, w.start) not in self._done:
                    out.append((site, w))
        return sorted(out, key=lambda sw: (sw[1].end, sw[0]))

    def next_due(self, now: datetime) -> datetime | None:
        """When the next shift's report is due (its end plus ``delay_s``), None when no shift comes."""
        delay = timedelta(seconds=self.config.delay_s)
        ends = [w.end + delay for site in self.sites
                for w in shift_windows(self.fleet.site(site), now - timedelta(days=2), now + _LOOKAHEAD)
                if w.end + delay > now and (site, w.start) not in self._done]
        return min(ends) if ends else None

    def write_due(self, now: datetime) -> list[Path]:
        """Write every report due at ``now`` (blocking: a worker thread's job); returns their folders."""
        done: list[Path] = []
        for site, w in self.due(now):
            self._done.add((site, w.start))
            historian = self._open()
            try:
                rep = report(historian, self.fleet, site, w, projection=0)
            except TwinError as exc:
                self.failures += 1
                log.error("shift report of %s, %s shift ending %s, not written: %s", site, w.name, w.end.isoformat(),
                          exc)
                continue
            finally:
                historian.close()
            try:
                files = self._write(rep)
            except OSError as exc:
                self.failures += 1
                log.error("shift report of %s, %s shift, not written to %s: %s", site, w.name, self.config.dir, exc)
                continue
            done.append(files[0].parent)
            log.info("shift report of %s, %s shift ending %s: %s", site, w.name, w.end.isoformat(), files[0].parent)
        self.written.extend(done)
        return done

    def _write(self, rep: ShiftReport) -> list[Path]:
        self.config.dir.mkdir(parents=True, exist_ok=True)
        try:
            return write_report(rep, self.config.dir, pdf=self._pdf)
        except HistorianError as exc:  # WeasyPrint not usable: the page and the tables still
            if not self._pdf:
                raise
            log.error("shift reports: %s; writing them without the PDF from now on", exc)
            self._pdf = False
            return write_report(rep, self.config.dir, pdf=False)

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: sleep to the next report due, write it (off the event loop), repeat."""
        while not stop.is_set():
            now = self._clock()
            nxt = self.next_due(now)
            wait_s = 3600.0 if nxt is None else min(max((nxt - now).total_seconds(), 0.0), 3600.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait_s)
            if stop.is_set():
                return
            await asyncio.to_thread(self.write_due, self._clock())
