"""``twin collect CONFIG``: the collector role: poll the Modbus devices, update the twin, write history.

Writes to the configured historian: the SQLite store, or (kind ``influxdb``) the local store that
forwards every batch to InfluxDB (store-and-forward). ``--log-only`` only logs. Raw data older than
the retention period is pruned at start and then hourly (rollups are kept).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from connectors.cli.poll import select_devices

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("collect", help="poll devices, apply readings to the twin, write the historian")
    p.add_argument("config", help="plant configuration file (TOML)")
    p.add_argument("--device", action="append", default=[], metavar="ID", help="only this device (repeatable)")
    p.add_argument("--log-only", action="store_true", help="do not write the historian, only log")
    p.add_argument("--duration", type=float, default=0.0, metavar="S", help="stop after S seconds (default: never)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from connectors.collector import Collector, LoggingSink, Sink, resume_state
    from connectors.config import load
    from connectors.modbus.poller import utc_now
    from connectors.store import SqliteHistorian

    cfg = load(args.config)
    devices = select_devices(cfg.modbus, args.device, str(cfg.source))
    sink: Sink
    closer = None
    retention_store: SqliteHistorian | None = None
    if args.log_only:
        sink = LoggingSink()
    else:
        from connectors.forward import StoreAndForward, open_writer

        cfg.historian.path.parent.mkdir(parents=True, exist_ok=True)
        historian = open_writer(cfg.historian, cfg.fleet)
        store = historian.store if isinstance(historian, StoreAndForward) else historian
        assert isinstance(store, SqliteHistorian)
        sink, closer, retention_store = historian, historian.close, store
    state = None
    if retention_store is not None:
        state = resume_state(cfg.fleet, retention_store, utc_now())  # continue totals after a restart
    collector = Collector(cfg.fleet, devices, sink, checkpoint_interval_s=cfg.historian.checkpoint_interval_s,
                          state=state)

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
        await collector.run(stop)

    try:
        asyncio.run(main())
    finally:
        if closer is not None:
            closer()
    print(f"collected {collector.readings_written} readings in {collector.flushes} batches")
    return 0
