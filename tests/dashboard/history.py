"""Deterministic plant history for dashboard tests and the dashboard bench.

``fill(historian, fleet, now, hours, step_s)`` produces readings tick by tick, folds them through
the real live reducer (``twin.live.apply``) and writes readings, events and periodic checkpoints to
the historian, exactly as the collector does. Two machines are made abnormal on purpose: the first
site's third machine stops reporting ``STALE_FOR`` before ``now`` (it must show UNKNOWN, grey, with its
age) and the second site's CNC1 is in FAULT for the last 40 minutes.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from twin import live
from twin.calendar import in_shift
from twin.historian import Historian
from twin.readings import Reading
from twin.spec import FleetSpec, MachineStatus, SignalKind

STALE_FOR = timedelta(minutes=15)
FAULT_FOR = timedelta(minutes=40)


def _code(template_codes: dict[int, MachineStatus], status: MachineStatus) -> int:
    for wanted in (status, MachineStatus.IDLE, MachineStatus.RUNNING):
        for c, s in template_codes.items():
            if s is wanted:
                return c
    raise ValueError(f"template has no code for {status}")


def status_at(i: int, idx: int) -> MachineStatus:
    phase = (i + 7 * idx) % 30
    if phase < 22:
        return MachineStatus.RUNNING
    if phase < 26:
        return MachineStatus.IDLE
    if phase < 27:
        return MachineStatus.SETUP
    return MachineStatus.RUNNING


def fill(historian: Historian, fleet: FleetSpec, now: datetime, *, hours: float = 10.0, step_s: float = 120.0,
         checkpoint_every: int = 15) -> None:
    t0 = now - timedelta(hours=hours)
    state = live.initial_state(fleet, t0)
    counters: dict[tuple[str, str], list[int]] = {}
    stocks: dict[tuple[str, str], float] = {}
    frac: dict[tuple[str, str], float] = {}
    made_n: dict[tuple[str, str], int] = {}
    n = int(hours * 3600 / step_s)
    stale_site = fleet.sites[0].id
    stale_machine = fleet.sites[0].machines[2].id if len(fleet.sites[0].machines) > 2 else None
    fault_site = fleet.sites[1].id if len(fleet.sites) > 1 else None
    for i in range(n + 1):
        t = t0 + timedelta(seconds=i * step_s)
        readings: list[Reading] = []
        for s_idx, site in enumerate(fleet.sites):
            for idx, m in enumerate(site.machines):
                if site.id == stale_site and m.id == stale_machine and t > now - STALE_FOR:
                    continue
                codes = dict(m.template.status_codes)
                st = status_at(i, idx + s_idx) if in_shift(site.calendar, site.timezone, t) else MachineStatus.OFF
                if site.id == fault_site and m.id == "CNC1" and t > now - FAULT_FOR:
                    st = MachineStatus.FAULT
                good_scrap = counters.setdefault((site.id, m.id), [1000, 10])
                if st is MachineStatus.RUNNING:
                    # 85 % of the ideal rate: performance 0.85 (parts per tick kept fractional)
                    part_s = m.template.ideal_cycle_time_s / max(m.template.batch_size, 1)
                    made = frac.get((site.id, m.id), 0.0) + 0.85 * step_s / part_s
                    whole = int(made)
                    frac[(site.id, m.id)] = made - whole
                    for _ in range(whole):  # every 25th part is scrap: quality 96 %
                        made_n[(site.id, m.id)] = made_n.get((site.id, m.id), 0) + 1
                        good_scrap[1 if made_n[(site.id, m.id)] % 25 == 0 else 0] += 1
                for sig in m.template.signals:
                    value: float | int
                    if sig.kind is SignalKind.STATUS:
                        value = _code(codes, st)
                    elif sig.kind is SignalKind.GOOD_COUNT:
                        value = good_scrap[0]
                    elif sig.kind is SignalKind.SCRAP_COUNT:
                        value = good_scrap[1]
                    elif sig.kind is SignalKind.TEMPERATURE:
                        value = round(40.0 + 10.0 * math.sin(i / 20.0 + idx), 2)
                    elif sig.kind is SignalKind.POWER:
                        value = round((3.0 if st is MachineStatus.RUNNING else 0.4) + 0.3 * math.sin(i / 7.0), 3)
                    elif sig.kind is SignalKind.VIBRATION:
                        value = round(2.0 + math.sin(i / 5.0 + idx), 3)
                    elif sig.kind is SignalKind.CYCLE_TIME:
                        value = m.template.ideal_cycle_time_s * 1.1
                    elif sig.kind is SignalKind.LEVEL:
                        value = max(20.0, 100.0 - i * 0.05)
                    else:
                        continue
                    readings.append(Reading(ts=t, site=site.id, asset=m.id, signal=sig.name, value=value))
            for k, item in enumerate(site.inventory):
                key = (site.id, item.sku)
                start = item.reorder_point * (0.6 if (s_idx == 0 and k == 0) else 3.0)
                use = item.reorder_point / 3.0 * step_s / 86400.0  # a reorder point lasts 3 days
                on_hand = stocks.get(key, start + n * use)
                on_hand = max(0.0, on_hand - use)
                stocks[key] = on_hand
                readings.append(Reading(ts=t, site=site.id, asset=item.sku, signal="on_hand", value=on_hand))
                transit = item.reorder_qty if k == 0 else 0.0
                readings.append(Reading(ts=t, site=site.id, asset=item.sku, signal="in_transit", value=transit))
                eta = (now + timedelta(days=item.lead_time_d / 2)).timestamp() if transit else 0
                readings.append(Reading(ts=t, site=site.id, asset=item.sku, signal="eta", value=eta))
        state, events = live.apply(fleet, state, readings, t)
        checkpoints = list(state.sites.values()) if i % checkpoint_every == 0 else []
        historian.write(readings, checkpoints, events)
