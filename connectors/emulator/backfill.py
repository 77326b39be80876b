"""Backfill emulated history: the plant process over a past period, stored as a collector would.

Readings, twin states and events are written much faster than real time. The history is
EMULATED, and every caller labels it so. The same seed and start give the same
history, and an emulator started with ``history_from=start`` continues it seamlessly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from connectors.emulator.plant import Plant
from twin import live
from twin.historian import Historian
from twin.readings import Reading
from twin.spec import FleetSpec
from twin.state import Event, SiteState, TwinState

__all__ = ["BackfillResult", "backfill"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class BackfillResult:
    """What a backfill wrote, and the twin's state at its end."""

    state: TwinState
    readings: int
    events: int
    checkpoints: int


def backfill(
    fleet: FleetSpec,
    historian: Historian,
    *,
    start: datetime,
    end: datetime,
    step_s: float,
    seed: int,
    checkpoint_every_s: float = 900.0,
    batch_readings: int = 50_000,
    progress: Callable[[float], None] | None = None,
) -> BackfillResult:
    """Sample the seeded plant every ``step_s`` from ``start`` to ``end`` into ``historian``.

    Every sample goes through the live reducer, exactly as the collector does, and the site states
    are checkpointed every ``checkpoint_every_s`` of plant time (and at the end). ``progress``
    receives the fraction done.
    """
    if step_s <= 0 or end <= start:
        raise ValueError(f"need step_s > 0 and end after start (got step {step_s}, {start} .. {end})")
    plant = Plant(fleet, seed=seed, start=start)
    state = live.initial_state(fleet, start)
    step = timedelta(seconds=step_s)
    total_s = (end - start).total_seconds()
    readings: list[Reading] = []
    events: list[Event] = []
    states: list[SiteState] = []
    n_readings = n_events = n_checkpoints = 0
    next_checkpoint = start
    t = start
    while t <= end:
        batch = plant.readings(t)
        state, new_events = live.apply(fleet, state, batch, t)
        readings.extend(batch)
        events.extend(new_events)
        n_readings += len(batch)
        n_events += len(new_events)
        last = t + step > end
        if t >= next_checkpoint or last:
            states.extend(state.sites.values())
            n_checkpoints += 1
            next_checkpoint = t + timedelta(seconds=checkpoint_every_s)
        if len(readings) >= batch_readings or last:
            historian.write(readings, states, events)  # few large transactions: backfill is bulk work
            readings, events, states = [], [], []
            if progress is not None:
                progress(min(1.0, (t - start).total_seconds() / total_s))
        t += step
    log.info("backfilled %d readings, %d events, %d checkpoints", n_readings, n_events, n_checkpoints)
    return BackfillResult(state=state, readings=n_readings, events=n_events, checkpoints=n_checkpoints)
