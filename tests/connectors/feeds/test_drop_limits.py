"""Hostile files in a real drop folder: none stops the drop (nor what runs beside it), none is retried forever.

Regression tests of the attack run of issue 18: a ``version`` of 2^63 or more, a JSON Lines record
nested 1,000 deep and a JSON integer of 5,000 digits each escaped ``FileDrop.run`` and took the
collector's TaskGroup (Modbus polling with it) down, again on every restart; a symbolic link
copied any file the collector can read into the rejects log.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import replace
from pathlib import Path

from connectors.collector import Collector
from connectors.feeds.drop import DropLimits, FileDrop
from connectors.feeds.intake import Intake
from connectors.feeds.ledger import Outcome
from connectors.feeds.parse import parse_record
from tests.connectors.feeds.test_drop import BERLIN, drop, rejects
from twin.business import RecordKind

HEADER = "id,version,site,product,qty,created,due"
GOOD_ROW = "o{n},1,pod-berlin,custom-bracket,2,2026-03-02T08:00:00Z,2026-03-04T08:00:00Z"
# the attack's record: a version of 23 digits (the ledger's SQLite integer is 64-bit)
HUGE_VERSION_ROW = "O-1,99999999999999999999999,pod-berlin,custom-bracket,2,2026-11-23T08:00:00Z,2026-11-30T14:00:00Z"
ORDER_JSON = ('{{"id":"j{n}","version":1,"site":"pod-berlin","product":"custom-bracket","qty":2,'
              '"created":"2026-03-02T08:00:00Z","due":"2026-03-04T08:00:00Z"}}')


async def _until(check: object, tries: int = 200) -> None:
    """Bounded wait (at most 10 s) for the drop's thread; no timing is asserted."""
    assert callable(check)
    for _ in range(tries):
        if check():
            return
        await asyncio.sleep(0.05)


def test_records_over_the_limits_are_rejected_alone_and_the_drop_keeps_running(
        tmp_path: Path, intake: Intake, collector: Collector) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    watcher = FileDrop(folder, intake, collector.submit, poll_s=0.05)
    deep = '{"id":' + "[" * 1000 + "]" * 1000 + "}"
    big_int = ORDER_JSON.format(n=9).replace('"qty":2', '"qty":' + "7" * 5000)
    ticks = 0

    async def other_source(stop: asyncio.Event) -> None:  # stands for the Modbus poller in the TaskGroup
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    async def main() -> None:
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(watcher.run(stop))
            tg.create_task(other_source(stop))
            drop(folder, "orders-x.csv", "\n".join([HEADER, HUGE_VERSION_ROW, GOOD_ROW.format(n=1)]) + "\n")
            drop(folder, "orders-y.jsonl", "\n".join([deep, big_int, ORDER_JSON.format(n=2)]) + "\n")
            await _until(lambda: watcher.files_done == 2)
            before = ticks
            await _until(lambda: ticks > before + 3)  # the other task still runs beside the drop
            stop.set()

    asyncio.run(main())  # the TaskGroup ends without an exception: nothing escaped the drop
    assert watcher.files_done == 2
    collector.apply_pending()
    # each file's good record went in, its bad ones were rejected one by one with their reason
    assert sorted(o.id for o in collector.state.sites[BERLIN].orders) == ["j2", "o1"]
    log = [(r["file"], r["line"], r["reason"]) for r in rejects(watcher.rejects_log)]
    assert log == [
        ("orders-x.csv", 2, "version must be a whole number of at most 20 digits (got 23 characters)"),
        ("orders-y.jsonl", 1, "JSON nested 1001 levels deep (at most 16)"),
        ("orders-y.jsonl", 2, "qty must be a whole number (got an integer of 5000 digits)"),
    ]
    # both files were processed (not quarantined): a restart finds nothing left to fail on
    assert sorted(p.name.split(".")[0] for p in (folder / "processed").iterdir()) == ["orders-x", "orders-y"]
    assert not (folder / "quarantine").exists()
    assert watcher.pending() == []


def test_a_version_at_the_edge_of_64_bits(tmp_path: Path, intake: Intake, collector: Collector) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    watcher = FileDrop(folder, intake, collector.submit)
    top, over = 2**63 - 1, 2**63  # SQLite's largest integer, and one more
    rows = [HEADER, GOOD_ROW.format(n=1).replace(",1,", f",{top},", 1),
            GOOD_ROW.format(n=2).replace(",1,", f",{over},", 1)]
    drop(folder, "orders-edge.csv", "\n".join(rows) + "\n")
    (report,) = watcher.scan()
    assert (report.accepted, report.rejected) == (1, 1)
    assert rejects(watcher.rejects_log)[0]["reason"] == f"version must be within +-(2^63 - 1) (got {over})"


