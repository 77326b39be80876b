"""The replay shortcut: which stored rows a replay must fold so that its state is exactly the full replay's.

``SqliteHistorian.state_at`` replays the readings after the latest checkpoint, but folds only the
rows that can change the result (``ReplayPlan``: the latest value of plain signals, the ends of
monotone counter runs; status, watched and inventory signals whole), so a replay costs what the
status changes cost, not what the polls cost.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import timedelta

from connectors.store.schema import NAN, ONE_US, Row
from twin.spec import FleetSpec, SignalKind, SiteSpec

__all__ = ["COUNTER", "FULL", "LATEST", "ReplayPlan", "row_ts"]

FULL, LATEST, COUNTER = 0, 1, 2  # how a series is folded (see ReplayPlan)


def row_ts(row: Row) -> int:
    """A stored row's time (µs), the key replays split their rows by."""
    return row[1]


class ReplayPlan:
    """Which stored rows a replay must fold so that its final state is exactly the full replay's.

    ``twin.live`` folds every sample time as one batch. The state at the end depends on the whole
    sequence only for some signals; the others matter only through their last value. Per series:

    * **full** (kept): status signals, signals an alarm rule watches, everything of inventory items
      and unknown assets.
    * **latest**: other machine signals only set their ``SignalValue``; a row may go when a later
      row of the series follows in the window (the last one is kept; when it is a BAD/STALE row
      without a value, which carries the previous value, the whole series is kept).
    * **counter** (GOOD/SCRAP counters, not watched by an alarm): a GOOD in-range row may go when
      the previous and next such rows of the series bracket it (previous <= it <= next): the
      increases then add up to the same total; decreases (wraps, resets) and their neighbours stay,
      and so does the row of the last increase (when the last cycle end was counted).

    Whatever goes, three things are kept so the fold is the same at every sample time: the first
    and last row of each series; the first row of each asset at each sample time (the reducer
    groups a batch by asset in order of appearance and marks those assets changed for the alarm
    evaluation); and enough rows that no value looks stale at a sample time where its machine has
    no row unless it also was stale in the full replay (staleness marks a machine changed). Every
    sample time keeps at least one row, so the fold visits the same times.
    """

    def __init__(self, fleet: FleetSpec, site_spec: SiteSpec, names: dict[int, tuple[str, str]]) -> None:
        watched = {(r.signal, m.id) for r in fleet.alarms if r.signal is not None
                   for m in site_spec.machines if r.applies_to_machine(m)}
        one_us = ONE_US
        # series id -> (kind, machine id, stale threshold in µs, counter bits)
        self.series: dict[int, tuple[int, str, int, int]] = {}
        for sid, (asset, signal) in names.items():
            machine = site_spec.machine(asset)
            if machine is None:
                self.series[sid] = (FULL, asset, 0, 0)
                continue
            thr_us = timedelta(seconds=fleet.stale_after_polls * machine.poll_interval_s) // one_us
            sig = machine.template.signal(signal)
            if sig is not None and (sig.kind is SignalKind.STATUS or (sig.name, machine.id) in watched):
                kind = FULL
            elif sig is not None and sig.kind in (SignalKind.GOOD_COUNT, SignalKind.SCRAP_COUNT):
                kind = COUNTER
            else:
                kind = LATEST
            self.series[sid] = (kind, asset, thr_us, sig.counter_bits if sig is not None else 0)
        self.asset_of = {sid: asset for sid, (asset, _) in names.items()}
        self.names = names

    def reduce(self, rows: list[Row]) -> list[Row]:
        """The rows to fold (a subsequence of ``rows``, which are in (time, series id) order)."""
        if not rows:
            return rows
        series = self.series
        n = len(rows)
        keep = [False] * n
        # rows of each series that may be thinned, by index; None: a series folded whole
        lists: dict[int, list[int] | None] = {sid: (None if kind == FULL else []) for sid, (kind, _, _, _)
                                              in series.items()}
        asset_of = self.asset_of
        seen: set[tuple[int, str]] = set()  # (time, asset) with a row kept
        for i, row in enumerate(rows):
            sid = row[0]
            key = (row[1], asset_of[sid])
            if key not in seen:  # the asset's first row at this time
                seen.add(key)
                keep[i] = True
            idx = lists[sid]
            if idx is None:
                keep[i] = True
            else:
                idx.append(i)
        own: dict[str, set[int]] = {}  # asset -> its sample times
        for ts, asset in seen:
            own.setdefault(asset, set()).add(ts)
        times = sorted({ts for ts, _ in seen})
        by_series = {sid: idx for sid, idx in lists.items() if idx}
        foreign: dict[str, list[int]] = {}
        for sid, idx in by_series.items():
            kind, asset, thr_us, bits = series[sid]
            last = rows[idx[-1]]
            if kind == LATEST and last[2] is None and last[3] & 3 and not last[3] & NAN:
                for i in idx:  # the last row carries an earlier value: keep the series whole
                    keep[i] = True
                continue
            keep[idx[0]] = keep[idx[-1]] = True
            if len(idx) < 3:
                continue
            fm = foreign.get(asset)
            if fm is None:
                mine = own.get(asset, set())
                fm = foreign[asset] = [t for t in times if t not in mine]
            droppable = self._counter_droppable(rows, idx, bits) if kind == COUNTER else None
            kept_ts = rows[idx[0]][1]
            for j in range(1, len(idx) - 1):
                i = idx[j]
                if not keep[i]:
                    if droppable is None or droppable[j]:
                        # no sample time without this machine after the last kept row's value turns
                        # stale and before the next row of the series: dropping this row shows nothing
                        k = bisect_right(fm, kept_ts + thr_us)
                        if k == len(fm) or fm[k] >= rows[idx[j + 1]][1]:
                            continue
                    keep[i] = True
                kept_ts = rows[i][1]
        return [row for row, k in zip(rows, keep, strict=True) if k]

    @staticmethod
    def _counter_droppable(rows: list[Row], idx: list[int], bits: int) -> list[bool]:
        """Per row of one counter series: whether it may go (previous valid <= it <= next valid).

        Valid: what ``twin.live`` takes as a counter value, a GOOD unsigned ``bits``-wide integer
        (an integral float too; bools are stored with a flag and are not).
        """
        top = 1 << bits
        vals: list[int | float | None] = []
        for i in idx:
            _, _, v, f = rows[i]
            vt = type(v)
            ok = (f == 0 and (vt is int or (vt is float and v.is_integer()))  # type: ignore[union-attr]
                  and 0 <= v < top)  # type: ignore[operator]
            vals.append(v if ok else None)  # type: ignore[arg-type]
        out = [False] * len(idx)
        nxt: int | float | None = None
        after: list[int | float | None] = [None] * len(idx)
        for j in range(len(idx) - 1, -1, -1):
            after[j] = nxt
            if vals[j] is not None:
                nxt = vals[j]
        prev: int | float | None = None
        last_rise = -1
        for j, v in enumerate(vals):
            if v is not None:
                a = after[j]
                out[j] = prev is not None and a is not None and prev <= v <= a
                if prev is not None and v > prev:
                    last_rise = j
                prev = v
        if last_rise >= 0:  # the last increase is the machine's last counted cycle end (MachineState.counted_at)
            out[last_rise] = False
        return out
