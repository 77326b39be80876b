"""Predictive alarms (``twin.forecast``): risks through the alarm lifecycle, worked by hand.

The example fleet's rules: ``failure-risk`` (threshold 0.3, 8 h), ``stockout-risk`` (0.5, 48 h),
``late-order-risk`` (0.5, 24 h). The hysteresis clears an alarm below threshold - 0.05.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from connectors.config import load, load_text
from twin import live
from twin.errors import ConfigError
from twin.forecast import Forecast, Risk, apply_forecast, projection_risks
from twin.spec import AlarmId, FleetSpec, SiteId
from twin.state import EventKind

ROOT = Path(__file__).resolve().parents[2]
T = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
BERLIN = SiteId("pod-berlin")


@pytest.fixture(scope="module")
def fleet() -> FleetSpec:
    return load(ROOT / "examples" / "fleet.toml").fleet


def _risk(p: float, asset: str = "P3", rule: str = "failure-risk") -> Risk:
    return Risk(rule=AlarmId(rule), site=BERLIN, asset=asset, probability=p, predicted_at=None,
                detail=f"{round(100 * p)} % chance of failure within 8 h")


def _forecast(at: datetime, *risks: Risk) -> Forecast:
    return Forecast(at=at, risks=risks, covered=frozenset({("late-order-risk", "pod-berlin")}))


def test_rises_raises_with_probability_then_band_keeps_then_falls_clears(fleet: FleetSpec) -> None:
    state = live.initial_state(fleet, T)
    # 0.20 < 0.3: nothing
    state, events = apply_forecast(fleet, state, _forecast(T, _risk(0.20)))
    assert events == ()
    # 0.42 > 0.3: raised, carrying the probability, the horizon and a readable message
    state, events = apply_forecast(fleet, state, _forecast(T + timedelta(minutes=15), _risk(0.42)))
    (raised,) = events
    assert raised.kind is EventKind.ALARM_RAISED and raised.asset == "P3"
    assert raised.message == "P3: Failure likely: 42 % chance of failure within 8 h"
    assert raised.data["probability"] == 0.42 and raised.data["horizon_h"] == 8.0
    assert raised.data["threshold"] == 0.3 and raised.data["key"] == "failure-risk:P3"
    alarm = state.sites[BERLIN].alarms["failure-risk:P3"]
    assert alarm.active and alarm.value == 0.42 and alarm.raised_at == T + timedelta(minutes=15)
    # still above: no second event
    state, events = apply_forecast(fleet, state, _forecast(T + timedelta(minutes=30), _risk(0.5)))
    assert events == ()
    # 0.27 is in the hysteresis band [0.25, 0.3]: kept active, no event
    state, events = apply_forecast(fleet, state, _forecast(T + timedelta(minutes=45), _risk(0.27)))
    assert events == () and state.sites[BERLIN].alarms["failure-risk:P3"].active
    # 0.24 < 0.25: cleared
    state, events = apply_forecast(fleet, state, _forecast(T + timedelta(minutes=60), _risk(0.24)))
    (cleared,) = events
    assert cleared.kind is EventKind.ALARM_CLEARED and cleared.data["probability"] == 0.24
    assert not state.sites[BERLIN].alarms["failure-risk:P3"].active
    # not raised again in the band from below: 0.28 is not above 0.3
    state, events = apply_forecast(fleet, state, _forecast(T + timedelta(minutes=75), _risk(0.28)))
    assert events == ()


def test_for_s_counts_forecaster_cycles(fleet: FleetSpec) -> None:
    rules = tuple(dataclasses.replace(r, for_s=1800.0) if r.id == "failure-risk" else r for r in fleet.alarms)
    slow = dataclasses.replace(fleet, alarms=rules)
    state = live.initial_state(slow, T)
    state, events = apply_forecast(slow, state, _forecast(T, _risk(0.5)))
    assert events == () and state.sites[BERLIN].pending["failure-risk:P3"] == T
    state, events = apply_forecast(slow, state, _forecast(T + timedelta(minutes=15), _risk(0.5)))
    assert events == ()  # 15 min of the 30
    state, events = apply_forecast(slow, state, _forecast(T + timedelta(minutes=30), _risk(0.5)))
    assert [e.kind for e in events] == [EventKind.ALARM_RAISED]
    assert "failure-risk:P3" not in state.sites[BERLIN].pending


def test_late_order_gone_from_the_forecast_clears(fleet: FleetSpec) -> None:
    state = live.initial_state(fleet, T)
    late = Risk(rule=AlarmId("late-order-risk"), site=BERLIN, asset="SO-7", probability=0.75, predicted_at=None,
                detail="order SO-7 due Tue 17:00: 75 % chance it finishes late")
    state, events = apply_forecast(fleet, state, _forecast(T, late))
    assert [(e.kind, e.asset) for e in events] == [(EventKind.ALARM_RAISED, "SO-7")]
    state, events = apply_forecast(fleet, state, _forecast(T + timedelta(minutes=15)))  # the order is done
    assert [(e.kind, e.asset) for e in events] == [(EventKind.ALARM_CLEARED, "SO-7")]
    assert events[0].message == "SO-7: cleared: Order likely late: order SO-7 finished or no longer due within 24 h"


def test_the_reducer_never_evaluates_predictive_rules(fleet: FleetSpec) -> None:
    state = live.initial_state(fleet, T)
    state, _ = apply_forecast(fleet, state, _forecast(T, _risk(0.9)))
    state, events = live.apply(fleet, state, (), T + timedelta(hours=1))  # a batch without the forecaster
    assert not [e for e in events if e.kind is EventKind.ALARM_CLEARED]
    assert state.sites[BERLIN].alarms["failure-risk:P3"].active


def _out(stockout: dict[tuple[str, str], float], done: dict[str, float], due: dict[str, float]) -> Any:
    return SimpleNamespace(stockout_s=stockout, open_order_done_s=done, open_order_due_s=due,
                           open_order_site=dict.fromkeys(due, "pod-berlin"))


def test_projection_risks_by_hand(fleet: FleetSpec) -> None:
    h = 3600.0
    inf = math.inf
    # four replications. PLA-1KG runs out at 1 h, 2 h, never, 60 h: 2 of 4 within 48 h, p 0.5;
    # the median of the stockouts within the horizon (1 h, 2 h: the lower middle) is 1 h after the fork.
    # SO-7 is due in 10 h and done at 5, 12, 11 h and never: late in 3 of 4, p 0.75; median finish 11 h.
    # SO-8 is due in 30 h: beyond the 24 h horizon, no risk; SO-9 was due an hour ago: late already, no risk.
    # BOX-S is out at the fork in every replication (stockout at 0 s): out already, no prediction (its stock
    # alarm says so), as the alarm backtest leaves out a SKU already out at the origin.
    times = [1 * h, 2 * h, inf, 60 * h]
    finish = [5 * h, 12 * h, 11 * h, inf]
    outputs = [_out({("pod-berlin", "PLA-1KG"): t, ("pod-berlin", "BOX-S"): 0.0},
                    {"SO-7": f, "SO-8": 20 * h, "SO-9": inf},
                    {"SO-7": 10 * h, "SO-8": 30 * h, "SO-9": -1 * h})
               for t, f in zip(times, finish, strict=True)]
    berlin = dataclasses.replace(fleet, sites=(fleet.site("pod-berlin"),))
    risks = {r.asset: r for r in projection_risks(berlin, cast(Any, outputs), T)}
    assert set(risks) == {"PLA-1KG", "SO-7"}
    pla, so7 = risks["PLA-1KG"], risks["SO-7"]
    assert pla.probability == 0.5 and pla.predicted_at == T + timedelta(hours=1)
    # 07:00 UTC is 08:00 in Berlin (CET), a Tuesday
    assert pla.detail == "PLA-1KG runs out ~Tue 08:00 (p 0.50), no delivery announced"
    assert so7.probability == 0.75 and so7.predicted_at == T + timedelta(hours=11)
    assert so7.detail == "order SO-7 due Tue 17:00: 75 % chance it finishes late (median finish Tue 18:00)"
    # p 0.5 is not above the stockout threshold 0.5; 0.75 is above the late-order one
    _, events = apply_forecast(berlin, live.initial_state(berlin, T),
                                   Forecast(at=T, risks=tuple(risks.values())))
    assert [e.asset for e in events] == ["SO-7"]


BAD = [
    ('threshold = 0.3                 # P(the machine', 'threshold = 1.3                 # P(the machine',
     "alarms[6].threshold: kind 'failure_risk' needs a probability strictly between 0 and 1 (got 1.3)"),
    ("horizon_h = 48", "horizon_h = 500",
     "alarms[7].horizon_h: kind 'stockout_risk' needs hours ahead, more than 0 and at most 336 (14 days) (got 500.0)"),
    ("horizon_h = 24", "horizon_h = 0",
     "alarms[8].horizon_h: kind 'late_order_risk' needs hours ahead, more than 0 and at most 336 (14 days) (got 0.0)"),
    ("horizon_h = 24", "",
     "alarms[8].horizon_h: kind 'late_order_risk' needs hours ahead, more than 0 and at most 336 (14 days)"),
    ('kind = "late_order_risk"', 'kind = "late_order_risk"\nskus = ["BOX-S"]',
     "alarms[8]: kind 'late_order_risk' watches orders: skus does not apply"),
    ('threshold = 265', 'threshold = 265\nhorizon_h = 8',
     "alarms[0]: kind 'above' is evaluated now: horizon_h belongs to the predictive kinds"),
    ('[[alarms]]\nid = "failure-risk"', '[forecaster]\nevery_min = 0\n\n[[alarms]]\nid = "failure-risk"',
     "forecaster.every_min"),
]


@pytest.mark.parametrize(("old", "new", "expected"), BAD)
def test_bad_predictive_rules_are_named_by_path(old: str, new: str, expected: str) -> None:
    text = (ROOT / "examples" / "fleet.toml").read_text()
    assert old in text
    with pytest.raises(ConfigError) as info:
        load_text(text.replace(old, new, 1), source="fleet.toml")
    problems = [str(p) for p in info.value.problems]
    assert any(p.startswith(expected) for p in problems), problems
    assert len(problems) == 1  # one bad item, rejected alone
