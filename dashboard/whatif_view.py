"""The what-if page's view models: the request, the result and its parts, and the runner protocol.

One job: the plain values that cross between the what-if page (``dashboard.pages.whatif``) and the
runner behind it (``dashboard.whatif_engine``). ``WhatIfResult`` has ``to_dict``/``from_dict`` so it
can sit in a ``dcc.Store``, in the server's run store (``dashboard.scenario_store``) and be compared
across runs; the adapter from the simulation engine's projection is ``dashboard.whatif_engine.to_result``.

How a KPI delta reads (``delta_row``, pure): baseline and scenario in the KPI's unit, the delta and
its 95 % interval in the unit of a difference (``pp`` for a KPI in %) with as many decimals as give
the interval's width two significant figures, coloured only when the interval excludes zero, and
an inline bar on the row's own scale (each KPI its own axis, so a small change never sits on zero).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from twin.sim.whatif import Progress

__all__ = [
    "Actual",
    "DeltaRow",
    "Effect",
    "FanBand",
    "KpiDelta",
    "OrderChance",
    "Progress",
    "WhatIfRequest",
    "WhatIfResult",
    "WhatIfRunner",
    "decimals_for",
    "delta_row",
    "signed",
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
    delta_unit: str = ""  # the unit of the difference ("pp" for a KPI in %); "" the KPI's unit
    decimals: int = 1  # the KPI's own decimals (twin.sim.kpis), used when the interval has no width


@dataclass(frozen=True, slots=True, kw_only=True)
class Effect:
    """One intervention run alone against the baseline (a smaller paired run): its on-time and output deltas."""

    intervention: str  # the intervention in words (dashboard.scenarios.describe)
    replications: int
    on_time: KpiDelta | None = None
    output: KpiDelta | None = None


Tone = Literal["better", "worse", "unclear"]
TONE_COLOURS: dict[str, str] = {"better": "#2e7d32", "worse": "#c62828", "unclear": "#5a6066"}


@dataclass(frozen=True, slots=True, kw_only=True)
class DeltaRow:
    """A KPI delta as a person reads it: texts, a tone and an inline bar in % of the row's own track.

    The track runs from ``-reach`` to ``+reach`` of the row's own values (zero in the middle):
    ``bar_from``/``bar_to`` are the interval's ends and ``dot`` the estimate, in % of the track.
    """

    label: str
    baseline: str
    scenario: str
    delta: str  # "+0.6 pp"
    ci: str  # "[−0.2, +1.4]"
    tone: Tone
    colour: str
    bar_from: float
    bar_to: float
    dot: float

    @property
    def delta_ci(self) -> str:
        return f"{self.delta} {self.ci}"


MINUS = "\u2212"  # a real minus sign, as wide as the plus


def decimals_for(width: float, fallback: int = 1, *, most: int = 4) -> int:
    """Decimals giving ``width`` two significant figures (1.56 -> 1, 15.6 -> 0, 0.156 -> 2), at most ``most``.

    A width of zero or not finite (every replication alike, or no interval) uses ``fallback``.
    """
    if not math.isfinite(width) or width <= 0:
        return fallback
    return max(0, min(most, 1 - math.floor(math.log10(width))))


def signed(x: float, decimals: int) -> str:
    """``x`` with an explicit sign (``+0.6``, ``−0.2``); a value that rounds to zero has none (``0.0``)."""
    text = f"{abs(x):,.{decimals}f}"
    if float(text.replace(",", "")) == 0:
        return text
    return ("+" if x > 0 else MINUS) + text


def _plain(x: float, decimals: int, unit: str) -> str:
    text = f"{x:,.{decimals}f}".replace("-", MINUS)
    return f"{text} {unit}" if unit else text


def delta_row(d: KpiDelta) -> DeltaRow:
    """How one delta reads (see the module docstring): rounding from its interval, tone from better-when."""
    places = decimals_for(d.ci_high - d.ci_low, d.decimals)
    unit = d.delta_unit or d.unit
    if d.ci_low > 0 or d.ci_high < 0:  # the interval excludes zero: the change is real
        tone: Tone = "better" if (d.delta > 0) == d.higher_is_better else "worse"
    else:
        tone = "unclear"
    reach = max(abs(d.ci_low), abs(d.ci_high), abs(d.delta))

    def pos(x: float) -> float:
        return 50.0 if reach == 0 else 50.0 + 50.0 * x / reach

    return DeltaRow(label=d.kpi, baseline=_plain(d.baseline, places, d.unit),
                    scenario=_plain(d.scenario, places, d.unit),
                    delta=f"{signed(d.delta, places)} {unit}".rstrip(),
                    ci=f"[{signed(d.ci_low, places)}, {signed(d.ci_high, places)}]", tone=tone,
                    colour=TONE_COLOURS[tone], bar_from=pos(d.ci_low),
                    bar_to=pos(d.ci_high), dot=pos(d.delta))


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
    effects: tuple[Effect, ...] = ()  # each intervention alone (when there are several)
    seed: int = 1  # the same scenario, fork time and seed give the same numbers
    id: str = ""  # its key in the server's run store ("" not stored): /whatif?result=ID

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
            effects=tuple(Effect(intervention=e["intervention"], replications=int(e["replications"]),
                                 on_time=KpiDelta(**e["on_time"]) if e.get("on_time") else None,
                                 output=KpiDelta(**e["output"]) if e.get("output") else None)
                          for e in d.get("effects", [])),
            seed=int(d.get("seed", 1)), id=str(d.get("id", "")),
        )


class WhatIfRunner(Protocol):
    """Runs a what-if (in a background worker); calls ``progress`` as replications finish.

    A ``progress`` that also has a ``partial(result)`` method is given an early ``WhatIfResult``
    (the first replications' bands) before the run ends, for the page to draw.
    """

    def run(self, request: WhatIfRequest, progress: Progress) -> WhatIfResult: ...
