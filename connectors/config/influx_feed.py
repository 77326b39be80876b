"""``[[sources.influx]]``: sites and machines mirrored from InfluxDB measurements (e.g. Telegraf's).

The TOML shape is checked by the pydantic models below; ``convert_influx_feeds`` then checks what
needs the rest of the configuration (the site, its machines and SKUs, their signals, targets already
fed by another feed or by a Modbus device, the connection keys each API needs) and builds the plain
frozen ``InfluxFeed`` values the poller (``connectors.influx.feed``) reads. Secrets are never in the
file: a v2 token comes from ``token_env``/``token_file``, a v1 password from ``password_env``/
``password_file``, read by the poller when it connects.

TOML shape::

    [[sources.influx]]
    id = "lyon-telegraf"
    site = "pod-lyon"
    poll_interval_s = 5
    sample_interval_s = 10        # how often Telegraf writes (staleness uses the larger of the two)
    overlap_s = 30                # late-data window re-read on every poll
    connection = { api = "v1", url = "http://127.0.0.1:8086", database = "telegraf" }
    mappings = [
      { measurement = "printer", tags = { host = "printer-3" }, field = "state", asset = "P3",
        signal = "status", enum = { RUN = 2, IDLE = 1, FAULT = 3 } },
      { measurement = "printer", field = "parts_ok", asset_tag = "machine", signal = "good_count" },
    ]
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.config.signals import asset_signals
from connectors.modbus.spec import ModbusDevice
from twin.errors import Problem
from twin.frozen import FrozenDict
from twin.live import INVENTORY_SIGNALS
from twin.readings import Value
from twin.spec import FleetSpec, SiteSpec
from twin.validation import Id, Int, Num

__all__ = [
    "InfluxApi",
    "InfluxConnection",
    "InfluxConnectionModel",
    "InfluxFeed",
    "InfluxFeedModel",
    "InfluxMapping",
    "InfluxMappingModel",
    "convert_influx_feeds",
    "feed_intervals",
]

Name = Annotated[str, Field(min_length=1, max_length=256)]  # an InfluxDB measurement, tag or field name

_DURATIONS = ("poll_interval_s", "sample_interval_s", "overlap_s", "lookback_s", "timeout_s", "bad_after_s",
              "reconnect_min_s", "reconnect_max_s")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, str_strip_whitespace=True)


class InfluxConnectionModel(_Model):
    """``connection``: where the feed's points are (API v1 with InfluxQL, or v2 with Flux)."""

    api: Literal["v1", "v2"]
    url: Name
    database: Name | None = None  # v1
    username: Name | None = None  # v1
    password_env: Name | None = None  # v1
    password_file: Name | None = None  # v1
    password: str | None = None  # refused: secrets never come from the configuration
    org: Name | None = None  # v2
    bucket: Name | None = None  # v2
    token_env: Name | None = None  # v2
    token_file: Name | None = None  # v2
    token: str | None = None  # refused

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("an InfluxDB URL starts with http:// or https://")
        return v.rstrip("/")


class InfluxMappingModel(_Model):
    """One mapping: points of ``measurement`` whose tags match ``tags``, field ``field`` -> asset.signal."""

    measurement: Name
    tags: dict[Name, Annotated[str, Field(max_length=256)]] = Field(default_factory=dict)
    field: Name
    signal: Id
    asset: Id | None = None
    asset_tag: Name | None = None
    assets: list[Id] | None = None
    scale: Num | None = None
    offset: Num | None = None
    enum: dict[Annotated[str, Field(min_length=1)], Int | Num] | None = None


class InfluxFeedModel(_Model):
    """One ``[[sources.influx]]`` entry as written in the file. Durations are numbers of seconds."""

    id: Id
    site: Id
    connection: InfluxConnectionModel
    poll_interval_s: Num = Field(default=10.0, ge=0.05, le=86400)
    sample_interval_s: Num | None = Field(default=None, gt=0, le=86400)
    overlap_s: Num = Field(default=30.0, ge=0, le=7 * 86400)
    lookback_s: Num = Field(default=300.0, ge=0, le=366 * 86400)
    timeout_s: Num = Field(default=5.0, gt=0, le=300)
    bad_after_s: Num = Field(default=60.0, gt=0, le=86400)
    reconnect_min_s: Num = Field(default=1.0, gt=0, le=3600)
    reconnect_max_s: Num = Field(default=60.0, gt=0, le=86400)
    mappings: list[InfluxMappingModel] = Field(min_length=1)

    @field_validator(*_DURATIONS, mode="before")
    @classmethod
    def _seconds(cls, v: Any) -> Any:
        if isinstance(v, str):
            raise ValueError("a duration is a number of seconds (e.g. 30), not text")
        return v


