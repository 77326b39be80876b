"""Load the one plant configuration file: parse TOML, validate everything, convert to domain types.

``load(path)`` either returns a ``PlantConfig`` or raises one ``twin.errors.ConfigError`` listing
every problem as ``file: path.to.key: what is wrong (got X)``. Nothing is dropped or clamped.

>>> from pathlib import Path
>>> cfg = load(Path(__file__).parents[2] / "examples" / "fleet.toml")
>>> sorted(s.kind.value for s in cfg.fleet.sites)[:1]
['last-mile']
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from connectors.config.downtime import convert_downtime
from connectors.config.feeds import FeedsConfig, convert_feeds
from connectors.config.forecaster import ForecasterConfig, convert_forecaster
from connectors.config.influx_feed import InfluxFeed, convert_influx_feeds, feed_intervals
from connectors.config.modbus import convert_modbus
from connectors.config.opcua import OpcUaSource, convert_opcua, opcua_intervals
from connectors.config.reports import ReportsConfig, convert_reports
from connectors.config.schema import AlarmModel, PlantModel, SiteModel, TemplateModel
from connectors.modbus.spec import ModbusDevice
from twin.errors import ConfigError, Problem
from twin.forecast import MAX_HORIZON_H
from twin.frozen import FrozenDict
from twin.spec import (
    AlarmId,
    AlarmKind,
    AlarmRule,
    DemandSpec,
    FleetSpec,
    InventoryItemSpec,
    MachineId,
    MachineSpec,
    MachineTemplate,
    Priority,
    ProductFamily,
    ProductId,
    Shift,
    ShiftCalendar,
    SignalKind,
    SignalName,
    SignalSpec,
    SiteId,
    SiteSpec,
    Sku,
    TemplateId,
)
from twin.tomltext import loads_toml
from twin.validation import problems as pydantic_problems

__all__ = [
    "MAX_CONFIG_BYTES",
    "HistorianConfig",
    "PlantConfig",
    "load",
    "load_text",
    "pydantic_problems",
    "read_config_text",
]

_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_COUNTER_KINDS = (SignalKind.GOOD_COUNT, SignalKind.SCRAP_COUNT)


@dataclass(frozen=True, slots=True, kw_only=True)
class HistorianConfig:
    """Where history is kept. ``path`` is resolved against the configuration file's folder."""

    kind: Literal["sqlite", "influxdb"]
    path: Path
    retention_raw_days: float
    rollup_interval_s: float
    checkpoint_interval_s: float
    url: str | None = None
    org: str | None = None
    bucket: str | None = None
    token_env: str | None = None
    token_file: Path | None = None
    query: Literal["flux", "influxql"] = "flux"
    write_api: Literal["v2", "v1"] = "v2"
    database: str | None = None
    retention_policy: str | None = None
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlantConfig:
    """A validated plant configuration."""

    source: Path
    fleet: FleetSpec
    historian: HistorianConfig
    modbus: tuple[ModbusDevice, ...] = ()  # the Modbus devices polled
    influx: tuple[InfluxFeed, ...] = ()  # the InfluxDB feed sources
    feeds: FeedsConfig | None = None  # the orders/shipments feeds, when configured
    opcua: tuple[OpcUaSource, ...] = ()  # the OPC UA servers read
    reports: ReportsConfig | None = None  # where shift reports go, and whether the collector writes them
    forecaster: ForecasterConfig = field(default_factory=ForecasterConfig)  # predictive alarms (off by default)


MAX_CONFIG_BYTES = 16 * 1024 * 1024  # a plant configuration is kilobytes; anything this big is a mistake


