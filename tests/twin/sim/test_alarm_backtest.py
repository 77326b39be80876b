"""The predictive alarms' scorer on a table worked by hand (``twin.sim.alarm_backtest``)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from twin.historian import SeriesPoint
from twin.sim.alarm_backtest import (
    LATE,
    STOCKOUT,
    AlarmSettings,
    Observation,
    late_outcome,
    probabilities,
    score,
    stockout_level,
    stockout_outcome,
    summarize,
)

T0 = datetime(2026, 11, 23, 6, tzinfo=UTC)


def _at(h: float) -> datetime:
    return T0 + timedelta(hours=h)


def _stock(sku: str, origin_h: float, p: float, event_h: float | None) -> Observation:
    return Observation(kind=STOCKOUT, origin=_at(origin_h), site="s", candidate=f"s/{sku}", probability=p,
                       outcome=event_h is not None, event_at=_at(event_h) if event_h is not None else None)


# Four origins 6 h apart (0, 6, 12, 18 h), rule stockout_risk:
#   SKU A stocks out at 30 h:      p = 0.3 (FN), 0.6 (TP), 0.8 (TP), 0.9 (TP)
#   SKU B never stocks out:        p = 0.1 (TN), 0.7 (FP), 0.2 (TN), 0.4 (TN)
#   SKU C stocks out at 14 h:      p = 0.55 (TP), 0.45 (FN), 0.95 (TP); at 18 h it is already out: no case
#   SKU D at 18 h, censored:       p = 0.9, no outcome: left out
STOCK_TABLE = [
    _stock("A", 0, 0.3, 30), _stock("A", 6, 0.6, 30), _stock("A", 12, 0.8, 30), _stock("A", 18, 0.9, 30),
    _stock("B", 0, 0.1, None), _stock("B", 6, 0.7, None), _stock("B", 12, 0.2, None), _stock("B", 18, 0.4, None),
    _stock("C", 0, 0.55, 14), _stock("C", 6, 0.45, 14), _stock("C", 12, 0.95, 14),
    Observation(kind=STOCKOUT, origin=_at(18), site="s", candidate="s/D", probability=0.9, outcome=None),
]


def test_precision_recall_and_lead_time_at_half() -> None:
    s = score(STOCK_TABLE, STOCKOUT, 0.5)
    # TP = 3 (A) + 2 (C), FN = 1 (A) + 1 (C), FP = 1 (B at 6 h), TN = 3; D has no outcome
    assert (s.tp, s.fp, s.fn, s.tn, s.observations) == (5, 1, 2, 3, 11)
    assert s.precision == pytest.approx(5 / 6) and s.recall == pytest.approx(5 / 7)
    # Wilson 95 % of 5/6 by hand: centre (5/6 + z^2/12) / (1 + z^2/6) = 0.7032, half-width 0.2667 (z = 1.96)
    assert (s.precision_low, s.precision_high) == pytest.approx((0.4365, 0.9700), abs=1e-3)
    # A is first raised at 6 h for its stockout at 30 h: 24 h ahead; C at 0 h for 14 h: 14 h; median 19 h
    assert (s.events, s.events_caught) == (2, 2)
    assert s.lead_times_h == (14.0, 24.0) and s.lead_median_h == pytest.approx(19.0)
    # Brier: A 0.49 + 0.16 + 0.04 + 0.01, B 0.01 + 0.49 + 0.04 + 0.16, C 0.2025 + 0.3025 + 0.0025 -> 1.9075 / 11;
    # base rate 7/11, its Brier score 7/11 x 4/11 = 0.2314; skill 1 - 0.17341 / 0.23140 = 0.2506
    assert s.brier == pytest.approx(1.9075 / 11) and s.base_rate == pytest.approx(7 / 11)
    assert s.brier_naive == pytest.approx(28 / 121) and s.brier_skill == pytest.approx(0.2506, abs=1e-4)


def test_a_higher_threshold_raises_later_and_strictly_above() -> None:
    s = score(STOCK_TABLE, STOCKOUT, 0.7)
    # raised: A 0.8, 0.9 and C 0.95; B's 0.7 is not above 0.7
    assert (s.tp, s.fp, s.fn) == (3, 0, 4)
    assert s.precision == 1.0 and s.recall == pytest.approx(3 / 7)
    # A first raised at 12 h (18 h ahead of 30 h), C at 12 h (2 h ahead of 14 h): median 10 h
    assert s.lead_times_h == (2.0, 18.0) and s.lead_median_h == pytest.approx(10.0)
    none = score(STOCK_TABLE, STOCKOUT, 0.99)
    assert none.raised == 0 and math.isnan(none.precision) and none.recall == 0.0
    assert none.events_caught == 0 and math.isnan(none.lead_median_h)


def test_late_orders_lead_to_the_due_time() -> None:
    def late(oid: str, origin_h: float, p: float, due_h: float | None) -> Observation:
        return Observation(kind=LATE, origin=_at(origin_h), site="s", candidate=oid, probability=p,
                           outcome=due_h is not None, event_at=_at(due_h) if due_h is not None else None)

    # X is due at 20 h and finished late: p = 0.2 (FN), 0.6, 0.7, 0.9 (TP); Y finishes on time: 0.1, 0.1 (TN)
    obs = [late("X", 0, 0.2, 20), late("X", 6, 0.6, 20), late("X", 12, 0.7, 20), late("X", 18, 0.9, 20),
           late("Y", 12, 0.1, None), late("Y", 18, 0.1, None), *STOCK_TABLE]
    s = score(obs, LATE, 0.5)
    assert (s.tp, s.fp, s.fn, s.tn) == (3, 0, 1, 2)
    assert s.precision == 1.0 and s.recall == pytest.approx(0.75)
    assert s.lead_times_h == (14.0,)  # first raised at 6 h, due at 20 h


def test_summary_has_both_rules_and_the_threshold_table() -> None:
    settings = AlarmSettings(stockout_threshold=0.5, late_threshold=0.25)
    summary = summarize(STOCK_TABLE, settings, thresholds=(0.3, 0.7))
    assert summary.score(STOCKOUT).threshold == 0.5 and summary.score(LATE).threshold == 0.25
    assert summary.score(LATE).observations == 0 and math.isnan(summary.score(LATE).recall)
    # the table: each rule at 0.3, 0.7 and its own threshold, ascending
    assert [(s.kind, s.threshold) for s in summary.table] == [
        (STOCKOUT, 0.3), (STOCKOUT, 0.5), (STOCKOUT, 0.7), (LATE, 0.25), (LATE, 0.3), (LATE, 0.7)]
    assert dict(summary.censored) == {STOCKOUT: 1, LATE: 0}
    doc = summary.to_dict()
    assert doc["scores"][1]["recall"] is None  # NaN -> null in JSON


def _points(*pairs: tuple[float, float]) -> list[SeriesPoint]:
    return [SeriesPoint(ts=_at(h), value=v, min=v, max=v) for h, v in pairs]


def test_stockout_outcome_from_the_on_hand_series() -> None:
    pts = _points((-0.5, 4.0), (2.0, 1.0), (7.0, 0.03), (9.0, 0.0), (60.0, 5.0))
    # PLA is drawn 0.05 kg a unit: below that a unit waits, so 0.03 at 7 h is the stockout
    assert stockout_outcome(pts, T0, 48 * 3600.0, 0.05) == (True, _at(7.0))
    # for an item no product draws, only 0 counts: at 9 h
    assert stockout_outcome(pts, T0, 48 * 3600.0, 0.0) == (True, _at(9.0))
    assert stockout_outcome(pts, T0, 6 * 3600.0, 0.05) == (False, None)  # a point after the window: covered
    # already out at the origin (8 h: 0.03 on hand): not a prediction
    assert stockout_outcome(pts, _at(8.0), 48 * 3600.0, 0.05) == (None, None)
    # the history stops at 60 h: a window to 68 h without a stockout is censored
    assert stockout_outcome(pts, _at(20.0), 48 * 3600.0, 0.05) == (None, None)
    # no point at or before the origin: unknown
    assert stockout_outcome(pts, _at(-1.0), 3600.0, 0.05) == (None, None)
    # a downsampled point whose minimum dips below the level counts
    dip = [SeriesPoint(ts=_at(0.0), value=3.0, min=3.0, max=3.0),
           SeriesPoint(ts=_at(3.0), value=2.0, min=0.0, max=3.0, count=60),
           SeriesPoint(ts=_at(9.0), value=2.0, min=2.0, max=2.0)]
    assert stockout_outcome(dip, T0, 6 * 3600.0, 0.05) == (True, _at(3.0))


def test_late_outcome() -> None:
    due, end = _at(10.0), _at(72.0)
    assert late_outcome(T0, due, _at(10.0), end) is False  # finished at its due: on time
    assert late_outcome(T0, due, _at(10.01), end) is True
    assert late_outcome(T0, due, None, end) is True  # not finished by its due, and the history shows the due
    assert late_outcome(T0, due, None, _at(9.0)) is None  # the history ends before its due


def test_stockout_level_is_the_smallest_bill_of_materials_line() -> None:
    from pathlib import Path

    from connectors.config import load

    fleet = load(Path(__file__).resolve().parents[3] / "examples" / "fleet.toml").fleet
    # examples/fleet.toml: custom-bracket draws 0.05 PLA-1KG and 1 BOX-S, nylon-gripper 1 BOX-S too
    assert stockout_level(fleet, "PLA-1KG") == 0.05 and stockout_level(fleet, "BOX-S") == 1.0
    assert stockout_level(fleet, "NOT-DRAWN") == 0.0


def test_probabilities_from_replications() -> None:
    from twin.sim.model import ReplicationOutput

    def rep(stockout_s: float, done_s: float) -> ReplicationOutput:
        return ReplicationOutput(  # only the fields the alarms read matter here
            horizon_s=48 * 3600.0, bin_s=3600.0, throughput={}, backlog={}, wip={}, utilisation={}, stock={},
            units_done={}, orders_done={}, on_time={}, late={}, lead_time_sum_s={}, system_area={},
            stockout_s={("s", "A"): stockout_s}, open_order_done_s={"o1": done_s, "o2": 1.0},
            open_order_due_s={"o1": 10 * 3600.0, "o2": 30 * 3600.0}, open_order_site={"o1": "s", "o2": "s"},
            events=0, machine_busy_s={}, machine_down_s={})

    h = 3600.0
    outs = [rep(5 * h, 9 * h), rep(47 * h, 11 * h), rep(49 * h, math.inf), rep(math.inf, 10 * h)]
    stock, orders = probabilities(outs, AlarmSettings())
    # stockouts at 5 h and 47 h are within 48 h, 49 h and never are not: 2 of 4
    assert stock == {("s", "A"): 0.5}
    # o1 (due 10 h): finished at 9 h and 10 h on time, at 11 h and never late: 2 of 4; o2 is due after 24 h
    assert orders == {"o1": ("s", 10 * h, 0.5)}
