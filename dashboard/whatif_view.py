"""The what-if page's view models: the request, the result and its parts, and the runner protocol.

One job: the plain values that cross between the what-if page (``dashboard.pages.whatif``) and the
runner behind it (``dashboard.whatif_engine``). ``WhatIfResult`` has ``to_dict``/``from_dict`` so it
can sit in a ``dcc.Store`` and be compared across runs; the adapter from the simulation engine's
projection is ``dashboard.whatif_engine.to_result``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

from twin.sim.whatif import Progress

__all__ = [
    "Actual",
    "FanBand",
    "KpiDelta",
    "OrderChance",
    "Progress",
    "WhatIfRequest",
    "WhatIfResult",
    "WhatIfRunner",
]



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
class FanBand:
    """P10/P50/P90 of one KPI over the horizon on the page's time axis, for the baseline or the scenario.

    The page's view of an engine band (``twin.sim.projection.Band``: one metric in seconds from the
    fork), labelled, in the unit shown and at UTC times.
    """

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
    bands: tuple[FanBand, ...] = ()
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
            bands=tuple(FanBand(**{**b, "t": ts(b["t"]), "p10": tuple(b["p10"]), "p50": tuple(b["p50"]),
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
