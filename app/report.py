"""``twin report CONFIG --site S --shift START|last [--out DIR] [--no-pdf]``: a shift's report.

Reads the shift's history from the configured historian (snapshots at its start and end, its
events, fault codes and stock sampled, upstream queues at each idle stop), builds the report with
``twin.shift.build_report`` and writes, in ``DIR/<site>_<local date>_<shift>/``: ``report.html``
(printable, charts as inline SVG), ``report.pdf`` (WeasyPrint; ``--no-pdf`` skips it) and each of
its tables as CSV. START is the ISO-8601 start of one of the site's shifts (without offset: UTC);
``last`` is the last shift of the site that has ended.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.report_render import render_html, tables
from twin.downtime import Interval, spans_from_events, upstream_queue_empty
from twin.errors import HistorianError
from twin.historian import HistorianReader, SeriesKey
from twin.shift import NextShift, ShiftInputs, ShiftReport, ShiftWindow, build_report, plan_units, shift_windows
from twin.spec import FleetSpec, MachineStatus, SignalKind, SiteSpec
from twin.state import Event, EventKind, SiteState

__all__ = ["SHELVING_LOOKBACK", "DashboardReports", "gather", "pdf_bytes", "project_next", "register", "report",
           "report_folder", "run", "shift_window", "write_report"]

MAX_QUEUE_LOOKUPS = 400  # snapshots read to tell whether an idle machine's upstream queue was empty
_LOOKBACK = timedelta(hours=6)  # fault codes and stock sampled this long before the shift (their value at its start)
SHELVING_LOOKBACK = timedelta(days=2)  # alarms shelved or out of service this long before a shift are known in it
_SHELVING_KINDS = (EventKind.ALARM_SHELVING, EventKind.ALARM_RAISED, EventKind.ALARM_CLEARED)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="write a shift's report: HTML, PDF and CSV tables")
    p.add_argument("config", help="plant configuration file (TOML)")
    p.add_argument("--site", required=True, help="site id")
    p.add_argument("--shift", required=True, help="ISO-8601 start of a shift (without offset: UTC), or 'last'")
    p.add_argument("--out", default="reports", help="folder the report's folder is written in (default: reports)")
    p.add_argument("--no-pdf", action="store_true", help="write the HTML page and the CSV tables only")
    p.add_argument("--projection", type=int, default=20, metavar="N",
                   help="replications of the twin's projection of the next shift (default 20; 0: none)")
    p.add_argument("--seed", type=int, default=1, help="seed of the projection (default 1)")
    p.set_defaults(func=run)


def shift_window(site: SiteSpec, shift: str, now: datetime) -> ShiftWindow:
    """The shift ``shift`` names: the one starting at that time, or ``last``, the last one ended by ``now``.

    Raises ``ValueError`` with what the site's shifts are when none matches.
    """
    from connectors.export import parse_time

    if shift.strip().lower() == "last":
        ended = [w for w in shift_windows(site, now - timedelta(days=8), now) if w.end <= now]
        if not ended:
            raise ValueError(f"site {site.id!r} has no shift that ended in the 8 days before {now.isoformat()}")
        return ended[-1]
    try:
        start = parse_time(shift)
    except ValueError:
        raise ValueError(f"--shift: not an ISO-8601 time nor 'last' (got {shift!r})") from None
    for w in shift_windows(site, start, start + timedelta(microseconds=1)):
        return w
    that_day = shift_windows(site, start - timedelta(hours=12), start + timedelta(hours=12))
    starts = ", ".join(f"{w.name} {w.start.isoformat()}" for w in that_day) or "none"
    raise ValueError(f"--shift: no shift of site {site.id!r} starts at {start.isoformat()} "
                     f"(shifts starting within 12 h of it: {starts})")


def _samples(historian: HistorianReader, site: str, asset: str, signal: str, t0: datetime,
             t1: datetime) -> list[tuple[datetime, float]]:
    result = historian.series([SeriesKey(site=site, asset=asset, signal=signal)], t0, t1, 1_000_000)
    return [(p.ts, p.value) for r in result for p in r.points]


def _queue_empty(historian: HistorianReader, fleet: FleetSpec, site: SiteSpec, window: ShiftWindow,
                 before: SiteState, events: Sequence[Event]) -> dict[str, list[Interval]]:
    """Per machine, the idle stops in the shift at whose start the twin knew its upstream queue was empty.

    The open orders at a stop's start come from the snapshot then (one ``state_at`` per distinct
    start, at most ``MAX_QUEUE_LOOKUPS``; beyond that a stop is left to the other rules).
    """
    out: dict[str, list[Interval]] = {}
    snapshots: dict[datetime, SiteState | None] = {}
    for m in site.machines:
        ms = before.machines.get(m.id)
        spans = spans_from_events(m.id, ms.status if ms is not None else MachineStatus.UNKNOWN, events,
                                  window.start, window.end)
        for s in spans:
            if s.status not in (MachineStatus.IDLE, MachineStatus.OFF):
                continue
            if s.start not in snapshots:
                if len(snapshots) >= MAX_QUEUE_LOOKUPS:
                    continue
                snapshots[s.start] = historian.state_at(str(site.id), s.start)
            state = snapshots[s.start]
            if state is not None and upstream_queue_empty(site, fleet.products, m, state.orders):
                out.setdefault(m.id, []).append((s.start, s.end))
    return out


def gather(historian: HistorianReader, fleet: FleetSpec, site_id: str, window: ShiftWindow) -> ShiftInputs:
    """What the historian holds about ``window`` at ``site_id``, as ``build_report`` takes it."""
    site = fleet.site(site_id)
    before = historian.state_at(site_id, window.start)
    after = historian.state_at(site_id, window.end)
    if before is None or after is None:
        raise HistorianError(f"no history of site {site_id!r} at the start of shift {window.name} "
                             f"({window.start.isoformat()}); nothing to report")
    events = tuple(e for e in historian.events(site_id, window.start, window.end) if e.ts < window.end)
    t_lo = window.start - _LOOKBACK
    codes = {}
    for m in site.machines:
        sig = m.template.signal_of_kind(SignalKind.FAULT_CODE)
        if sig is not None:
            codes[str(m.id)] = _samples(historian, site_id, m.id, sig.name, t_lo, window.end)
    stock = {str(i.sku): _samples(historian, site_id, i.sku, "on_hand", t_lo, window.end) for i in site.inventory}
    earlier = tuple(e for e in historian.events(site_id, window.start - SHELVING_LOOKBACK, window.start)
                    if e.kind in _SHELVING_KINDS and e.ts < window.start)
    return ShiftInputs(fleet=fleet, site=site, window=window, before=before, after=after, events=events,
                       fault_codes=codes, on_hand=stock, earlier=earlier,
                       queue_empty=_queue_empty(historian, fleet, site, window, before, events))


def report(historian: HistorianReader, fleet: FleetSpec, site_id: str, window: ShiftWindow, *,
           projection: int = 0, seed: int = 1) -> ShiftReport:
    """The report of ``window`` at ``site_id``; ``projection`` > 0: with that many replications of the next shift."""
    rep = build_report(gather(historian, fleet, site_id, window))
    if projection > 0:
        rep = replace(rep, next_shift=project_next(historian, fleet, site_id, window, replications=projection,
                                                   seed=seed))
    return rep


def project_next(historian: HistorianReader, fleet: FleetSpec, site_id: str, window: ShiftWindow, *,
                 replications: int, seed: int = 1, calibrate_days: float = 7.0) -> NextShift | None:
    """The twin's projection of the site's next shift: the what-if baseline forked at ``window``'s end.

    Calibrated from the ``calibrate_days`` of history before the fork (``twin.sim.whatif.prepare``),
    second order; None when the site has no shift in the 8 days after.
    """
    import numpy as np

    from twin.sim.build import fork
    from twin.sim.montecarlo import run as monte_carlo
    from twin.sim.whatif import prepare

    site = fleet.site(site_id)
    coming = shift_windows(site, window.end, window.end + timedelta(days=8))
    if not coming:
        return None
    nxt = coming[0]
    inputs = prepare(fleet, historian, window.end, sites=[site_id], calibrate_days=calibrate_days)
    offset_s, horizon_s = (nxt.start - window.end).total_seconds(), (nxt.end - window.end).total_seconds()
    bin_s = 600.0 if offset_s % 600 == 0 and horizon_s % 600 == 0 else 60.0
    base = fork(fleet, inputs.snapshot(), None, inputs.params, horizon_s=horizon_s, bin_s=bin_s, sites=[site_id])
    result = monte_carlo(base.data, None, replications=replications, seed=seed, workers=1, as_of=base.as_of,
                         uncertainty=inputs.uncertainty, second_order=inputs.calibration is not None)
    cum = result.samples("cumulative_units", site_id)  # replications x bins; bin i ends at (i + 1) x bin_s
    i0, i1 = round(offset_s / bin_s) - 1, round(horizon_s / bin_s) - 1
    units = cum[:, i1] - (cum[:, i0] if i0 >= 0 else 0.0)
    p10, p50, p90 = (float(x) for x in np.quantile(units, [0.1, 0.5, 0.9]))
    proj = result.projection()
    stockouts = tuple((s.sku, s.probability, s.low, s.high) for s in proj.stockouts
                      if s.site == site_id and s.probability > 0)
    at_risk = tuple(sorted(((o.order, o.probability) for o in proj.orders if o.site == site_id
                            and o.probability < 0.8), key=lambda x: (x[1], x[0])))
    return NextShift(window=nxt, replications=result.replications, calibrated=inputs.calibration is not None,
                     units_p10=p10, units_p50=p50, units_p90=p90, plan=plan_units(site, nxt), stockouts=stockouts,
                     orders_at_risk=at_risk)


def _csv(rows: Sequence[Sequence[object]]) -> str:
    from connectors.export import spreadsheet_safe

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerows([spreadsheet_safe(c) for c in row] for row in rows)
    return buf.getvalue()


def report_folder(rep: ShiftReport) -> str:
    """``<site>_<local date>_<shift>``: the name of the report's folder."""
    from zoneinfo import ZoneInfo

    local = rep.window.start.astimezone(ZoneInfo(rep.site.timezone))
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in rep.window.name)
    return f"{rep.site.id}_{local.strftime('%Y-%m-%d')}_{name}"


