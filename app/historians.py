"""Open the historian a configuration asks for: the one factory every command uses.

``mode="write"`` is the collector's (and the backfill's) historian: the embedded SQLite store, or
the store forwarding every batch to InfluxDB (``connectors.forward.StoreAndForward``).
``mode="read"`` is every reader's: the SQLite file opened read-only, or InfluxDB's query API (Flux,
or with ``query = "influxql"`` InfluxQL over the v1 API: 1.x, 2.x through DBRP, InfluxDB 3 Core). A
server for users passes ``limits=twin.limits.DEFAULT_LIMITS`` so that ``series`` refuses requests
over them; the command-line tools read without limits.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal, overload

from connectors.config import HistorianConfig
from connectors.forward import StoreAndForward
from connectors.store import SqliteHistorian
from twin.errors import HistorianError
from twin.historian import Historian, HistorianReader
from twin.limits import Limits
from twin.spec import FleetSpec

if TYPE_CHECKING:
    from connectors.influx.historian import InfluxHistorian, InfluxQLHistorian

__all__ = ["Mode", "history_exists", "open_historian"]

Mode = Literal["read", "write"]


def history_exists(config: HistorianConfig) -> bool:
    """Whether there is history to read: an InfluxDB historian always has (it is asked), a store needs its file."""
    return config.kind != "sqlite" or Path(config.path).exists()


@overload
def open_historian(config: HistorianConfig, fleet: FleetSpec, mode: Literal["read"], *,
                   limits: Limits | None = None) -> HistorianReader: ...


@overload
def open_historian(config: HistorianConfig, fleet: FleetSpec, mode: Literal["write"], *,
                   limits: Limits | None = None) -> Historian: ...


def open_historian(config: HistorianConfig, fleet: FleetSpec, mode: Mode, *,
                   limits: Limits | None = None) -> Historian | HistorianReader:
    """The configured historian, for writing (the collector) or reading (everyone else), see the module docstring."""
    if config.kind not in ("sqlite", "influxdb"):
        raise HistorianError(f"unknown historian kind {config.kind!r}")
    rollup_s = int(config.rollup_interval_s)
    if mode == "write":
        if config.kind == "sqlite":
            return SqliteHistorian(Path(config.path), fleet, rollup_interval_s=rollup_s,
                                   retention_raw_days=config.retention_raw_days)
        from connectors.influx.lineproto import batch_lines

        store = SqliteHistorian(Path(config.path), fleet, outbox=batch_lines, rollup_interval_s=rollup_s,
                                retention_raw_days=config.retention_raw_days)
        return StoreAndForward(store, _influx(config, fleet))
    if config.kind == "sqlite":
        return SqliteHistorian(Path(config.path), fleet, readonly=True, rollup_interval_s=rollup_s, limits=limits)
    return _influx(config, fleet, limits)


def _influx(config: HistorianConfig, fleet: FleetSpec,
            limits: Limits | None = None) -> InfluxHistorian | InfluxQLHistorian:
    from connectors.influx.historian import InfluxHistorian, InfluxQLHistorian, read_token

    if config.query == "flux":
        token = read_token(config.token_env, config.token_file)
        return InfluxHistorian(config.url or "", config.org or "", config.bucket or "", token, fleet, limits=limits)
    v2 = config.write_api == "v2"
    return InfluxQLHistorian(config.url or "", config.database or config.bucket or "", _credentials(config), fleet,
                             retention_policy=config.retention_policy or "", org=config.org or "" if v2 else "",
                             bucket=config.bucket or "" if v2 else "", limits=limits)


def _credentials(config: HistorianConfig) -> dict[str, str]:
    """The HTTP headers of an InfluxQL historian: a token, basic auth, or none (1.x without authentication)."""
    from connectors.influx.client import basic_auth
    from connectors.influx.historian import read_token

    if config.username:
        from connectors.config.secrets import SecretUnavailable, read_secret

        try:
            password = read_secret(config.password_env, config.password_file)
        except SecretUnavailable:
            raise HistorianError(f"no InfluxDB password for {config.username!r}: set the environment variable "
                                 f"{config.password_env!r} or the password file (got {str(config.password_file)!r})"
                                 ) from None
        return basic_auth(config.username, password)
    if config.token_env or config.token_file:
        return {"Authorization": "Token " + read_token(config.token_env, config.token_file)}
    return {}
