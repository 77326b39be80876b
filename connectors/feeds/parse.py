"""Turn feed text (CSV with a header row, JSON Lines, JSON bodies) into order and shipment records.

Every record is checked on its own and either becomes a ``twin.business`` record or gets one
clear reason (missing field, wrong type, a timestamp without a time zone, unknown field...); the
good records of a file count even when other lines are bad. References to the fleet (site,
product, SKU) are checked later, by ``twin.business.validate``. This module reads the text (lines,
CSV rows, JSON within limits); :mod:`connectors.feeds.records` checks each record (a pydantic model,
through :mod:`twin.validation`).

Fields (required unless a default is named):

* order: ``id``, ``version`` or ``updated_at``, ``site``, ``product``, ``qty`` (whole number),
  ``created``, ``due``, ``status`` (``open`` | ``done`` | ``cancelled``, default open),
  ``done_qty`` (default 0), ``operation`` (the routing role the order is at now, e.g. ``print``;
  default empty: not started or not reported), ``done_by_step`` (good units through each routing
  step so far, cumulative: a JSON array, or in CSV ``12|8|5``; default: not reported);
* shipment: ``id``, ``version`` or ``updated_at``, ``site``, ``sku``, ``qty``, ``eta``,
  ``origin`` (default empty), ``status`` (``in_transit`` | ``arrived`` | ``cancelled``, default
  in_transit), ``planned_eta`` (default: the first ETA the twin saw).

A record may also carry ``kind`` (``order`` | ``shipment``); a file whose name starts with
``orders`` or ``shipments`` (an HTTP path likewise) fixes the kind, otherwise ``kind`` is required.
Timestamps are ISO 8601 with an offset or ``Z``. The version is either an integer ``version`` or
``updated_at``, a timestamp turned into milliseconds since the Unix epoch (one of the two, not both;
use one scheme per source so that versions of one id compare).

Everything from outside is read within limits, and a record over one is rejected by itself with
the reason (the rest of its file or batch goes on): a line of at most ``max_line_bytes`` (64 KiB by
default), JSON nested at most ``MAX_DEPTH`` levels, integers of at most ``MAX_INT_DIGITS`` digits,
whole numbers within a signed 64-bit integer and versions within 0..2^63-1 (what the ledger can
store). Files are read as a stream (:func:`iter_file`), one line at a time; only what makes a whole
file unreadable (binary data, a bad CSV header) raises :class:`FileUnreadable`. Reasons quote values
in a bounded excerpt (:func:`excerpt`).

>>> rec = parse_record({"id": "o1", "version": 2, "site": "s", "product": "p", "qty": 3,
...                     "created": "2026-03-02T08:00:00Z", "due": "2026-03-04T08:00:00+01:00"},
...                    RecordKind.ORDER)
>>> rec.due.isoformat(), rec.status.value
('2026-03-04T07:00:00+00:00', 'open')
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from connectors.feeds.records import (
    MAX_INT_DIGITS,
    MAX_VERSION,
    BigInt,
    RecordError,
    excerpt,
    parse_record,
    record_from_json,
    record_to_json,
)
from twin.business import BusinessRecord, RecordKind

__all__ = [
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "MAX_LINE_BYTES",
    "MAX_VERSION",
    "FileUnreadable",
    "Line",
    "RecordError",
    "excerpt",
    "iter_file",
    "kind_of_name",
    "parse_body",
    "parse_file",
    "parse_record",
    "record_from_json",
    "record_to_json",
]

MAX_LINE_BYTES = 64 * 1024  # default longest line of a dropped file
MAX_DEPTH = 16  # deepest JSON nesting of one record (a record is a flat object: 1)


class FileUnreadable(ValueError):
    """A whole file that cannot be read as a feed (binary data, no or a bad CSV header)."""


def _json_int(text: str) -> int | BigInt:
    digits = len(text) - text.startswith("-")
    return BigInt(digits) if digits > MAX_INT_DIGITS else int(text)


_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'  # a JSON string (its brackets are not structure), unrolled: fast
_STRINGS = re.compile(_STRING)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


def _depth(text: str) -> int:
    """How deep the JSON ``text`` nests (strings skipped); a few C-speed passes, then one per bracket."""
    if text.count("[") + text.count("{") <= 1:
        return 1 if "[" in text or "{" in text else 0
    depth = deepest = 0
    for c in _NOT_BRACKETS.sub("", _STRINGS.sub("", text)):
        if c == "[" or c == "{":
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    return deepest


def _load_json(text: str, max_depth: int = MAX_DEPTH) -> Any:
    """The decoded JSON ``text`` within the limits, or ``RecordError`` with the reason."""
    depth = _depth(text)
    if depth > max_depth:
        raise RecordError(f"JSON nested {depth} levels deep (at most {max_depth})")
    try:
        return json.loads(text, parse_int=_json_int)
    except json.JSONDecodeError as exc:
        raise RecordError(f"not valid JSON: {exc.msg.removesuffix(' at')} at column {exc.colno}") from None
    except (RecursionError, ValueError) as exc:  # belt and braces: the limits above should prevent these
        raise RecordError(f"not valid JSON: {type(exc).__name__}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Line:
    """One line (or array element) of an input: its record, or why there is none."""

    line: int  # 1-based line of a file (the header is line 1 of a CSV), or index in a JSON array
    raw: str
    record: BusinessRecord | None = None
    reason: str = ""


def kind_of_name(name: str) -> RecordKind | None:
    """The kind a file name or path fixes (``orders-*.csv``, ``/api/v1/shipments``), or None."""
    base = name.rsplit("/", 1)[-1].lower()
    if base.startswith("order"):
        return RecordKind.ORDER
    if base.startswith("shipment"):
        return RecordKind.SHIPMENT
    return None


def _line(n: int, raw: str, obj: object, kind: RecordKind | None, text: bool) -> Line:
    try:
        return Line(line=n, raw=raw, record=parse_record(obj, kind, text=text))
    except RecordError as exc:
        return Line(line=n, raw=raw, reason=str(exc))


def _lines(stream: IO[bytes], max_line_bytes: int) -> Iterator[tuple[int, bytes | None, int]]:
    """``(line number, bytes, length)`` of every physical line; bytes None for a line over the limit.

    Reads at most ``max_line_bytes + 1`` bytes at a time: an endless line costs no memory, only time.
    """
    n = 0
    while True:
        line = stream.readline(max_line_bytes + 1)
        if not line:
            return
        n += 1
        if len(line) > max_line_bytes and not line.endswith(b"\n"):
            length = len(line)
            while not line.endswith(b"\n"):
                line = stream.readline(max_line_bytes + 1)
                if not line:
                    break
                length += len(line)
            yield n, None, length
            continue
        yield n, line, len(line)


def _too_long(length: int, limit: int) -> str:
    return f"line of {length} bytes, over the limit of {limit} bytes"


def _text(data: bytes, first: bool) -> str:
    try:
        return data.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(f"not UTF-8 text (byte {exc.start} of the line)") from None


def iter_file(name: str, stream: IO[bytes], *, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[Line]:
    """The lines of a dropped ``*.csv`` or ``*.jsonl`` file, read as a stream, each a record or a reason.

    Raises :class:`FileUnreadable` (before any line when the start of the file shows it) when the
    whole file cannot be read: NUL bytes in its first 8 KiB, a CSV without a usable header row.
    """
    head = stream.peek(8192) if hasattr(stream, "peek") else b""
    if b"\x00" in head[:8192]:
        raise FileUnreadable("binary data, not a text file")
    kind = kind_of_name(name)
    if name.lower().endswith(".jsonl"):
        yield from _iter_jsonl(stream, kind, max_line_bytes)
    else:
        yield from _iter_csv(stream, kind, max_line_bytes)


def _iter_jsonl(stream: IO[bytes], kind: RecordKind | None, limit: int) -> Iterator[Line]:
    for n, data, length in _lines(stream, limit):
        if data is None:
            yield Line(line=n, raw=f"<{length} bytes>", reason=_too_long(length, limit))
            continue
        try:
            raw = _text(data, n == 1).rstrip("\r\n")
        except RecordError as exc:
            yield Line(line=n, raw=excerpt(data.decode("utf-8", "replace")), reason=str(exc))
            continue
        if not raw.strip():
            continue
        try:
            obj = _load_json(raw)
        except RecordError as exc:
            yield Line(line=n, raw=raw, reason=str(exc))
            continue
        yield _line(n, raw, obj, kind, False)


def _iter_csv(stream: IO[bytes], kind: RecordKind | None, limit: int) -> Iterator[Line]:
    consumed: list[str] = []  # the physical lines of the row being read (its raw text)
    bad: dict[int, str] = {}  # line number -> why the line was replaced by an empty one

    def texts() -> Iterator[str]:
        for n, data, length in _lines(stream, limit):
            if data is None:
                bad[n] = _too_long(length, limit)
                consumed.append(f"<{length} bytes>")
                yield "\n"
                continue
            try:
                text = _text(data, n == 1)
            except RecordError as exc:
                bad[n] = str(exc)
                consumed.append(data.decode("utf-8", "replace"))
                yield "\n"
                continue
            consumed.append(text)
            yield text

    reader = csv.reader(texts(), strict=True)
    header: list[str] | None = None
    while True:
        first = reader.line_num + 1
        try:
            row = next(reader)
            error = ""
        except StopIteration:
            break
        except csv.Error as exc:
            row, error = [], f"not valid CSV: {exc}"
        raw = "".join(consumed).rstrip("\r\n")
        consumed.clear()
        why = error or next((bad[i] for i in range(first, reader.line_num + 1) if i in bad), "")
        if header is None:
            if why:
                raise FileUnreadable(f"header row: {why}")
            header = [h.strip() for h in row]
            if len(set(header)) != len(header) or any(not h for h in header):
                raise FileUnreadable(f"header row has empty or repeated column names (got {excerpt(str(header))})")
            continue
        if why:
            yield Line(line=first, raw=raw, reason=why)
            continue
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield Line(line=first, raw=raw, reason=f"{len(row)} fields, the header has {len(header)}")
            continue
        yield _line(first, raw, dict(zip(header, row, strict=True)), kind, True)
    if header is None:
        raise FileUnreadable("empty file: a header row is required")


def parse_file(name: str, data: bytes, *, max_line_bytes: int = MAX_LINE_BYTES) -> tuple[list[Line], str]:
    """The lines of a whole file in memory (see :func:`iter_file`), and a reason if it is unreadable."""
    try:
        return list(iter_file(name, io.BufferedReader(io.BytesIO(data)), max_line_bytes=max_line_bytes)), ""
    except FileUnreadable as exc:
        return [], str(exc)


_STRUCTURE = re.compile(_STRING + r"|[\[\]{},]")


def _elements(text: str) -> list[str] | None:
    """The texts of the top-level elements of the JSON array ``text`` (strings skipped), or None."""
    if not text.lstrip().startswith("["):
        return None
    out: list[str] = []
    depth, start = 0, 0
    for m in _STRUCTURE.finditer(text):
        c = m.group()
        if c in "[{":
            depth += 1
            if depth == 1:
                start = m.end()
        elif c in "]}":
            depth -= 1
            if depth == 0:
                last = text[start:m.start()]
                if last.strip() or out:
                    out.append(last)
                return out if not text[m.end():].strip() else None
        elif depth == 1:  # a comma between elements
            out.append(text[start:m.start()])
            start = m.end()
    return None


def _nesting(obj: object, limit: int) -> int:
    """How deep a decoded JSON value nests (iteratively: no recursion), stopping once over ``limit``."""
    stack: list[tuple[object, int]] = [(obj, 1)]
    deepest = 0
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return depth
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return deepest


def _too_deep(i: int, depth: int | None, raw: str) -> Line:
    how = f"{depth} levels" if depth is not None else f"more than {MAX_DEPTH} levels"
    return Line(line=i, raw=raw, reason=f"JSON nested {how} deep (at most {MAX_DEPTH})")


def parse_body(body: bytes, kind: RecordKind) -> list[Line]:
    """The records of an HTTP body: one JSON object or an array of them. ``ValueError`` if not JSON.

    A record over the limits (nested too deep, an integer of too many digits, a version over
    2^63-1) is rejected by itself: the other records of the batch are still taken. CPU-bound
    (about a second for 1 MiB of records): call it from a worker thread in async code.
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"body is not JSON: not UTF-8 text (byte {exc.start})") from None
    try:
        doc = json.loads(text, parse_int=_json_int)
    except json.JSONDecodeError as exc:
        raise ValueError(f"body is not JSON: {exc}") from None
    except RecursionError:  # nested deeper than the interpreter's stack: split the array, reject the deep ones
        return _deep_body(text, kind)
    except ValueError as exc:
        raise ValueError(f"body is not JSON: {type(exc).__name__}") from None
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise ValueError(f"body must be a JSON object or an array of objects (got {type(doc).__name__})")
    out: list[Line] = []
    for i, obj in enumerate(doc):
        depth = _nesting(obj, MAX_DEPTH)
        if depth > MAX_DEPTH:  # before any repr or dumps of it: those recurse
            out.append(_too_deep(i, None, f"<a value nested more than {MAX_DEPTH} levels>"))
            continue
        out.append(_line(i, excerpt(_dumps(obj), 500), obj, kind, False))
    return out


def _deep_body(text: str, kind: RecordKind) -> list[Line]:
    elements = _elements(text)
    if elements is None:
        return [_too_deep(0, _depth(text), excerpt(text))]
    out: list[Line] = []
    for i, element in enumerate(elements):
        try:
            out.append(_line(i, excerpt(element, 500), _load_json(element), kind, False))
        except RecordError as exc:
            out.append(Line(line=i, raw=excerpt(element, 500), reason=str(exc)))
    return out


def _dumps(obj: object) -> str:
    return json.dumps(obj, default=repr)
