"""``twin dashboard CONFIG``: serve the Dash dashboard over the configured historian (read-only).

Binds 127.0.0.1 unless ``--host`` says otherwise; any other address requires login (a users file
from ``--users`` or ``TWIN_USERS_FILE`` and a session secret in ``TWIN_SECRET_KEY``), and the
command refuses to start without them (exit 2). Served by waitress (a production WSGI server,
``--threads`` request threads); ``--debug`` uses Flask's development server with Dash's debug tools
instead, for development only. The query service's refresher thread recomputes the fleet tiles and
the site views being looked at in the background, so page refreshes only read finished view-models.

The dashboard never writes the history: the SQLite file is opened read-only (InfluxDB through its
query API). Acknowledging an alarm sends the event to the collector's endpoint (``[feeds.http]``,
``connectors.feeds.recorder``), which commits it to the history, where the dashboard reads it back;
without that section (or its token) acknowledgements are off, and said so once in the log.
"""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from twin.clock import utc_now
from twin.errors import ConfigError, HistorianError, Problem
from twin.historian import EventRecorder, HistorianReader
from twin.validation import out_of_range

if TYPE_CHECKING:
    from connectors.config import PlantConfig

__all__ = ["DEFAULT_MAX_BODY_MB", "event_recorder", "register", "run", "serve"]

log = logging.getLogger(__name__)
DEFAULT_MAX_BODY_MB = 16.0  # the largest legitimate callback is ~2.5 MB (see dashboard.auth.DEFAULT_MAX_BODY_BYTES)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("dashboard", help="serve the dashboard (fleet, site, machine, what-if, replay, alarms)")
    p.add_argument("config", help="plant configuration file (TOML)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: no login)")
    p.add_argument("--port", type=int, default=8050, help="TCP port (default 8050)")
    p.add_argument("--users", type=Path, default=None, help="users file (TOML; see dashboard.auth); implies login")
    p.add_argument("--refresh", type=float, default=5.0, help="seconds between live refreshes (default 5)")
    p.add_argument("--workers", type=int, default=2,
                   help="worker processes of a what-if run (default 2; 0 = in the run's own process)")
    p.add_argument("--max-replications", type=int, default=500, help="largest what-if run allowed (default 500)")
    p.add_argument("--max-horizon", type=float, default=30 * 24.0, metavar="HOURS",
                   help="longest what-if horizon allowed, in hours (default 720 = 30 days)")
    p.add_argument("--threads", type=int, default=8, help="request threads of the web server (default 8)")
    p.add_argument("--max-body-mb", type=float, default=DEFAULT_MAX_BODY_MB, metavar="MB",
                   help=f"largest request body accepted, in MiB (default {DEFAULT_MAX_BODY_MB:g}); larger: 413")
    p.add_argument("--secure-cookie", action="store_true",
                   help="mark the session cookie Secure (sent over HTTPS only: behind a TLS reverse proxy)")
    p.add_argument("--session-hours", type=float, default=12.0,
                   help="a session ends this many hours after sign-in (default 12)")
    p.add_argument("--idle-minutes", type=float, default=120.0,
                   help="a session ends after this many minutes without a request (default 120)")
    p.add_argument("--max-runs", type=int, default=2,
                   help="what-if runs at the same time, all users together (default 2); more are refused")
    p.add_argument("--max-runs-per-user", type=int, default=1,
                   help="what-if runs at the same time of one user (default 1)")
    p.add_argument("--collector", default=None, metavar="URL",
                   help="the collector's endpoint, where acknowledgements go (default: the [feeds.http] listen "
                        "address of the plant file, asked on 127.0.0.1 when it listens everywhere); e.g. "
                        "http://collector:8081 when the collector runs on another host")
    p.add_argument("--attention-every", type=float, default=15.0, metavar="MINUTES",
                   help="how often the attention list projects the open orders and stock ahead (default 15; "
                        "0 = no projection: the list shows what is wrong now)")
    p.add_argument("--health-high", type=float, default=30.0, metavar="PERCENT",
                   help="a machine's failure risk within 8 h is high from this (default 30): coloured on its page, "
                        "a line in the attention list, a note on its tile")
    p.add_argument("--whatif-dir", type=Path, default=None, metavar="DIR",
                   help="where saved scenarios and finished what-if runs are kept (default: whatif/ beside the "
                        "history file)")
    p.add_argument("--trust", default="", metavar="SETTINGS",
                   help="model-trust scoring (dashboard.trust): 'off', or key=value,... e.g. replications=20,"
                        "every_h=6 (default: the last 7 days once a day, 24 h horizon, 20 replications)")
    p.add_argument("--debug", action="store_true",
                   help="Flask's development server with Dash's debug tools (development only, never in production)")
    p.set_defaults(func=run)


