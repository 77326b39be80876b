"""Stop classifications and alarm shelvings through the real collector endpoint on 127.0.0.1: checked against
the plant file, committed to the historian before the answer, and used by the downtime and the alarm journal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.collector import Collector
from connectors.config import load
from connectors.feeds.endpoint import FeedEndpoint
from connectors.feeds.intake import Intake
from connectors.feeds.ledger import Ledger
from connectors.store import SqliteHistorian
from tests.conftest import EXAMPLES
from tests.connectors.feeds.conftest import T0
from tests.connectors.feeds.test_endpoint_events import EVENTS, Call, run_collector
from twin import codec
from twin.alarm_shelving import hidden_intervals, shelving_journal
from twin.downtime import Stop, apply_classifications
from twin.spec import FleetSpec, MachineStatus
from twin.state import Event, EventKind

STOP = T0 - timedelta(minutes=40)  # CNC1 idle from 07:20 to 07:50, the data not saying why


@pytest.fixture(scope="module")
def fleet() -> FleetSpec:
    return load(EXAMPLES / "fleet.toml").fleet


@pytest.fixture
def intake(fleet: FleetSpec, tmp_path: Path) -> Iterator[Intake]:
    ledger = Ledger(tmp_path / "feeds.db")
    yield Intake(fleet, ledger)
    ledger.close()


def classify(reason: str = "blocked", asset: str = "CNC1", **data: Any) -> dict[str, Any]:
    """A classification as the dashboard sends it."""
    d = {"start": codec.dt_to_json(STOP), "reason": reason, "user": "ana", "comment": "outfeed full", **data}
    return {"ts": codec.dt_to_json(T0), "site": "pod-lyon", "asset": asset, "kind": "stop_classified",
            "message": f"stop of {asset} classified as {reason} by ana", "data": d}


def shelving(change: str = "shelved", rule: str = "spindle-overtemp", asset: str = "CNC1", minutes: float = 0,
             **data: Any) -> dict[str, Any]:
    """A shelving change as the dashboard sends it."""
    d = {"rule": rule, "key": f"{rule}:{asset}", "change": change, "user": "ben", "comment": "sensor swap", **data}
    return {"ts": codec.dt_to_json(T0 + timedelta(minutes=minutes)), "site": "pod-lyon", "asset": asset,
            "kind": "alarm_shelving", "message": f"{change} by ben", "data": d}


@pytest.mark.server
def test_classifications_and_shelvings_are_checked_against_the_plant_and_journaled(
        tmp_path: Path, fleet: FleetSpec, intake: Intake) -> None:
    store = SqliteHistorian(tmp_path / "history.db", fleet)
    reader = SqliteHistorian(tmp_path / "history.db", fleet, readonly=True)
    collector = Collector(fleet, [], store, clock=lambda: T0, flush_interval_s=0.05)
    batch = [
        classify(),  # 0: taken
        classify(reason="coffee"),  # 1: not in pod-lyon's tree
        classify(asset="P9"),  # 2: no such machine at pod-lyon
        classify(start=codec.dt_to_json(T0 + timedelta(minutes=1))),  # 3: a stop that has not begun
        shelving(shelve="timed", duration_s=1800),  # 4: taken, 08:00 to 08:30
        shelving(rule="no-such-rule"),  # 5: unknown alarm rule
        shelving(rule="nozzle-overtemp", shelve="one_shot"),  # 6: watches FDM printers, not CNC1
        shelving(shelve="timed", duration_s=9 * 3600),  # 7: over the 8 h maximum
        shelving(shelve="one_shot", duration_s=60),  # 8: a one-shot shelve has no duration
        shelving(shelve="timed", duration_s=600, comment=""),  # 9: no why
        shelving(change="out_of_service", rule="stock-below-reorder", asset="PLA-1KG", minutes=1),  # 10: not at lyon
        shelving(change="unshelved", minutes=-1),  # 11: taken (the lifecycle refuses it, the journal says so)
    ]

    async def body(call: Call, endpoint: FeedEndpoint) -> None:
        status, answer = await call(EVENTS, json.dumps(batch))
        assert status == 200
        reasons = {r["index"]: r["reason"] for r in answer["rejected"]}
        assert answer["accepted"] == 3 and sorted(reasons) == [1, 2, 3, 5, 6, 7, 8, 9, 10]
        assert reasons[1].startswith("data.reason: 'coffee' is not a reason of the downtime tree of site 'pod-lyon' (")
        assert reasons[2].startswith("asset: no machine 'P9' at site 'pod-lyon' (machines: S1, S2, W1, CNC1")
        assert reasons[3].startswith("data.start 2026-03-02T08:01:00+00:00 is after the event's time")
        assert reasons[5].startswith("data.rule: no alarm rule 'no-such-rule' (rules: nozzle-overtemp")
        assert reasons[6] == ("alarm rule 'nozzle-overtemp' does not watch 'CNC1' at site 'pod-lyon': "
                              "no such alarm")
        assert reasons[7] == "data.duration_s: a timed shelve lasts more than 0 and at most 28800 s (got 32400)"
        assert reasons[8].startswith("data.duration_s: a one-shot shelve lasts until the alarm returns to normal")
        assert reasons[9].startswith("data.comment: ")
        assert reasons[10].startswith("alarm rule 'stock-below-reorder' does not watch 'PLA-1KG' at site 'pod-lyon'")

    try:
        run_collector(collector, intake, body)
        got = reader.events("pod-lyon", T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    finally:
        reader.close()
        store.close()
    mine = [e for e in got if e.kind in (EventKind.STOP_CLASSIFIED, EventKind.ALARM_SHELVING)]
    assert mine == [codec.event_from_dict(batch[i]) for i in (11, 0, 4)]  # in time order, exactly as sent

    # the downtime uses the classification: CNC1's 30 idle minutes from 07:20 get 'blocked' from ana, and a
    # stop the data classified (a breakdown of CNC2 at the same time) keeps its reason
    lyon = fleet.site("pod-lyon")
    idle = Stop(machine="CNC1", start=STOP, end=STOP + timedelta(minutes=30), status=MachineStatus.IDLE,
                reason=None, why="idle: the data does not say why (needs a person)", planned=True)
    fault = Stop(machine="CNC2", start=STOP, end=STOP + timedelta(minutes=30), status=MachineStatus.FAULT,
                 reason="breakdown", why="fault", planned=True)
    a, b = apply_classifications(lyon, [idle, fault], mine)
    assert (a.reason, a.by, a.classified_at, a.comment, a.seconds) == ("blocked", "ana", T0, "outfeed full", 1800.0)
    assert b == fault

    # the alarm journal: the unshelve at 07:59 is refused (nothing shelved yet), the timed shelve at 08:00
    # expires at 08:30 by the system, so spindle-overtemp:CNC1 was hidden for exactly those 30 minutes
    shelf, refused = shelving_journal(mine, T0 + timedelta(hours=1))
    assert [(c.ts, c.change, c.by) for c in shelf.journal] == [
        (T0, "shelved", "ben"), (T0 + timedelta(minutes=30), "expired", "system")]
    assert [(e.ts, why) for e, why in refused] == [
        (T0 - timedelta(minutes=1), "alarm 'spindle-overtemp:CNC1' is not shelved")]
    assert hidden_intervals(shelf.journal, T0 + timedelta(hours=1)) == {
        "spindle-overtemp:CNC1": [(T0, T0 + timedelta(minutes=30))]}


def test_an_event_journal_row_keeps_who_and_why() -> None:
    """What the journal shows of a shelving: who, why, and until when a timed shelve lasts."""
    e = codec.event_from_dict(shelving(shelve="timed", duration_s=1800))
    shelf, _ = shelving_journal([Event(ts=e.ts, site=e.site, asset=e.asset, kind=e.kind, message=e.message,
                                       data=e.data)], T0 + timedelta(minutes=10))
    assert shelf.hidden("spindle-overtemp:CNC1") == "shelved"
    assert shelf.journal[0].why == "sensor swap (until 2026-03-02T08:30:00+00:00)"


def test_the_module_examples_run() -> None:
    import doctest

    import connectors.feeds.events

    result = doctest.testmod(connectors.feeds.events)
    assert result.attempted > 0 and result.failed == 0


def test_predictive_alarms_can_be_shelved_like_the_others(fleet: FleetSpec) -> None:
    """The forecaster's alarms are keyed RULE:ASSET like every alarm: a machine (failure risk), an item
    (stockout risk) or an order (late-order risk: orders are records, not in the plant file, so any asset that
    is neither a machine nor an item of the site names one). Each can be shelved; a rule still refuses an
    asset it does not watch."""
    from connectors.feeds.events import parse_events

    def at_berlin(rule: str, asset: str) -> dict[str, Any]:
        return {**shelving(rule=rule, asset=asset, shelve="one_shot"), "site": "pod-berlin"}

    body = [at_berlin("failure-risk", "P3"), at_berlin("stockout-risk", "PLA-1KG"),
            at_berlin("late-order-risk", "pod-berlin-O000042"),
            at_berlin("late-order-risk", "P3"),  # a machine is not an order
            at_berlin("stockout-risk", "P3")]  # nor an item
    parsed = parse_events(json.dumps(body).encode(), fleet, T0)
    assert [e.asset for e in parsed.events] == ["P3", "PLA-1KG", "pod-berlin-O000042"]
    assert [(r.index, r.reason) for r in parsed.rejected] == [
        (3, "alarm rule 'late-order-risk' does not watch 'P3' at site 'pod-berlin': no such alarm"),
        (4, "alarm rule 'stockout-risk' does not watch 'P3' at site 'pod-berlin': no such alarm")]
