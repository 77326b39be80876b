"""Property-based: whatever bytes a dropped file or an HTTP body holds, the feeds never raise.

A file is processed (its good records in, each bad one rejected with a reason) or quarantined with
its reason, and leaves the drop folder either way: nothing is retried forever. A body is records
and reasons, or a ``ValueError`` (HTTP 400); the intake never raises on what the parser gives it.
"""

from __future__ import annotations

import atexit
import itertools
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.config import load
from connectors.feeds.drop import DropLimits, FileDrop
from connectors.feeds.intake import Intake
from connectors.feeds.ledger import Ledger
from connectors.feeds.parse import parse_body
from tests.conftest import EXAMPLES
from twin.business import RecordKind

FLEET = load(EXAMPLES / "fleet.toml").fleet
WORK = Path(tempfile.mkdtemp(prefix="twin-feeds-fuzz-"))
atexit.register(shutil.rmtree, WORK, True)  # a folder per session, removed at exit
LEDGER = Ledger(WORK / "feeds.db")
INTAKE = Intake(FLEET, LEDGER)
DROP = FileDrop(WORK / "in", INTAKE, lambda records: None, limits=DropLimits(max_line_bytes=4096))
_names = itertools.count()

CSV = (b"id,version,site,product,qty,created,due,status,done_qty,operation\n"
       b"o1,1,pod-berlin,custom-bracket,5,2026-03-02T08:00:00Z,2026-03-04T08:00:00Z,open,0,print\n")
JSONL = (b'{"id":"o2","version":1,"site":"pod-berlin","product":"custom-bracket","qty":2,'
         b'"created":"2026-03-02T08:00:00Z","due":"2026-03-04T08:00:00Z"}\n')
SPLICES = [b"\xff", b"\x00", b"\xed\xa0\x80", b"\\ud800", b"[" * 1200, b"{" * 50, b'"', b"\r", b"\n",
           b"9" * 5000, b"99999999999999999999999", b"-1", b",,,,", b"1e999", b"NaN", b"x" * 5000]


@st.composite
def corrupted(draw: st.DrawFn, base: bytes) -> bytes:
    data = bytearray(base * draw(st.integers(min_value=1, max_value=3)))
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(data)))
        op = draw(st.sampled_from(["replace", "insert", "splice", "cut"]))
        if op == "replace" and at < len(data):
            data[at] = draw(st.integers(min_value=0, max_value=255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "splice":
            data[at:at] = draw(st.sampled_from(SPLICES))
        else:
            del data[at:]
    return bytes(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([("csv", CSV), ("jsonl", JSONL)]).flatmap(
    lambda case: st.tuples(st.just(case[0]), corrupted(case[1]))))
def test_any_dropped_bytes_are_processed_or_quarantined(case: tuple[str, bytes]) -> None:
    ext, data = case
    DROP.folder.mkdir(exist_ok=True)
    name = f"orders-{next(_names)}.{ext}"
    (DROP.folder / name).write_bytes(data)
    (report,) = DROP.scan()  # raises nothing
    assert report.name == name and report.moved_to is not None
    assert report.moved_to.parent == (DROP.quarantine if report.quarantined else DROP.processed)
    assert report.quarantined == bool(report.error)
    assert not (DROP.folder / name).exists()  # never taken again


@settings(max_examples=150, deadline=None)
@given(corrupted(b"[" + JSONL.strip() + b"," + JSONL.strip() + b"]"))
def test_any_body_is_records_and_reasons_or_a_400(body: bytes) -> None:
    try:
        lines = parse_body(body, RecordKind.ORDER)
    except ValueError:
        return  # 400
    result = INTAKE.take(lines)  # raises nothing
    assert result.accepted + result.duplicates + result.late + len(result.rejected) == len(lines)
    assert all(r.reason for r in result.rejected)