def event_recorder(config: PlantConfig, url: str | None = None) -> tuple[EventRecorder | None, str]:
    """Where the dashboard sends acknowledgements: the collector's endpoint; or None and why not.

    ``url`` (``--collector``) names the endpoint when the collector is on another host; the token is
    the one ``[feeds.http]`` names either way.
    """
    if url is not None and not url.startswith(("http://", "https://")):
        raise ConfigError("--collector", [Problem(path="--collector", message="must be an http:// or https:// URL",
                                                  got=url)])
    http = config.feeds.http if config.feeds is not None else None
    if http is None:
        return None, f"they go to the collector's endpoint, and {config.source} has no [feeds.http]"
    from connectors.config.feeds import read_token
    from connectors.feeds.recorder import CollectorRecorder

    try:
        token = read_token(http, str(config.source))
    except ConfigError as exc:  # the pages still serve; only acknowledging needs the token
        return None, f"the collector's token cannot be read: {exc}"
    if url is None:
        host = "127.0.0.1" if http.host in ("0.0.0.0", "::") else http.host  # listening everywhere: ask locally
        host = f"[{host}]" if ":" in host else host
        url = f"http://{host}:{http.port}"
    recorder = CollectorRecorder(url.rstrip("/"), token)
    log.info("acknowledgements go to the collector at %s", recorder.url)
    return recorder, ""


def _stop_on_sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # leave serve() the way Ctrl-C does, so the finally blocks run


def serve(app: object, *, host: str, port: int, threads: int, debug: bool, max_body_bytes: int) -> None:
    """Serve ``app`` (a Dash app) until interrupted: waitress, or Flask's dev server with ``debug``.

    Bodies over ``max_body_bytes`` are refused with 413 before they are read: by waitress from the
    request's Content-Length (or as a chunked body grows past it), by the app itself
    (``MAX_CONTENT_LENGTH``, set by ``dashboard.auth.install``) on the development server.
    """
    if debug:
        app.run(host=host, port=port, debug=True)  # type: ignore[attr-defined]
        return
    import waitress

    # waitress answers 413 "Request Entity Too Large / exceeds max_body of N" from the Content-Length
    # header alone (or once a chunked body reaches N), spooling at most N bytes to a temporary file
    waitress.serve(app.server, host=host, port=port, threads=threads, ident="twin-dashboard",  # type: ignore[attr-defined]
                   max_request_body_size=max_body_bytes)


