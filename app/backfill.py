"""``twin backfill CONFIG --days N``: write days of EMULATED history into the configured historian.

The seeded plant process (``connectors.emulator.plant``, with the hidden truth of ``--truth``) is
run over the period, much faster than real time, and stored exactly as the collector stores a live
plant: readings, twin states and events in the historian, and the plant's order and shipment
records through the feeds intake into the ledger (so the orders and shipments of any past moment
are in the twin's state then, and a live feed of the same records later is a duplicate). See
``connectors.emulator.backfill``.

The period ends now (``--end T`` or ``--start T`` to place it, UTC ISO 8601 times) and is sampled
every ``--step`` seconds; history older than the last day every ``--older-step``, with its order
and shipment changes checkpointed once per ``--older-orders-every`` (cheaper; ``state_at`` there
shows them up to that late). A historian that already holds data in the period is refused.
``twin emulate CONFIG --seed S --history-from START`` continues the backfilled plant live (the command is printed).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from twin.clock import utc_now

__all__ = ["register", "run", "utc_time"]

log = logging.getLogger(__name__)

MAX_DAYS = 3660.0
MAX_STEP_S = 86400.0


def _positive(what: str, upper: float) -> Callable[[str], float]:
    """An argparse type: a finite number in (0, ``upper``]; the error names the value."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number of {what} (got {text!r})") from None
        if not math.isfinite(value) or value <= 0 or value > upper:
            raise argparse.ArgumentTypeError(f"must be more than 0 and at most {upper:g} {what} (got {text!r})")
        return value

    return parse


