"""``twin collect CONFIG``: the collector role: read Modbus, OPC UA and InfluxDB sources, update the twin, store.

Writes to the configured historian: the SQLite store, or (kind ``influxdb``) the local store that
forwards every batch to InfluxDB (store-and-forward). ``--log-only`` only logs. Raw data older than
the retention period is pruned at start and then hourly (rollups are kept).

With a ``[feeds]`` section it also receives open orders and inbound shipments: the file drop
(``drop_dir``) and/or the HTTP endpoint (``[feeds.http]``), both committing to the feeds ledger;
at start the ledger's latest records are re-applied to the resumed state (nothing acknowledged is
lost by a crash). ``--no-feeds`` leaves them off. The endpoint also takes the dashboard's operator
events (alarm acknowledgements, ``POST /api/v1/events``) and answers once the collector committed
them to the historian: the collector is the history's only writer.

With ``[forecaster] enabled = true`` and predictive ``[[alarms]]`` (failure, stockout, late-order
risk) it also runs the forecaster (``connectors.forecaster``) in a worker thread on its schedule:
its risks raise and clear those alarms through the collector's batches like any other alarm.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from app.poll import select_sources

if TYPE_CHECKING:
    from connectors.collector import Collector
    from connectors.config import PlantConfig

__all__ = ["register", "run"]

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("collect", help="poll devices, apply readings to the twin, write the historian")
    p.add_argument("config", help="plant configuration file (TOML)")
    p.add_argument("--device", action="append", default=[], metavar="ID", help="only this device (repeatable)")
    p.add_argument("--log-only", action="store_true", help="do not write the historian, only log")
    p.add_argument("--no-feeds", action="store_true", help="do not start the orders/shipments feeds")
    p.add_argument("--duration", type=float, default=0.0, metavar="S", help="stop after S seconds (default: never)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from connectors.collector import Collector, LoggingSink, Sink, resume_state, tune_gc
    from connectors.config import load
    from connectors.store import SqliteHistorian
    from twin.clock import utc_now

    cfg = load(args.config)
    feeds_only = not cfg.modbus and not args.device and (cfg.feeds is not None or bool(cfg.influx or cfg.opcua))
    devices, servers = ([], list(cfg.opcua)) if feeds_only else select_sources(cfg, args.device)
    sink: Sink
    closer = None
    retention_store: SqliteHistorian | None = None
    if args.log_only:
        sink = LoggingSink()
    else:
        from app.historians import open_historian
        from connectors.forward import StoreAndForward

        cfg.historian.path.parent.mkdir(parents=True, exist_ok=True)
        historian = open_historian(cfg.historian, cfg.fleet, "write")
        store = historian.store if isinstance(historian, StoreAndForward) else historian
        assert isinstance(store, SqliteHistorian)
        sink, closer, retention_store = historian, historian.close, store
    state = None
    if retention_store is not None:
        state = resume_state(cfg.fleet, retention_store, utc_now())  # continue totals after a restart
    # with --device (and no orders/shipments feeds, whose records may be of any site) the collector owns
    # the sites of its devices: one collector per site writing one central historian, each records only
    # its own sites' checkpoints and events
    feeds_on = cfg.feeds is not None and not args.no_feeds
    owned = ({d.site for d in devices} | {f.site for f in cfg.influx} | {s.site for s in servers}
             if args.device and not feeds_on else None)
    collector = Collector(cfg.fleet, devices, sink, checkpoint_interval_s=cfg.historian.checkpoint_interval_s,
                          state=state, sites=owned)
    if cfg.influx:  # InfluxDB feeds produce readings like the Modbus poller
        from connectors.influx.feed import InfluxFeedPoller

        collector.add_source(InfluxFeedPoller(cfg.influx, collector.ingest))
    if servers:  # and the OPC UA servers: a site may mix Modbus, OPC UA and InfluxDB
        from connectors.opcua.source import OpcUaSources

        collector.add_source(OpcUaSources(servers, collector.ingest))
    if cfg.reports is not None and cfg.reports.on_shift_end:  # [reports]: each shift's report once it has ended
        if args.log_only:
            log.warning("[reports] on_shift_end: no shift reports with --log-only (nothing is stored)")
        else:
            from app.historians import open_historian as _open_historian
            from app.report_schedule import ShiftEndReports

            collector.add_source(ShiftEndReports(cfg.reports, cfg.fleet,
                                                 lambda: _open_historian(cfg.historian, cfg.fleet, "read")))
    _start_forecaster(cfg, collector, log_only=args.log_only)
    ledger_closer = None
    if cfg.feeds is not None and not args.no_feeds:
        ledger_closer = _start_feeds(cfg, collector, events=not args.log_only)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # finish the current batch, close the store
            loop.add_signal_handler(sig, stop.set)
        if args.duration:
            loop.call_later(args.duration, stop.set)

        def prune() -> None:
            if retention_store is not None:
                removed = retention_store.apply_retention(utc_now())
                log.info("retention: %d raw readings older than %s days removed", removed,
                         cfg.historian.retention_raw_days)
                loop.call_later(3600.0, prune)

        prune()
        tune_gc()
        await collector.run(stop)

    try:
        asyncio.run(main())
    finally:
        if closer is not None:
            closer()
        if ledger_closer is not None:
            ledger_closer()
    print(f"collected {collector.readings_written} readings in {collector.flushes} batches")
    return 0


def _start_forecaster(cfg: PlantConfig, collector: Collector, *, log_only: bool = False) -> None:
    """Run the forecaster beside the sources when ``[forecaster]`` is enabled and there are predictive rules."""
    from twin.forecast import predictive_rules

    rules = predictive_rules(cfg.fleet)
    if not cfg.forecaster.enabled:
        if rules:
            log.info("forecaster off ([forecaster] enabled = false): %d predictive alarm rules are not evaluated",
                     len(rules))
        return
    if not rules:
        log.warning("[forecaster] enabled, but no predictive [[alarms]] (failure_risk, stockout_risk, "
                    "late_order_risk): nothing to forecast")
        return
    if log_only:
        log.warning("[forecaster] enabled: no forecasts with --log-only (they read the history)")
        return
    from app.historians import open_historian
    from connectors.forecaster import Forecaster

    collector.add_source(Forecaster(cfg.fleet, cfg.forecaster,
                                    lambda: open_historian(cfg.historian, cfg.fleet, "read"),
                                    deliver=collector.submit_forecast, current=lambda: collector.state))
    log.info("forecaster: %d predictive rules every %g min, %d replications", len(rules),
             cfg.forecaster.every_s / 60.0, cfg.forecaster.replications)


def _start_feeds(cfg: PlantConfig, collector: Collector, *, events: bool = True) -> Callable[[], None]:
    """Open the ledger, re-apply what it holds, plug the file drop and the HTTP endpoint into ``collector``.

    With ``events`` the endpoint also takes operator events (not with ``--log-only``: nothing would
    keep them, so the dashboard is told 404 rather than a 200 for events that are not in the history).
    """
    from connectors.config.feeds import read_token
    from connectors.feeds.drop import FileDrop
    from connectors.feeds.endpoint import FeedEndpoint
    from connectors.feeds.intake import Intake
    from connectors.feeds.ledger import Ledger

    feeds = cfg.feeds
    assert feeds is not None
    token = read_token(feeds.http, str(cfg.source)) if feeds.http is not None else ""  # fail before opening
    ledger = Ledger(feeds.ledger_path(cfg.historian.path))
    known = ledger.latest()
    if known:
        collector.submit(known)  # the reducer ignores what the resumed state already holds
        log.info("feeds: %d records re-applied from the ledger %s", len(known), ledger.path)
    intake = Intake(cfg.fleet, ledger)
    if feeds.drop_dir is not None:
        feeds.drop_dir.mkdir(parents=True, exist_ok=True)
        collector.add_source(FileDrop.from_config(feeds, intake, collector.submit))
        log.info("feeds: watching %s every %g s", feeds.drop_dir, feeds.poll_s)
    if feeds.http is not None:
        collector.add_source(FeedEndpoint(intake, collector.submit, token=token, host=feeds.http.host,
                                          port=feeds.http.port, max_body_bytes=feeds.http.max_body_bytes,
                                          record=collector.record if events else None))
        log.info("feeds: endpoint on %s:%d", feeds.http.host, feeds.http.port)
    return ledger.close
