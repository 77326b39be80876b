"""The reduced replay of ``state_at`` gives exactly the live reducer's state, on a rough history.

``state_at`` folds only the stored rows that can change its result (``connectors.store.replay.ReplayPlan``):
latest values, monotone counter runs collapsed. This history is built to break that shortcut if it
were wrong: status flapping and out-of-map codes, counters wrapping (16 bits) and resetting, BAD
and invalid counter readings, BAD readings without a value (which carry the previous value) right
before checkpoints, NaN, a machine sampled at other instants than the rest (its sample times are
"foreign" to the others, where staleness shows), a machine dropping out (stale, UNKNOWN), a
watched temperature raising and clearing alarms, stock consumed and received.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from connectors.store import SqliteHistorian
from connectors.store.replay import ReplayPlan
from tests import fleets as fl
from tests.connectors.store.conftest import T0
from twin import live
from twin.readings import Quality, Reading, Value
from twin.spec import AlarmKind, FleetSpec, Priority, Role, SignalKind
from twin.state import EventKind, SiteState

CELL = fl.template("cell", Role.MACHINE, 30.0, status_codes=fl.codes(1, 2, 3), signals=(
    fl.signal("status", SignalKind.STATUS),
    fl.signal("good", SignalKind.GOOD_COUNT, counter_bits=16),
    fl.signal("scrap", SignalKind.SCRAP_COUNT, counter_bits=16),
    fl.signal("temp_c", SignalKind.TEMPERATURE),  # watched by "hot"
    fl.signal("power_kw", SignalKind.POWER),  # only its latest value counts
    fl.signal("job", SignalKind.JOB),
))
MACHINES = ("M1", "M2", "M3")
STAGGERED = "M3"  # sampled 0.37 s after the others
SIGNALS = ("status", "good", "scrap", "temp_c", "power_kw", "job")


def cell_fleet() -> FleetSpec:
    site = fl.site("s1", *(fl.machine(m, CELL) for m in MACHINES),
                   calendar=fl.day_shift(0, 0, weekdays=fl.EVERY_DAY, name="all"),
                   inventory=(fl.item("PLA", unit="kg", reorder_point=5.0, reorder_qty=20.0, lead_time_d=2.0,
                                      poll_interval_s=1.0),))
    alarms = (
        fl.rule("hot", AlarmKind.ABOVE, priority=Priority.HIGH, signal="temp_c", threshold=240.0, for_s=2.0),
        fl.rule("down", AlarmKind.MACHINE_DOWN, priority=Priority.URGENT, for_s=3.0),
        fl.rule("low", AlarmKind.STOCK_BELOW_REORDER),
    )
    return fl.fleet(site, alarms=alarms)


class Plant:
    """A seeded, deliberately unruly plant: one call per second gives that second's samples."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.status = dict.fromkeys(MACHINES, 2)
        self.good = {"M1": 65_000, "M2": 10, "M3": 500}  # M1 wraps its 16-bit counter early on
        self.scrap = dict.fromkeys(MACHINES, 0)
        self.stock = 12.0

    def poll(self, k: int) -> list[Reading]:
        rng = self.rng
        out: list[Reading] = []
        for m in MACHINES:
            ts = T0 + timedelta(seconds=k + (0.37 if m == STAGGERED else 0.0))
            if m == "M2" and k % 97 in range(40, 47):
                continue  # M2 unreachable for 7 s: its values go stale, its status UNKNOWN

            def add(signal: str, value: Value, quality: Quality = Quality.GOOD, reason: str = "",
                    m: str = m, ts: datetime = ts) -> None:
                out.append(Reading(ts=ts, site="s1", asset=m, signal=signal, value=value, quality=quality,
                                   reason=reason))

            if rng.random() < 0.08:
                self.status[m] = rng.choice((1, 2, 2, 3))
            if rng.random() < 0.02:
                add("status", 9)  # not in the map: UNKNOWN
            elif rng.random() < 0.02:
                add("status", None, Quality.BAD, "timeout")
            else:
                add("status", self.status[m])
            if self.status[m] == 2:
                self.good[m] = (self.good[m] + rng.choice((0, 0, 1, 3))) % 65_536  # wraps at 16 bits
                self.scrap[m] += rng.random() < 0.05
            if rng.random() < 0.01:
                self.good[m] = rng.randrange(0, 20)  # PLC restart: the counter starts again
            x = rng.random()
            if x < 0.03:
                add("good", None, Quality.BAD, "crc error")
            elif x < 0.04:
                add("good", 3.5)  # not a counter value: BAD, baseline kept
            else:
                add("good", self.good[m] if rng.random() < 0.9 else float(self.good[m]))
            add("scrap", self.scrap[m])
            hot = 100 <= k % 150 < 106 and m == "M1"
            add("temp_c", 250.0 if hot else 200.0 + rng.random() * 5)
            y = rng.random()
            if k % 60 in (58, 59) and m != "M3":
                add("power_kw", None, Quality.BAD, "timeout")  # the value carried into the checkpoint
            elif y < 0.03:
                add("power_kw", math.nan)
            elif y < 0.06:
                add("power_kw", None, Quality.STALE, "not refreshed")
            else:
                add("power_kw", round(rng.uniform(1, 5), 2))
            if k % 7 == 0:
                add("job", f"J-{k // 50}")
        self.stock = self.stock - 0.05 if k % 120 else self.stock + 10.0
        out.append(Reading(ts=T0 + timedelta(seconds=k), site="s1", asset="PLA", signal="on_hand",
                           value=round(self.stock, 2)))
        return out


