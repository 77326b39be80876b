"""Store-and-forward: write locally first (the acknowledgement), send the backlog to InfluxDB in order.

Each ``write`` commits the batch to the embedded SQLite store together with its line protocol in
the store's outbox (one transaction). The forwarder then sends outbox batches oldest first; after
InfluxDB accepts one, the durable cursor in the same SQLite file moves past it. A crash between
"accepted" and "cursor moved" resends that batch, which InfluxDB stores once (same measurement,
tags and timestamp), so nothing is lost and nothing is duplicated across outages and restarts.
While InfluxDB is unreachable, writes keep succeeding locally and retries back off
(``connectors.linkhealth``, as for the Modbus poller and the InfluxDB feed, without jitter).
(The configured historian is opened by ``app.historians.open_historian``.)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from connectors.linkhealth import Backoff, Change, LinkHealth
from connectors.store import SqliteHistorian
from twin.errors import HistorianError
from twin.historian import SeriesKey, SeriesResult
from twin.readings import Reading
from twin.state import Event, SiteState

__all__ = ["LineSink", "StoreAndForward"]

log = logging.getLogger(__name__)


class LineSink(Protocol):
    """Where forwarded line protocol goes (``InfluxHistorian.write_lines``)."""

    def write_lines(self, payload: str) -> None: ...

    def close(self) -> None: ...


class StoreAndForward:
    """A historian that writes to a local store and forwards every batch to a line-protocol sink.

    Reads are served by the local store. ``pump()`` sends pending batches; ``write`` calls it after
    each commit unless the sink failed less than the current back-off ago (``clock`` is monotonic
    seconds, injectable for tests).
    """

    def __init__(
        self,
        store: SqliteHistorian,
        sink: LineSink,
        *,
        batches_per_pump: int = 50,
        backoff_s: tuple[float, float] = (1.0, 60.0),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not store.has_outbox:
            raise HistorianError("store-and-forward needs a store opened with outbox=batch_lines")
        self.store, self.sink = store, sink
        self.batches_per_pump = batches_per_pump
        # no signals of its own, so never STALE or BAD: only down/up and the backoff
        self.link = LinkHealth(bad_after_s=float("inf"), backoff=Backoff(*backoff_s))
        self._clock = clock

    def __repr__(self) -> str:
        return f"StoreAndForward({self.store!r}, {self.sink!r})"

    def write(
        self,
        readings: Sequence[Reading],
        states: Sequence[SiteState] = (),
        events: Sequence[Event] = (),
    ) -> None:
        self.store.write(readings, states, events)  # acknowledged here
        if self.link.may_try(self._clock()):
            self.pump()

    def pump(self, max_batches: int | None = None) -> int:
        """Send pending batches in order; returns how many were forwarded. Never raises on a sink failure."""
        sent = 0
        limit = self.batches_per_pump if max_batches is None else max_batches
        while sent < limit:
            pending = self.store.outbox_pending(min(10, limit - sent))
            if not pending:
                break
            for batch_id, payload in pending:
                try:
                    self.sink.write_lines(payload)
                except HistorianError as exc:
                    if self.link.fail(self._clock(), str(exc)) is Change.DOWN:  # logged once per outage
                        log.warning("forwarding paused (%s); %d batches wait; retry in %.0f s", exc,
                                    self.store.outbox_backlog(), self.link.delay)
                    return sent
                self.store.outbox_done(batch_id)
                sent += 1
        if not self.link.up:
            self.link.answered(self._clock())
            log.warning("forwarding resumed: %d batches sent", sent)
        return sent

    def backlog(self) -> int:
        return self.store.outbox_backlog()

    def series(
        self, keys: Sequence[SeriesKey], t0: datetime, t1: datetime, max_points: int
    ) -> list[SeriesResult]:
        return self.store.series(keys, t0, t1, max_points)

    def state_at(self, site: str, t: datetime) -> SiteState | None:
        return self.store.state_at(site, t)

    def events(self, site: str | None, t0: datetime, t1: datetime) -> list[Event]:
        return self.store.events(site, t0, t1)

    def signals(self, site: str | None = None) -> list[SeriesKey]:
        return self.store.signals(site)

    def close(self) -> None:
        try:
            self.pump()
        finally:
            self.sink.close()
            self.store.close()