def write_report(rep: ShiftReport, out: Path, *, pdf: bool = True) -> list[Path]:
    """Write the report's files in ``out/<report_folder>``; returns them (report.html first)."""
    folder = out / report_folder(rep)
    folder.mkdir(parents=True, exist_ok=True)
    html = render_html(rep)
    written = [folder / "report.html"]
    written[0].write_text(html, encoding="utf-8")
    for name, rows in tables(rep).items():
        path = folder / f"{name}.csv"
        path.write_text(_csv(rows), encoding="utf-8")
        written.append(path)
    if pdf:
        written.append(_pdf(html, folder / "report.pdf"))
    return written


def _pdf(html: str, path: Path) -> Path:
    """The page printed to PDF by WeasyPrint (the only module that imports it)."""
    import logging

    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # the package, or the Pango libraries it loads
        raise HistorianError(f"cannot write the PDF: WeasyPrint is not usable here ({exc}); "
                             "install it (pip install weasyprint; Debian: libpango-1.0-0 libpangoft2-1.0-0) "
                             "or pass --no-pdf") from exc
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    HTML(string=html).write_pdf(path)
    return path


def pdf_bytes(html: str) -> bytes:
    """The page printed to PDF by WeasyPrint; ``HistorianError`` saying what to install when it is not usable."""
    import logging

    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:
        raise HistorianError(f"no PDF: WeasyPrint is not usable here ({exc}); install it (pip install weasyprint; "
                             "Debian: libpango-1.0-0 libpangoft2-1.0-0)") from exc
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    return bytes(HTML(string=html).write_pdf())


