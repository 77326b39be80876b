"""What the dashboard is given to work with: the query service and the what-if runner, and their types.

The app factory receives one ``Services`` object; callbacks reach the outside world only through
it. The what-if result is a plain view-model (``WhatIfResult``) with ``to_dict``/``from_dict`` so it
can sit in a ``dcc.Store`` and be compared across runs; the adapter from the simulation engine's
projection lives in ``dashboard.whatif_engine``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from dashboard.queries import QueryService
from dashboard.scenarios import Limits

__all__ = ["Actual", "Band", "KpiDelta", "OrderChance", "Services", "WhatIfRequest", "WhatIfResult", "WhatIfRunner"]

Progress = Callable[[int, int], None]  # (replications done, replications planned)


@dataclass(frozen=True, slots=True, kw_only=True)
class WhatIfRequest:
    """One what-if run: a scenario document (see ``dashboard.scenarios``) forked at ``at`` (None: now)."""

    site: str
    scenario: dict[str, Any]
    horizon_h: float
    replications: int
    at: datetime | None = None
    seed: int = 1
    requested_by: str = ""  # the user the server authorised the run for ("" unknown): runs are capped per user


@dataclass(frozen=True, slots=True, kw_only=True)
class Band:
    """P10/P50/P90 of one KPI over the horizon, for the baseline or the scenario."""

    kpi: str
    unit: str
    variant: str  # "baseline" | "scenario"
    t: tuple[datetime, ...]
    p10: tuple[float, ...]
    p50: tuple[float, ...]
    p90: tuple[float, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Actual:
    """The recent actual trend of a KPI, which the fan chart continues."""

    kpi: str
    unit: str
    t: tuple[datetime, ...]
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class KpiDelta:
    """Scenario minus baseline of a KPI, with a confidence interval of the paired difference."""

    kpi: str
    unit: str
    baseline: float
    scenario: float
    delta: float
    ci_low: float
    ci_high: float
    higher_is_better: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderChance:
    """The probability that an open order ships on time, baseline and scenario (Wilson interval)."""

    order: str
    due: datetime
    p_baseline: float
    p_scenario: float
    ci_low: float
    ci_high: float


def _dt(x: Any) -> datetime:
    return x if isinstance(x, datetime) else datetime.fromisoformat(str(x))


@dataclass(frozen=True, slots=True, kw_only=True)
class WhatIfResult:
    """What the what-if page shows for one run."""

    name: str
    site: str
    at: datetime
    horizon_h: float
    replications: int
    bands: tuple[Band, ...] = ()
    actuals: tuple[Actual, ...] = ()
    deltas: tuple[KpiDelta, ...] = ()
    orders: tuple[OrderChance, ...] = ()
    notes: tuple[str, ...] = ()

    def kpis(self) -> list[str]:
        return list(dict.fromkeys(b.kpi for b in self.bands))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (datetimes as ISO text)."""

        def conv(x: Any) -> Any:
            if isinstance(x, datetime):
                return x.isoformat()
            if isinstance(x, list | tuple):
                return [conv(v) for v in x]
            if isinstance(x, dict):
                return {k: conv(v) for k, v in x.items()}
            return x

        out: dict[str, Any] = conv(asdict(self))
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WhatIfResult:
        def ts(xs: Any) -> tuple[datetime, ...]:
            return tuple(_dt(x) for x in xs)

        return cls(
            name=d["name"], site=d["site"], at=_dt(d["at"]), horizon_h=float(d["horizon_h"]),
            replications=int(d["replications"]),
            bands=tuple(Band(**{**b, "t": ts(b["t"]), "p10": tuple(b["p10"]), "p50": tuple(b["p50"]),
                                "p90": tuple(b["p90"])}) for b in d.get("bands", [])),
            actuals=tuple(Actual(**{**a, "t": ts(a["t"]), "values": tuple(a["values"])})
                          for a in d.get("actuals", [])),
            deltas=tuple(KpiDelta(**k) for k in d.get("deltas", [])),
            orders=tuple(OrderChance(**{**o, "due": _dt(o["due"])}) for o in d.get("orders", [])),
            notes=tuple(d.get("notes", [])),
        )


class WhatIfRunner(Protocol):
    """Runs a what-if (in a background worker); calls ``progress`` as replications finish."""

    def run(self, request: WhatIfRequest, progress: Progress) -> WhatIfResult: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """Everything the dashboard reads through: queries (cached historian reads) and the what-if runner.

    ``cache_dir`` holds the background-callback job cache (created by the app factory, not at import);
    ``limits`` caps what one what-if run may ask for (checked on the server).
    """

    queries: QueryService
    whatif: WhatIfRunner | None = None
    cache_dir: Path | None = None
    limits: Limits = field(default_factory=Limits)
    extra: dict[str, Any] = field(default_factory=dict)