# --- the converted, plain frozen values -------------------------------------------------------------


class InfluxApi(enum.Enum):
    """Which InfluxDB HTTP API a feed reads: v1 (``/query``, InfluxQL) or v2 (``/api/v2/query``, Flux)."""

    V1 = "v1"
    V2 = "v2"


@dataclass(frozen=True, slots=True, kw_only=True)
class InfluxConnection:
    """Where a feed reads. Holds the names of secrets (environment variable, file), never a secret."""

    api: InfluxApi
    url: str
    database: str = ""
    username: str = ""
    password_env: str | None = None
    password_file: Path | None = None
    org: str = ""
    bucket: str = ""
    token_env: str | None = None
    token_file: Path | None = None

    @property
    def where(self) -> str:
        """The database or bucket, for messages."""
        return f"database {self.database!r}" if self.api is InfluxApi.V1 else f"bucket {self.bucket!r}"


@dataclass(frozen=True, slots=True, kw_only=True)
class InfluxMapping:
    """Field ``field`` of the points of ``measurement`` whose tags include ``tags``, as ``signal``.

    The asset is ``asset``, or the value of the tag ``asset_tag`` (one mapping for many machines);
    ``assets`` is every asset the mapping may feed (a tag value outside it is not applied). A value is
    translated by ``enum`` (its text -> a number, e.g. ``"RUN" -> 2``), else ``value * scale + offset``
    when either is set, else passed as it came.

    >>> m = InfluxMapping(measurement="printer", field="state", signal="status", asset="P1",
    ...                   assets=frozenset({"P1"}), enum=FrozenDict({"RUN": 2}))
    >>> m.asset_of({"host": "x"}), m.convert("RUN"), m.convert("JAM")
    ('P1', (2, ''), (None, "value 'JAM' not in the enum map of field 'state'"))
    """

    measurement: str
    field: str
    signal: str
    assets: frozenset[str]
    tags: FrozenDict[str, str] = dataclasses.field(default_factory=FrozenDict)
    asset: str | None = None
    asset_tag: str | None = None
    scale: float | None = None
    offset: float | None = None
    enum: FrozenDict[str, float | int] = dataclasses.field(default_factory=FrozenDict)

    def matches(self, measurement: str, tags: Mapping[str, str]) -> bool:
        """Whether a series of ``measurement`` with ``tags`` is selected by this mapping."""
        return measurement == self.measurement and all(tags.get(k) == v for k, v in self.tags.items())

    def asset_of(self, tags: Mapping[str, str]) -> str | None:
        """The asset a series with ``tags`` feeds, or None (tag missing or naming an asset not in ``assets``)."""
        if self.asset is not None:
            return self.asset
        name = tags.get(self.asset_tag or "")
        return name if name is not None and name in self.assets else None

    def convert(self, raw: Value) -> tuple[Value, str]:
        """The twin's value for a raw field value, and "" or why it is not usable."""
        if self.enum:
            key = _enum_key(raw)
            if key not in self.enum:
                return None, f"value {key!r} not in the enum map of field {self.field!r}"
            return self.enum[key], ""
        if self.scale is None and self.offset is None:
            return raw, ""
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            return None, f"value {raw!r} of field {self.field!r} is not a number (scale/offset need one)"
        out = float(raw) * (1.0 if self.scale is None else self.scale) + (self.offset or 0.0)
        return (out, "") if math.isfinite(out) else (None, f"value {raw!r} of field {self.field!r} is not finite")


def _enum_key(raw: Value) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw)


@dataclass(frozen=True, slots=True, kw_only=True)
class InfluxFeed:
    """One InfluxDB feed source of a site: its connection, its mappings and its polling and health timings."""

    id: str
    site: str
    connection: InfluxConnection
    mappings: tuple[InfluxMapping, ...]
    poll_interval_s: float = 10.0
    sample_interval_s: float | None = None
    overlap_s: float = 30.0
    lookback_s: float = 300.0
    timeout_s: float = 5.0
    bad_after_s: float = 60.0
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0

    @property
    def expected_interval_s(self) -> float:
        """How often each mapped signal should get a new point: the slower of polling and sampling."""
        return max(self.poll_interval_s, self.sample_interval_s or 0.0)

    @property
    def targets(self) -> tuple[tuple[str, str], ...]:
        """Every (asset, signal) the feed may feed, sorted."""
        return tuple(sorted({(a, m.signal) for m in self.mappings for a in m.assets}))


