"""People's operator events in the shift report: a shelved alarm stays in the journal and counts in no
ISA-18.2 figure, a person's reason never overrides the data's. On the early shift of ``test_downtime_report``."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from tests.twin.test_downtime import T0, at
from tests.twin.test_downtime_report import _inputs
from twin.codec import dt_to_json
from twin.frozen import FrozenDict
from twin.readings import Value
from twin.shift import build_report
from twin.state import Event, EventKind


def _alarm(t: datetime, kind: EventKind, rule: str) -> Event:
    return Event(ts=t, site="s1", asset="P1", kind=kind, message=rule,
                 data=FrozenDict({"rule": rule, "key": f"{rule}:P1", "priority": 2}))


def _raised_and_cleared(t: datetime, rule: str) -> list[Event]:
    return [_alarm(t, EventKind.ALARM_RAISED, rule), _alarm(t + timedelta(minutes=1), EventKind.ALARM_CLEARED, rule)]


def _shelving(t: datetime, rule: str, change: str, **data: Value) -> Event:
    return Event(ts=t, site="s1", asset="P1", kind=EventKind.ALARM_SHELVING, message=change,
                 data=FrozenDict({"rule": rule, "key": f"{rule}:P1", "change": change, "user": "ana",
                                  "comment": "sensor swap", **data}))


def test_shelved_alarms_stay_in_the_journal_and_count_in_no_figure() -> None:
    base = _inputs()
    rep0 = build_report(base)
    # "hot": shelved for 60 min at 09:00; raised at 09:10 and 09:20 (shelved), 10:30 (after the shelve expired)
    # "cold": out of service since 05:00 (before the shift: the lookback); raised at 07:00 (hidden), back in
    # service at 07:30, raised at 08:00 (counted)
    earlier = (_shelving(at(5), "cold", "out_of_service"),)
    events = [*base.events, _shelving(at(9), "hot", "shelved", shelve="timed", duration_s=3600.0),
              *_raised_and_cleared(at(9, 10), "hot"), *_raised_and_cleared(at(9, 20), "hot"),
              *_raised_and_cleared(at(10, 30), "hot"), *_raised_and_cleared(at(7), "cold"),
              _shelving(at(7, 30), "cold", "in_service"), *_raised_and_cleared(at(8), "cold"),
              _shelving(at(11), "hot", "unshelved")]  # refused: the shelve expired at 10:00
    rep = build_report(replace(base, events=tuple(events), earlier=earlier))
    a0, a = rep0.alarms, rep.alarms
    assert (a.annunciated, a.shelved, len(a.journal)) == (a0.annunciated + 2, a0.shelved + 3, len(a0.journal) + 5)
    shelved = sorted((j.raised, j.key) for j in a.journal if j.shelved)
    assert shelved == [(at(7), "cold:P1"), (at(9, 10), "hot:P1"), (at(9, 20), "hot:P1")]
    # the shift's changes: who and why; the system's expiry at 10:00; the refused unshelve with its reason
    assert [(c.ts, c.key, c.change, c.by) for c in rep.shelving] == [
        (at(7, 30), "cold:P1", "in_service", "ana"), (at(9), "hot:P1", "shelved", "ana"),
        (at(10), "hot:P1", "expired", "system")]
    assert [(e.ts, why) for e, why in rep.shelving_refused] == [(at(11), "alarm 'hot:P1' is not shelved")]


def test_a_person_never_overrides_the_reason_the_data_gave() -> None:
    base = _inputs()
    jam = next(s for s in build_report(base).stops if s.reason == "nozzle_jam")
    said = Event(ts=at(13), site="s1", asset="P1", kind=EventKind.STOP_CLASSIFIED, message="",
                 data=FrozenDict({"start": dt_to_json(jam.start), "reason": "blocked", "user": "ana", "comment": ""}))
    rep = build_report(replace(base, events=(*base.events, said)))
    assert [(r.reason, r.seconds / 60) for r in rep.pareto] == [
        ("nozzle_jam", 45), ("changeover", 30), ("scheduled_break", 30), ("breakdown", 20)]
    assert jam.start > T0