def same(a: SiteState | None, b: SiteState | None) -> bool:
    """Equality, with NaN values compared equal to NaN (they are written and read back as NaN)."""
    return repr(a) == repr(b)


@pytest.mark.parametrize("seed", [11])
def test_reduced_replay_equals_the_live_state(tmp_path: Path, seed: int) -> None:
    fleet = cell_fleet()
    site_spec = fleet.site("s1")
    store = SqliteHistorian(tmp_path / "h.sqlite", fleet)
    plant = Plant(seed)
    state = live.initial_site_state(site_spec, T0)
    history: dict[datetime, SiteState] = {T0: state}
    kinds: set[EventKind] = set()
    store.write([], states=[state])
    try:
        for k in range(1, 361):  # 6 minutes; a checkpoint every 60 s
            batch = plant.poll(k)
            for ts in sorted({r.ts for r in batch}):  # the collector applies each sample time
                group = [r for r in batch if r.ts == ts]
                state, events = live.apply_site(fleet, site_spec, state, group, ts)
                kinds.update(e.kind for e in events)
                history[ts] = state
            store.write(batch, states=[state] if k % 60 == 0 else ())
        # the history did what it is meant to
        assert {EventKind.STATUS_CHANGE, EventKind.COUNTER_RESET, EventKind.ALARM_RAISED,
                EventKind.ALARM_CLEARED} <= kinds
        checks = sorted(history)[::4] + [T0 + timedelta(seconds=k + 0.5) for k in (59, 130, 185, 299, 359)]
        reader = SqliteHistorian(store.path, fleet, readonly=True, replay_margin_s=2.0)  # continues replays
        try:
            for t in checks:
                prev = max(ts for ts in history if ts <= t)
                if t in history:
                    expected = history[t]
                else:
                    expected, _ = live.apply_site(fleet, site_spec, history[prev], (), t)
                assert same(store.state_at("s1", t), expected), f"state_at differs at {t - T0}"
                assert same(reader.state_at("s1", t), expected), f"continued replay differs at {t - T0}"
        finally:
            reader.close()
    finally:
        store.close()


def test_the_shortcut_drops_rows(tmp_path: Path) -> None:
    """The replay above was not a full one: most power and counter rows are not folded."""
    fleet = cell_fleet()
    store = SqliteHistorian(tmp_path / "h.sqlite", fleet)
    plant = Plant(3)
    try:
        for k in range(1, 61):
            store.write(plant.poll(k))
        with store._reading() as db:
            names, rows, _ = store._site_rows(db, "s1", None, 2**62)
        kept = ReplayPlan(fleet, fleet.site("s1"), names).reduce(rows)
        by_signal = {s: sum(1 for r in rows if names[r[0]][1] == s) for s in (*SIGNALS, "on_hand")}
        kept_by_signal = {s: sum(1 for r in kept if names[r[0]][1] == s) for s in by_signal}
        # status, temp_c (watched) and stock are folded whole; the others mostly not
        for s in ("status", "temp_c", "on_hand"):
            assert kept_by_signal[s] == by_signal[s], s
        assert kept_by_signal["power_kw"] < by_signal["power_kw"] / 2
        assert kept_by_signal["good"] < by_signal["good"] / 2
        assert {r[1] for r in kept} == {r[1] for r in rows}  # every sample time is still folded
    finally:
        store.close()


def two_machines(*, staggered: bool) -> FleetSpec:
    base = cell_fleet()
    site = base.sites[0]
    machines = site.machines[:3] if staggered else site.machines[:2]
    return fl.fleet(fl.site("s1", *machines, calendar=site.calendar), alarms=base.alarms)


