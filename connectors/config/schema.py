"""The plant configuration schema: one TOML file, pydantic v2 models with ``extra="forbid"``.

These models only check the shape of each key; cross-references (templates, machines, SKUs,
products, alarm targets) are checked in ``connectors.config`` while converting to the domain's
plain dataclasses (``twin.spec``). Field names carry units (``_s``, ``_h``, ``_d``).
"""

from __future__ import annotations

from datetime import date, time
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors.config.feeds import FeedsModel
from connectors.config.forecaster import ForecasterModel
from connectors.config.influx_feed import InfluxFeedModel
from connectors.config.modbus import ModbusDeviceModel, RegisterMapModel
from connectors.config.opcua import OpcUaSourceModel
from connectors.config.reports import ReportsModel
from twin.spec import AlarmKind, ItemKind, MachineStatus, Role, SignalKind, SiteKind, Transport
from twin.validation import Id, Int, NonNegative, Num, Positive  # the shared field constraints (strict numbers)

__all__ = [
    "AlarmModel",
    "DemandModel",
    "DowntimeModel",
    "FleetModel",
    "HistorianModel",
    "InventoryModel",
    "MachineGroupModel",
    "Model",
    "PlantModel",
    "ProductModel",
    "ReasonModel",
    "RulesModel",
    "ShiftModel",
    "SignalModel",
    "SiteModel",
    "SourcesModel",
    "TemplateModel",
]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
PriorityName = Literal["low", "medium", "high", "urgent"]


class Model(BaseModel):
    """Base of every section: unknown keys are errors; numbers are never parsed from strings."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, str_strip_whitespace=True)


class FleetModel(Model):
    """``[fleet]``: the fleet's identity and twin-wide settings."""

    id: Id
    name: str = Field(min_length=1)
    stale_after_polls: Num = Field(default=3.0, ge=1.0, le=1000.0)


class HistorianModel(Model):
    """``[historian]``: where history is kept. Secrets never live in this file."""

    kind: Literal["sqlite", "influxdb"] = "sqlite"
    path: str = "var/history.db"
    retention_raw_days: Num = Field(default=30.0, gt=0, le=3650)
    rollup_interval_s: Num = Field(default=60.0, gt=0, le=86400)
    checkpoint_interval_s: Num = Field(default=300.0, gt=0, le=86400)
    url: str | None = None
    org: str | None = None
    bucket: str | None = None
    token_env: str | None = None
    token_file: str | None = None
    token: str | None = Field(default=None, description="refused: tokens never come from the config")
    # how InfluxDB is read and written: Flux and /api/v2/write (2.x, the default), or InfluxQL over the
    # v1 query API (1.x; 2.x through a DBRP mapping; InfluxDB 3 Core) with /write (1.x) or /api/v2/write
    query: Literal["flux", "influxql"] = "flux"
    write_api: Literal["v2", "v1"] = "v2"
    database: str | None = Field(default=None, min_length=1)  # InfluxQL's database (default: bucket)
    retention_policy: str | None = Field(default=None, min_length=1)
    username: str | None = Field(default=None, min_length=1)  # 1.x with authentication: basic auth
    password_env: str | None = Field(default=None, min_length=1)
    password_file: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _check_kind(self) -> Self:
        if self.token is not None:
            raise ValueError(
                "token: an InfluxDB token is never read from the configuration file; "
                "name an environment variable with token_env or a file with token_file"
            )
        if self.kind == "influxdb" and self.query == "influxql":
            self._check_influxql()
        elif self.kind == "influxdb":
            missing = [k for k in ("url", "org", "bucket") if not getattr(self, k)]
            if missing:
                raise ValueError(f"kind 'influxdb' needs {', '.join(missing)}")
            if not (self.token_env or self.token_file):
                raise ValueError("kind 'influxdb' needs token_env or token_file")
            if self.write_api == "v1":
                raise ValueError("write_api 'v1' (/write) goes with query 'influxql'; Flux reads a 2.x bucket")
        return self

    def _check_influxql(self) -> None:
        if not self.url:
            raise ValueError("kind 'influxdb' needs url")
        if not (self.database or self.bucket):
            raise ValueError("query 'influxql' needs database (or bucket: the database mapped to it)")
        if self.write_api == "v2" and not (self.org and self.bucket):
            raise ValueError("write_api 'v2' (/api/v2/write) needs org and bucket; a 1.x server takes write_api 'v1'")
        if self.username and not (self.password_env or self.password_file):
            raise ValueError("username needs password_env or password_file (never the password itself)")
        if self.username and (self.token_env or self.token_file):
            raise ValueError("give a token (token_env/token_file) or a username and password, not both")


