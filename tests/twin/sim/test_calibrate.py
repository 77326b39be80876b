"""Calibration recovers known parameters from generated history, and says when it fell back."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from tests import fleets as fl
from tests.twin.sim.helpers import AS_OF, tiny_fleet
from tests.twin.sim.memhistorian import MemoryHistorian
from twin.calibrate import Source, calibrate
from twin.frozen import FrozenDict
from twin.historian import Historian
from twin.readings import Reading
from twin.sim.build import fork
from twin.spec import FleetSpec, MachineStatus, Role, SignalKind, SiteId
from twin.state import Event, EventKind, OpenOrder, SiteState

# the "true" process behind the generated history (the configuration says otherwise)
MTBF_H, MTTR_H, CYCLE_S, SCRAP, ORDERS_PER_DAY = 2.0, 0.25, 500.0, 0.04, 30.0


def _fleet() -> FleetSpec:
    from dataclasses import replace

    fleet = tiny_fleet()
    signals = (fl.signal("good", SignalKind.GOOD_COUNT), fl.signal("scrap", SignalKind.SCRAP_COUNT))
    site = fleet.sites[0]
    pk = replace(site.machines[2], template=replace(site.machines[2].template, signals=signals))
    product = replace(fleet.products[0], routing=(Role.PACK,))
    return replace(fleet, sites=(replace(site, machines=(pk,)),), products=(product,))


def _status_event(ts: datetime, frm: MachineStatus, to: MachineStatus) -> Event:
    return Event(ts=ts, site=SiteId("s1"), asset="PK1", kind=EventKind.STATUS_CHANGE, message="",
                 data=FrozenDict({"from": frm.value, "to": to.value}))


def _history(days: float, seed: int = 5) -> tuple[MemoryHistorian, datetime]:
    """A packing station cycling 24/7 (cycle 500 s +-3 %), failing after Exp(2 h) of running time,
    repaired in Exp(15 min); each part scrapped with p = 0.04; the counter restarts once; orders
    arrive Poisson(30/day) and stay open 20 h, seen in hourly snapshots."""
    rng = random.Random(seed)
    hist = MemoryHistorian()
    t0 = AS_OF - timedelta(days=days)
    t, end = 0.0, days * 86400.0
    events: list[Event] = [_status_event(t0, MachineStatus.UNKNOWN, MachineStatus.RUNNING)]
    readings: list[Reading] = []
    good = scrap = 0
    ttf = rng.expovariate(1 / (MTBF_H * 3600))
    next_sample = 0.0
    while t < end:
        work = CYCLE_S * rng.uniform(0.97, 1.03)
        while work >= ttf:
            t += ttf
            work -= ttf
            events.append(_status_event(t0 + timedelta(seconds=t), MachineStatus.RUNNING, MachineStatus.FAULT))
            t += rng.expovariate(1 / (MTTR_H * 3600))
            events.append(_status_event(t0 + timedelta(seconds=t), MachineStatus.FAULT, MachineStatus.RUNNING))
            ttf = rng.expovariate(1 / (MTBF_H * 3600))
        t += work
        ttf -= work
        if rng.random() < SCRAP:
            scrap += 1
        else:
            good += 1
        if t >= next_sample:
            if next_sample == 10 * 86400.0:  # a PLC restart: counters start again from zero
                good = scrap = 0
            ts = t0 + timedelta(seconds=t)
            readings += [Reading(ts=ts, site="s1", asset="PK1", signal="good", value=good),
                         Reading(ts=ts, site="s1", asset="PK1", signal="scrap", value=scrap)]
            next_sample += 3600.0
    t1 = t0 + timedelta(seconds=t)
    orders: list[OpenOrder] = []
    t = rng.expovariate(ORDERS_PER_DAY / 86400.0)
    while t < end:
        created = t0 + timedelta(seconds=t)
        orders.append(OpenOrder(id=f"o{len(orders)}", product="widget", qty=1, created=created,
                                due=created + timedelta(hours=48)))
        t += rng.expovariate(ORDERS_PER_DAY / 86400.0)
    states = []
    snap, first = t0, 0
    while snap <= t1:
        while first < len(orders) and orders[first].created + timedelta(hours=20) <= snap:
            first += 1
        open_now = tuple(o for o in orders[first : first + 200] if o.created <= snap)
        states.append(SiteState(site=SiteId("s1"), as_of=snap, orders=open_now))
        snap += timedelta(hours=1)
    hist.write(readings, states, events)
    return hist, t1


def test_calibration_recovers_known_parameters_within_5_percent() -> None:
    # 240 days: ~ 240 x 24 / 2.25 = 2,560 failures and repairs (exponential: standard error
    # 1/sqrt(n) = 2 %), ~ 7,200 orders (1.2 %), ~ 37,000 cycles
    hist, t1 = _history(days=240)
    assert isinstance(hist, Historian)
    t0 = t1 - timedelta(days=240) + timedelta(seconds=1)
    cal = calibrate(_fleet(), hist, t0, t1)
    assert cal.get("mtbf_h", "s1/PK1").value == pytest.approx(MTBF_H, rel=0.05)
    assert cal.get("mttr_h", "s1/PK1").value == pytest.approx(MTTR_H, rel=0.05)
    assert cal.get("cycle_time_s", "s1/PK1").value == pytest.approx(CYCLE_S, rel=0.05)
    assert cal.get("scrap_rate", "s1/PK1").value == pytest.approx(SCRAP, rel=0.05)
    demand = cal.get("orders_per_day", "s1/widget")
    assert demand.value == pytest.approx(ORDERS_PER_DAY, rel=0.05)
    assert demand.source is Source.HISTORY and demand.samples > 7000
    assert cal.get("mtbf_h", "s1/PK1").samples > 2000
    # the parameters reach the model
    f = fork(_fleet(), SiteState(site=SiteId("s1"), as_of=AS_OF), params=cal.params, horizon_s=3600.0)
    pk = f.data.machines[0]
    assert pk.mtbf_s == pytest.approx(cal.get("mtbf_h", "s1/PK1").value * 3600)
    assert pk.cycle_mean_s == pytest.approx(cal.get("cycle_time_s", "s1/PK1").value)


def test_short_history_falls_back_to_configuration_and_says_so() -> None:
    hist, t1 = _history(days=0.125)
    cal = calibrate(_fleet(), hist, t1 - timedelta(hours=3), t1)
    mtbf = cal.get("mtbf_h", "s1/PK1")
    assert mtbf.source is Source.DEFAULT and mtbf.value == 1000.0 and mtbf.samples < 5
    assert cal.get("orders_per_day", "s1/widget").source is Source.DEFAULT
    assert cal.get("cycle_time_s", "s1/PK1").source is Source.DEFAULT  # ~19 cycles in 3 h: too few (30)
    assert mtbf in cal.defaults_used
    assert cal.to_dict()["estimates"][0]["source"] in ("history", "default")
