"""Alarm-system performance as ISA-18.2 measures it, from an alarm journal (ALARM_* events).

Figures per site over a window ``[t0, t1)``:

* **rate**: alarms annunciated per 10 minutes, counted in fixed 10-minute periods from ``t0``; the
  average against ISA-18.2's benchmarks for one operator (about 1 per 10 min is very likely
  acceptable, about 2 the most that is manageable, more is over-demanding);
* **floods**: periods with more than 10 alarms (``FLOOD_PER_10_MIN``), joined when consecutive, the
  time in flood and its share of the window (ISA-18.2 aims at under about 1 %);
* **stale** alarms: active for more than 24 hours;
* **chattering** alarms: one alarm (rule × asset) raised 3 or more times within 60 seconds;
* the **top-10 bad actors** (the alarms raised most often, their share of all alarms) and the
  **priority distribution** (ISA-18.2 and EEMUA 191 suggest roughly 80 % low, 15 % high, 5 % highest).

Suppression by design: an alarm raised on a machine while it was OFF or in MAINTENANCE (the
``suppress`` intervals per asset the caller gives, from the machine's status history) is not
annunciated, so it is kept in the journal (``activations``, ``suppressed=True``) but counted in
none of the figures above; so is an alarm raised while shelved or out of service (``shelved``
intervals per alarm key, from ``twin.alarm_shelving.hidden_intervals``).

>>> from datetime import UTC, datetime, timedelta
>>> from twin.frozen import FrozenDict
>>> from twin.state import Event, EventKind
>>> t0 = datetime(2026, 1, 5, 6, tzinfo=UTC)
>>> raise_ = lambda s, asset: Event(ts=t0 + timedelta(seconds=s), site="s1", asset=asset,
...     kind=EventKind.ALARM_RAISED, message="hot", data=FrozenDict({"rule": "hot", "priority": 3}))
>>> perf = performance("s1", [raise_(10, "P1"), raise_(20, "P1"), raise_(30, "P1"), raise_(900, "P2")],
...                    t0, t0 + timedelta(hours=1))
>>> perf.annunciated, perf.average_per_10_min, perf.benchmark, [c.key for c in perf.chattering]
(4, 0.6666666666666666, 'acceptable', ['hot:P1'])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from statistics import median

from twin.spec import Priority
from twin.state import AlarmState, Event, EventKind

__all__ = [
    "ACCEPTABLE_PER_10_MIN",
    "CHATTER_COUNT",
    "CHATTER_WINDOW",
    "FLOOD_PER_10_MIN",
    "MANAGEABLE_PER_10_MIN",
    "PERIOD",
    "STALE_AFTER",
    "AlarmActivation",
    "AlarmPerformance",
    "BadActor",
    "Chatter",
    "Flood",
    "activations",
    "benchmark",
    "performance",
]

PERIOD = timedelta(minutes=10)
FLOOD_PER_10_MIN = 10  # more than this many alarms in a 10-minute period is a flood
STALE_AFTER = timedelta(hours=24)
CHATTER_WINDOW = timedelta(seconds=60)
CHATTER_COUNT = 3  # raised this many times within CHATTER_WINDOW: chattering
ACCEPTABLE_PER_10_MIN = 1.0
MANAGEABLE_PER_10_MIN = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmActivation:
    """One alarm instance of the journal: raised, maybe cleared and acknowledged; suppressed by design or not."""

    site: str
    asset: str
    rule: str
    key: str
    priority: Priority
    message: str
    raised: datetime
    cleared: datetime | None = None
    acked_at: datetime | None = None
    acked_by: str = ""
    comment: str = ""
    suppressed: bool = False  # by design: the machine was off or in maintenance
    shelved: bool = False  # shelved or out of service when it was raised (``twin.alarm_shelving.hidden_intervals``)

    def active_s(self, until: datetime) -> float:
        """How long it was active: to its clearing, or to ``until`` while still active."""
        end = self.cleared if self.cleared is not None else until
        return max((end - self.raised).total_seconds(), 0.0)


def _priority(value: object) -> Priority:
    try:
        return Priority(int(value)) if isinstance(value, int | float | str) and str(value).strip() else Priority.LOW
    except ValueError:
        return Priority.LOW


def _key(e: Event) -> str:
    key = e.data.get("key")
    return key if isinstance(key, str) and key else f"{e.data.get('rule', '')}:{e.asset}"


def activations(events: Iterable[Event], *, active_before: Iterable[AlarmState] = (),
                suppress: Mapping[str, Sequence[tuple[datetime, datetime]]] | None = None,
                shelved: Mapping[str, Sequence[tuple[datetime, datetime]]] | None = None) -> list[AlarmActivation]:
    """The journal's instances in the order raised: each ALARM_RAISED with its clearing and acknowledgement.

    ``active_before``: alarms raised before the events begin (a snapshot's ``alarms``), so their
    clearing, acknowledgement and age are not lost. ``suppress`` maps an asset to the intervals in
    which its alarms are suppressed by design (the machine OFF or in maintenance); ``shelved`` maps an
    alarm key to the intervals in which it was shelved or out of service.
    """
    out: list[AlarmActivation] = []
    latest: dict[tuple[str, str], int] = {}
    for a in active_before:
        latest[(str(a.site), a.key)] = len(out)
        out.append(AlarmActivation(site=str(a.site), asset=a.asset, rule=str(a.rule), key=a.key, priority=a.priority,
                                   message=a.message, raised=a.raised_at, cleared=a.cleared_at, acked_at=a.acked_at,
                                   acked_by=a.acked_by, comment=a.ack_comment))
    for e in sorted(events, key=lambda e: e.ts):
        k = (str(e.site), _key(e))
        if e.kind is EventKind.ALARM_RAISED:
            hidden = any(a <= e.ts < b for a, b in (suppress or {}).get(e.asset, ()))
            on_shelf = any(a <= e.ts < b for a, b in (shelved or {}).get(k[1], ()))
            latest[k] = len(out)
            out.append(AlarmActivation(site=str(e.site), asset=e.asset, rule=str(e.data.get("rule", "")), key=k[1],
                                       priority=_priority(e.data.get("priority")), message=e.message, raised=e.ts,
                                       suppressed=hidden, shelved=on_shelf))
            continue
        i = latest.get(k)
        if i is None:
            continue
        row = out[i]
        if e.kind is EventKind.ALARM_CLEARED and row.cleared is None:
            out[i] = replace(row, cleared=e.ts)
        elif e.kind is EventKind.ALARM_ACKNOWLEDGED and row.acked_at is None:
            out[i] = replace(row, acked_at=e.ts, acked_by=str(e.data.get("user", "")),
                             comment=str(e.data.get("comment", "")))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Flood:
    """Consecutive 10-minute periods with more than 10 alarms each."""

    start: datetime
    end: datetime
    alarms: int

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True, slots=True, kw_only=True)
class Chatter:
    """An alarm raised ``CHATTER_COUNT`` or more times within ``CHATTER_WINDOW``: its most in one window."""

    key: str
    asset: str
    activations: int
    most_in_window: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BadActor:
    """One of the alarms raised most often, with how it was handled."""

    key: str
    asset: str
    message: str
    priority: Priority
    count: int
    share: float
    acknowledged: int
    median_ack_s: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmPerformance:
    """A site's alarm-system figures over ``[t0, t1)`` (see the module docstring)."""

    site: str
    t0: datetime
    t1: datetime
    annunciated: int
    suppressed: int
    shelved: int
    per_period: tuple[tuple[datetime, int], ...]
    average_per_10_min: float
    peak_per_10_min: int
    benchmark: str
    floods: tuple[Flood, ...]
    time_in_flood_s: float
    flood_share: float
    stale: tuple[AlarmActivation, ...]
    chattering: tuple[Chatter, ...]
    bad_actors: tuple[BadActor, ...]
    priorities: tuple[tuple[Priority, int, float], ...]
    journal: tuple[AlarmActivation, ...]


def benchmark(average_per_10_min: float) -> str:
    """ISA-18.2's word for an average alarm rate: acceptable (≤ 1 per 10 min), manageable (≤ 2), over-demanding.

    >>> benchmark(0.5), benchmark(2.0), benchmark(2.1)
    ('acceptable', 'manageable', 'over-demanding')
    """
    if average_per_10_min <= ACCEPTABLE_PER_10_MIN:
        return "acceptable"
    if average_per_10_min <= MANAGEABLE_PER_10_MIN:
        return "manageable"
    return "over-demanding"


def _floods(per_period: Sequence[tuple[datetime, int]], t1: datetime) -> list[Flood]:
    floods: list[Flood] = []
    for start, n in per_period:
        if n <= FLOOD_PER_10_MIN:
            continue
        end = min(start + PERIOD, t1)
        if floods and floods[-1].end == start:
            floods[-1] = Flood(start=floods[-1].start, end=end, alarms=floods[-1].alarms + n)
        else:
            floods.append(Flood(start=start, end=end, alarms=n))
    return floods


def _chattering(shown: Sequence[AlarmActivation]) -> list[Chatter]:
    by_key: dict[str, list[AlarmActivation]] = {}
    for a in shown:
        by_key.setdefault(a.key, []).append(a)
    out = []
    for key, acts in by_key.items():
        times = sorted(a.raised for a in acts)
        most, lo = 0, 0
        for hi, t in enumerate(times):  # the most raisings within any CHATTER_WINDOW (both ends included)
            while t - times[lo] > CHATTER_WINDOW:
                lo += 1
            most = max(most, hi - lo + 1)
        if most >= CHATTER_COUNT:
            out.append(Chatter(key=key, asset=acts[0].asset, activations=len(acts), most_in_window=most))
    return sorted(out, key=lambda c: (-c.most_in_window, -c.activations, c.key))


def _bad_actors(shown: Sequence[AlarmActivation], top: int) -> list[BadActor]:
    by_key: dict[str, list[AlarmActivation]] = {}
    for a in shown:
        by_key.setdefault(a.key, []).append(a)
    out = []
    for key, acts in by_key.items():
        acked = [(a.acked_at - a.raised).total_seconds() for a in acts if a.acked_at is not None]
        out.append(BadActor(key=key, asset=acts[0].asset, message=acts[0].message,
                            priority=max(a.priority for a in acts), count=len(acts), share=len(acts) / len(shown),
                            acknowledged=len(acked), median_ack_s=median(acked) if acked else None))
    return sorted(out, key=lambda b: (-b.count, b.key))[:top]


def performance(site: str, events: Iterable[Event], t0: datetime, t1: datetime, *,
                active_before: Iterable[AlarmState] = (),
                suppress: Mapping[str, Sequence[tuple[datetime, datetime]]] | None = None,
                shelved: Mapping[str, Sequence[tuple[datetime, datetime]]] | None = None,
                top: int = 10) -> AlarmPerformance:
    """The ISA-18.2 figures of ``site`` over ``[t0, t1)`` from its alarm events (others are ignored)."""
    journal = [a for a in activations((e for e in events if e.site == site), active_before=active_before,
                                      suppress=suppress, shelved=shelved) if a.raised < t1]
    in_window = [a for a in journal if a.raised >= t0]
    shown = [a for a in in_window if not a.suppressed and not a.shelved]
    periods = []
    start = t0
    while start < t1:
        end = min(start + PERIOD, t1)
        periods.append((start, sum(1 for a in shown if start <= a.raised < end)))
        start = end
    window_s = (t1 - t0).total_seconds()
    average = len(shown) / (window_s / PERIOD.total_seconds()) if window_s > 0 else 0.0
    floods = _floods(periods, t1)
    in_flood = sum(f.seconds for f in floods)
    stale = tuple(a for a in journal if a.active_s(t1) > STALE_AFTER.total_seconds()
                  and (a.cleared is None or a.cleared >= t0))
    counts = {p: sum(1 for a in shown if a.priority is p) for p in Priority}
    priorities = tuple((p, n, n / len(shown) if shown else 0.0) for p, n in sorted(counts.items()) if n)
    return AlarmPerformance(
        site=site, t0=t0, t1=t1, annunciated=len(shown), suppressed=sum(1 for a in in_window if a.suppressed),
        shelved=sum(1 for a in in_window if a.shelved and not a.suppressed),
        per_period=tuple(periods), average_per_10_min=average, peak_per_10_min=max((n for _, n in periods), default=0),
        benchmark=benchmark(average), floods=tuple(floods), time_in_flood_s=in_flood,
        flood_share=in_flood / window_s if window_s > 0 else 0.0, stale=stale,
        chattering=tuple(_chattering(shown)), bad_actors=tuple(_bad_actors(shown, top)) if shown else (),
        priorities=priorities, journal=tuple(in_window),
    )