def utc_time(text: str) -> datetime:
    """An ISO 8601 time with an offset or ``Z`` (argparse type), as UTC."""
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an ISO 8601 time such as 2026-11-20T00:00:00Z "
                                         f"(got {text!r})") from None
    if t.tzinfo is None:
        raise argparse.ArgumentTypeError(f"needs a UTC offset or Z, e.g. {text.strip()}Z (got {text!r})")
    return t.astimezone(UTC)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("backfill", help="write days of EMULATED history (readings, events, orders, shipments)",
                       description="Write days of EMULATED history of the seeded plant into the configured "
                                   "historian, as the collector writes a live plant: readings, states, events, "
                                   "and the plant's order and shipment records through the feeds ledger. "
                                   "Refuses a period the historian already holds.")
    p.add_argument("config", help="plant configuration file (TOML)")
    p.add_argument("--days", type=_positive("days", MAX_DAYS), required=True, metavar="N",
                   help="length of the period, days")
    p.add_argument("--seed", type=int, default=0, help="seed of the emulated plant (default 0, as twin emulate)")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--start", type=utc_time, default=None, metavar="T",
                      help="the period starts at T (ISO 8601 with offset or Z)")
    when.add_argument("--end", type=utc_time, default=None, metavar="T",
                      help="the period ends at T (default: now)")
    p.add_argument("--truth", type=Path, default=None, metavar="FILE",
                   help="the plant's hidden truth (TOML, see connectors.emulator.truth; default: as configured)")
    p.add_argument("--step", type=_positive("seconds", MAX_STEP_S), default=60.0, metavar="S",
                   help="sample the plant every S seconds (default 60)")
    p.add_argument("--older-step", type=_positive("seconds", MAX_STEP_S), default=None, metavar="S",
                   help="sample all but the last day every S seconds (default: --step)")
    p.add_argument("--older-orders-every", type=_positive("seconds", MAX_STEP_S), default=None, metavar="S",
                   help="before the last day, checkpoint a site's order and shipment changes once per S seconds "
                        "(default: at every change, exact; a checkpoint is tens of kB, see "
                        "connectors.emulator.backfill)")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"twin backfill: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from app.historians import open_historian
    from connectors.config import load
    from connectors.emulator.backfill import backfill, existing_data
    from connectors.emulator.truth import load_truth
    from connectors.feeds.intake import Intake
    from connectors.feeds.ledger import Ledger
    from connectors.forward import StoreAndForward
    from connectors.store import SqliteHistorian

    now = utc_now().replace(microsecond=0)
    span = timedelta(days=args.days)
    if args.start is not None:
        start, end = args.start, args.start + span
        if end > now:
            return _fail(f"--start: {args.start.isoformat()} plus {args.days:g} days ends in the future "
                         f"({end.isoformat()}, now {now.isoformat()}); start earlier or use fewer --days")
    else:
        end = args.end if args.end is not None else now
        if end > now:
            return _fail(f"--end: must not be in the future (got {args.end.isoformat()}, now {now.isoformat()})")
        start = end - span
    if args.truth is not None and not args.truth.is_file():
        return _fail(f"--truth: no such file {args.truth}")
    cfg = load(args.config)
    fleet = cfg.fleet
    truth = load_truth(args.truth, fleet) if args.truth is not None else None
    older = args.older_step if args.older_step is not None else args.step
    fine_from = max(start, end - timedelta(days=1))
    threshold_s = min([fleet.stale_after_polls * m.poll_interval_s for s in fleet.sites for m in s.machines]
                      + [fleet.stale_after_polls * i.poll_interval_s for s in fleet.sites for i in s.inventory]
                      or [math.inf])
    cfg.historian.path.parent.mkdir(parents=True, exist_ok=True)
    historian = open_historian(cfg.historian, fleet, "write")
    store = historian.store if isinstance(historian, StoreAndForward) else historian
    assert isinstance(store, SqliteHistorian)
    ledger_path = (cfg.feeds.ledger_path(cfg.historian.path) if cfg.feeds is not None
                   else cfg.historian.path.parent / "feeds.db")
    try:
        there = existing_data(store, fleet, start, end)
        if not there.empty:
            hint = f" (ending before {_iso(there.first)})" if there.first is not None else ""
            print(f"twin backfill: {store.path} already holds data in {_iso(start)} .. {_iso(end)}: "
                  f"{there.describe()}; refusing to overwrite it. Choose a period before it{hint} "
                  f"or another historian file.", file=sys.stderr)
            return 1
        print(f"twin backfill: EMULATED history of fleet {fleet.id!r} (seed {args.seed}, truth: "
              f"{args.truth or 'as configured'}), {_iso(start)} .. {_iso(end)}, every {args.step:g} s"
              + (f" ({older:g} s before {_iso(fine_from)})" if older != args.step and fine_from > start else "")
              + f" -> {store.path}", flush=True)
        if max(args.step, older) > threshold_s:
            print(f"  note: samples are farther apart than the stale threshold ({threshold_s:g} s): a replay "
                  f"between two samples shows their signals STALE", flush=True)
        ledger = Ledger(ledger_path)
        try:
            t0 = time.perf_counter()
            result = backfill(fleet, historian, start=start, end=end, step_s=args.step, seed=args.seed,
                              truth=truth, intake=Intake(fleet, ledger), older_step_s=older, fine_from=fine_from,
                              older_orders_every_s=args.older_orders_every or 0.0)
            took = time.perf_counter() - t0
        finally:
            ledger.close()
    finally:
        historian.close()
    print(f"  wrote {result.readings:,} readings ({result.samples:,} samples), {result.events:,} events, "
          f"{result.checkpoints:,} checkpoints", flush=True)
    print(f"  orders: {result.orders:,} ({result.order_records:,} record versions, {result.open_orders:,} open "
          f"at the end); shipments: {result.shipments:,} ({result.shipment_records:,} record versions, "
          f"{result.in_transit:,} in transit at the end) -> ledger {ledger_path}"
          + (f" ({result.duplicates:,} already there)" if result.duplicates else ""), flush=True)
    rate = result.readings / took if took > 0 else 0.0
    print(f"  took {took:.1f} s ({rate:,.0f} readings/s); the history is EMULATED, not a real plant's", flush=True)
    truth_flag = f" --truth {args.truth}" if args.truth is not None else ""
    print(f"  continue it live: twin emulate {args.config} --seed {args.seed} --history-from "
          f"{start.isoformat()}{truth_flag}", flush=True)
    if result.rejected:
        print(f"twin backfill: the feeds ledger {ledger_path} refused {len(result.rejected):,} records "
              f"(first: {result.rejected[0]}); it holds other records under the same ids and versions",
              file=sys.stderr)
        return 1
    return 0


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
