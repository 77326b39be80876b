"""``twin dashboard CONFIG``: serve the Dash dashboard over the configured historian (read-only).

Binds 127.0.0.1 unless ``--host`` says otherwise; any other address requires login (a users file
from ``--users`` or ``TWIN_USERS_FILE`` and a session secret in ``TWIN_SECRET_KEY``), and the
command refuses to start without them (exit 2).
"""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime
from pathlib import Path

from twin.errors import HistorianError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("dashboard", help="serve the dashboard (fleet, site, machine, what-if, replay, alarms)")
    p.add_argument("config", help="plant configuration file (TOML)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: no login)")
    p.add_argument("--port", type=int, default=8050, help="TCP port (default 8050)")
    p.add_argument("--users", type=Path, default=None, help="users file (TOML; see dashboard.auth); implies login")
    p.add_argument("--refresh", type=float, default=5.0, help="seconds between live refreshes (default 5)")
    p.set_defaults(func=run)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def run(args: argparse.Namespace) -> int:
    from connectors.config import load
    from dashboard.app import PROTECTED_OUTPUTS, create_app
    from dashboard.auth import settings_for
    from dashboard.queries import QueryService
    from dashboard.services import Services

    config = load(args.config)
    auth = settings_for(args.host, users_file=args.users, protected=PROTECTED_OUTPUTS)
    if config.historian.kind != "sqlite":
        raise HistorianError(f"the dashboard reads the embedded store only for now (got {config.historian.kind!r})")
    from connectors.store import SqliteHistorian

    path = config.historian.path
    if not path.exists():
        raise HistorianError(f"no history at {path}: start the collector first (twin collect {args.config})")
    # not read-only: acknowledging an alarm appends an ALARM_ACKNOWLEDGED event (WAL allows the
    # collector and the dashboard to write the same file; SQLite serialises the two writers)
    historian = SqliteHistorian(path, config.fleet, readonly=False)
    try:
        queries = QueryService(fleet=config.fleet, historian=historian, clock=_utc_now)
        app = create_app(Services(queries=queries, whatif=None), auth=auth, refresh_s=args.refresh)
        log.info("dashboard on http://%s:%d (login %s)", args.host, args.port,
                 "required" if auth.login_required else "off")
        app.run(host=args.host, port=args.port, debug=False)
    finally:
        historian.close()
    return 0
