"""The file drop: a watched folder where the ERP export puts order and shipment files.

Every ``poll_s`` the folder is listed; files named ``*.csv`` or ``*.jsonl`` and not starting with
``.`` are taken (the exporter writes a hidden or temporary name and renames it when complete, so a
half-written file is never read). For each file, oldest first: read it as a stream, a batch of
lines at a time (memory stays bounded whatever the file's size), parse, check, commit the good
records to the ledger, hand them to the collector, append every bad line to the rejects log (JSON
lines: ``file``, ``line``, ``outcome`` rejected|late|quarantined, ``reason``, ``raw``: a bounded,
escaped excerpt of the line), then move the file to ``processed/`` as
``NAME.YYYYMMDDTHHMMSS.ffffffZ.EXT``. A file dropped twice changes nothing: its records are
duplicates in the ledger.

A file that cannot be processed is moved to the quarantine folder (default ``quarantine/`` in the
drop folder) with its reason beside it (``NAME.STAMP.EXT.why.txt``, and a ``quarantined`` line in
the rejects log), and never retried: a symbolic link or anything not a regular file (not read:
the drop opens files with ``O_NOFOLLOW``), a file over ``max_file_bytes``, binary data, a CSV
without a usable header, or any unexpected error while reading it. Nothing a file contains can stop
the drop: only a failing ledger (``TwinError``) leaves the file in place, to be tried again at the
next poll.

Usage::

    drop = FileDrop(folder, intake, collector.submit, poll_s=5.0)
    await drop.run(stop)          # or drop.scan() from synchronous code
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

from connectors.config.feeds import FeedsConfig
from connectors.feeds.intake import Intake, Reject
from connectors.feeds.parse import MAX_LINE_BYTES, FileUnreadable, Line, excerpt, iter_file
from twin.business import BusinessRecord
from twin.clock import Clock, utc_now
from twin.errors import TwinError

__all__ = ["DropLimits", "FileDrop", "FileReport", "Submit"]

log = logging.getLogger(__name__)

Submit = Callable[[Sequence[BusinessRecord]], None]
_SUFFIXES = (".csv", ".jsonl")
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class DropLimits:
    """What one dropped file may cost: its size, its longest line, the lines committed at a time."""

    max_file_bytes: int = 64 * 1024 * 1024
    max_line_bytes: int = MAX_LINE_BYTES
    batch_lines: int = 2000


@dataclass(frozen=True, slots=True, kw_only=True)
class FileReport:
    """What became of one dropped file."""

    name: str
    accepted: int
    duplicates: int
    late: int
    rejected: int
    moved_to: Path | None
    error: str = ""  # why the whole file could not be processed (it went to quarantine)
    quarantined: bool = False


def _kind_of(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device or special file"


@dataclass(slots=True)
class _Totals:
    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    rejected: int = 0


class _Quarantine(Exception):
    """The file cannot be processed: move it aside with this reason."""


class FileDrop:
    """Watch ``folder`` for order and shipment files; ``rejects_log`` defaults to ``FOLDER-rejects.jsonl``."""

    def __init__(self, folder: Path, intake: Intake, submit: Submit, *, poll_s: float = 5.0,
                 rejects_log: Path | None = None, quarantine: Path | None = None,
                 limits: DropLimits | None = None, clock: Clock = utc_now) -> None:
        self.folder = folder
        self.processed = folder / "processed"
        self.quarantine = quarantine or folder / "quarantine"
        self.rejects_log = rejects_log or folder.with_name(folder.name + "-rejects.jsonl")
        self.intake = intake
        self.submit = submit
        self.poll_s = poll_s
        self.limits = limits or DropLimits()
        self._clock = clock
        self._stuck: set[tuple[str, int, int, int]] = set()  # files that could not be moved away: skipped
        self.files_done = 0

    def pending(self) -> list[Path]:
        """The files waiting in the folder, oldest first (then by name); links are listed, not followed."""
        found: list[tuple[float, str, Path]] = []
        try:
            with os.scandir(self.folder) as it:
                for entry in it:
                    if entry.name.startswith(".") or not entry.name.lower().endswith(_SUFFIXES):
                        continue
                    try:
                        mtime = entry.stat(follow_symlinks=False).st_mtime
                    except OSError:
                        mtime = 0.0
                    found.append((mtime, entry.name, Path(entry.path)))
        except FileNotFoundError:
            return []
        return [p for _, _, p in sorted(found)]

    def take_files(self, deliver: Submit | None = None) -> tuple[list[FileReport], list[BusinessRecord]]:
        """Process every waiting file (blocking I/O); returns the reports and the records to apply.

        With ``deliver``, the records of each committed batch go to it at once instead (the list
        returned is then empty): a large file never holds all its records in memory.
        """
        reports: list[FileReport] = []
        records: list[BusinessRecord] = []
        for path in self.pending():
            report = self._take(path, deliver or records.extend)
            if report is not None:
                reports.append(report)
        return reports, records

    def scan(self) -> list[FileReport]:
        """Process every waiting file and hand the accepted records to ``submit`` (synchronous)."""
        reports, records = self.take_files()
        if records:
            self.submit(records)
        return reports

    def _take(self, path: Path, deliver: Submit) -> FileReport | None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        key = (path.name, st.st_ino, st.st_size, st.st_mtime_ns)
        if key in self._stuck:
            return None
        totals = _Totals()
        try:
            self._read(path, st, totals, deliver)
        except FileNotFoundError:  # vanished while read (its committed batches are kept)
            return None
        except _Quarantine as exc:
            return self._set_aside(path, key, str(exc), totals)
        except FileUnreadable as exc:
            return self._set_aside(path, key, str(exc), totals)
        except TwinError:
            raise  # the ledger failed: the file stays and is tried again at the next poll
        except OSError as exc:
            return self._set_aside(path, key, f"cannot be read: {exc.strerror or exc}", totals)
        except Exception as exc:  # whatever a file holds must not stop the drop: set it aside
            log.exception("feed file %s: unexpected error", path)
            return self._set_aside(path, key, f"unexpected error: {type(exc).__name__}: {excerpt(str(exc))}",
                                   totals)
        moved = self._move(path, self.processed)
        if moved is None:
            self._stuck.add(key)
        self.files_done += 1
        report = FileReport(name=path.name, moved_to=moved, accepted=totals.accepted, duplicates=totals.duplicates,
                            late=totals.late, rejected=totals.rejected)
        level = logging.WARNING if report.rejected else logging.INFO
        log.log(level, "feed file %s: %d accepted, %d duplicates, %d late, %d rejected%s", path.name,
                report.accepted, report.duplicates, report.late, report.rejected,
                f"; see {self.rejects_log}" if report.rejected else "")
        return report

    def _read(self, path: Path, st: os.stat_result, totals: _Totals, deliver: Submit) -> None:
        limits = self.limits
        if not stat.S_ISREG(st.st_mode):
            raise _Quarantine(f"{_kind_of(st.st_mode)}, not a regular file: not read")
        if st.st_size > limits.max_file_bytes:
            raise _Quarantine(f"{st.st_size} bytes, over the limit of {limits.max_file_bytes} bytes")
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # replaced by a link since it was listed
                raise _Quarantine("a symbolic link, not a regular file: not read") from None
            raise
        with os.fdopen(fd, "rb", buffering=65536) as f:
            fst = os.fstat(f.fileno())
            if not stat.S_ISREG(fst.st_mode):
                raise _Quarantine(f"{_kind_of(fst.st_mode)}, not a regular file: not read")
            batch: list[Line] = []
            for line in iter_file(path.name, f, max_line_bytes=limits.max_line_bytes):
                batch.append(line)
                if len(batch) >= limits.batch_lines:
                    self._commit(path.name, batch, totals, deliver)
                    batch = []
                    if f.tell() > limits.max_file_bytes:
                        raise _Quarantine(f"grew over the limit of {limits.max_file_bytes} bytes while read")
            if batch:
                self._commit(path.name, batch, totals, deliver)

    def _commit(self, name: str, batch: Sequence[Line], totals: _Totals, deliver: Submit) -> None:
        result = self.intake.take(batch)  # durable in the ledger from here on
        self._write_rejects(name, [*result.rejected, *result.late_lines])
        totals.accepted += result.accepted
        totals.duplicates += result.duplicates
        totals.late += result.late
        totals.rejected += len(result.rejected)
        if result.to_apply:
            deliver(result.to_apply)

    def _set_aside(self, path: Path, key: tuple[str, int, int, int], reason: str,
                   totals: _Totals) -> FileReport:
        moved = self._move(path, self.quarantine)
        if moved is None:
            self._stuck.add(key)  # not retried until it changes
        else:
            with contextlib.suppress(OSError):
                moved.with_name(moved.name + ".why.txt").write_text(reason + "\n", encoding="utf-8")
        self._write_rejects(path.name, [], quarantined=reason)
        self.files_done += 1
        log.warning("feed file %s quarantined%s: %s", path.name, f" to {moved}" if moved else "", reason)
        return FileReport(name=path.name, moved_to=moved, error=reason, quarantined=True, accepted=totals.accepted,
                          duplicates=totals.duplicates, late=totals.late, rejected=totals.rejected)

    def _write_rejects(self, name: str, rejects: Sequence[Reject], *, quarantined: str = "") -> None:
        if not rejects and not quarantined:
            return
        try:
            self.rejects_log.parent.mkdir(parents=True, exist_ok=True)
            with self.rejects_log.open("a", encoding="utf-8") as f:
                for r in sorted(rejects, key=lambda r: r.line):
                    f.write(json.dumps({"file": name, "line": r.line, "outcome": "late" if r.late else "rejected",
                                        "reason": excerpt(r.reason, 500), "raw": excerpt(r.raw)}) + "\n")
                if quarantined:
                    f.write(json.dumps({"file": name, "line": 0, "outcome": "quarantined",
                                        "reason": quarantined, "raw": ""}) + "\n")
        except OSError as exc:
            log.error("feed rejects log %s cannot be written: %s", self.rejects_log, exc)

    def _move(self, path: Path, folder: Path) -> Path | None:
        stamp = self._clock().astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        stem, suffix = os.path.splitext(path.name)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{stem}.{stamp}{suffix}"
            n = 1
            while os.path.lexists(target):
                target = folder / f"{stem}.{stamp}-{n}{suffix}"
                n += 1
            os.replace(path, target)  # a link is moved as the link, never followed
        except OSError as exc:
            log.error("feed file %s could not be moved to %s: %s; it is skipped until it changes",
                      path, folder, exc)
            return None
        return target

    @classmethod
    def from_config(cls, feeds: FeedsConfig, intake: Intake, submit: Submit) -> FileDrop:
        """The drop of a validated ``[feeds]`` section (``drop_dir`` must be set)."""
        assert feeds.drop_dir is not None
        return cls(feeds.drop_dir, intake, submit, poll_s=feeds.poll_s, rejects_log=feeds.rejects_log,
                   quarantine=feeds.quarantine_dir,
                   limits=DropLimits(max_file_bytes=feeds.max_file_bytes, max_line_bytes=feeds.max_line_bytes))

    async def run(self, stop: asyncio.Event) -> None:
        """Poll the folder until ``stop`` is set; files are read and committed off the event loop.

        Records reach ``submit`` in the loop's thread (the twin state has one writer), a committed
        batch at a time. No exception from a scan ends the loop: it is logged and the scan retried.
        """
        log.info("watching %s for order and shipment files every %g s", self.folder, self.poll_s)
        loop = asyncio.get_running_loop()

        def deliver(records: Sequence[BusinessRecord]) -> None:
            loop.call_soon_threadsafe(self.submit, list(records))

        while not stop.is_set():
            try:
                await asyncio.to_thread(self.take_files, deliver)
            except Exception:  # a failing disk or ledger must not stop the collector: retry
                log.exception("feed folder %s: scan failed; trying again in %g s", self.folder, self.poll_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll_s)
