"""The machines' condition histories read from the twin's own history (``HistorianReader``).

Per site: the status at ``t0`` from ``state_at``, the status changes from its STATUS_CHANGE events
(the twin's own reading of the PLC's status codes), and every condition signal of its machines
(template signals of kind temperature, power and vibration) as raw points, read a day at a time so
that no request is downsampled (``twin.limits``: 10,000 points per series).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import numpy as np

from twin.health.timeline import CONDITION_KINDS, ConditionHistory
from twin.historian import HistorianReader, SeriesKey
from twin.spec import FleetSpec, MachineStatus, SignalKind
from twin.state import EventKind

__all__ = ["load_histories"]

_CHUNK = timedelta(days=1)
_MAX_POINTS = 10_000


def _status(value: object) -> MachineStatus:
    try:
        return MachineStatus(value)
    except ValueError:
        return MachineStatus.UNKNOWN


def load_histories(reader: HistorianReader, fleet: FleetSpec, t0: datetime, t1: datetime,
                   sites: Iterable[str] | None = None) -> list[ConditionHistory]:
    """Every machine's :class:`ConditionHistory` over ``[t0, t1]`` (of ``sites``; default: all)."""
    wanted = set(sites) if sites is not None else None
    out: list[ConditionHistory] = []
    for site in fleet.sites:
        sid = str(site.id)
        if wanted is not None and sid not in wanted:
            continue
        start = reader.state_at(sid, t0)
        changes: dict[str, list[tuple[float, MachineStatus]]] = {}
        for m in site.machines:
            initial = MachineStatus.UNKNOWN
            if start is not None and m.id in start.machines:
                initial = start.machines[m.id].status
            changes[str(m.id)] = [(t0.timestamp(), initial)]
        for ev in sorted(reader.events(sid, t0, t1), key=lambda e: e.ts):
            if ev.kind is EventKind.STATUS_CHANGE and ev.asset in changes and t0 <= ev.ts <= t1:
                changes[ev.asset].append((ev.ts.timestamp(), _status(ev.data.get("to"))))
        kinds: dict[SeriesKey, SignalKind] = {}
        for m in site.machines:
            for s in m.template.signals:
                if s.kind in CONDITION_KINDS:
                    kinds[SeriesKey(site=sid, asset=str(m.id), signal=str(s.name))] = s.kind
        points: dict[SeriesKey, tuple[list[float], list[float]]] = {k: ([], []) for k in kinds}
        a = t0
        while a < t1 and kinds:
            b = min(t1, a + _CHUNK)
            for r in reader.series(list(kinds), a, b, _MAX_POINTS):
                ts, vs = points[r.key]
                for p in r.points:
                    if p.ts < b or b == t1:  # a point on a chunk boundary belongs to the later chunk
                        ts.append(p.ts.timestamp())
                        vs.append(p.value)
            a = b
        for m in site.machines:
            signals = {k.signal: (kinds[k], np.asarray(points[k][0], dtype=float),
                                  np.asarray(points[k][1], dtype=float))
                       for k in kinds if k.asset == str(m.id)}
            out.append(ConditionHistory(site=sid, machine=str(m.id), template=str(m.template.id),
                                        status=tuple(changes[str(m.id)]), signals=signals))
    return out