# --- conversion and cross-checks -----------------------------------------------------------------------


def _connection(c: InfluxConnectionModel, path: str, base: Path, problems: list[Problem]) -> InfluxConnection:
    def resolve(p: str | None) -> Path | None:
        return None if p is None else Path(os.path.normpath(base / p))

    for secret, names in (("password", "password_env or password_file"), ("token", "token_env or token_file")):
        if getattr(c, secret) is not None:
            problems.append(Problem(path=f"{path}.{secret}", message=f"a secret is never read from the "
                                    f"configuration file; name an environment variable or a file with {names}",
                                    has_got=False))
    own = {"v1": ("database", "username", "password_env", "password_file"),
           "v2": ("org", "bucket", "token_env", "token_file")}
    for other in own["v2" if c.api == "v1" else "v1"]:
        if getattr(c, other) is not None:
            problems.append(Problem(path=f"{path}.{other}", message=f"does not apply to api '{c.api}'",
                                    got=getattr(c, other)))
    if c.api == "v1":
        if c.database is None:
            problems.append(Problem(path=f"{path}.database", message="api 'v1' needs the database to read",
                                    has_got=False))
        has_password = c.password_env is not None or c.password_file is not None
        if c.username is None and has_password:
            problems.append(Problem(path=f"{path}.username", message="a password is given but no username",
                                    has_got=False))
        if c.username is not None and not has_password:
            problems.append(Problem(path=f"{path}.username",
                                    message="a username needs password_env or password_file", got=c.username))
        return InfluxConnection(api=InfluxApi.V1, url=c.url, database=c.database or "", username=c.username or "",
                                password_env=c.password_env, password_file=resolve(c.password_file))
    for key in ("org", "bucket"):
        if getattr(c, key) is None:
            problems.append(Problem(path=f"{path}.{key}", message=f"api 'v2' needs {key}", has_got=False))
    if c.token_env is None and c.token_file is None:
        problems.append(Problem(path=f"{path}.token_env", message="api 'v2' needs token_env or token_file",
                                has_got=False))
    return InfluxConnection(api=InfluxApi.V2, url=c.url, org=c.org or "", bucket=c.bucket or "",
                            token_env=c.token_env, token_file=resolve(c.token_file))


def _mapping(m: InfluxMappingModel, path: str, site: SiteSpec, problems: list[Problem]) -> InfluxMapping | None:
    n = len(problems)
    if (m.asset is None) == (m.asset_tag is None):
        problems.append(Problem(path=path, message="give either asset (one machine or SKU) or asset_tag "
                                "(a tag whose value names the machine)", has_got=False))
        return None
    if m.assets is not None and m.asset_tag is None:
        problems.append(Problem(path=f"{path}.assets", message="assets only applies with asset_tag",
                                got=m.assets))
    if m.enum is not None:
        if m.scale is not None or m.offset is not None:
            problems.append(Problem(path=f"{path}.enum", message="an enum map translates raw values: it cannot "
                                    "be combined with scale or offset", has_got=False))
        if not m.enum:
            problems.append(Problem(path=f"{path}.enum", message="an enum map needs at least one value",
                                    has_got=False))
    if m.scale == 0:
        problems.append(Problem(path=f"{path}.scale", message="scale must not be 0", got=m.scale))
    assets: list[str] = []
    if m.asset is not None:
        signals = asset_signals(site, m.asset)
        if signals is None:
            problems.append(Problem(path=f"{path}.asset", message=f"no machine or SKU with this id at site "
                                    f"'{site.id}'", got=m.asset))
        elif m.signal not in signals:
            problems.append(Problem(path=f"{path}.signal", message=f"not a signal of {m.asset} (it has "
                                    f"{', '.join(signals)})", got=m.signal))
        assets = [m.asset]
    elif m.assets is not None:
        for j, a in enumerate(m.assets):
            signals = asset_signals(site, a)
            if signals is None:
                problems.append(Problem(path=f"{path}.assets[{j}]", message=f"no machine or SKU with this id at "
                                        f"site '{site.id}'", got=a))
            elif m.signal not in signals:
                problems.append(Problem(path=f"{path}.assets[{j}]", message=f"{a} has no signal '{m.signal}' "
                                        f"(it has {', '.join(signals)})", got=a))
        if not m.assets:
            problems.append(Problem(path=f"{path}.assets", message="list at least one asset, or leave assets out "
                                    "for every asset of the site with this signal", got=m.assets))
        assets = list(m.assets)
    else:
        assets = [str(x.id) for x in site.machines if x.template.signal(m.signal) is not None]
        if m.signal in INVENTORY_SIGNALS:
            assets += [str(i.sku) for i in site.inventory]
        if not assets:
            problems.append(Problem(path=f"{path}.signal", message=f"no machine or SKU of site '{site.id}' has "
                                    "this signal", got=m.signal))
    if len(problems) > n:
        return None
    return InfluxMapping(
        measurement=m.measurement, field=m.field, signal=m.signal, assets=frozenset(assets),
        tags=FrozenDict(m.tags), asset=m.asset, asset_tag=m.asset_tag, scale=m.scale, offset=m.offset,
        enum=FrozenDict(m.enum or {}),
    )