def read_config_text(path: Path) -> str:
    """The text of a file the configuration loader reads: UTF-8, at most ``MAX_CONFIG_BYTES``.

    Raises ``ConfigError`` naming ``path`` when it cannot be read, is too large or is not UTF-8.
    """

    def refuse(message: str) -> ConfigError:
        return ConfigError(str(path), [Problem(path="", message=message, has_got=False)])

    try:
        with path.open("rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise refuse(f"cannot read file: {exc.strerror or exc}") from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise refuse(f"file over {MAX_CONFIG_BYTES // (1024 * 1024)} MiB: not a plant configuration")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise refuse(f"not UTF-8 text: byte {exc.start} (line {line}) is {data[exc.start]:#04x}") from None


def load(path: str | Path) -> PlantConfig:
    """Read, validate and convert the configuration at ``path``; raise ``ConfigError`` if invalid."""
    p = Path(path)
    return load_text(read_config_text(p), source=p)


def load_text(text: str, *, source: str | Path = "<string>") -> PlantConfig:
    """Validate configuration ``text`` (TOML); ``source`` names it in error messages."""
    src = Path(source)
    raw = loads_toml(text, str(src))
    try:
        model = PlantModel.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(str(src), pydantic_problems(exc)) from None
    problems: list[Problem] = []
    fleet = _convert_fleet(model, problems)
    devices: tuple[ModbusDevice, ...] = ()
    if not problems:
        devices = convert_modbus(model.sources, fleet, problems)
        fleet = _with_poll_intervals(fleet, devices)
    influx: tuple[InfluxFeed, ...] = ()
    feeds: FeedsConfig | None = None
    if not problems:
        base = src.parent if src.name != "<string>" else Path.cwd()
        influx = convert_influx_feeds(model.sources.influx, fleet, problems, base=base, modbus=devices)
        if influx:  # influx-fed machines are expected as often as their feed refreshes them
            fleet = _with_poll_intervals(fleet, devices, feed_intervals(influx))
        feeds = convert_feeds(model.feeds, src, fleet, problems)
    opcua: tuple[OpcUaSource, ...] = ()
    if not problems and model.sources.opcua:  # OPC UA servers, beside the Modbus devices and the InfluxDB feeds
        fed = {(d.site, p.asset, p.signal): f"sources.modbus[{i}]" for i, d in enumerate(devices) for p in d.points}
        opcua = convert_opcua(model.sources.opcua, fleet, problems, base=base, fed=fed)
        fleet = _with_poll_intervals(fleet, devices, {**feed_intervals(influx), **opcua_intervals(opcua)})
    reports = convert_reports(model.reports, src, fleet, problems) if not problems else None
    if problems:
        raise ConfigError(str(src), problems)
    return PlantConfig(source=src, fleet=fleet, historian=_convert_historian(model, src), modbus=devices,
                       influx=influx, feeds=feeds, opcua=opcua, reports=reports,
                       forecaster=convert_forecaster(model.forecaster))


def _dupes(values: list[str]) -> set[str]:
    return {v for v, n in Counter(values).items() if n > 1}


def _convert_templates(model: PlantModel, problems: list[Problem]) -> dict[str, MachineTemplate]:
    templates: dict[str, MachineTemplate] = {}
    dupes = _dupes([t.id for t in model.templates])
    for i, t in enumerate(model.templates):
        path = f"templates[{i}]"
        if t.id in dupes:
            problems.append(Problem(path=f"{path}.id", message="duplicate template id", got=t.id))
        templates[t.id] = _convert_template(t, path, problems)
    return templates


def _convert_template(t: TemplateModel, path: str, problems: list[Problem]) -> MachineTemplate:
    names = [s.name for s in t.signals]
    for j, s in enumerate(t.signals):
        if s.name in _dupes(names):
            problems.append(Problem(path=f"{path}.signals[{j}].name", message="duplicate signal name", got=s.name))
        if s.counter_bits is not None and s.kind not in _COUNTER_KINDS:
            problems.append(Problem(path=f"{path}.signals[{j}].counter_bits",
                                    message=f"only counters (good_count, scrap_count) have a width, not {s.kind.value}",
                                    got=s.counter_bits))
    for kind in (SignalKind.STATUS, SignalKind.GOOD_COUNT, SignalKind.SCRAP_COUNT):
        of_kind = [s.name for s in t.signals if s.kind is kind]
        if len(of_kind) > 1:
            problems.append(Problem(path=f"{path}.signals", message=f"more than one signal of kind {kind.value}",
                                    got=of_kind))
    has_status = any(s.kind is SignalKind.STATUS for s in t.signals)
    if has_status and not t.status_codes:
        problems.append(Problem(path=f"{path}.status_codes",
                                message="a template with a status signal needs status_codes (code -> status)",
                                has_got=False))
    if t.status_codes and not has_status:
        problems.append(Problem(path=f"{path}.status_codes", message="status_codes given but no signal of kind status",
                                got=sorted(t.status_codes)))
    for code, status in t.status_codes.items():
        if status.value == "unknown":
            problems.append(Problem(path=f"{path}.status_codes.{code}",
                                    message="'unknown' is what the twin shows for unmapped codes; map a real status",
                                    got=status.value))
        if not 0 <= code <= 0xFFFF:
            problems.append(Problem(path=f"{path}.status_codes.{code}", message="status code must be 0..65535",
                                    got=code))
    signals = tuple(
        SignalSpec(name=SignalName(s.name), kind=s.kind, unit=s.unit, description=s.description,
                   counter_bits=s.counter_bits or 32)
        for s in t.signals
    )
    return MachineTemplate(
        id=TemplateId(t.id), role=t.role, ideal_cycle_time_s=t.ideal_cycle_time_s,
        status_codes=FrozenDict(t.status_codes), signals=signals, description=t.description,
        batch_size=t.batch_size, mtbf_h=t.mtbf_h, mttr_h=t.mttr_h, scrap_rate=t.scrap_rate,
    )


def _convert_site(s: SiteModel, path: str, templates: dict[str, MachineTemplate], product_ids: set[str],
                  problems: list[Problem]) -> SiteSpec:
    try:
        ZoneInfo(s.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(Problem(path=f"{path}.timezone", message="unknown IANA time zone", got=s.timezone))
    machines: list[MachineSpec] = []
    origin: dict[str, str] = {}
    for j, g in enumerate(s.machines):
        gpath = f"{path}.machines[{j}]"
        template = templates.get(g.template)
        if template is None:
            problems.append(Problem(path=f"{gpath}.template", message="no template with this id", got=g.template))
            continue
        ids = [g.id] if g.id is not None else [f"{g.id_prefix}{n}" for n in range(1, (g.count or 0) + 1)]
        for mid in ids:
            if mid in origin:
                problems.append(Problem(path=gpath, message=f"machine id {mid!r} already defined at {origin[mid]}",
                                        got=mid))
                continue
            origin[mid] = gpath
            machines.append(MachineSpec(id=MachineId(mid), site=SiteId(s.id), template=template))
    skus = [i.sku for i in s.inventory]
    items = []
    for j, it in enumerate(s.inventory):
        ipath = f"{path}.inventory[{j}]"
        if it.sku in _dupes(skus):
            problems.append(Problem(path=f"{ipath}.sku", message="duplicate SKU at this site", got=it.sku))
        if it.sku in origin:
            problems.append(Problem(path=f"{ipath}.sku", message="a machine of this site already has this id",
                                    got=it.sku))
        items.append(InventoryItemSpec(
            sku=Sku(it.sku), name=it.name, kind=it.kind, unit=it.unit, reorder_point=it.reorder_point,
            reorder_qty=it.reorder_qty, supplier=it.supplier, lead_time_d=it.lead_time_d,
            lead_time_sd_d=it.lead_time_sd_d, transport=it.transport, initial_on_hand=it.initial_on_hand,
        ))
    demand = []
    for j, d in enumerate(s.demand):
        if d.product not in product_ids:
            problems.append(Problem(path=f"{path}.demand[{j}].product", message="no product with this id",
                                    got=d.product))
        demand.append(DemandSpec(product=ProductId(d.product), orders_per_day=d.orders_per_day,
                                 weekday_factors=tuple(d.weekday_factors), hour_factors=tuple(d.hour_factors)))
    shifts = tuple(
        Shift(name=sh.name, weekdays=frozenset(_WEEKDAYS[d] for d in sh.days), start=sh.start, end=sh.end)
        for sh in s.shifts
    )
    for j, sh in enumerate(s.shifts):
        if sh.start == sh.end:
            problems.append(Problem(path=f"{path}.shifts[{j}].end",
                                    message="a shift cannot start and end at the same time", got=str(sh.end)))
    return SiteSpec(
        id=SiteId(s.id), name=s.name, kind=s.kind, timezone=s.timezone,
        calendar=ShiftCalendar(shifts=shifts, holidays=frozenset(s.holidays)),
        machines=tuple(machines), inventory=tuple(items), demand=tuple(demand),
        daily_plan_units=s.daily_plan_units, region=s.region,
        downtime=convert_downtime(s.downtime, f"{path}.downtime", problems),
    )


def _check_routings(model: PlantModel, sites: list[SiteSpec], products: dict[str, ProductFamily],
                    problems: list[Problem]) -> None:
    for i, site in enumerate(sites):
        roles = {m.role for m in site.machines}
        stocked = {it.sku for it in site.inventory}
        for j, d in enumerate(site.demand):
            product = products.get(d.product)
            if product is None:
                continue
            missing_roles = [r.value for r in product.routing if r not in roles]
            if missing_roles:
                problems.append(Problem(path=f"sites[{i}].demand[{j}].product",
                                        message=f"site has no machine for routing step(s) {missing_roles}",
                                        got=d.product))
            missing_skus = sorted(sku for sku in product.bom if sku not in stocked)
            if missing_skus:
                problems.append(Problem(
                    path=f"sites[{i}].demand[{j}].product",
                    message=f"bill of materials needs SKUs this site does not stock: {missing_skus}", got=d.product,
                ))
    del model


def _convert_alarms(model: PlantModel, sites: list[SiteSpec], templates: dict[str, MachineTemplate],
                    problems: list[Problem]) -> tuple[AlarmRule, ...]:
    site_ids = {s.id for s in sites}
    machine_ids = {m.id for s in sites for m in s.machines}
    skus = {it.sku for s in sites for it in s.inventory}
    rules = []
    dupes = _dupes([a.id for a in model.alarms])
    for i, a in enumerate(model.alarms):
        path = f"alarms[{i}]"
        if a.id in dupes:
            problems.append(Problem(path=f"{path}.id", message="duplicate alarm id", got=a.id))
        for key, values, known in (("sites", a.sites, site_ids), ("templates", a.templates, set(templates)),
                                   ("machines", a.machines, machine_ids), ("skus", a.skus, skus)):
            for j, v in enumerate(values):
                if v not in known:
                    problems.append(Problem(path=f"{path}.{key}[{j}]", message=f"no such {key[:-1]}", got=v))
        if a.kind.predictive:
            _check_predictive(a, path, problems)
        if a.signal is not None:
            watched = [templates[t] for t in (a.templates or list(templates)) if t in templates]
            if not any(t.signal(a.signal) for t in watched):
                problems.append(Problem(path=f"{path}.signal", message="no watched template has this signal",
                                        got=a.signal))
        rules.append(AlarmRule(
            id=AlarmId(a.id), kind=AlarmKind(a.kind), priority=Priority[a.priority.upper()], message=a.message,
            signal=SignalName(a.signal) if a.signal else None, threshold=a.threshold, for_s=a.for_s,
            horizon_h=a.horizon_h, sites=frozenset(SiteId(x) for x in a.sites),
            templates=frozenset(TemplateId(x) for x in a.templates),
            machines=frozenset(MachineId(x) for x in a.machines), skus=frozenset(Sku(x) for x in a.skus),
        ))
    return tuple(rules)


def _check_predictive(a: AlarmModel, path: str, problems: list[Problem]) -> None:
    """A predictive rule's threshold (a probability in (0, 1)) and horizon_h (hours, at most 14 days)."""
    kind = a.kind.value
    if a.threshold is None or not 0.0 < a.threshold < 1.0:
        problems.append(Problem(path=f"{path}.threshold", got=a.threshold, has_got=a.threshold is not None,
                                message=f"kind '{kind}' needs a probability strictly between 0 and 1"))
    if a.horizon_h is None or not 0.0 < a.horizon_h <= MAX_HORIZON_H:
        problems.append(Problem(path=f"{path}.horizon_h", got=a.horizon_h, has_got=a.horizon_h is not None,
                                message=f"kind '{kind}' needs hours ahead, more than 0 and at most "
                                        f"{MAX_HORIZON_H:g} (14 days)"))


def _convert_fleet(model: PlantModel, problems: list[Problem]) -> FleetSpec:
    templates = _convert_templates(model, problems)
    product_dupes = _dupes([p.id for p in model.products])
    products: dict[str, ProductFamily] = {}
    for i, p in enumerate(model.products):
        if p.id in product_dupes:
            problems.append(Problem(path=f"products[{i}].id", message="duplicate product id", got=p.id))
        products[p.id] = ProductFamily(
            id=ProductId(p.id), name=p.name, routing=tuple(p.routing),
            bom=FrozenDict({Sku(k): v for k, v in p.bom.items()}), batch_min=p.batch_min,
            batch_max=p.batch_max, due_h=p.due_h,
        )
    site_dupes = _dupes([s.id for s in model.sites])
    sites = []
    for i, s in enumerate(model.sites):
        if s.id in site_dupes:
            problems.append(Problem(path=f"sites[{i}].id", message="duplicate site id", got=s.id))
        sites.append(_convert_site(s, f"sites[{i}]", templates, set(products), problems))
    _check_routings(model, sites, products, problems)
    alarms = _convert_alarms(model, sites, templates, problems)
    return FleetSpec(
        id=model.fleet.id, name=model.fleet.name, sites=tuple(sites), templates=tuple(templates.values()),
        products=tuple(products.values()), alarms=alarms, stale_after_polls=model.fleet.stale_after_polls,
    )


def _with_poll_intervals(fleet: FleetSpec, devices: tuple[ModbusDevice, ...],
                         feeds: dict[tuple[str, str], float] | None = None) -> FleetSpec:
    """Each machine and item is expected as often as the fastest device or InfluxDB feed that serves it.

    ``feeds`` maps (site, asset) to the refresh interval of the InfluxDB feeds serving it.
    """
    fastest: dict[tuple[str, str], float] = dict(feeds or {})
    for dev in devices:
        for point in dev.points:
            key = (dev.site, point.asset)
            fastest[key] = min(fastest.get(key, float("inf")), float(dev.poll_interval_s))
    sites = []
    for site in fleet.sites:
        machines = tuple(
            replace(m, poll_interval_s=fastest.get((site.id, m.id), m.poll_interval_s)) for m in site.machines
        )
        items = tuple(
            replace(it, poll_interval_s=fastest.get((site.id, it.sku), it.poll_interval_s))
            for it in site.inventory
        )
        sites.append(replace(site, machines=machines, inventory=items))
    return replace(fleet, sites=tuple(sites))


def _convert_historian(model: PlantModel, src: Path) -> HistorianConfig:
    h = model.historian
    base = src.parent if src.name != "<string>" else Path.cwd()

    def resolve(p: str) -> Path:
        return Path(os.path.normpath(base / p))

    return HistorianConfig(
        kind=h.kind, path=resolve(h.path),
        retention_raw_days=h.retention_raw_days, rollup_interval_s=h.rollup_interval_s,
        checkpoint_interval_s=h.checkpoint_interval_s, url=h.url, org=h.org, bucket=h.bucket,
        token_env=h.token_env,
        token_file=resolve(h.token_file) if h.token_file else None,
        query=h.query, write_api=h.write_api, database=h.database, retention_policy=h.retention_policy,
        username=h.username, password_env=h.password_env,
        password_file=resolve(h.password_file) if h.password_file else None,
    )