class DashboardReports:
    """The dashboard's ``ShiftReports`` (``dashboard.shift_view``): ``twin report``'s numbers, page and PDF.

    Reads a historian of its own (``open_historian()``, opened on first use, closed by ``close``),
    one report at a time. No projection of the next shift (a page answers in seconds; ``twin
    report`` runs it).
    """

    def __init__(self, open_historian: Callable[[], HistorianReader], fleet: FleetSpec) -> None:
        import threading

        self._open = open_historian
        self._historian: HistorianReader | None = None
        self.fleet = fleet
        self._lock = threading.Lock()

    def report(self, site: str, window: ShiftWindow) -> ShiftReport:
        with self._lock:
            if self._historian is None:
                self._historian = self._open()
            return report(self._historian, self.fleet, site, window, projection=0)

    def close(self) -> None:
        with self._lock:
            if self._historian is not None:
                self._historian.close()
                self._historian = None

    def html(self, rep: ShiftReport) -> str:
        return render_html(rep)

    def pdf(self, rep: ShiftReport) -> bytes:
        return pdf_bytes(render_html(rep))

    def pdf_problem(self) -> str:
        try:
            import weasyprint  # noqa: F401
        except (ImportError, OSError) as exc:
            return f"no PDF here: WeasyPrint is not usable ({exc})"
        return ""


def run(args: argparse.Namespace) -> int:
    from app.historians import open_historian
    from connectors.config import load
    from twin.clock import utc_now

    config = load(args.config)
    try:
        site = config.fleet.site(args.site)
    except KeyError:
        known = ", ".join(s.id for s in config.fleet.sites)
        print(f"twin report: --site: no site {args.site!r} in {args.config} (sites: {known})", file=sys.stderr)
        return 2
    try:
        window = shift_window(site, args.shift, utc_now().astimezone(UTC))
    except ValueError as exc:
        print(f"twin report: {exc}", file=sys.stderr)
        return 2
    historian = open_historian(config.historian, config.fleet, "read")
    try:
        rep = report(historian, config.fleet, args.site, window, projection=max(args.projection, 0), seed=args.seed)
    finally:
        historian.close()
    files = write_report(rep, Path(args.out), pdf=not args.no_pdf)
    print(f"shift {window.name} of {site.id}, {window.start.isoformat()} .. {window.end.isoformat()}: "
          f"OEE {_pct(rep.oee.oee)}, output {rep.output.actual} of {rep.output.plan:.0f} planned, "
          f"{len(rep.stops)} stops ({sum(1 for s in rep.stops if s.planned and s.reason is None)} need a person), "
          f"{rep.alarms.annunciated} alarms")
    for f in files:
        print(f"  {f}")
    return 0


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"