def test_files_that_cannot_be_processed_go_to_quarantine_once(tmp_path: Path, intake: Intake,
                                                              collector: Collector) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    limits = DropLimits(max_file_bytes=1024 * 1024, max_line_bytes=1024)
    watcher = FileDrop(folder, intake, collector.submit, limits=limits)
    secret = tmp_path / "secret.txt"
    secret.write_text("id,version\nroot:$6$hash-that-must-not-leak\n")
    os.symlink(secret, folder / "orders-leak.csv")  # the attack: a link to a file the collector can read
    os.mkfifo(folder / "orders-pipe.jsonl")  # opening a FIFO blocks until a writer comes: never opened
    (folder / "orders-dir.csv").mkdir()
    with (folder / "orders-big.csv").open("wb") as f:  # sparse: 1 MiB + 1 byte, over the limit
        f.truncate(1024 * 1024 + 1)
    drop(folder, "orders-nohead.csv", ",,\n" + GOOD_ROW.format(n=1) + "\n")
    drop(folder, "orders-ok.csv", "\n".join([HEADER, GOOD_ROW.format(n=3), "x" * 5000]) + "\n")

    reports = {r.name: r for r in watcher.scan()}
    assert {n: r.error for n, r in reports.items() if r.quarantined} == {
        "orders-leak.csv": "a symbolic link, not a regular file: not read",
        "orders-pipe.jsonl": "a named pipe, not a regular file: not read",
        "orders-dir.csv": "a directory, not a regular file: not read",
        "orders-big.csv": "1048577 bytes, over the limit of 1048576 bytes",
        "orders-nohead.csv": "header row has empty or repeated column names (got ['', '', ''])",
    }
    assert (reports["orders-ok.csv"].accepted, reports["orders-ok.csv"].rejected) == (1, 1)
    quarantine = folder / "quarantine"
    moved = sorted(p.name for p in quarantine.iterdir())
    assert len(moved) == 10  # five files, each with its reason beside it
    link = next(p for p in quarantine.iterdir() if p.name.startswith("orders-leak") and p.suffix == ".csv")
    assert link.is_symlink() and secret.read_text().startswith("id,version")  # moved as a link, target intact
    why = next(p for p in quarantine.iterdir() if p.name.startswith("orders-big") and p.name.endswith(".why.txt"))
    assert why.read_text() == "1048577 bytes, over the limit of 1048576 bytes\n"
    text = watcher.rejects_log.read_text()
    assert "hash-that-must-not-leak" not in text  # nothing of the link's target was read
    # the over-long line is rejected by its length, its content not copied
    (long_line,) = [r for r in rejects(watcher.rejects_log) if r["outcome"] == "rejected"]
    assert (long_line["line"], long_line["reason"], long_line["raw"]) == (
        3, "line of 5001 bytes, over the limit of 1024 bytes", "<5001 bytes>")
    # nothing is left to retry: the next scans find an empty folder
    assert watcher.pending() == [] and watcher.scan() == []


def test_the_rejects_log_keeps_a_bounded_escaped_excerpt(tmp_path: Path, intake: Intake,
                                                         collector: Collector) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    watcher = FileDrop(folder, intake, collector.submit)
    # a line of 60,017 characters (under the 64 KiB line limit) with raw terminal escape sequences
    line = '{"id": "\x1b]0;owned\x07' + "A" * 60_000 + '"}'
    drop(folder, "orders-esc.jsonl", line + "\n")
    (report,) = watcher.scan()
    assert report.rejected == 1
    (entry,) = rejects(watcher.rejects_log)
    assert entry["reason"] == "not valid JSON: Invalid control character at column 9"
    raw = str(entry["raw"])
    assert "\x1b" not in raw and "\x07" not in raw
    # 200 characters kept, the two control characters written out as \x1b and \x07, then the length
    assert raw == '{"id": "\\x1b]0;owned\\x07' + "A" * (200 - 24) + f"... ({len(line)} characters)"


def test_the_ledger_rejects_a_record_it_cannot_bind_alone(tmp_path: Path, intake: Intake) -> None:
    """Records built past the parser (as by a future source) still fail one by one, never the transaction."""
    good = parse_record(json.loads(ORDER_JSON.format(n=1)), RecordKind.ORDER)
    decisions = intake.ledger.commit([replace(good, id="\ud800"), replace(good, version=2**63), good])
    assert [(d.outcome, d.reason) for d in decisions] == [
        (Outcome.INVALID, "cannot be stored: UnicodeEncodeError"),
        (Outcome.INVALID, "version must be within 0..2^63-1 (got 9223372036854775808)"),
        (Outcome.ACCEPTED, ""),
    ]