def run(args: argparse.Namespace) -> int:
    from connectors.config import load
    from dashboard.app import PROTECTED_OUTPUTS, create_app
    from dashboard.attention import AttentionService, AttentionSettings
    from dashboard.auth import settings_for
    from dashboard.health import HealthService, HealthSettings
    from dashboard.queries import QueryService
    from dashboard.scenarios import WhatIfLimits as Limits
    from dashboard.services import Services
    from dashboard.shift_view import ShiftService
    from dashboard.trust import TrustService, TrustSettings
    from dashboard.whatif_engine import EngineRunner

    config = load(args.config)
    trust_settings = TrustSettings.parse(args.trust)
    checks = (("--max-body-mb", args.max_body_mb, 0.001, 1024.0),
              ("--session-hours", args.session_hours, 0.01, 24 * 31.0),
              ("--idle-minutes", args.idle_minutes, 1.0, 24 * 60 * 31.0),
              ("--max-runs", args.max_runs, 1, 64), ("--max-runs-per-user", args.max_runs_per_user, 1, 64),
              ("--health-high", args.health_high, 1.0, 99.0))
    bad = out_of_range(checks)
    if bad:
        raise ConfigError(bad[0].path, bad[:1])
    max_body_bytes = int(args.max_body_mb * 1024 * 1024)
    auth = settings_for(args.host, users_file=args.users, protected=PROTECTED_OUTPUTS,
                        secure_cookie=args.secure_cookie, session_lifetime_s=args.session_hours * 3600.0,
                        idle_timeout_s=args.idle_minutes * 60.0, max_body_bytes=max_body_bytes)
    from app.historians import history_exists, open_historian
    from app.report import DashboardReports
    from twin import limits as server_limits

    if not 1 <= args.threads <= 256:
        raise ConfigError("--threads", [Problem(path="--threads", message="must be 1..256", got=args.threads)])
    if not 1 <= args.max_replications <= server_limits.MAX_REPLICATIONS:
        raise ConfigError("--max-replications", [Problem(
            path="--max-replications", message=f"must be 1..{server_limits.MAX_REPLICATIONS}",
            got=args.max_replications)])
    max_horizon_h = server_limits.MAX_HORIZON_S / 3600.0
    if not 0 < args.max_horizon <= max_horizon_h:
        raise ConfigError("--max-horizon", [Problem(
            path="--max-horizon", message=f"must be more than 0 and at most {max_horizon_h:g} h",
            got=args.max_horizon)])
    fleet = config.fleet
    if not history_exists(config.historian):
        raise HistorianError(f"no history at {config.historian.path}: start the collector first "
                             f"(twin collect {args.config})")
    recorder, no_acks = event_recorder(config, args.collector)
    # read-only, and series requests from users bounded by twin.limits
    historian = open_historian(config.historian, fleet, "read", limits=server_limits.DEFAULT_LIMITS)

    def open_reader() -> HistorianReader:
        # what-if runs happen in background worker processes: each opens its own connection
        return open_historian(config.historian, fleet, "read")

    limits = Limits(max_replications=args.max_replications, max_horizon_h=args.max_horizon)
    attention_settings = AttentionSettings(enabled=args.attention_every > 0, list_every_s=args.refresh,
                                           period_s=max(args.attention_every, 0.5) * 60.0).check()
    health_settings = HealthSettings(high=args.health_high / 100.0).check()
    queries: QueryService | None = None
    health: HealthService | None = None
    trust: TrustService | None = None
    attention: AttentionService | None = None
    shift_reports: DashboardReports | None = None
    try:
        # the model-trust scores (a rolling backtest once a day) on a reader of their own; drift alarms in memory
        trust = TrustService(fleet=fleet, open_historian=open_reader, clock=utc_now, settings=trust_settings)
        queries = QueryService(fleet=fleet, historian=historian, clock=utc_now, derived_alarms=trust,
                               recorder=recorder)
        runner = EngineRunner(fleet=fleet, open_historian=open_reader, clock=utc_now, workers=args.workers,
                              limits=limits, max_runs=args.max_runs, max_runs_per_user=args.max_runs_per_user)
        # each machine's failure risk on a schedule, on a reader of its own (never in a browser callback)
        health = HealthService(fleet=fleet, open_historian=open_reader, clock=utc_now, settings=health_settings)
        # the attention list's projection on a schedule, on a reader of its own (never per browser tab)
        attention = AttentionService(queries=queries, settings=attention_settings, open_historian=open_reader,
                                     health=health)
        # the Shift page's reports (twin report's numbers, page and PDF), on a reader of their own
        shift_reports = DashboardReports(open_reader, fleet)
        extra: dict[str, object] = {"trust": trust, "attention": attention, "health": health,
                                    "shift": ShiftService(queries=queries, reports=shift_reports)}
        if args.whatif_dir is not None:
            extra["whatif_dir"] = args.whatif_dir
        app = create_app(Services(queries=queries, whatif=runner, limits=limits, extra=extra), auth=auth,
                         refresh_s=args.refresh)
        log.info("login %s", "required" if auth.login_required else "off")
        queries.start_refresher()
        trust.start()
        attention.start()
        health.start()
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
        print(f"dashboard on http://{args.host}:{args.port}/ ("
              + ("Flask development server, debug" if args.debug else f"waitress, {args.threads} threads") + ")",
              flush=True)
        if recorder is None:  # said once, after the address (the line scripts wait for)
            log.warning("acknowledgements are off: %s", no_acks)
        try:
            serve(app, host=args.host, port=args.port, threads=args.threads, debug=args.debug,
                  max_body_bytes=max_body_bytes)
        except KeyboardInterrupt:
            log.info("dashboard stopped")
    finally:
        if health is not None:
            health.stop()
        if attention is not None:
            attention.stop()
        if trust is not None:
            trust.stop()
        if queries is not None:
            queries.stop_refresher()
        if shift_reports is not None:
            shift_reports.close()
        historian.close()
    return 0