class SignalModel(Model):
    """One signal of a machine template."""

    name: Id
    kind: SignalKind
    unit: str = ""
    description: str = ""
    counter_bits: Literal[16, 32, 64] | None = None


class TemplateModel(Model):
    """``[[templates]]``: a kind of machine."""

    id: Id
    role: Role
    description: str = ""
    ideal_cycle_time_s: Positive
    batch_size: Int = Field(default=1, ge=1, le=10_000)
    mtbf_h: Positive = 200.0
    mttr_h: Positive = 1.0
    scrap_rate: Num = Field(default=0.02, ge=0.0, lt=1.0)
    status_codes: dict[int, MachineStatus] = Field(default_factory=dict)
    signals: list[SignalModel] = Field(min_length=1)


class MachineGroupModel(Model):
    """One machine (``id``) or ``count`` machines named ``id_prefix``1..N, built from ``template``."""

    template: Id
    id: Id | None = None
    count: Int | None = Field(default=None, ge=1, le=1000)
    id_prefix: Id | None = None

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if self.id is not None and (self.count is not None or self.id_prefix is not None):
            raise ValueError("give either id, or count with id_prefix, not both")
        if self.id is None and (self.count is None or self.id_prefix is None):
            raise ValueError("give either id, or count with id_prefix")
        return self


class ShiftModel(Model):
    """A shift in the site's local time; ``end <= start`` means it ends the next day."""

    name: str = Field(min_length=1)
    days: list[Weekday] = Field(min_length=1)
    start: time
    end: time


class InventoryModel(Model):
    """``[[sites.inventory]]``: a stocked item and its (s, Q) policy."""

    sku: Id
    name: str = Field(min_length=1)
    kind: ItemKind
    unit: str = Field(min_length=1)
    reorder_point: NonNegative
    reorder_qty: Positive
    supplier: str = Field(min_length=1)
    lead_time_d: Positive
    lead_time_sd_d: NonNegative = 0.0
    transport: Transport = Transport.LOCAL
    initial_on_hand: NonNegative = 0.0


class DemandModel(Model):
    """``[[sites.demand]]``: how orders of a product family arrive at a site."""

    product: Id
    orders_per_day: NonNegative
    weekday_factors: list[NonNegative] = Field(default_factory=lambda: [1.0] * 7, min_length=7, max_length=7)
    hour_factors: list[NonNegative] = Field(default_factory=lambda: [1.0] * 24, min_length=24, max_length=24)


class ReasonModel(Model):
    """``[sites.downtime.reasons]``: the reason tree; ``children`` adds sub-reasons under a reason."""

    planned: list[Id] = Field(default_factory=lambda: ["maintenance", "changeover", "scheduled_break", "no_shift"])
    unplanned: list[Id] = Field(
        default_factory=lambda: ["breakdown", "material_shortage", "starved", "blocked", "quality_hold"])
    children: dict[Id, list[Id]] = Field(default_factory=dict)


class RulesModel(Model):
    """``[sites.downtime.rules]``: which reason a stop gets automatically."""

    fault_codes: dict[int, Id] = Field(default_factory=dict)
    fault: Id = "breakdown"
    maintenance: Id = "maintenance"
    setup: Id = "changeover"


class DowntimeModel(Model):
    """``[sites.downtime]``: a site's downtime reasons, its classification rules and scheduled breaks."""

    reasons: ReasonModel = Field(default_factory=ReasonModel)
    rules: RulesModel = Field(default_factory=RulesModel)
    breaks: list[ShiftModel] = Field(default_factory=list)


class SiteModel(Model):
    """``[[sites]]``: a micro-factory."""

    id: Id
    name: str = Field(min_length=1)
    kind: SiteKind
    region: str = ""
    timezone: str
    daily_plan_units: Int = Field(default=0, ge=0)
    shifts: list[ShiftModel] = Field(min_length=1)
    holidays: list[date] = Field(default_factory=list)
    machines: list[MachineGroupModel] = Field(min_length=1)
    inventory: list[InventoryModel] = Field(default_factory=list)
    demand: list[DemandModel] = Field(default_factory=list)
    downtime: DowntimeModel | None = None


