"""Calibration from the business records: demand from order events, lead times from shipments,
consumption from the units made at the consuming step, and nothing read after the window's end."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests import fleets as fl
from tests.twin.sim.helpers import AS_OF, tiny_fleet
from tests.twin.sim.memhistorian import MemoryHistorian
from twin.calibrate import Source, calibrate
from twin.frozen import FrozenDict
from twin.readings import Reading
from twin.sim.uncertainty import Law
from twin.spec import FleetSpec, SignalKind, SiteId
from twin.state import Event, EventKind

T0 = AS_OF  # a Monday 06:00 UTC (07:00 in Berlin)
T1 = T0 + timedelta(days=7)
BERLIN = ZoneInfo("Europe/Berlin")


def _order(ts: datetime, i: int, product: str = "widget") -> Event:
    return Event(ts=ts, site=SiteId("s1"), asset=product, kind=EventKind.ORDER_RECEIVED, message="",
                 data=FrozenDict({"order": f"o{i}", "product": product, "qty": 1, "done_qty": 0, "due": "",
                                  "version": 1}))


def _arrival(ts: datetime, planned: datetime, sku: str, qty: float, i: int) -> Event:
    return Event(ts=ts, site=SiteId("s1"), asset=sku, kind=EventKind.SHIPMENT_ARRIVED, message="",
                 data=FrozenDict({"shipment": f"sh{i}", "sku": sku, "qty": qty, "eta": planned.isoformat(),
                                  "planned_eta": planned.isoformat(), "origin": "", "version": 2,
                                  "status": "arrived"}))


def _orders_every(hours: float, t0: datetime = T0, t1: datetime = T1) -> list[Event]:
    out = []
    t, i = t0 + timedelta(hours=hours / 2), 0
    while t < t1:
        out.append(_order(t, i))
        t += timedelta(hours=hours)
        i += 1
    return out


def test_demand_is_the_exact_order_count_over_the_window() -> None:
    hist = MemoryHistorian()
    events = _orders_every(2.0)  # 84 orders in 7 days
    events += [_order(T1 + timedelta(hours=h), 1000 + h) for h in range(1, 50)]  # after the window: unseen
    events.append(_order(T0 + timedelta(hours=3), 0))  # the same order id again (a replay) counts once
    hist.write([], (), events)
    cal = calibrate(tiny_fleet(), hist, T0, T1)
    est = cal.get("orders_per_day", "s1/widget")
    assert est.source is Source.HISTORY and est.samples == 84
    assert est.value == pytest.approx(84 / 7)  # 12 per day
    law = cal.uncertainty.figures[("demand", "s1", "widget")]
    assert law.law is Law.RATE and law.n == 84


def test_demand_rate_is_per_configured_weekday() -> None:
    # weekends configured at zero: the 7-day window holds 5 weighted days, so 84 orders -> 16.8 per day
    fleet = tiny_fleet()
    site = fleet.sites[0]
    spec = fl.demand("widget", 24.0, weekday_factors=(1.0,) * 5 + (0.0, 0.0))
    fleet = replace(fleet, sites=(replace(site, demand=(spec,)),))
    hist = MemoryHistorian()
    hist.write([], (), _orders_every(2.0))
    cal = calibrate(fleet, hist, T0, T1)
    assert cal.get("orders_per_day", "s1/widget").value == pytest.approx(84 / 5)


def test_weekday_profile_from_enough_orders() -> None:
    # 14 days, an order every 30 min on weekdays and every 2 h at weekends: 480 + 48 per week.
    # Rates per hour: 2 on weekdays, 0.5 at weekends; mean (5 x 2 + 2 x 0.5) / 7 = 11/7 per hour.
    t1 = T0 + timedelta(days=14)
    events, i = [], 0
    t = T0 + timedelta(minutes=1)
    while t < t1:
        events.append(_order(t, i))
        i += 1
        weekend = t.astimezone(BERLIN).weekday() >= 5
        t += timedelta(hours=2.0 if weekend else 0.5)
    hist = MemoryHistorian()
    hist.write([], (), events)
    cal = calibrate(tiny_fleet(), hist, T0, t1)
    wf = cal.params.demand[("s1", "widget")].weekday_factors
    assert wf is not None
    assert wf[0] == pytest.approx(2.0 / (11 / 7), rel=0.02)  # 1.27
    assert wf[6] == pytest.approx(0.5 / (11 / 7), rel=0.05)  # 0.32
    assert cal.get("orders_per_day", "s1/widget").value == pytest.approx(len(events) / 14)


def test_lead_time_from_shipment_arrivals() -> None:
    # FIL is configured with a 2-day lead: planned ETA = ordered + 2 d; it really took 2.5 .. 3.5 d
    leads = [2.5, 3.0, 3.5, 3.0, 3.0]
    events = []
    for i, lead in enumerate(leads):
        ordered = T0 + timedelta(days=i)
        events.append(_arrival(ordered + timedelta(days=lead), ordered + timedelta(days=2), "FIL", 40.0, i))
    # one that arrives after the window's end is not seen
    events.append(_arrival(T1 + timedelta(hours=1), T1 - timedelta(days=1), "FIL", 40.0, 99))
    hist = MemoryHistorian()
    hist.write([], (), events)
    cal = calibrate(tiny_fleet(), hist, T0, T1)
    lt = cal.params.lead_times[("s1", "FIL")]
    assert lt.mean_d == pytest.approx(3.0)
    assert lt.sd_d == pytest.approx(math.sqrt((0.25 + 0.25) / 4))  # sample sd: 0.354 d
    assert cal.get("lead_time_d", "s1/FIL").samples == 5
    assert cal.get("lead_time_d", "s1/SUB").source is Source.DEFAULT  # no arrivals
    assert ("s1", "SUB") not in cal.params.lead_times
    law = cal.uncertainty.figures[("lead", "s1", "FIL")]
    assert law.law is Law.NORMAL and law.n == 5 and law.cv == pytest.approx(lt.sd_d / 3.0)


def _counting_fleet() -> FleetSpec:
    fleet = tiny_fleet()
    site = fleet.sites[0]
    signals = (fl.signal("good", SignalKind.GOOD_COUNT), fl.signal("scrap", SignalKind.SCRAP_COUNT))
    machines = tuple(replace(m, template=replace(m.template, signals=signals)) for m in site.machines)
    return replace(fleet, sites=(replace(site, machines=machines),))


def test_consumption_factor_from_units_made_at_the_consuming_step() -> None:
    # FIL (raw) is drawn at print (step 0), 0.1 kg per unit by the bill of materials, really 0.12:
    # every hour the printers make 4 good + 1 scrapped part (a scrapped one draws again), so 5 x 0.12 =
    # 0.6 kg leaves the shelf per hour. One delivery of 40 kg hides an hour's draw (on hand rises
    # by 39.4), recorded by the feed and by the live twin (counted once). Factor = drawn / (parts
    # made x 0.1) = 0.12 / 0.1 = 1.2 over 100 hours.
    fleet = _counting_fleet()
    readings, events = [], []
    on_hand, good, scrap = 100.0, 0, 0
    for h in range(101):
        ts = T0 + timedelta(hours=h)
        if h:
            good += 4
            scrap += 1
            on_hand -= 0.6
            if h == 50:
                on_hand += 40.0
                events.append(_arrival(ts - timedelta(minutes=10), ts, "FIL", 40.0, 1))
                # the live twin also saw the receipt in on hand: the same delivery, not a second one
                events.append(Event(ts=ts - timedelta(minutes=5), site=SiteId("s1"), asset="FIL",
                                    kind=EventKind.SHIPMENT_ARRIVED, message="",
                                    data=FrozenDict({"sku": "FIL", "qty": 40.0, "received": 40.0})))
        readings += [Reading(ts=ts, site="s1", asset="P1", signal="good", value=good),
                     Reading(ts=ts, site="s1", asset="P1", signal="scrap", value=scrap),
                     Reading(ts=ts, site="s1", asset="P2", signal="good", value=0),
                     Reading(ts=ts, site="s1", asset="P2", signal="scrap", value=0),
                     Reading(ts=ts, site="s1", asset="FIL", signal="on_hand", value=on_hand)]
    hist = MemoryHistorian()
    hist.write(readings, (), events)
    cal = calibrate(fleet, hist, T0, T0 + timedelta(hours=100))
    est = cal.get("consumption_factor", "s1/FIL")
    assert est.source is Source.HISTORY and est.samples == 100
    assert est.value == pytest.approx(1.2)
    assert cal.params.consumption[("s1", "FIL")] == pytest.approx(1.2)
    law = cal.uncertainty.figures[("consumption", "s1", "FIL")]
    assert law.rel_sd() == pytest.approx(0.1)  # standard error value / sqrt(100 draws)


def test_weekday_noise_does_not_replace_the_configured_profile() -> None:
    # 14 days (each weekday twice, 48 h each), 25 orders a day but 35 on each Thursday: 50 a weekday,
    # 70 on Thursdays, 370 in all. Under the configured (flat) profile each weekday expects 370 / 7 =
    # 52.86; chi-square = 6 x (50 - 52.86)^2 / 52.86 + (70 - 52.86)^2 / 52.86 = 0.93 + 5.56 = 6.49,
    # under the 1 % critical value 16.81 (6 degrees of freedom): Poisson noise, the flat profile stays
    # (the raw factor would be Thursday 70 / 52.86 = 1.32)
    t1 = T0 + timedelta(days=14)
    events, i = [], 0
    for day in range(14):
        n = 35 if day % 7 == 3 else 25  # T0 is a Monday
        for k in range(n):  # 08:00-23:00 in Berlin of that day
            events.append(_order(T0 + timedelta(days=day, hours=1 + 15 * k / n), i))
            i += 1
    hist = MemoryHistorian()
    hist.write([], (), events)
    cal = calibrate(tiny_fleet(), hist, T0, t1)
    assert len(events) == 370
    assert cal.params.demand[("s1", "widget")].weekday_factors is None
    assert cal.get("orders_per_day", "s1/widget").value == pytest.approx(370 / 14)
    # one week of the strong profile of test_weekday_profile_from_enough_orders (each weekday seen
    # once) is too short, however clear: the configured profile stays
    week, t, i = [], T0 + timedelta(minutes=1), 0
    while t < T1:
        week.append(_order(t, i))
        i += 1
        t += timedelta(hours=2.0 if t.astimezone(BERLIN).weekday() >= 5 else 0.5)
    hist = MemoryHistorian()
    hist.write([], (), week)
    assert len(week) >= 7 * 30
    assert calibrate(tiny_fleet(), hist, T0, T1).params.demand[("s1", "widget")].weekday_factors is None
