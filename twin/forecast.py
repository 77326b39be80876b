"""Predictive alarms: the forecaster's probabilities as alarm conditions, through the normal alarm lifecycle.

Three rule kinds (``[[alarms]]`` with ``threshold`` and ``horizon_h``) are evaluated here, never by
the live reducer:

* ``failure_risk``: P(the machine fails within ``horizon_h``), from the health model
  (``twin.health.score.machine_health``), one instance per machine;
* ``stockout_risk``: P(the SKU's shelf empties within ``horizon_h``), the share of Monte Carlo
  replications (``twin.sim``) whose first stockout comes within it, one instance per site and SKU;
* ``late_order_risk``: P(an open order due within ``horizon_h`` finishes after its due time),
  the share of replications where it is not done by then, one instance per order (an order
  already overdue is late, not at risk: it has no instance, and its instance clears).

The forecaster (``connectors.forecaster``) computes a :class:`Forecast` on its schedule; the
collector folds it into its state with :func:`apply_forecast`, which runs each instance through
``twin.alarms.step``: raised once ``probability > threshold`` (held for the rule's ``for_s``, counted
in forecaster cycles), cleared once it falls below ``threshold - HYSTERESIS`` (hysteresis: a risk
wavering about the threshold from one run of replications to the next does not chatter), kept as
it is in between. The events carry ``probability``, ``horizon_h``, ``threshold`` and
``predicted_at`` (ISO time, "" when none) in their data and a readable message ("42 % chance of
failure within 8 h"); journal, exports and the Alarms page read them like any alarm event.

A late-order instance whose order is no longer in the forecast (finished, or no longer due within
the horizon) is cleared; a machine or SKU missing from it (no history to score) is unknown: its
alarm neither raises nor clears.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from twin.alarms import RECENT_EVENTS, step
from twin.frozen import FrozenDict
from twin.readings import Quality, Value
from twin.spec import AlarmId, AlarmKind, AlarmRule, FleetSpec, SiteId, SiteSpec
from twin.state import AlarmState, Event, SiteState, TwinState

if TYPE_CHECKING:
    from twin.health.score import MachineHealth
    from twin.sim.model import ReplicationOutput

__all__ = [
    "HYSTERESIS",
    "MAX_HORIZON_H",
    "Forecast",
    "Risk",
    "apply_forecast",
    "failure_risks",
    "holds",
    "predictive_rules",
    "projection_risks",
]

HYSTERESIS = 0.05  # a raised predictive alarm clears below threshold - min(HYSTERESIS, threshold / 2)
MAX_HORIZON_H = 14 * 24.0  # the longest horizon a predictive rule may look ahead


@dataclass(frozen=True, slots=True, kw_only=True)
class Risk:
    """One instance's probability for one rule, when its event is expected, and the text a person reads."""

    rule: AlarmId
    site: SiteId
    asset: str  # machine id, SKU or order id
    probability: float
    predicted_at: datetime | None  # failure: 50 % point; stockout: median time; late order: median finish
    detail: str  # e.g. "42 % chance of failure within 8 h"


@dataclass(frozen=True, slots=True, kw_only=True)
class Forecast:
    """The risks computed at ``at``; ``covered`` the (rule, site) pairs evaluated (absent orders clear)."""

    at: datetime
    risks: tuple[Risk, ...] = ()
    covered: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    duration_s: float = 0.0  # wall time of the computation (the forecaster's log and bench)
    cpu_s: float = 0.0  # CPU time of the computation


def predictive_rules(fleet: FleetSpec, kind: AlarmKind | None = None) -> list[AlarmRule]:
    """The fleet's predictive rules (of ``kind`` when given)."""
    return [r for r in fleet.alarms if r.kind.predictive and (kind is None or r.kind is kind)]


def _local(t: datetime, site: SiteSpec) -> str:
    return t.astimezone(ZoneInfo(site.timezone)).strftime("%a %H:%M")


def _pct(p: float) -> str:
    return f"{round(100 * p):d} %"