class ProductModel(Model):
    """``[[products]]``: a configure-to-order product family."""

    id: Id
    name: str = Field(min_length=1)
    routing: list[Role] = Field(min_length=1)
    bom: dict[str, Positive] = Field(default_factory=dict)
    batch_min: Int = Field(default=1, ge=1)
    batch_max: Int = Field(default=1, ge=1)
    due_h: Positive = 48.0

    @model_validator(mode="after")
    def _batch(self) -> Self:
        if self.batch_max < self.batch_min:
            raise ValueError(f"batch_max ({self.batch_max}) is below batch_min ({self.batch_min})")
        return self


class AlarmModel(Model):
    """``[[alarms]]``: an alarm rule. Empty filters mean every site/template/machine/SKU."""

    id: Id
    kind: AlarmKind
    priority: PriorityName
    message: str = Field(min_length=1)
    signal: Id | None = None
    threshold: Num | None = None
    for_s: NonNegative = 0.0
    horizon_h: Num | None = None
    sites: list[Id] = Field(default_factory=list)
    templates: list[Id] = Field(default_factory=list)
    machines: list[Id] = Field(default_factory=list)
    skus: list[Id] = Field(default_factory=list)

    @model_validator(mode="after")
    def _fields_for_kind(self) -> Self:
        if self.kind.predictive:
            return self._predictive()
        if self.horizon_h is not None:
            raise ValueError(f"kind '{self.kind.value}' is evaluated now: horizon_h belongs to the predictive kinds "
                             "(failure_risk, stockout_risk, late_order_risk)")
        if self.kind in (AlarmKind.ABOVE, AlarmKind.BELOW):
            if self.signal is None or self.threshold is None:
                raise ValueError(f"kind '{self.kind.value}' needs signal and threshold")
            if self.skus:
                raise ValueError(f"kind '{self.kind.value}' watches machines: skus does not apply")
        elif self.kind is AlarmKind.STOCK_BELOW_REORDER:
            if self.signal is not None or self.threshold is not None:
                raise ValueError("kind 'stock_below_reorder' uses each item's reorder point: "
                                 "signal and threshold do not apply")
            if self.templates or self.machines:
                raise ValueError("kind 'stock_below_reorder' watches stock: templates/machines do not apply")
        elif self.kind is AlarmKind.MACHINE_DOWN and (self.signal is not None or self.threshold is not None):
            raise ValueError("kind 'machine_down' uses the status signal: signal and threshold do not apply")
        return self

    def _predictive(self) -> Self:
        kind = self.kind.value  # threshold and horizon_h are checked with their paths in connectors.config
        if self.signal is not None:
            raise ValueError(f"kind '{kind}' is a probability from the forecaster: signal does not apply")
        if self.kind is AlarmKind.FAILURE_RISK and self.skus:
            raise ValueError("kind 'failure_risk' watches machines: skus does not apply")
        if self.kind is not AlarmKind.FAILURE_RISK and (self.templates or self.machines):
            raise ValueError(f"kind '{kind}' watches {'stock' if self.kind is AlarmKind.STOCKOUT_RISK else 'orders'}: "
                             "templates/machines do not apply")
        if self.kind is AlarmKind.LATE_ORDER_RISK and self.skus:
            raise ValueError("kind 'late_order_risk' watches orders: skus does not apply")
        return self


class SourcesModel(Model):
    """``[sources]``: where live data comes from (Modbus devices and their register maps, InfluxDB feeds, OPC UA)."""

    register_maps: list[RegisterMapModel] = Field(default_factory=list)
    modbus: list[ModbusDeviceModel] = Field(default_factory=list)
    influx: list[InfluxFeedModel] = Field(default_factory=list)
    opcua: list[OpcUaSourceModel] = Field(default_factory=list)


class PlantModel(Model):
    """The whole configuration file."""

    fleet: FleetModel
    historian: HistorianModel = Field(default_factory=HistorianModel)
    templates: list[TemplateModel] = Field(min_length=1)
    sites: list[SiteModel] = Field(min_length=1)
    products: list[ProductModel] = Field(default_factory=list)
    alarms: list[AlarmModel] = Field(default_factory=list)
    sources: SourcesModel = Field(default_factory=SourcesModel)
    feeds: FeedsModel | None = None
    reports: ReportsModel | None = None
    forecaster: ForecasterModel | None = None
