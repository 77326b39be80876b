"""How one machine's readings change its state: status transitions, counters, staleness; and status history read back.

``MachineFold`` is a working copy of one ``MachineState`` while a batch is folded in (the rules
are in ``twin.live``); ``status_known_since`` reads when a status began through the data gaps
those transitions record.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from twin.frozen import FrozenDict
from twin.live.ignored import IgnoredCounter
from twin.readings import Quality, Reading, Value
from twin.spec import MachineSpec, MachineStatus, MachineTemplate, SignalKind, SignalName, SignalSpec, SiteId
from twin.state import Event, EventKind, MachineState, SignalValue

__all__ = ["MachineFold", "any_stale", "signal_index", "status_known_since"]


def _as_uint(value: Value, bits: int) -> int | None:
    """``value`` as an unsigned ``bits``-wide integer, or None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not value.is_integer():
            return None
        value = int(value)
    if isinstance(value, int) and 0 <= value < (1 << bits):
        return value
    return None


def _status_code(value: Value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


# The reducer's hottest line builds a SignalValue per reading: straight from its fields' tuple.
_tuple_new = tuple.__new__


def signal_index(template: MachineTemplate) -> dict[str, SignalSpec]:
    """The template's signals by name; the first wins, as ``MachineTemplate.signal`` finds it."""
    index: dict[str, SignalSpec] = {}
    for sig in template.signals:
        index.setdefault(sig.name, sig)
    return index


def any_stale(signals: FrozenDict[SignalName, SignalValue], cutoff: datetime) -> bool:
    good = Quality.GOOD
    for sv in signals.values():  # noqa: SIM110 - a plain loop is about twice as fast as any() here
        if sv.ts < cutoff and sv.quality is good:
            return True
    return False


class MachineFold:
    """A working copy of one MachineState while a batch is folded in; ``build`` freezes it again."""

    __slots__ = (
        "changed",
        "counted_at",
        "events",
        "failures",
        "good_total",
        "last_raw_good",
        "last_raw_scrap",
        "old",
        "quality",
        "reason",
        "repairs",
        "running_at_count",
        "scrap_total",
        "signals",
        "since",
        "site",
        "spec",
        "status",
        "status_seconds",
    )

    def __init__(self, spec: MachineSpec, old: MachineState, site: SiteId, events: list[Event]) -> None:
        self.spec = spec
        self.old = old
        self.site = site
        self.events = events
        self.changed = False
        self.status = old.status
        self.since = old.status_since
        self.quality = old.status_quality
        self.reason = old.status_reason
        self.status_seconds: dict[MachineStatus, float] | None = None
        self.failures = old.failures
        self.repairs = old.repairs
        self.good_total = old.good_total
        self.scrap_total = old.scrap_total
        self.last_raw_good = old.last_raw_good
        self.last_raw_scrap = old.last_raw_scrap
        self.counted_at = old.counted_at
        self.running_at_count = old.running_s_at_count
        self.signals: dict[SignalName, SignalValue] | None = None

    def counted(self, at: datetime) -> None:
        """A counter went up at ``at``: a cycle ended; remember the RUNNING seconds up to then."""
        seconds = self.status_seconds if self.status_seconds is not None else self.old.status_seconds
        total = seconds.get(MachineStatus.RUNNING, 0.0)
        if self.status is MachineStatus.RUNNING and self.since is not None and at > self.since:
            total += (at - self.since).total_seconds()
        self.counted_at, self.running_at_count = at, total

    def sig(self) -> dict[SignalName, SignalValue]:
        if self.signals is None:
            self.signals = dict(self.old.signals)
        return self.signals

    def transition(
        self, to: MachineStatus, at: datetime, quality: Quality, reason: str, last_known: MachineStatus | None
    ) -> None:
        """Move to status ``to`` at ``at``; ``last_known`` is the last known status before it."""
        frm = self.status
        if to is frm:
            if quality is not self.quality or reason != self.reason:
                self.quality, self.reason, self.changed = quality, reason, True
            return
        since = self.since
        if since is not None:
            if at < since:
                at = since
            if self.status_seconds is None:
                self.status_seconds = dict(self.old.status_seconds)
            self.status_seconds[frm] = self.status_seconds.get(frm, 0.0) + (at - since).total_seconds()
        if to is MachineStatus.FAULT and last_known is not MachineStatus.FAULT:
            self.failures += 1
        elif (
            last_known is MachineStatus.FAULT
            and to is not MachineStatus.FAULT
            and to is not MachineStatus.UNKNOWN
        ):
            self.repairs += 1
        self.status, self.since, self.quality, self.reason, self.changed = to, at, quality, reason, True
        data: dict[str, Value] = {"from": frm.value, "to": to.value}
        if reason:
            data["reason"] = reason
        self.events.append(
            Event(
                ts=at,
                site=self.site,
                asset=self.spec.id,
                kind=EventKind.STATUS_CHANGE,
                message=f"{self.spec.id}: {frm.value} -> {to.value}" + (f" ({reason})" if reason else ""),
                data=FrozenDict(data),
            )
        )

    def fold(self, readings: list[Reading], ignored: IgnoredCounter, signals: dict[str, SignalSpec]) -> None:
        """Fold ``readings`` (this machine's, in time order) in; ``signals`` maps names to the template's."""
        sigs = self.sig()
        good = Quality.GOOD
        status_kind, good_kind, scrap_kind = SignalKind.STATUS, SignalKind.GOOD_COUNT, SignalKind.SCRAP_COUNT
        codes = self.spec.template.status_codes
        applied = False
        for r in readings:
            sig = signals.get(r.signal)
            if sig is None:
                ignored.add(r, "unknown signal")
                continue
            name = sig.name
            prev = sigs.get(name)
            ts = r.ts
            if prev is not None and ts < prev.ts:
                ignored.add(r, "older than the latest sample")
                continue
            value = r.value
            quality = r.quality
            if value is None and quality is not good and prev is not None:
                value = prev.value  # keep the last known value, marked with the new quality
            sigs[name] = _tuple_new(SignalValue, (value, quality, ts, r.reason))
            applied = True
            kind = sig.kind
            if kind is status_kind:
                if (
                    quality is good
                    and self.quality is good
                    and type(value) is int
                    and codes.get(value) is self.status
                    and self.status is not MachineStatus.UNKNOWN
                    and not self.reason
                ):
                    continue  # the same known status again: nothing changes
                self._status(r, prev)
            elif kind is good_kind or kind is scrap_kind:
                if quality is good and type(value) is int:  # the common case of _counter: counting up
                    is_good = kind is good_kind
                    last = self.last_raw_good if is_good else self.last_raw_scrap
                    if last is not None and last <= value < (1 << sig.counter_bits):
                        if value > last:
                            self.counted(ts)
                        if is_good:
                            self.good_total += value - last
                            self.last_raw_good = value
                        else:
                            self.scrap_total += value - last
                            self.last_raw_scrap = value
                        continue
                self._counter(sig, r)
        if applied:
            self.changed = True

    def _last_known(self, prev: SignalValue | None) -> MachineStatus | None:
        if self.status is not MachineStatus.UNKNOWN:
            return self.status
        if prev is None:
            return None
        code = _status_code(prev.value)
        return None if code is None else self.spec.template.status_codes.get(code)

    def _status(self, r: Reading, prev: SignalValue | None) -> None:
        last_known = self._last_known(prev)
        if r.quality is not Quality.GOOD:
            reason = r.reason or f"status signal {r.quality.value}"
            self.transition(MachineStatus.UNKNOWN, r.ts, r.quality, reason, last_known)
            return
        code = _status_code(r.value)
        status = None if code is None else self.spec.template.status_codes.get(code)
        if status is None or status is MachineStatus.UNKNOWN:
            shown = code if code is not None else repr(r.value)
            reason = f"status code {shown} not in map"
            self.sig()[SignalName(r.signal)] = SignalValue(value=r.value, quality=Quality.BAD, ts=r.ts,
                                                           reason=reason)
            self.transition(MachineStatus.UNKNOWN, r.ts, Quality.BAD, reason, last_known)
            return
        self.transition(status, r.ts, Quality.GOOD, "", last_known)

    def _counter(self, sig: SignalSpec, r: Reading) -> None:
        if r.quality is not Quality.GOOD:
            return  # BAD/STALE counter readings never touch the baseline
        bits = sig.counter_bits
        raw = _as_uint(r.value, bits)
        if raw is None:
            self.sig()[sig.name] = SignalValue(
                value=r.value, quality=Quality.BAD, ts=r.ts,
                reason=f"counter value {r.value!r} is not an unsigned {bits}-bit integer",
            )
            return
        good = sig.kind is SignalKind.GOOD_COUNT
        last = self.last_raw_good if good else self.last_raw_scrap
        delta = 0
        if last is not None:
            if raw >= last:
                delta = raw - last
            else:
                span = 1 << bits
                if last >= span - (span >> 2) and raw < (span >> 2):
                    delta = raw + span - last  # wrapped around
                else:
                    delta = raw  # PLC restart: parts counted since the restart
                    self.events.append(
                        Event(
                            ts=r.ts,
                            site=self.site,
                            asset=self.spec.id,
                            kind=EventKind.COUNTER_RESET,
                            message=f"{self.spec.id}: counter {sig.name} reset ({last} -> {raw})",
                            data=FrozenDict({"signal": str(sig.name), "from": last, "to": raw}),
                        )
                    )
        if delta > 0 and last is not None:
            self.counted(r.ts)
        if good:
            self.last_raw_good = raw
            self.good_total += delta
        else:
            self.last_raw_scrap = raw
            self.scrap_total += delta

    def sweep(self, cutoff: datetime, threshold_s: float) -> None:
        """Mark GOOD signals sampled before ``cutoff`` (now - threshold) STALE; a stale status -> UNKNOWN."""
        current = self.signals if self.signals is not None else self.old.signals
        stale = [
            (name, sv) for name, sv in current.items() if sv.quality is Quality.GOOD and sv.ts < cutoff
        ]
        if not stale:
            return
        reason = f"not refreshed for {threshold_s:g} s"
        status_sig = self.spec.template.signal_of_kind(SignalKind.STATUS)
        signals = self.sig()
        for name, sv in stale:
            signals[name] = SignalValue(value=sv.value, quality=Quality.STALE, ts=sv.ts, reason=reason)
            if status_sig is not None and name == status_sig.name:
                went_stale = sv.ts + timedelta(seconds=threshold_s)
                self.transition(MachineStatus.UNKNOWN, went_stale, Quality.STALE, reason, self.status)
        self.changed = True

    def build(self) -> MachineState:
        old = self.old
        return MachineState(
            id=old.id,
            status=self.status,
            status_since=self.since,
            status_quality=self.quality,
            status_reason=self.reason,
            good_total=self.good_total,
            scrap_total=self.scrap_total,
            last_raw_good=self.last_raw_good,
            last_raw_scrap=self.last_raw_scrap,
            failures=self.failures,
            repairs=self.repairs,
            status_seconds=(
                old.status_seconds if self.status_seconds is None else FrozenDict(self.status_seconds)
            ),
            signals=old.signals if self.signals is None else FrozenDict(self.signals),
            counted_at=self.counted_at,
            running_s_at_count=self.running_at_count,
        )



def status_known_since(events: Iterable[Event], machine: str, status: MachineStatus, since: datetime) -> datetime:
    """When ``machine``'s current ``status`` (held since ``since``) began, looking through data gaps.

    A data outage is logged as STATUS_CHANGE events into and out of UNKNOWN. Coming back in the
    status it had before the gap does not make it a new status: the time in status counts from the
    last change into ``status`` from another known status (or its first report). ``status_since``
    stays as it is (it anchors ``status_seconds``, which counts the gap as UNKNOWN); this is what a
    person reads as "OFF for 5.8 h". ``events`` are events up to ``since``, in time order; other
    machines' and other kinds are skipped. A gap in which the status changed (X -> UNKNOWN -> Y)
    starts Y at its return.

    >>> from datetime import UTC
    >>> t = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    >>> def change(minutes: int, frm: str, to: str) -> Event:
    ...     return Event(ts=t + timedelta(minutes=minutes), site="s1", asset="M1", kind=EventKind.STATUS_CHANGE,
    ...                  message="", data=FrozenDict({"from": frm, "to": to}))
    >>> log = [change(0, "running", "off"), change(300, "off", "unknown"), change(310, "unknown", "off")]
    >>> status_known_since(log, "M1", MachineStatus.OFF, t + timedelta(minutes=310)) == t
    True
    """
    unknown, wanted = MachineStatus.UNKNOWN.value, status.value
    changes = [e for e in events if e.asset == machine and e.kind is EventKind.STATUS_CHANGE and e.ts <= since]
    start = since
    for e in reversed(changes):
        frm, to = e.data.get("from"), e.data.get("to")
        if to == wanted and frm == unknown:
            start = e.ts  # back from a gap (or the first report): the status may have begun earlier
        elif to == unknown and frm == wanted:
            continue  # the gap began while in this status
        elif to == wanted:
            return e.ts  # the change into it from another known status
        else:
            break
    return start
