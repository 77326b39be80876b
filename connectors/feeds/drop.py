"""The file drop: a watched folder where the ERP export puts order and shipment files.

Every ``poll_s`` the folder is listed; files named ``*.csv`` or ``*.jsonl`` and not starting with
``.`` are taken (the exporter writes a hidden or temporary name and renames it when complete, so a
half-written file is never read). For each file, oldest first: parse, check, commit the good
records to the ledger, append every bad line to the rejects log (JSON lines: ``file``, ``line``,
``outcome`` rejected|late, ``reason``, ``raw``), then move the file to ``processed/`` as
``NAME.YYYYMMDDTHHMMSS.ffffffZ.EXT``. The records are handed to the collector only after that commit.
A file dropped twice changes nothing: its records are duplicates in the ledger.

Usage::

    drop = FileDrop(folder, intake, collector.submit, poll_s=5.0)
    await drop.run(stop)          # or drop.scan() from synchronous code
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from connectors.feeds.intake import Intake, IntakeResult, Reject
from connectors.feeds.parse import parse_file
from twin.business import BusinessRecord
from twin.errors import TwinError

__all__ = ["FileDrop", "FileReport", "Submit"]

log = logging.getLogger(__name__)

Submit = Callable[[Sequence[BusinessRecord]], None]
_SUFFIXES = (".csv", ".jsonl")


@dataclass(frozen=True, slots=True, kw_only=True)
class FileReport:
    """What became of one dropped file."""

    name: str
    accepted: int
    duplicates: int
    late: int
    rejected: int
    moved_to: Path | None
    error: str = ""  # the whole file was unreadable


def _utc_now() -> datetime:
    return datetime.now(UTC)


class FileDrop:
    """Watch ``folder`` for order and shipment files; ``rejects_log`` defaults to ``FOLDER-rejects.jsonl``."""

    def __init__(self, folder: Path, intake: Intake, submit: Submit, *, poll_s: float = 5.0,
                 rejects_log: Path | None = None, clock: Callable[[], datetime] = _utc_now) -> None:
        self.folder = folder
        self.processed = folder / "processed"
        self.rejects_log = rejects_log or folder.with_name(folder.name + "-rejects.jsonl")
        self.intake = intake
        self.submit = submit
        self.poll_s = poll_s
        self._clock = clock
        self.files_done = 0

    def pending(self) -> list[Path]:
        """The files waiting in the folder, oldest first (then by name)."""
        try:
            entries = [p for p in self.folder.iterdir()
                       if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in _SUFFIXES]
        except FileNotFoundError:
            return []

        def key(p: Path) -> tuple[float, str]:
            try:
                return (p.stat().st_mtime, p.name)
            except OSError:
                return (0.0, p.name)

        return sorted(entries, key=key)

    def take_files(self) -> tuple[list[FileReport], list[BusinessRecord]]:
        """Process every waiting file (blocking I/O); returns the reports and the records to apply."""
        reports: list[FileReport] = []
        records: list[BusinessRecord] = []
        for path in self.pending():
            report, recs = self._take(path)
            if report is not None:
                reports.append(report)
                records.extend(recs)
        return reports, records

    def scan(self) -> list[FileReport]:
        """Process every waiting file and hand the accepted records to ``submit`` (synchronous)."""
        reports, records = self.take_files()
        if records:
            self.submit(records)
        return reports

    def _take(self, path: Path) -> tuple[FileReport | None, list[BusinessRecord]]:
        try:
            data = path.read_bytes()
        except OSError as exc:  # vanished or unreadable: try again at the next poll
            log.warning("feed file %s cannot be read: %s", path, exc)
            return None, []
        lines, error = parse_file(path.name, data)
        if error:
            head = data[:200].decode("utf-8", "replace")
            result = IntakeResult(rejected=[Reject(line=0, reason=error, raw=head)])
        else:
            result = self.intake.take(lines)  # durable in the ledger from here on
        self._write_rejects(path.name, [*result.rejected, *result.late_lines])
        moved = self._move(path)
        self.files_done += 1
        report = FileReport(name=path.name, accepted=result.accepted, duplicates=result.duplicates,
                            late=result.late, rejected=len(result.rejected), moved_to=moved, error=error)
        level = logging.WARNING if result.rejected else logging.INFO
        log.log(level, "feed file %s: %d accepted, %d duplicates, %d late, %d rejected%s", path.name,
                report.accepted, report.duplicates, report.late, report.rejected,
                f" ({error})" if error else (f"; see {self.rejects_log}" if result.rejected else ""))
        return report, result.to_apply

    def _write_rejects(self, name: str, rejects: Sequence[Reject]) -> None:
        if not rejects:
            return
        self.rejects_log.parent.mkdir(parents=True, exist_ok=True)
        with self.rejects_log.open("a", encoding="utf-8") as f:
            for r in sorted(rejects, key=lambda r: r.line):
                f.write(json.dumps({"file": name, "line": r.line, "outcome": "late" if r.late else "rejected",
                                    "reason": r.reason, "raw": r.raw}) + "\n")

    def _move(self, path: Path) -> Path | None:
        stamp = self._clock().astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        self.processed.mkdir(parents=True, exist_ok=True)
        target = self.processed / f"{path.stem}.{stamp}{path.suffix}"
        n = 1
        while target.exists():
            target = self.processed / f"{path.stem}.{stamp}-{n}{path.suffix}"
            n += 1
        try:
            os.replace(path, target)
        except OSError as exc:
            log.error("feed file %s could not be moved to %s: %s", path, self.processed, exc)
            return None
        return target

    async def run(self, stop: asyncio.Event) -> None:
        """Poll the folder until ``stop`` is set; files are read and committed off the event loop."""
        log.info("watching %s for order and shipment files every %g s", self.folder, self.poll_s)
        while not stop.is_set():
            try:
                _, records = await asyncio.to_thread(self.take_files)
            except (TwinError, OSError):  # a failing disk or ledger must not stop the collector: retry
                log.exception("feed folder %s: scan failed", self.folder)
                records = []
            if records:
                self.submit(records)  # in the loop: the twin state has one writer
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll_s)