def test_first_row_of_each_asset_at_each_time_is_kept(tmp_path: Path) -> None:
    """The reducer takes a batch's assets in order of appearance: that order must survive the shortcut.

    Series are created in the order M1.power_kw, M2.power_kw, M1.status, M2.status. At +5 s both
    machines change status: the live reducer (fed in that order) records M1's change before M2's.
    M2's power row at +3 s is its last and stays; M1's is in the middle of its run and could go,
    which would put M2's change first.
    """
    fleet = two_machines(staggered=False)
    site_spec = fleet.site("s1")
    store = SqliteHistorian(tmp_path / "h.sqlite", fleet)
    state = live.initial_site_state(site_spec, T0)
    store.write([], states=[state])
    try:
        for k in range(1, 11):
            ts = T0 + timedelta(seconds=k)
            code = 1 if k < 3 else 2
            batch = [Reading(ts=ts, site="s1", asset="M1", signal="power_kw", value=float(k))]
            if k <= 3:
                batch.append(Reading(ts=ts, site="s1", asset="M2", signal="power_kw", value=float(k)))
            batch += [Reading(ts=ts, site="s1", asset=m, signal="status", value=code) for m in ("M1", "M2")]
            state, _ = live.apply_site(fleet, site_spec, state, batch, ts)
            store.write(batch)
        changes = [e.asset for e in state.recent_events
                   if e.kind is EventKind.STATUS_CHANGE and e.ts.second == 3]
        assert changes == ["M1", "M2"]
        assert same(store.state_at("s1", T0 + timedelta(seconds=10)), state)
    finally:
        store.close()


def test_values_never_look_stale_where_the_full_replay_has_them_fresh(tmp_path: Path) -> None:
    """Dropped rows leave an older value in place; at another machine's sample time it must not turn stale.

    M1 samples power every second, M3 at +0.37 s (its sample times are foreign to M1). Stale after
    3 polls of 1 s: among M1's folded power rows no gap may exceed 3 s while M3 samples in between;
    without M3 only the first and last row are needed.
    """
    for staggered in (True, False):
        fleet = two_machines(staggered=staggered)
        store = SqliteHistorian(tmp_path / f"h{staggered}.sqlite", fleet)
        try:
            for k in range(0, 30):
                t = T0 + timedelta(seconds=k)
                batch = [Reading(ts=t, site="s1", asset="M1", signal="status", value=2),
                         Reading(ts=t, site="s1", asset="M1", signal="power_kw", value=float(k))]
                if staggered:
                    batch.append(Reading(ts=T0 + timedelta(seconds=k + 0.37), site="s1", asset="M3",
                                         signal="status", value=2))
                store.write(batch)
            with store._reading() as db:
                names, rows, _ = store._site_rows(db, "s1", None, 2**62)
            kept = [ts for sid, ts, _, _ in ReplayPlan(fleet, fleet.site("s1"), names).reduce(rows)
                    if names[sid] == ("M1", "power_kw")]
            if staggered:
                gaps = [b - a for a, b in pairwise(kept)]
                assert max(gaps) <= 3_000_000 and len(kept) < 30  # thinned, never beyond the stale threshold
            else:
                assert len(kept) == 2
        finally:
            store.close()


@pytest.mark.parametrize(("values", "droppable"), [
    # a monotone run: the middle rows may go (the increases add up to the same total)
    ([(100, 0), (200, 0), (250.0, 0), (300, 0)], [False, True, True, False]),
    # a decrease (reset or wrap) keeps the rows on both sides of it
    ([(100, 0), (300, 0), (200, 0), (250, 0)], [False, False, False, False]),
    # rows twin.live does not take as counter values are not "valid" neighbours: out of the 16-bit range,
    # not integral, BAD (flags 2), a bool (flag 4); 300 stays because the next valid value is 200
    ([(100, 0), (300, 0), (70_000, 0), (3.5, 0), (900, 2), (1, 4), (200, 0)],
     [False, False, False, False, False, False, False]),
    # a bool between two valid values is not one: 200 sits between 100 and 300
    ([(100, 0), (200, 0), (1, 4), (300, 0)], [False, True, False, False]),
])
def test_counter_rows_that_may_go(values: list[tuple[Value, int]], droppable: list[bool]) -> None:
    rows = [(1, k, v, f) for k, (v, f) in enumerate(values)]
    assert ReplayPlan._counter_droppable(rows, list(range(len(rows))), 16) == droppable
