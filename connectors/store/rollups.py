"""The rollups table: per series and ``rollup_interval_s`` bucket, min/max/sum/count of GOOD finite numbers.

Rollups are kept at write time without reading the raw table back: a batch that only adds points
(the collector's case) adds its per-bucket min/max/sum/count to the stored ones with one upsert
per bucket (``add``); a batch that rewrites stored points has its buckets recomputed from the raw
rows (``recompute``). ``read`` serves a range from them, grouped to at most ``max_points``.
"""

from __future__ import annotations

import sqlite3

from connectors.store.schema import NUMERIC, Row, from_us
from twin.historian import SeriesPoint

__all__ = ["add", "read", "recompute"]


def add(db: sqlite3.Connection, groups: dict[int, list[float | int]]) -> None:
    """Fold each group's values (key: bucket << 32 | series id) into the stored rollups."""
    db.executemany(
        "INSERT INTO rollups VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(series_id, bucket) DO UPDATE SET "
        "vmin = min(vmin, excluded.vmin), vmax = max(vmax, excluded.vmax), "
        "vsum = vsum + excluded.vsum, n = n + excluded.n",
        [(k & 0xFFFFFFFF, k >> 32, min(g), max(g), sum(g), len(g)) for k, g in groups.items()],
    )


def recompute(db: sqlite3.Connection, rows: list[Row], rollup_us: int) -> None:
    """Recompute every rollup bucket the batch touched from the raw rows (exact after rewrites)."""
    spans: dict[int, list[int]] = {}
    for sid, ts, _, _ in rows:
        span = spans.get(sid)
        if span is None:
            spans[sid] = [ts, ts]
        elif ts < span[0]:
            span[0] = ts
        elif ts > span[1]:
            span[1] = ts
    bounds = [(sid, lo // rollup_us, hi // rollup_us + 1) for sid, (lo, hi) in spans.items()]
    db.executemany("DELETE FROM rollups WHERE series_id = ? AND bucket >= ? AND bucket < ?", bounds)
    db.executemany(
        "INSERT INTO rollups SELECT series_id, ts / ?1, min(value), max(value), sum(value), count(*) "
        f"FROM readings WHERE series_id = ?2 AND ts >= ?3 * ?1 AND ts < ?4 * ?1 AND {NUMERIC} "
        "GROUP BY ts / ?1",
        [(rollup_us, sid, b0, b1) for sid, b0, b1 in bounds],
    )


def read(db: sqlite3.Connection, sid: int, a: int, b: int, max_points: int, rollup_us: int
         ) -> tuple[SeriesPoint, ...]:
    """Series ``sid`` over [a, b] (µs) from its rollups, whole buckets grouped to at most ``max_points``."""
    r = rollup_us
    b0, b1 = a // r, b // r
    group = -(-(b1 - b0 + 1) // max_points)
    rows = db.execute(
        "SELECT (bucket - ?) / ? AS g, min(vmin), max(vmax), sum(vsum), sum(n) FROM rollups "
        "WHERE series_id = ? AND bucket BETWEEN ? AND ? GROUP BY g ORDER BY g",
        (b0, group, sid, b0, b1),
    ).fetchall()
    return tuple(
        SeriesPoint(ts=from_us((b0 + g * group) * r), value=s / n, min=float(lo), max=float(hi), count=int(n))
        for g, lo, hi, s, n in rows
    )