def failure_risks(fleet: FleetSpec, scored: Mapping[float, Sequence[MachineHealth]], now: datetime) -> list[Risk]:
    """Each ``failure_risk`` rule's risk per machine it watches; ``scored[h]`` the machines scored over ``h`` hours.

    The predicted time is when failure becomes 50 % likely under the horizon's average hazard
    (``h * ln 2 / -ln(1 - p)`` hours ahead), given only when that falls within the horizon.
    """
    out: list[Risk] = []
    for rule in predictive_rules(fleet, AlarmKind.FAILURE_RISK):
        h = rule.horizon_h or 8.0
        for mh in scored.get(h, ()):
            site = fleet.site(mh.site)
            machine = site.machine(mh.machine)
            if machine is None or not mh.seen or not rule.applies_to_machine(machine):
                continue
            p = min(1.0, max(0.0, mh.risk.p))
            at = None
            if 0.5 <= p < 1.0:
                at = now + timedelta(hours=h * math.log(2.0) / -math.log(1.0 - p))
            elif p >= 1.0:
                at = now
            out.append(Risk(rule=rule.id, site=site.id, asset=machine.id, probability=p, predicted_at=at,
                            detail=f"{_pct(p)} chance of failure within {h:g} h"))
    return out


def _median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    return s[(len(s) - 1) // 2]


def projection_risks(fleet: FleetSpec, outputs: Sequence[ReplicationOutput], as_of: datetime,
                     state: TwinState | None = None) -> list[Risk]:
    """The ``stockout_risk`` and ``late_order_risk`` rules' risks from replications forked at ``as_of``.

    A rule's horizon must not exceed the replications' (the forecaster runs them over the longest
    one). ``state`` (the twin now) names each SKU's next delivery in the stockout message. A SKU out
    already (GOOD on hand at 0, or out at the fork in every replication) gets no risk: that is the
    stock alarm's, not a prediction (as an overdue order gets none).
    """
    if not outputs:
        return []
    n = len(outputs)
    out: list[Risk] = []
    for rule in predictive_rules(fleet, AlarmKind.STOCKOUT_RISK):
        h_s = (rule.horizon_h or 48.0) * 3600.0
        for site_id, sku in outputs[0].stockout_s:
            site = fleet.site(site_id)
            item = site.item(sku)
            if item is None or not rule.applies_to_item(site.id, item):
                continue
            inv = state.sites[site.id].inventory.get(item.sku) if state and site.id in state.sites else None
            out_now = inv is not None and inv.quality is Quality.GOOD and inv.on_hand is not None and inv.on_hand <= 0
            if out_now or all(o.stockout_s[(site_id, sku)] <= 0.0 for o in outputs):
                continue  # out already (on the shelf, or at the fork in every replication): no prediction
            hits = [t for o in outputs if (t := o.stockout_s[(site_id, sku)]) <= h_s]
            p = len(hits) / n
            at = as_of + timedelta(seconds=_median(hits)) if hits else None
            text = (f"{sku} runs out ~{_local(at, site)} (p {p:.2f})" if at is not None
                    else f"{sku}: {_pct(p)} chance of running out within {rule.horizon_h:g} h")
            etas = sorted(s.eta for s in inv.inbound if s.eta >= as_of) if inv is not None else []
            text += f", next delivery {_local(etas[0], site)}" if etas else ", no delivery announced"
            out.append(Risk(rule=rule.id, site=site.id, asset=item.sku, probability=p, predicted_at=at, detail=text))
    for rule in predictive_rules(fleet, AlarmKind.LATE_ORDER_RISK):
        h_s = (rule.horizon_h or 24.0) * 3600.0
        for oid, due in outputs[0].open_order_due_s.items():
            site = fleet.site(outputs[0].open_order_site[oid])
            if (rule.sites and site.id not in rule.sites) or due > h_s or due <= 0.0:
                continue  # not due within the horizon, or overdue: late already, no prediction
            done = [o.open_order_done_s[oid] for o in outputs]
            p = sum(1 for t in done if t > due + 1e-9) / n
            finish = _median(done)
            at = as_of + timedelta(seconds=finish) if math.isfinite(finish) else None
            due_at = as_of + timedelta(seconds=due)
            text = (f"order {oid} due {_local(due_at, site)}: {_pct(p)} chance it finishes late"
                    + (f" (median finish {_local(at, site)})" if at is not None else " (median: not finished)"))
            out.append(Risk(rule=rule.id, site=site.id, asset=oid, probability=p, predicted_at=at, detail=text))
    return out


def holds(rule: AlarmRule, probability: float, active: bool) -> bool | None:
    """Whether ``rule``'s condition holds at ``probability`` (None: in the hysteresis band, keep as is).

    >>> from twin.spec import Priority
    >>> r = AlarmRule(id=AlarmId("fr"), kind=AlarmKind.FAILURE_RISK, priority=Priority.HIGH, message="m",
    ...               threshold=0.3, horizon_h=8.0)
    >>> holds(r, 0.31, False), holds(r, 0.27, True), holds(r, 0.24, True), holds(r, 0.27, False)
    (True, None, False, False)
    """
    threshold = rule.threshold if rule.threshold is not None else 0.5
    if probability > threshold:
        return True
    if active and probability >= threshold - min(HYSTERESIS, threshold / 2):
        return None
    return False


def _data(rule: AlarmRule, r: Risk) -> dict[str, Value]:
    return {"probability": round(r.probability, 4), "horizon_h": rule.horizon_h, "threshold": rule.threshold,
            "predicted_at": r.predicted_at.astimezone(UTC).isoformat() if r.predicted_at else "",
            "key": f"{rule.id}:{r.asset}"}


def apply_forecast(spec: FleetSpec, state: TwinState, forecast: Forecast,
                   sites: frozenset[str] | None = None) -> tuple[TwinState, tuple[Event, ...]]:
    """Fold ``forecast`` into ``state``: each predictive instance raised, kept or cleared at ``forecast.at``.

    ``sites`` (optional) limits it to the sites a collector owns. Returns the new state (the same
    object when nothing changed) and the ALARM_RAISED / ALARM_CLEARED events.
    """
    rules = {r.id: r for r in predictive_rules(spec)}
    if not rules:
        return state, ()
    now = max(forecast.at, state.as_of)
    by_site: dict[str, list[Risk]] = {}
    for r in forecast.risks:
        if r.rule in rules:
            by_site.setdefault(r.site, []).append(r)
    new_sites: dict[SiteId, SiteState] = {}
    events: list[Event] = []
    for site_id, site_state in state.sites.items():
        if sites is not None and site_id not in sites:
            continue
        alarms: dict[str, AlarmState] = dict(site_state.alarms)
        pending: dict[str, datetime] = dict(site_state.pending)
        site_events: list[Event] = []
        seen: set[str] = set()
        for r in by_site.get(site_id, ()):
            rule = rules[r.rule]
            key = f"{rule.id}:{r.asset}"
            seen.add(key)
            current = alarms.get(key)
            e = step(rule, site_id, r.asset, holds(rule, r.probability, current is not None and current.active),
                     round(r.probability, 4), alarms, pending, now, detail=r.detail, data=_data(rule, r))
            if e is not None:
                site_events.append(e)
        for key, a in list(alarms.items()):  # orders gone from the forecast: finished or no longer due soon
            rule_or_none = rules.get(a.rule)
            if (rule_or_none is None or rule_or_none.kind is not AlarmKind.LATE_ORDER_RISK or key in seen
                    or not a.active or (str(a.rule), str(site_id)) not in forecast.covered):
                continue
            gone = Risk(rule=a.rule, site=site_id, asset=a.asset, probability=0.0, predicted_at=None,
                        detail=f"order {a.asset} finished or no longer due within {rule_or_none.horizon_h:g} h")
            e = step(rule_or_none, site_id, a.asset, False, 0.0, alarms, pending, now, detail=gone.detail,
                     data=_data(rule_or_none, gone))
            if e is not None:
                site_events.append(e)
        if not site_events and pending == site_state.pending:
            continue
        recent = (site_state.recent_events + tuple(site_events))[-RECENT_EVENTS:]
        new_sites[site_id] = replace(site_state, alarms=FrozenDict(alarms), pending=FrozenDict(pending),
                                     recent_events=recent)
        events += site_events
    if not new_sites:
        return state, ()
    return replace(state, sites=state.sites.merge(new_sites)), tuple(events)
