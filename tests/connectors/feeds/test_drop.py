"""The file drop, for real in a temporary folder: partial, repeated, corrupt and late files."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from connectors.collector import Collector
from connectors.feeds.drop import FileDrop
from connectors.feeds.intake import Intake
from twin.spec import SiteId, Sku

BERLIN, ROTTERDAM = SiteId("pod-berlin"), SiteId("lm-rotterdam")

ORDERS_CSV = """\
id,version,site,product,qty,created,due,status,done_qty
o1,1,pod-berlin,custom-bracket,5,2026-03-02T08:00:00Z,2026-03-04T08:00:00Z,open,0
o2,1,pod-berlin,custom-bracket,3,2026-03-02T08:00:00,2026-03-04T08:00:00Z,open,0
o3,1,pod-berlin,hoverboard,2,2026-03-02T08:00:00Z,2026-03-04T08:00:00Z,open,0
o4,x,pod-berlin,custom-bracket,2,2026-03-02T08:00:00Z,2026-03-04T08:00:00Z,open,0
o5,1,pod-berlin,custom-bracket,2,2026-03-02T08:00:00Z,2026-03-03T08:00:00Z
o6,1,lm-rotterdam,smart-lamp,10,2026-03-02T08:00:00Z,2026-03-09T08:00:00Z,open,0
"""
SHIPMENTS_JSONL = (
    '{"id":"s1","version":1,"site":"lm-rotterdam","sku":"DRIVE-UNIT","qty":200,"eta":"2026-04-01T00:00:00Z",'
    '"origin":"Shenzhen"}\n'
    '{"id":"s2","version":1,"site":"lm-rotterdam","sku":"DRIVE-UNIT","qty":"many","eta":"2026-04-01T00:00:00Z"}\n'
    '{"id":"s3","version":1,"site":"lm-rotterdam","sku":"DRIVE-UNIT","qty":50,"eta":"2026-0'
)


def drop(folder: Path, name: str, content: str | bytes) -> None:
    """Write as an ERP export does: a hidden temporary name, then an atomic rename."""
    tmp = folder / f".{name}.tmp"
    tmp.write_bytes(content.encode() if isinstance(content, str) else content)
    os.replace(tmp, folder / name)


def rejects(log: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def test_partial_repeated_corrupt_and_late_files(tmp_path: Path, intake: Intake, collector: Collector) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    watcher = FileDrop(folder, intake, collector.submit, poll_s=0.05)
    (folder / ".orders-half-written.csv").write_text("id,version\n")  # still being written: not taken
    (folder / "notes.txt").write_text("not a feed")  # not a feed file: not taken

    drop(folder, "orders-0001.csv", ORDERS_CSV)
    drop(folder, "shipments-0001.jsonl", SHIPMENTS_JSONL)
    reports = {r.name: r for r in watcher.scan()}
    # o1 and o6 are good; o2 (no time zone), o3 (unknown product), o4 (version "x"), o5 (8 fields) are not
    assert (reports["orders-0001.csv"].accepted, reports["orders-0001.csv"].rejected) == (2, 4)
    # s1 is good; s2 has a text quantity; s3 is truncated JSON
    assert (reports["shipments-0001.jsonl"].accepted, reports["shipments-0001.jsonl"].rejected) == (1, 2)
    collector.apply_pending()
    state = collector.state
    assert [o.id for o in state.sites[BERLIN].orders] == ["o1"]
    assert [o.id for o in state.sites[ROTTERDAM].orders] == ["o6"]
    assert [s.id for s in state.sites[ROTTERDAM].inventory[Sku("DRIVE-UNIT")].in_transit] == ["s1"]
    log = rejects(watcher.rejects_log)
    assert watcher.rejects_log == tmp_path / "in-rejects.jsonl"
    assert [(r["file"], r["line"]) for r in log] == [("orders-0001.csv", n) for n in (3, 4, 5, 6)] + [
        ("shipments-0001.jsonl", 2), ("shipments-0001.jsonl", 3)]
    assert log[1]["reason"] == "unknown product 'hoverboard'"
    assert log[0]["raw"] == ORDERS_CSV.splitlines()[2]
    processed = sorted(p.name.split(".")[0] for p in (folder / "processed").iterdir())
    assert processed == ["orders-0001", "shipments-0001"]
    assert sorted(p.name for p in folder.iterdir()) == [".orders-half-written.csv", "notes.txt", "processed"]

    # the same file again: nothing changes (the good lines are duplicates, the bad ones rejected again)
    drop(folder, "orders-0001.csv", ORDERS_CSV)
    (again,) = watcher.scan()
    assert (again.accepted, again.duplicates, again.rejected) == (0, 2, 4)
    collector.apply_pending()
    assert collector.state.sites == state.sites

    # a corrupt file: binary garbage is refused as a whole and moved to quarantine with its reason
    drop(folder, "orders-0002.csv", b"\x89PNG\r\n\x1a\n\x00\x00\xff\xd8garbage")
    (corrupt,) = watcher.scan()
    assert (corrupt.accepted, corrupt.quarantined, corrupt.error) == (0, True, "binary data, not a text file")
    assert corrupt.moved_to is not None and corrupt.moved_to.parent == folder / "quarantine"
    assert {k: rejects(watcher.rejects_log)[-1][k] for k in ("line", "outcome")} == {"line": 0,
                                                                                      "outcome": "quarantined"}

    # newer versions, then late and conflicting ones
    drop(folder, "orders-0003.jsonl",
         '{"id":"o1","version":3,"site":"pod-berlin","product":"custom-bracket","qty":5,"done_qty":2,'
         '"created":"2026-03-02T08:00:00Z","due":"2026-03-04T08:00:00Z"}\n'
         '{"id":"o6","version":2,"site":"lm-rotterdam","product":"smart-lamp","qty":10,"status":"done",'
         '"created":"2026-03-02T08:00:00Z","due":"2026-03-09T08:00:00Z"}\n')
    (newer,) = watcher.scan()
    assert newer.accepted == 2
    drop(folder, "orders-0004.jsonl",
         '{"id":"o1","version":2,"site":"pod-berlin","product":"custom-bracket","qty":9,'
         '"created":"2026-03-02T08:00:00Z","due":"2026-03-04T08:00:00Z"}\n'
         '{"id":"o1","version":3,"site":"pod-berlin","product":"custom-bracket","qty":7,'
         '"created":"2026-03-02T08:00:00Z","due":"2026-03-04T08:00:00Z"}\n'
         '{"id":"o6","version":1,"site":"lm-rotterdam","product":"smart-lamp","qty":10,'
         '"created":"2026-03-02T08:00:00Z","due":"2026-03-09T08:00:00Z"}\n')
    (late,) = watcher.scan()
    assert (late.accepted, late.late, late.rejected) == (0, 2, 1)
    log = rejects(watcher.rejects_log)[-3:]
    assert [(r["line"], r["outcome"], r["reason"]) for r in log] == [
        (1, "late", "version 2 < 3 already applied"),
        (2, "rejected", "version 3 was already applied with different content"),
        (3, "late", "version 1 < 2 already applied"),
    ]
    collector.apply_pending()
    final = collector.state
    # o1 at version 3 (5 ordered, 2 done), o6 closed and not reopened by its late version 1
    assert [(o.id, o.qty, o.done_qty, o.version) for o in final.sites[BERLIN].orders] == [("o1", 5, 2, 3)]
    assert final.sites[ROTTERDAM].orders == ()
    assert [s.id for s in final.sites[ROTTERDAM].inventory[Sku("DRIVE-UNIT")].in_transit] == ["s1"]


def test_run_polls_until_stopped(tmp_path: Path, intake: Intake, collector: Collector) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    watcher = FileDrop(folder, intake, collector.submit, poll_s=0.05)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(watcher.run(stop))
        await asyncio.sleep(0.1)
        drop(folder, "orders-9.csv", ORDERS_CSV)
        for _ in range(100):  # bounded: at most 5 s
            if watcher.files_done:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 5.0)

    asyncio.run(main())
    collector.apply_pending()
    assert [o.id for o in collector.state.sites[BERLIN].orders] == ["o1"]