def convert_influx_feeds(models: Sequence[InfluxFeedModel], fleet: FleetSpec, problems: list[Problem], *,
                         base: Path | None = None, modbus: Sequence[ModbusDevice] = ()) -> tuple[InfluxFeed, ...]:
    """Build the feeds of ``[[sources.influx]]``, appending every cross-reference problem to ``problems``.

    ``base`` is the configuration file's folder (secret files are resolved against it); ``modbus``
    the Modbus devices already built, so a signal fed by both is reported.
    """
    root = base if base is not None else Path.cwd()
    fed: dict[tuple[str, str, str], str] = {}
    for dev in modbus:
        for p in dev.points:
            fed.setdefault((dev.site, p.asset, p.signal), f"Modbus device '{dev.id}'")
    site_ids = {s.id for s in fleet.sites}
    seen: set[str] = set()
    feeds: list[InfluxFeed] = []
    for i, f in enumerate(models):
        path = f"sources.influx[{i}]"
        if f.id in seen:
            problems.append(Problem(path=f"{path}.id", message="duplicate feed id", got=f.id))
        seen.add(f.id)
        if f.reconnect_max_s < f.reconnect_min_s:
            problems.append(Problem(path=f"{path}.reconnect_max_s", message="below reconnect_min_s",
                                    got=f.reconnect_max_s))
        connection = _connection(f.connection, f"{path}.connection", root, problems)
        if f.site not in site_ids:
            problems.append(Problem(path=f"{path}.site", message="no site with this id", got=f.site))
            continue
        site = fleet.site(f.site)
        mappings: list[InfluxMapping] = []
        for j, mm in enumerate(f.mappings):
            mpath = f"{path}.mappings[{j}]"
            mapping = _mapping(mm, mpath, site, problems)
            if mapping is None:
                continue
            for asset in sorted(mapping.assets):
                key = (f.site, asset, mapping.signal)
                if key in fed:
                    problems.append(Problem(path=mpath, message=f"{asset}.{mapping.signal} is already fed by "
                                            f"{fed[key]}", got=mapping.signal))
                fed.setdefault(key, f"{mpath} (feed '{f.id}')")
            mappings.append(mapping)
        feeds.append(InfluxFeed(
            id=f.id, site=f.site, connection=connection, mappings=tuple(mappings),
            poll_interval_s=f.poll_interval_s, sample_interval_s=f.sample_interval_s, overlap_s=f.overlap_s,
            lookback_s=f.lookback_s, timeout_s=f.timeout_s, bad_after_s=f.bad_after_s,
            reconnect_min_s=f.reconnect_min_s, reconnect_max_s=f.reconnect_max_s,
        ))
    return tuple(feeds)


def feed_intervals(feeds: Sequence[InfluxFeed]) -> dict[tuple[str, str], float]:
    """(site, asset) -> how often the fastest feed serving it refreshes it (for staleness)."""
    fastest: dict[tuple[str, str], float] = {}
    for feed in feeds:
        for asset, _signal in feed.targets:
            key = (feed.site, asset)
            fastest[key] = min(fastest.get(key, math.inf), feed.expected_interval_s)
    return fastest
